//! Pure request building: a tool, its arguments and the server's target become the exact
//! HTTP request to send. No I/O, so every rule here is unit-testable.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::multipart::{self, FilePart};
use crate::core::catalog::{BodyEncoding, HttpMethod, Location, ParamDef, Tool, WORKSPACE_ARG};
use crate::core::server::Target;

/// Everything outside RFC 3986 "unreserved" is encoded, so no argument can add a path
/// segment, a query or a fragment, or smuggle an already-encoded character through.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest value of one path argument (an id), in characters. Atomicwork ids are short
/// (`ITREQ-12`, `42`); a longer value is refused before any URL is built.
pub(crate) const MAX_PATH_VALUE_CHARS: usize = 256;
/// Longest value of one query argument (e.g. a search text), in characters.
pub(crate) const MAX_QUERY_VALUE_CHARS: usize = 2_048;
/// Longest request URL, in bytes once encoded: many servers and proxies refuse more.
pub(crate) const MAX_URL_BYTES: usize = 8_192;

/// Why a tool call could not be turned into a request. Each message names the argument at
/// fault and says how to fix it; none contains the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BuildError {
    #[error(
        "missing argument `{name}` (absent or empty): it is part of the request path ({path}); pass it and call again"
    )]
    MissingPathParam { name: String, path: String },
    #[error(
        "missing argument `workspace_id`: this tool needs a workspace and no default workspace \
         is configured for this server. Pass workspace_id (list_all_atomicwork_workspaces lists \
         the workspaces and their numeric ids), or ask the operator to set \
         spec.atomicwork.workspaceId"
    )]
    MissingWorkspace,
    #[error(
        "argument `{name}`: {value:?} is not a valid id (it must not be empty, \".\" or \"..\", and must not contain \"/\")"
    )]
    BadPathSegment { name: String, value: String },
    #[error(
        "argument `{name}` is {chars} characters long, over the limit of {limit} characters for {place}; {hint}"
    )]
    TooLong {
        name: String,
        chars: usize,
        limit: usize,
        place: &'static str,
        hint: &'static str,
    },
    #[error(
        "the request URL would be {bytes} bytes long, over the limit of {limit} bytes; pass shorter or fewer query arguments (e.g. fewer ids per call)"
    )]
    UrlTooLong { bytes: usize, limit: usize },
    #[error("argument `{name}`: {reason}")]
    BadValue { name: String, reason: String },
    #[error("file argument `{name}`: {reason}")]
    BadFile { name: String, reason: String },
    #[error(
        "file argument `{name}`: file {filename:?} is {size} bytes, over the limit of {limit} bytes per file; send a smaller file"
    )]
    FileTooLarge {
        name: String,
        filename: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "the files of this call add up to {total} bytes, over the limit of {limit} bytes per call; send fewer or smaller files (file {filename:?} crossed the limit)"
    )]
    UploadTooLarge {
        filename: String,
        total: usize,
        limit: usize,
    },
}

/// The request a tool call becomes, before any credential is attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreparedRequest {
    pub(crate) method: HttpMethod,
    /// Full URL: base URL, encoded path and encoded query.
    pub(crate) url: String,
    /// The encoded path, e.g. `/api/v1/requests/ITREQ-12`.
    pub(crate) path: String,
    /// Query pairs, unencoded, in the order sent.
    pub(crate) query: Vec<(String, String)>,
    /// The `X-Workspace-Id` to send, if any.
    pub(crate) workspace: Option<String>,
    pub(crate) body: PreparedBody,
}

/// The request body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PreparedBody {
    None,
    /// A JSON object or (for filter lists) a bare JSON array.
    Json(Value),
    /// multipart/form-data: text fields, then file parts.
    Multipart {
        fields: Vec<(String, String)>,
        files: Vec<FilePart>,
    },
}

