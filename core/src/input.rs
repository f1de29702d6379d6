//! The shape of an endpoint's body and query, as Better Auth declares it with zod: checked by
//! the pipeline after the before hooks and before the session is read or the handler runs
//! (better-call's order), and refused with zod's own messages, so an app that shows or parses
//! `VALIDATION_ERROR` messages sees Better Auth's words:
//!
//! ```text
//! 400 {"message":"[body.email] Invalid input: expected string, received undefined; [body.password] …","code":"VALIDATION_ERROR"}
//! ```
//!
//! ```
//! use portcullis::{Endpoint, Reply, Shape, Type};
//!
//! let endpoint = Endpoint::post("verifyThing", "/verify-thing", |_ctx| async { Ok(Reply::json(true)) })
//!     .body_shape(Shape::object().field("code", Type::String).optional_field("trust", Type::Boolean));
//! # let _ = endpoint;
//! ```

use serde_json::Value;

use crate::error::ApiError;

/// What one field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Type {
    /// A string (`z.string()`).
    String,
    /// A string of at least one character (`z.string().nonempty()`).
    NonEmptyString,
    /// An email address (`z.email()`).
    Email,
    /// A boolean (`z.boolean()`).
    Boolean,
    /// One of these strings (`z.enum([...])`).
    OneOf(&'static [&'static str]),
    /// Anything, as a coerced query flag accepts (`z.coerce.boolean()`).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `z.object({...})`: unknown keys are dropped, never refused.
    Object,
    /// `z.record(z.string(), z.any())`: any object.
    Record,
    /// `z.object({...}).and(z.record(...))`: sign-up's body (a non-object fails both sides).
    ObjectAndRecord,
}

/// The shape of a body or a query: an object with typed fields, or any object.
#[derive(Debug, Clone)]
pub struct Shape {
    kind: Kind,
    optional: bool,
    fields: Vec<(&'static str, Type, bool)>,
}

impl Shape {
    /// An object (`z.object`); fields are added with [`Shape::field`] and
    /// [`Shape::optional_field`], in the order zod reports them.
    pub fn object() -> Self {
        Self {
            kind: Kind::Object,
            optional: false,
            fields: Vec::new(),
        }
    }

    /// Any object (`z.record(z.string(), z.any())`).
    pub fn record() -> Self {
        Self {
            kind: Kind::Record,
            ..Self::object()
        }
    }

    /// An object that also keeps its unknown keys (`z.object({...}).and(z.record(...))`).
    pub fn object_and_record() -> Self {
        Self {
            kind: Kind::ObjectAndRecord,
            ..Self::object()
        }
    }

    /// The whole body (or query) may be absent.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// A required field.
    pub fn field(mut self, name: &'static str, ty: Type) -> Self {
        self.fields.push((name, ty, false));
        self
    }

    /// A field that may be absent (but not `null`: zod's `.optional()`).
    pub fn optional_field(mut self, name: &'static str, ty: Type) -> Self {
        self.fields.push((name, ty, true));
        self
    }

