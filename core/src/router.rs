//! Routing: exact paths with `:param` segments, as Better Auth's router matches them.
//! A path with an empty segment (`//`), a trailing slash, an unknown path or a wrong method
//! matches nothing.

use std::collections::HashMap;

use http::Method;

use crate::plugin::Endpoint;

#[derive(Debug, Default)]
pub(crate) struct Router {
    exact: HashMap<String, Vec<(Method, usize)>>,
    patterns: Vec<(Vec<Segment>, Method, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

fn segments(path: &str) -> Option<std::str::Split<'_, char>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() || rest.ends_with('/') || rest.contains("//") {
        return None;
    }
    Some(rest.split('/'))
}

impl Router {
    /// Adds endpoint `index`; a second endpoint on the same method and path is an error.
    pub(crate) fn add(&mut self, endpoint: &Endpoint, index: usize) -> Result<(), String> {
        let segs: Vec<Segment> = segments(&endpoint.path)
            .ok_or_else(|| format!("invalid endpoint path `{}`", endpoint.path))?
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        let dynamic = segs.iter().any(|s| matches!(s, Segment::Param(_)));
        for method in &endpoint.methods {
            let clash = if dynamic {
                self.patterns
                    .iter()
                    .any(|(p, m, _)| p == &segs && m == method)
            } else {
                self.exact
                    .get(endpoint.path.as_ref())
                    .is_some_and(|v| v.iter().any(|(m, _)| m == method))
            };
            if clash {
                return Err(format!("two endpoints answer {method} {}", endpoint.path));
            }
            if dynamic {
                self.patterns.push((segs.clone(), method.clone(), index));
            } else {
                self.exact
                    .entry(endpoint.path.to_string())
                    .or_default()
                    .push((method.clone(), index));
            }
        }
        Ok(())
    }

    /// The endpoint for `method path` and its path parameters (still percent-encoded).
    pub(crate) fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(usize, Vec<(String, String)>)> {
        if let Some(routes) = self.exact.get(path) {
            return routes
                .iter()
                .find(|(m, _)| m == method)
                .map(|(_, i)| (*i, Vec::new()));
        }
        let parts: Vec<&str> = segments(path)?.collect();
        'outer: for (pattern, m, index) in &self.patterns {
            if m != method || pattern.len() != parts.len() {
                continue;
            }
            let mut params = Vec::new();
            for (seg, part) in pattern.iter().zip(&parts) {
                match seg {
                    Segment::Literal(l) if l == part => {}
                    Segment::Literal(_) => continue 'outer,
                    Segment::Param(name) => params.push((name.clone(), (*part).to_owned())),
                }
            }
            return Some((*index, params));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Reply;

    fn ep(methods: &[Method], path: &'static str) -> Endpoint {
        Endpoint::new("t", methods, path, |_| async { Ok(Reply::json(true)) })
    }

    #[test]
    fn matches_exact_and_param_paths_only() {
        let mut r = Router::default();
        r.add(&ep(&[Method::GET], "/get-session"), 0).unwrap();
        r.add(&ep(&[Method::GET], "/reset-password/:token"), 1)
            .unwrap();
        assert_eq!(r.find(&Method::GET, "/get-session"), Some((0, vec![])));
        assert_eq!(r.find(&Method::POST, "/get-session"), None);
        assert_eq!(r.find(&Method::GET, "/get-session/"), None);
        assert_eq!(r.find(&Method::GET, "//get-session"), None);
        assert_eq!(r.find(&Method::GET, "/"), None);
        assert_eq!(r.find(&Method::GET, ""), None);
        assert_eq!(
            r.find(&Method::GET, "/reset-password/abc"),
            Some((1, vec![("token".into(), "abc".into())]))
        );
        assert_eq!(r.find(&Method::GET, "/reset-password/abc/"), None);
        assert_eq!(r.find(&Method::GET, "/reset-password//x"), None);
        assert_eq!(r.find(&Method::GET, "/reset-password"), None);
    }

    #[test]
    fn refuses_two_endpoints_on_one_route() {
        let mut r = Router::default();
        r.add(&ep(&[Method::GET, Method::POST], "/x"), 0).unwrap();
        assert!(r.add(&ep(&[Method::POST], "/x"), 1).is_err());
        assert!(r.add(&ep(&[Method::PUT], "/x"), 2).is_ok());
        assert!(r.add(&ep(&[Method::GET], "/x/"), 3).is_err());
    }
}
