//! Turns a catalog entry into a servable [`Tool`]: consistency checks, the MCP input schema,
//! annotations and the compiled argument validator.

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{
    Annotations, BodyEncoding, CatalogError, Location, MethodClass, ParamDef, ParamKind, Tool,
    ToolSource, WORKSPACE_ARG,
};

pub(super) fn build_tool(mut source: ToolSource) -> Result<Tool, CatalogError> {
    check(&source)?;
    widen_workspace_type(&mut source);
    if !source.params.iter().any(|p| p.name == WORKSPACE_ARG) {
        source.params.push(ParamDef {
            name: WORKSPACE_ARG.to_string(),
            location: Location::Header,
            required: false,
            description: "Atomicwork workspace id to act in (sent as X-Workspace-Id). Defaults \
                          to the server's configured workspace; find ids with \
                          list_all_atomicwork_workspaces."
                .to_string(),
            schema: Some(json!({"type": ["string", "integer"]})),
            kind: None,
            operators: None,
        });
    }
    let input_schema = input_schema(&source);
    let validator = jsonschema::validator_for(&input_schema)
        .map(std::sync::Arc::new)
        .map_err(|e| CatalogError::invalid(&source.name, "params", e.to_string()))?;
    let annotations = annotations(&source);
    let listing = listing(&source, &input_schema, &annotations)?;
    Ok(Tool {
        source,
        annotations,
        input_schema,
        listing,
        validator,
        shaping: None,
    })
}

/// Workspace ids are numeric, but manifests and models often write them as strings:
/// accept both wherever the argument appears.
fn widen_workspace_type(source: &mut ToolSource) {
    for p in &mut source.params {
        if p.name != WORKSPACE_ARG {
            continue;
        }
        if let Some(Value::Object(schema)) = &mut p.schema
            && matches!(schema.get("type"), Some(Value::String(t)) if t == "integer" || t == "string")
        {
            schema.insert("type".into(), json!(["integer", "string"]));
        }
    }
}

fn check(t: &ToolSource) -> Result<(), CatalogError> {
    let bad = |field: &str, msg: String| Err(CatalogError::invalid(&t.name, field, msg));
    if let Err(message) = check_name(&t.name) {
        return bad("name", message);
    }
    if t.title.trim().is_empty() {
        return bad("title", "must not be empty".into());
    }
    if t.description.trim().is_empty() {
        return bad("description", "must not be empty".into());
    }
    if t.method.is_empty() || !t.method.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return bad(
            "method",
            format!(
                "{:?} is not a method name (lower-case letters and '_', e.g. list, get, create, update, delete, partial_update)",
                t.method
            ),
        );
    }
    if t.tags.is_empty() {
        return bad("tags", "needs at least one tag".into());
    }
    if !t.path.starts_with('/') || t.path.contains('?') || t.path.contains('#') {
        return bad(
            "path",
            format!(
                "{:?} must start with '/' and carry no query (use fixedQuery)",
                t.path
            ),
        );
    }
    let placeholders =
        placeholders(&t.path).map_err(|m| CatalogError::invalid(&t.name, "path", m))?;
    let mut seen = std::collections::HashSet::new();
    for (i, p) in t.params.iter().enumerate() {
        let field = format!("params[{i}]");
        if p.name.is_empty() || !seen.insert(p.name.as_str()) {
            return bad(
                &field,
                format!("parameter name {:?} is empty or repeated", p.name),
            );
        }
        check_param(t, p)
            .map_err(|m| CatalogError::invalid(&t.name, &format!("{field} ({})", p.name), m))?;
    }
    for ph in &placeholders {
        if !t
            .params
            .iter()
            .any(|p| &p.name == ph && p.location == Location::Path)
        {
            return bad(
                "path",
                format!("placeholder {{{ph}}} has no parameter with `in: path` and that name"),
            );
        }
    }
    for p in t.params.iter().filter(|p| p.location == Location::Path) {
        if !placeholders.contains(&p.name) {
            return bad(
                "params",
                format!("path parameter {:?} does not appear in the path", p.name),
            );
        }
    }
    if t.body == BodyEncoding::Array {
        let body_params: Vec<_> = t
            .params
            .iter()
            .filter(|p| p.location == Location::Body)
            .collect();
        if body_params.len() != 1 || body_params[0].name != "body" {
            return bad(
                "params",
                "a tool with `body: array` has exactly one body parameter, named `body`".into(),
            );
        }
    }
    for name in &t.query_also {
        if !t
            .params
            .iter()
            .any(|p| &p.name == name && p.location == Location::Body)
        {
            return bad(
                "queryAlso",
                format!("names {name:?}, which is not a body parameter"),
            );
        }
    }
    if t.body == BodyEncoding::None && t.params.iter().any(|p| p.location == Location::Body) {
        return bad("body", "is none but some parameters have `in: body`".into());
    }
    for (i, set) in t.required_one_of.iter().enumerate() {
        for name in set {
            if !t.params.iter().any(|p| &p.name == name) && name != WORKSPACE_ARG {
                return bad(
                    &format!("requiredOneOf[{i}]"),
                    format!("names {name:?}, which is not a parameter"),
                );
            }
        }
    }
    Ok(())
}

/// A tool name MCP clients accept: 1-128 letters, digits, '_', '-' or '.'.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} must be 1-128 characters of letters, digits, '_', '-' or '.'"
        ))
    }
}

