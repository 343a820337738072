//! The complete tool set, generated at development time in two steps.
//!
//! 1. [`operations_from_spec`]: Atomicwork's published OpenAPI document becomes a reduced
//!    description of its operations (`complete/operations.json`): method, path, tags,
//!    parameters and request body as JSON Schema with every `$ref` resolved, and the JSON
//!    examples the document gives for request bodies. No prose of the document is kept,
//!    so the repository holds facts about the API, not a copy of its text. This step needs
//!    the document, which the repository does not carry; `cargo xtask catalog --spec FILE`
//!    runs it.
//! 2. [`complete_from`]: that description plus the project's own curation
//!    (`complete/curation.yaml`: each operation's tool name, title, description, method
//!    class and argument names) becomes the catalog data of the complete set
//!    (`complete/tools.json`). A test re-runs this step on every `cargo test`, so the
//!    committed data cannot drift from the generator.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    AnnotationOverrides, BodyEncoding, HttpMethod, Location, ParamDef, ParamKind, ToolSource,
    WORKSPACE_ARG,
};

/// The committed reduced description of the published API's operations.
pub const OPERATIONS_JSON: &str = include_str!("complete/operations.json");
/// The committed curation of the complete set.
pub const CURATION_YAML: &str = include_str!("complete/curation.yaml");
/// The committed catalog data of the complete set.
pub const TOOLS_JSON: &str = include_str!("complete/tools.json");

/// Where the three files live, relative to the repository root.
pub const OPERATIONS_PATH: &str = "src/core/catalog/complete/operations.json";
/// See [`OPERATIONS_PATH`].
pub const CURATION_PATH: &str = "src/core/catalog/complete/curation.yaml";
/// See [`OPERATIONS_PATH`].
pub const TOOLS_PATH: &str = "src/core/catalog/complete/tools.json";

/// Deepest nesting kept in an argument's schema: below it only the `type` remains, so a
/// tool listing stays readable when the API nests field definitions many levels deep.
const MAX_SCHEMA_DEPTH: usize = 3;

/// Schema keywords kept from the published document.
const KEPT_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "enum",
    "const",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "oneOf",
    "anyOf",
    "allOf",
];

/// A generation failure; the message names the operation or field at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GenerateError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, GenerateError> {
    Err(GenerateError(message.into()))
}

/// The reduced description of the published API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operations {
    /// Every operation, ordered by path and then method.
    pub operations: Vec<Operation>,
}

/// One operation of the published API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// HTTP method.
    pub method: HttpMethod,
    /// Path template as published, e.g. `/api/v1/assets/{asset_id}`.
    pub path: String,
    /// The tags the document files the operation under.
    pub tags: Vec<String>,
    /// Path and query parameters (the API key and workspace headers are left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<OperationParam>,
    /// The request body, if the operation takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<OperationBody>,
    /// JSON examples of the request body (or of its `filters` field) from the document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Value>,
}

impl Operation {
    /// `METHOD /path`, the key of the operation in the curation.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A path or query parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationParam {
    /// Name on the wire.
    pub name: String,
    /// `path` or `query`.
    #[serde(rename = "in")]
    pub location: String,
    /// Whether the document marks it required.
    #[serde(default)]
    pub required: bool,
    /// Its schema, `$ref`s resolved, descriptions removed.
    pub schema: Value,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationBody {
    /// `application/json` or `multipart/form-data`.
    pub content_type: String,
    /// Its schema, `$ref`s resolved, descriptions removed.
    pub schema: Value,
}

// ---------------------------------------------------------------------------------------
// Step 1: the published document to the reduced description.
// ---------------------------------------------------------------------------------------

/// The reduced description of an OpenAPI document, as the JSON text committed in
/// `complete/operations.json`.
pub fn operations_from_spec(spec_yaml: &str) -> Result<String, GenerateError> {
    let ops = reduce_spec(spec_yaml)?;
    render_json(&ops)
}

/// The reduced description of an OpenAPI document.
pub fn reduce_spec(spec_yaml: &str) -> Result<Operations, GenerateError> {
    let doc: Value = serde_saphyr::from_str(spec_yaml)
        .map_err(|e| GenerateError(format!("the OpenAPI document is not valid YAML: {e}")))?;
    let components = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return fail("the OpenAPI document has no `paths`");
    };
    let mut operations = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            return fail(format!("path {path}: not an object"));
        };
        for (verb, op) in item {
            let method = match verb.as_str() {
                "get" => HttpMethod::Get,
                "post" => HttpMethod::Post,
                "put" => HttpMethod::Put,
                "patch" => HttpMethod::Patch,
                "delete" => HttpMethod::Delete,
                other => return fail(format!("path {path}: unsupported key {other:?}")),
            };
            operations.push(reduce_operation(method, path, op, &components)?);
        }
    }
    operations.sort_by(|a, b| {
        (a.path.as_str(), method_rank(a.method)).cmp(&(b.path.as_str(), method_rank(b.method)))
    });
    Ok(Operations { operations })
}

