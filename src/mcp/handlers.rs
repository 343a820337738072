//! The methods a tools-only server answers (`initialize`, `ping`, `server/discover`,
//! `tools/list`; `tools/call` is in [`super::call`]) and how a result is written:
//! straight into bytes, with the stateless revision's `_meta` where it needs one.

use http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::eras::{
    DEFAULT_LEGACY_VERSION, Era, LEGACY_VERSIONS, META_SERVER_INFO, SUPPORTED_VERSIONS,
};
use super::escape::push_json_str;
use super::jsonrpc::{Reply, code};
use super::outcome::Outcome;
use super::{CallGate, Request, ToolRunner, call};
use crate::core::server::{Exposure, ServerView};

/// One request being answered: the request, its revision and its id.
pub(super) struct Ctx<'a, 'b> {
    pub(super) req: &'a Request<'b>,
    pub(super) era: Era,
    pub(super) id: &'a RawValue,
    /// The request's span, when it is traced (for its log lines).
    pub(super) trace: Option<crate::telemetry::TraceIds>,
}

impl Ctx<'_, '_> {
    /// Writes a result object, adding what the stateless revision requires: `resultType`
    /// and the server's `_meta`. Keys come out in the map's (sorted) order; `_meta` goes
    /// first, where sorting puts it before the lowercase keys of every result here.
    pub(super) fn ok(&self, mut result: Map<String, Value>, outcome: Outcome) -> Reply {
        let stateless = self.era == Era::Stateless;
        if stateless {
            result
                .entry("resultType")
                .or_insert_with(|| json!("complete"));
        }
        debug_assert!(result.keys().all(|k| k.as_str() > "_meta"));
        let mut out = self.head(512);
        out.push(b'{');
        if stateless {
            self.push_meta(&mut out);
        }
        for (i, (key, value)) in result.iter().enumerate() {
            if stateless || i > 0 {
                out.push(b',');
            }
            push_json_str(&mut out, key);
            out.push(b':');
            if serde_json::to_writer(&mut out, value).is_err() {
                return self.err(code::INTERNAL_ERROR, "could not serialise the result", None);
            }
        }
        out.extend_from_slice(b"}}");
        Reply::json(StatusCode::OK, out, outcome)
    }

    /// A success response up to its result, `{"jsonrpc":"2.0","id":…,"result":`, with room
    /// for `capacity` more bytes.
    pub(super) fn head(&self, capacity: usize) -> Vec<u8> {
        const OPEN: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
        const RESULT: &[u8] = br#","result":"#;
        let id = self.id.get().as_bytes();
        let mut out = Vec::with_capacity(OPEN.len() + id.len() + RESULT.len() + capacity);
        out.extend_from_slice(OPEN);
        out.extend_from_slice(id);
        out.extend_from_slice(RESULT);
        out
    }

