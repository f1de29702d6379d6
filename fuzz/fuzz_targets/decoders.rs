//! The decoders of values a client controls: cookie headers, signed cookies, the three
//! cookie-cache formats (compact, JWT, JWE), verification-link JWTs, encrypted values
//! (`$ba$` envelopes), and redirect targets. None may panic; none may accept what was not
//! signed with the secret.

#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::crypto::Secret;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    cookie_header: &'a str,
    now: i64,
}

fuzz_target!(|input: Input<'_>| {
    // Forging needs the secret: nothing the fuzzer writes verifies.
    assert_eq!(portcullis::fuzzing::cookie_cache(input.text, input.now), 0);
    assert!(!portcullis::fuzzing::jwt(input.text, input.now));
    let _ = portcullis::fuzzing::decrypt(input.text);

    let secret = Secret::new("the-fuzzing-secret-0123456789abcdef0123456789").unwrap();
    assert!(secret.unsign(input.text).is_none());
    let signed = secret.sign(input.text);
    assert_eq!(secret.unsign(&signed), Some(input.text));

    if let Ok(value) = HeaderValue::from_str(input.cookie_header) {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        for name in [
            "better-auth.session_token",
            "better-auth.session_data",
            input.text,
        ] {
            let _ = portcullis::cookies::get_cookie(&headers, name);
            let _ = portcullis::cookies::get_chunked_cookie(&headers, name);
        }
        let _ = portcullis::cookies::cookie_names(&headers);
    }

    let (redirect, origin) = portcullis::fuzzing::redirect(input.text);
    // Nothing on another host passes, however it is spelt.
    // (URL parsing drops leading and trailing spaces and control characters, as browsers do.)
    let spelt = input.text.trim_matches(|c: char| c <= ' ');
    if redirect && !spelt.starts_with('/') {
        let lower = spelt.to_ascii_lowercase();
        assert!(
            lower.contains("example.com")
                || lower.contains("localhost")
                || lower.starts_with("myapp:"),
            "{:?}",
            input.text
        );
    }
    let _ = origin;
});
