//! The filter-array bodies of the `POST …/list` endpoints:
//! `[{ "attribute": "status", "operator": "EQUALS", "values": [{ "value": "OPEN" }] }]`,
//! matched against a record's top-level fields.

use std::cmp::Ordering;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::store::Obj;

/// The comparison a filter applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    AnyOf,
    NotAnyOf,
    Contains,
    StartsWith,
    EndsWith,
    IsNull,
    IsNotNull,
    Between,
    OnOrBefore,
    OnOrAfter,
}

const OPERATORS: &str = "EQUALS, NOT_EQUALS, IS_ANY_OF, IN, IS_NOT_ANY_OF, CONTAINS, \
TEXT_CONTAINS, STARTS_WITH, ENDS_WITH, IS_NULL, IS_NOT_NULL, IS_BETWEEN, IS_ON_OR_BEFORE, \
IS_ON_OR_AFTER";

impl Op {
    fn parse(raw: &str) -> ApiResult<Self> {
        let op = match raw.to_ascii_uppercase().as_str() {
            "EQUALS" => Self::Equals,
            "NOT_EQUALS" => Self::NotEquals,
            "IS_ANY_OF" | "IN" => Self::AnyOf,
            "IS_NOT_ANY_OF" | "NOT_IN" => Self::NotAnyOf,
            "CONTAINS" | "TEXT_CONTAINS" => Self::Contains,
            "STARTS_WITH" => Self::StartsWith,
            "ENDS_WITH" => Self::EndsWith,
            "IS_NULL" => Self::IsNull,
            "IS_NOT_NULL" => Self::IsNotNull,
            "IS_BETWEEN" => Self::Between,
            "IS_ON_OR_BEFORE" => Self::OnOrBefore,
            "IS_ON_OR_AFTER" => Self::OnOrAfter,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown filter operator '{raw}'; supported: {OPERATORS}"
                )));
            }
        };
        Ok(op)
    }

    /// How many values the operator needs: (at least, at most).
    fn arity(self) -> (usize, usize) {
        match self {
            Self::IsNull | Self::IsNotNull => (0, usize::MAX),
            Self::Between => (2, 2),
            Self::Equals | Self::NotEquals | Self::OnOrBefore | Self::OnOrAfter => (1, 1),
            _ => (1, usize::MAX),
        }
    }

    fn is_time(self) -> bool {
        matches!(self, Self::Between | Self::OnOrBefore | Self::OnOrAfter)
    }
}

/// One parsed filter.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    field: String,
    op: Op,
    values: Vec<Value>,
}

/// Which attributes a collection can be filtered on, and the aliases that map
/// request-body names (`assignee`) to record fields (`assignee_id`).
pub(crate) struct Attributes {
    pub fields: &'static [&'static str],
    pub aliases: &'static [(&'static str, &'static str)],
}

impl Attributes {
    fn resolve(&self, raw: &str) -> ApiResult<String> {
        let lower = raw.trim().to_ascii_lowercase();
        if let Some((_, field)) = self.aliases.iter().find(|(alias, _)| *alias == lower) {
            return Ok((*field).to_owned());
        }
        if self.fields.contains(&lower.as_str()) {
            return Ok(lower);
        }
        Err(ApiError::bad_request(format!(
            "unknown filter attribute '{raw}'; filterable: {}",
            self.fields.join(", ")
        )))
    }
}

/// Parses a filter-array body; an absent body means no filters.
pub(crate) fn parse_filters(body: &Value, attrs: &Attributes) -> ApiResult<Vec<Filter>> {
    match body {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_one(i, item, attrs))
            .collect(),
        _ => Err(ApiError::bad_request(
            "the body must be a JSON array of filters: [{\"attribute\": ..., \"operator\": ..., \"values\": [{\"value\": ...}]}]",
        )),
    }
}

fn parse_one(index: usize, item: &Value, attrs: &Attributes) -> ApiResult<Filter> {
    let obj = item
        .as_object()
        .ok_or_else(|| ApiError::bad_request(format!("filter {index} must be an object")))?;
    let text = |key: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("filter {index}: {key} is required")))
    };
    let field = attrs.resolve(text("attribute")?)?;
    let op = Op::parse(text("operator")?)?;
    let values = parse_values(index, obj.get("values"))?;
    check_values(index, op, &values)?;
    Ok(Filter { field, op, values })
}

/// `values` items may be `{ "value": x }` or a bare scalar.
fn parse_values(index: usize, raw: Option<&Value>) -> ApiResult<Vec<Value>> {
    match raw {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|v| match v {
                Value::Object(o) => o.get("value").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            })
            .collect()),
        Some(_) => Err(ApiError::bad_request(format!(
            "filter {index}: values must be an array of {{\"value\": ...}}"
        ))),
    }
}

fn check_values(index: usize, op: Op, values: &[Value]) -> ApiResult<()> {
    let (min, max) = op.arity();
    if values.len() < min || values.len() > max {
        let want = if min == max {
            format!("exactly {min}")
        } else {
            format!("at least {min}")
        };
        return Err(ApiError::bad_request(format!(
            "filter {index}: {op:?} needs {want} value(s), got {}",
            values.len()
        )));
    }
    if op.is_time() {
        for v in values {
            let text = v.as_str().unwrap_or_default();
            if parse_instant(text).is_none() {
                return Err(ApiError::bad_request(format!(
                    "filter {index}: '{v}' is not a date (YYYY-MM-DD) or RFC 3339 timestamp"
                )));
            }
        }
    }
    Ok(())
}

