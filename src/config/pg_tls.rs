//! The TLS settings of the central store's connection string: libpq's `sslmode` (all of
//! disable, prefer, require, verify-ca and verify-full, of which the PostgreSQL client crate
//! parses only the first three) and `sslrootcert`, taken out of the string before the client
//! parses the rest. Reads no file (the connector does) and never echoes another key's value.

use std::path::PathBuf;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, unverified; plain otherwise (libpq's default).
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked against `sslrootcert` only when a CA file
    /// is there (libpq's rule), else unverified.
    Require,
    /// TLS with a certificate signed by the CA of `sslrootcert`, whatever name it bears.
    VerifyCa,
    /// TLS with a certificate signed by the CA and naming the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err("sslmode=allow is not supported: use disable, prefer or require".into())
            }
            other => {
                return Err(format!(
                    "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }

    /// The mode the client crate is told: it negotiates, the connector verifies.
    pub fn client_mode(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where `sslrootcert` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the system's trusted CAs (and verify-full, as libpq does).
    System,
}

/// The TLS settings of a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgTls {
    pub mode: SslMode,
    pub root_cert: Option<RootCert>,
}

/// The connection string without `sslrootcert` and with an `sslmode` the client crate knows,
/// and the TLS settings taken out of it. Errors name the key, never another key's value.
pub fn split(conninfo: &str) -> Result<(String, PgTls), String> {
    let url = conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://");
    let pairs = if url {
        match conninfo.split_once('?') {
            Some((_, query)) => url_pairs(query)?,
            None => Vec::new(),
        }
    } else {
        keyword_pairs(conninfo)?
    };
    let mut tls = PgTls::default();
    for (key, value) in &pairs {
        match key.as_str() {
            "sslmode" => tls.mode = SslMode::parse(value)?,
            "sslrootcert" if value.is_empty() => {
                return Err("sslrootcert is empty: name a CA file (PEM)".into())
            }
            "sslrootcert" if value == "system" => tls.root_cert = Some(RootCert::System),
            "sslrootcert" => tls.root_cert = Some(RootCert::File(PathBuf::from(value))),
            _ => {}
        }
    }
    if tls.root_cert == Some(RootCert::System) {
        if matches!(
            tls.mode,
            SslMode::Disable | SslMode::Prefer | SslMode::Require
        ) {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full (it is {})",
                tls.mode.as_str()
            ));
        }
        // libpq: the system's CAs vouch for names, not for one private CA
        tls.mode = SslMode::VerifyFull;
    }
    let keep = |key: &str| key != "sslrootcert";
    let mapped = |key: &str, value: String| -> String {
        if key == "sslmode" {
            tls.mode.client_mode().to_owned()
        } else {
            value
        }
    };
    let cleaned = if url {
        let (base, query) = conninfo.split_once('?').unwrap_or((conninfo, ""));
        let params: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| keep(&percent_decode(p.split_once('=').map_or(*p, |(k, _)| k))))
            .map(|p| match p.split_once('=') {
                Some((k, _)) if percent_decode(k) == "sslmode" => {
                    format!("sslmode={}", tls.mode.client_mode())
                }
                _ => p.to_owned(),
            })
            .collect();
        if params.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", params.join("&"))
        }
    } else {
        pairs
            .into_iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| {
                let v = mapped(&k, v);
                format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok((cleaned, tls))
}

/// `key = value` pairs as libpq reads them: values bare or in single quotes, `\` escaping.
fn keyword_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if it.peek().is_some() {
                return Err("a `=` without a key".into());
            }
            return Ok(out);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(format!("`{key}` has no `=` and value"));
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => return Err(format!("the value of `{key}` has no closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(it.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next());
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(format!("`{key}` has no value"));
            }
        }
        out.push((key, value));
    }
}

/// The `key=value` parameters of a URL's query, decoded.
fn url_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((percent_decode(k), percent_decode(v))),
            None => Err(format!(
                "the URL parameter `{}` has no value",
                percent_decode(p)
            )),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_and_the_ca_file_are_taken_out_of_the_string() {
        let (s, t) =
            split("host=db.example user=bw password='it\\'s' sslmode=verify-full sslrootcert = /etc/ca.pem")
                .unwrap();
        assert_eq!(
            s,
            "host='db.example' user='bw' password='it\\'s' sslmode='require'"
        );
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        let (s, t) = split("postgresql://bw@db.example/bw?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3").unwrap();
        assert_eq!(
            s,
            "postgresql://bw@db.example/bw?sslmode=require&connect_timeout=3"
        );
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        let (s, t) = split("postgresql://bw@db.example/bw").unwrap();
        assert_eq!(s, "postgresql://bw@db.example/bw");
        assert_eq!(t, PgTls::default());
        let (_, t) = split("host=h user=u sslmode=verify-ca sslrootcert=system").unwrap();
        assert_eq!(
            (t.mode, t.root_cert),
            (SslMode::VerifyFull, Some(RootCert::System))
        );
    }

    #[test]
    fn bad_tls_settings_name_the_key_and_not_the_password() {
        let e = split("host=h password=s3cret sslmode=bogus").unwrap_err();
        assert!(e.starts_with("sslmode=bogus: expected disable"), "{e}");
        assert!(split("host=h sslmode=allow")
            .unwrap_err()
            .contains("sslmode=allow"));
        assert!(split("host=h sslrootcert=''")
            .unwrap_err()
            .contains("sslrootcert is empty"));
        let e = split("host=h sslrootcert=system").unwrap_err();
        assert!(
            e.contains("sslrootcert=system needs sslmode=verify-full"),
            "{e}"
        );
        let e = split("host=h password='s3cret").unwrap_err();
        assert!(
            e.contains("`password` has no closing quote") && !e.contains("s3cret"),
            "{e}"
        );
    }
}
