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
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses RFC 3339 (any offset, any fraction), SQLite's `YYYY-MM-DD HH:MM:SS[.fff]` (taken as
/// UTC), or milliseconds since the epoch.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
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
        s.serialize_str(&super::format(t))
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
                Some(t) => s.serialize_str(&super::super::format(t)),
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
}
