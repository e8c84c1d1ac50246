//! Connecting to PostgreSQL: the password from the connection string, else the configured
//! password file, `PGPASSWORD`, or the `PGPASSFILE` / `~/.pgpass` entry matching host, port,
//! database and user (libpq's rules); timeouts so that an unreachable server fails fast rather
//! than hanging a flush. The password is never logged.

use super::chain;
use crate::config::{self, Postgres};
use crate::store::StoreError;
use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a connection attempt may take when the string does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long sent data may stay unacknowledged before the connection counts as dead.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects with the settings; returns the target (without password) and the client.
pub(super) fn connect(pg: &Postgres) -> Result<(String, Client), StoreError> {
    let mut c = pg.settings().map_err(|e| StoreError::PostgresSetup {
        target: "(connection string)".into(),
        message: chain(&e),
    })?;
    let target = config::postgres_target(&c);
    if c.get_password().is_none() {
        if let Some(pw) = password_for(&c, pg.password_file.as_deref()).map_err(|message| {
            StoreError::PostgresSetup {
                target: target.clone(),
                message,
            }
        })? {
            c.password(pw);
        }
    }
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(CONNECT_TIMEOUT);
    }
    if c.get_tcp_user_timeout().is_none() {
        c.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if c.get_application_name().is_none() {
        c.application_name("bwacct");
    }
    let client = c.connect(NoTls).map_err(|e| StoreError::Postgres {
        target: target.clone(),
        message: chain(&e),
        transient: super::transient(&e)
            || e.as_db_error().is_some_and(|d| {
                // the server is starting or shutting down
                d.code().code().starts_with("57")
            }),
    })?;
    Ok((target, client))
}

/// The password for a connection whose string has none: the password file (first line), then
/// `PGPASSWORD`, then the matching line of `PGPASSFILE` (default `~/.pgpass`). `None`: no
/// password (trust, peer or certificate authentication).
pub fn password_for(
    c: &postgres::Config,
    password_file: Option<&Path>,
) -> Result<Option<String>, String> {
    if let Some(path) = password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
        let first = text.lines().next().unwrap_or("");
        if first.is_empty() {
            return Err(format!("the password file {} is empty", path.display()));
        }
        return Ok(Some(first.to_owned()));
    }
    if let Some(pw) = std::env::var_os("PGPASSWORD") {
        return Ok(Some(pw.to_string_lossy().into_owned()));
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")));
    let Some(file) = file else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(None);
    };
    Ok(pgpass_lookup(&text, c))
}

/// The password of the first `host:port:database:user:password` line matching the connection
/// (`*` matches anything; `\:` and `\\` are escapes).
fn pgpass_lookup(text: &str, c: &postgres::Config) -> Option<String> {
    use postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        // libpq matches a socket directory as "localhost"
        Some(Host::Unix(_)) | None => "localhost".to_owned(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = c.get_user().unwrap_or("");
    let db = c.get_dbname().unwrap_or(user);
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_escaped(line);
        let [h, p, d, u, pw] = fields.as_slice() else {
            continue;
        };
        let ok = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if ok(h, &host) && ok(p, &port) && ok(d, db) && ok(u, user) {
            return Some(pw.clone());
        }
    }
    None
}

/// A `.pgpass` line split on unescaped colons.
fn split_escaped(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' => fields.push(String::new()),
            _ => {
                if let Some(f) = fields.last_mut() {
                    f.push(ch);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn pgpass_lines_match_host_port_database_and_user() {
        let c =
            postgres::Config::from_str("host=db.example port=5433 dbname=bw user=acct").unwrap();
        let text = "# comment\n\
                    db.example:5432:bw:acct:wrongport\n\
                    db.example:5433:other:acct:wrongdb\n\
                    db.example:*:bw:acct:pa\\:ss\n\
                    *:*:*:*:fallback\n";
        assert_eq!(pgpass_lookup(text, &c).as_deref(), Some("pa:ss"));
        let local = postgres::Config::from_str("host=/run/postgresql user=acct").unwrap();
        assert_eq!(
            pgpass_lookup("localhost:5432:acct:acct:sock\n", &local).as_deref(),
            Some("sock")
        );
        assert_eq!(pgpass_lookup("nothing:here\n", &local), None);
    }

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\nignored\n").unwrap();
        let c = postgres::Config::from_str("host=db.example user=acct").unwrap();
        assert_eq!(
            password_for(&c, Some(&f)).unwrap().as_deref(),
            Some("s3cret")
        );
        std::fs::write(&f, "").unwrap();
        assert!(password_for(&c, Some(&f)).unwrap_err().contains("is empty"));
        let missing = dir.path().join("none");
        assert!(password_for(&c, Some(&missing))
            .unwrap_err()
            .contains("cannot read the password file"));
    }
}