fn method_rank(m: HttpMethod) -> u8 {
    match m {
        HttpMethod::Get => 0,
        HttpMethod::Post => 1,
        HttpMethod::Put => 2,
        HttpMethod::Patch => 3,
        HttpMethod::Delete => 4,
    }
}

fn reduce_operation(
    method: HttpMethod,
    path: &str,
    op: &Value,
    components: &Map<String, Value>,
) -> Result<Operation, GenerateError> {
    let at = format!("{method} {path}");
    let tags = op
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut params = Vec::new();
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = resolve(p, components, &mut Vec::new())?;
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
        match location {
            "header" if matches!(name, "X-Api-Key" | "X-Workspace-Id") => continue,
            "path" | "query" => {}
            other => {
                return fail(format!(
                    "{at}: parameter {name:?} is in {other:?}; only path and query parameters (and the API key and workspace headers) are supported"
                ));
            }
        }
        let schema = reduce_schema(
            p.get("schema").unwrap_or(&json!({})),
            components,
            &mut Vec::new(),
        )?;
        params.push(OperationParam {
            name: name.to_string(),
            location: location.to_string(),
            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
            schema,
        });
    }
    let body = match op
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
    {
        None => None,
        Some(content) => {
            let Some((content_type, media)) = content.iter().next() else {
                return fail(format!("{at}: requestBody has no content"));
            };
            if content.len() > 1 {
                return fail(format!("{at}: requestBody has more than one content type"));
            }
            if !matches!(
                content_type.as_str(),
                "application/json" | "multipart/form-data"
            ) {
                return fail(format!(
                    "{at}: request content type {content_type:?} is not supported"
                ));
            }
            let schema = reduce_schema(
                media.get("schema").unwrap_or(&json!({})),
                components,
                &mut Vec::new(),
            )?;
            Some(OperationBody {
                content_type: content_type.clone(),
                schema,
            })
        }
    };
    let examples = json_examples(op.get("description").and_then(Value::as_str).unwrap_or(""))
        .map_err(|e| GenerateError(format!("{at}: {e}")))?;
    Ok(Operation {
        method,
        path: path.to_string(),
        tags,
        params,
        body,
        examples,
    })
}

/// Follows `$ref`s to `#/components/schemas/...` (and parameters given inline).
fn resolve(
    v: &Value,
    components: &Map<String, Value>,
    stack: &mut Vec<String>,
) -> Result<Value, GenerateError> {
    let Some(reference) = v.get("$ref").and_then(Value::as_str) else {
        return Ok(v.clone());
    };
    let Some(name) = reference.strip_prefix("#/components/schemas/") else {
        return fail(format!("unsupported $ref {reference:?}"));
    };
    let Some(target) = components.get(name) else {
        return fail(format!("$ref {reference:?} names no schema"));
    };
    if stack.iter().any(|s| s == name) {
        return Ok(json!({}));
    }
    stack.push(name.to_string());
    let out = resolve(target, components, stack);
    stack.pop();
    out
}

