//! The status conditions the controller writes, as types. Each condition's reasons are an
//! enum, and what a reason means (ready, stalled, waiting, worth a warning) is a method on
//! it, so a misspelt reason does not compile and no list of strings has to be kept in step.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::k8s::resolve::Problem;

/// The condition types on an `AtomicworkMcpServer`'s status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConditionType {
    /// Whether the endpoint serves calls.
    Ready,
    /// Whether the Secrets the spec names could be read.
    CredentialsResolved,
    /// Whether `spec.expiresAt` has passed.
    Expired,
    /// kstatus "in progress": waiting for something that comes by itself.
    Reconciling,
    /// kstatus "stalled": nothing changes until a person changes the resource.
    Stalled,
    /// Whether the OAuth authorization server was discovered and its keys fetched (only
    /// on servers with `spec.auth.oauth`).
    AuthReady,
}

impl ConditionType {
    /// The `type` written to the status.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::CredentialsResolved => "CredentialsResolved",
            ConditionType::Expired => "Expired",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::AuthReady => "AuthReady",
        }
    }
}

/// A condition reason: the CamelCase word written to the status (and to Events).
pub(crate) trait Reason: Copy {
    /// The reason as written.
    fn reason(self) -> &'static str;
}

/// Why a server is, or is not, Ready. The Ready Event carries the same reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadyReason {
    /// The endpoint serves its tools.
    Serving,
    /// `spec.suspend` is true.
    Suspended,
    /// The filters leave no tool.
    NoToolsMatched,
    /// A Secret the spec names does not exist.
    SecretNotFound,
    /// A Secret the spec names lacks the key it should have.
    SecretKeyMissing,
    /// The spec cannot be served as written.
    InvalidSpec,
    /// `spec.expiresAt` has passed.
    Expired,
    /// The token Secret's name is taken by a Secret this controller did not create.
    TokenSecretConflict,
}

impl ReadyReason {
    /// Every reason, for documentation and tests.
    #[cfg(test)]
    pub(crate) const ALL: [ReadyReason; 8] = [
        ReadyReason::Serving,
        ReadyReason::Suspended,
        ReadyReason::NoToolsMatched,
        ReadyReason::SecretNotFound,
        ReadyReason::SecretKeyMissing,
        ReadyReason::InvalidSpec,
        ReadyReason::Expired,
        ReadyReason::TokenSecretConflict,
    ];

    /// The reason a resolution problem gives.
    pub(crate) fn of(problem: &Problem) -> Self {
        match problem {
            Problem::InvalidSpec(_) => ReadyReason::InvalidSpec,
            Problem::SecretNotFound { .. } => ReadyReason::SecretNotFound,
            Problem::SecretKeyMissing { .. } => ReadyReason::SecretKeyMissing,
            Problem::NoToolsMatched => ReadyReason::NoToolsMatched,
            Problem::Expired(_) => ReadyReason::Expired,
        }
    }

    /// True only when the endpoint serves calls.
    pub(crate) fn is_ready(self) -> bool {
        self == ReadyReason::Serving
    }

    /// True when a person must change the resource before it can be served (kstatus
    /// `Stalled`).
    pub(crate) fn is_stalled(self) -> bool {
        matches!(
            self,
            ReadyReason::InvalidSpec
                | ReadyReason::NoToolsMatched
                | ReadyReason::TokenSecretConflict
        )
    }

    /// True when the server waits for a referenced Secret to appear or be completed, which
    /// GitOps tools and secrets operators often do a moment later (kstatus `Reconciling`).
    pub(crate) fn is_waiting(self) -> bool {
        matches!(
            self,
            ReadyReason::SecretNotFound | ReadyReason::SecretKeyMissing
        )
    }

    /// True when the Ready Event for this reason is a Warning: something is wrong, rather
    /// than a state the user asked for.
    pub(crate) fn is_warning(self) -> bool {
        !matches!(
            self,
            ReadyReason::Serving | ReadyReason::Suspended | ReadyReason::Expired
        )
    }
}

