//! The filter-array bodies of the `POST …/list` endpoints:
//! `[{ "attribute": "status", "operator": "EQUALS", "values": [{ "value": "OPEN" }] }]`,
//! matched against a record's top-level fields.
//!
//! Every operator Atomicwork publishes for these endpoints is accepted. Text comparisons
//! ignore case; a list field (such as `tags`) matches when any of its items does.
//! - `EQUALS`, `NOT_EQUALS` (one value); `IN`/`IS_ANY_OF`, `NOT_IN`/`IS_NOT_ANY_OF`.
//! - `IS_EXACTLY`: the field's values are exactly the given ones, no more and no fewer,
//!   compared as written (case included).
//! - `CONTAINS`/`TEXT_CONTAINS`, `NOT_CONTAINS`/`TEXT_DOES_NOT_CONTAINS`, `STARTS_WITH`,
//!   `ENDS_WITH`: substring tests.
//! - `IS_NULL`, `IS_NOT_NULL`: absent, null, `""` or `[]` count as null.
//! - `GREATER_THAN`, `LESS_THAN`, `GREATER_THAN_EQUALS`, `LESS_THAN_EQUALS` (one value):
//!   numbers compare as numbers, timestamps as instants (a bare date by day), other text
//!   alphabetically.
//! - `IS_BETWEEN` (two values, inclusive), `IS_ON_OR_BEFORE`, `IS_ON_OR_AFTER`: dates
//!   (`YYYY-MM-DD`, compared by day) or RFC 3339 timestamps.
//! - `IS_WITHIN` (one value): a duration such as `P7D`, `PT12H` or `7d`; the field's
//!   timestamp is at most that far from the sandbox clock, before or after it.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
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
    Exactly,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    IsNull,
    IsNotNull,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    Between,
    OnOrBefore,
    OnOrAfter,
    Within,
}

/// Every operator name accepted, in the order Atomicwork publishes them.
pub(crate) const OPERATORS: [&str; 23] = [
    "EQUALS",
    "NOT_EQUALS",
    "CONTAINS",
    "NOT_CONTAINS",
    "IN",
    "NOT_IN",
    "GREATER_THAN",
    "LESS_THAN",
    "GREATER_THAN_EQUALS",
    "LESS_THAN_EQUALS",
    "IS_BETWEEN",
    "IS_NULL",
    "IS_NOT_NULL",
    "STARTS_WITH",
    "ENDS_WITH",
    "TEXT_CONTAINS",
    "TEXT_DOES_NOT_CONTAINS",
    "IS_ANY_OF",
    "IS_NOT_ANY_OF",
    "IS_EXACTLY",
    "IS_ON_OR_BEFORE",
    "IS_ON_OR_AFTER",
    "IS_WITHIN",
];

impl Op {
    fn parse(raw: &str) -> ApiResult<Self> {
        let op = match raw.to_ascii_uppercase().as_str() {
            "EQUALS" => Self::Equals,
            "NOT_EQUALS" => Self::NotEquals,
            "IS_ANY_OF" | "IN" => Self::AnyOf,
            "IS_NOT_ANY_OF" | "NOT_IN" => Self::NotAnyOf,
            "IS_EXACTLY" => Self::Exactly,
            "CONTAINS" | "TEXT_CONTAINS" => Self::Contains,
            "NOT_CONTAINS" | "TEXT_DOES_NOT_CONTAINS" => Self::NotContains,
            "STARTS_WITH" => Self::StartsWith,
            "ENDS_WITH" => Self::EndsWith,
            "IS_NULL" => Self::IsNull,
            "IS_NOT_NULL" => Self::IsNotNull,
            "GREATER_THAN" => Self::Greater,
            "LESS_THAN" => Self::Less,
            "GREATER_THAN_EQUALS" => Self::GreaterOrEqual,
            "LESS_THAN_EQUALS" => Self::LessOrEqual,
            "IS_BETWEEN" => Self::Between,
            "IS_ON_OR_BEFORE" => Self::OnOrBefore,
            "IS_ON_OR_AFTER" => Self::OnOrAfter,
            "IS_WITHIN" => Self::Within,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown filter operator '{raw}'; supported: {}",
                    OPERATORS.join(", ")
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
            Self::Equals
            | Self::NotEquals
            | Self::OnOrBefore
            | Self::OnOrAfter
            | Self::Greater
            | Self::Less
            | Self::GreaterOrEqual
            | Self::LessOrEqual
            | Self::Within => (1, 1),
            _ => (1, usize::MAX),
        }
    }