    /// The issues of `value` (`None`: absent), each `[place.field] message`. `null_is_absent`
    /// (server-side calls, where Rust's `None` serialises as `null`) lets an optional field be
    /// `null`.
    fn issues(&self, value: Option<&Value>, place: &str, null_is_absent: bool) -> Vec<String> {
        let mut out = Vec::new();
        let object = match value {
            Some(Value::Object(map)) => map,
            None if self.optional => return out,
            other => {
                let received = received(other);
                if self.kind != Kind::Record {
                    out.push(format!(
                        "[{place}] Invalid input: expected object, received {received}"
                    ));
                }
                if self.kind != Kind::Object {
                    out.push(format!(
                        "[{place}] Invalid input: expected record, received {received}"
                    ));
                }
                return out;
            }
        };
        for (name, ty, optional) in &self.fields {
            let v = object
                .get(*name)
                .filter(|v| !(null_is_absent && *optional && v.is_null()));
            // (A `OneOf` field may be absent: Better Auth's enums here all have a default.)
            if v.is_none() && (*optional || matches!(ty, Type::OneOf(_) | Type::Any)) {
                continue;
            }
            if let Some(message) = type_issue(*ty, v) {
                out.push(format!("[{place}.{name}] {message}"));
                // zod runs `.nonempty()` on anything with a length, after the type issue.
                if *ty == Type::NonEmptyString
                    && v.is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
                {
                    out.push(format!(
                        "[{place}.{name}] Too small: expected array to have >=1 items"
                    ));
                }
            }
        }
        out
    }
}

fn type_issue(ty: Type, v: Option<&Value>) -> Option<String> {
    let expected = match ty {
        Type::Any => return None,
        Type::OneOf(values) => {
            let ok = matches!(v, Some(Value::String(s)) if values.contains(&s.as_str()));
            if ok {
                return None;
            }
            let list: Vec<String> = values.iter().map(|s| format!("\"{s}\"")).collect();
            return Some(if values.len() == 1 {
                format!("Invalid input: expected {}", list[0])
            } else {
                format!("Invalid option: expected one of {}", list.join("|"))
            });
        }
        Type::Boolean => "boolean",
        Type::String | Type::NonEmptyString | Type::Email => "string",
    };
    match (ty, v) {
        (Type::Boolean, Some(Value::Bool(_))) => None,
        (Type::String, Some(Value::String(_))) => None,
        (Type::NonEmptyString, Some(Value::String(s))) => s
            .is_empty()
            .then(|| "Too small: expected string to have >=1 characters".to_owned()),

        (Type::Email, Some(Value::String(s))) => {
            (!crate::validate::is_valid_email(s)).then(|| "Invalid email address".to_owned())
        }
        _ => Some(format!(
            "Invalid input: expected {expected}, received {}",
            received(v)
        )),
    }
}

/// zod's name for what it was given.
fn received(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// The query as better-call hands it to zod: each key a string, a repeated key an array.
fn query_value(query: &[(String, String)]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in query {
        match map.get_mut(k) {
            None => {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            Some(Value::Array(a)) => a.push(Value::String(v.clone())),
            Some(first) => {
                let f = first.take();
                *first = Value::Array(vec![f, Value::String(v.clone())]);
            }
        }
    }
    Value::Object(map)
}

/// better-call's check: the body first, then (only if the body passes) the query; every issue
/// of the failing one, joined with `; `.
pub(crate) fn check(
    body_shape: Option<&Shape>,
    query_shape: Option<&Shape>,
    body: Option<&Value>,
    query: &[(String, String)],
    via_http: bool,
) -> Result<(), ApiError> {
    if let Some(shape) = body_shape {
        let issues = shape.issues(body, "body", !via_http);
        if !issues.is_empty() {
            return Err(ApiError::validation(issues.join("; ")));
        }
    }
    if let Some(shape) = query_shape {
        // better-call always builds the query object, `{}` when the URL has none.
        let issues = shape.issues(Some(&query_value(query)), "query", !via_http);
        if !issues.is_empty() {
            return Err(ApiError::validation(issues.join("; ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(shape: &Shape, body: Option<Value>) -> Option<String> {
        check(Some(shape), None, body.as_ref(), &[], true)
            .err()
            .map(|e| e.message().to_owned())
    }

    #[test]
    fn reports_every_field_in_order_with_zods_words() {
        let shape = Shape::object()
            .field("email", Type::String)
            .field("password", Type::String)
            .optional_field("rememberMe", Type::Boolean);
        assert_eq!(
            message(&shape, Some(json!({"email": "a", "password": "b"}))),
            None
        );
        assert_eq!(
            message(&shape, Some(json!({"password": 1, "rememberMe": null}))).as_deref(),
            Some(
                "[body.email] Invalid input: expected string, received undefined; \
                 [body.password] Invalid input: expected string, received number; \
                 [body.rememberMe] Invalid input: expected boolean, received null"
            )
        );
        assert_eq!(
            message(&shape, None).as_deref(),
            Some("[body] Invalid input: expected object, received undefined")
        );
        assert_eq!(message(&shape.clone().optional(), None), None);
        assert_eq!(
            message(&shape.optional(), Some(json!([]))).as_deref(),
            Some("[body] Invalid input: expected object, received array")
        );
    }

    #[test]
    fn records_emails_enums_and_the_sign_up_intersection() {
        assert_eq!(
            message(&Shape::record(), Some(json!("x"))).as_deref(),
            Some("[body] Invalid input: expected record, received string")
        );
        assert_eq!(
            message(&Shape::object_and_record(), None).as_deref(),
            Some(
                "[body] Invalid input: expected object, received undefined; \
                 [body] Invalid input: expected record, received undefined"
            )
        );
        let shape = Shape::object()
            .field("email", Type::Email)
            .field("password", Type::NonEmptyString)
            .field("method", Type::OneOf(&["otp", "totp"]));
        assert_eq!(
            message(
                &shape,
                Some(json!({"email": "nope", "password": "", "method": null}))
            )
            .as_deref(),
            Some(
                "[body.email] Invalid email address; \
                 [body.password] Too small: expected string to have >=1 characters; \
                 [body.method] Invalid option: expected one of \"otp\"|\"totp\""
            )
        );
    }

    #[test]
    fn an_empty_array_for_a_nonempty_string_gets_both_issues() {
        let shape = Shape::object().field("password", Type::NonEmptyString);
        assert_eq!(
            message(&shape, Some(json!({"password": []}))).as_deref(),
            Some(
                "[body.password] Invalid input: expected string, received array; \
                 [body.password] Too small: expected array to have >=1 items"
            )
        );
    }

    #[test]
    fn a_repeated_query_key_is_an_array() {
        let shape = Shape::object().field("token", Type::String);
        let q = vec![
            ("token".to_owned(), "a".to_owned()),
            ("token".to_owned(), "b".to_owned()),
        ];
        let e = check(None, Some(&shape), None, &q, true).unwrap_err();
        assert_eq!(
            e.message(),
            "[query.token] Invalid input: expected string, received array"
        );
        let e = check(None, Some(&shape), None, &[], true).unwrap_err();
        assert_eq!(
            e.message(),
            "[query.token] Invalid input: expected string, received undefined"
        );
    }
}
