//! The test authorization server (`tests/common/oidc.rs`, `tests/oidc/server.mjs`) is a
//! real one: its discovery document, JWKS, token endpoint and interaction pages answer as
//! an OAuth 2.1 server does, and the derived invalid tokens are wrong in exactly one way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::oidc::{self, JwtParts, Oidc, jwt_parts};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

/// The resource (a connector URL) the tokens are asked for.
const RESOURCE: &str = "http://127.0.0.1:8080/mcp/server-one";
/// The default read scope.
const READ: &str = "atomicwork.read";
/// The default write scope.
const WRITE: &str = "atomicwork.write";

/// The scope claim as a set.
fn scopes(claims: &Value) -> BTreeSet<String> {
    claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `items` as a set of owned strings.
fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Validation of an RS256 token for `RESOURCE` from `oidc`.
fn validation(oidc: &Oidc, audience: &str) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[oidc.issuer()]);
    v.validate_nbf = true;
    v
}

/// The decoding key for `kid` from the server's real JWKS.
async fn jwks_key(oidc: &Oidc, kid: &str) -> DecodingKey {
    let set: JwkSet = serde_json::from_value(oidc.jwks().await).expect("a JWK set");
    let jwk = set
        .find(kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    DecodingKey::from_jwk(jwk).expect("an RSA public key")
}

/// The kids the server's JWKS lists.
async fn jwks_kids(oidc: &Oidc) -> BTreeSet<String> {
    oidc.jwks().await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// Verifies `token` against the JWKS key its header names; the claims or the error kind
/// (its `Debug` name).
async fn verify(oidc: &Oidc, token: &str, v: &Validation) -> Result<Value, String> {
    let kid = jwt_parts(token).header["kid"]
        .as_str()
        .expect("kid")
        .to_string();
    let key = jwks_key(oidc, &kid).await;
    jsonwebtoken::decode::<Value>(token, &key, v)
        .map(|d| d.claims)
        .map_err(|e| format!("{:?}", e.into_kind()))
}

/// A refusal of kind `kind`, as [`verify`] reports it.
fn refused(kind: ErrorKind) -> Result<Value, String> {
    Err(format!("{kind:?}"))
}

/// The top-level members whose values differ between two JSON objects.
fn differing(a: &Value, b: &Value) -> BTreeSet<String> {
    let (a, b) = (
        a.as_object().expect("object"),
        b.as_object().expect("object"),
    );
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[tokio::test]
async fn discovery_names_the_issuer_its_jwks_and_an_oauth21_profile() {
    let oidc = Oidc::start().await;
    let issuer = oidc.issuer().to_string();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    let d = oidc.discovery().await;
    assert_eq!(d["issuer"], json!(issuer));
    assert_eq!(d["jwks_uri"], json!(oidc.jwks_uri()));
    assert!(oidc.jwks_uri().starts_with(&issuer));
    assert_eq!(d["token_endpoint"], json!(format!("{issuer}/token")));
    assert_eq!(d["authorization_endpoint"], json!(format!("{issuer}/auth")));
    assert_eq!(d["registration_endpoint"], json!(format!("{issuer}/reg")));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    let supported: BTreeSet<String> = d["scopes_supported"]
        .as_array()
        .expect("scopes_supported")
        .iter()
        .map(|s| s.as_str().expect("scope").to_string())
        .collect();
    assert!(
        supported.is_superset(&set(&[READ, WRITE, "openid"])),
        "{supported:?}"
    );
    let grants = d["grant_types_supported"].as_array().expect("grant types");
    assert!(grants.contains(&json!("client_credentials")), "{grants:?}");
    assert!(grants.contains(&json!("authorization_code")), "{grants:?}");

    // RFC 8414 clients find the same metadata.
    let rfc8414 = reqwest::get(oidc.url("/.well-known/oauth-authorization-server"))
        .await
        .expect("GET");
    assert_eq!(rfc8414.status(), 200);
    let m: Value = rfc8414.json().await.expect("JSON");
    assert_eq!(m["issuer"], json!(issuer));
    assert_eq!(m["token_endpoint"], d["token_endpoint"]);

    // The JWKS publishes the signing key, public parts only.
    let jwks = oidc.jwks().await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kid"], json!(oidc.kid()));
    assert_eq!(keys[0]["kty"], json!("RSA"));
    assert!(keys[0].get("d").is_none(), "no private parts in the JWKS");

    // Unknown control paths are not found, and nothing else lives there.
    let missing = reqwest::get(oidc.url("/__test/nothing"))
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn client_credentials_token_is_a_jwt_for_the_requested_resource() {
    let oidc = Oidc::start().await;
    let token = oidc.client_credentials(RESOURCE, &[READ]).await;
    let JwtParts { header, claims, .. } = jwt_parts(&token);
    assert_eq!(header["alg"], json!("RS256"));
    assert_eq!(header["typ"], json!("at+jwt"));
    assert_eq!(header["kid"], json!(oidc.kid()));
    assert_eq!(claims["aud"], json!(RESOURCE));
    assert_eq!(claims["iss"], json!(oidc.issuer()));
    assert_eq!(scopes(&claims), set(&[READ]));
    assert_eq!(claims["client_id"], json!(oidc.confidential.client_id));
    assert_eq!(claims["sub"], json!(oidc.confidential.client_id));
    assert!(
        claims.get("email").is_none(),
        "no user behind client credentials"
    );
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 600, "the default lifetime");
    assert!((iat - now()).abs() < 300, "iat is now: {iat}");

    // The signature verifies against the key the real JWKS publishes...
    let verified = verify(&oidc, &token, &validation(&oidc, RESOURCE))
        .await
        .expect("the token verifies");
    assert_eq!(verified, claims);
    // ...and the audience is exactly the resource asked for.
    let other = verify(
        &oidc,
        &token,
        &validation(&oidc, "http://127.0.0.1:8080/mcp/other"),
    )
    .await;
    assert_eq!(other, refused(ErrorKind::InvalidAudience));

    // Both scopes, for another resource.
    let other_resource = "https://mcp.example.com/mcp/abc";
    let both = oidc
        .client_credentials(other_resource, &[READ, WRITE])
        .await;
    let claims = jwt_parts(&both).claims;
    assert_eq!(claims["aud"], json!(other_resource));
    assert_eq!(scopes(&claims), set(&[READ, WRITE]));
    let write_only = jwt_parts(&oidc.client_credentials(RESOURCE, &[WRITE]).await).claims;
    assert_eq!(scopes(&write_only), set(&[WRITE]));
}

#[tokio::test]
async fn token_requests_outside_the_clients_rights_are_refused() {
    let oidc = Oidc::start().await;
    let read_only = oidc.read_only.clone();
    assert_eq!(read_only.scope, READ);

    // The read-only client gets read, not write.
    let ok = oidc
        .try_client_credentials(&read_only, Some(RESOURCE), &[READ], None)
        .await
        .expect("read is allowed");
    assert_eq!(
        scopes(&jwt_parts(ok["access_token"].as_str().expect("token")).claims),
        set(&[READ])
    );
    let err = oidc
        .try_client_credentials(&read_only, Some(RESOURCE), &[READ, WRITE], None)
        .await
        .expect_err("write is not allowed");
    assert_eq!(
        (err.status, err.error.as_str()),
        (400, "invalid_scope"),
        "{}",
        err.body
    );

    // A resource that is not an http(s) URL.
    let err = oidc
        .try_client_credentials(&oidc.confidential, Some("urn:example:api"), &[READ], None)
        .await
        .expect_err("not a URL");
    assert_eq!(
        (err.status, err.error.as_str()),
        (400, "invalid_target"),
        "{}",
        err.body
    );

    // A wrong secret.
    let mut wrong = oidc.confidential.clone();
    wrong.client_secret = Some("not-the-secret".into());
    let err = oidc
        .try_client_credentials(&wrong, Some(RESOURCE), &[READ], None)
        .await
        .expect_err("wrong secret");
    assert_eq!(
        (err.status, err.error.as_str()),
        (401, "invalid_client"),
        "{}",
        err.body
    );

    // The public client may not use client credentials.
    let err = oidc
        .try_client_credentials(&oidc.public, Some(RESOURCE), &[READ], None)
        .await
        .expect_err("public client");
    assert_eq!(err.status, 400, "{}", err.body);
}

#[tokio::test]
async fn access_token_lifetime_is_chosen_per_request_or_at_start() {
    let oidc = Oidc::start().await;
    let short = oidc.client_credentials_with_ttl(RESOURCE, &[READ], 2).await;
    let c = jwt_parts(&short).claims;
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        2
    );

    let err = oidc
        .try_client_credentials(&oidc.confidential, Some(RESOURCE), &[READ], Some(0))
        .await
        .expect_err("a zero lifetime is refused");
    assert_eq!(err.error, "invalid_request", "{}", err.body);

    let started = Oidc::start_with_env(&[("OIDC_ACCESS_TOKEN_TTL", "7")]).await;
    let c = jwt_parts(&started.client_credentials(RESOURCE, &[READ]).await).claims;
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        7
    );
    let c = jwt_parts(&started.authorization_code_pkce(RESOURCE, &[READ]).await).claims;
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        7
    );
}

