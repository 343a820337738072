//! Per-server tool shaping (`spec.toolOverrides`): a server can show a tool under another
//! name, title, description or annotations, fill arguments the caller leaves out
//! (`defaults`) and pin arguments the caller cannot change (`fixed`, removed from the
//! schema clients see). The shaped tool is a copy of the catalog tool; the catalog itself
//! never changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AnnotationOverrides, Annotations, Tool, ToolSet, ToolSetKind, meta_tools, schema};

/// How one server shows one tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolOverride {
    /// The name clients see instead of the catalog name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// The title clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    /// The description clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// MCP hints that replace the tool's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<AnnotationOverrides>,
    /// Argument values used when the caller leaves the argument out.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) defaults: Map<String, Value>,
    /// Argument values the caller cannot change; hidden from the schema clients see.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) fixed: Map<String, Value>,
}

/// The overrides of one server, by catalog tool name.
pub type ToolOverrides = BTreeMap<String, ToolOverride>;

/// An override that cannot be applied. `field` is the manifest path of the value at
/// fault, e.g. `spec.toolOverrides.list_all_atomicwork_tags.fixed.page`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OverrideError {
    /// The manifest path of the value at fault.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What a shaped tool does to the arguments of a call, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shaping {
    /// The tool's name in the catalog.
    pub(crate) catalog_name: String,
    /// Filled in when absent.
    pub(crate) defaults: Map<String, Value>,
    /// Always set, whatever the caller sent.
    pub(crate) fixed: Map<String, Value>,
}

