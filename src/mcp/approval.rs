//! A person approves a call before it runs (`spec.confirm`). A 2026-07-28 client that can
//! ask a person gets `resultType: "input_required"` with a form showing what the call
//! would send, and a sealed `requestState`; it retries the same call with the person's
//! answer and the state echoed, and any replica can check both. Clients that cannot ask
//! follow the server's `legacyClients` policy. Every step is an audit-log line.

use serde_json::{Map, Value, json};

use super::eras::{Era, META_CLIENT_CAPABILITIES};
use super::handlers::Ctx;
use super::jsonrpc::Reply;
use super::outcome::Outcome;
use crate::core::catalog::Tool;
use crate::core::confirm::{self, APPROVE_FIELD, INPUT_KEY, LegacyClients, StateError};
use crate::core::tool_result::ToolResult;

/// What the approval step decided.
pub(super) enum Approval {
    /// Run the call.
    Run,
    /// Answer with this instead: a request for approval or a result saying why the call
    /// did not run.
    Answer(Box<Reply>),
    /// The call did not run; the result says why (an error result, nothing sent).
    NotRun(ToolResult),
}

/// Decides whether `tool` may run with `args` now, given the call's `params` (where the
/// `requestState` and `inputResponses` of a retried call are).
pub(super) fn check(
    ctx: &Ctx<'_, '_>,
    params: &Map<String, Value>,
    tool: &Tool,
    args: &Map<String, Value>,
    client: Option<&str>,
) -> Approval {
    let view = ctx.req.view;
    let Some(policy) = view.confirm.as_deref() else {
        return Approval::Run;
    };
    // A dry run sends nothing, so there is nothing to approve.
    if !policy.needs(tool) || view.target.dry_run {
        return Approval::Run;
    }
    // One audit line per step and, when traced, one span: from when the person was asked
    // (`asked_at`, in Unix seconds, known once a retried call's state is open) until now.
    let audit = |step: &str, detail: &str, asked_at: Option<u64>| {
        let user = ctx.req.caller.and_then(|c| c.user.as_deref()).unwrap_or("");
        tracing::info!(
            target: "atomicwork_mcp::audit",
            server = %view.id_label,
            tool = tool.name(),
            approval = step,
            detail,
            user,
            client = client.unwrap_or(""),
            // Written only when the request is traced.
            trace_id = ctx.trace.map(|t| tracing::field::display(t.trace_id)),
            span_id = ctx.trace.map(|t| tracing::field::display(t.span_id)),
            "approval"
        );
        if let Some(start) = ctx.req.trace {
            approval_span(start.tracing, tool, step, detail, asked_at);
        }
    };
    let Some(key) = confirm::key_bytes(&policy.key) else {
        audit("refused", "no_key", None);
        return Approval::NotRun(ToolResult::error(format!(
            "{} was not run: this server's approval key is unusable, so no approval can be asked for. Nothing was sent to Atomicwork; tell the server's owner.",
            tool.name()
        )));
    };
    let stateless = ctx.era == Era::Stateless;
    let now = jiff::Timestamp::now().as_second().max(0).unsigned_abs();
    let digest = confirm::arguments_digest(args);
    let state = params.get("requestState").and_then(Value::as_str);
    if let Some(state) = state.filter(|_| stateless) {
        let asked_at = match confirm::open(
            &key,
            state,
            &view.id_label,
            tool.name(),
            &digest,
            now,
            policy.ttl,
        ) {
            Ok(issued) => Some(issued),
            Err(e) => {
                audit(
                    if e == StateError::Expired {
                        "expired"
                    } else {
                        "rejected"
                    },
                    e.label(),
                    None,
                );
                return Approval::NotRun(ToolResult::error(format!(
                    "{} was not run: {e}. Nothing was sent to Atomicwork. To run it, call the tool again (without requestState) and a person will be asked to approve it anew.",
                    tool.name()
                )));
            }
        };
        let answer = params.get("inputResponses").and_then(|r| r.get(INPUT_KEY));
        let action = answer.and_then(|a| a.get("action")).and_then(Value::as_str);
        let approved = answer
            .and_then(|a| a.get("content"))
            .and_then(|c| c.get(APPROVE_FIELD))
            .and_then(Value::as_bool)
            == Some(true);
        return match (action, approved) {
            (Some("accept"), true) => {
                audit("approved", "", asked_at);
                Approval::Run
            }
            (Some("accept" | "decline"), _) => {
                audit("declined", "", asked_at);
                Approval::NotRun(ToolResult::error(format!(
                    "{} was not run: the person declined it. Nothing was sent to Atomicwork. Do not retry unless they ask you to.",
                    tool.name()
                )))
            }
            (Some("cancel"), _) => {
                audit("cancelled", "", asked_at);
                Approval::NotRun(ToolResult::error(format!(
                    "{} was not run: the person dismissed the approval request without deciding. Nothing was sent to Atomicwork.",
                    tool.name()
                )))
            }
            _ => {
                audit("rejected", "no_answer", asked_at);
                Approval::NotRun(ToolResult::error(format!(
                    "{} was not run: the retried call carried no answer to the approval request (inputResponses.{INPUT_KEY}). Nothing was sent to Atomicwork.",
                    tool.name()
                )))
            }
        };
    }
    if stateless && can_elicit(params) {
        let summary = match crate::upstream::approval_summary(tool, args, &view.target) {
            Ok(s) => s,
            // The call cannot be built; running it reports why, and sends nothing.
            Err(_) => return Approval::Run,
        };
        audit("asked", "", None);
        let sealed = confirm::seal(&key, &view.id_label, tool.name(), &digest, now);
        return Approval::Answer(Box::new(ask(
            ctx,
            tool,
            &summary,
            sealed,
            policy.ttl.as_secs(),
        )));
    }
    match policy.legacy_clients {
        LegacyClients::Allow => {
            audit("allowed_without_approval", "client_cannot_ask", None);
            Approval::Run
        }
        LegacyClients::Refuse => {
            audit("refused", "client_cannot_ask", None);
            Approval::NotRun(ToolResult::error(format!(
                "{} was not run: on this server it needs a person's approval, and this client cannot ask for it (approval needs MCP 2026-07-28 with the elicitation capability). Nothing was sent to Atomicwork. Use a client that supports it, or ask the server's owner.",
                tool.name()
            )))
        }
    }
}

