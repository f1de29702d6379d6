//! Input checks shared by plugins.

/// Whether `email` is an address Better Auth's validator (zod's `email()`) accepts: a local
/// part of letters, digits and `_ ' + - .` (not starting with a dot, not ending with a dot
/// or quote), one `@`, a domain of letter/digit/hyphen labels ending in a TLD of two or more
/// letters, and no `..` anywhere. CR, LF, spaces, commas and angle brackets never pass.
pub fn is_valid_email(email: &str) -> bool {
    if email.contains("..") {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_'+-.".contains(&b))
        && local
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b));
    if !local_ok {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    !rest.is_empty()
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && rest.iter().all(|l| {
            l.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::is_valid_email;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co",
            "o'neil@x.io",
            "A_B-c@EX-1.org",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_what_zod_refuses_and_anything_injectable() {
        for bad in [
            "",
            "not-an-email",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@b..com",
            "a@-b.com",
            "a b@c.com",
            "a@b.com\r\nBcc: x@y.com",
            "a@x.com,b@y.com",
            "Name <a@b.com>",
            "a@b@c.com",
            "a@b.c0m",
            "a@b.com.",
        ] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
    }
}