impl Shaping {
    /// Fills the defaults the caller left out and sets every fixed value.
    pub(crate) fn apply(&self, args: &mut Map<String, Value>) {
        for (name, value) in &self.defaults {
            if args.get(name).is_none_or(Value::is_null) {
                args.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.fixed {
            args.insert(name.clone(), value.clone());
        }
    }
}

/// The tool set of `tools` (catalog tools of set `kind`) shaped by `overrides`. Every
/// override must name one of `tools`, and every value must fit the argument it is for.
pub(crate) fn shaped_set(
    kind: ToolSetKind,
    tools: Vec<Arc<Tool>>,
    overrides: &ToolOverrides,
) -> Result<ToolSet, OverrideError> {
    for key in overrides.keys() {
        if !tools.iter().any(|t| t.name() == key) {
            return Err(OverrideError {
                field: format!("spec.toolOverrides.{key}"),
                message: format!(
                    "no tool of that name among this server's tools (the {kind} tool set after methods, tags and tools); use the catalog name, e.g. from `atomicwork-mcp tools --tool-set {kind}`"
                ),
            });
        }
    }
    let mut shaped = Vec::with_capacity(tools.len());
    for tool in tools {
        match overrides.get(tool.name()) {
            Some(o) => shaped.push(Arc::new(shape(&tool, o)?)),
            None => shaped.push(tool),
        }
    }
    let mut seen = BTreeSet::new();
    for tool in &shaped {
        let catalog_name = tool
            .shaping
            .as_ref()
            .map_or(tool.name(), |s| s.catalog_name.as_str());
        if !seen.insert(tool.name().to_string()) {
            return Err(OverrideError {
                field: format!("spec.toolOverrides.{catalog_name}.name"),
                message: format!(
                    "{:?} is already the name of another tool of this server; names must be unique",
                    tool.name()
                ),
            });
        }
    }
    shaped.sort_by(|a, b| a.name().cmp(b.name()));
    let mut set = ToolSet::of(kind, shaped);
    set.overrides = overrides.clone();
    Ok(set)
}

/// A copy of `tool` as the override shows it.
fn shape(tool: &Tool, o: &ToolOverride) -> Result<Tool, OverrideError> {
    let key = tool.name().to_string();
    let bad = |field: &str, message: String| OverrideError {
        field: format!("spec.toolOverrides.{key}{field}"),
        message,
    };
    let mut source = tool.source.clone();
    if let Some(name) = &o.name {
        schema::check_name(name).map_err(|m| bad(".name", m))?;
        if meta_tools::is_meta_tool(name) {
            return Err(bad(
                ".name",
                format!("{name:?} is the name of a discovery meta-tool"),
            ));
        }
        source.name = name.clone();
    }
    if let Some(title) = &o.title {
        if title.trim().is_empty() {
            return Err(bad(".title", "must not be empty".into()));
        }
        source.title = title.clone();
    }
    if let Some(description) = &o.description {
        if description.trim().is_empty() {
            return Err(bad(".description", "must not be empty".into()));
        }
        source.description = description.clone();
    }
    let properties = tool.input_schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (list, values) in [("defaults", &o.defaults), ("fixed", &o.fixed)] {
        for (arg, value) in values {
            let field = format!(".{list}.{arg}");
            let Some(schema) = properties.get(arg) else {
                let known: Vec<&str> = properties.keys().map(String::as_str).collect();
                return Err(bad(
                    &field,
                    format!(
                        "{key} has no argument {arg:?}; its arguments are {}",
                        known.join(", ")
                    ),
                ));
            };
            if list == "defaults" && o.fixed.contains_key(arg) {
                return Err(bad(
                    &field,
                    "is also fixed; an argument is either a default or fixed".into(),
                ));
            }
            let fits = jsonschema::validator_for(schema)
                .map(|v| {
                    v.iter_errors(value)
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| bad(&field, e.to_string()))?;
            if let Some(problem) = fits.first() {
                return Err(bad(
                    &field,
                    format!("{value} does not fit the argument's schema: {problem}"),
                ));
            }
        }
    }
    let annotations = match &o.annotations {
        Some(a) => Annotations {
            read_only_hint: a.read_only_hint.unwrap_or(tool.annotations.read_only_hint),
            destructive_hint: a
                .destructive_hint
                .unwrap_or(tool.annotations.destructive_hint),
            idempotent_hint: a
                .idempotent_hint
                .unwrap_or(tool.annotations.idempotent_hint),
            open_world_hint: a
                .open_world_hint
                .unwrap_or(tool.annotations.open_world_hint),
        },
        None => tool.annotations,
    };
    let input_schema = shown_schema(&tool.input_schema, &o.defaults, &o.fixed);
    let listing = schema::listing(&source, &input_schema, &annotations)
        .map_err(|e| bad("", e.to_string()))?;
    Ok(Tool {
        source,
        annotations,
        input_schema,
        listing,
        validator: tool.validator.clone(),
        shaping: Some(Arc::new(Shaping {
            catalog_name: key.clone(),
            defaults: o.defaults.clone(),
            fixed: o.fixed.clone(),
        })),
    })
}

/// The schema clients see: fixed arguments left out, defaults shown and not required.
fn shown_schema(full: &Value, defaults: &Map<String, Value>, fixed: &Map<String, Value>) -> Value {
    let mut schema = full.clone();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for name in fixed.keys() {
            props.remove(name);
        }
        for (name, value) in defaults {
            if let Some(Value::Object(p)) = props.get_mut(name) {
                p.insert("default".into(), value.clone());
            }
        }
    }
    let hidden = |name: &Value| {
        name.as_str()
            .is_some_and(|n| fixed.contains_key(n) || defaults.contains_key(n))
    };
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|n| !hidden(n));
    }
    if schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && let Some(obj) = schema.as_object_mut()
    {
        obj.remove("required");
    }
    // An argument set of which every member is now supplied no longer needs the caller.
    let satisfied = schema
        .get("anyOf")
        .and_then(Value::as_array)
        .is_some_and(|sets| {
            sets.iter().any(|set| {
                set["required"]
                    .as_array()
                    .is_some_and(|names| names.iter().all(hidden))
            })
        });
    if satisfied && let Some(obj) = schema.as_object_mut() {
        obj.remove("anyOf");
    }
    schema
}

#[cfg(test)]
mod tests;