/// A span for one approval step, under the request's span. For a retried call's answer
/// it starts when the person was asked, so its length is the time they took.
fn approval_span(
    tracing: &crate::telemetry::Tracing,
    tool: &Tool,
    step: &str,
    detail: &str,
    asked_at: Option<u64>,
) {
    use crate::telemetry::attr;
    use opentelemetry::KeyValue;
    let mut attributes = vec![
        KeyValue::new(attr::GEN_AI_TOOL_NAME, tool.name().to_string()),
        KeyValue::new(attr::APPROVAL_STEP, step.to_string()),
    ];
    if !detail.is_empty() {
        attributes.push(KeyValue::new(attr::APPROVAL_DETAIL, detail.to_string()));
    }
    let start = asked_at.map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
    let cx = tracing.start_span(
        &opentelemetry::Context::current(),
        opentelemetry::trace::SpanKind::Internal,
        format!("approval {}", tool.name()),
        start,
        attributes,
    );
    crate::telemetry::end_span(&cx, None, Vec::new());
}

/// True when the request's `_meta` declares the elicitation capability.
fn can_elicit(params: &Map<String, Value>) -> bool {
    params
        .get("_meta")
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
        .and_then(|c| c.get("elicitation"))
        .is_some_and(|e| !e.is_null())
}

/// The `input_required` result: one form elicitation asking to approve the call.
fn ask(ctx: &Ctx<'_, '_>, tool: &Tool, summary: &str, state: String, ttl: u64) -> Reply {
    let message = format!(
        "Approve this call to Atomicwork?\n\n{} ({})\n{summary}\n\nThe request expires in {ttl} seconds.",
        tool.source.title,
        tool.name()
    );
    let request = json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": {
                    APPROVE_FIELD: {
                        "type": "boolean",
                        "title": "Approve",
                        "description": "Run this call now",
                        "default": false
                    }
                },
                "required": [APPROVE_FIELD]
            }
        }
    });
    let mut result = Map::new();
    result.insert("resultType".into(), json!("input_required"));
    result.insert("inputRequests".into(), json!({ INPUT_KEY: request }));
    result.insert("requestState".into(), Value::String(state));
    ctx.ok(result, Outcome::ApprovalAsked)
}
