//! Query-string handling shared by the list endpoints: lenient parsing (arrays as
//! `k=a&k=b`, `k[]=a` or `k=a,b`), page/per_page checks, cursor tokens, sorting and
//! `search_key` matching.

use std::cmp::Ordering;
use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::store::Obj;

/// Page size when the caller gives none, and the largest one accepted.
const DEFAULT_PER_PAGE: usize = 25;
const MAX_PER_PAGE: usize = 100;

/// The decoded query string, in order, with repeated keys kept.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::parse(parts.uri.query().unwrap_or("")))
    }
}

fn decode(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

impl Params {
    pub(crate) fn parse(query: &str) -> Self {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(pair), String::new()),
            })
            .collect();
        Self(pairs)
    }

    /// The first non-empty value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// Every value of `key` or `key[]`, comma lists split.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        let bracketed = format!("{key}[]");
        self.0
            .iter()
            .filter(|(k, _)| *k == key || *k == bracketed)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub(crate) fn u64(&self, key: &str) -> ApiResult<Option<u64>> {
        self.get(key).map(|v| parse_u64(key, v)).transpose()
    }

    pub(crate) fn u64_list(&self, key: &str) -> ApiResult<Vec<u64>> {
        self.list(key).iter().map(|v| parse_u64(key, v)).collect()
    }

    pub(crate) fn bool(&self, key: &str) -> ApiResult<Option<bool>> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ApiError::bad_request(format!(
                    "{key} must be true or false, got '{v}'"
                ))),
            })
            .transpose()
    }

    /// The `search_key`, lower-cased for matching.
    pub(crate) fn search_key(&self) -> Option<String> {
        self.get("search_key").map(str::to_lowercase)
    }
}

fn parse_u64(key: &str, raw: &str) -> ApiResult<u64> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{key} must be an integer, got '{raw}'")))
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) offset: usize,
    pub(crate) per_page: usize,
}

fn per_page(params: &Params) -> ApiResult<usize> {
    let Some(raw) = params.get("per_page") else {
        return Ok(DEFAULT_PER_PAGE);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "per_page must be an integer from 1 to {MAX_PER_PAGE}, got '{raw}'"
        ))),
    }
}

fn page_number(params: &Params, required: bool) -> ApiResult<usize> {
    let Some(raw) = params.get("page") else {
        return if required {
            Err(ApiError::required("page"))
        } else {
            Ok(1)
        };
    };
    match raw.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "page must be an integer of at least 1 (pages are 1-based), got '{raw}'"
        ))),
    }
}

/// The page a plain paged list asks for; `page` may be required, as upstream.
pub(crate) fn window(params: &Params, page_required: bool) -> ApiResult<Window> {
    let per_page = per_page(params)?;
    let page = page_number(params, page_required)?;
    let offset = (page - 1).saturating_mul(per_page);
    Ok(Window { offset, per_page })
}

/// Like [`window`], but a `next_page_token` (from an earlier answer) wins over `page`.
pub(crate) fn cursor_window(params: &Params) -> ApiResult<Window> {
    let Some(token) = params.get("next_page_token") else {
        return window(params, true);
    };
    let per_page = per_page(params)?;
    let offset = decode_token(token)
        .ok_or_else(|| ApiError::bad_request(format!("invalid next_page_token '{token}'")))?;
    Ok(Window { offset, per_page })
}

fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("offset:")?.parse().ok()
}

/// The list envelope `{data, total_count, total_pages}` for one window of `items`.
pub(crate) fn page(items: Vec<Value>, w: Window) -> Value {
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(w.offset).take(w.per_page).collect();
    json!({
        "data": data,
        "total_count": total,
        "total_pages": total.div_ceil(w.per_page),
    })
}

/// [`page`] plus `next_page_token` (null on the last page).
pub(crate) fn cursor_page(items: Vec<Value>, w: Window) -> Value {
    let total = items.len();
    let next = w.offset.saturating_add(w.per_page);
    let token = (next < total).then(|| encode_token(next));
    let mut body = page(items, w);
    if let Some(map) = body.as_object_mut() {
        map.insert("next_page_token".into(), json!(token));
    }
    body
}

/// True when any of `fields` of `rec` contains the (lower-cased) search key.
pub(crate) fn matches_search(rec: &Obj, fields: &[&str], key: Option<&str>) -> bool {
    let Some(key) = key else { return true };
    fields.iter().any(|f| {
        rec.get(*f)
            .and_then(Value::as_str)
            .is_some_and(|s| s.to_lowercase().contains(key))
    })
}

/// One sort key: field name and direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub(crate) field: String,
    pub(crate) descending: bool,
}

fn direction(raw: &str) -> ApiResult<bool> {
    match raw.to_ascii_uppercase().as_str() {
        "DESC" => Ok(true),
        "ASC" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "sort direction must be ASC or DESC, got '{raw}'"
        ))),
    }
}

/// Reads `sort` (`field:DIR,field:DIR`) or `sort_order` (`CREATED_AT_DESC`).
pub(crate) fn sort_keys(params: &Params, default: SortKey) -> ApiResult<Vec<SortKey>> {
    if let Some(sort) = params.get("sort") {
        return sort
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|part| {
                let (field, dir) = part.split_once(':').unwrap_or((part, "ASC"));
                Ok(SortKey {
                    field: field.trim().to_owned(),
                    descending: direction(dir.trim())?,
                })
            })
            .collect();
    }
    if let Some(order) = params.get("sort_order") {
        let (field, dir) = order.rsplit_once('_').ok_or_else(|| {
            ApiError::bad_request(format!(
                "sort_order must look like CREATED_AT_DESC, got '{order}'"
            ))
        })?;
        return Ok(vec![SortKey {
            field: field.to_ascii_lowercase(),
            descending: direction(dir)?,
        }]);
    }
    Ok(vec![default])
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Null) | None, Some(Value::Null) | None) => Ordering::Equal,
        (Some(Value::Null) | None, _) => Ordering::Greater,
        (_, Some(Value::Null) | None) => Ordering::Less,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Sorts records by the keys; ties keep their order.
pub(crate) fn sort_records(items: &mut [Obj], keys: &[SortKey]) {
    items.sort_by(|a, b| {
        keys.iter()
            .map(|k| {
                let ord = compare_values(a.get(&k.field), b.get(&k.field));
                if k.descending { ord.reverse() } else { ord }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_accept_repeats_brackets_and_commas() {
        let p = Params::parse("ids=1&ids%5B%5D=2&ids=3,4&other=x");
        assert_eq!(p.list("ids"), ["1", "2", "3", "4"]);
    }

    #[test]
    fn cursor_tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_token(&encode_token(50)), Some(50));
        assert_eq!(decode_token("not-a-token"), None);
    }

    #[test]
    fn per_page_bounds_are_enforced() {
        assert!(window(&Params::parse("page=1&per_page=101"), true).is_err());
        assert!(window(&Params::parse("page=0"), true).is_err());
        assert!(window(&Params::parse(""), true).is_err());
        let w = window(&Params::parse("page=3&per_page=10"), true);
        assert_eq!(w.ok().map(|w| w.offset), Some(20));
    }
}
