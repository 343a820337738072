//! The discovery meta-tools as listed: their names, input schemas and `tools/list`
//! entries. A server in discovery exposure lists only these three; a tool set caches
//! their listing next to its own. What they do when called is the MCP layer's
//! (`mcp::discovery`).

use serde_json::{Value, json};

use super::ToolSet;

pub(crate) const SEARCH_TOOLS: &str = "search_tools";
pub(crate) const GET_TOOL_SCHEMA: &str = "get_tool_schema";
pub(crate) const CALL_TOOL: &str = "call_tool";

/// Most results `search_tools` returns.
pub(crate) const MAX_SEARCH_LIMIT: usize = 50;

/// The input schema of a meta-tool (`Null` for a name that is not one).
pub(crate) fn input_schema(name: &str) -> Value {
    match name {
        SEARCH_TOOLS => json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words describing what you want to do."},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_LIMIT, "description": "Most results to return (default 10)."}
            },
            "required": ["query"],
            "additionalProperties": false
        }),
        GET_TOOL_SCHEMA => json!({
            "type": "object",
            "properties": {
                "tool_names": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5, "description": "Tool names from search_tools."}
            },
            "required": ["tool_names"],
            "additionalProperties": false
        }),
        CALL_TOOL => json!({
            "type": "object",
            "properties": {
                "tool_name": {"type": "string", "description": "A tool name from search_tools."},
                "arguments": {"type": "object", "description": "Arguments for the tool."}
            },
            "required": ["tool_name"],
            "additionalProperties": false
        }),
        _ => Value::Null,
    }
}

/// The `tools/list` entries of the meta-tools. `call_tool`'s annotations describe the
/// most dangerous tool it can reach on this server.
pub(crate) fn listing(set: &ToolSet) -> Value {
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
            "inputSchema": input_schema(SEARCH_TOOLS),
            "annotations": {"title": "Search tools", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": GET_TOOL_SCHEMA,
            "title": "Get tool schemas",
            "description": "Return the full description and input schema of 1 to 5 tools found with search_tools.",
            "inputSchema": input_schema(GET_TOOL_SCHEMA),
            "annotations": {"title": "Get tool schemas", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        },
        {
            "name": CALL_TOOL,
            "title": "Call a tool",
            "description": "Run one of this server's tools by name with arguments matching its schema (see get_tool_schema).",
            "inputSchema": input_schema(CALL_TOOL),
            "annotations": {"title": "Call a tool", "readOnlyHint": read_only, "destructiveHint": destructive, "idempotentHint": false, "openWorldHint": false}
        }
    ])
}

/// True for the names of the meta-tools.
pub(crate) fn is_meta_tool(name: &str) -> bool {
    matches!(name, SEARCH_TOOLS | GET_TOOL_SCHEMA | CALL_TOOL)
}
