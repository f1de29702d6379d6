//! The client's address: from the socket by default, or from a configured header
//! (`X-Forwarded-For` behind a proxy) when it holds exactly one valid address.
//! Addresses are normalised so every spelling of one client counts as one: IPv4-mapped IPv6
//! becomes IPv4, other IPv6 is masked to its /64.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;

/// The peer address of the connection a request came on. Server adapters put it in the
/// request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Normalises an address: IPv4-mapped IPv6 to IPv4; IPv6 to its /64 network, fully expanded.
pub(crate) fn normalize(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let masked = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                masked
                    .segments()
                    .iter()
                    .map(|x| format!("{x:04x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }
        },
    }
}

/// The client address for a request: the first configured header holding exactly one valid
/// address, else the socket peer.
pub(crate) fn client_ip(
    headers: &HeaderMap,
    header_names: &[String],
    peer: Option<SocketAddr>,
) -> Option<String> {
    for name in header_names {
        if let Some(value) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            let value = value.trim();
            if value.contains(',') {
                continue;
            }
            if let Ok(ip) = value.parse::<IpAddr>() {
                return Some(normalize(ip));
            }
        }
    }
    peer.map(|p| normalize(p.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_address_is_one_client() {
        let a = normalize("2001:db8::1".parse().unwrap());
        let b = normalize("2001:0DB8:0000:0000:0000:0000:0000:0002".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:0db8:0000:0000:0000:0000:0000:0000");
        assert_eq!(normalize("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }

    #[test]
    fn header_must_hold_exactly_one_address() {
        let names = vec!["x-forwarded-for".to_owned()];
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(
            client_ip(&h, &names, Some(peer)).as_deref(),
            Some("127.0.0.1")
        );
        h.insert("x-forwarded-for", "240.1.2.3".parse().unwrap());
        assert_eq!(
            client_ip(&h, &names, Some(peer)).as_deref(),
            Some("240.1.2.3")
        );
        h.insert("x-forwarded-for", "240.1.2.3, 10.0.0.1".parse().unwrap());
        assert_eq!(
            client_ip(&h, &names, Some(peer)).as_deref(),
            Some("127.0.0.1")
        );
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(&h, &names, None), None);
        // Without configuration the header is never trusted.
        h.insert("x-forwarded-for", "240.1.2.3".parse().unwrap());
        assert_eq!(client_ip(&h, &[], Some(peer)).as_deref(), Some("127.0.0.1"));
    }
}
