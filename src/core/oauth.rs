//! A server's OAuth 2.1 settings as plain data: which authorization server it trusts, the
//! resource (audience) its tokens must name, the scopes each tool class needs, the claim
//! that names the user and the per-user rate limit. The pure rule deciding which tool
//! classes a token's scopes allow lives here too; fetching keys and checking signatures
//! is `crate::oauth`'s business.

use std::fmt;

use crate::core::base_url::BaseUrl;
use crate::core::catalog::MethodClass;
use crate::core::server::RateLimitSettings;

/// Scope a token needs for read tools unless the resource says otherwise.
pub(crate) const DEFAULT_READ_SCOPE: &str = "atomicwork.read";
/// Scope a token needs for write and custom tools unless the resource says otherwise.
pub(crate) const DEFAULT_WRITE_SCOPE: &str = "atomicwork.write";
/// Claim the audit log records as the user unless the resource says otherwise.
pub(crate) const DEFAULT_USER_CLAIM: &str = "sub";
/// Path of RFC 9728 protected resource metadata, before the resource's own path.
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Why an access token is refused. None of them carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a signed JWT, or its header or claims cannot be read.
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    /// Signed with an algorithm outside the allow-list (`none`, HMAC, …) or one that does
    /// not fit its key.
    #[error("the access token's signing algorithm is not accepted")]
    DisallowedAlg,
    /// Signed with a key the issuer does not publish.
    #[error("the access token is signed with a key the issuer does not publish")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the access token's signature does not verify")]
    BadSignature,
    /// Past its `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// Its `iss` is not the server's issuer.
    #[error("the access token was issued by another authorization server")]
    WrongIssuer,
    /// Its `aud` does not contain the server's resource.
    #[error("the access token was issued for another resource")]
    WrongAudience,
    /// The issuer's metadata or keys could not be had, so nothing could be checked.
    #[error("the authorization server could not be reached to check the access token")]
    IssuerUnreachable,
}

impl AuthError {
    /// The outcome label of a request refused for this reason, for metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            AuthError::Malformed => "oauth_malformed",
            AuthError::DisallowedAlg => "oauth_disallowed_alg",
            AuthError::UnknownKey => "oauth_unknown_key",
            AuthError::BadSignature => "oauth_bad_signature",
            AuthError::Expired => "oauth_expired",
            AuthError::NotYetValid => "oauth_not_yet_valid",
            AuthError::WrongIssuer => "oauth_wrong_issuer",
            AuthError::WrongAudience => "oauth_wrong_audience",
            AuthError::IssuerUnreachable => "oauth_issuer_unreachable",
        }
    }
}

/// A set of tool classes (read, write, custom).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Classes(u8);

impl Classes {
    /// No class.
    pub(crate) const NONE: Classes = Classes(0);
    /// Every class.
    pub(crate) const ALL: Classes = Classes(0b111);
    /// How many different sets there are.
    pub(crate) const COUNT: usize = 8;

    /// The bit standing for `class`.
    fn bit(class: MethodClass) -> u8 {
        match class {
            MethodClass::Read => 0b001,
            MethodClass::Write => 0b010,
            MethodClass::Custom => 0b100,
        }
    }

    /// The set holding just `class`.
    pub(crate) fn of(class: MethodClass) -> Classes {
        Classes(Self::bit(class))
    }

    /// This set with `class` added.
    pub(crate) fn with(self, class: MethodClass) -> Classes {
        Classes(self.0 | Self::bit(class))
    }

    /// Both sets together.
    pub(crate) fn union(self, other: Classes) -> Classes {
        Classes(self.0 | other.0)
    }

    /// The classes in both sets.
    pub(crate) fn intersection(self, other: Classes) -> Classes {
        Classes(self.0 & other.0)
    }

    /// True when `class` is in the set.
    pub(crate) fn contains(self, class: MethodClass) -> bool {
        self.0 & Self::bit(class) != 0
    }

