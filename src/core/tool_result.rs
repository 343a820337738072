//! The result of one tool call as MCP returns it: text blocks, optional structured
//! content and an error flag. Written by the upstream client, the discovery meta-tools
//! and the MCP layer's own refusals; read by the MCP layer when it writes the answer.

#[cfg(any(test, feature = "fuzzing"))]
use serde_json::Value;
use serde_json::value::RawValue;

/// An MCP tool result.
#[derive(Debug, Clone)]
pub(crate) struct ToolResult {
    /// Text content blocks, in order.
    pub(crate) content: Vec<String>,
    /// `structuredContent` as JSON text: set when the upstream answered with a JSON object.
    /// Kept as text so an answer passed through is embedded in the reply without being
    /// parsed into a tree and written out again.
    pub(crate) structured: Option<Box<RawValue>>,
    pub(crate) is_error: bool,
}

impl PartialEq for ToolResult {
    fn eq(&self, other: &Self) -> bool {
        self.content == other.content
            && self.is_error == other.is_error
            && self.structured.as_deref().map(RawValue::get)
                == other.structured.as_deref().map(RawValue::get)
    }
}

impl ToolResult {
    /// An error result with one text block.
    pub(crate) fn error(text: impl Into<String>) -> Self {
        ToolResult {
            content: vec![text.into()],
            structured: None,
            is_error: true,
        }
    }

    /// The MCP `CallToolResult` JSON.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        use serde_json::{Map, json};
        let content: Vec<Value> = self
            .content
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        let mut out = Map::new();
        out.insert("content".into(), Value::Array(content));
        if let Some(s) = self.structured_value() {
            out.insert("structuredContent".into(), s);
        }
        out.insert("isError".into(), Value::Bool(self.is_error));
        Value::Object(out)
    }

    /// A successful result.
    pub(crate) fn ok(content: Vec<String>, structured: Option<Box<RawValue>>) -> Self {
        ToolResult {
            content,
            structured,
            is_error: false,
        }
    }

    /// A successful result whose structured content is `structured` (the fuzz harness's
    /// canned answers).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn ok_structured(content: Vec<String>, structured: &Value) -> Self {
        Self::ok(content, serde_json::value::to_raw_value(structured).ok())
    }

    /// The structured content as a JSON value.
    #[cfg(test)]
    pub(crate) fn structured_value(&self) -> Option<Value> {
        self.structured
            .as_ref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }
}