impl Reason for ReadyReason {
    fn reason(self) -> &'static str {
        match self {
            ReadyReason::Serving => "Serving",
            ReadyReason::Suspended => "Suspended",
            ReadyReason::NoToolsMatched => "NoToolsMatched",
            ReadyReason::SecretNotFound => "SecretNotFound",
            ReadyReason::SecretKeyMissing => "SecretKeyMissing",
            ReadyReason::InvalidSpec => "InvalidSpec",
            ReadyReason::Expired => "Expired",
            ReadyReason::TokenSecretConflict => "TokenSecretConflict",
        }
    }
}

/// Why the credentials are, or are not, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialsReason {
    /// Every Secret the spec names was read.
    Resolved,
    /// A Secret is missing.
    SecretNotFound,
    /// A Secret lacks its key.
    SecretKeyMissing,
    /// Not checked: the spec is invalid.
    InvalidSpec,
}

impl Reason for CredentialsReason {
    fn reason(self) -> &'static str {
        match self {
            CredentialsReason::Resolved => "Resolved",
            CredentialsReason::SecretNotFound => "SecretNotFound",
            CredentialsReason::SecretKeyMissing => "SecretKeyMissing",
            CredentialsReason::InvalidSpec => "InvalidSpec",
        }
    }
}

/// Where the server stands against `spec.expiresAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryReason {
    /// It has passed.
    Expired,
    /// It lies ahead.
    NotExpired,
    /// None is set.
    NoExpiry,
}

impl Reason for ExpiryReason {
    fn reason(self) -> &'static str {
        match self {
            ExpiryReason::Expired => "Expired",
            ExpiryReason::NotExpired => "NotExpired",
            ExpiryReason::NoExpiry => "NoExpiry",
        }
    }
}

/// Where a server's OAuth authorization server stands, as the controller last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthReason {
    /// Its metadata was discovered and its signing keys fetched.
    IssuerReady,
    /// Neither its metadata nor its keys could be fetched.
    IssuerUnreachable,
    /// A metadata document was fetched but cannot be used for this issuer.
    IssuerMetadataInvalid,
    /// Its JWKS holds no signing key the data plane can use.
    NoSigningKeys,
    /// Not checked: the spec is invalid.
    InvalidSpec,
    /// Not checked yet.
    NotChecked,
}

impl AuthReason {
    /// The condition's status: True when ready, Unknown when not checked, else False.
    pub(crate) fn status(self) -> Option<bool> {
        match self {
            AuthReason::IssuerReady => Some(true),
            AuthReason::InvalidSpec | AuthReason::NotChecked => None,
            _ => Some(false),
        }
    }
}

impl Reason for AuthReason {
    fn reason(self) -> &'static str {
        match self {
            AuthReason::IssuerReady => "IssuerReady",
            AuthReason::IssuerUnreachable => "IssuerUnreachable",
            AuthReason::IssuerMetadataInvalid => "IssuerMetadataInvalid",
            AuthReason::NoSigningKeys => "NoSigningKeys",
            AuthReason::InvalidSpec => "InvalidSpec",
            AuthReason::NotChecked => "NotChecked",
        }
    }
}

/// The `Reconciling` condition's reason: the Ready reason it waits on, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Waiting for a Secret; carries the Ready reason.
    Waiting(ReadyReason),
    /// The status describes the current spec.
    Reconciled,
}

impl Reason for Progress {
    fn reason(self) -> &'static str {
        match self {
            Progress::Waiting(r) => r.reason(),
            Progress::Reconciled => "Reconciled",
        }
    }
}

/// The `Stalled` condition's reason: the Ready reason that needs a fix, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Waiting for a person; carries the Ready reason.
    Stalled(ReadyReason),
    /// Nothing blocks the controller.
    Progressing,
}

