//! What became of one MCP request, as the request metric and the access log name it.
//! Every answer the data plane gives carries one; a new way to answer is a new variant,
//! so a label cannot be misspelt.

use crate::core::oauth::AuthError;
use crate::upstream::OutcomeClass;

/// The outcome of one request to a server's endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The URL token matched no server (404).
    UnknownToken,
    /// The `Origin` header is not allowed (403).
    ForbiddenOrigin,
    /// The server expired (403).
    Expired,
    /// The server is suspended (403).
    Suspended,
    /// A required bearer token was missing or not accepted (401).
    Unauthorized,
    /// An OAuth server's request came without an access token (401).
    TokenMissing,
    /// An OAuth server's access token was refused (401; 503 when the issuer could not be
    /// reached).
    TokenRefused(AuthError),
    /// The access token's scopes do not allow what was asked (403).
    InsufficientScope,
    /// `tools/call` was refused by the caller's per-user rate limit.
    UserRateLimited,
    /// `tools/call` was answered with a request for a person's approval.
    ApprovalAsked,
    /// An OAuth server's protected resource metadata was served.
    ResourceMetadata,
    /// Protected resource metadata was asked of a server without OAuth (404).
    NoResourceMetadata,
    /// Not a POST (405).
    MethodNotAllowed,
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
    /// The body is larger than the data plane accepts (413).
    BodyTooLarge,
    /// The body broke off or was malformed (400).
    BodyUnreadable,
    /// The body did not arrive within the body-read timeout (408).
    BodyTimeout,
    /// A notification or client response (202).
    Accepted,
    /// A request other than `tools/call` was answered.
    Ok,
    /// The body (or its params) is not JSON.
    ParseError,
    /// The body is JSON but not an acceptable JSON-RPC request.
    InvalidRequest,
    /// A protocol-revision or header rule was broken.
    ProtocolError,
    /// The method is not one this server answers.
    MethodNotFound,
    /// The params of a known method are wrong.
    InvalidParams,
    /// Any other JSON-RPC error.
    Error,
    /// `tools/call` named a tool this server does not serve.
    UnknownTool,
    /// `tools/call` was refused by the server's rate limit.
    RateLimited,
    /// The request ran past the data plane's request timeout.
    Timeout,
    /// A `tools/call` ran (or was refused before it was sent); how it ended.
    Call(OutcomeClass),
}

impl Outcome {
    /// The snake_case metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::UnknownToken => "unknown_token",
            Outcome::ForbiddenOrigin => "forbidden_origin",
            Outcome::Expired => "expired",
            Outcome::Suspended => "suspended",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TokenMissing => "oauth_missing",
            Outcome::TokenRefused(e) => e.label(),
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::UserRateLimited => "rate_limited_user",
            Outcome::ApprovalAsked => "approval_asked",
            Outcome::ResourceMetadata => "resource_metadata",
            Outcome::NoResourceMetadata => "no_resource_metadata",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::BodyTooLarge => "body_too_large",
            Outcome::BodyUnreadable => "body_unreadable",
            Outcome::BodyTimeout => "body_timeout",
            Outcome::Accepted => "accepted",
            Outcome::Ok => "ok",
            Outcome::ParseError => "parse_error",
            Outcome::InvalidRequest => "invalid_request",
            Outcome::ProtocolError => "protocol_error",
            Outcome::MethodNotFound => "method_not_found",
            Outcome::InvalidParams => "invalid_params",
            Outcome::Error => "error",
            Outcome::UnknownTool => "unknown_tool",
            Outcome::RateLimited => "rate_limited",
            Outcome::Timeout => "timeout",
            Outcome::Call(class) => class.label(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels are what dashboards and alerts select on: each is snake_case and, apart
    /// from a call's own class, names exactly one outcome.
    #[test]
    fn labels_are_snake_case_and_distinct() {
        let all = [
            Outcome::UnknownToken,
            Outcome::ForbiddenOrigin,
            Outcome::Expired,
            Outcome::Suspended,
            Outcome::Unauthorized,
            Outcome::TokenMissing,
            Outcome::TokenRefused(AuthError::Malformed),
            Outcome::TokenRefused(AuthError::DisallowedAlg),
            Outcome::TokenRefused(AuthError::UnknownKey),
            Outcome::TokenRefused(AuthError::BadSignature),
            Outcome::TokenRefused(AuthError::Expired),
            Outcome::TokenRefused(AuthError::NotYetValid),
            Outcome::TokenRefused(AuthError::WrongIssuer),
            Outcome::TokenRefused(AuthError::WrongAudience),
            Outcome::TokenRefused(AuthError::IssuerUnreachable),
            Outcome::InsufficientScope,
            Outcome::UserRateLimited,
            Outcome::ApprovalAsked,
            Outcome::ResourceMetadata,
            Outcome::NoResourceMetadata,
            Outcome::MethodNotAllowed,
            Outcome::UnsupportedMediaType,
            Outcome::BodyTooLarge,
            Outcome::BodyUnreadable,
            Outcome::BodyTimeout,
            Outcome::Accepted,
            Outcome::Ok,
            Outcome::ParseError,
            Outcome::InvalidRequest,
            Outcome::ProtocolError,
            Outcome::MethodNotFound,
            Outcome::InvalidParams,
            Outcome::Error,
            Outcome::UnknownTool,
            Outcome::RateLimited,
            Outcome::Timeout,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for o in all {
            let l = o.label();
            assert!(
                l.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{o:?}: {l}"
            );
            assert!(seen.insert(l), "{l} names two outcomes");
        }
        assert_eq!(Outcome::Call(OutcomeClass::DryRun).label(), "dry_run");
    }
}