#[tokio::test]
async fn resource_scopes_are_configurable_at_start() {
    let oidc =
        Oidc::start_with_env(&[("OIDC_RESOURCE_SCOPES", "tickets:read tickets:write")]).await;
    assert_eq!(oidc.resource_scopes, vec!["tickets:read", "tickets:write"]);
    assert_eq!(oidc.read_only.scope, "tickets:read");
    let c = jwt_parts(&oidc.client_credentials(RESOURCE, &["tickets:write"]).await).claims;
    assert_eq!(scopes(&c), set(&["tickets:write"]));
}

#[tokio::test]
#[should_panic(expected = "OIDC_ACCESS_TOKEN_TTL must be a positive integer")]
async fn a_server_that_cannot_start_fails_with_its_stderr() {
    Oidc::start_with_env(&[("OIDC_ACCESS_TOKEN_TTL", "soon")]).await;
}

#[tokio::test]
async fn authorization_code_with_pkce_yields_a_token_for_the_resource() {
    let oidc = Oidc::start().await;
    let token = oidc.authorization_code_pkce(RESOURCE, &[READ]).await;
    let JwtParts { header, claims, .. } = jwt_parts(&token);
    assert_eq!(header["kid"], json!(oidc.kid()));
    assert_eq!(claims["aud"], json!(RESOURCE));
    assert_eq!(claims["iss"], json!(oidc.issuer()));
    assert_eq!(scopes(&claims), set(&[READ]));
    assert_eq!(claims["sub"], json!(oidc::DEFAULT_USER));
    assert_eq!(claims["email"], json!("alice@example.test"));
    assert_eq!(claims["client_id"], json!(oidc.public.client_id));
    verify(&oidc, &token, &validation(&oidc, RESOURCE))
        .await
        .expect("the token verifies");

    // Another user, both scopes, with OpenID Connect alongside: the access token carries
    // only the resource's scopes.
    let token = oidc
        .authorization_code_pkce_as("bob", RESOURCE, &["openid", READ, WRITE])
        .await;
    let claims = jwt_parts(&token).claims;
    assert_eq!(claims["sub"], json!("bob"));
    assert_eq!(claims["email"], json!("bob@example.test"));
    assert_eq!(scopes(&claims), set(&[READ, WRITE]));
    assert_eq!(claims["aud"], json!(RESOURCE));

    // The full response: a bearer token with its lifetime and granted scope.
    let resp = oidc
        .try_authorization_code_pkce(
            &oidc.public,
            "carol@corp.example",
            RESOURCE,
            &[WRITE],
            Some(30),
        )
        .await
        .expect("token response");
    assert_eq!(resp["token_type"], json!("Bearer"));
    assert_eq!(resp["expires_in"], json!(30));
    assert_eq!(resp["scope"], json!(WRITE));
    let claims = jwt_parts(resp["access_token"].as_str().expect("token")).claims;
    assert_eq!(claims["email"], json!("carol@corp.example"));
}

