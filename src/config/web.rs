//! `[web]`: where the dashboard, the JSON API and `/metrics` listen, who may see them (users with
//! argon2 password hashes, bearer tokens) and the TLS certificate. Localhost by default; another
//! address only when the operator writes it. Tokens are kept as SHA-256 digests only, so that no
//! printout of the settings shows a secret.

use super::raw::RawWeb;
use super::{VResult, Validator};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use toml::Spanned;

/// The listening address when `[web]` gives none (and for `serve` without `[web]`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The shortest bearer token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone)]
pub struct Web {
    pub listen: SocketAddr,
    pub access: Access,
    pub tls: Option<Tls>,
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            access: Access::default(),
            tls: None,
        }
    }
}

/// Who may read the dashboard. Empty: anyone who can connect (loopback only, see
/// `crate::web::auth`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Access {
    /// (user name, argon2 hash in PHC form), by name.
    pub users: Vec<(String, String)>,
    /// SHA-256 digests of the bearer tokens that open everything.
    pub tokens: Vec<[u8; 32]>,
    /// SHA-256 digests of the bearer tokens that open `/metrics` only.
    pub metrics_tokens: Vec<[u8; 32]>,
}

impl Access {
    pub fn is_configured(&self) -> bool {
        !(self.users.is_empty() && self.tokens.is_empty() && self.metrics_tokens.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// PEM: the certificate chain, the server's own first.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Web {
    pub fn describe(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let a = &self.access;
        let access = if a.is_configured() {
            format!(
                "{} user(s), {} token(s), {} metrics token(s)",
                a.users.len(),
                a.tokens.len(),
                a.metrics_tokens.len()
            )
        } else {
            "no access control".to_owned()
        };
        let mut s = format!(
            "web         {scheme}://{} ({access}; run serves it)",
            self.listen
        );
        if let Some(t) = &self.tls {
            s.push_str(&format!(
                "\ntls         cert {} key {}",
                t.cert.display(),
                t.key.display()
            ));
        }
        s
    }
}

/// RFC 6750's token characters.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
}

impl Validator<'_> {
    pub(super) fn web(&self, raw: Option<RawWeb>) -> VResult<Option<Web>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let listen = match raw.listen {
            None => Web::default().listen,
            Some(s) => match s.get_ref().trim().parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    return self.err(
                        s.span(),
                        format!(
                            "{:?} is not an address and port (e.g. {DEFAULT_LISTEN} or [::1]:8080)",
                            s.get_ref()
                        ),
                    )
                }
            },
        };
        let tls = match (raw.tls_cert, raw.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(Tls {
                cert: self.path(cert)?,
                key: self.path(key)?,
            }),
            (Some(s), None) => return self.err(s.span(), "tls_cert needs tls_key too"),
            (None, Some(s)) => return self.err(s.span(), "tls_key needs tls_cert too"),
        };
        let access = Access {
            users: self.users(raw.users)?,
            tokens: self.tokens(raw.tokens)?,
            metrics_tokens: self.tokens(raw.metrics_tokens)?,
        };
        Ok(Some(Web {
            listen,
            access,
            tls,
        }))
    }

    fn path(&self, s: Spanned<String>) -> VResult<PathBuf> {
        if s.get_ref().trim().is_empty() {
            return self.err(s.span(), "the path is empty");
        }
        Ok(PathBuf::from(s.into_inner()))
    }

    fn users(
        &self,
        raw: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    ) -> VResult<Vec<(String, String)>> {
        let mut users = Vec::new();
        for (name, hash) in raw.map(Spanned::into_inner).unwrap_or_default() {
            let plain = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
            if !plain {
                return self.err(
                    hash.span(),
                    format!("{name:?} is not a valid user name: use 1 to 64 letters, digits, '-', '_', '.' or '@'"),
                );
            }
            let argon2 = argon2::PasswordHash::new(hash.get_ref())
                .ok()
                .filter(|h| h.algorithm.as_str().starts_with("argon2") && h.hash.is_some());
            if argon2.is_none() {
                return self.err(
                    hash.span(),
                    format!("the password of {name:?} is not an argon2 hash: make one with `bwacct passwd`"),
                );
            }
            users.push((name, hash.into_inner()));
        }
        Ok(users)
    }

    fn tokens(&self, raw: Option<Spanned<Vec<Spanned<String>>>>) -> VResult<Vec<[u8; 32]>> {
        let mut out = Vec::new();
        for t in raw.map(Spanned::into_inner).unwrap_or_default() {
            let v = t.get_ref();
            if v.len() < MIN_TOKEN_LEN || v.len() > 4096 || !v.chars().all(token_char) {
                return self.err(
                    t.span(),
                    format!("a token must be {MIN_TOKEN_LEN} to 4096 letters, digits or -._~+/= (e.g. from `openssl rand -hex 32`)"),
                );
            }
            out.push(Sha256::digest(v.as_bytes()).into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const LOCAL: &str = "[accounting]\nlocal = [\"198.51.100.0/24\"]\n";
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5mK8sXLGM1lFlHNcrdc5wuS3J3qGq3hK5yB4hYc4oLo";

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/etc/bwacct/w.toml"), &format!("{text}{LOCAL}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn access_and_tls_settings_are_checked_and_keep_no_secret() {
        let token = "0123456789abcdef0123";
        let c = parse(&format!(
            "[web]\nlisten = \"0.0.0.0:8443\"\nusers = {{ alice = \"{HASH}\" }}\ntokens = [\"{token}\"]\ntls_cert = \"/etc/bwacct/cert.pem\"\ntls_key = \"/etc/bwacct/key.pem\"\n"
        ))
        .unwrap();
        let w = c.web.as_ref().unwrap();
        assert_eq!(w.access.users, vec![("alice".to_owned(), HASH.to_owned())]);
        assert_eq!(w.access.tokens.len(), 1);
        assert!(w.tls.is_some());
        let shown = format!("{c:?}\n{}", c.describe());
        assert!(!shown.contains(token), "a token in a printout");
        assert!(c
            .describe()
            .contains("https://0.0.0.0:8443 (1 user(s), 1 token(s), 0 metrics token(s)"));
        let cases: &[(&str, &[&str])] = &[
            (
                "[web]\nusers = { alice = \"secret\" }\n",
                &[
                    "w.toml:2:",
                    "web.users",
                    "not an argon2 hash",
                    "bwacct passwd",
                ],
            ),
            (
                "[web]\nusers = { \"a b\" = \"x\" }\n",
                &["w.toml:2:", "not a valid user name"],
            ),
            (
                "[web]\ntokens = [\"short\"]\n",
                &["w.toml:2:", "web.tokens", "16 to 4096"],
            ),
            (
                "[web]\nmetrics_tokens = [\"has a space in it, quite long\"]\n",
                &["w.toml:2:", "web.metrics_tokens"],
            ),
            (
                "[web]\ntls_cert = \"/c.pem\"\n",
                &["w.toml:2:", "web.tls_cert", "needs tls_key"],
            ),
            (
                "[web]\ntls_key = \"/k.pem\"\n",
                &["w.toml:2:", "needs tls_cert"],
            ),
            ("[web]\nuser = {}\n", &["w.toml:2:", "did you mean `users`"]),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            for w in *want {
                assert!(e.contains(w), "{text}: {e} (missing {w})");
            }
        }
    }
}
