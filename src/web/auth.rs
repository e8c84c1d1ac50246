//! Who may read the dashboard: HTTP Basic auth against argon2 password hashes, bearer tokens
//! (for everything, or for `/metrics` only), and the rule that a dashboard reachable from other
//! machines must have one of them. Tokens are compared as SHA-256 digests in constant time; an
//! unknown user costs the same argon2 work as a known one; a failure waits a little, is logged
//! with the peer and path but never the credentials, and answers 401. A verified password is
//! remembered for a few minutes by a keyed digest (argon2 is slow on purpose, and one page loads
//! several images). Nothing else here: the pages are in `pages`.

use super::tls::Peer;
use crate::config;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How long a failed attempt waits before its 401.
const FAILURE_DELAY: Duration = Duration::from_millis(400);
/// How long a verified password is taken as verified.
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// Verified passwords remembered at most.
const VERIFIED_MAX: usize = 1024;
/// Argon2 verifications running at once (each takes tens of milliseconds and 19 MiB).
const VERIFIERS: usize = 2;
/// The shortest password `passwd` hashes.
pub const MIN_PASSWORD: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("refusing to serve the dashboard on {address} without access control: anyone who can reach that address would see it. Add users (hashes from `bwacct passwd`) or tokens to [web], or listen on 127.0.0.1 behind a reverse proxy that checks who comes in")]
    Exposed { address: SocketAddr },
    #[error("cannot read random bytes: {0}")]
    Random(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the password is shorter than {MIN_PASSWORD} characters")]
    TooShort,
}

/// Refuses a listening address that other machines can reach unless access is controlled.
pub fn check_exposure(listen: SocketAddr, access: &config::Access) -> Result<(), AuthError> {
    if listen.ip().to_canonical().is_loopback() || access.is_configured() {
        Ok(())
    } else {
        Err(AuthError::Exposed { address: listen })
    }
}

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(b)
}

/// An argon2id hash of `password` in PHC form, for `[web] users`.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::TooShort);
    }
    let salt =
        SaltString::encode_b64(&random::<16>()?).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn verify(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(password, &h).is_ok())
        .unwrap_or(false)
}

/// Whether a digest is in a list, looking at every entry.
fn contains(list: &[[u8; 32]], digest: &[u8; 32]) -> bool {
    let mut found = subtle::Choice::from(0);
    for d in list {
        found |= d.ct_eq(digest);
    }
    found.into()
}

/// The outcome of a request's credentials.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Allowed,
    /// No credentials: the browser's first request; asked for them without fuss.
    Missing,
    /// Wrong or malformed credentials. `user` is a configured user's name (an unknown name may
    /// be a mistyped password: it is never logged).
    Denied {
        reason: &'static str,
        user: Option<String>,
    },
}

pub struct Access {
    users: HashMap<String, String>,
    tokens: Vec<[u8; 32]>,
    metrics_tokens: Vec<[u8; 32]>,
    /// Keyed digests of (user, password) pairs verified lately, and when.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    key: [u8; 32],
    /// Verified for unknown users, so that they cost what known users cost.
    decoy: String,
    verifiers: tokio::sync::Semaphore,
}

impl Access {
    pub fn new(s: &config::Access) -> Result<Self, AuthError> {
        let decoy = match s.users.is_empty() {
            true => String::new(),
            false => {
                hash_password(&base64::engine::general_purpose::STANDARD.encode(random::<18>()?))?
            }
        };
        Ok(Self {
            users: s.users.iter().cloned().collect(),
            tokens: s.tokens.clone(),
            metrics_tokens: s.metrics_tokens.clone(),
            verified: Mutex::new(HashMap::new()),
            key: random()?,
            decoy,
            verifiers: tokio::sync::Semaphore::new(VERIFIERS),
        })
    }

    /// Whether a Basic challenge is offered (else a Bearer one).
    fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Judges an `Authorization` header for a path (`metrics`: the path is `/metrics`).
    pub async fn check(&self, auth: Option<&HeaderValue>, metrics: bool) -> Verdict {
        let Some(value) = auth else {
            return Verdict::Missing;
        };
        let text = value.to_str().unwrap_or("").trim();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        let rest = rest.trim();
        let denied = |reason| Verdict::Denied { reason, user: None };
        if scheme.eq_ignore_ascii_case("bearer") {
            let digest: [u8; 32] = Sha256::digest(rest.as_bytes()).into();
            let ok = contains(&self.tokens, &digest)
                | (metrics && contains(&self.metrics_tokens, &digest));
            return match ok {
                true => Verdict::Allowed,
                false => denied("wrong token"),
            };
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return denied("unknown authorization scheme");
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return denied("malformed Basic credentials");
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return denied("malformed Basic credentials");
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let known = std::str::from_utf8(user)
            .ok()
            .and_then(|u| self.users.get_key_value(u));
        let remembered = self.remembered(user, password);
        if known.is_some() && self.was_verified(&remembered) {
            return Verdict::Allowed;
        }
        let phc = known.map_or_else(|| self.decoy.clone(), |(_, h)| h.clone());
        let password = password.to_vec();
        let ok = match self.verifiers.acquire().await {
            Ok(_permit) => tokio::task::spawn_blocking(move || verify(&phc, &password))
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        match (known, ok) {
            (Some(_), true) => {
                self.remember(remembered);
                Verdict::Allowed
            }
            (Some((name, _)), false) => Verdict::Denied {
                reason: "wrong password",
                user: Some(name.clone()),
            },
            (None, _) => denied("unknown user"),
        }
    }

    fn remembered(&self, user: &[u8], password: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user);
        h.update(password);
        h.finalize().into()
    }

    fn was_verified(&self, digest: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .get(digest)
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.retain(|_, at| at.elapsed() < VERIFIED_FOR);
        }
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(digest, Instant::now());
    }

