//! HTTPS for the dashboard (rustls with the ring provider): the certificate chain and key from
//! PEM files, read again when they change on disk (looked at once a minute at most, so a renewed
//! certificate needs no restart), and a listener that runs each handshake off the accept loop,
//! bounded in time. Serves nothing itself; `web::serve_on` does.

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How often the files' modification times are looked at.
const RECHECK: Duration = Duration::from_secs(60);
/// A client has this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; further connections wait in the kernel's backlog.
const HANDSHAKES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read the TLS key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the TLS key {key} does not fit the certificate {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads and checks a certificate chain and its key.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_owned(),
            reason: "no CERTIFICATE block in it".into(),
        });
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

struct Current {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

/// The certificate in use, read again when its files change.
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Current>,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current").finish_non_exhaustive()
    }
}

impl Reloading {
    fn stamps(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        (modified(&self.cert), modified(&self.key))
    }

    fn refresh(&self) {
        let due = self
            .current
            .read()
            .map(|c| c.checked.elapsed() >= RECHECK)
            .unwrap_or(true);
        if !due {
            return;
        }
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if cur.checked.elapsed() < RECHECK {
            return;
        }
        cur.checked = Instant::now();
        let stamps = self.stamps();
        if stamps == cur.stamps {
            return;
        }
        match load(&self.cert, &self.key) {
            Ok(key) => {
                cur.key = Arc::new(key);
                cur.stamps = stamps;
                tracing::info!(cert = %self.cert.display(), "TLS certificate read again");
            }
            // Half-written files or a mismatch during renewal: keep the old one, try again later.
            Err(e) => tracing::warn!("keeping the previous TLS certificate: {e}"),
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        self.current.read().ok().map(|c| Arc::clone(&c.key))
    }
}

/// The server's TLS settings for `[web] tls_cert`/`tls_key` (a clear error now if the files
/// are unreadable or do not match).
pub fn server_config(tls: &crate::config::Tls) -> Result<Arc<ServerConfig>, TlsError> {
    let key = load(&tls.cert, &tls.key)?;
    let resolver = Reloading {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        current: RwLock::new(Current {
            key: Arc::new(key),
            stamps: (modified(&tls.cert), modified(&tls.key)),
            checked: Instant::now(),
        }),
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Cert {
            path: tls.cert.clone(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands over those whose handshake succeeded.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(HANDSHAKES);
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        let task = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait rather than spin.
                        tracing::warn!("web: cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "web: TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "web: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's address, for the log line of a failed login.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path) -> Vec<u8> {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
        c.cert.der().to_vec()
    }

    #[test]
    fn a_renewed_certificate_is_read_again_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_cert(dir.path());
        let tls = crate::config::Tls {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let r = Reloading {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            current: RwLock::new(Current {
                key: Arc::new(load(&tls.cert, &tls.key).unwrap()),
                stamps: (modified(&tls.cert), modified(&tls.key)),
                checked: Instant::now(),
            }),
        };
        let served = |r: &Reloading| r.current.read().unwrap().key.cert[0].to_vec();
        assert_eq!(served(&r), first);
        let due = |r: &Reloading| r.current.write().unwrap().checked -= RECHECK;

        // A key that does not fit the certificate (renewal half done): the old pair stays.
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&tls.key, other.signing_key.serialize_pem()).unwrap();
        due(&r);
        r.refresh();
        assert_eq!(served(&r), first);

        std::thread::sleep(Duration::from_millis(20));
        let second = write_cert(dir.path());
        r.refresh();
        assert_eq!(
            served(&r),
            first,
            "not looked at before a minute has passed"
        );
        due(&r);
        r.refresh();
        assert_eq!(served(&r), second, "renewed");
        assert!(matches!(
            load(&tls.cert, Path::new("/nonexistent/key.pem")),
            Err(TlsError::Key { .. })
        ));
    }
}