    /// Appends the stateless revision's `"_meta":{"io.modelcontextprotocol/serverInfo":…}`,
    /// the same object as [`Ctx::server_info`].
    pub(super) fn push_meta(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#""_meta":{"#);
        push_json_str(out, META_SERVER_INFO);
        out.extend_from_slice(br#":{"name":"#);
        push_json_str(out, self.req.identity.name);
        out.extend_from_slice(br#","title":"#);
        push_json_str(out, &self.req.view.display_name);
        out.extend_from_slice(br#","version":"#);
        push_json_str(out, self.req.identity.version);
        out.extend_from_slice(b"}}");
    }

    pub(super) fn err(&self, c: i64, message: &str, data: Option<Value>) -> Reply {
        let status = if c == code::METHOD_NOT_FOUND && self.era == Era::Stateless {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        let outcome = match c {
            code::METHOD_NOT_FOUND => Outcome::MethodNotFound,
            code::INVALID_PARAMS => Outcome::InvalidParams,
            _ => Outcome::Error,
        };
        Reply::error(status, Some(self.id), c, message, data, outcome)
    }

    fn server_info(&self) -> Value {
        json!({
            "name": self.req.identity.name,
            "title": self.req.view.display_name,
            "version": self.req.identity.version,
        })
    }

    fn instructions(&self) -> String {
        instructions(self.req.view)
    }

    fn capabilities(&self) -> Value {
        json!({"tools": {"listChanged": false}})
    }
}

/// Short guidance for the model using this server.
pub(crate) fn instructions(view: &ServerView) -> String {
    let mut text = format!(
        "{} gives access to Atomicwork ITSM (requests, changes, assets, audit logs, service catalog, workspaces, users). ",
        view.display_name
    );
    match &view.target.workspace_id {
        Some(ws) => text.push_str(&format!(
            "Most tools act in one workspace; this server defaults to workspace {ws}, pass workspace_id to use another (list_all_atomicwork_workspaces lists them). "
        )),
        None => text.push_str(
            "Most tools need a workspace_id: get one from list_all_atomicwork_workspaces first. ",
        ),
    }
    text.push_str("Lists are paged with page (from 1) and per_page (at most 100). Requests and changes are addressed by display ids such as ITREQ-12 or CHG-3.");
    if view.exposure == Exposure::Discovery {
        text.push_str(" Tools are not listed individually: use search_tools to find one, get_tool_schema for its arguments, then call_tool.");
    }
    if view.target.dry_run {
        text.push_str(
            " Dry-run mode: write tools return the request they would send and change nothing.",
        );
    }
    text
}

pub(super) async fn dispatch<R: ToolRunner, G: CallGate>(
    ctx: &Ctx<'_, '_>,
    method: &str,
    params: Value,
    runner: &R,
    gate: &G,
) -> Reply {
    match method {
        "initialize" => initialize(ctx, &params),
        "ping" if ctx.era != Era::Stateless => ctx.ok(Map::new(), Outcome::Ok),
        "server/discover" => discover(ctx),
        "tools/list" => tools_list(ctx, &params),
        "tools/call" => call::tools_call(ctx, params, runner, gate).await,
        "resources/list" | "resources/templates/list" | "prompts/list" => ctx.err(
            code::METHOD_NOT_FOUND,
            &format!("{method} is not offered: this server has tools only"),
            None,
        ),
        _ => ctx.err(
            code::METHOD_NOT_FOUND,
            &format!("method {method:?} not found"),
            None,
        ),
    }
}

fn initialize(ctx: &Ctx<'_, '_>, params: &Value) -> Reply {
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_LEGACY_VERSION);
    let version = LEGACY_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LEGACY_VERSIONS[LEGACY_VERSIONS.len() - 1]);
    let mut result = Map::new();
    result.insert("protocolVersion".into(), json!(version));
    result.insert("capabilities".into(), ctx.capabilities());
    result.insert("serverInfo".into(), ctx.server_info());
    result.insert("instructions".into(), json!(ctx.instructions()));
    ctx.ok(result, Outcome::Ok)
}

fn discover(ctx: &Ctx<'_, '_>) -> Reply {
    let mut result = Map::new();
    let newest_first: Vec<&str> = SUPPORTED_VERSIONS.iter().rev().copied().collect();
    result.insert("supportedVersions".into(), json!(newest_first));
    result.insert("capabilities".into(), ctx.capabilities());
    result.insert("instructions".into(), json!(ctx.instructions()));
    result.insert("ttlMs".into(), json!(0));
    result.insert("cacheScope".into(), json!("private"));
    ctx.ok(result, Outcome::Ok)
}

fn tools_list(ctx: &Ctx<'_, '_>, params: &Value) -> Reply {
    if params.get("cursor").is_some_and(|c| !c.is_null()) {
        return ctx.err(
            code::INVALID_PARAMS,
            "invalid cursor: this server returns every tool in one page",
            None,
        );
    }
    let view = ctx.req.view;
    // An OAuth caller sees the tools of the classes their scopes allow.
    let set = view.tools_for(ctx.req.caller);
    let tools: &RawValue = match view.exposure {
        Exposure::All => set.listing(),
        Exposure::Discovery => set.discovery_listing(),
    };
    // The listing was serialised once for the tool set; only the envelope is written here.
    let mut body = ctx.head(tools.get().len() + 256);
    body.extend_from_slice(br#"{"tools":"#);
    body.extend_from_slice(tools.get().as_bytes());
    if ctx.era == Era::Stateless {
        body.extend_from_slice(br#","resultType":"complete","ttlMs":0,"cacheScope":"private","#);
        ctx.push_meta(&mut body);
    }
    body.extend_from_slice(b"}}");
    Reply::json(StatusCode::OK, body, Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::tool_result::ToolResult;
    use crate::mcp::ServerIdentity;
    use crate::mcp::call::call_result_body;
    use crate::mcp::eras::META_SERVER_INFO;
    use http::HeaderMap;

    /// A served view whose display name needs escaping.
    fn view() -> Arc<ServerView> {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: key, namespace: t}\nstringData: {apiKey: test-api-key-0123456789}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: s, namespace: t}\nspec:\n  displayName: \"Ops \\\"desk\\\" \\u00e9\\t\\u2028\"\n  atomicwork:\n    baseUrl: https://t.atomicwork.com\n    apiKeySecretRef: {name: key}\n  methods: [read]\n";
        crate::test_support::resolve_view(text)
    }

    /// Results and `_meta` written by hand are the bytes serde_json writes for the same
    /// objects: a response envelope around the sorted result map.
    #[test]
    fn results_are_written_as_serde_json_writes_them() {
        let view = view();
        assert!(view.display_name.contains('"'), "{}", view.display_name);
        let headers = HeaderMap::new();
        let identity = ServerIdentity::default();
        let req = Request {
            view: &view,
            headers: &headers,
            body: b"",
            identity: &identity,
            caller: None,
            trace: None,
        };
        let id = RawValue::from_string("\"a-1\"".into()).expect("id");
        for era in [Era::Legacy, Era::Stateless] {
            let ctx = Ctx {
                req: &req,
                era,
                id: &id,
                trace: None,
            };
            let mut result = Map::new();
            result.insert("supportedVersions".into(), json!(["x"]));
            result.insert("instructions".into(), json!(ctx.instructions()));
            result.insert("ttlMs".into(), json!(0));
            let mut expected = result.clone();
            if era == Era::Stateless {
                expected.insert("resultType".into(), json!("complete"));
                expected.insert(
                    "_meta".into(),
                    json!({ META_SERVER_INFO: ctx.server_info() }),
                );
            }
            let expected = format!(
                r#"{{"jsonrpc":"2.0","id":"a-1","result":{}}}"#,
                Value::Object(expected)
            );
            let body = ctx.ok(result, Outcome::Ok).body.expect("a body");
            assert_eq!(std::str::from_utf8(&body), Ok(expected.as_str()), "{era:?}");

            let meta = format!(
                r#","_meta":{}}}}}"#,
                json!({ META_SERVER_INFO: ctx.server_info() })
            );
            let listed = tools_list(&ctx, &json!({})).body.expect("a body");
            let called = call_result_body(&ctx, &ToolResult::error("no"));
            for written in [&listed[..], &called[..]] {
                let written = std::str::from_utf8(written).expect("UTF-8");
                assert!(written.starts_with(r#"{"jsonrpc":"2.0","id":"a-1","result":{"#));
                assert_eq!(written.ends_with(&meta), era == Era::Stateless, "{written}");
            }
        }
    }
}
