//! An http(s) base URL, checked once where it enters (a manifest, a runtime record, a
//! flag) and carried as a type from then on, so the rules live in one place and no call
//! parses it again.

use std::fmt;
use std::sync::Arc;

/// An absolute `http`/`https` URL with a host and no query, fragment or credentials,
/// kept without a trailing slash so that a path starting with `/` can be appended. It may
/// carry a path prefix (a gateway in front of the tenant, say).
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// The URL as written, trimmed, without a trailing slash.
    text: Arc<str>,
    /// `host` or `host:port` when the port is not the scheme's default.
    authority: Arc<str>,
    /// The host alone.
    host: Arc<str>,
    /// `scheme://host[:port]`, as an `Origin` header carries it.
    origin: Arc<str>,
}

/// Why a text is not a usable base URL. The message completes a sentence such as
/// "spec.atomicwork.baseUrl "x" ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// It does not parse as an absolute URL.
    #[error("is not a URL ({0})")]
    NotAUrl(String),
    /// Its scheme is not http or https.
    #[error("must start with https:// or http://")]
    NotHttp,
    /// It carries a query or a fragment.
    #[error("must carry no query or fragment")]
    QueryOrFragment,
    /// It carries a user name or password.
    #[error("must carry no credentials (user name or password)")]
    Credentials,
}

impl BaseUrl {
    /// Checks `raw` (surrounding white space and trailing slashes are ignored).
    pub fn parse(raw: &str) -> Result<BaseUrl, BaseUrlError> {
        let trimmed = raw.trim().trim_end_matches('/');
        let url = url::Url::parse(trimmed).map_err(|e| BaseUrlError::NotAUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BaseUrlError::NotHttp);
        }
        // http and https URLs always parse with a host; anything else was refused above.
        let host = url.host_str().unwrap_or_default();
        if url.query().is_some() || url.fragment().is_some() {
            return Err(BaseUrlError::QueryOrFragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BaseUrlError::Credentials);
        }
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        // The parser normalises (lower-cases the scheme and host, drops a default port);
        // keep its serialisation so equal URLs compare equal.
        let text = url.as_str().trim_end_matches('/');
        Ok(BaseUrl {
            text: text.into(),
            authority: authority.into(),
            host: host.into(),
            origin: url.origin().ascii_serialization().into(),
        })
    }

    /// A base URL that can never be reached (`.invalid` never resolves, RFC 6761), for
    /// entries that must carry no upstream at all.
    pub(crate) fn unreachable() -> BaseUrl {
        BaseUrl {
            text: "https://unreachable.invalid".into(),
            authority: "unreachable.invalid".into(),
            host: "unreachable.invalid".into(),
            origin: "https://unreachable.invalid".into(),
        }
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `host` or `host:port`, for messages that name the tenant.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// The host alone.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// The port: the one written, else the scheme's (443 for https, 80 for http).
    pub(crate) fn port(&self) -> u16 {
        self.authority
            .rsplit_once(':')
            .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(if self.origin.starts_with("http://") {
                80
            } else {
                443
            })
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({:?})", &*self.text)
    }
}

impl PartialEq<&str> for BaseUrl {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

impl TryFrom<String> for BaseUrl {
    type Error = BaseUrlError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        BaseUrl::parse(&raw)
    }
}

impl From<BaseUrl> for String {
    fn from(url: BaseUrl) -> String {
        url.text.to_string()
    }
}

impl serde::Serialize for BaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        BaseUrl::parse(&raw).map_err(|e| serde::de::Error::custom(format!("base URL {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_the_written_one_or_the_schemes() {
        for (url, port) in [
            ("https://t.atomicwork.com", 443),
            ("https://t.atomicwork.com:8443/base", 8443),
            ("http://127.0.0.1:9000", 9000),
            ("http://localhost", 80),
            ("http://[::1]:7000", 7000),
            ("https://[::1]", 443),
        ] {
            assert_eq!(BaseUrl::parse(url).expect(url).port(), port, "{url}");
        }
    }

    #[test]
    fn good_urls_are_kept_without_a_trailing_slash() {
        for (raw, text, authority, origin) in [
            (
                "https://acme.atomicwork.com",
                "https://acme.atomicwork.com",
                "acme.atomicwork.com",
                "https://acme.atomicwork.com",
            ),
            (
                " https://ACME.atomicwork.com/ ",
                "https://acme.atomicwork.com",
                "acme.atomicwork.com",
                "https://acme.atomicwork.com",
            ),
            (
                "http://gateway.local:8080/atomicwork/",
                "http://gateway.local:8080/atomicwork",
                "gateway.local:8080",
                "http://gateway.local:8080",
            ),
            (
                "https://acme.example:443/x",
                "https://acme.example/x",
                "acme.example",
                "https://acme.example",
            ),
            (
                "http://[::1]:9000",
                "http://[::1]:9000",
                "[::1]:9000",
                "http://[::1]:9000",
            ),
        ] {
            let u = BaseUrl::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(u.as_str(), text, "{raw}");
            assert_eq!(u.authority(), authority, "{raw}");
            assert_eq!(u.origin(), origin, "{raw}");
        }
    }

    /// The rules that had drifted between copies: a user name alone, a password alone, a
    /// query, a fragment, another scheme, no host, no scheme.
    #[test]
    fn bad_urls_are_refused_with_the_rule_they_break() {
        for (raw, want) in [
            ("acme.atomicwork.com", "is not a URL"),
            ("", "is not a URL"),
            ("ftp://acme.atomicwork.com", "https:// or http://"),
            ("mailto:it@example.com", "https:// or http://"),
            ("https://acme.atomicwork.com/?x=1", "query or fragment"),
            ("https://acme.atomicwork.com#top", "query or fragment"),
            ("https://user@acme.atomicwork.com", "credentials"),
            ("https://:secret@acme.atomicwork.com", "credentials"),
            ("https://user:secret@acme.atomicwork.com", "credentials"),
            ("http://", "is not a URL"),
            ("https://:443", "is not a URL"),
        ] {
            let err = BaseUrl::parse(raw).expect_err(raw);
            assert!(err.to_string().contains(want), "{raw}: {err}");
            assert!(!err.to_string().contains("secret"), "{raw}: {err}");
        }
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let u: BaseUrl = serde_json::from_str("\"https://acme.atomicwork.com/\"").expect("parses");
        assert_eq!(
            serde_json::to_string(&u).expect("writes"),
            "\"https://acme.atomicwork.com\""
        );
        let err = serde_json::from_str::<BaseUrl>("\"ftp://x\"").expect_err("refused");
        assert!(
            err.to_string().contains("base URL must start with"),
            "{err}"
        );
    }

    #[test]
    fn the_unreachable_url_is_itself_a_valid_base_url() {
        let u = BaseUrl::unreachable();
        assert_eq!(BaseUrl::parse(u.as_str()), Ok(u));
    }
}