/// Builds the request for a tool call. Arguments not declared by the tool are ignored
/// unless the tool passes extra body fields through (`additional_body`).
pub(crate) fn build_request(
    tool: &Tool,
    args: &Map<String, Value>,
    target: &Target,
) -> Result<PreparedRequest, BuildError> {
    let base = target.base_url.as_str();
    let workspace = workspace(args, target)?;
    let path = build_path(tool, args, workspace.as_deref())?;
    let query = build_query(tool, args)?;
    let body = build_body(tool, args)?;
    let mut url = format!("{base}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&encode_query(&query));
    }
    if url.len() > MAX_URL_BYTES {
        return Err(BuildError::UrlTooLong {
            bytes: url.len(),
            limit: MAX_URL_BYTES,
        });
    }
    Ok(PreparedRequest {
        method: tool.source.http,
        url,
        path,
        query,
        workspace,
        body,
    })
}

/// The workspace for `X-Workspace-Id`: the call's `workspace_id` argument (wherever the
/// tool declares it), else the server's default.
fn workspace(args: &Map<String, Value>, target: &Target) -> Result<Option<String>, BuildError> {
    let from_args = scalar_arg(
        args,
        WORKSPACE_ARG,
        "must be a workspace id (a number or a string)",
    )?;
    let chosen = from_args
        .filter(|s| !s.is_empty())
        .or_else(|| target.workspace_id.clone().filter(|s| !s.is_empty()));
    if let Some(ws) = &chosen {
        check_length(WORKSPACE_ARG, ws, PATH_LIMIT)?;
    }
    if let Some(ws) = &chosen
        && !ws.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(BuildError::BadValue {
            name: WORKSPACE_ARG.into(),
            reason: format!("{ws:?} is not a workspace id (use the numeric id)"),
        });
    }
    Ok(chosen)
}

/// Substitutes `{name}` placeholders, each value encoded as exactly one path segment.
fn build_path(
    tool: &Tool,
    args: &Map<String, Value>,
    workspace: Option<&str>,
) -> Result<String, BuildError> {
    let template = tool.source.path.as_str();
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = path_value(tool, args, name, workspace)?;
        out.push_str(&utf8_percent_encode(&value, COMPONENT).to_string());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn path_value(
    tool: &Tool,
    args: &Map<String, Value>,
    name: &str,
    workspace: Option<&str>,
) -> Result<String, BuildError> {
    let given = scalar_arg(
        args,
        name,
        "is part of the request path and must be a string or a number",
    )?;
    let value = given
        .filter(|s| !s.is_empty())
        .or_else(|| default_of(tool.param(name)))
        .or_else(|| {
            (name == WORKSPACE_ARG)
                .then(|| workspace.map(str::to_string))
                .flatten()
        });
    if let Some(v) = &value {
        check_length(name, v, PATH_LIMIT)?;
    }
    match value {
        Some(v) if v == "." || v == ".." || v.contains('/') => Err(BuildError::BadPathSegment {
            name: name.into(),
            value: v,
        }),
        Some(v) => Ok(v),
        None if name == WORKSPACE_ARG => Err(BuildError::MissingWorkspace),
        None => Err(BuildError::MissingPathParam {
            name: name.into(),
            path: tool.source.path.clone(),
        }),
    }
}

/// A length limit and how it is explained.
struct Limit {
    chars: usize,
    place: &'static str,
    hint: &'static str,
}

const PATH_LIMIT: Limit = Limit {
    chars: MAX_PATH_VALUE_CHARS,
    place: "a value in the request path",
    hint: "Atomicwork ids are short (e.g. ITREQ-12 or 42): pass the id itself",
};

const QUERY_LIMIT: Limit = Limit {
    chars: MAX_QUERY_VALUE_CHARS,
    place: "a query value",
    hint: "pass a shorter value",
};

/// Refuses a value longer than `limit`, naming the argument but not quoting the value.
fn check_length(name: &str, value: &str, limit: Limit) -> Result<(), BuildError> {
    if value.len() <= limit.chars {
        return Ok(());
    }
    let chars = value.chars().count();
    if chars <= limit.chars {
        return Ok(());
    }
    Err(BuildError::TooLong {
        name: name.into(),
        chars,
        limit: limit.chars,
        place: limit.place,
        hint: limit.hint,
    })
}

/// The argument `name` as text; absent or null is `None`, anything but a scalar is
/// `BadValue` with `reason`.
fn scalar_arg(
    args: &Map<String, Value>,
    name: &str,
    reason: &str,
) -> Result<Option<String>, BuildError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_text(v)
            .map(Some)
            .ok_or_else(|| BuildError::BadValue {
                name: name.into(),
                reason: reason.into(),
            }),
    }
}

