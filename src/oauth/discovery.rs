//! Finding an issuer's JWKS: its metadata document at the well-known URIs of RFC 8414
//! (`oauth-authorization-server`) and OpenID Connect Discovery (`openid-configuration`),
//! in the order the MCP authorization spec gives, and the document's `jwks_uri`.

use serde_json::Value;

use crate::core::oauth::check_issuer;

/// The metadata URLs to try for `issuer`, in order. Without a path: the RFC 8414 URI,
/// then the OpenID Connect one. With a path: the RFC 8414 URI with the well-known part
/// inserted before the path, the OpenID Connect URI the same way, then the OpenID Connect
/// URI appended to the issuer (as OpenID Connect Discovery 1.0 defines it). A trailing
/// `/` of the issuer is dropped first.
pub(crate) fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    let (origin, path) = match issuer[after_scheme..].find('/') {
        Some(i) => issuer.split_at(after_scheme + i),
        None => (issuer, ""),
    };
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ]
    }
}

/// Why a metadata document is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadMetadata {
    /// Not a JSON object.
    NotJson,
    /// Its `issuer` is not the configured issuer (RFC 8414 §3.3); carries what it says.
    OtherIssuer(String),
    /// No `jwks_uri`, or one that is not https (or http on a loopback host).
    NoJwksUri,
}

impl std::fmt::Display for BadMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadMetadata::NotJson => f.write_str("the metadata is not a JSON object"),
            BadMetadata::OtherIssuer(other) => write!(
                f,
                "the metadata names issuer {other:?}, not the configured one; set spec.auth.oauth.issuer to the issuer exactly as the authorization server names it"
            ),
            BadMetadata::NoJwksUri => f.write_str(
                "the metadata has no usable jwks_uri (https, or http on a loopback host)",
            ),
        }
    }
}

/// The `jwks_uri` of a metadata document for `issuer`.
pub(crate) fn jwks_uri(document: &[u8], issuer: &str) -> Result<String, BadMetadata> {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(document) else {
        return Err(BadMetadata::NotJson);
    };
    let named = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if named != issuer {
        return Err(BadMetadata::OtherIssuer(named.chars().take(200).collect()));
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(BadMetadata::NoJwksUri)?;
    check_issuer(uri).map_err(|_| BadMetadata::NoJwksUri)?;
    Ok(uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_uris_follow_rfc_8414_and_openid_connect() {
        assert_eq!(
            metadata_urls("https://idp.example.com"),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("https://idp.example.com/"),
            metadata_urls("https://idp.example.com")
        );
        assert_eq!(
            metadata_urls("https://idp.example.com:8443/realms/it/"),
            [
                "https://idp.example.com:8443/.well-known/oauth-authorization-server/realms/it",
                "https://idp.example.com:8443/.well-known/openid-configuration/realms/it",
                "https://idp.example.com:8443/realms/it/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn the_document_must_name_the_issuer_and_a_usable_jwks_uri() {
        let issuer = "https://idp.example.com/realms/it";
        let doc = |v: serde_json::Value| v.to_string().into_bytes();
        assert_eq!(
            jwks_uri(
                &doc(
                    serde_json::json!({"issuer": issuer, "jwks_uri": "https://idp.example.com/certs"})
                ),
                issuer
            ),
            Ok("https://idp.example.com/certs".to_string())
        );
        assert_eq!(
            jwks_uri(
                &doc(
                    serde_json::json!({"issuer": "http://127.0.0.1:9", "jwks_uri": "http://127.0.0.1:9/jwks"})
                ),
                "http://127.0.0.1:9"
            ),
            Ok("http://127.0.0.1:9/jwks".to_string())
        );
        assert_eq!(
            jwks_uri(
                &doc(
                    serde_json::json!({"issuer": format!("{issuer}/"), "jwks_uri": "https://idp.example.com/certs"})
                ),
                issuer
            ),
            Err(BadMetadata::OtherIssuer(format!("{issuer}/")))
        );
        assert_eq!(
            jwks_uri(&doc(serde_json::json!({"issuer": issuer})), issuer),
            Err(BadMetadata::NoJwksUri)
        );
        assert_eq!(
            jwks_uri(
                &doc(
                    serde_json::json!({"issuer": issuer, "jwks_uri": "http://idp.example.com/certs"})
                ),
                issuer
            ),
            Err(BadMetadata::NoJwksUri)
        );
        assert_eq!(jwks_uri(b"[]", issuer), Err(BadMetadata::NotJson));
        assert_eq!(jwks_uri(b"<html>", issuer), Err(BadMetadata::NotJson));
    }
}
