//! A real OAuth 2.1 / OpenID Connect authorization server for tests: `oidc-provider` run by
//! `tests/oidc/server.mjs` on a loopback port, one process per [`Oidc`].
//!
//! Valid access tokens come from its real endpoints (client credentials with `resource`, or
//! the authorization code flow with PKCE driven through its login and consent pages).
//! Invalid ones are derived from real ones so that exactly one property is wrong, re-signed
//! where needed with the server's own test key.
//!
//! Needs Node.js (20.19 or newer) and npm; `tests/oidc/node_modules` is installed with
//! `npm ci` on first use when it is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::task::JoinHandle;

/// The login used by [`Oidc::authorization_code_pkce`]. Its access tokens carry
/// `sub: "alice"` and `email: "alice@example.test"`.
pub const DEFAULT_USER: &str = "alice";

/// How long the server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of the server's stderr is kept for failure messages.
const STDERR_LIMIT: usize = 64 * 1024;

/// A client registered at the test authorization server.
#[derive(Clone, Debug)]
pub struct OidcClient {
    /// Its `client_id`.
    pub client_id: String,
    /// Its secret (client_secret_basic); `None` for a public client.
    pub client_secret: Option<String>,
    /// The scopes it may ask for, space-separated.
    pub scope: String,
    /// Its registered redirect URI, for the authorization code flow.
    pub redirect_uri: Option<String>,
}

/// A refused request of a token flow.
#[derive(Clone, Debug)]
pub struct TokenError {
    /// The HTTP status: of the token endpoint's answer, or of the authorization endpoint's
    /// redirect when the error came back to the redirect URI.
    pub status: u16,
    /// The OAuth `error` code, e.g. `invalid_scope`.
    pub error: String,
    /// The whole error: the JSON body, or the redirect's query parameters as an object.
    pub body: Value,
}

/// A compact JWS split into its three parts, each decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtParts {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
    /// The signature bytes (empty for an unsigned token).
    pub signature: Vec<u8>,
}

/// Splits a compact JWS and decodes its header, claims and signature; panics when it is
/// not one.
pub fn jwt_parts(token: &str) -> JwtParts {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {} parts", parts.len());
    let json_part = |s: &str, what: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .unwrap_or_else(|e| panic!("JWT {what} is not base64url: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT {what} is not JSON: {e}"))
    };
    JwtParts {
        header: json_part(parts[0], "header"),
        claims: json_part(parts[1], "claims"),
        signature: URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap_or_else(|e| panic!("JWT signature is not base64url: {e}")),
    }
}

/// An RSA key of the server: its kid and PEMs.
#[derive(Clone, Debug)]
struct Key {
    kid: String,
    private_pem: String,
    public_pem: String,
}

/// A running test authorization server. Dropping it ends the process.
pub struct Oidc {
    /// The confidential client for client credentials; may ask for every resource scope.
    pub confidential: OidcClient,
    /// A confidential client for client credentials that may ask only for the first
    /// resource scope (`atomicwork.read` by default).
    pub read_only: OidcClient,
    /// The public client for the authorization code flow with PKCE (loopback redirect).
    pub public: OidcClient,
    /// The scopes the resource servers (any http(s) URL) define, in order.
    pub resource_scopes: Vec<String>,
    issuer: String,
    jwks_uri: String,
    ttl_header: String,
    /// Signing keys, newest (the one that signs new tokens) first; all are in the JWKS.
    keys: Mutex<Vec<Key>>,
    /// A key that is never in the JWKS.
    stranger: Key,
    http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
    _stdin: ChildStdin,
    _child: Child,
}

impl Oidc {
    /// Starts a server with the default settings (access tokens live 600 s; resource scopes
    /// `atomicwork.read atomicwork.write`).
    pub async fn start() -> Oidc {
        Self::start_with_env(&[]).await
    }