/// The `default` of a parameter's schema, as text.
fn default_of(param: Option<&ParamDef>) -> Option<String> {
    let schema = param?.schema.as_ref()?;
    scalar_text(schema.get("default")?).filter(|s| !s.is_empty())
}

/// Query pairs in declaration order, then the tool's fixed query, then `page=1` when the
/// tool needs a page and the caller gave none. A declared schema `default` fills an
/// absent query argument (e.g. `filter_name=all`, which Atomicwork requires).
fn build_query(
    tool: &Tool,
    args: &Map<String, Value>,
) -> Result<Vec<(String, String)>, BuildError> {
    let src = &tool.source;
    let mut out = Vec::new();
    for p in src.params.iter().filter(|p| p.location == Location::Query) {
        if src.fixed_query.contains_key(&p.name) {
            continue;
        }
        match args.get(&p.name) {
            None | Some(Value::Null) => {
                if let Some(d) = default_of(Some(p)) {
                    out.push((p.name.clone(), d));
                }
            }
            Some(v) => push_query(&mut out, &p.name, v)?,
        }
    }
    for (name, v) in &src.fixed_query {
        push_query(&mut out, name, v)?;
    }
    for name in &src.query_also {
        if let Some(v) = args.get(name) {
            push_query(&mut out, name, v)?;
        }
    }
    if src.page_default && !out.iter().any(|(k, _)| k == "page") {
        out.push(("page".into(), "1".into()));
    }
    Ok(out)
}

fn push_query(out: &mut Vec<(String, String)>, name: &str, v: &Value) -> Result<(), BuildError> {
    let bad = |reason: &str| BuildError::BadValue {
        name: name.into(),
        reason: reason.into(),
    };
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                let text = scalar_text(item).ok_or_else(|| {
                    bad("is a query parameter; its items must be strings, numbers or booleans")
                })?;
                check_length(name, &text, QUERY_LIMIT)?;
                out.push((name.into(), text));
            }
        }
        Value::Object(_) => {
            return Err(bad(
                "is a query parameter and cannot be an object; pass a string, number, boolean or a list of them",
            ));
        }
        scalar => {
            if let Some(text) = scalar_text(scalar) {
                check_length(name, &text, QUERY_LIMIT)?;
                out.push((name.into(), text));
            }
        }
    }
    Ok(())
}

fn encode_query(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, COMPONENT));
        out.push('=');
        out.extend(utf8_percent_encode(v, COMPONENT));
    }
    out
}

fn build_body(tool: &Tool, args: &Map<String, Value>) -> Result<PreparedBody, BuildError> {
    match tool.source.body {
        BodyEncoding::None => Ok(PreparedBody::None),
        BodyEncoding::Json => Ok(PreparedBody::Json(Value::Object(json_fields(tool, args)))),
        BodyEncoding::Array => array_body(args),
        BodyEncoding::Multipart => multipart::build(tool, args),
    }
}

/// The `in: body` arguments, plus every undeclared argument for `additional_body` tools.
pub(super) fn json_fields(tool: &Tool, args: &Map<String, Value>) -> Map<String, Value> {
    let mut body = Map::new();
    for (name, value) in args {
        let keep = match tool.param(name) {
            Some(p) => p.location == Location::Body,
            None => tool.source.additional_body,
        };
        if keep && !value.is_null() {
            body.insert(name.clone(), value.clone());
        }
    }
    body
}

/// The `body` argument as a bare JSON array; absent means no filters (`[]`).
fn array_body(args: &Map<String, Value>) -> Result<PreparedBody, BuildError> {
    match args.get("body") {
        None | Some(Value::Null) => Ok(PreparedBody::Json(Value::Array(Vec::new()))),
        Some(v @ Value::Array(_)) => Ok(PreparedBody::Json(v.clone())),
        Some(_) => Err(BuildError::BadValue {
            name: "body".into(),
            reason: "must be a list of filter conditions, e.g. [{\"attribute\":\"status\",\"operator\":\"IS_ANY_OF\",\"values\":[{\"value\":\"OPEN\"}]}]".into(),
        }),
    }
}

/// A scalar as it is written in a URL or form field; `None` for arrays, objects and null.
pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