    /// True when every class of `other` is in this set.
    pub(crate) fn covers(self, other: Classes) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when the set holds no class.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A distinct number below [`Classes::COUNT`] for each set.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0 & 0b111)
    }

    /// The classes in the set, read first.
    pub(crate) fn iter(self) -> impl Iterator<Item = MethodClass> {
        [MethodClass::Read, MethodClass::Write, MethodClass::Custom]
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl fmt::Debug for Classes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The scopes a token needs for each tool class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassScopes {
    pub(crate) read: Vec<String>,
    pub(crate) write: Vec<String>,
    pub(crate) custom: Vec<String>,
}

impl Default for ClassScopes {
    fn default() -> Self {
        ClassScopes {
            read: vec![DEFAULT_READ_SCOPE.to_string()],
            write: vec![DEFAULT_WRITE_SCOPE.to_string()],
            custom: vec![DEFAULT_WRITE_SCOPE.to_string()],
        }
    }
}

impl ClassScopes {
    /// The scopes listed for `class`.
    pub(crate) fn of(&self, class: MethodClass) -> &[String] {
        match class {
            MethodClass::Read => &self.read,
            MethodClass::Write => &self.write,
            MethodClass::Custom => &self.custom,
        }
    }

    /// The classes a token holding `granted` may use: each class whose every listed scope
    /// is granted. Nothing is implied: a class is allowed by its own list alone (an empty
    /// list allows it to every valid token).
    pub(crate) fn allowed<S: AsRef<str>>(&self, granted: &[S]) -> Classes {
        let holds = |scope: &String| granted.iter().any(|g| g.as_ref() == scope);
        [MethodClass::Read, MethodClass::Write, MethodClass::Custom]
            .into_iter()
            .filter(|c| self.of(*c).iter().all(holds))
            .fold(Classes::NONE, Classes::with)
    }

    /// The scopes of every class in `classes`, each once, read's first.
    pub(crate) fn needed(&self, classes: Classes) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for class in classes.iter() {
            for scope in self.of(class) {
                if !out.contains(&scope.as_str()) {
                    out.push(scope);
                }
            }
        }
        out
    }
}

/// How a server checks OAuth access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// Issuer identifier of the authorization server, compared exactly with `iss`.
    pub(crate) issuer: String,
    /// The audience tokens must carry when it is not the connector URL.
    pub(crate) audience: Option<String>,
    /// Base of the server's connector URL (`<public_url>/mcp/<token>`).
    pub(crate) public_url: BaseUrl,
    /// Scopes per tool class.
    pub(crate) scopes: ClassScopes,
    /// Claim naming the user in the audit log and the per-user rate limit.
    pub(crate) user_claim: String,
    /// Each user's rate limit, beside the server's.
    pub(crate) per_user: Option<RateLimitSettings>,
}

impl OAuthSettings {
    /// The resource every token must name in `aud`: `audience` when set, else the
    /// connector URL of the URL token the request came in on.
    pub(crate) fn resource(&self, url_token: &str) -> String {
        match &self.audience {
            Some(audience) => audience.clone(),
            None => format!("{}/mcp/{url_token}", self.public_url),
        }
    }

    /// [`OAuthSettings::resource`] in pieces that, joined, make it: no string is made.
    pub(crate) fn resource_parts<'a>(&'a self, url_token: &'a str) -> [&'a str; 3] {
        match &self.audience {
            Some(audience) => [audience, "", ""],
            None => [self.public_url.as_str(), "/mcp/", url_token],
        }
    }

    /// Where the server's protected resource metadata is: the well-known path inserted
    /// between the connector URL's origin and its path (RFC 9728 §3.1).
    pub(crate) fn metadata_url(&self, url_token: &str) -> String {
        let origin = self.public_url.origin();
        let path = self
            .public_url
            .as_str()
            .strip_prefix(origin)
            .unwrap_or_default();
        format!("{origin}{METADATA_PATH}{path}/mcp/{url_token}")
    }

    /// Every scope of every class, each once, for `scopes_supported`.
    pub(crate) fn scopes_supported(&self) -> Vec<&str> {
        self.scopes.needed(Classes::ALL)
    }

    /// The `WWW-Authenticate` value of a 401: where the metadata is, the scopes of the
    /// read class (what a client should ask for first), and with `error` the RFC 6750
    /// `invalid_token` error and its description.
    pub(crate) fn challenge(&self, metadata_url: &str, error: Option<&str>) -> String {
        let mut out = format!("Bearer resource_metadata=\"{metadata_url}\"");
        let scope = self.scopes.needed(Classes::of(MethodClass::Read)).join(" ");
        if !scope.is_empty() {
            out.push_str(&format!(", scope=\"{scope}\""));
        }
        if let Some(description) = error {
            out.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                quoted(description)
            ));
        }
        out
    }

    /// The `WWW-Authenticate` value of a 403 for a token that lacks scopes: every scope a
    /// token needs for `classes`, in one challenge (RFC 6750 §3.1, step-up).
    pub(crate) fn insufficient_scope(&self, metadata_url: &str, classes: Classes) -> String {
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata_url}\"",
            self.scopes.needed(classes).join(" ")
        )
    }
}

