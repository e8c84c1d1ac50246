//! Configuration: the TOML file (`raw`) validated once into typed settings. Every error names
//! the file, the line and the key. Nothing else in the program reads the file.

mod customers;
mod error;
mod guard;
mod names;
mod pg_tls;
mod postgres;
mod raw;
mod report;
mod retention;
mod service;
mod shaping;
mod web;

pub use customers::{Allotment, Customer, Measure, Shape, GB, MAX_MARK};
pub use error::{ConfigError, Located};
pub use guard::{Guard, BASELINE_WARMUP, GUARD_HOOK_PLACEHOLDERS};
pub use names::Names;
pub use pg_tls::{PgTls, RootCert, SslMode};
pub use postgres::Postgres;
pub use report::{parse_zone, Report};
pub use service::{Service, DEFAULT_USER};
pub use shaping::{Alerts, Classifier, Method, Shaping, HOOK_PLACEHOLDERS};
pub use web::{Access, Limits, Tls, Web, DEFAULT_LISTEN, MIN_TOKEN_LEN};

use crate::account::CountMode;
use crate::classify::App;
use error::Source;
use ipnet::IpNet;
use raw::RawConfig;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where the configuration is looked for when neither `--config` nor `BWACCT_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/bwacct/bwacct.toml";

/// BandwidthD's application port lists (DESIGN.md), the defaults of `[accounting.ports]`.
pub fn default_ports() -> Vec<(App, Vec<u16>)> {
    vec![
        (App::Mail, vec![25, 110, 143, 587, 465, 993, 995]),
        (App::Http, vec![80, 443, 8080]),
        (App::Ftp, vec![20, 21]),
        (
            App::P2p,
            [
                1044, 1045, 1214, 4661, 4662, 4665, 5190, 5500, 5501, 5502, 5503, 6346, 6347, 6666,
                6667, 7788, 8888, 8889, 28864, 28865,
            ]
            .into_iter()
            .chain(6881..=6889)
            .collect(),
        ),
    ]
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// This sensor's name in a store shared by several sensors.
    pub sensor: String,
    pub capture: Capture,
    pub accounting: Accounting,
    pub storage: Storage,
    /// `[[customer]]`, in file order.
    pub customers: Vec<Customer>,
    pub alerts: Alerts,
    pub shaping: Shaping,
    /// `[web]`: `run` serves the dashboard when this is set.
    pub web: Option<Web>,
    /// `[guard]`: the layer-2 checks run when this is set.
    pub guard: Option<Guard>,
    pub service: Service,
    pub report: Report,
    /// `[names]`: names shown next to addresses (off when not set).
    pub names: Option<Names>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// Empty: libpcap's default device.
    pub interfaces: Vec<String>,
    pub promiscuous: bool,
    pub snaplen: u32,
    /// Extra BPF, ANDed with the IP filter.
    pub filter: String,
    pub buffer_bytes: u32,
    pub timeout_ms: u32,
    /// The longest a capture thread waits after reading its ring before it looks again.
    pub coalesce_ms: u32,
    /// Capture threads per interface, sharing its packets through a `PACKET_FANOUT` group.
    pub threads: u32,
    /// Pin each capture thread to one CPU.
    pub pin: bool,
    /// How several threads of one interface share its packets.
    pub fanout: Fanout,
}

/// Which capture thread of an interface counts a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanout {
    /// The thread of the packet's local host: a host's counters stay on one core.
    Host,
    /// The thread of the packet's flow: one host's many flows spread over every thread.
    Flow,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Accounting {
    pub local: Vec<IpNet>,
    pub interval_s: u32,
    pub count: CountMode,
    pub ipv6_prefix: u8,
    pub max_hosts: u32,
    pub ports: Vec<(App, Vec<u16>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// The local store; with `postgres`, also the outbox of what is forwarded there.
    pub sqlite: PathBuf,
    /// The central store that several sensors share.
    pub postgres: Option<Postgres>,
    /// Memory held for retries while the store fails, above which failures are errors.
    pub max_pending_bytes: usize,
    /// How long a stopping `run` or `replay` keeps retrying a failing store before it spills
    /// to the journal (systemd's TimeoutStopSec must be longer).
    pub retry_on_stop: std::time::Duration,
    pub retention: crate::rollup::Retention,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates configuration text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let src = Source { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
        Validator { src: &src }.config(raw, path)
    }

    /// What the configuration means, for `check-config`.
    pub fn describe(&self) -> String {
        let c = &self.capture;
        let a = &self.accounting;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("config      {}", self.path.display()));
        line(format!("sensor      {}", self.sensor));
        line(format!(
            "capture     {} (promiscuous {}, snaplen {}, buffer {} MiB, timeout {} ms, coalesce {} ms, {} thread(s) per interface{}, fanout by {})",
            if c.interfaces.is_empty() {
                "libpcap's default device".to_owned()
            } else {
                c.interfaces.join(", ")
            },
            c.promiscuous,
            c.snaplen,
            c.buffer_bytes >> 20,
            c.timeout_ms,
            c.coalesce_ms,
            c.threads,
            if c.pin { ", pinned" } else { "" },
            match c.fanout {
                Fanout::Host => "host",
                Fanout::Flow => "flow",
            }
        ));
        for f in crate::capture::bpf_filters(&c.filter, self.guard.is_some()) {
            line(format!("filter      {f}"));
        }
        for net in &a.local {
            line(format!("local       {net}"));
        }
        line(format!(
            "counting    {} bytes every {} s, IPv6 per /{}, at most {} new hashed addresses per interval",
            match a.count {
                CountMode::Ip => "IP-header",
                CountMode::Frame => "frame",
            },
            a.interval_s,
            a.ipv6_prefix,
            a.max_hosts
        ));
        for (app, ports) in &a.ports {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            line(format!("ports       {:<5} {}", app.name(), ports.join(" ")));
        }
        line(format!(
            "store       sqlite {} (journal {}; alarm above {} MiB held for retries; retries {} s when stopping)",
            self.storage.sqlite.display(),
            crate::journal::path_for(&self.storage.sqlite).display(),
            self.storage.max_pending_bytes >> 20,
            self.storage.retry_on_stop.as_secs()
        ));
        if let Some(pg) = &self.storage.postgres {
            line(format!(
                "central     postgres {} (every flush is kept in the local store until PostgreSQL has it)",
                pg.target()
            ));
        }
        line(format!(
            "service     runs as user {}{} after opening the capture",
            self.service.user,
            self.service
                .group
                .as_ref()
                .map(|g| format!(", group {g}"))
                .unwrap_or_default()
        ));
        for c in &self.customers {
            line(c.describe());
        }
        line(self.alerts.describe());
        line(self.shaping.describe());
        match &self.web {
            Some(w) => line(w.describe()),
            None => line("web         off in run ([web] not set)".into()),
        }
        match &self.guard {
            Some(g) => line(g.describe()),
            None => line("guard       off ([guard] not set)".into()),
        }
        let r = &self.storage.retention;
        line(format!(
            "retention   samples {}, hourly {}, daily {}, monthly {}",
            retention::shown(r.samples_days),
            retention::shown(r.hourly_days),
            retention::shown(r.daily_days),
            retention::shown(r.monthly_days)
        ));
        line(format!(
            "report      days in {}",
            self.report.timezone.name()
        ));
        match &self.names {
            Some(n) => line(n.describe()),
            None => line("names       off ([names] not set)".into()),
        }
        out
    }
}

/// The longest `[capture] filter` accepted (a BPF expression, one line).
const MAX_FILTER_LEN: usize = 4096;

struct Validator<'a> {
    src: &'a Source<'a>,
}

type VResult<T> = std::result::Result<T, ConfigError>;

impl Validator<'_> {
    fn err<T>(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> VResult<T> {
        Err(self.src.error(Some(span), message))
    }

    fn int(&self, v: &Option<Spanned<i64>>, default: i64, min: i64, max: i64) -> VResult<i64> {
        match v {
            None => Ok(default),
            Some(s) if (min..=max).contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => self.err(
                s.span(),
                format!("{} is out of range: expected {min} to {max}", s.get_ref()),
            ),
        }
    }

    fn config(&self, raw: RawConfig, path: &Path) -> VResult<Config> {
        let sensor = match raw.sensor {
            Some(s) => {
                self.name(&s)?;
                s.into_inner()
            }
            None => default_sensor_name(),
        };
        let accounting = self.accounting(raw.accounting)?;
        let shaping = self.shaping(raw.shaping)?;
        let guard = self.guard(raw.guard, &accounting)?;
        Ok(Config {
            path: path.to_owned(),
            sensor,
            capture: self.capture(raw.capture)?,
            customers: self.customers(raw.customer, &accounting, &shaping, guard.as_ref())?,
            alerts: self.alerts(raw.alerts)?,
            shaping,
            accounting,
            storage: Storage {
                postgres: self
                    .postgres(raw.storage.postgres, raw.storage.postgres_password_file)?,
                sqlite: match raw.storage.sqlite {
                    Some(p) if p.get_ref().trim().is_empty() => {
                        return self.err(p.span(), "the SQLite path is empty")
                    }
                    Some(p) => PathBuf::from(p.into_inner()),
                    None => PathBuf::from("/var/lib/bwacct/bwacct.db"),
                },
                max_pending_bytes: (self.int(&raw.storage.max_pending_mib, 256, 1, 65_536)?
                    as usize)
                    << 20,
                retry_on_stop: std::time::Duration::from_secs(self.int(
                    &raw.storage.retry_on_stop_s,
                    30,
                    0,
                    3600,
                )? as u64),
                retention: self.retention(raw.storage.retention)?,
            },
            web: self.web(raw.web)?,
            guard,
            service: self.service(raw.service)?,
            report: self.report(raw.report)?,
            names: self.names(raw.names)?,
        })
    }

    /// Names (sensors, later customers) are printed in HTML, CSV and logs: keep them plain.
    fn name(&self, s: &Spanned<String>) -> VResult<()> {
        let v = s.get_ref();
        let ok = !v.is_empty()
            && v.len() <= 64
            && !v.starts_with('-')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            self.err(
                s.span(),
                format!("{v:?} is not a valid name: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '-'"),
            )
        }
    }

    /// Interface names reach tc, iptables and libpcap as arguments: keep them plain.
    fn interface_name(&self, name: &Spanned<String>) -> VResult<()> {
        let v = name.get_ref();
        // As the kernel's dev_valid_name: under IFNAMSIZ, no '/', whitespace, "." or "..";
        // and no leading '-' (it would read as an option to tc or ip).
        let ok = !v.is_empty()
            && v.len() < 16
            && v != "."
            && v != ".."
            && !v.starts_with('-')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'));
        if ok {
            Ok(())
        } else {
            self.err(name.span(), format!("{v:?} is not a valid interface name"))
        }
    }

    /// A network (`198.51.100.0/24`) or an address (as a /32 or /128), without host bits.
    fn network(&self, entry: &Spanned<String>) -> VResult<IpNet> {
        let net: IpNet = match entry.get_ref().parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match entry.get_ref().parse::<std::net::IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    return self.err(
                        entry.span(),
                        format!(
                        "{:?} is not a network (expected e.g. 198.51.100.0/24 or 2001:db8::/48)",
                        entry.get_ref()
                    ),
                    )
                }
            },
        };
        if net.network() != net.addr() {
            return self.err(
                entry.span(),
                format!("{net} has host bits set: did you mean {}?", net.trunc()),
            );
        }
        Ok(net)
    }

    fn capture(&self, raw: raw::RawCapture) -> VResult<Capture> {
        let mut interfaces = Vec::new();
        for name in raw.interfaces.map(Spanned::into_inner).unwrap_or_default() {
            self.interface_name(&name)?;
            let v = name.get_ref();
            if interfaces.contains(v) {
                return self.err(name.span(), format!("interface {v:?} is listed twice"));
            }
            interfaces.push(name.into_inner());
        }
        let filter = match raw.filter {
            Some(f)
                if f.get_ref().len() > MAX_FILTER_LEN
                    || f.get_ref().chars().any(char::is_control) =>
            {
                return self.err(
                    f.span(),
                    format!("the filter must be one line of at most {MAX_FILTER_LEN} characters"),
                )
            }
            Some(f) => f.into_inner(),
            None => String::new(),
        };
        Ok(Capture {
            interfaces,
            promiscuous: raw.promiscuous.unwrap_or(true),
            snaplen: self.int(&raw.snaplen, 128, 68, 262_144)? as u32,
            filter,
            buffer_bytes: (self.int(&raw.buffer_mib, 64, 1, 2047)? as u32) << 20,
            timeout_ms: self.int(&raw.timeout_ms, 100, 1, 10_000)? as u32,
            coalesce_ms: self.int(&raw.coalesce_ms, 500, 0, 1_000)? as u32,
            threads: self.int(
                &raw.threads,
                i64::from(crate::capture::fanout::default_threads()),
                1,
                i64::from(crate::capture::fanout::MAX_THREADS),
            )? as u32,
            pin: raw.pin.unwrap_or(false),
            fanout: match raw.fanout {
                None => Fanout::Host,
                Some(f) => match f.get_ref().as_str() {
                    "host" => Fanout::Host,
                    "flow" => Fanout::Flow,
                    other => {
                        return self.err(
                            f.span(),
                            format!("{other:?} is not a fanout: expected \"host\" or \"flow\""),
                        )
                    }
                },
            },
        })
    }

    fn accounting(&self, raw: raw::RawAccounting) -> VResult<Accounting> {
        let Some(local) = raw.local else {
            return Err(self.src.error(
                None,
                "[accounting] local is missing: list the networks to account, e.g. local = [\"198.51.100.0/24\"]",
            ));
        };
        let span = local.span();
        let mut nets: Vec<(IpNet, std::ops::Range<usize>)> = Vec::new();
        for entry in local.into_inner() {
            let net = self.network(&entry)?;
            if let Some((other, _)) = nets
                .iter()
                .find(|(n, _)| n.contains(&net) || net.contains(n))
            {
                return self.err(entry.span(), format!("{net} overlaps {other}"));
            }
            nets.push((net, entry.span()));
        }
        if nets.is_empty() {
            return self.err(span, "no local networks: nothing would be accounted");
        }
        let interval_s = self.int(&raw.interval_s, 60, 1, 86_400)?;
        if 86_400 % interval_s != 0 {
            let s = raw
                .interval_s
                .as_ref()
                .map(Spanned::span)
                .unwrap_or_default();
            return self.err(
                s,
                format!("{interval_s} does not divide a day: intervals must align with days (e.g. 10, 60, 300, 3600)"),
            );
        }
        let count = match raw.count {
            None => CountMode::Ip,
            Some(c) => match c.get_ref().as_str() {
                "ip" => CountMode::Ip,
                "frame" => CountMode::Frame,
                other => {
                    return self.err(
                        c.span(),
                        format!("{other:?} is not a count mode: expected \"ip\" or \"frame\""),
                    )
                }
            },
        };
        Ok(Accounting {
            local: nets.into_iter().map(|(n, _)| n).collect(),
            interval_s: interval_s as u32,
            count,
            ipv6_prefix: self.int(&raw.ipv6_prefix, 128, 16, 128)? as u8,
            max_hosts: self.int(&raw.max_hosts, 131_072, 16, 16_777_216)? as u32,
            ports: self.ports(raw.ports)?,
        })
    }

    fn ports(&self, raw: raw::RawPorts) -> VResult<Vec<(App, Vec<u16>)>> {
        let mut lists = default_ports();
        let given = [
            (App::Mail, raw.mail),
            (App::Http, raw.http),
            (App::Ftp, raw.ftp),
            (App::P2p, raw.p2p),
        ];
        // Explicit ports with their place, checked against every final list (defaults too).
        let mut explicit: Vec<(App, u16, std::ops::Range<usize>)> = Vec::new();
        let mut given_apps = Vec::new();
        for (app, list) in given {
            let Some(list) = list else { continue };
            given_apps.push(app);
            let mut ports = Vec::new();
            for p in list.into_inner() {
                let Ok(port) = u16::try_from(*p.get_ref()) else {
                    return self.err(
                        p.span(),
                        format!("{} is not a port (0 to 65535)", p.get_ref()),
                    );
                };
                if ports.contains(&port) {
                    return self.err(p.span(), format!("port {port} is listed twice"));
                }
                ports.push(port);
                explicit.push((app, port, p.span()));
            }
            if let Some(entry) = lists.iter_mut().find(|(a, _)| *a == app) {
                entry.1 = ports;
            }
        }
        for (app, port, span) in explicit {
            let other = lists
                .iter()
                .find(|(a, ports)| *a != app && ports.contains(&port));
            if let Some((other, _)) = other {
                let hint = if given_apps.contains(other) {
                    String::new()
                } else {
                    format!(" (by default; list `{}` to move it)", other.name())
                };
                return self.err(
                    span,
                    format!("port {port} is already in the {} list{hint}", other.name()),
                );
            }
        }
        Ok(lists)
    }
}

/// The host's name, the default sensor name.
fn default_sensor_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

#[cfg(test)]
mod customer_tests;
#[cfg(test)]
mod tests;