    /// Starts a server with extra environment: `OIDC_ACCESS_TOKEN_TTL` (seconds) and
    /// `OIDC_RESOURCE_SCOPES` (space-separated).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Oidc {
        ensure_installed().await;
        let script = server_script();
        let mut child = tokio::process::Command::new("node")
            .arg(&script)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node {}`: {e}", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_task = drain_stderr(stderr_pipe, stderr.clone());

        let mut lines = BufReader::new(stdout).lines();
        let mut other = Vec::new();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v.get("issuer").is_some() => return Some(v),
                    _ => other.push(line),
                }
            }
            None
        })
        .await;
        let ready = match ready {
            Ok(Some(v)) => v,
            outcome => {
                let why = if outcome.is_err() {
                    format!("no ready line within {READY_TIMEOUT:?}")
                } else {
                    "the process ended before its ready line".to_string()
                };
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), stderr_task).await;
                let err = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                panic!(
                    "test authorization server (node {}): {why}\nstdout: {other:#?}\nstderr:\n{err}",
                    script.display()
                );
            }
        };
        // Keep reading stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let s = |key: &str| -> String {
            ready[key]
                .as_str()
                .unwrap_or_else(|| panic!("ready line lacks {key}: {ready}"))
                .to_string()
        };
        let client = |key: &str| -> OidcClient {
            let c = &ready["clients"][key];
            OidcClient {
                client_id: c["client_id"].as_str().expect("client_id").to_string(),
                client_secret: c["client_secret"].as_str().map(str::to_string),
                scope: c["scope"].as_str().expect("scope").to_string(),
                redirect_uri: c["redirect_uri"].as_str().map(str::to_string),
            }
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Oidc {
            confidential: client("confidential"),
            read_only: client("read_only"),
            public: client("public"),
            resource_scopes: ready["resource_scopes"]
                .as_array()
                .expect("resource_scopes")
                .iter()
                .map(|v| v.as_str().expect("scope").to_string())
                .collect(),
            issuer: s("issuer"),
            jwks_uri: s("jwks_uri"),
            ttl_header: s("ttl_header"),
            keys: Mutex::new(vec![Key {
                kid: s("kid"),
                private_pem: s("signing_key_pem"),
                public_pem: s("public_key_pem"),
            }]),
            stranger: Key {
                kid: s("stranger_kid"),
                private_pem: s("stranger_key_pem"),
                public_pem: s("stranger_public_key_pem"),
            },
            http,
            stderr,
            _stdin: stdin,
            _child: child,
        }
    }

    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `path` (starting with `/`) on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The JWKS endpoint.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The kid of the key that signs new tokens.
    pub fn kid(&self) -> String {
        self.keys.lock().expect("keys")[0].kid.clone()
    }

    /// The kids in the JWKS, newest first.
    pub fn kids(&self) -> Vec<String> {
        let keys = self.keys.lock().expect("keys");
        keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// The private key that signs new tokens, PKCS#8 PEM (test-only).
    pub fn signing_key_pem(&self) -> String {
        self.keys.lock().expect("keys")[0].private_pem.clone()
    }

    /// The public half of the key that signs new tokens, SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        self.keys.lock().expect("keys")[0].public_pem.clone()
    }

    /// The kid of a key the server never publishes ([`Oidc::unknown_kid`] signs with it).
    pub fn stranger_kid(&self) -> &str {
        &self.stranger.kid
    }

    /// The public half of the never-published key, SPKI PEM.
    pub fn stranger_public_key_pem(&self) -> &str {
        &self.stranger.public_pem
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// GETs `url` and returns its JSON body; panics unless it answers 200.
    async fn get_json(&self, url: &str) -> Value {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 200, "GET {url}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
    }

    /// POSTs to a control endpoint and returns its JSON body.
    async fn control(&self, path: &str) -> Value {
        let url = self.url(path);
        let resp = self
            .http
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 200, "POST {url}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
    }

    /// The OpenID discovery document (`/.well-known/openid-configuration`).
    pub async fn discovery(&self) -> Value {
        self.get_json(&self.url("/.well-known/openid-configuration"))
            .await
    }

    /// The JWKS, fetched from the server (this counts in [`Oidc::jwks_fetches`]).
    pub async fn jwks(&self) -> Value {
        self.get_json(&self.jwks_uri).await
    }

    /// How many GET requests the JWKS endpoint has answered.
    pub async fn jwks_fetches(&self) -> u64 {
        self.get_json(&self.url("/__test/stats")).await["jwks_fetches"]
            .as_u64()
            .expect("jwks_fetches")
    }

    /// Makes a new RSA key the signing key, keeping the earlier ones in the JWKS, and
    /// returns its kid.
    pub async fn rotate(&self) -> String {
        self.apply_keys(self.control("/__test/rotate").await)
    }

    /// Removes every key but the signing key from the JWKS; returns the signing kid.
    pub async fn drop_old_keys(&self) -> String {
        self.apply_keys(self.control("/__test/drop-old-keys").await)
    }

    /// Records a control endpoint's key report; returns the signing kid.
    fn apply_keys(&self, report: Value) -> String {
        let s = |key: &str| report[key].as_str().expect(key).to_string();
        let new = Key {
            kid: s("kid"),
            private_pem: s("signing_key_pem"),
            public_pem: s("public_key_pem"),
        };
        let published: Vec<&str> = report["kids"]
            .as_array()
            .expect("kids")
            .iter()
            .map(|k| k.as_str().expect("kid"))
            .collect();
        let mut keys = self.keys.lock().expect("keys");
        keys.retain(|k| k.kid != new.kid && published.contains(&k.kid.as_str()));
        keys.insert(0, new.clone());
        new.kid
    }

    /// A client-credentials access token from the confidential client for `resource` with
    /// `scopes`; panics when refused.
    pub async fn client_credentials(&self, resource: &str, scopes: &[&str]) -> String {
        access_token(
            self.try_client_credentials(&self.confidential, Some(resource), scopes, None)
                .await,
        )
    }

    /// As [`Oidc::client_credentials`], the token living `ttl_secs` seconds.
    pub async fn client_credentials_with_ttl(
        &self,
        resource: &str,
        scopes: &[&str],
        ttl_secs: u64,
    ) -> String {
        access_token(
            self.try_client_credentials(&self.confidential, Some(resource), scopes, Some(ttl_secs))
                .await,
        )
    }

    /// A client-credentials token request as `client`; the token response, or the error.
    /// An empty `scopes` sends no `scope` parameter; `ttl_secs` sets the token's lifetime.
    pub async fn try_client_credentials(
        &self,
        client: &OidcClient,
        resource: Option<&str>,
        scopes: &[&str],
        ttl_secs: Option<u64>,
    ) -> Result<Value, TokenError> {
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        if let Some(resource) = resource {
            form.push(("resource", resource.to_string()));
        }
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        self.token_request(client, &form, ttl_secs).await
    }

    /// An access token for `resource` with `scopes` through the authorization code flow
    /// with PKCE, as the public client and [`DEFAULT_USER`]; panics when refused.
    pub async fn authorization_code_pkce(&self, resource: &str, scopes: &[&str]) -> String {
        self.authorization_code_pkce_as(DEFAULT_USER, resource, scopes)
            .await
    }

    /// As [`Oidc::authorization_code_pkce`], signing in as `user` (the token's `sub`).
    pub async fn authorization_code_pkce_as(
        &self,
        user: &str,
        resource: &str,
        scopes: &[&str],
    ) -> String {
        access_token(
            self.try_authorization_code_pkce(&self.public, user, resource, scopes, None)
                .await,
        )
    }

    /// The authorization code flow with PKCE (S256) as `client`, driven without a browser:
    /// the authorization request, the login page (signing in as `user`), the consent page,
    /// the redirect with the code, and the token request (with `resource` again and
    /// `ttl_secs` as the token's lifetime). Returns the token response or the error.
    pub async fn try_authorization_code_pkce(
        &self,
        client: &OidcClient,
        user: &str,
        resource: &str,
        scopes: &[&str],
        ttl_secs: Option<u64>,
    ) -> Result<Value, TokenError> {
        let redirect_uri = client
            .redirect_uri
            .clone()
            .expect("the client has a redirect URI");
        let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let mut url = reqwest::Url::parse(&self.url("/auth")).expect("authorization URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("resource", resource)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");

        let mut jar = CookieJar::default();
        let mut next = Request::Get(url);
        let mut trail = Vec::new();
        let callback = 'flow: {
            for _ in 0..16 {
                let (method, target) = match &next {
                    Request::Get(u) => ("GET", u.clone()),
                    Request::Post(u, _) => ("POST", u.clone()),
                };
                trail.push(format!("{method} {}", target.path()));
                let mut req = match &next {
                    Request::Get(u) => self.http.get(u.clone()),
                    Request::Post(u, form) => form_post(self.http.post(u.clone()), form),
                };
                if let Some(cookie) = jar.header_for(target.path()) {
                    req = req.header(reqwest::header::COOKIE, cookie);
                }
                let resp = req
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
                jar.store(&resp, target.path());
                let status = resp.status();
                if status.is_redirection() {
                    let location = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_else(|| panic!("{method} {target}: redirect without Location"))
                        .to_string();
                    let to = target
                        .join(&location)
                        .unwrap_or_else(|e| panic!("bad Location {location}: {e}"));
                    if to.as_str().starts_with(&redirect_uri) {
                        break 'flow (status.as_u16(), to);
                    }
                    next = Request::Get(to);
                    continue;
                }
                let body = resp.text().await.unwrap_or_default();
                assert!(
                    status.is_success(),
                    "{method} {target}: {status}: {body}\nflow: {trail:?}\nserver stderr:\n{}",
                    self.stderr()
                );
                let form = parse_form(&body, user).unwrap_or_else(|| {
                    panic!("{method} {target}: no form on the page:\n{body}\nflow: {trail:?}")
                });
                let action = target
                    .join(&form.0)
                    .unwrap_or_else(|e| panic!("bad form action {}: {e}", form.0));
                next = Request::Post(action, form.1);
            }
            panic!("the authorization flow did not reach the redirect URI: {trail:?}");
        };

        let (redirect_status, to) = callback;
        let query: BTreeMap<String, String> = to.query_pairs().into_owned().collect();
        if let Some(error) = query.get("error") {
            return Err(TokenError {
                status: redirect_status,
                error: error.clone(),
                body: json!(query),
            });
        }
        assert_eq!(
            query.get("state"),
            Some(&state),
            "the redirect carries the state"
        );
        assert_eq!(
            query.get("iss").map(String::as_str),
            Some(self.issuer.as_str()),
            "the redirect names the issuer (RFC 9207)"
        );
        let code = query.get("code").expect("the redirect carries a code");
        let form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("redirect_uri", redirect_uri.clone()),
            ("code_verifier", verifier),
            ("resource", resource.to_string()),
        ];
        self.token_request(client, &form, ttl_secs).await
    }

    /// Registers a client through dynamic client registration (RFC 7591) with `metadata`
    /// and returns the server's answer (`client_id`, ...); panics unless it is 201.
    pub async fn register_client(&self, metadata: Value) -> Value {
        let url = self.url("/reg");
        let resp = self
            .http
            .post(&url)
            .json(&metadata)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 201, "POST {url}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
    }

    /// A request to the token endpoint as `client` (basic auth with a secret, else its
    /// `client_id` in the form).
    async fn token_request(
        &self,
        client: &OidcClient,
        form: &[(&str, String)],
        ttl_secs: Option<u64>,
    ) -> Result<Value, TokenError> {
        let mut form = form.to_vec();
        let url = self.url("/token");
        let mut req = self.http.post(&url);
        match &client.client_secret {
            Some(secret) => req = req.basic_auth(&client.client_id, Some(secret)),
            None => form.push(("client_id", client.client_id.clone())),
        }
        if let Some(ttl) = ttl_secs {
            req = req.header(self.ttl_header.as_str(), ttl.to_string());
        }
        let resp = form_post(req, &form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"));
        if status == 200 {
            Ok(body)
        } else {
            Err(TokenError {
                status,
                error: body["error"].as_str().unwrap_or_default().to_string(),
                body,
            })
        }
    }

    /// The key (kid and PEMs) whose kid is in `token`'s header.
    fn key_of(&self, token: &str) -> Key {
        let kid = jwt_parts(token).header["kid"]
            .as_str()
            .expect("the token names a kid")
            .to_string();
        if kid == self.stranger.kid {
            return self.stranger.clone();
        }
        let keys = self.keys.lock().expect("keys");
        keys.iter()
            .find(|k| k.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("no key {kid} at this server"))
    }

    /// `token` with its claims changed by `edit`, re-signed with the key that signed it
    /// (same header: alg, typ and kid).
    pub fn resign(&self, token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let key = self.key_of(token);
        let header = jsonwebtoken::decode_header(token).expect("JWT header");
        let mut claims = claims_of(token);
        edit(&mut claims);
        sign_rsa(&header, &claims, &key)
    }

    /// `token` with `iss` naming another issuer (a path below the real one).
    pub fn wrong_issuer(&self, token: &str) -> String {
        let other = format!("{}/other-issuer", self.issuer);
        self.resign(token, |c| {
            c.insert("iss".into(), Value::String(other));
        })
    }

    /// `token` with `aud` set to `audience`.
    pub fn wrong_audience(&self, token: &str, audience: &str) -> String {
        self.resign(token, |c| {
            c.insert("aud".into(), Value::String(audience.to_string()));
        })
    }

    /// `token` with `exp` ten minutes in the past.
    pub fn expired(&self, token: &str) -> String {
        let exp = now() - 600;
        self.resign(token, |c| {
            c.insert("exp".into(), json!(exp));
        })
    }

    /// `token` with an `nbf` ten minutes in the future.
    pub fn not_yet_valid(&self, token: &str) -> String {
        let nbf = now() + 600;
        self.resign(token, |c| {
            c.insert("nbf".into(), json!(nbf));
        })
    }

    /// `token` with one bit of its signature flipped (header and claims untouched).
    pub fn tampered_signature(&self, token: &str) -> String {
        let (signed, sig) = token.rsplit_once('.').expect("a compact JWS");
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
        assert!(!bytes.is_empty(), "the token is signed");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `token` with `alg: none` in its header and no signature (claims untouched).
    pub fn alg_none(&self, token: &str) -> String {
        let (header, rest) = token.split_once('.').expect("a compact JWS");
        let (claims, _) = rest.split_once('.').expect("a compact JWS");
        let mut h: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("header")).expect("JSON");
        h["alg"] = Value::String("none".into());
        let h = serde_json::to_vec(&h).expect("header JSON");
        format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(h))
    }

    /// `token` signed by a key the server never published, under that key's kid (claims,
    /// alg and typ untouched).
    pub fn unknown_kid(&self, token: &str) -> String {
        let mut header = jsonwebtoken::decode_header(token).expect("JWT header");
        header.kid = Some(self.stranger.kid.clone());
        sign_rsa(&header, &claims_of(token), &self.stranger)
    }

    /// `token` signed with HS256, the HMAC secret being the SPKI PEM of the public key that
    /// signed it (the algorithm-confusion attack); claims, typ and kid untouched.
    pub fn hs256_with_public_key(&self, token: &str) -> String {
        let key = self.key_of(token);
        let mut header = jsonwebtoken::decode_header(token).expect("JWT header");
        header.alg = Algorithm::HS256;
        let secret = EncodingKey::from_secret(key.public_pem.as_bytes()).expect("HMAC key");
        jsonwebtoken::encode(&header, &claims_of(token), &secret).expect("HS256 signing")
    }
}

/// The `access_token` of a token response; panics on a refusal.
fn access_token(result: Result<Value, TokenError>) -> String {
    match result {
        Ok(body) => body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_string(),
        Err(e) => panic!(
            "token request refused: {} {}: {}",
            e.status, e.error, e.body
        ),
    }
}

/// `req` with `pairs` as its `application/x-www-form-urlencoded` body.
fn form_post<K: AsRef<str>, V: AsRef<str>>(
    req: reqwest::RequestBuilder,
    pairs: &[(K, V)],
) -> reqwest::RequestBuilder {
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("URL");
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    let body = url.query().unwrap_or_default().to_string();
    req.header(
        reqwest::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    )
    .body(body)
}

/// The claims of a compact JWS as a JSON object.
fn claims_of(token: &str) -> Map<String, Value> {
    match jwt_parts(token).claims {
        Value::Object(map) => map,
        other => panic!("JWT claims are not an object: {other}"),
    }
}

/// Signs `claims` under `header` (an RSA algorithm) with `key`.
fn sign_rsa(header: &Header, claims: &Map<String, Value>, key: &Key) -> String {
    let encoding = EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).expect("RSA key");
    jsonwebtoken::encode(header, claims, &encoding).expect("RSA signing")
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit i64")
}

/// `N` random bytes.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("randomness");
    buf
}

/// The next request of the authorization flow.
enum Request {
    /// Follow a redirect or open a page.
    Get(reqwest::Url),
    /// Submit a form.
    Post(reqwest::Url, Vec<(String, String)>),
}

/// The cookies of one browser session: (name, path) → value.
#[derive(Default)]
struct CookieJar(BTreeMap<(String, String), String>);

impl CookieJar {
    /// Takes the `Set-Cookie` headers of `resp`, an answer for `request_path`.
    fn store(&mut self, resp: &reqwest::Response, request_path: &str) {
        for header in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let mut parts = text.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let mut path = default_path(request_path);
            let mut expired = false;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.to_ascii_lowercase().as_str() {
                    "path" if v.starts_with('/') => path = v.to_string(),
                    "max-age" => expired |= v.parse::<i64>().is_ok_and(|n| n <= 0),
                    "expires" => expired |= v.contains("1970"),
                    _ => {}
                }
            }
            let key = (name.to_string(), path);
            if expired {
                self.0.remove(&key);
            } else {
                self.0.insert(key, value.to_string());
            }
        }
    }

    /// The `Cookie` header for a request to `path`, if any cookie applies.
    fn header_for(&self, path: &str) -> Option<String> {
        let pairs: Vec<String> = self
            .0
            .iter()
            .filter(|((_, cookie_path), _)| path_matches(cookie_path, path))
            .map(|((name, _), value)| format!("{name}={value}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// RFC 6265 default cookie path: the request path up to its last `/`.
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => request_path[..i].to_string(),
    }
}

/// RFC 6265 path match.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// The first form of an interaction page: its action and the fields to submit, the
/// visible `login` and `password` inputs filled in as `user`.
fn parse_form(html: &str, user: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = start + html[start..].find("</form>")?;
    let form = &html[start..end];
    let open = &form[..form.find('>')?];
    let action = unescape(&attr(open, "action")?);
    let mut fields = Vec::new();
    for piece in form.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = match name.as_str() {
            "login" => user.to_string(),
            "password" => "test-password".to_string(),
            _ => unescape(&attr(tag, "value").unwrap_or_default()),
        };
        fields.push((name, value));
    }
    Some((action, fields))
}

/// The double-quoted value of attribute `name` in an HTML tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}

/// Undoes HTML escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Reads the child's stderr into `into` (up to a limit) until it closes.
fn drain_stderr(mut pipe: tokio::process::ChildStderr, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = into.lock()
                && s.len() < STDERR_LIMIT
            {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}

/// `tests/oidc` in this source tree.
fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc")
}

/// The server script, `tests/oidc/server.mjs`.
pub fn server_script() -> PathBuf {
    oidc_dir().join("server.mjs")
}

/// Runs `npm ci` in `tests/oidc` unless its `node_modules` holds the pinned
/// `oidc-provider`. Test processes running at once take turns through a file lock.
pub async fn ensure_installed() {
    tokio::task::spawn_blocking(|| {
        let dir = oidc_dir();
        let lock_path = dir.join(".install.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
        if !installed(&dir) {
            npm_ci(&dir);
        }
        // The lock is released when `lock` is closed.
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
}

/// Whether `dir/node_modules` is a finished install of the `oidc-provider` version that
/// `dir/package.json` pins.
fn installed(dir: &Path) -> bool {
    let read = |p: PathBuf| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    let Some(pinned) = read(dir.join("package.json")).and_then(|p| {
        p["dependencies"]["oidc-provider"]
            .as_str()
            .map(str::to_string)
    }) else {
        panic!(
            "{}: no oidc-provider dependency",
            dir.join("package.json").display()
        );
    };
    let modules = dir.join("node_modules");
    let have = read(modules.join("oidc-provider").join("package.json"))
        .and_then(|p| p["version"].as_str().map(str::to_string));
    // npm writes its hidden lockfile when an install completes.
    have.as_deref() == Some(pinned.as_str()) && modules.join(".package-lock.json").is_file()
}

/// `npm ci` in `dir`; panics with npm's output when it fails or npm is missing.
fn npm_ci(dir: &Path) {
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the OAuth tests run a real authorization server on Node.js: `npm` could not be \
                 run ({e}); install Node.js 20.19+ with npm, then `npm ci --prefix tests/oidc`"
            )
        });
    assert!(
        out.status.success(),
        "`npm ci --prefix {}` failed ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
