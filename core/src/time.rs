//! Timestamps in Better Auth's wire and storage format: ISO-8601 UTC with milliseconds
//! (`2026-11-27T09:34:31.049Z`), what JavaScript's `toISOString()` writes.

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, truncated to milliseconds (what Better Auth can store and send).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// `2026-11-27T09:34:31.049Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    let mut buf = [0u8; ISO_LEN];
    match write_iso(t, &mut buf) {
        Some(s) => s.to_owned(),
        None => t.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// Length of `2026-11-27T09:34:31.049Z`.
const ISO_LEN: usize = 24;

/// Where `2026-11-27T09:34:31.049Z` has its punctuation, and which.
const ISO_PUNCTUATION: [(usize, u8); 7] = [
    (4, b'-'),
    (7, b'-'),
    (10, b'T'),
    (13, b':'),
    (16, b':'),
    (19, b'.'),
    (23, b'Z'),
];

/// Writes `t` as `2026-11-27T09:34:31.049Z` into `buf` without allocating (every get-session
/// writes five of these). `None` for what the fixed layout cannot hold, years outside
/// 0..=9999 and leap seconds, which [`format`] leaves to chrono.
fn write_iso<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; ISO_LEN]) -> Option<&'b str> {
    use chrono::{Datelike as _, Timelike as _};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, value: u32, digits: u32| {
        for i in 0..digits {
            let d = value / 10u32.pow(digits - 1 - i) % 10;
            buf[at + i as usize] = b'0' + d as u8;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    put(20, nanos / 1_000_000, 3);
    for (at, c) in ISO_PUNCTUATION {
        buf[at] = c;
    }
    std::str::from_utf8(buf).ok()
}

/// Reads exactly `2026-11-27T09:34:31.049Z`, the layout Better Auth and Portcullis store, in
/// a few dozen instructions; anything else is left to chrono's parsers.
fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    let b: &[u8; ISO_LEN] = s.as_bytes().try_into().ok()?;
    if !ISO_PUNCTUATION.iter().all(|&(at, c)| b[at] == c) {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<u32> {
        b[from..from + len].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 2)?, num(8, 2)?)?;
    let time = date.and_hms_milli_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?, num(20, 3)?)?;
    Some(time.and_utc())
}

/// Parses RFC 3339 (any offset, any fraction), SQLite's `YYYY-MM-DD HH:MM:SS[.fff]` (taken as
/// UTC), or milliseconds since the epoch.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_iso(s) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    s.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// Serde for `DateTime<Utc>` fields in Better Auth's format.
pub mod serde_iso {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `2026-11-27T09:34:31.049Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; super::ISO_LEN];
        match super::write_iso(t, &mut buf) {
            Some(iso) => s.serialize_str(iso),
            None => s.serialize_str(&super::format(t)),
        }
    }

    /// Reads anything [`super::parse`] reads.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        super::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
    }

    /// The same for `Option<DateTime<Utc>>`.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the timestamp or `null`.
        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        /// Reads a timestamp or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.map(|s| {
                super::super::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
            })
            .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        let t = parse("2026-11-27T09:34:31.049Z").unwrap();
        assert_eq!(format(&t), "2026-11-27T09:34:31.049Z");
        let t = parse("2026-11-27T10:34:31.0491+01:00").unwrap();
        assert_eq!(format(&t), "2026-11-27T09:34:31.049Z");
        assert_eq!(
            format(&parse("2026-11-27 09:34:31").unwrap()),
            "2026-11-27T09:34:31.000Z"
        );
        assert_eq!(
            format(&parse("1795772071049").unwrap()),
            "2026-11-27T09:34:31.049Z"
        );
        assert!(parse("yesterday").is_none());
    }

    /// The hand-written layout agrees with chrono both ways, over the years Better Auth's
    /// data spans and the edges of the fixed layout.
    #[test]
    fn the_fast_layout_agrees_with_chrono() {
        let mut ms: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
        let last: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let mut seen = 0;
        let mut step: i64 = 1;
        while ms <= last {
            let t = DateTime::from_timestamp_millis(ms).expect("in range");
            let by_chrono = t.to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(format(&t), by_chrono);
            assert_eq!(parse_iso(&by_chrono), Some(t), "{by_chrono}");
            assert_eq!(parse(&by_chrono), Some(t));
            // A varying stride through every field's carry.
            step = (step * 7919 + 104_729) % 9_999_999_937;
            ms += step.max(1);
            seen += 1;
        }
        assert!(seen > 40_000, "{seen}");
        for edge in [0, -1, last, -62_167_219_200_000, 951_782_400_000] {
            let t = DateTime::from_timestamp_millis(edge).expect("in range");
            assert_eq!(format(&t), t.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        // Outside the layout: chrono writes it.
        let far = DateTime::from_timestamp_millis(253_402_300_800_000).expect("in range");
        assert_eq!(format(&far), "+10000-01-01T00:00:00.000Z");
        // The fixed layout refuses what is not a real instant, and so does parse.
        for bad in [
            "2026-02-30T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-11-27T24:00:00.000Z",
            "2026-11-27T09:34:31.04xZ",
            "2026-11-27T09:34:31+049Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
            assert_eq!(parse(bad), None, "{bad}");
        }
        // Sub-millisecond precision is cut, as JavaScript's toISOString() does.
        let t = parse("2026-11-27T09:34:31.049999Z").unwrap();
        assert_eq!(format(&t), "2026-11-27T09:34:31.049Z");
    }
}
