//! Discovery exposure: three meta-tools that let a client find and call the server's tools
//! without listing every schema up front.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::catalog::{Tool, ToolSet};

pub const SEARCH_TOOLS: &str = "search_tools";
pub const GET_TOOL_SCHEMA: &str = "get_tool_schema";
pub const CALL_TOOL: &str = "call_tool";

/// Most results `search_tools` returns.
pub const MAX_SEARCH_LIMIT: usize = 50;

/// The `tools/list` entries of the meta-tools. `call_tool`'s annotations describe the
/// most dangerous tool it can reach on this server.
pub fn listing(set: &ToolSet) -> Value {
    let read_only = set.tools().iter().all(|t| t.annotations.read_only_hint);
    let destructive = set
        .tools()
        .iter()
        .any(|t| !t.annotations.read_only_hint && t.annotations.destructive_hint);
    json!([
        {
            "name": SEARCH_TOOLS,
            "title": "Search tools",
            "description": "Find the Atomicwork tools this server offers. Ranks tools by how well their name, title, description and tags match the query (e.g. \"change activity notes\", \"assets\"). Then call get_tool_schema for the arguments and call_tool to run one.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words describing what you want to do."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_LIMIT, "description": "Most results to return (default 10)."}
                },
                "required": ["query"],
                "additionalProperties": false
            },
            "annotations": {"title": "Search tools", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": GET_TOOL_SCHEMA,
            "title": "Get tool schemas",
            "description": "Return the full description and input schema of 1 to 5 tools found with search_tools.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "tool_names": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5, "description": "Tool names from search_tools."}
                },
                "required": ["tool_names"],
                "additionalProperties": false
            },
            "annotations": {"title": "Get tool schemas", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": CALL_TOOL,
            "title": "Call a tool",
            "description": "Run one of this server's tools by name with arguments matching its schema (see get_tool_schema).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "tool_name": {"type": "string", "description": "A tool name from search_tools."},
                    "arguments": {"type": "object", "description": "Arguments for the tool."}
                },
                "required": ["tool_name"],
                "additionalProperties": false
            },
            "annotations": {"title": "Call a tool", "readOnlyHint": read_only, "destructiveHint": destructive, "idempotentHint": false, "openWorldHint": false}
        }
    ])
}

/// True for the names of the meta-tools.
pub fn is_meta_tool(name: &str) -> bool {
    matches!(name, SEARCH_TOOLS | GET_TOOL_SCHEMA | CALL_TOOL)
}

/// Tools of the set ranked against a free-text query, best first.
pub fn search<'a>(set: &'a ToolSet, query: &str, limit: usize) -> Vec<&'a Arc<Tool>> {
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
pub fn summary(tool: &Tool) -> Value {
    json!({
        "name": tool.name(),
        "title": tool.source.title,
        "description": tool.source.description,
        "tags": tool.source.tags,
        "readOnly": tool.annotations.read_only_hint,
    })
}