    fn is_time(self) -> bool {
        matches!(self, Self::Between | Self::OnOrBefore | Self::OnOrAfter)
    }

    /// For the ordering operators, whether an ordering of field to value matches.
    fn accepts(self, ord: Ordering) -> bool {
        match self {
            Self::Greater => ord.is_gt(),
            Self::Less => ord.is_lt(),
            Self::GreaterOrEqual => ord.is_ge(),
            Self::LessOrEqual => ord.is_le(),
            _ => false,
        }
    }
}

/// One parsed filter.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    field: String,
    op: Op,
    values: Vec<Value>,
    /// For `IS_WITHIN`: the largest distance from the sandbox clock.
    within: Option<SignedDuration>,
}

/// Which attributes a collection can be filtered on, and the aliases that map
/// request-body names (`assignee`) to record fields (`assignee_id`).
pub(crate) struct Attributes {
    pub(crate) fields: &'static [&'static str],
    pub(crate) aliases: &'static [(&'static str, &'static str)],
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
    let within = match (op, values.first()) {
        (Op::Within, Some(value)) => Some(parse_within(index, value)?),
        _ => None,
    };
    Ok(Filter {
        field,
        op,
        values,
        within,
    })
}

/// An `IS_WITHIN` value: an ISO 8601 or friendly duration of weeks, days, hours, minutes
/// or seconds (days are 24 hours), taken without its sign.
fn parse_within(index: usize, value: &Value) -> ApiResult<SignedDuration> {
    let bad = || {
        ApiError::bad_request(format!(
            "filter {index}: '{value}' is not a duration such as P7D, PT12H or 7d (weeks, days, hours, minutes or seconds)"
        ))
    };
    let span: Span = value
        .as_str()
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| bad())?;
    Ok(duration.abs())
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

/// True when the record passes every filter; `now` is the sandbox clock, for `IS_WITHIN`.
pub(crate) fn matches_all(rec: &Obj, filters: &[Filter], now: Timestamp) -> bool {
    filters.iter().all(|f| f.matches(rec.get(&f.field), now))
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

/// The values of a field or a filter as written, for `IS_EXACTLY`.
fn exact_set<'a>(values: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|v| scalar_text(v).unwrap_or_else(|| v.to_string()))
        .collect()
}

/// How a field value orders against a filter value: as numbers when both are numbers, as
/// instants when the field is a timestamp and the value a date or timestamp, otherwise as
/// text ignoring case. `None` when either is not a scalar.
fn order(field: &Value, value: &Value) -> Option<Ordering> {
    let (f, v) = (scalar_text(field)?, scalar_text(value)?);
    if let (Ok(a), Ok(b)) = (f.trim().parse::<f64>(), v.trim().parse::<f64>()) {
        return a.partial_cmp(&b);
    }
    if let Some(ord) = compare_time(&f, &v) {
        return Some(ord);
    }
    Some(f.to_lowercase().cmp(&v.to_lowercase()))
}

