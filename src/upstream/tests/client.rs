//! The HTTP client's own behaviour against real servers: proxies (in-process, recording
//! what they are sent), gzip, the timeout of the whole exchange, keep-alive, HTTP/2 over
//! TLS, and TLS failures.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use hyper_util::client::proxy::matcher::Matcher;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{args, target, tool};
use crate::upstream::client::{ClientSettings, HttpClient, Proxies};
use crate::upstream::{CallOutcome, OutcomeClass, Upstream, UpstreamOptions};

/// A read tool whose request is `GET /api/v1/workspaces`.
const READ: &str = "list_all_atomicwork_workspaces";
/// The answer of the servers here.
const ANSWER: &str = r#"{"data":[{"id":1,"name":"Main"}],"total_count":1}"#;

fn upstream_with(settings: ClientSettings) -> Upstream {
    Upstream::with_client(UpstreamOptions::default(), &settings).expect("client builds")
}

async fn read_call(up: &Upstream, base_url: &str) -> CallOutcome {
    up.call(&tool(READ), &args(json!({})), &target(base_url))
        .await
}

fn text(o: &CallOutcome) -> String {
    o.result.content.join("\n")
}

/// Reads up to the end of an HTTP head (`\r\n\r\n`); returns it as text.
async fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn ok_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An HTTP proxy that answers every request itself with [`ANSWER`] (the destination is
/// never contacted) and keeps the heads it was sent.
async fn answering_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let head = read_head(&mut conn).await;
                    if head.is_empty() {
                        return;
                    }
                    seen.lock().await.push(head);
                    if conn
                        .write_all(ok_response(ANSWER).as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// A tunnelling proxy: answers `CONNECT` with `status` and, on 200, relays the bytes to
/// the address asked for. Keeps the heads of the `CONNECT` requests.
async fn tunnel_proxy(status: u16) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let head = read_head(&mut conn).await;
                let authority = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap_or("")
                    .replace("localhost", "127.0.0.1");
                seen.lock().await.push(head.clone());
                if status != 200 {
                    let reply = format!("HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\n\r\n");
                    let _ = conn.write_all(reply.as_bytes()).await;
                    return;
                }
                let Ok(mut server) = TcpStream::connect(authority.as_str()).await else {
                    return;
                };
                if conn
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut server).await;
                }
            });
        }
    });
    (addr, heads)
}

fn proxy_rules(
    build: impl FnOnce(
        hyper_util::client::proxy::matcher::Builder,
    ) -> hyper_util::client::proxy::matcher::Builder,
) -> Proxies {
    Proxies::Rules(Arc::new(build(Matcher::builder()).build()))
}

#[tokio::test]
async fn plain_http_through_a_proxy_goes_in_absolute_form_with_basic_auth() {
    let (proxy, heads) = answering_proxy().await;
    let up = upstream_with(ClientSettings {
        proxies: proxy_rules(|b| b.http(format!("http://user:secret@{proxy}"))),
        ..ClientSettings::default()
    });
    let o = read_call(&up, "http://atomicwork.invalid").await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert_eq!(
        o.result.structured_value(),
        Some(serde_json::from_str(ANSWER).expect("json"))
    );
    let heads = heads.lock().await;
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get http://atomicwork.invalid/api/v1/workspaces"),
        "{head}"
    );
    // base64("user:secret")
    assert!(
        head.contains("proxy-authorization: basic dxnlcjpzzwnyzxq="),
        "{head}"
    );
    assert!(head.contains("x-api-key: "), "{head}");
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/workspaces"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ANSWER, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let (proxy, heads) = answering_proxy().await;
    let up = upstream_with(ClientSettings {
        proxies: proxy_rules(|b| b.all(format!("http://{proxy}")).no("127.0.0.1")),
        ..ClientSettings::default()
    });
    let o = read_call(&up, &server.uri()).await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert!(heads.lock().await.is_empty(), "the proxy was used");
}

