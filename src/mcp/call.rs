//! The `tools/call` flow: the tool looked up (or a discovery meta-tool run), the default
//! workspace filled in, the arguments checked against the tool's schema, the rate limit
//! applied, the call run through the [`ToolRunner`], and the result written as MCP wants
//! it, every error text capped on the way.

use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value, json};

use super::approval::{self, Approval};
use super::discovery;
use super::eras::{Era, META_CLIENT_INFO, header_str};
use super::escape::push_json_str;
use super::handlers::Ctx;
use super::jsonrpc::{CallRecord, Reply, code};
use super::outcome::Outcome;
use super::{CallGate, ToolRunner};
use crate::core::catalog::meta_tools::{CALL_TOOL, GET_TOOL_SCHEMA};
use crate::core::catalog::{Tool, ToolSet};
use crate::core::oauth::Classes;
use crate::core::server::{Exposure, ServerView};
use crate::core::tool_result::ToolResult;
use crate::upstream::{CallOutcome, OutcomeClass, RateLimitInfo};

/// Answers `tools/call`: finds the tool (or runs a discovery meta-tool), fills the
/// default workspace, checks the arguments and the rate limit, then runs the call.
pub(super) async fn tools_call<R: ToolRunner, G: CallGate>(
    ctx: &Ctx<'_, '_>,
    params: Value,
    runner: &R,
    gate: &G,
) -> Reply {
    let Value::Object(mut params) = params else {
        return ctx.err(code::INVALID_PARAMS, "params must be an object", None);
    };
    let arguments = params.remove("arguments");
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return ctx.err(
            code::INVALID_PARAMS,
            "params.name (the tool name) is required",
            None,
        );
    };
    let args = match arguments {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return ctx.err(
                code::INVALID_PARAMS,
                "params.arguments must be an object",
                None,
            );
        }
    };
    let client = client_name(ctx, &params);
    let view = ctx.req.view;
    // The tools this caller may use: all of them, or for an OAuth caller those of the
    // classes their scopes allow. A tool of the server outside them answers 403.
    let allowed = view.tools_for(ctx.req.caller);
    let (tool, mut args) = match view.exposure {
        Exposure::All => match allowed.get(name) {
            Some(t) => (t.clone(), args),
            None => match view.tools.get(name) {
                Some(t) => {
                    let needed = Classes::of(t.method_class());
                    return insufficient_scope(ctx, t.name(), needed, client);
                }
                None => return unknown_tool(ctx, name, false),
            },
        },
        Exposure::Discovery => {
            if !crate::core::catalog::meta_tools::is_meta_tool(name) {
                return unknown_tool(ctx, name, true);
            }
            if let Some((tool, needed)) = out_of_scope(view, allowed, name, &args) {
                return insufficient_scope(ctx, &tool, needed, client);
            }
            match discovery::meta_call(allowed, name, args) {
                discovery::MetaOutcome::Done(result) => {
                    return finish_call(ctx, name, client, local_outcome(result));
                }
                discovery::MetaOutcome::Call(tool, args) => (tool, args),
            }
        }
    };
    tool.shape_args(&mut args);
    fill_default_workspace(&tool, &mut args, view);
    // The schema validator reads a JSON value: the map is wrapped for it and unwrapped
    // again at once.
    let args = Value::Object(args);
    if let Err(problems) = tool.validate_value(&args) {
        let text = crate::core::catalog::invalid_arguments_text(tool.name(), &problems);
        let mut out = local_outcome(ToolResult::error(text));
        out.class = OutcomeClass::InvalidArguments;
        return finish_call(ctx, tool.name(), client, out);
    }
    let Value::Object(args) = args else {
        unreachable!("the arguments were wrapped as an object just above");
    };
    match approval::check(ctx, &params, &tool, &args, client.as_deref()) {
        Approval::Run => {}
        Approval::Answer(reply) => return *reply,
        Approval::NotRun(result) => {
            let mut out = local_outcome(result);
            out.class = OutcomeClass::NotApproved;
            return finish_call(ctx, tool.name(), client, out);
        }
    }
    if let Some(caller) = ctx.req.caller
        && let Err(wait) = gate.admit_user_call(view, caller.user.as_deref().unwrap_or(""))
    {
        let per_user = view.oauth.as_ref().and_then(|o| o.per_user);
        let text = format!(
            "Rate limited: this MCP server allows each user {} tool calls per minute. Wait {wait} seconds, then retry.",
            per_user.map(|r| r.per_minute).unwrap_or_default()
        );
        let mut out = local_outcome(ToolResult::error(text));
        out.class = OutcomeClass::RateLimited;
        out.rate_limit = Some(RateLimitInfo {
            limit: per_user.map(|r| format!("{};w=60", r.per_minute)),
            remaining: Some(0),
            reset: Some(wait),
            retry_after: Some(wait),
        });
        let mut reply = finish_call(ctx, tool.name(), client, out);
        reply.status = StatusCode::TOO_MANY_REQUESTS;
        reply.outcome = Outcome::UserRateLimited;
        return reply;
    }
    if let Err(wait) = gate.admit_call(view) {
        let text = format!(
            "Rate limited: this MCP server allows {} tool calls per minute. Wait {wait} seconds, then retry.",
            view.rate_limit.map(|r| r.per_minute).unwrap_or_default()
        );
        let mut out = local_outcome(ToolResult::error(text));
        out.class = OutcomeClass::RateLimited;
        out.rate_limit = Some(RateLimitInfo {
            limit: view.rate_limit.map(|r| format!("{};w=60", r.per_minute)),
            remaining: Some(0),
            reset: Some(wait),
            retry_after: Some(wait),
        });
        let mut reply = finish_call(ctx, tool.name(), client, out);
        reply.status = StatusCode::TOO_MANY_REQUESTS;
        reply.outcome = Outcome::RateLimited;
        return reply;
    }
    let outcome = runner.run(view, &tool, args).await;
    finish_call(ctx, tool.name(), client, outcome)
}

