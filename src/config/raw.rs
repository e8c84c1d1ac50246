//! The configuration file as written: serde types that mirror the TOML, unknown keys rejected.
//! Values keep their spans so that validation errors can name the line.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub sensor: Option<Spanned<String>>,
    #[serde(default)]
    pub capture: RawCapture,
    #[serde(default)]
    pub accounting: RawAccounting,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub customer: Vec<Spanned<RawCustomer>>,
    #[serde(default)]
    pub alerts: RawAlerts,
    #[serde(default)]
    pub shaping: RawShaping,
    pub web: Option<RawWeb>,
    pub guard: Option<RawGuard>,
    #[serde(default)]
    pub service: RawService,
    #[serde(default)]
    pub report: RawReport,
    pub names: Option<RawNames>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    pub interfaces: Option<Spanned<Vec<Spanned<String>>>>,
    pub promiscuous: Option<bool>,
    pub snaplen: Option<Spanned<i64>>,
    pub filter: Option<Spanned<String>>,
    pub buffer_mib: Option<Spanned<i64>>,
    pub timeout_ms: Option<Spanned<i64>>,
    pub coalesce_ms: Option<Spanned<i64>>,
    pub threads: Option<Spanned<i64>>,
    pub pin: Option<bool>,
    pub fanout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccounting {
    pub local: Option<Spanned<Vec<Spanned<String>>>>,
    pub interval_s: Option<Spanned<i64>>,
    pub count: Option<Spanned<String>>,
    pub ipv6_prefix: Option<Spanned<i64>>,
    pub max_hosts: Option<Spanned<i64>>,
    #[serde(default)]
    pub ports: RawPorts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPorts {
    pub http: Option<Spanned<Vec<Spanned<i64>>>>,
    pub ftp: Option<Spanned<Vec<Spanned<i64>>>>,
    pub mail: Option<Spanned<Vec<Spanned<i64>>>>,
    pub p2p: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub sqlite: Option<Spanned<String>>,
    pub postgres: Option<Spanned<String>>,
    pub postgres_password_file: Option<Spanned<String>>,
    pub max_pending_mib: Option<Spanned<i64>>,
    pub retry_on_stop_s: Option<Spanned<i64>>,
    #[serde(default)]
    pub retention: RawRetention,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub user: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
}

/// One `[[customer]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomer {
    pub name: Spanned<String>,
    pub addresses: Option<Spanned<Vec<Spanned<String>>>>,
    pub vif: Option<Spanned<String>>,
    pub mark: Option<Spanned<i64>>,
    pub allotment: Option<Spanned<RawAllotment>>,
    pub shape: Option<Spanned<RawShape>>,
    pub billing_day: Option<Spanned<i64>>,
    pub macs: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `{ monthly_gb = 500, measure = "total" }` or `{ p95_mbit = 10 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllotment {
    pub monthly_gb: Option<Spanned<f64>>,
    pub measure: Option<Spanned<String>>,
    pub p95_mbit: Option<Spanned<f64>>,
}

/// `{ rate = "1mbit", peak = "2mbit", burst = "40mb", latency = "50ms" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShape {
    pub rate: Spanned<String>,
    pub peak: Option<Spanned<String>>,
    pub burst: Option<Spanned<String>>,
    pub latency: Option<Spanned<String>>,
}

/// One hook: a program and its arguments.
pub type RawArgv = Vec<Spanned<String>>;

/// A list of hooks.
pub type RawHooks = Spanned<Vec<Spanned<RawArgv>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub hooks: Option<RawHooks>,
    pub timeout_s: Option<Spanned<i64>>,
    pub retries: Option<Spanned<i64>>,
    pub warn_percent: Option<Spanned<f64>>,
    pub hysteresis_percent: Option<Spanned<f64>>,
    pub warn_on_estimate: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub samples_days: Option<Spanned<i64>>,
    pub hourly_days: Option<Spanned<i64>>,
    pub daily_days: Option<Spanned<i64>>,
    pub monthly_days: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShaping {
    pub method: Option<Spanned<String>>,
    pub uplink: Option<Spanned<String>>,
    pub uplink_rate: Option<Spanned<String>>,
    pub downlink: Option<Spanned<String>>,
    pub auto: Option<bool>,
    pub classifier: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub listen: Option<Spanned<String>>,
    /// User name → argon2 hash (`bwacct passwd`).
    pub users: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub tokens: Option<Spanned<Vec<Spanned<String>>>>,
    pub metrics_tokens: Option<Spanned<Vec<Spanned<String>>>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<i64>>,
    pub client_timeout_s: Option<Spanned<i64>>,
}

/// `[names]`: names shown for addresses.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNames {
    pub reverse_dns: Option<bool>,
    pub servers: Option<Spanned<Vec<Spanned<String>>>>,
    pub timeout_ms: Option<Spanned<i64>>,
    pub concurrency: Option<Spanned<i64>>,
    pub per_minute: Option<Spanned<i64>>,
    pub negative_ttl_s: Option<Spanned<i64>>,
    pub cache_size: Option<Spanned<i64>>,
    /// Address → name.
    #[serde(rename = "static")]
    pub fixed: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    pub timezone: Option<Spanned<String>>,
}

/// `[guard]`: the layer-2 checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub mac_flood_min: Option<Spanned<i64>>,
    pub mac_flood_factor: Option<Spanned<f64>>,
    pub baseline_intervals: Option<Spanned<i64>>,
    pub max_macs: Option<Spanned<i64>>,
    pub arp_reply_flood: Option<Spanned<i64>>,
    pub binding_active_s: Option<Spanned<i64>>,
    pub max_bindings: Option<Spanned<i64>>,
    pub learn_sample: Option<Spanned<i64>>,
    pub bindings: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    pub hooks: Option<RawHooks>,
}
