//! A built-in simulated Atomicwork tenant, so the whole MCP flow can be tried
//! without an Atomicwork account (`atomicwork-mcp local --sandbox`).
//!
//! It is an in-memory axum app answering the 37 REST endpoints the curated tool set
//! calls, with the upstream shapes: list envelopes `{data, total_count,
//! total_pages}`, filter-array bodies, display ids such as `ITREQ-3` and `CHG-1`,
//! and the `{error, code}` error envelope. Every other operation of the complete tool
//! set gets a generic answer (`generic.rs`): Atomicwork publishes no response schemas,
//! so those are generic records in the same envelopes. It starts from a fixed sample tenant
//! (see `seed.rs`), and writes persist in memory for the life of the process.
//!
//! Behaviour worth knowing:
//! - Every call needs a non-empty `X-Api-Key` (any value); every answer carries
//!   `x-atomicwork-sandbox: simulated`. An `X-Workspace-Id` that names no
//!   workspace is a 404 on any route.
//! - Workspace-scoped lists (requests, catalog, members) take the workspace from
//!   the path; single reads by id (`/requests/{id}`, changes, assets) are not
//!   scoped.
//! - The key belongs to user 101 (Dana Whitfield, IT admin) and to workspace 1
//!   (IT Service Desk), which is used when a call names no workspace.
//! - Changes and problems also appear in a workspace's request list (types
//!   `CHANGE` and `PROBLEM`), as in the upstream unified request list.
//! - Trashing a change keeps it readable: `GET` returns it with `trashed: true`,
//!   it moves from the `all` request list to the `trash` one, and it can no
//!   longer be updated (409). `DELETE` on a request removes it for good.
//! - Timestamps of writes come from a sandbox clock that starts at
//!   2026-03-14T09:00:00Z and moves one minute per write, so runs are repeatable.

mod assets;
mod audit;
mod body;
mod changes;
mod directory;
mod error;
mod files;
mod filter;
mod generic;
mod params;
mod problems;
mod requests;
mod seed;
mod store;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use error::{ApiError, ApiResult};
use store::{Db, KEY_WORKSPACE_ID};

/// Text that marks every sandbox answer as simulated (used in startup output and tool results).
pub(crate) const SANDBOX_NOTICE: &str =
    "SIMULATED Atomicwork sandbox tenant: sample data, nothing here is real";

/// The response header that marks an answer as coming from the sandbox.
const SANDBOX_HEADER: &str = "x-atomicwork-sandbox";

/// The error text the upstream API gives for a missing key.
const AUTH_ERROR: &str = "Access Token X-Api-Key is missing/invalid";

/// The simulated tenant. Clones share one state, so the router and any other
/// holder see the same writes.
#[derive(Clone)]
pub struct Sandbox {
    db: Arc<Mutex<Db>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

impl Sandbox {
    /// A tenant holding the fixed sample data (same ids and timestamps every time).
    pub fn seeded() -> Self {
        Self {
            db: Arc::new(Mutex::new(seed::tenant())),
        }
    }

    /// The HTTP app: every route, with the tenant state inside.
    pub(crate) fn router(&self) -> Router {
        routes()
            .fallback(unknown_route)
            .method_not_allowed_fallback(wrong_method)
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self.clone())
    }

    /// Serves the app on `listener` until the task is dropped or fails.
    pub(crate) async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The state, or a 500 if an earlier handler panicked while holding it.
    fn lock(&self) -> ApiResult<MutexGuard<'_, Db>> {
        self.db.lock().map_err(|_| {
            ApiError::internal("sandbox state is unavailable after an earlier failure")
        })
    }
}

/// Binds 127.0.0.1:0, spawns the server, returns its base URL like "http://127.0.0.1:PORT" and the task.
pub async fn spawn_local(
    sandbox: Sandbox,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tracing::info!(url = %base, "{SANDBOX_NOTICE}");
    let task = tokio::spawn(async move {
        if let Err(err) = sandbox.serve(listener).await {
            tracing::error!(%err, "sandbox server stopped");
        }
    });
    Ok((base, task))
}