/// For a discovery meta-tool: the tool it names (or the meta-tool, for several) and the
/// classes needed, when the call reaches a tool of the server the caller's scopes do not
/// allow. `search_tools` only ever finds allowed tools, so it is never out of scope.
fn out_of_scope(
    view: &ServerView,
    allowed: &ToolSet,
    name: &str,
    args: &Map<String, Value>,
) -> Option<(String, Classes)> {
    let needs = |n: &str| match (allowed.get(n), view.tools.get(n)) {
        (None, Some(t)) => Some(Classes::of(t.method_class())),
        _ => None,
    };
    match name {
        CALL_TOOL => {
            let n = args.get("tool_name").and_then(Value::as_str)?;
            needs(n).map(|c| (n.to_string(), c))
        }
        GET_TOOL_SCHEMA => {
            let names = args.get("tool_names").and_then(Value::as_array)?;
            let needed = names
                .iter()
                .filter_map(Value::as_str)
                .filter_map(needs)
                .fold(Classes::NONE, Classes::union);
            (!needed.is_empty()).then(|| (name.to_string(), needed))
        }
        _ => None,
    }
}

/// HTTP 403 with an `insufficient_scope` challenge naming every scope a new token needs:
/// those of the classes the caller already has and of the ones `tool` needs, so a token
/// obtained after stepping up loses nothing.
fn insufficient_scope(
    ctx: &Ctx<'_, '_>,
    tool: &str,
    needed: Classes,
    client: Option<String>,
) -> Reply {
    let view = ctx.req.view;
    let (Some(oauth), Some(caller)) = (view.oauth.as_deref(), ctx.req.caller) else {
        return unknown_tool(ctx, tool, view.exposure == Exposure::Discovery);
    };
    let wanted = caller.classes.union(needed);
    let scopes = oauth.scopes.needed(needed).join(" ");
    let message = format!(
        "Insufficient scope: {tool} needs an access token with the scopes {scopes:?}; sign in again to grant them"
    );
    let mut reply = Reply::error(
        StatusCode::FORBIDDEN,
        Some(ctx.id),
        code::INSUFFICIENT_SCOPE,
        &message,
        None,
        Outcome::InsufficientScope,
    );
    let metadata_url = oauth.metadata_url(caller.url_token);
    if let Ok(v) = HeaderValue::from_str(&oauth.insufficient_scope(&metadata_url, wanted)) {
        reply.headers.insert(http::header::WWW_AUTHENTICATE, v);
    }
    reply.call = Some(CallRecord {
        tool: tool.to_string(),
        outcome: OutcomeClass::InsufficientScope,
        upstream_status: None,
        upstream_latency: std::time::Duration::ZERO,
        attempts: 0,
        client,
    });
    reply
}