#[tokio::test]
async fn authorization_requests_without_pkce_or_with_a_bad_resource_are_refused() {
    let oidc = Oidc::start().await;
    let redirect_uri = oidc.public.redirect_uri.clone().expect("redirect URI");

    // No code_challenge: refused back at the redirect URI.
    let mut url = reqwest::Url::parse(&oidc.url("/auth")).expect("URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.public.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", READ)
        .append_pair("resource", RESOURCE);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client.get(url).send().await.expect("GET /auth");
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with(&redirect_uri), "{location}");
    let to = reqwest::Url::parse(&location).expect("URL");
    let q: std::collections::BTreeMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("invalid_request"),
        "{q:?}"
    );
    assert!(q["error_description"].contains("PKCE"), "{q:?}");

    // A resource that is not an http(s) URL.
    let err = oidc
        .try_authorization_code_pkce(&oidc.public, "alice", "urn:example:api", &[READ], None)
        .await
        .expect_err("bad resource");
    assert_eq!(err.error, "invalid_target", "{}", err.body);
    assert!(err.status >= 300 && err.status < 400, "{}", err.status);
}

#[tokio::test]
async fn a_dynamically_registered_client_completes_the_pkce_flow() {
    let oidc = Oidc::start().await;
    let redirect_uri = "http://127.0.0.1:33418/callback";
    let reg = oidc
        .register_client(json!({
            "client_name": "an MCP client",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let client_id = reg["client_id"].as_str().expect("client_id").to_string();
    assert!(!client_id.is_empty());
    let client = oidc::OidcClient {
        client_id: client_id.clone(),
        client_secret: None,
        scope: String::new(),
        redirect_uri: Some(redirect_uri.to_string()),
    };
    let resp = oidc
        .try_authorization_code_pkce(&client, "dana", RESOURCE, &[READ], None)
        .await
        .expect("token response");
    let claims = jwt_parts(resp["access_token"].as_str().expect("token")).claims;
    assert_eq!(claims["client_id"], json!(client_id));
    assert_eq!(claims["aud"], json!(RESOURCE));
    assert_eq!(claims["sub"], json!("dana"));
    assert_eq!(scopes(&claims), set(&[READ]));

    // Registration is validated: a redirect URI with a fragment is refused.
    let resp = reqwest::Client::new()
        .post(oidc.url("/reg"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb#frag"]}))
        .send()
        .await
        .expect("POST /reg");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn rotation_changes_the_signing_kid_and_keeps_the_old_key_published() {
    let oidc = Oidc::start().await;
    let first_kid = oidc.kid();
    let first_pem = oidc.signing_key_pem();
    let before = oidc.client_credentials(RESOURCE, &[READ]).await;
    assert_eq!(jwt_parts(&before).header["kid"], json!(first_kid));

    let second_kid = oidc.rotate().await;
    assert_ne!(second_kid, first_kid);
    assert_eq!(oidc.kid(), second_kid);
    assert_ne!(oidc.signing_key_pem(), first_pem);
    assert_eq!(oidc.kids(), vec![second_kid.clone(), first_kid.clone()]);
    assert_eq!(oidc.discovery().await["issuer"], json!(oidc.issuer()));

    let after = oidc.client_credentials(RESOURCE, &[READ]).await;
    assert_eq!(jwt_parts(&after).header["kid"], json!(second_kid));
    assert_eq!(jwks_kids(&oidc).await, set(&[&first_kid, &second_kid]));
    let v = validation(&oidc, RESOURCE);
    verify(&oidc, &before, &v)
        .await
        .expect("the old token still verifies");
    verify(&oidc, &after, &v)
        .await
        .expect("the new token verifies");
    // Each token verifies only under its own key.
    let wrong_key = jwks_key(&oidc, &first_kid).await;
    let mismatch = jsonwebtoken::decode::<Value>(&after, &wrong_key, &v)
        .map(|d| d.claims)
        .map_err(|e| format!("{:?}", e.into_kind()));
    assert_eq!(mismatch, refused(ErrorKind::InvalidSignature));

    // The PKCE flow signs with the new key too.
    let pkce = oidc.authorization_code_pkce(RESOURCE, &[READ]).await;
    assert_eq!(jwt_parts(&pkce).header["kid"], json!(second_kid));

    let third_kid = oidc.rotate().await;
    assert_eq!(
        jwks_kids(&oidc).await,
        set(&[&first_kid, &second_kid, &third_kid])
    );
    assert_eq!(oidc.drop_old_keys().await, third_kid);
    assert_eq!(oidc.kids(), vec![third_kid.clone()]);
    assert_eq!(jwks_kids(&oidc).await, set(&[&third_kid]));
}

#[tokio::test]
async fn the_jwks_counter_counts_jwks_fetches_only() {
    let oidc = Oidc::start().await;
    assert_eq!(oidc.jwks_fetches().await, 0);
    oidc.discovery().await;
    oidc.client_credentials(RESOURCE, &[READ]).await;
    oidc.authorization_code_pkce(RESOURCE, &[READ]).await;
    assert_eq!(oidc.jwks_fetches().await, 0, "only JWKS requests count");
    oidc.jwks().await;
    assert_eq!(oidc.jwks_fetches().await, 1);
    let plain = reqwest::get(oidc.jwks_uri()).await.expect("GET jwks");
    assert_eq!(plain.status(), 200);
    oidc.jwks().await;
    assert_eq!(oidc.jwks_fetches().await, 3);
    oidc.rotate().await;
    assert_eq!(oidc.jwks_fetches().await, 3, "rotation keeps the count");
    oidc.jwks().await;
    assert_eq!(oidc.jwks_fetches().await, 4);
}

#[tokio::test]
async fn derived_tokens_differ_from_the_real_one_in_exactly_one_way() {
    let oidc = Oidc::start().await;
    let real = oidc.client_credentials(RESOURCE, &[READ, WRITE]).await;
    let orig = jwt_parts(&real);
    let v = validation(&oidc, RESOURCE);
    verify(&oidc, &real, &v)
        .await
        .expect("the real token verifies");
    let header_only = |name: &str| set(&[name]);

    // Wrong issuer: only `iss` differs; the signature is the server's own.
    let t = oidc.wrong_issuer(&real);
    let p = jwt_parts(&t);
    assert_eq!(p.header, orig.header);
    assert_eq!(differing(&p.claims, &orig.claims), set(&["iss"]));
    assert_ne!(p.claims["iss"], json!(oidc.issuer()));
    assert_eq!(
        verify(&oidc, &t, &v).await,
        refused(ErrorKind::InvalidIssuer)
    );
    let mut any_iss = v.clone();
    any_iss.iss = None;
    verify(&oidc, &t, &any_iss)
        .await
        .expect("signed with the real key");

    // Wrong audience.
    let other = "http://127.0.0.1:8080/mcp/server-two";
    let t = oidc.wrong_audience(&real, other);
    let p = jwt_parts(&t);
    assert_eq!(p.header, orig.header);
    assert_eq!(differing(&p.claims, &orig.claims), set(&["aud"]));
    assert_eq!(p.claims["aud"], json!(other));
    assert_eq!(
        verify(&oidc, &t, &v).await,
        refused(ErrorKind::InvalidAudience)
    );
    verify(&oidc, &t, &validation(&oidc, other))
        .await
        .expect("signed with the real key");

    // Expired.
    let t = oidc.expired(&real);
    let p = jwt_parts(&t);
    assert_eq!(p.header, orig.header);
    assert_eq!(differing(&p.claims, &orig.claims), set(&["exp"]));
    assert!(p.claims["exp"].as_i64().expect("exp") < now() - 120);
    assert_eq!(
        verify(&oidc, &t, &v).await,
        refused(ErrorKind::ExpiredSignature)
    );
    let mut no_exp = v.clone();
    no_exp.validate_exp = false;
    verify(&oidc, &t, &no_exp)
        .await
        .expect("signed with the real key");

    // Not yet valid.
    let t = oidc.not_yet_valid(&real);
    let p = jwt_parts(&t);
    assert_eq!(p.header, orig.header);
    assert!(orig.claims.get("nbf").is_none());
    assert_eq!(differing(&p.claims, &orig.claims), set(&["nbf"]));
    assert!(p.claims["nbf"].as_i64().expect("nbf") > now() + 120);
    assert_eq!(
        verify(&oidc, &t, &v).await,
        refused(ErrorKind::ImmatureSignature)
    );
    let mut no_nbf = v.clone();
    no_nbf.validate_nbf = false;
    verify(&oidc, &t, &no_nbf)
        .await
        .expect("signed with the real key");

    // Tampered signature: one bit of one byte.
    let t = oidc.tampered_signature(&real);
    let p = jwt_parts(&t);
    assert_eq!((&p.header, &p.claims), (&orig.header, &orig.claims));
    assert_eq!(p.signature.len(), orig.signature.len());
    let changed: Vec<u8> = p
        .signature
        .iter()
        .zip(&orig.signature)
        .map(|(a, b)| a ^ b)
        .filter(|x| *x != 0)
        .collect();
    assert_eq!(changed, vec![1u8]);
    assert_eq!(
        verify(&oidc, &t, &v).await,
        refused(ErrorKind::InvalidSignature)
    );

    // alg none: header alg only, no signature.
    let t = oidc.alg_none(&real);
    assert!(t.ends_with('.'), "no signature part");
    let p = jwt_parts(&t);
    assert_eq!(differing(&p.header, &orig.header), header_only("alg"));
    assert_eq!(p.header["alg"], json!("none"));
    assert_eq!(p.claims, orig.claims);
    assert!(p.signature.is_empty());
    assert!(
        jsonwebtoken::decode_header(&t).is_err(),
        "no JOSE library accepts none"
    );

    // Unknown kid: signed by a key the JWKS does not list.
    let t = oidc.unknown_kid(&real);
    let p = jwt_parts(&t);
    assert_eq!(differing(&p.header, &orig.header), header_only("kid"));
    assert_eq!(p.header["kid"], json!(oidc.stranger_kid()));
    assert_eq!(p.claims, orig.claims);
    assert!(!jwks_kids(&oidc).await.contains(oidc.stranger_kid()));
    let stranger =
        DecodingKey::from_rsa_pem(oidc.stranger_public_key_pem().as_bytes()).expect("public key");
    jsonwebtoken::decode::<Value>(&t, &stranger, &v).expect("signed by the unpublished key");

    // HS256 keyed with the public key's PEM.
    let t = oidc.hs256_with_public_key(&real);
    let p = jwt_parts(&t);
    assert_eq!(differing(&p.header, &orig.header), header_only("alg"));
    assert_eq!(p.header["alg"], json!("HS256"));
    assert_eq!(p.claims, orig.claims);
    let mut hs = v.clone();
    hs.algorithms = vec![Algorithm::HS256];
    let secret = DecodingKey::from_secret(oidc.public_key_pem().as_bytes()).expect("secret");
    jsonwebtoken::decode::<Value>(&t, &secret, &hs).expect("HMAC with the public key");
    assert_eq!(
        verify(&oidc, &t, &v).await,
        refused(ErrorKind::InvalidAlgorithm)
    );

    // Re-signing without an edit changes nothing that matters.
    let same = oidc.resign(&real, |_| {});
    let p = jwt_parts(&same);
    assert_eq!((&p.header, &p.claims), (&orig.header, &orig.claims));
    verify(&oidc, &same, &v).await.expect("verifies");
}

#[tokio::test]
async fn derived_tokens_of_a_rotated_key_are_signed_with_that_key() {
    let oidc = Oidc::start().await;
    let old = oidc.client_credentials(RESOURCE, &[READ]).await;
    let old_kid = oidc.kid();
    oidc.rotate().await;
    let t = oidc.wrong_issuer(&old);
    assert_eq!(jwt_parts(&t).header["kid"], json!(old_kid));
    let mut v = validation(&oidc, RESOURCE);
    v.iss = None;
    verify(&oidc, &t, &v)
        .await
        .expect("signed with the old key");
}

/// Starts the server script directly, returning the child and its ready line.
async fn spawn_script() -> (tokio::process::Child, Value) {
    oidc::ensure_installed().await;
    let mut child = tokio::process::Command::new("node")
        .arg(oidc::server_script())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read")
                .expect("a ready line");
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                return v;
            }
        }
    })
    .await
    .expect("ready in time");
    (child, ready)
}

#[tokio::test]
async fn the_server_exits_when_its_stdin_closes() {
    let (mut child, ready) = spawn_script().await;
    let issuer = ready["issuer"].as_str().expect("issuer").to_string();
    let up = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .expect("serving");
    assert_eq!(up.status(), 200);
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after stdin closes")
        .expect("status");
    assert!(status.success(), "{status}");
    assert!(
        reqwest::get(&issuer).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test]
async fn the_server_exits_on_sigterm() {
    let (mut child, _ready) = spawn_script().await;
    let pid = child.id().expect("pid");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits on SIGTERM")
        .expect("status");
    assert!(status.success(), "{status}");
}
