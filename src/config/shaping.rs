//! `[shaping]` and `[alerts]`: how over-quota customers are slowed down (method, uplink, its
//! rate, automatic or not) and who is told (hooks as argv, timeout, thresholds). Validated once;
//! nothing here runs a command.

use super::raw::{RawAlerts, RawHooks, RawShaping};
use super::{VResult, Validator};
use crate::quantity::Rate;
use std::time::Duration;

/// How shaping reaches a customer's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Xen bridge: TBF on the vif (to the customer), iptables physdev mark + HTB class on the
    /// uplink (from the customer).
    Bridge,
    /// No bridge: HTB classes selected by u32 matches on the customer's addresses, sources on
    /// the uplink, destinations on the downlink.
    Address,
}

/// The tc classifier that maps the fw mark to the customer's class (bridge method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classifier {
    /// `fw`: the classic mark classifier.
    Fw,
    /// `bpf` with a four-instruction classic BPF program reading the mark: for kernels built
    /// without `cls_fw` (CONFIG_NET_CLS_FW).
    Bpf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shaping {
    pub method: Method,
    /// The interface towards the Internet (`peth0` on a Xen dom0).
    pub uplink: String,
    /// The rate of the HTB parent class on the uplink (and the downlink).
    pub uplink_rate: Rate,
    /// Address method: the interface towards the customers.
    pub downlink: Option<String>,
    /// `run` applies shaping when a customer goes over and clears it when it is back to ok.
    pub auto: bool,
    pub classifier: Classifier,
    /// The largest packet on the shaped interfaces, link header included (TBF's `mtu`).
    pub mtu: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// Each hook is an argv (never a shell) with `{placeholders}`.
    pub hooks: Vec<Vec<String>>,
    pub timeout: Duration,
    /// Further attempts after a failed run.
    pub retries: u32,
    /// The warn state starts at this percentage of the allotment.
    pub warn_percent: f64,
    /// A state is only left downwards (when the allotment changes) this many points below its
    /// threshold.
    pub hysteresis_percent: f64,
    /// Warn early when the projected use at the end of the period passes the allotment.
    pub warn_on_estimate: bool,
}

/// The placeholders a quota hook may use, in the order of the documentation.
pub const HOOK_PLACEHOLDERS: [&str; 13] = [
    "customer",
    "state",
    "old_state",
    "used_bytes",
    "allotment_bytes",
    "percent",
    "vif",
    "used",
    "allotment",
    "unit",
    "estimate",
    "reason",
    "time",
];

