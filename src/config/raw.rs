//! The configuration file as written: serde types that mirror the TOML, unknown keys rejected.
//! Values keep their spans so that validation errors can name the line.

use serde::Deserialize;
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
    pub threads: Option<Spanned<i64>>,
    pub pin: Option<bool>,
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
}