fn check_param(t: &ToolSource, p: &ParamDef) -> Result<(), String> {
    match (p.location, p.kind) {
        (Location::File, Some(ParamKind::File | ParamKind::Files)) => {}
        (Location::File, _) => return Err("`in: file` needs `kind: file` or `kind: files`".into()),
        (_, Some(ParamKind::File | ParamKind::Files)) => {
            return Err("`kind: file`/`files` needs `in: file`".into());
        }
        (Location::Body, Some(ParamKind::Filters)) if t.body == BodyEncoding::Array => {
            check_operators(p.operators.as_deref())?;
        }
        (_, Some(ParamKind::Filters)) => {
            return Err(
                "`kind: filters` is only for the `body` parameter of a `body: array` tool".into(),
            );
        }
        (_, None) => match &p.schema {
            Some(Value::Object(_)) => {}
            Some(_) => return Err("`schema` must be a JSON Schema object".into()),
            None => return Err("needs a `schema` (or a `kind`)".into()),
        },
    }
    if p.location == Location::File && t.body != BodyEncoding::Multipart {
        return Err("file parameters need `body: multipart`".into());
    }
    if p.kind != Some(ParamKind::Filters) && p.operators.is_some() {
        return Err("`operators` is only for a `kind: filters` parameter".into());
    }
    Ok(())
}

/// A filter parameter lists the operators its endpoint accepts: upper-case names, each
/// once.
fn check_operators(operators: Option<&[String]>) -> Result<(), String> {
    let Some(ops) = operators.filter(|o| !o.is_empty()) else {
        return Err(
            "`kind: filters` needs `operators`, the filter operators the endpoint accepts".into(),
        );
    };
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        if op.is_empty() || !op.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(format!(
                "operator {op:?} must be upper-case letters and '_', e.g. IS_ANY_OF"
            ));
        }
        if !seen.insert(op) {
            return Err(format!("operator {op:?} is listed twice"));
        }
    }
    Ok(())
}

/// The `{name}` placeholders of a path template, in order.
pub(crate) fn placeholders(path: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {path:?}"))?;
        let name = &after[..end];
        if name.is_empty() || name.contains('{') {
            return Err(format!("bad placeholder in {path:?}"));
        }
        out.push(name.to_string());
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched '}}' in {path:?}"));
    }
    Ok(out)
}

fn param_schema(p: &ParamDef) -> Value {
    let mut schema = match p.kind {
        Some(ParamKind::Filters) => filters_schema(p.operators.as_deref().unwrap_or_default()),
        Some(ParamKind::File) => file_schema(),
        Some(ParamKind::Files) => json!({"type": "array", "minItems": 1, "items": file_schema()}),
        None => p.schema.clone().unwrap_or_else(|| json!({})),
    };
    if let Value::Object(map) = &mut schema
        && !p.description.is_empty()
    {
        map.insert("description".into(), Value::String(p.description.clone()));
    }
    schema
}

/// The schema of a filter list whose conditions use `operators`.
fn filters_schema(operators: &[String]) -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "attribute": {"type": "string", "minLength": 1},
                "operator": {"type": "string", "enum": operators},
                "values": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"value": {}},
                    "required": ["value"]
                }}
            },
            "required": ["attribute", "operator"]
        }
    })
}

/// The JSON shape a file argument takes in a tool call.
pub(crate) fn file_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "filename": {"type": "string", "minLength": 1, "description": "File name sent to Atomicwork."},
            "content_type": {"type": "string", "description": "MIME type, e.g. text/plain or application/pdf. Defaults to application/octet-stream."},
            "content_base64": {"type": "string", "contentEncoding": "base64", "description": "The file's bytes, base64-encoded (standard alphabet)."}
        },
        "required": ["filename", "content_base64"],
        "additionalProperties": false
    })
}

fn input_schema(t: &ToolSource) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in &t.params {
        properties.insert(p.name.clone(), param_schema(p));
        if p.required {
            required.push(Value::String(p.name.clone()));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    if !t.required_one_of.is_empty() {
        let any_of: Vec<Value> = t
            .required_one_of
            .iter()
            .map(|set| json!({"required": set}))
            .collect();
        schema.insert("anyOf".into(), Value::Array(any_of));
    }
    schema.insert(
        "additionalProperties".into(),
        Value::Bool(t.additional_body),
    );
    Value::Object(schema)
}

fn annotations(t: &ToolSource) -> Annotations {
    let class = MethodClass::of(&t.method);
    let read = class == MethodClass::Read;
    let derived = Annotations {
        read_only_hint: read,
        destructive_hint: !read && t.method != "create",
        idempotent_hint: matches!(t.method.as_str(), "list" | "get" | "update" | "delete"),
        open_world_hint: false,
    };
    let o = t.annotations;
    Annotations {
        read_only_hint: o.read_only_hint.unwrap_or(derived.read_only_hint),
        destructive_hint: o.destructive_hint.unwrap_or(derived.destructive_hint),
        idempotent_hint: o.idempotent_hint.unwrap_or(derived.idempotent_hint),
        open_world_hint: o.open_world_hint.unwrap_or(derived.open_world_hint),
    }
}

/// The tool's `tools/list` entry.
pub(super) fn listing(
    t: &ToolSource,
    input_schema: &Value,
    a: &Annotations,
) -> Result<Box<RawValue>, CatalogError> {
    let entry = json!({
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "inputSchema": input_schema,
        "annotations": {
            "title": t.title,
            "readOnlyHint": a.read_only_hint,
            "destructiveHint": a.destructive_hint,
            "idempotentHint": a.idempotent_hint,
            "openWorldHint": a.open_world_hint,
        }
    });
    serde_json::value::to_raw_value(&entry)
        .map_err(|e| CatalogError::invalid(&t.name, "listing", e.to_string()))
}
