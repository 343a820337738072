//! Discovery exposure: three meta-tools that let a client find and call the server's tools
//! without listing every schema up front.

use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::core::catalog::meta_tools::{
    CALL_TOOL, GET_TOOL_SCHEMA, MAX_SEARCH_LIMIT, SEARCH_TOOLS, input_schema,
};
use crate::core::catalog::{Tool, ToolSet, invalid_arguments_text, problem_text};
use crate::core::tool_result::ToolResult;

/// The meta-tools' input schemas, compiled once.
fn validators() -> &'static [(&'static str, Option<jsonschema::Validator>)] {
    static VALIDATORS: OnceLock<Vec<(&'static str, Option<jsonschema::Validator>)>> =
        OnceLock::new();
    VALIDATORS.get_or_init(|| {
        [SEARCH_TOOLS, GET_TOOL_SCHEMA, CALL_TOOL]
            .into_iter()
            .map(|name| (name, jsonschema::validator_for(&input_schema(name)).ok()))
            .collect()
    })
}

/// Checks a meta-tool's arguments against its input schema, as every tool's are: the
/// error is the same invalid-arguments text other tools give.
fn check_arguments(name: &str, args: &Value) -> Result<(), String> {
    let Some(validator) = validators()
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.as_ref())
    else {
        return Ok(());
    };
    let schema = input_schema(name);
    let accepted: Vec<&str> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let problems: Vec<String> = validator
        .iter_errors(args)
        .map(|e| problem_text(&e, &accepted))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid_arguments_text(name, &problems))
    }
}

/// Tools of the set ranked against a free-text query, best first.
pub(crate) fn search<'a>(set: &'a ToolSet, query: &str, limit: usize) -> Vec<&'a Arc<Tool>> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let mut scored: Vec<(u32, &Arc<Tool>)> = set
        .tools()
        .iter()
        .map(|t| (score(t, &words), t))
        .filter(|(s, _)| words.is_empty() || *s > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name().cmp(b.1.name())));
    scored.into_iter().take(limit).map(|(_, t)| t).collect()
}

fn score(tool: &Tool, words: &[String]) -> u32 {
    let name = tool.name().to_lowercase();
    let name_parts: Vec<&str> = name.split('_').collect();
    let title = tool.source.title.to_lowercase();
    let description = tool.source.description.to_lowercase();
    words
        .iter()
        .map(|w| {
            let stem = w.trim_end_matches('s');
            let mut s = 0;
            if name_parts
                .iter()
                .any(|p| p == w || p.trim_end_matches('s') == stem)
            {
                s += 6;
            } else if name.contains(stem) {
                s += 3;
            }
            if title.contains(stem) {
                s += 4;
            }
            if tool
                .source
                .tags
                .iter()
                .any(|t| t.trim_end_matches('s') == stem)
            {
                s += 3;
            }
            if tool.source.method == *w {
                s += 2;
            }
            if description.contains(stem) {
                s += 1;
            }
            s
        })
        .sum()
}

/// A short summary of a tool for search results.
pub(crate) fn summary(tool: &Tool) -> Value {
    json!({
        "name": tool.name(),
        "title": tool.source.title,
        "description": tool.source.description,
        "tags": tool.source.tags,
        "readOnly": tool.annotations.read_only_hint,
    })
}

/// What a meta-tool call comes to: an answer, or a real tool to run.
pub(crate) enum MetaOutcome {
    /// Answered without the upstream.
    Done(ToolResult),
    /// Run this tool of the set with these arguments.
    Call(Arc<Tool>, Map<String, Value>),
}