/// Text fit for a quoted-string of a header: printable ASCII without `"` and `\`.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .collect()
}

/// The issuer as a URL this server may fetch metadata from: `https`, or `http` on a
/// loopback host (`localhost`, `127.0.0.1`, `[::1]`), with a host and no query, fragment
/// or user info. The error says what is wrong.
pub(crate) fn check_issuer(issuer: &str) -> Result<(), String> {
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let bare = match host.rsplit_once(':') {
            Some((h, port)) if !h.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        if !matches!(bare, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(
                "must be an https URL; http is accepted only for localhost, 127.0.0.1 and [::1]"
                    .into(),
            );
        }
        rest
    } else {
        return Err("must be an https URL such as https://idp.example.com/realms/it".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("has no host".into());
    }
    if rest.contains(['?', '#', '@']) || rest.contains(char::is_whitespace) {
        return Err("must carry no query, fragment, user info or spaces".into());
    }
    Ok(())
}

/// What one check of an authorization server found: whether its metadata could be
/// discovered and its signing keys fetched. Plain data, so the controller's status can be
/// computed from it without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerCheck {
    /// Metadata discovered and the JWKS fetched, holding this many usable signing keys.
    Ready {
        /// Usable signing keys in the JWKS.
        keys: usize,
    },
    /// No metadata document could be fetched, or the JWKS could not be; says why (no
    /// token or secret, only the URL and the failure).
    Unreachable(String),
    /// A metadata document was fetched but is not usable for this issuer; says why.
    BadMetadata(String),
    /// The JWKS holds no signing key this server can use (asymmetric keys only).
    NoKeys,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(read: &[&str], write: &[&str], custom: &[&str]) -> ClassScopes {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ClassScopes {
            read: own(read),
            write: own(write),
            custom: own(custom),
        }
    }

    #[test]
    fn a_class_needs_every_scope_listed_for_it() {
        let s = ClassScopes::default();
        assert_eq!(
            s.allowed(&["atomicwork.read"]),
            Classes::of(MethodClass::Read)
        );
        // Write does not imply read unless the lists say so.
        assert_eq!(
            s.allowed(&["atomicwork.write"]),
            Classes::of(MethodClass::Write).with(MethodClass::Custom)
        );
        assert_eq!(
            s.allowed(&["atomicwork.read", "atomicwork.write"]),
            Classes::ALL
        );
        assert_eq!(s.allowed::<&str>(&[]), Classes::NONE);
        assert_eq!(s.allowed(&["atomicwork.READ", "openid"]), Classes::NONE);

        let two = scopes(&["r"], &["r", "w"], &["r", "w", "admin"]);
        assert_eq!(two.allowed(&["w"]), Classes::NONE);
        assert_eq!(
            two.allowed(&["w", "r"]),
            Classes::of(MethodClass::Read).with(MethodClass::Write)
        );
        assert_eq!(two.allowed(&["admin", "w", "r"]), Classes::ALL);
        // An empty list lets every valid token use the class.
        let open_read = scopes(&[], &["w"], &["w"]);
        assert_eq!(
            open_read.allowed::<&str>(&[]),
            Classes::of(MethodClass::Read)
        );
    }

    #[test]
    fn needed_scopes_are_listed_once_in_class_order() {
        let s = scopes(&["r"], &["w", "r"], &["w", "x"]);
        assert_eq!(s.needed(Classes::ALL), ["r", "w", "x"]);
        assert_eq!(s.needed(Classes::of(MethodClass::Custom)), ["w", "x"]);
        assert!(s.needed(Classes::NONE).is_empty());
    }

    #[test]
    fn class_sets_have_distinct_indexes() {
        let mut seen = std::collections::BTreeSet::new();
        for bits in 0..8u8 {
            let set = Classes(bits);
            assert!(set.index() < Classes::COUNT);
            assert!(seen.insert(set.index()));
            assert!(Classes::ALL.covers(set));
            assert_eq!(set.union(Classes::NONE), set);
            assert_eq!(set.intersection(Classes::ALL), set);
        }
        assert!(!Classes::of(MethodClass::Read).covers(Classes::ALL));
        assert_eq!(format!("{:?}", Classes::ALL), "{Read, Write, Custom}");
    }

    fn settings(public_url: &str, audience: Option<&str>) -> OAuthSettings {
        OAuthSettings {
            issuer: "https://idp.example.com".into(),
            audience: audience.map(str::to_string),
            public_url: BaseUrl::parse(public_url).expect("a test URL"),
            scopes: ClassScopes::default(),
            user_claim: DEFAULT_USER_CLAIM.into(),
            per_user: None,
        }
    }

    #[test]
    fn the_resource_is_the_connector_url_unless_an_audience_is_set() {
        let s = settings("https://mcp.example.com", None);
        assert_eq!(s.resource("tok"), "https://mcp.example.com/mcp/tok");
        assert_eq!(s.resource_parts("tok").concat(), s.resource("tok"));
        assert_eq!(
            s.metadata_url("tok"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/tok"
        );
        let s = settings("https://example.com:8443/gateway", Some("api://atomicwork"));
        assert_eq!(s.resource("tok"), "api://atomicwork");
        assert_eq!(s.resource_parts("tok").concat(), "api://atomicwork");
        assert_eq!(
            s.metadata_url("tok"),
            "https://example.com:8443/.well-known/oauth-protected-resource/gateway/mcp/tok"
        );
        assert_eq!(
            s.scopes_supported(),
            ["atomicwork.read", "atomicwork.write"]
        );
    }

    #[test]
    fn challenges_name_the_metadata_and_the_scopes() {
        let mut s = settings("https://mcp.example.com", None);
        s.scopes = scopes(&["r1", "r2"], &["w"], &["w", "x"]);
        let url = s.metadata_url("tok");
        assert_eq!(
            s.challenge(&url, None),
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp/tok\", scope=\"r1 r2\""
        );
        assert_eq!(
            s.challenge(&url, Some("the \"token\" has expired\\\n")),
            format!(
                "Bearer resource_metadata=\"{url}\", scope=\"r1 r2\", error=\"invalid_token\", error_description=\"the token has expired\""
            )
        );
        assert_eq!(
            s.insufficient_scope(
                &url,
                Classes::of(MethodClass::Read).with(MethodClass::Custom)
            ),
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"r1 r2 w x\", resource_metadata=\"{url}\""
            )
        );
        // An empty read list needs no scope to ask for.
        s.scopes.read.clear();
        assert_eq!(
            s.challenge(&url, None),
            format!("Bearer resource_metadata=\"{url}\"")
        );
    }

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com",
            "https://idp.example.com/realms/it",
            "https://login.microsoftonline.com/tenant/v2.0",
            "http://localhost:8080",
            "http://127.0.0.1/issuer",
            "http://[::1]:9000",
        ] {
            assert_eq!(check_issuer(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://idp.example.com",
            "http://localhost.example.com",
            "http://10.0.0.1:8080",
            "ftp://idp.example.com",
            "idp.example.com",
            "https://",
            "https:///path",
            "https://idp.example.com?x=1",
            "https://idp.example.com/#frag",
            "https://user@idp.example.com",
            "https://idp.example.com/a b",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad}");
        }
    }
}