impl Filter {
    fn matches(&self, field: Option<&Value>, now: Timestamp) -> bool {
        let any_equal = || {
            field_values(field)
                .iter()
                .any(|f| self.values.iter().any(|v| same(f, v)))
        };
        match self.op {
            Op::Equals | Op::AnyOf => any_equal(),
            Op::NotEquals | Op::NotAnyOf => !any_equal(),
            Op::Exactly => {
                !is_empty(field) && exact_set(field_values(field)) == exact_set(self.values.iter())
            }
            Op::Contains => text_test(field, &self.values, |h, n| h.contains(n)),
            Op::NotContains => !text_test(field, &self.values, |h, n| h.contains(n)),
            Op::StartsWith => text_test(field, &self.values, |h, n| h.starts_with(n)),
            Op::EndsWith => text_test(field, &self.values, |h, n| h.ends_with(n)),
            Op::IsNull => is_empty(field),
            Op::IsNotNull => !is_empty(field),
            Op::Greater | Op::Less | Op::GreaterOrEqual | Op::LessOrEqual => {
                let Some(value) = self.values.first() else {
                    return false;
                };
                field_values(field)
                    .iter()
                    .any(|f| order(f, value).is_some_and(|ord| self.op.accepts(ord)))
            }
            Op::Between | Op::OnOrBefore | Op::OnOrAfter => self.time_matches(field),
            Op::Within => self.within_matches(field, now),
        }
    }

    fn within_matches(&self, field: Option<&Value>, now: Timestamp) -> bool {
        let (Some(at), Some(limit)) = (field.and_then(Value::as_str), self.within) else {
            return false;
        };
        at.parse::<Timestamp>()
            .is_ok_and(|at| now.duration_since(at).abs() <= limit)
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
        fields: &[
            "status",
            "tags",
            "assignee_id",
            "created_at",
            "id",
            "subject",
        ],
        aliases: &[("assignee", "assignee_id")],
    };

    /// The sandbox clock for these tests: five days after `rec`'s `created_at`.
    fn now() -> Timestamp {
        "2026-03-14T09:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn rec() -> Obj {
        let v = json!({"status": "OPEN", "tags": ["vpn", "Network"], "assignee_id": null,
                       "created_at": "2026-03-09T07:42:00Z", "id": 42, "subject": "VPN down"});
        v.as_object().cloned().unwrap_or_default()
    }

    fn check(body: Value) -> bool {
        let filters = parse_filters(&body, &ATTRS);
        assert!(filters.is_ok(), "{filters:?}");
        matches_all(&rec(), &filters.unwrap_or_default(), now())
    }

    fn f(a: &str, o: &str, v: Value) -> Value {
        json!([{"attribute": a, "operator": o, "values": v}])
    }

    fn one(v: Value) -> Value {
        json!([{ "value": v }])
    }

    #[test]
    fn operators_match_top_level_fields() {
        assert!(check(f("status", "EQUALS", one(json!("open")))));
        assert!(!check(f("status", "NOT_EQUALS", one(json!("OPEN")))));
        assert!(check(f(
            "status",
            "IN",
            json!([{"value": "X"}, {"value": "OPEN"}])
        )));
        assert!(check(f("tags", "CONTAINS", one(json!("VP")))));
        assert!(check(f("assignee", "IS_NULL", json!([]))));
        assert!(check(f(
            "created_at",
            "IS_ON_OR_AFTER",
            one(json!("2026-03-09"))
        )));
        assert!(!check(f(
            "created_at",
            "IS_ON_OR_BEFORE",
            one(json!("2026-03-08"))
        )));
    }

    #[test]
    fn negated_set_and_text_operators() {
        assert!(!check(f("status", "NOT_IN", one(json!("open")))));
        assert!(check(f("status", "NOT_IN", one(json!("CLOSED")))));
        for op in ["NOT_CONTAINS", "TEXT_DOES_NOT_CONTAINS"] {
            assert!(!check(f("subject", op, one(json!("vpn")))), "{op}");
            assert!(check(f("subject", op, one(json!("printer")))), "{op}");
            assert!(check(f("assignee", op, one(json!("x")))), "{op} on null");
        }
    }

    #[test]
    fn is_exactly_wants_the_same_values_as_written() {
        let both = json!([{"value": "Network"}, {"value": "vpn"}]);
        assert!(check(f("tags", "IS_EXACTLY", both)));
        assert!(
            !check(f("tags", "IS_EXACTLY", one(json!("vpn")))),
            "one too few"
        );
        let case = json!([{"value": "network"}, {"value": "vpn"}]);
        assert!(!check(f("tags", "IS_EXACTLY", case)), "case counts");
        assert!(check(f("status", "IS_EXACTLY", one(json!("OPEN")))));
        assert!(!check(f("status", "IS_EXACTLY", one(json!("open")))));
        assert!(!check(f("assignee", "IS_EXACTLY", one(json!(null)))));
    }