#[tokio::test]
async fn a_proxy_refusing_the_tunnel_is_a_connect_error() {
    let (proxy, heads) = tunnel_proxy(407).await;
    let up = upstream_with(ClientSettings {
        proxies: proxy_rules(|b| b.https(format!("http://{proxy}"))),
        ..ClientSettings::default()
    });
    let o = read_call(&up, "https://atomicwork.invalid").await;
    assert_eq!(o.class, OutcomeClass::Connect, "{o:?}");
    assert!(
        text(&o).contains("could not reach Atomicwork at atomicwork.invalid"),
        "{o:?}"
    );
    let heads = heads.lock().await;
    assert!(
        heads[0].starts_with("CONNECT atomicwork.invalid:443 HTTP/1.1"),
        "{heads:?}"
    );
}

#[tokio::test]
async fn an_unsupported_proxy_scheme_is_named() {
    let up = upstream_with(ClientSettings {
        proxies: proxy_rules(|b| b.all("socks5://127.0.0.1:9")),
        ..ClientSettings::default()
    });
    let o = read_call(&up, "http://atomicwork.invalid").await;
    assert_eq!(o.class, OutcomeClass::Connect, "{o:?}");
    assert!(
        text(&o).contains("the proxy socks5 is not supported"),
        "{o:?}"
    );
}

/// Run by [`proxies_come_from_the_environment`] in a child process whose environment
/// names the proxy.
#[tokio::test]
#[ignore = "run by proxies_come_from_the_environment in a child process with HTTP_PROXY set"]
async fn proxied_from_the_environment_child() {
    let up = super::upstream();
    let o = read_call(&up, "http://atomicwork.invalid").await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
}

#[tokio::test]
async fn proxies_come_from_the_environment() {
    let (proxy, heads) = answering_proxy().await;
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args([
        "--exact",
        "upstream::tests::client::proxied_from_the_environment_child",
        "--ignored",
        "--test-threads=1",
    ]);
    for var in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HTTP_PROXY", format!("http://{proxy}"));
    let out = cmd.output().await.expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run: {stdout}"
    );
    let heads = heads.lock().await;
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with("GET http://atomicwork.invalid/api/v1/workspaces"),
        "{heads:?}"
    );
}

/// `data` gzip-compressed.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("compress");
    enc.finish().expect("compress")
}

#[tokio::test]
async fn gzip_is_asked_for_and_decoded() {
    let body = json!({"data": (0..200).map(|i| json!({"id": i, "name": "Workspace"})).collect::<Vec<_>>()});
    let server = MockServer::start().await;
    Mock::given(header("accept-encoding", "gzip"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .set_body_raw(gzip(body.to_string().as_bytes()), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let o = read_call(&super::upstream(), &server.uri()).await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert_eq!(o.result.structured_value(), Some(body));
}

#[tokio::test]
async fn a_corrupt_gzip_answer_is_a_protocol_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .set_body_raw(b"not gzip at all".to_vec(), "application/json"),
        )
        .mount(&server)
        .await;
    let o = read_call(&super::upstream(), &server.uri()).await;
    assert_eq!(o.class, OutcomeClass::Protocol, "{o:?}");
    assert!(text(&o).contains("could not be read"), "{o:?}");
}

#[tokio::test]
async fn answers_bigger_than_the_limit_are_cut_when_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![b'x'; 10_000], "text/plain"))
        .mount(&server)
        .await;
    let client = HttpClient::new(&ClientSettings {
        max_body_bytes: 1_000,
        ..ClientSettings::default()
    })
    .expect("client");
    let req = http::Request::get(format!("{}/x", server.uri()))
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let answer = client
        .send(req, Duration::from_secs(5))
        .await
        .expect("answer");
    assert_eq!(answer.body.expect("body").len(), 1_000);
}

