//! `[names]`: the names shown next to addresses: a static table, and reverse DNS (off unless
//! asked for) with its servers and bounds. Validated here; looked up by `crate::names`.

use super::raw::RawNames;
use super::{VResult, Validator};
use crate::names::hostname;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    /// Look up PTR names of addresses that the config does not name.
    pub reverse_dns: bool,
    /// DNS servers to ask; empty: those of `/etc/resolv.conf`.
    pub servers: Vec<SocketAddr>,
    /// The longest wait for one answer.
    pub timeout: Duration,
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// Lookups started per minute, at most.
    pub per_minute: u32,
    /// How long "no name" is remembered when the server gives no negative TTL.
    pub negative_ttl: Duration,
    /// Addresses whose answers are remembered.
    pub cache_size: usize,
    /// `static`: address → name, in canonical form.
    pub fixed: Vec<(IpAddr, String)>,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            reverse_dns: false,
            servers: Vec::new(),
            timeout: Duration::from_millis(2000),
            concurrency: 8,
            per_minute: 600,
            negative_ttl: Duration::from_secs(600),
            cache_size: 65_536,
            fixed: Vec::new(),
        }
    }
}

impl Names {
    pub fn describe(&self) -> String {
        let dns = match (self.reverse_dns, self.servers.is_empty()) {
            (false, _) => "reverse DNS off".to_owned(),
            (true, true) => "reverse DNS via /etc/resolv.conf".to_owned(),
            (true, false) => format!(
                "reverse DNS via {}",
                self.servers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "names       {} static, {dns} (timeout {} ms, {} at once, {} per minute, {} cached)",
            self.fixed.len(),
            self.timeout.as_millis(),
            self.concurrency,
            self.per_minute,
            self.cache_size
        )
    }
}

/// A DNS server: `ADDRESS` (port 53) or `ADDRESS:PORT` (`[v6]:PORT`).
fn server(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|a| SocketAddr::new(a, 53)))
}

impl Validator<'_> {
    pub(super) fn names(&self, raw: Option<RawNames>) -> VResult<Option<Names>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let d = Names::default();
        let mut servers = Vec::new();
        for s in raw.servers.map(Spanned::into_inner).unwrap_or_default() {
            match server(s.get_ref()) {
                Some(a) => servers.push(a),
                None => {
                    return self.err(
                        s.span(),
                        format!(
                            "{:?} is not a DNS server address (e.g. 192.0.2.53, 127.0.0.1:5353 or [2001:db8::53]:53)",
                            s.get_ref()
                        ),
                    )
                }
            }
        }
        let mut fixed = Vec::new();
        for (addr, name) in raw.fixed.map(Spanned::into_inner).unwrap_or_default() {
            let Ok(ip) = addr.trim().parse::<IpAddr>() else {
                return self.err(
                    name.span(),
                    format!("{addr:?} is not an IP address (static names are per address)"),
                );
            };
            match hostname::check(name.get_ref()) {
                Ok(n) => fixed.push((ip, n)),
                Err(why) => {
                    return self.err(
                        name.span(),
                        format!("{:?} is not a host name: {why}", name.get_ref()),
                    )
                }
            }
        }
        let ms = self.int(&raw.timeout_ms, d.timeout.as_millis() as i64, 100, 30_000)?;
        Ok(Some(Names {
            reverse_dns: raw.reverse_dns.unwrap_or(false),
            servers,
            timeout: Duration::from_millis(ms as u64),
            concurrency: self.int(&raw.concurrency, d.concurrency as i64, 1, 256)? as usize,
            per_minute: self.int(&raw.per_minute, i64::from(d.per_minute), 1, 1_000_000)? as u32,
            negative_ttl: Duration::from_secs(self.int(
                &raw.negative_ttl_s,
                d.negative_ttl.as_secs() as i64,
                0,
                86_400,
            )? as u64),
            cache_size: self.int(&raw.cache_size, d.cache_size as i64, 16, 16_777_216)? as usize,
            fixed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const LOCAL: &str = "[accounting]\nlocal = [\"198.51.100.0/24\"]\n";

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/etc/bwacct/n.toml"), &format!("{text}{LOCAL}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn names_are_off_unless_asked_for_and_validated() {
        assert!(parse("").unwrap().names.is_none());
        let n = parse("[names]\nreverse_dns = true\nservers = [\"192.0.2.53\", \"127.0.0.1:5353\", \"[2001:db8::53]:53\"]\n[names.static]\n\"198.51.100.7\" = \"Mail.Example.\"\n")
            .unwrap()
            .names
            .unwrap();
        assert!(n.reverse_dns);
        assert_eq!(
            n.servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["192.0.2.53:53", "127.0.0.1:5353", "[2001:db8::53]:53"]
        );
        assert_eq!(
            n.fixed,
            vec![("198.51.100.7".parse().unwrap(), "mail.example".to_owned())]
        );
        assert_eq!(n.timeout.as_millis(), 2000);
        let quiet = parse("[names]\nstatic = { \"2001:db8::1\" = \"v6.example\" }\n")
            .unwrap()
            .names
            .unwrap();
        assert!(!quiet.reverse_dns, "reverse DNS is off by default");
        let cases: &[(&str, &[&str])] = &[
            (
                "[names]\nservers = [\"dns.example\"]\n",
                &["n.toml:2:", "names.servers", "not a DNS server address"],
            ),
            (
                "[names]\ntimeout_ms = 5\n",
                &["n.toml:2:", "names.timeout_ms", "out of range"],
            ),
            (
                "[names]\nconcurrency = 0\n",
                &["n.toml:2:", "names.concurrency", "out of range"],
            ),
            (
                "[names]\nreverse_dsn = true\n",
                &["n.toml:2:", "did you mean `reverse_dns`"],
            ),
            (
                "[names.static]\n\"198.51.100.7\" = \"<b>x</b>\"\n",
                &["n.toml:2:", "names.static", "not a host name"],
            ),
            (
                "[names.static]\n\"mail\" = \"mail.example\"\n",
                &["n.toml:2:", "not an IP address"],
            ),
            (
                "[names]\nstatic = { \"198.51.100.7\" = \"198.51.100.8\" }\n",
                &[
                    "n.toml:2:",
                    "names.static",
                    "an IP address is not a host name",
                ],
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            for w in *want {
                assert!(e.contains(w), "{text}: {e} (missing {w})");
            }
        }
    }
}