    #[test]
    fn ordering_operators_compare_numbers_times_and_text() {
        let cases = [
            ("id", "GREATER_THAN", json!(41), true),
            ("id", "GREATER_THAN", json!(42), false),
            ("id", "GREATER_THAN", json!("9"), true),
            ("id", "GREATER_THAN_EQUALS", json!(42), true),
            ("id", "LESS_THAN", json!(100), true),
            ("id", "LESS_THAN_EQUALS", json!(41), false),
            (
                "created_at",
                "GREATER_THAN",
                json!("2026-03-09T07:00:00Z"),
                true,
            ),
            (
                "created_at",
                "LESS_THAN",
                json!("2026-03-09T07:00:00Z"),
                false,
            ),
            ("created_at", "LESS_THAN_EQUALS", json!("2026-03-09"), true),
            ("created_at", "GREATER_THAN", json!("2026-03-09"), false),
            ("status", "GREATER_THAN", json!("closed"), true),
            ("status", "LESS_THAN", json!("closed"), false),
            ("assignee", "GREATER_THAN", json!(0), false),
        ];
        for (field, op, value, want) in cases {
            assert_eq!(
                check(f(field, op, one(value.clone()))),
                want,
                "{field} {op} {value}"
            );
        }
    }

    #[test]
    fn is_within_measures_from_the_sandbox_clock() {
        assert!(check(f("created_at", "IS_WITHIN", one(json!("P7D")))));
        assert!(check(f("created_at", "IS_WITHIN", one(json!("6d")))));
        assert!(!check(f("created_at", "IS_WITHIN", one(json!("P5D")))));
        assert!(check(f("created_at", "IS_WITHIN", one(json!("PT121H20M")))));
        assert!(!check(f("created_at", "IS_WITHIN", one(json!("PT121H")))));
        assert!(
            check(f("created_at", "IS_WITHIN", one(json!("-P1W")))),
            "the sign is ignored"
        );
        assert!(
            !check(f("status", "IS_WITHIN", one(json!("P7D")))),
            "not a timestamp"
        );
    }

    #[test]
    fn every_published_operator_is_accepted() {
        for op in OPERATORS {
            let values = match Op::parse(op).map(Op::arity) {
                Ok((0, _)) => json!([]),
                Ok((2, 2)) => json!([{"value": "2026-03-01"}, {"value": "2026-03-31"}]),
                _ if op == "IS_WITHIN" => one(json!("P30D")),
                _ => one(json!("2026-03-09")),
            };
            let parsed = parse_filters(&f("created_at", op, values), &ATTRS);
            assert!(parsed.is_ok(), "{op}: {parsed:?}");
        }
    }

    #[test]
    fn bad_filters_are_rejected() {
        let bad = |body: Value| parse_filters(&body, &ATTRS).is_err();
        assert!(bad(json!({"status": "OPEN"})));
        assert!(bad(f("status", "LIKE", json!([]))));
        assert!(bad(f("colour", "EQUALS", one(json!(1)))));
        assert!(bad(f("status", "EQUALS", json!([]))));
        assert!(bad(f(
            "id",
            "GREATER_THAN",
            json!([{"value": 1}, {"value": 2}])
        )));
        for within in [json!("soon"), json!("P1M"), json!(7)] {
            assert!(
                bad(f("created_at", "IS_WITHIN", one(within.clone()))),
                "{within}"
            );
        }
        let unknown = parse_filters(&f("status", "LIKE", json!([])), &ATTRS);
        let message = format!("{:?}", unknown.err());
        for op in OPERATORS {
            assert!(message.contains(op), "{op} missing from {message}");
        }
    }
}