/// A successful answer carrying `list`, a JSON array of tools, as structured content
/// `{"tools": list}` and as text, unless another `text` is given.
fn tools_result(list: String, text: Option<String>) -> ToolResult {
    let structured = RawValue::from_string(format!(r#"{{"tools":{list}}}"#)).ok();
    ToolResult {
        content: vec![text.unwrap_or(list)],
        structured,
        is_error: false,
    }
}

/// Runs `search_tools` or `get_tool_schema`, or unwraps `call_tool`, confined to `set`.
/// The arguments are checked against the meta-tool's input schema first.
pub(crate) fn meta_call(set: &ToolSet, name: &str, args: Map<String, Value>) -> MetaOutcome {
    let args = Value::Object(args);
    if let Err(text) = check_arguments(name, &args) {
        return MetaOutcome::Done(ToolResult::error(text));
    }
    let Value::Object(mut args) = args else {
        return MetaOutcome::Done(ToolResult::error("arguments must be an object"));
    };
    match name {
        SEARCH_TOOLS => {
            let query = args
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let limit = args
                .get("limit")
                .and_then(Value::as_u64)
                .map(|l| (l as usize).clamp(1, MAX_SEARCH_LIMIT))
                .unwrap_or(10);
            let hits: Vec<Value> = search(set, query, limit)
                .into_iter()
                .map(|t| summary(t))
                .collect();
            let text = hits.is_empty().then(|| {
                format!(
                    "No tool matches {query:?}. Try broader words such as requests, changes, assets, audit, users."
                )
            });
            MetaOutcome::Done(tools_result(Value::Array(hits).to_string(), text))
        }
        GET_TOOL_SCHEMA => {
            let names: Vec<&str> = match args.get("tool_names") {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if names.is_empty() || names.len() > 5 {
                return MetaOutcome::Done(ToolResult::error(
                    "tool_names must list 1 to 5 tool names from search_tools",
                ));
            }
            // The tools' `tools/list` entries, already serialised, joined into one array.
            let mut schemas = String::from("[");
            for (i, n) in names.iter().enumerate() {
                match set.get(n) {
                    Some(t) => {
                        if i > 0 {
                            schemas.push(',');
                        }
                        schemas.push_str(t.listing.get());
                    }
                    None => {
                        return MetaOutcome::Done(ToolResult::error(format!(
                            "Unknown tool {n:?} on this server; use search_tools to find available tools"
                        )));
                    }
                }
            }
            schemas.push(']');
            MetaOutcome::Done(tools_result(schemas, None))
        }
        _ => {
            let tool_name = args
                .get("tool_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let inner = match args.remove("arguments") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m,
                Some(_) => {
                    return MetaOutcome::Done(ToolResult::error("arguments must be an object"));
                }
            };
            match set.get(&tool_name) {
                Some(t) => MetaOutcome::Call(t.clone(), inner),
                None => MetaOutcome::Done(ToolResult::error(format!(
                    "Unknown tool {tool_name:?} on this server; use search_tools to find available tools"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::Catalog;
    use crate::core::catalog::meta_tools::listing;

    fn all() -> std::sync::Arc<ToolSet> {
        let c = Catalog::builtin().expect("catalog");
        let names: Vec<String> = c.tools().iter().map(|t| t.name().to_string()).collect();
        c.tool_set(&names)
    }

    fn top(set: &ToolSet, q: &str) -> String {
        search(set, q, 3)
            .first()
            .map(|t| t.name().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn search_ranks_by_name_title_tags_and_description() {
        let set = all();
        assert_eq!(
            top(&set, "change activity notes"),
            "list_all_atomicwork_change_activity_notes"
        );
        assert_eq!(top(&set, "audit logs"), "list_all_atomicwork_audit_logs");
        assert_eq!(top(&set, "create user"), "create_a_atomicwork_user");
        let assets = search(&set, "assets", 10);
        assert!(assets.len() >= 5);
        assert!(
            assets
                .iter()
                .take(5)
                .all(|t| t.source.tags.contains(&"assets".to_string()))
        );
        assert!(search(&set, "zzqx", 10).is_empty());
        assert_eq!(search(&set, "", 4).len(), 4, "an empty query lists tools");
    }

    /// Answers joined from the cached listing entries are the bytes serde_json writes for
    /// the parsed entries, for every tool of the catalog.
    #[test]
    fn schemas_are_the_listing_entries_as_serde_json_writes_them() {
        let set = all();
        for chunk in set.tools().chunks(5) {
            let names: Vec<&str> = chunk.iter().map(|t| t.name()).collect();
            let MetaOutcome::Done(r) = meta_call(
                &set,
                GET_TOOL_SCHEMA,
                json!({"tool_names": names})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ) else {
                panic!("not a call");
            };
            let parsed: Vec<Value> = chunk
                .iter()
                .map(|t| serde_json::from_str(t.listing.get()).expect("a listing entry"))
                .collect();
            assert_eq!(r.content, vec![Value::Array(parsed.clone()).to_string()]);
            assert_eq!(
                r.structured.as_deref().map(RawValue::get),
                Some(json!({"tools": parsed}).to_string().as_str())
            );
        }
    }

    /// The text of a meta-tool answer that must be an invalid-arguments error.
    fn invalid(set: &ToolSet, name: &str, a: Value) -> String {
        let args = a.as_object().cloned().unwrap_or_default();
        match meta_call(set, name, args) {
            MetaOutcome::Done(r) if r.is_error => r.content.join("\n"),
            MetaOutcome::Done(r) => panic!("{name} {a}: not an error: {:?}", r.content),
            MetaOutcome::Call(t, _) => panic!("{name} {a}: ran {}", t.name()),
        }
    }

    #[test]
    fn meta_tools_enforce_their_input_schemas() {
        let set = all();
        let cases = [
            (CALL_TOOL, json!({}), "tool_name"),
            (CALL_TOOL, json!({"tool_name": 5}), "tool_name"),
            (
                CALL_TOOL,
                json!({"tool_name": "list_all_atomicwork_assets", "arguments": "x"}),
                "arguments",
            ),
            (
                CALL_TOOL,
                json!({"tool_name": "list_all_atomicwork_assets", "args": {}}),
                "`args`",
            ),
            (SEARCH_TOOLS, json!({}), "query"),
            (
                SEARCH_TOOLS,
                json!({"query": "assets", "limit": 0}),
                "limit",
            ),
            (
                SEARCH_TOOLS,
                json!({"query": "assets", "limit": 51}),
                "limit",
            ),
            (
                SEARCH_TOOLS,
                json!({"query": "assets", "limit": "ten"}),
                "limit",
            ),
            (SEARCH_TOOLS, json!({"query": ["assets"]}), "query"),
            (GET_TOOL_SCHEMA, json!({}), "tool_names"),
            (
                GET_TOOL_SCHEMA,
                json!({"tool_names": "list_all_atomicwork_assets"}),
                "tool_names",
            ),
            (GET_TOOL_SCHEMA, json!({"tool_names": []}), "tool_names"),
            (GET_TOOL_SCHEMA, json!({"tool_names": [1]}), "tool_names"),
        ];
        for (name, a, needle) in cases {
            let text = invalid(&set, name, a.clone());
            assert!(
                text.starts_with(&format!("Invalid arguments for {name}: ")),
                "{name} {a}: {text}"
            );
            assert!(
                text.ends_with("Fix them and call again; the input schema lists every argument."),
                "{name} {a}: {text}"
            );
            assert!(text.contains(needle), "{name} {a}: {text}");
        }
    }

    #[test]
    fn meta_tools_stay_inside_the_set() {
        let c = Catalog::builtin().expect("catalog");
        let set = c.tool_set(&["list_all_atomicwork_assets".to_string()]);
        let args = |v: Value| v.as_object().cloned().unwrap_or_default();
        match meta_call(
            &set,
            CALL_TOOL,
            args(json!({"tool_name": "create_a_atomicwork_asset"})),
        ) {
            MetaOutcome::Done(r) => assert!(r.is_error),
            MetaOutcome::Call(..) => panic!("a tool outside the set was reached"),
        }
        match meta_call(
            &set,
            GET_TOOL_SCHEMA,
            args(json!({"tool_names": ["a", "b", "c", "d", "e", "f"]})),
        ) {
            MetaOutcome::Done(r) => assert!(r.is_error, "more than 5 names"),
            MetaOutcome::Call(..) => panic!("not a call"),
        }
        match meta_call(
            &set,
            CALL_TOOL,
            args(json!({"tool_name": "list_all_atomicwork_assets", "arguments": {"page": 2}})),
        ) {
            MetaOutcome::Call(t, a) => {
                assert_eq!(t.name(), "list_all_atomicwork_assets");
                assert_eq!(a["page"], 2);
            }
            MetaOutcome::Done(r) => panic!("{:?}", r.content),
        }
        let listing = listing(&set);
        assert_eq!(
            listing[2]["annotations"]["readOnlyHint"], true,
            "call_tool reaches only reads"
        );
    }
}