/// True when the record passes every filter.
pub(crate) fn matches_all(rec: &Obj, filters: &[Filter]) -> bool {
    filters.iter().all(|f| f.matches(rec.get(&f.field)))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (scalar_text(a), scalar_text(b)) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y),
        _ => a == b,
    }
}

/// The field's scalar values: a list field yields its items.
fn field_values(field: Option<&Value>) -> Vec<&Value> {
    match field {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    }
}

fn text_test(field: Option<&Value>, values: &[Value], test: fn(&str, &str) -> bool) -> bool {
    field_values(field).iter().any(|f| {
        let Some(hay) = scalar_text(f) else {
            return false;
        };
        let hay = hay.to_lowercase();
        values
            .iter()
            .filter_map(scalar_text)
            .any(|needle| test(&hay, &needle.to_lowercase()))
    })
}

impl Filter {
    fn matches(&self, field: Option<&Value>) -> bool {
        let any_equal = || {
            field_values(field)
                .iter()
                .any(|f| self.values.iter().any(|v| same(f, v)))
        };
        match self.op {
            Op::Equals | Op::AnyOf => any_equal(),
            Op::NotEquals | Op::NotAnyOf => !any_equal(),
            Op::Contains => text_test(field, &self.values, |h, n| h.contains(n)),
            Op::StartsWith => text_test(field, &self.values, |h, n| h.starts_with(n)),
            Op::EndsWith => text_test(field, &self.values, |h, n| h.ends_with(n)),
            Op::IsNull => is_empty(field),
            Op::IsNotNull => !is_empty(field),
            Op::Between | Op::OnOrBefore | Op::OnOrAfter => self.time_matches(field),
        }
    }

    fn time_matches(&self, field: Option<&Value>) -> bool {
        let Some(at) = field.and_then(Value::as_str) else {
            return false;
        };
        let cmp = |i: usize| {
            self.values
                .get(i)
                .and_then(Value::as_str)
                .and_then(|v| compare_time(at, v))
        };
        match self.op {
            Op::OnOrBefore => cmp(0).is_some_and(Ordering::is_le),
            Op::OnOrAfter => cmp(0).is_some_and(Ordering::is_ge),
            _ => cmp(0).is_some_and(Ordering::is_ge) && cmp(1).is_some_and(Ordering::is_le),
        }
    }
}

fn is_empty(field: Option<&Value>) -> bool {
    match field {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

enum Instant {
    Day(Date),
    At(Timestamp),
}

fn parse_instant(text: &str) -> Option<Instant> {
    if text.len() == 10 {
        return text.parse::<Date>().ok().map(Instant::Day);
    }
    text.parse::<Timestamp>().ok().map(Instant::At)
}

/// Compares a record's timestamp with a filter value; a bare date compares by day.
fn compare_time(field: &str, value: &str) -> Option<Ordering> {
    let at = field.parse::<Timestamp>().ok()?;
    match parse_instant(value)? {
        Instant::At(v) => Some(at.cmp(&v)),
        Instant::Day(day) => Some(at.to_zoned(jiff::tz::TimeZone::UTC).date().cmp(&day)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ATTRS: Attributes = Attributes {
        fields: &["status", "tags", "assignee_id", "created_at"],
        aliases: &[("assignee", "assignee_id")],
    };

    fn rec() -> Obj {
        let v = json!({"status": "OPEN", "tags": ["vpn"], "assignee_id": null,
                       "created_at": "2026-03-09T07:42:00Z"});
        v.as_object().cloned().unwrap_or_default()
    }

    fn check(body: Value) -> bool {
        let filters = parse_filters(&body, &ATTRS);
        assert!(filters.is_ok(), "{filters:?}");
        matches_all(&rec(), &filters.unwrap_or_default())
    }

    #[test]
    fn operators_match_top_level_fields() {
        let f = |a: &str, o: &str, v: Value| json!([{"attribute": a, "operator": o, "values": v}]);
        assert!(check(f("status", "EQUALS", json!([{"value": "open"}]))));
        assert!(!check(f(
            "status",
            "NOT_EQUALS",
            json!([{"value": "OPEN"}])
        )));
        assert!(check(f(
            "status",
            "IN",
            json!([{"value": "X"}, {"value": "OPEN"}])
        )));
        assert!(check(f("tags", "CONTAINS", json!([{"value": "VP"}]))));
        assert!(check(f("assignee", "IS_NULL", json!([]))));
        assert!(check(f(
            "created_at",
            "IS_ON_OR_AFTER",
            json!([{"value": "2026-03-09"}])
        )));
        assert!(!check(f(
            "created_at",
            "IS_ON_OR_BEFORE",
            json!([{"value": "2026-03-08"}])
        )));
    }

    #[test]
    fn bad_filters_are_rejected() {
        let bad = |body: Value| parse_filters(&body, &ATTRS).is_err();
        assert!(bad(json!({"status": "OPEN"})));
        assert!(bad(
            json!([{"attribute": "status", "operator": "LIKE", "values": []}])
        ));
        assert!(bad(
            json!([{"attribute": "colour", "operator": "EQUALS", "values": [{"value": 1}]}])
        ));
        assert!(bad(
            json!([{"attribute": "status", "operator": "EQUALS", "values": []}])
        ));
    }
}
