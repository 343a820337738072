//! JSON request bodies: parsing with upstream-style errors, and typed field readers
//! that turn a wrong type or value into a 400 naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::store::Obj;

/// A request body parsed as JSON; an empty body is `null`.
#[derive(Debug, Clone)]
pub(crate) struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

impl Body {
    /// The body as an object; no body counts as an empty object.
    pub(crate) fn into_object(self) -> ApiResult<Obj> {
        match self.0 {
            Value::Null => Ok(Obj::new()),
            Value::Object(map) => Ok(map),
            _ => Err(ApiError::bad_request("the body must be a JSON object")),
        }
    }
}

fn wrong(key: &str, want: &str) -> ApiError {
    ApiError::bad_request(format!("{key} must be {want}"))
}

/// A string field (absent or null gives `None`).
pub(crate) fn opt_str(o: &Obj, key: &str) -> ApiResult<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(key, "a string")),
    }
}

/// A string field that must be present and not blank.
pub(crate) fn req_str(o: &Obj, key: &str) -> ApiResult<String> {
    match opt_str(o, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::required(key)),
    }
}

fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An integer id field; a numeric string is accepted too.
pub(crate) fn opt_id(o: &Obj, key: &str) -> ApiResult<Option<u64>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_id(v)
            .map(Some)
            .ok_or_else(|| wrong(key, "an integer id")),
    }
}

fn list<'a>(o: &'a Obj, key: &str) -> ApiResult<&'a [Value]> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(wrong(key, "an array")),
    }
}

pub(crate) fn id_list(o: &Obj, key: &str) -> ApiResult<Vec<u64>> {
    list(o, key)?
        .iter()
        .map(|v| as_id(v).ok_or_else(|| wrong(key, "an array of integer ids")))
        .collect()
}

pub(crate) fn str_list(o: &Obj, key: &str) -> ApiResult<Vec<String>> {
    list(o, key)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| wrong(key, "an array of strings"))
        })
        .collect()
}

pub(crate) fn opt_bool(o: &Obj, key: &str) -> ApiResult<Option<bool>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong(key, "true or false")),
    }
}

pub(crate) fn opt_object(o: &Obj, key: &str) -> ApiResult<Option<Obj>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(wrong(key, "an object")),
    }
}

/// Checks a value against an enum (case-insensitive) and returns its canonical form.
pub(crate) fn check_enum(key: &str, value: &str, allowed: &[&str]) -> ApiResult<String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value.trim()))
        .map(|a| (*a).to_owned())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{key} must be one of {}, got '{value}'",
                allowed.join(", ")
            ))
        })
}

pub(crate) fn opt_enum(o: &Obj, key: &str, allowed: &[&str]) -> ApiResult<Option<String>> {
    opt_str(o, key)?
        .map(|v| check_enum(key, &v, allowed))
        .transpose()
}

/// A date (`YYYY-MM-DD`) or RFC 3339 timestamp field, kept as given.
pub(crate) fn opt_time(o: &Obj, key: &str) -> ApiResult<Option<String>> {
    let Some(raw) = opt_str(o, key)? else {
        return Ok(None);
    };
    check_time(key, &raw)?;
    Ok(Some(raw))
}

pub(crate) fn check_time(key: &str, raw: &str) -> ApiResult<()> {
    let ok = raw.parse::<Timestamp>().is_ok() || raw.parse::<Date>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(wrong(
            key,
            "a date (YYYY-MM-DD) or an RFC 3339 timestamp like 2026-03-20T22:00:00Z",
        ))
    }
}

/// Rejects keys a partial update cannot set, naming the ones it can.
pub(crate) fn only_keys(o: &Obj, allowed: &[&str]) -> ApiResult<()> {
    if o.is_empty() {
        return Err(ApiError::bad_request(format!(
            "nothing to update; send any of {}",
            allowed.join(", ")
        )));
    }
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "field '{k}' cannot be updated here; send any of {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}