impl Reason for Stall {
    fn reason(self) -> &'static str {
        match self {
            Stall::Stalled(r) => r.reason(),
            Stall::Progressing => "Progressing",
        }
    }
}

/// A condition before its transition time and generation are filled in; `ok` is None for
/// Unknown.
pub(crate) fn condition(
    type_: ConditionType,
    ok: Option<bool>,
    reason: impl Reason,
    message: String,
) -> Condition {
    Condition {
        type_: type_.as_str().to_string(),
        status: match ok {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        }
        .to_string(),
        reason: reason.reason().to_string(),
        message,
        observed_generation: None,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// The `Reconciling` and `Stalled` conditions kstatus (and so Flux, Argo CD health checks
/// and `kubectl wait`-style tools) read, derived from the Ready reason and message.
pub(crate) fn kstatus(ready: ReadyReason, message: &str) -> [Condition; 2] {
    let reconciling = if ready.is_waiting() {
        condition(
            ConditionType::Reconciling,
            Some(true),
            Progress::Waiting(ready),
            format!("waiting for a Secret: {message}"),
        )
    } else {
        condition(
            ConditionType::Reconciling,
            Some(false),
            Progress::Reconciled,
            "the status describes the current spec".into(),
        )
    };
    let stalled = if ready.is_stalled() {
        condition(
            ConditionType::Stalled,
            Some(true),
            Stall::Stalled(ready),
            format!("waiting for a fix: {message}"),
        )
    } else {
        condition(
            ConditionType::Stalled,
            Some(false),
            Stall::Progressing,
            "nothing blocks the controller".into(),
        )
    };
    [reconciling, stalled]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each Ready reason is exactly one of: ready, stalled (needs a fix), waiting (comes
    /// by itself) or a state the user chose (suspended, expired); and only a problem is a
    /// warning.
    #[test]
    fn every_ready_reason_has_one_meaning() {
        for r in ReadyReason::ALL {
            let chosen = matches!(r, ReadyReason::Suspended | ReadyReason::Expired);
            let meanings = [r.is_ready(), r.is_stalled(), r.is_waiting(), chosen];
            assert_eq!(
                meanings.iter().filter(|m| **m).count(),
                1,
                "{r:?}: {meanings:?}"
            );
            assert_eq!(r.is_warning(), r.is_stalled() || r.is_waiting(), "{r:?}");
        }
    }

    /// Reasons are distinct CamelCase words, as the Kubernetes API conventions ask.
    #[test]
    fn reasons_are_distinct_camel_case() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ReadyReason::ALL {
            let s = r.reason();
            assert!(s.chars().all(|c| c.is_ascii_alphabetic()), "{s}");
            assert!(s.starts_with(|c: char| c.is_ascii_uppercase()), "{s}");
            assert!(seen.insert(s), "{s} twice");
        }
    }

    /// kstatus: a missing Secret is in progress, a bad spec is stalled, serving is
    /// neither.
    #[test]
    fn kstatus_follows_the_ready_reason() {
        let [rec, stall] = kstatus(ReadyReason::SecretNotFound, "Secret x not found");
        assert_eq!(
            (rec.status.as_str(), rec.reason.as_str()),
            ("True", "SecretNotFound")
        );
        assert_eq!(rec.message, "waiting for a Secret: Secret x not found");
        assert_eq!(
            (stall.status.as_str(), stall.reason.as_str()),
            ("False", "Progressing")
        );
        let [rec, stall] = kstatus(ReadyReason::InvalidSpec, "spec.x: bad");
        assert_eq!(
            (rec.status.as_str(), rec.reason.as_str()),
            ("False", "Reconciled")
        );
        assert_eq!(
            (stall.status.as_str(), stall.reason.as_str()),
            ("True", "InvalidSpec")
        );
        let [rec, stall] = kstatus(ReadyReason::Serving, "serving");
        assert_eq!(
            (rec.status.as_str(), stall.status.as_str()),
            ("False", "False")
        );
    }
}
