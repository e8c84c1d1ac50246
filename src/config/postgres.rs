//! `[storage] postgres`: the central store's connection string, checked once (never echoed: it
//! may hold a password), and where its password may come from.

use super::{VResult, Validator};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use toml::Spanned;

/// How to reach the central PostgreSQL store.
#[derive(Clone, PartialEq, Eq)]
pub struct Postgres {
    /// libpq-style `key=value` pairs or a `postgresql://` URL.
    pub conninfo: String,
    /// A file holding the password (first line), when the connection string has none.
    pub password_file: Option<PathBuf>,
}

impl Postgres {
    /// The parsed connection settings.
    pub fn settings(&self) -> Result<postgres::Config, postgres::Error> {
        postgres::Config::from_str(&self.conninfo)
    }

    /// Where it connects, for logs and messages: never the password.
    pub fn target(&self) -> String {
        match self.settings() {
            Ok(c) => target(&c),
            Err(_) => "(unreadable connection string)".to_owned(),
        }
    }
}

/// `host=... port=... dbname=... user=...` of a connection's settings.
pub fn target(c: &postgres::Config) -> String {
    use postgres::config::Host;
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
    let mut out = format!("host={}", hosts.join(","));
    if !ports.is_empty() {
        out.push_str(&format!(" port={}", ports.join(",")));
    }
    if let Some(db) = c.get_dbname() {
        out.push_str(&format!(" dbname={db}"));
    }
    if let Some(user) = c.get_user() {
        out.push_str(&format!(" user={user}"));
    }
    out
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("target", &self.target())
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl Validator<'_> {
    pub(super) fn postgres(
        &self,
        conninfo: Option<Spanned<String>>,
        password_file: Option<Spanned<String>>,
    ) -> VResult<Option<Postgres>> {
        let Some(conninfo) = conninfo else {
            if let Some(f) = password_file {
                return self.err(
                    f.span(),
                    "a password file without [storage] postgres: set the connection string too",
                );
            }
            return Ok(None);
        };
        let span = conninfo.span();
        let text = conninfo.into_inner();
        // The message of the parser only: the string itself may hold a password.
        let c = match postgres::Config::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                return self.err(
                    span,
                    format!("not a PostgreSQL connection string{cause} (expected e.g. \"host=db.example dbname=bwacct user=bwacct\")"),
                );
            }
        };
        if c.get_hosts().is_empty() {
            return self.err(
                span,
                "the connection string names no host: add host=NAME (or host=/run/postgresql for the local socket)",
            );
        }
        if c.get_user().is_none() {
            return self.err(span, "the connection string names no user: add user=NAME");
        }
        if c.get_ssl_mode() == postgres::config::SslMode::Require {
            return self.err(
                span,
                "sslmode=require: this bwacct connects without TLS; reach the database over a local socket, a VPN or an SSH tunnel, with sslmode=disable or prefer",
            );
        }
        let password_file = match password_file {
            Some(f) if f.get_ref().trim().is_empty() => {
                return self.err(f.span(), "the password file's path is empty")
            }
            Some(f) => Some(PathBuf::from(f.into_inner())),
            None => None,
        };
        Ok(Some(Postgres {
            conninfo: text,
            password_file,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(storage: &str) -> Result<Config, String> {
        let text = format!("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[storage]\n{storage}\n");
        Config::parse(Path::new("t.toml"), &text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_connection_string_is_checked_and_never_echoed() {
        let c = parse("postgres = \"host=db.example dbname=bwacct user=bwacct password=s3cret\"")
            .unwrap();
        let pg = c.storage.postgres.clone().unwrap();
        assert_eq!(pg.target(), "host=db.example dbname=bwacct user=bwacct");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!c.describe().contains("s3cret"));
        let e = parse("postgres = \"host=db.example user=bwacct password=s3cret sslmode=bogus\"")
            .unwrap_err();
        assert!(
            e.starts_with("t.toml:4:12: storage.postgres: not a PostgreSQL connection string"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = parse("postgres = \"dbname=bwacct user=bwacct\"").unwrap_err();
        assert!(e.contains("names no host"), "{e}");
        let e = parse("postgres = \"host=db.example dbname=bwacct\"").unwrap_err();
        assert!(e.contains("names no user"), "{e}");
        let e = parse("postgres_password_file = \"/etc/bwacct/pgpass\"").unwrap_err();
        assert!(
            e.contains("storage.postgres_password_file: a password file without"),
            "{e}"
        );
        let c = parse("postgres = \"postgresql://bwacct@db.example/bwacct\"\npostgres_password_file = \"/etc/bwacct/pw\"").unwrap();
        assert_eq!(
            c.storage.postgres.unwrap().password_file.unwrap(),
            Path::new("/etc/bwacct/pw")
        );
    }
}