/// A schema with `$ref`s resolved and only the structural keywords kept.
fn reduce_schema(
    v: &Value,
    components: &Map<String, Value>,
    stack: &mut Vec<String>,
) -> Result<Value, GenerateError> {
    if let Some(reference) = v.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or(reference)
            .to_string();
        if stack.contains(&name) {
            // A schema that contains itself: its inner occurrences accept anything.
            return Ok(json!({}));
        }
        let target = resolve(v, components, &mut Vec::new())?;
        stack.push(name);
        let out = reduce_schema(&target, components, stack);
        stack.pop();
        return out;
    }
    let Some(obj) = v.as_object() else {
        return Ok(json!({}));
    };
    let mut out = Map::new();
    for key in KEPT_KEYWORDS {
        let Some(value) = obj.get(*key) else { continue };
        let reduced = match *key {
            "items" => reduce_schema(value, components, stack)?,
            "additionalProperties" if value.is_object() => reduce_schema(value, components, stack)?,
            "properties" => {
                let mut props = Map::new();
                for (name, schema) in value.as_object().into_iter().flatten() {
                    props.insert(name.clone(), reduce_schema(schema, components, stack)?);
                }
                Value::Object(props)
            }
            "oneOf" | "anyOf" | "allOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| reduce_schema(s, components, stack))
                    .collect::<Result<_, _>>()?,
            ),
            _ => value.clone(),
        };
        out.insert((*key).to_string(), reduced);
    }
    Ok(Value::Object(out))
}

/// The JSON values in the ```json fences of an operation's description.
fn json_examples(description: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut rest = description;
    while let Some(start) = rest.find("```json") {
        let after = &rest[start + "```json".len()..];
        let Some(end) = after.find("```") else {
            return Err("unclosed ```json fence in the description".into());
        };
        let text = &after[..end];
        let value: Value = serde_json::from_str(text.trim())
            .map_err(|e| format!("a ```json example does not parse: {e}"))?;
        out.push(value);
        rest = &after[end + 3..];
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Step 2: the reduced description and the curation to catalog data.
// ---------------------------------------------------------------------------------------

/// The project's curation of the complete set.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Curation {
    /// Published tag → catalog tag.
    tags: BTreeMap<String, String>,
    /// Descriptions of arguments that many operations share, by argument name.
    params: BTreeMap<String, String>,
    /// The tool that lists the values of an id argument, by argument name.
    id_sources: BTreeMap<String, String>,
    /// One entry per operation, keyed `METHOD /path` as published.
    operations: BTreeMap<String, OperationCuration>,
}

/// How one operation becomes a tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OperationCuration {
    /// Tool name. A name of the curated set takes that tool's title, description and tags
    /// unless given here.
    name: String,
    /// `list`, `get`, `create`, `update`, `delete` or a custom method name.
    method: String,
    /// The tool's title (required unless the curated set has the tool).
    #[serde(default)]
    title: Option<String>,
    /// When to use the tool (required unless the curated set has the tool).
    #[serde(default)]
    description: Option<String>,
    /// Tags added to those mapped from the published ones.
    #[serde(default)]
    tags: Vec<String>,
    /// Argument names for path placeholders, by published placeholder name.
    #[serde(default)]
    path_names: BTreeMap<String, String>,
    /// Argument descriptions for this tool, by argument name.
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// The tool that lists the values of an id argument of this tool.
    #[serde(default)]
    ids: BTreeMap<String, String>,
    /// Values filled in for absent query arguments (the argument becomes optional).
    #[serde(default)]
    defaults: Map<String, Value>,
    /// Query parameters that take the value of the body field of the same name (one
    /// argument cannot be both; it is sent in both places).
    #[serde(default)]
    shared_query: Vec<String>,
    /// MCP hints that differ from those the method implies.
    #[serde(default)]
    annotations: Option<AnnotationOverrides>,
}

/// The catalog data of the complete set, as the JSON text committed in
/// `complete/tools.json`, from a reduced description (JSON) and the committed curation.
pub fn complete_from(operations_json: &str) -> Result<String, GenerateError> {
    let ops: Operations = serde_json::from_str(operations_json)
        .map_err(|e| GenerateError(format!("operations.json: {e}")))?;
    let tools = complete_sources(&ops)?;
    render_json(&json!({ "tools": tools }))
}