fn routes() -> Router<Sandbox> {
    const CHANGES: &str = "/api/v1/change-management/changes";
    const WS: &str = "/api/v1/workspaces/{workspace_id}";
    Router::new()
        .route("/api/v1/audit-logs", get(audit::list))
        .route(CHANGES, post(changes::create))
        .route(
            &format!("{CHANGES}/create-with-files"),
            post(changes::create_with_files),
        )
        .route(
            &format!("{CHANGES}/{{id}}"),
            get(changes::get_one).patch(changes::update),
        )
        .route(&format!("{CHANGES}/{{id}}/trash"), put(changes::trash))
        .route(
            &format!("{CHANGES}/{{id}}/activity-notes"),
            get(changes::notes),
        )
        .route("/api/v1/assets", post(assets::create))
        .route("/api/v1/assets/list", post(assets::list))
        .route(
            "/api/v1/assets/{id}",
            get(assets::get_one)
                .put(assets::replace)
                .delete(assets::remove),
        )
        .route("/api/v1/requests", post(requests::create))
        .route("/api/v1/requests/create", post(requests::create))
        .route(
            "/api/v1/requests/{id}",
            get(requests::get_one)
                .patch(requests::update)
                .delete(requests::remove),
        )
        .route(
            "/api/v1/requests/{id}/activity-notes",
            post(requests::add_note),
        )
        .route("/api/v1/views/REQUEST", get(requests::views))
        .route("/api/v1/workspaces", get(directory::workspaces))
        .route(
            &format!("{WS}/catalogue/categories"),
            get(directory::categories),
        )
        .route(&format!("{WS}/catalogue/items"), get(directory::items))
        .route(&format!("{WS}/members"), get(directory::members))
        .route(
            &format!("{WS}/members/{{id}}"),
            axum::routing::patch(directory::update_member),
        )
        .route(&format!("{WS}/requests/list"), post(requests::list))
        .route(&format!("{WS}/requests/count"), post(requests::count))
        .route(
            &format!("{WS}/requests/priority-options"),
            get(requests::priorities),
        )
        .route("/api/v1/forms/requests", get(directory::forms))
        .route(
            "/api/v1/forms/{entity_type}/requester/entities",
            get(directory::requester_entities),
        )
        .route("/api/v1/users", post(directory::create_user))
        .route("/api/v1/users/list", get(directory::users))
        .route(
            "/api/v1/problems/{id}/assessment-form",
            get(problems::form).post(problems::submit_form),
        )
        .route(
            "/api/v1/problems/{id}/tasks/{task_id}",
            put(problems::update_task),
        )
        .route("/api/v1/attachments", post(files::upload))
}

/// Checks the API key and any `X-Workspace-Id` (handing the checked workspace on
/// to [`HeaderWorkspace`]), puts every error in the upstream envelope, and marks
/// the answer as simulated.
async fn guard(State(sb): State<Sandbox>, mut req: Request, next: Next) -> Response {
    let has_key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    let mut response = if has_key {
        match header_workspace(&sb, req.headers()) {
            Ok(ws) => {
                req.extensions_mut().insert(HeaderWorkspace(ws));
                enveloped(next.run(req).await).await
            }
            Err(err) => err.into_response(),
        }
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, AUTH_ERROR).into_response()
    };
    response
        .headers_mut()
        .insert(SANDBOX_HEADER, HeaderValue::from_static("simulated"));
    response
}

/// Rewrites a plain-text error (from an extractor) into the `{error, code}` envelope.
async fn enveloped(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    ApiError::new(status, text).into_response()
}

/// A path no handler serves: an operation of the complete set gets a generic answer,
/// anything else is a 404.
async fn unknown_route(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = generic::answer(&sb, &method, &uri, &headers, &body).await {
        return answer;
    }
    ApiError::not_found(format!(
        "No route for {method} {}; the sandbox serves the operations of Atomicwork's published API under /api/v1",
        uri.path()
    ))
    .into_response()
}

/// A path a handler serves, with another method: an operation of the complete set gets
/// a generic answer, anything else is a 405.
async fn wrong_method(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = generic::answer(&sb, &method, &uri, &headers, &body).await {
        return answer;
    }
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
    .into_response()
}

/// Parses a numeric id from a path.
fn parse_id(what: &str, raw: &str) -> ApiResult<u64> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{what} must be an integer, got '{raw}'")))
}

/// The workspace named by a `{workspace_id}` path segment; it must exist.
fn path_workspace(db: &Db, raw: &str) -> ApiResult<u64> {
    let id = parse_id("workspace_id", raw)?;
    db.workspace(id)?;
    Ok(id)
}

/// The first workspace given (body field, then header), else the key's own; it must exist.
fn pick_workspace(db: &Db, choices: &[Option<u64>]) -> ApiResult<u64> {
    let id = choices
        .iter()
        .flatten()
        .copied()
        .next()
        .unwrap_or(KEY_WORKSPACE_ID);
    db.workspace(id)?;
    Ok(id)
}

/// The `X-Workspace-Id` header: absent, or a workspace that exists. [`guard`]
/// checks the header before any handler runs and leaves the result here.
#[derive(Debug, Clone, Copy)]
struct HeaderWorkspace(Option<u64>);

impl FromRequestParts<Sandbox> for HeaderWorkspace {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Sandbox) -> ApiResult<Self> {
        parts
            .extensions
            .get::<Self>()
            .copied()
            .ok_or_else(|| ApiError::internal("X-Workspace-Id was not checked"))
    }
}

/// Reads `X-Workspace-Id`: absent or blank is `None`; otherwise it must name a workspace.
fn header_workspace(sb: &Sandbox, headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(raw) = headers.get("x-workspace-id") else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Workspace-Id must be a workspace id"))?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let id = parse_id("X-Workspace-Id", raw)?;
    sb.lock()?.workspace(id)?;
    Ok(Some(id))
}