impl Validator<'_> {
    pub(super) fn shaping(&self, raw: RawShaping) -> VResult<Shaping> {
        let method = match &raw.method {
            None => Method::Bridge,
            Some(m) => match m.get_ref().as_str() {
                "bridge" => Method::Bridge,
                "address" => Method::Address,
                other => {
                    return self.err(
                        m.span(),
                        format!(
                            "{other:?} is not a shaping method: expected \"bridge\" or \"address\""
                        ),
                    )
                }
            },
        };
        let uplink = match &raw.uplink {
            Some(u) => {
                self.interface_name(u)?;
                u.get_ref().clone()
            }
            None => "peth0".to_owned(),
        };
        let downlink = match &raw.downlink {
            Some(d) => {
                self.interface_name(d)?;
                if *d.get_ref() == uplink {
                    return self.err(d.span(), "the downlink must differ from the uplink");
                }
                Some(d.get_ref().clone())
            }
            None => None,
        };
        if method == Method::Address && downlink.is_none() {
            return self.err(
                raw.method.as_ref().map(|m| m.span()).unwrap_or_default(),
                "shaping.method = \"address\" needs shaping.downlink, the interface towards the customers",
            );
        }
        let uplink_rate = match &raw.uplink_rate {
            Some(r) => Rate::parse(r.get_ref()).or_else(|e| self.err(r.span(), e.to_string()))?,
            None => Rate(1_000_000_000),
        };
        let classifier = match &raw.classifier {
            None => Classifier::Fw,
            Some(c) => match c.get_ref().as_str() {
                "fw" => Classifier::Fw,
                "bpf" => Classifier::Bpf,
                other => {
                    return self.err(
                        c.span(),
                        format!("{other:?} is not a classifier: expected \"fw\" or \"bpf\""),
                    )
                }
            },
        };
        Ok(Shaping {
            method,
            uplink,
            uplink_rate,
            downlink,
            auto: raw.auto.unwrap_or(false),
            classifier,
            mtu: self.int(&raw.mtu, 1600, 576, 65_536)? as u32,
        })
    }

    pub(super) fn alerts(&self, raw: RawAlerts) -> VResult<Alerts> {
        let hooks = self.hooks(raw.hooks, &HOOK_PLACEHOLDERS)?;
        let percent = |v: &Option<toml::Spanned<f64>>, default: f64, max: f64| -> VResult<f64> {
            match v {
                None => Ok(default),
                Some(p) if (0.0..=max).contains(p.get_ref()) => Ok(*p.get_ref()),
                Some(p) => self.err(
                    p.span(),
                    format!("{} is out of range: expected 0 to {max}", p.get_ref()),
                ),
            }
        };
        let warn_percent = percent(&raw.warn_percent, 80.0, 100.0)?;
        Ok(Alerts {
            hooks,
            timeout: Duration::from_secs(self.int(&raw.timeout_s, 10, 1, 3600)? as u64),
            retries: self.int(&raw.retries, 3, 0, 20)? as u32,
            warn_percent,
            hysteresis_percent: percent(&raw.hysteresis_percent, 5.0, warn_percent)?,
            warn_on_estimate: raw.warn_on_estimate.unwrap_or(false),
        })
    }

    /// Hooks as argv lists whose placeholders are all in `known` (`[alerts]`, `[guard]`).
    pub(super) fn hooks(&self, raw: Option<RawHooks>, known: &[&str]) -> VResult<Vec<Vec<String>>> {
        let mut hooks = Vec::new();
        for hook in raw.map(toml::Spanned::into_inner).unwrap_or_default() {
            let span = hook.span();
            let argv = hook.into_inner();
            match argv.first() {
                None => {
                    return self.err(
                        span,
                        "a hook is an argv: [\"/path/to/program\", \"arg\", ...]",
                    )
                }
                Some(p) if p.get_ref().trim().is_empty() => {
                    return self.err(p.span(), "the hook's program is empty")
                }
                Some(_) => {}
            }
            for arg in &argv {
                if let Some(bad) = unknown_placeholder(arg.get_ref(), known) {
                    return self.err(
                        arg.span(),
                        format!(
                            "unknown placeholder {{{bad}}}: known are {}",
                            known
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    );
                }
            }
            hooks.push(argv.into_iter().map(toml::Spanned::into_inner).collect());
        }
        Ok(hooks)
    }
}

/// The first `{name}` in `arg` that is not in `known` (`{{` and `}}` are literal).
fn unknown_placeholder(arg: &str, known: &[&str]) -> Option<String> {
    crate::hooks::placeholders(arg)
        .into_iter()
        .find(|p| !known.contains(&p.as_str()))
}

impl Shaping {
    /// One line for `check-config`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "shaping     {} method, uplink {} at {}",
            match self.method {
                Method::Bridge => "bridge",
                Method::Address => "address",
            },
            self.uplink,
            self.uplink_rate
        );
        if let Some(d) = &self.downlink {
            s.push_str(&format!(", downlink {d}"));
        }
        s.push_str(match self.classifier {
            Classifier::Fw => ", fw classifier",
            Classifier::Bpf => ", bpf classifier",
        });
        s.push_str(&format!(", mtu {}", self.mtu));
        s.push_str(if self.auto {
            ", automatic"
        } else {
            ", manual (bwacct shape apply)"
        });
        s
    }
}

impl Alerts {
    /// Lines for `check-config`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "alerts      warn at {}%{}, hysteresis {} points, hooks time out after {} s, {} retries",
            self.warn_percent,
            if self.warn_on_estimate {
                " or when the estimate passes the allotment"
            } else {
                ""
            },
            self.hysteresis_percent,
            self.timeout.as_secs(),
            self.retries
        );
        for h in &self.hooks {
            s.push_str(&format!("\nhook        {h:?}"));
        }
        s
    }
}