/// The tool sources of the complete set from a reduced description and the committed
/// curation and curated catalog.
pub(crate) fn complete_sources(ops: &Operations) -> Result<Vec<ToolSource>, GenerateError> {
    let curated =
        super::parse_file(super::BUILTIN, "built-in").map_err(|e| GenerateError(e.to_string()))?;
    sources_with(ops, CURATION_YAML, &curated)
}

/// [`complete_sources`] with a given curation text and curated set.
fn sources_with(
    ops: &Operations,
    curation_yaml: &str,
    curated: &[ToolSource],
) -> Result<Vec<ToolSource>, GenerateError> {
    let curation: Curation = serde_saphyr::from_str(curation_yaml)
        .map_err(|e| GenerateError(format!("curation.yaml: {e}")))?;
    let mut seen_keys = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for op in &ops.operations {
        let key = op.key();
        let Some(cur) = curation.operations.get(&key) else {
            return fail(format!(
                "operation {key} has no entry in curation.yaml; add one (suggested name: {})",
                suggested_name(op)
            ));
        };
        seen_keys.insert(key.clone());
        if !names.insert(cur.name.clone()) {
            return fail(format!("{key}: tool name {} is used twice", cur.name));
        }
        let base = curated.iter().find(|t| t.name == cur.name);
        out.push(
            tool_source(op, cur, base, &curation)
                .map_err(|e| GenerateError(format!("{key}: {e}")))?,
        );
    }
    if let Some(stale) = curation.operations.keys().find(|k| !seen_keys.contains(*k)) {
        return fail(format!(
            "curation.yaml has an entry for {stale}, which is not an operation of the API"
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The prefixes of the tool-name families, most specific first (`atomicwork_`, the
/// partial updates' family, is also the tail of every other prefix).
pub const NAME_FAMILIES: [&str; 6] = [
    "list_all_atomicwork_",
    "get_single_atomicwork_",
    "create_a_atomicwork_",
    "update_a_atomicwork_",
    "delete_a_atomicwork_",
    "atomicwork_",
];

/// A name in the catalog's families for an operation that has no curation yet.
fn suggested_name(op: &Operation) -> String {
    let segments: Vec<String> = op
        .path
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.starts_with('{'))
        .map(snake)
        .collect();
    let resource = segments.join("_");
    let last_is_id = op.path.ends_with('}');
    match (op.method, last_is_id) {
        (HttpMethod::Get, false) => format!("list_all_atomicwork_{resource}"),
        (HttpMethod::Get, true) => format!("get_single_atomicwork_{resource}_by_id"),
        (HttpMethod::Post, _) => format!("create_a_atomicwork_{resource}"),
        (HttpMethod::Put, _) => format!("update_a_atomicwork_{resource}_by_id"),
        (HttpMethod::Patch, _) => format!("atomicwork_{resource}_partial_update"),
        (HttpMethod::Delete, _) => format!("delete_a_atomicwork_{resource}_by_id"),
    }
}

/// `camelCase`, `kebab-case` and `snake_case` to `snake_case`.
fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

/// The argument name of a path placeholder: a curation choice, else `workspace_id` for the
/// workspace (so the server's workspace fills it), else `id` for the record a
/// get/update/delete-style tool addresses, else the placeholder in snake_case.
fn path_arg_name(op: &Operation, cur: &OperationCuration, placeholder: &str) -> String {
    if let Some(name) = cur.path_names.get(placeholder) {
        return name.clone();
    }
    let segment = format!("{{{placeholder}}}");
    let is_workspace = matches!(placeholder, "workspace_id" | "workspaceId")
        || op.path.contains(&format!("/workspaces/{segment}"));
    if is_workspace {
        return WORKSPACE_ARG.to_string();
    }
    let addresses_record = !matches!(cur.method.as_str(), "list" | "create");
    if addresses_record && op.path.ends_with(&segment) {
        return "id".to_string();
    }
    snake(placeholder)
}

fn tool_source(
    op: &Operation,
    cur: &OperationCuration,
    base: Option<&ToolSource>,
    curation: &Curation,
) -> Result<ToolSource, String> {
    let mut path = op.path.clone();
    let mut params: Vec<ParamDef> = Vec::new();
    let mut id_notes: Vec<String> = Vec::new();
    let describe = |name: &str, fallback: String| -> String {
        cur.params
            .get(name)
            .cloned()
            .or_else(|| {
                base.and_then(|b| b.params.iter().find(|p| p.name == name))
                    .map(|p| p.description.clone())
                    .filter(|d| !d.is_empty())
            })
            .or_else(|| curation.params.get(name).cloned())
            .unwrap_or(fallback)
    };
    for p in op.params.iter().filter(|p| p.location == "path") {
        let arg = path_arg_name(op, cur, &p.name);
        path = path.replace(&format!("{{{}}}", p.name), &format!("{{{arg}}}"));
        let is_workspace = arg == WORKSPACE_ARG;
        let source = cur
            .ids
            .get(&arg)
            .or_else(|| curation.id_sources.get(&arg))
            .or_else(|| curation.id_sources.get(&snake(&p.name)));
        let noun = snake(&p.name).replace('_', " ");
        let fallback = match source {
            Some(tool) => format!("The {noun} (from {tool})."),
            None => format!("The {noun}."),
        };
        if !is_workspace {
            id_notes.push(match source {
                Some(tool) => format!("{arg} (from {tool})"),
                None => arg.clone(),
            });
        }
        params.push(ParamDef {
            name: arg.clone(),
            location: Location::Path,
            required: !is_workspace,
            description: describe(&arg, fallback),
            schema: Some(shape(&p.schema, 0)),
            kind: None,
            operators: None,
        });
    }
    let mut page_default = false;
    for p in op.params.iter().filter(|p| p.location == "query") {
        if cur.shared_query.contains(&p.name) {
            continue;
        }
        let mut schema = shape(&p.schema, 0);
        let mut required = p.required;
        if p.name == "page" {
            page_default = true;
            required = false;
        }
        if let Some(default) = cur.defaults.get(&p.name) {
            if let Value::Object(map) = &mut schema {
                map.insert("default".into(), default.clone());
            }
            required = false;
        }
        params.push(ParamDef {
            name: p.name.clone(),
            location: Location::Query,
            required,
            description: describe(&p.name, String::new()),
            schema: Some(schema),
            kind: None,
            operators: None,
        });
    }
    if let Some(unused) = cur.shared_query.iter().find(|k| {
        !op.params
            .iter()
            .any(|p| &p.name == *k && p.location == "query")
    }) {
        return Err(format!(
            "sharedQuery names {unused:?}, which is not a query parameter"
        ));
    }
    if let Some(unused) = cur.defaults.keys().find(|k| {
        !op.params
            .iter()
            .any(|p| &p.name == *k && p.location == "query")
    }) {
        return Err(format!(
            "defaults names {unused:?}, which is not a query parameter"
        ));
    }
    let mut body = BodyEncoding::None;
    let mut additional_body = false;
    if let Some(b) = &op.body {
        let multipart = b.content_type == "multipart/form-data";
        let is_array = b.schema.get("type").and_then(Value::as_str) == Some("array");
        if is_array {
            if multipart {
                return Err("a multipart body must be an object".into());
            }
            body = BodyEncoding::Array;
            let items = b.schema.get("items").cloned().unwrap_or(json!({}));
            let operators = filter_operators(&items);
            params.push(ParamDef {
                name: "body".into(),
                location: Location::Body,
                required: operators.is_none(),
                description: describe("body", String::new()),
                schema: operators.is_none().then(|| shape(&b.schema, 0)),
                kind: operators.as_ref().map(|_| ParamKind::Filters),
                operators,
            });
        } else {
            body = if multipart {
                BodyEncoding::Multipart
            } else {
                BodyEncoding::Json
            };
            let props = b
                .schema
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if props.is_empty() {
                additional_body = true;
            }
            let required: BTreeSet<&str> = b
                .schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (name, schema) in &props {
                if params.iter().any(|p| &p.name == name) {
                    return Err(format!(
                        "body field {name:?} has the name of a path or query argument"
                    ));
                }
                let binary = |s: &Value| s.get("format").and_then(Value::as_str) == Some("binary");
                let (location, kind, schema) = if multipart && binary(schema) {
                    (Location::File, Some(ParamKind::File), None)
                } else if multipart && schema.get("items").is_some_and(binary) {
                    (Location::File, Some(ParamKind::Files), None)
                } else {
                    (Location::Body, None, Some(shape(schema, 0)))
                };
                params.push(ParamDef {
                    name: name.clone(),
                    location,
                    required: required.contains(name.as_str()),
                    description: describe(name, String::new()),
                    schema,
                    kind,
                    operators: None,
                });
            }
        }
    }
    let mut tags: Vec<String> = base.map(|b| b.tags.clone()).unwrap_or_default();
    for t in &op.tags {
        let Some(mapped) = curation.tags.get(t) else {
            return Err(format!(
                "published tag {t:?} has no mapping in curation.yaml `tags`"
            ));
        };
        tags.push(mapped.clone());
    }
    tags.extend(cur.tags.iter().cloned());
    let mut unique = BTreeSet::new();
    tags.retain(|t| unique.insert(t.clone()));
    let title = cur
        .title
        .clone()
        .or_else(|| base.map(|b| b.title.clone()))
        .ok_or("needs a title (it is not a tool of the curated set)")?;
    let mut description = cur
        .description
        .clone()
        .or_else(|| base.map(|b| b.description.clone()))
        .ok_or("needs a description (it is not a tool of the curated set)")?
        .trim()
        .to_string();
    // Name the ids the tool needs and where they come from; a description taken from
    // the curated set gets the sentence only if it does not name each id already.
    let path_args: Vec<&str> = params
        .iter()
        .filter(|p| p.location == Location::Path && p.name != WORKSPACE_ARG)
        .map(|p| p.name.as_str())
        .collect();
    let own_text = base.is_none() || cur.description.is_some();
    if !id_notes.is_empty() && (own_text || !path_args.iter().all(|a| mentions(&description, a))) {
        description.push_str(&format!(" Needs {}.", join_and(&id_notes)));
    }
    if params
        .iter()
        .any(|p| p.name == WORKSPACE_ARG && p.location == Location::Path)
        && !mentions(&description, WORKSPACE_ARG)
    {
        description.push_str(" workspace_id defaults to the server's workspace.");
    }
    Ok(ToolSource {
        name: cur.name.clone(),
        title,
        description,
        method: cur.method.clone(),
        tags,
        http: op.method,
        path,
        body,
        page_default,
        fixed_query: Map::new(),
        annotations: cur.annotations.unwrap_or_default(),
        required_one_of: Vec::new(),
        additional_body,
        query_also: cur.shared_query.clone(),
        params,
    })
}

/// Whether `text` names the argument `name` as a word of its own.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        boundary(before) && boundary(after)
    })
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The operators of a filter-condition item schema (`{attribute, operator, values}`), or
/// `None` when the items are not filter conditions.
fn filter_operators(items: &Value) -> Option<Vec<String>> {
    let props = items.get("properties")?.as_object()?;
    if !(props.contains_key("attribute") && props.contains_key("operator")) {
        return None;
    }
    let ops: Vec<String> = props
        .get("operator")?
        .get("enum")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    (!ops.is_empty()).then_some(ops)
}

/// An argument schema for a tool listing: nesting below [`MAX_SCHEMA_DEPTH`] is cut to
/// the type alone.
fn shape(schema: &Value, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return json!({});
    };
    if depth >= MAX_SCHEMA_DEPTH {
        return match obj.get("type") {
            Some(t) => json!({ "type": t }),
            None => json!({}),
        };
    }
    let mut out = Map::new();
    for (key, value) in obj {
        let v = match key.as_str() {
            "items" => shape(value, depth + 1),
            "additionalProperties" if value.is_object() => shape(value, depth + 1),
            "properties" => Value::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, s)| (k.clone(), shape(s, depth + 1)))
                    .collect(),
            ),
            "oneOf" | "anyOf" | "allOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| shape(s, depth + 1))
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), v);
    }
    Value::Object(out)
}

/// Pretty JSON with a final newline, the form the files are committed in.
fn render_json<T: Serialize>(value: &T) -> Result<String, GenerateError> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| GenerateError(e.to_string()))
}

#[cfg(test)]
mod tests;
