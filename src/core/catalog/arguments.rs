//! Argument problems as messages a model can act on: each names the argument at fault, and
//! no message grows with the size of what was sent (a few unknown names or problems are
//! listed, the rest counted; quoted text is cut).

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;

/// Most problems listed in one invalid-arguments message; the rest are counted.
pub(crate) const MAX_PROBLEMS_LISTED: usize = 8;
/// Most unknown argument names listed in one problem; the rest are counted.
pub(crate) const MAX_UNKNOWN_LISTED: usize = 5;
/// Longest problem text, in characters (a problem can quote a value that was sent).
const MAX_PROBLEM_CHARS: usize = 300;
/// Longest argument name quoted, in characters.
const MAX_NAME_CHARS: usize = 64;

/// One schema problem as text, prefixed with the argument path when it is not the
/// arguments object itself. Unknown arguments at the top level are listed with the
/// arguments the tool takes (`accepted`); a value outside an enum is told every accepted
/// value (they come from the schema, so their length is bounded).
pub(crate) fn problem_text(error: &ValidationError<'_>, accepted: &[&str]) -> String {
    let at = error.instance_path().to_string();
    let at = at.trim_start_matches('/');
    let prefix = if at.is_empty() {
        String::new()
    } else {
        format!("{}: ", cut(at, MAX_NAME_CHARS))
    };
    if let ValidationErrorKind::Enum { options } = error.kind() {
        let given = cut(&error.instance().to_string(), MAX_NAME_CHARS);
        let values: Vec<String> = match options.as_ref() {
            serde_json::Value::Array(values) => values.iter().map(|v| v.to_string()).collect(),
            other => vec![other.to_string()],
        };
        return format!(
            "{prefix}{given} is not one of the accepted values: {}",
            values.join(", ")
        );
    }
    let text = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let mut text = unknown_names(unexpected, at.is_empty());
            if at.is_empty() && !accepted.is_empty() {
                text.push_str(&format!("; this tool takes: {}", accepted.join(", ")));
            }
            text
        }
        _ => error.to_string(),
    };
    cut(&format!("{prefix}{text}"), MAX_PROBLEM_CHARS)
}

/// "unknown arguments `a`, `b` and 9998 more", for the top level or a nested object.
fn unknown_names(unexpected: &[String], top: bool) -> String {
    let what = match (top, unexpected.len()) {
        (true, 1) => "unknown argument",
        (true, _) => "unknown arguments",
        (false, 1) => "unknown property",
        (false, _) => "unknown properties",
    };
    let listed: Vec<String> = unexpected
        .iter()
        .take(MAX_UNKNOWN_LISTED)
        .map(|n| format!("`{}`", cut(n, MAX_NAME_CHARS)))
        .collect();
    let mut text = format!("{what} {}", listed.join(", "));
    let more = unexpected.len().saturating_sub(MAX_UNKNOWN_LISTED);
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// The text of an invalid-arguments error for `tool`: the first problems, the number of
/// the others, and what to do.
pub(crate) fn invalid_arguments_text(tool: &str, problems: &[String]) -> String {
    let mut listed = problems[..problems.len().min(MAX_PROBLEMS_LISTED)].join("; ");
    let more = problems.len().saturating_sub(MAX_PROBLEMS_LISTED);
    if more > 0 {
        listed.push_str(&format!("; and {more} more problems"));
    }
    format!(
        "Invalid arguments for {tool}: {listed}. Fix them and call again; the input schema lists every argument."
    )
}

/// `text` cut to `max` characters, with `…` when it was cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn problems(schema: Value, instance: Value, accepted: &[&str]) -> Vec<String> {
        let v = jsonschema::validator_for(&schema).expect("schema compiles");
        v.iter_errors(&instance)
            .map(|e| problem_text(&e, accepted))
            .collect()
    }

    #[test]
    fn many_unknown_arguments_are_listed_a_few_and_counted() {
        let instance: serde_json::Map<String, Value> = (0..10_000)
            .map(|i| (format!("k{i:05}"), json!(1)))
            .collect();
        let schema =
            json!({"type": "object", "properties": {"id": {}}, "additionalProperties": false});
        let p = problems(schema, Value::Object(instance), &["id"]);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0],
            "unknown arguments `k00000`, `k00001`, `k00002`, `k00003`, `k00004` and 9995 more; this tool takes: id"
        );
    }

    #[test]
    fn one_unknown_argument_and_nested_properties_read_naturally() {
        let schema = json!({"type": "object", "properties": {"file": {"type": "object",
            "properties": {"a": {}}, "additionalProperties": false}}, "additionalProperties": false});
        let p = problems(schema, json!({"x": 1, "file": {"b": 2}}), &["file"]);
        assert!(
            p.contains(&"unknown argument `x`; this tool takes: file".to_string()),
            "{p:?}"
        );
        assert!(
            p.contains(&"file: unknown property `b`".to_string()),
            "{p:?}"
        );
    }

    #[test]
    fn a_value_outside_an_enum_is_told_every_accepted_value() {
        let options: Vec<String> = (0..30).map(|i| format!("OPTION_NUMBER_{i}")).collect();
        let schema = json!({"type": "object", "properties": {"op": {"enum": options}}});
        let p = problems(schema, json!({"op": "x".repeat(5_000)}), &["op"]);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("op: \"xxx"), "{}", p[0]);
        assert!(p[0].chars().count() < 700, "{}", p[0]);
        for o in &options {
            assert!(
                p[0].contains(&format!("\"{o}\"")),
                "{o} missing from {}",
                p[0]
            );
        }
    }

    #[test]
    fn long_names_values_and_problem_lists_are_cut() {
        let long = "n".repeat(10_000);
        let schema = json!({"type": "object", "properties": {"id": {"type": "string"}},
            "additionalProperties": false});
        let p = problems(
            schema,
            json!({ long.clone(): 1, "id": ["v".repeat(100_000)] }),
            &["id"],
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p.iter().all(|t| t.chars().count() <= MAX_PROBLEM_CHARS + 1),
            "{p:?}"
        );
        let many: Vec<String> = (0..1_000).map(|i| format!("problem {i}")).collect();
        let text = invalid_arguments_text("t", &many);
        assert!(text.contains("problem 7; and 992 more problems"), "{text}");
        assert!(!text.contains("problem 8;"), "{text}");
    }
}
