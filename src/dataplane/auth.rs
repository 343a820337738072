//! OAuth servers at the door: the access token of each request checked (before its body
//! is read) and turned into a [`Caller`], the 401 and 503 answers with their challenges,
//! and the RFC 9728 protected resource metadata each OAuth server publishes. Servers
//! without OAuth publish nothing: every `/.well-known/oauth-*` path answers 404 for them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Dataplane, bearer, json_error};
use crate::core::catalog::MethodClass;
use crate::core::oauth::{Classes, OAuthSettings};
use crate::core::server::{Caller, ServerView};
use crate::mcp::{Outcome, code};
use crate::oauth::AuthError;

/// The route of a server's protected resource metadata: the well-known path inserted
/// before the connector URL's path (`/mcp/<token>`), as RFC 9728 §3.1 derives it.
pub(crate) const METADATA_ROUTE: &str = "/.well-known/oauth-protected-resource/mcp/{token}";

/// Seconds a client is asked to wait when the issuer could not be reached.
const RETRY_AFTER_UNREACHABLE: &str = "5";

/// Checks the access token of a request to an OAuth server reached through `url_token`.
/// The error is the answer to send and the outcome to count.
pub(crate) async fn authenticate<'a>(
    dp: &Dataplane,
    view: &ServerView,
    oauth: &OAuthSettings,
    url_token: &'a str,
    headers: &HeaderMap,
) -> Result<Caller<'a>, (Response, Outcome)> {
    let Some(token) = bearer(headers).filter(|t| !t.is_empty()) else {
        return Err((
            unauthorized(
                oauth,
                &oauth.metadata_url(url_token),
                None,
                "this MCP server needs an OAuth access token: Authorization: Bearer <token>",
            ),
            Outcome::TokenMissing,
        ));
    };
    let verified = match dp.verifier.verify(oauth, url_token, token).await {
        Ok(v) => v,
        Err(AuthError::IssuerUnreachable) => {
            let mut resp = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAUTHORIZED,
                &format!("{}; try again shortly", AuthError::IssuerUnreachable),
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_UNREACHABLE),
            );
            return Err((resp, Outcome::TokenRefused(AuthError::IssuerUnreachable)));
        }
        Err(e) => {
            let message = e.to_string();
            return Err((
                unauthorized(
                    oauth,
                    &oauth.metadata_url(url_token),
                    Some(&message),
                    &message,
                ),
                Outcome::TokenRefused(e),
            ));
        }
    };
    let classes = oauth.scopes.allowed(&verified.scopes);
    let present = view.tools.classes();
    if classes.intersection(present).is_empty() {
        // A valid token that reaches none of the server's tools: ask for the scopes of
        // the first class the server has (read, when it has read tools).
        let first = [MethodClass::Read, MethodClass::Write, MethodClass::Custom]
            .into_iter()
            .find(|c| present.contains(*c))
            .map_or(Classes::NONE, Classes::of);
        let scopes = oauth.scopes.needed(first).join(" ");
        let mut resp = json_error(
            StatusCode::FORBIDDEN,
            code::INSUFFICIENT_SCOPE,
            &format!(
                "the access token's scopes allow none of this server's tools; sign in again granting {scopes:?}"
            ),
        );
        let metadata_url = oauth.metadata_url(url_token);
        if let Ok(v) = HeaderValue::from_str(&oauth.insufficient_scope(&metadata_url, first)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return Err((resp, Outcome::InsufficientScope));
    }
    Ok(Caller {
        classes,
        user: verified.user.clone(),
        url_token,
    })
}

/// 401 with the server's challenge; `error` adds `invalid_token` and its description.
fn unauthorized(
    oauth: &OAuthSettings,
    metadata_url: &str,
    error: Option<&str>,
    message: &str,
) -> Response {
    let mut resp = json_error(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message);
    let challenge = HeaderValue::from_str(&oauth.challenge(metadata_url, error))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    resp
}

/// `GET /.well-known/oauth-protected-resource/mcp/{token}`: the RFC 9728 metadata of an
/// OAuth server; 404 for an unknown token and for a server without OAuth.
pub(crate) async fn protected_resource(
    State(dp): State<Arc<Dataplane>>,
    Path(token): Path<String>,
) -> Response {
    let Some(view) = dp.registry.lookup(&token) else {
        dp.metrics.request(None, Outcome::UnknownToken);
        return super::not_found().await;
    };
    let Some(oauth) = view.oauth.as_deref() else {
        dp.metrics
            .request(Some(&view.id_label), Outcome::NoResourceMetadata);
        return super::not_found().await;
    };
    dp.metrics
        .request(Some(&view.id_label), Outcome::ResourceMetadata);
    let document = json!({
        "resource": oauth.resource(&token),
        "authorization_servers": [oauth.issuer],
        "scopes_supported": oauth.scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_name": view.display_name,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.to_string(),
    )
        .into_response()
}
