//! Access control and TLS over real HTTP on loopback: `bwacct serve` with users (hashes made by
//! `bwacct passwd`), tokens and a `/metrics` token; a dashboard on a non-loopback address
//! without access control refused at start; HTTPS with a self-signed certificate made here.

use crate::common::*;
use crate::web::{exchange, request_with, Response, Served};
use base64::Engine;
use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

pub const PASSWORD: &str = "a long passphrase";
pub const TOKEN: &str = "all-pages-token-0123456789abcdef";
const METRICS_TOKEN: &str = "metrics-only-token-0123456789ab";

/// `bwacct passwd` with the password on standard input.
pub fn passwd(password: &str) -> String {
    let mut child = bwacct()
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bwacct passwd");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn basic(user: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {b}")
}

pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// The `[web]` table of a served dashboard with access control.
pub fn web_table(hash: &str, extra: &str) -> String {
    format!(
        "[web]\nlisten = \"127.0.0.1:0\"\nusers = {{ alice = \"{hash}\" }}\ntokens = [\"{TOKEN}\"]\nmetrics_tokens = [\"{METRICS_TOKEN}\"]\n{extra}"
    )
}

#[test]
fn passwords_and_tokens_open_the_dashboard_and_nothing_else_does() {
    let hash = passwd(PASSWORD);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    let srv = Served::with(&web_table(&hash, ""));
    let get = |path: &str, auth: Option<String>| -> Response {
        request_with(
            &srv.addr,
            "GET",
            path,
            &auth.into_iter().collect::<Vec<_>>(),
        )
    };

    for path in [
        "/",
        "/api/v1/hosts?day=2024-01-01",
        "/metrics",
        "/static/app.js",
        "/events",
        "/api/v1/events",
    ] {
        let r = get(path, None);
        assert_eq!(r.status, 401, "{path} without credentials");
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Basic realm=\"bwacct\", charset=\"UTF-8\""),
            "{path}"
        );
    }
    let started = Instant::now();
    let wrong = get("/", Some(basic("alice", "not the passphrase")));
    assert_eq!(wrong.status, 401);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "a failure waits: {:?}",
        started.elapsed()
    );
    assert_eq!(get("/", Some(basic("mallory", PASSWORD))).status, 401);
    assert_eq!(
        get("/", Some(bearer("not-a-token-at-all-0000"))).status,
        401
    );
    assert_eq!(
        get("/", Some(bearer(METRICS_TOKEN))).status,
        401,
        "the metrics token opens /metrics only"
    );

    let page = get("/?day=2024-01-01", Some(basic("alice", PASSWORD)));
    assert_eq!(page.status, 200);
    assert!(page
        .text()
        .contains("<table class=\"sortable\" id=\"top\">"));
    let api = get(
        "/api/v1/hosts?day=2024-01-01",
        Some(basic("alice", PASSWORD)),
    );
    assert_eq!(api.status, 200);
    assert_eq!(api.json()["rows"].as_array().unwrap().len(), 399);
    assert_eq!(get("/", Some(bearer(TOKEN))).status, 200);
    let metrics = get("/metrics", Some(bearer(METRICS_TOKEN)));
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .text()
        .contains("# TYPE bwacct_capture_packets_total counter"));
    assert_eq!(get("/metrics", Some(basic("alice", PASSWORD))).status, 200);
    // the events (quota and layer-2) are behind the same check
    assert_eq!(get("/events", Some(bearer(METRICS_TOKEN))).status, 401);
    assert_eq!(get("/events", Some(basic("alice", PASSWORD))).status, 200);
    assert_eq!(get("/api/v1/events", Some(bearer(TOKEN))).status, 200);

    // Failures are logged with the peer and the path, never with the credentials.
    let log = srv.log.lock().unwrap().join("\n");
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(failures.len(), 5, "{log}");
    assert!(failures[0].contains("wrong password") && failures[0].contains("user=\"alice\""));
    assert!(failures.iter().all(|l| l.contains("peer=127.0.0.1:")));
    for secret in [
        "not the passphrase",
        PASSWORD,
        "mallory",
        "not-a-token-at-all",
        METRICS_TOKEN,
        TOKEN,
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
}

#[test]
fn an_exposed_dashboard_without_access_control_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24"],
        "[web]\nlisten = \"0.0.0.0:0\"\n",
    );
    for args in [&["serve"][..], &["run"], &["serve", "--listen", "[::]:0"]] {
        let out = bwacct().arg("-c").arg(&cfg).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refusing to serve the dashboard on")
                && err.contains("without access control")
                && err.contains("bwacct passwd"),
            "{args:?}: {err}"
        );
    }
    // A loopback address may go without; another address may with a token.
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24"],
        &format!("[web]\nlisten = \"0.0.0.0:0\"\nmetrics_tokens = [\"{METRICS_TOKEN}\"]\n"),
    );
    let out = bwacct()
        .arg("-c")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 user(s), 0 token(s), 1 metrics token(s)"),
        "{text}"
    );
    assert!(
        !text.contains(METRICS_TOKEN),
        "check-config shows no secret"
    );
}

/// A self-signed certificate for 127.0.0.1, written as PEM files in `dir`.
pub fn self_signed(dir: &std::path::Path) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (cert.der().to_vec(), c, k)
}

/// A TLS connection to `addr` that trusts only `cert`.
pub fn tls_connect(
    addr: &str,
    cert: &[u8],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn tls_serves_with_a_self_signed_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (der, cert, key) = self_signed(certs.path());
    let hash = passwd(PASSWORD);
    let srv = Served::with(&web_table(
        &hash,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    ));
    assert!(
        srv.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&format!("dashboard on https://{}/", srv.addr))),
        "announced as https"
    );
    let get = |path: &str, headers: &[String]| {
        let mut s = tls_connect(&srv.addr, &der);
        exchange(&mut s, &srv.addr, "GET", path, headers)
    };
    assert_eq!(get("/", &[]).status, 401);
    let page = get("/?day=2024-01-01", &[basic("alice", PASSWORD)]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("id=\"top\""));
    assert_eq!(
        get("/metrics", &[bearer(METRICS_TOKEN)]).status,
        200,
        "Prometheus over TLS"
    );
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'none'")));

    // Plain HTTP on the TLS port gets no page, and the server goes on.
    let mut plain = TcpStream::connect(&srv.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(plain, "GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).contains("HTTP/1."),
        "no HTTP answer in clear"
    );
    // A client that does not trust the certificate cannot connect.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let mut s = tls_connect(&srv.addr, other.cert.der());
    let e = std::io::Write::write_all(&mut s, b"GET / HTTP/1.0\r\n\r\n")
        .and_then(|_| std::io::Write::flush(&mut s))
        .and_then(|_| std::io::Read::read(&mut s, &mut [0u8; 16]).map(|_| ()));
    assert!(e.is_err(), "an untrusted certificate was accepted");
    assert_eq!(get("/", &[bearer(TOKEN)]).status, 200, "still serving");
}