#[tokio::test]
async fn the_timeout_covers_the_body() {
    // Headers at once, then half the body, then nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = read_head(&mut conn).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"data\":")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let up = super::upstream();
    let mut t = target(&format!("http://{addr}"));
    t.timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let o = up.call(&tool(READ), &args(json!({})), &t).await;
    assert_eq!(o.class, OutcomeClass::Timeout, "{o:?}");
    assert_eq!(o.upstream_status, Some(200), "{o:?}");
    assert!(text(&o).contains("within 0.3 s"), "{o:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout did not fire"
    );
}

/// A plain HTTP/1.1 server answering [`ANSWER`] that counts the connections it accepts.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                loop {
                    if read_head(&mut conn).await.is_empty() {
                        return;
                    }
                    if conn
                        .write_all(ok_response(ANSWER).as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

#[tokio::test]
async fn http1_connections_are_kept_alive_and_reused() {
    let (url, accepted) = counting_server().await;
    let up = super::upstream();
    for _ in 0..3 {
        let o = read_call(&up, &url).await;
        assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A certificate authority and a `localhost` certificate it signed.
struct TestPki {
    ca: rustls::pki_types::CertificateDer<'static>,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn test_pki() -> TestPki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "upstream test CA");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("certificate");
    TestPki {
        ca: ca_cert.der().clone(),
        chain: vec![leaf.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// An HTTPS server for `localhost` offering HTTP/2 and HTTP/1.1 (ALPN), answering
/// [`ANSWER`]. Records the HTTP version of each request and counts connections.
async fn tls_server(pki: &TestPki) -> (SocketAddr, Arc<Mutex<Vec<Version>>>, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .expect("server certificate");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let versions = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (versions.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(conn).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            seen.lock().await.push(req.version());
                            let mut resp = http::Response::new(http_body_util::Full::new(
                                Bytes::from_static(ANSWER.as_bytes()),
                            ));
                            resp.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    (addr, versions, accepted)
}

#[tokio::test]
async fn http2_is_used_when_the_server_offers_it() {
    let pki = test_pki();
    let (addr, versions, accepted) = tls_server(&pki).await;
    let up = upstream_with(ClientSettings {
        proxies: Proxies::Off,
        extra_roots: vec![pki.ca.clone()],
        ..ClientSettings::default()
    });
    let url = format!("https://localhost:{}", addr.port());
    for _ in 0..3 {
        let o = read_call(&up, &url).await;
        assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    }
    assert_eq!(*versions.lock().await, vec![Version::HTTP_2; 3]);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one HTTP/2 connection for all calls"
    );
}

#[tokio::test]
async fn https_through_a_proxy_goes_through_a_connect_tunnel() {
    let pki = test_pki();
    let (addr, versions, _) = tls_server(&pki).await;
    let (proxy, heads) = tunnel_proxy(200).await;
    let up = upstream_with(ClientSettings {
        proxies: proxy_rules(|b| b.https(format!("http://user:secret@{proxy}"))),
        extra_roots: vec![pki.ca.clone()],
        ..ClientSettings::default()
    });
    let o = read_call(&up, &format!("https://localhost:{}", addr.port())).await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert_eq!(versions.lock().await.len(), 1);
    let heads = heads.lock().await;
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT localhost:{} HTTP/1.1", addr.port())),
        "{heads:?}"
    );
    assert!(
        heads[0].contains("Proxy-Authorization: Basic dXNlcjpzZWNyZXQ="),
        "{heads:?}"
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_authority_is_a_tls_error() {
    let pki = test_pki();
    let (addr, versions, _) = tls_server(&pki).await;
    // The platform's roots only: the test authority is not among them.
    let o = read_call(
        &super::upstream(),
        &format!("https://localhost:{}", addr.port()),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Tls, "{o:?}");
    assert!(text(&o).contains("retrying will not help"), "{o:?}");
    assert!(versions.lock().await.is_empty(), "a request got through");
}