fn unknown_tool(ctx: &Ctx<'_, '_>, name: &str, discovery_mode: bool) -> Reply {
    let message = if discovery_mode {
        format!(
            "Unknown tool: {name}. This server uses discovery: call search_tools to find tools, get_tool_schema for their arguments and call_tool to run them"
        )
    } else {
        format!("Unknown tool: {name}")
    };
    let mut reply = ctx.err(code::INVALID_PARAMS, &message, None);
    reply.outcome = Outcome::UnknownTool;
    reply
}

fn local_outcome(result: ToolResult) -> CallOutcome {
    let class = if result.is_error {
        OutcomeClass::InvalidArguments
    } else {
        OutcomeClass::Ok
    };
    CallOutcome {
        result,
        upstream_status: None,
        rate_limit: None,
        class,
        attempts: 0,
        upstream_latency: std::time::Duration::ZERO,
    }
}

fn finish_call(
    ctx: &Ctx<'_, '_>,
    tool: &str,
    client: Option<String>,
    mut out: CallOutcome,
) -> Reply {
    // Every error text is capped here, whichever part of the server wrote it.
    out.result
        .cap_error_text(ctx.req.view.target.api_key.expose());
    let body = call_result_body(ctx, &out.result);
    let mut reply = Reply::json(StatusCode::OK, body, Outcome::Call(out.class));
    if let Some(rl) = &out.rate_limit {
        for (name, value) in rl.headers() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                reply.headers.insert(name, v);
            }
        }
    }
    reply.call = Some(CallRecord {
        tool: tool.to_string(),
        outcome: out.class,
        upstream_status: out.upstream_status,
        upstream_latency: out.upstream_latency,
        attempts: out.attempts,
        client,
    });
    reply
}

/// A `tools/call` result as MCP wants it, written straight from the tool result: the
/// upstream answer is the bulk of it, embedded once as escaped text and once verbatim as
/// structured content, and never parsed or copied on the way.
pub(super) fn call_result_body(ctx: &Ctx<'_, '_>, result: &ToolResult) -> Vec<u8> {
    let stateless = ctx.era == Era::Stateless;
    let text_len: usize = result.content.iter().map(|t| t.len() + 32).sum();
    let raw_len = result.structured.as_ref().map_or(0, |s| s.get().len());
    let mut out = ctx.head(text_len + raw_len + 160);
    out.extend_from_slice(br#"{"content":["#);
    for (i, text) in result.content.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"type":"text","text":"#);
        push_json_str(&mut out, text);
        out.push(b'}');
    }
    out.push(b']');
    // Before the stateless revision structuredContent must be an object.
    if let Some(structured) = result
        .structured
        .as_deref()
        .filter(|s| stateless || s.get().starts_with('{'))
    {
        out.extend_from_slice(br#","structuredContent":"#);
        out.extend_from_slice(structured.get().as_bytes());
    }
    out.extend_from_slice(if result.is_error {
        br#","isError":true"#
    } else {
        br#","isError":false"#
    });
    if stateless {
        out.extend_from_slice(br#","resultType":"complete","#);
        ctx.push_meta(&mut out);
    }
    out.extend_from_slice(b"}}");
    out
}

fn client_name(ctx: &Ctx<'_, '_>, params: &Map<String, Value>) -> Option<String> {
    params
        .get("_meta")
        .and_then(|m| m.get(META_CLIENT_INFO))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| header_str(ctx.req.headers, "user-agent"))
        .map(|s| s.chars().filter(|c| !c.is_control()).take(64).collect())
}

/// Puts the server's default workspace into `workspace_id` when the call names none, so
/// argument checks that need a workspace see it, typed as the tool's schema wants.
fn fill_default_workspace(tool: &Tool, args: &mut Map<String, Value>, view: &ServerView) {
    let Some(ws) = &view.target.workspace_id else {
        return;
    };
    if args
        .get(crate::core::catalog::WORKSPACE_ARG)
        .is_some_and(|v| !v.is_null())
    {
        return;
    }
    let Some(param) = tool.param(crate::core::catalog::WORKSPACE_ARG) else {
        return;
    };
    let wants_integer = param
        .schema
        .as_ref()
        .and_then(|s| s.get("type"))
        .is_some_and(|t| t == "integer");
    let value = match ws.parse::<i64>() {
        Ok(n) if wants_integer => json!(n),
        _ => json!(ws),
    };
    args.insert(crate::core::catalog::WORKSPACE_ARG.into(), value);
}