    fn challenge(&self) -> Response {
        let scheme = match self.has_users() {
            true => "Basic realm=\"bwacct\", charset=\"UTF-8\"",
            false => "Bearer realm=\"bwacct\"",
        };
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, scheme)],
            "authentication required\n",
        )
            .into_response()
    }
}

/// The middleware: lets a request through or answers 401.
pub async fn require(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let metrics = req.uri().path() == "/metrics";
    match access
        .check(req.headers().get(header::AUTHORIZATION), metrics)
        .await
    {
        Verdict::Allowed => next.run(req).await,
        Verdict::Missing => access.challenge(),
        Verdict::Denied { reason, user } => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<Peer>>()
                .map(|ConnectInfo(Peer(a))| a.to_string())
                .unwrap_or_else(|| "unknown".into());
            tracing::warn!(
                %peer,
                path = ?req.uri().path(),
                user = user.as_deref().unwrap_or("-"),
                "web: authentication failed: {reason}"
            );
            tokio::time::sleep(FAILURE_DELAY).await;
            access.challenge()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    fn bearer(t: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {t}")).unwrap()
    }

    fn digest(t: &str) -> [u8; 32] {
        Sha256::digest(t.as_bytes()).into()
    }

    #[tokio::test]
    async fn users_and_tokens_open_what_they_may() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let access = Access::new(&config::Access {
            users: vec![("alice".into(), hash)],
            tokens: vec![digest("all-the-pages-0123")],
            metrics_tokens: vec![digest("only-the-metrics-01")],
        })
        .unwrap();
        let check = |h: Option<HeaderValue>, m: bool| {
            let access = &access;
            async move { access.check(h.as_ref(), m).await }
        };
        assert_eq!(check(None, false).await, Verdict::Missing);
        assert_eq!(
            check(Some(basic("alice", "correct horse")), false).await,
            Verdict::Allowed
        );
        // the second time from the verified digests
        assert_eq!(
            check(Some(basic("alice", "correct horse")), true).await,
            Verdict::Allowed
        );
        assert_eq!(
            check(Some(basic("alice", "wrong horse")), false).await,
            Verdict::Denied {
                reason: "wrong password",
                user: Some("alice".into())
            }
        );
        assert_eq!(
            check(Some(basic("correct horse", "alice")), false).await,
            Verdict::Denied {
                reason: "unknown user",
                user: None
            }
        );
        assert_eq!(
            check(Some(bearer("all-the-pages-0123")), false).await,
            Verdict::Allowed
        );
        assert_eq!(
            check(Some(bearer("only-the-metrics-01")), true).await,
            Verdict::Allowed
        );
        assert!(matches!(
            check(Some(bearer("only-the-metrics-01")), false).await,
            Verdict::Denied { .. }
        ));
        for junk in ["Basic !!!", "Basic YWxpY2U=", "Digest x", "Bearer", ""] {
            let h = HeaderValue::from_str(junk).unwrap();
            assert!(
                matches!(check(Some(h), false).await, Verdict::Denied { .. }),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn only_loopback_may_go_without_access_control() {
        let none = config::Access::default();
        let some = config::Access {
            metrics_tokens: vec![digest("x")],
            ..Default::default()
        };
        for ok in ["127.0.0.1:8080", "[::1]:8080", "[::ffff:127.0.0.1]:80"] {
            assert!(check_exposure(ok.parse().unwrap(), &none).is_ok(), "{ok}");
        }
        for exposed in ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:80"] {
            let e = check_exposure(exposed.parse().unwrap(), &none).unwrap_err();
            assert!(e.to_string().contains("without access control"), "{e}");
            assert!(check_exposure(exposed.parse().unwrap(), &some).is_ok());
        }
        assert!(matches!(hash_password("short"), Err(AuthError::TooShort)));
    }
}
