//! The layer-2 guard: who floods the bridge's MAC table, who poisons ARP caches, and who sends
//! with a bound customer's address from another MAC. Observers on the capture threads
//! (`observe`) keep per-interval facts without slowing the counting; the detector (`detect`)
//! merges them once per interval, learns bindings and a baseline, and decides the events; the
//! service (`service`) stores them, runs the hooks and feeds the status. The guard never changes
//! a count: spoofed traffic stays counted for its addresses and is reported beside them.

mod bound;
pub mod detect;
mod macs;
pub mod observe;
pub mod render;
pub mod service;

pub use bound::Bound;
pub use detect::Detector;
pub use observe::{Observer, Part};

use crate::config::{Config, Guard};
use crate::customer::Customers;
use crate::hooks::HookSet;
use crate::parse::l2::Mac;
use crate::store::quota::HookStatus;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Distinct source MACs of an interval above the thresholds.
    MacFlood,
    /// An address claimed in ARP by a new MAC while its binding is active (or bound).
    ArpSpoof,
    /// Unsolicited ARP replies of an interval above the threshold.
    ArpReplyFlood,
    /// Packets from a bound customer's addresses sent by other MACs.
    SpoofedSource,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::MacFlood,
        Kind::ArpSpoof,
        Kind::ArpReplyFlood,
        Kind::SpoofedSource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::MacFlood => "mac_flood",
            Kind::ArpSpoof => "arp_spoof",
            Kind::ArpReplyFlood => "arp_reply_flood",
            Kind::SpoofedSource => "spoofed_source",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Source MACs first seen on one port and VLAN in an interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub interface: String,
    /// 0: untagged.
    pub vlan: u16,
    pub macs: u64,
}

/// One layer-2 event.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardEvent {
    /// Assigned by the store.
    pub id: i64,
    pub sensor: String,
    /// When it happened (the first frame of it seen, or the interval's start for floods).
    pub ts: i64,
    /// The interval it was decided in.
    pub interval_start: i64,
    pub kind: Kind,
    /// The customer holding `ip` (the victim), or the spoofed customer.
    pub customer: Option<String>,
    pub ip: Option<IpAddr>,
    /// The MACs that held (or are bound to) `ip`.
    pub old_macs: Vec<Mac>,
    /// The MAC that claimed `ip`, or sent from it.
    pub new_mac: Option<Mac>,
    /// Frames or packets involved (spoofed packets, unsolicited replies, claiming frames, MACs).
    pub packets: u64,
    /// Spoofed bytes, counted as the accounting counts them.
    pub bytes: u64,
    /// Example MACs (a flood's, a spoofer's).
    pub macs: Vec<Mac>,
    /// Floods: the ports and VLANs most MACs came from.
    pub groups: Vec<Group>,
    pub reason: String,
    pub hooks: HookStatus,
}

/// Layer-2 figures of one interval (what `guard_intervals` keeps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct IntervalStats {
    pub start: i64,
    pub interval_s: u32,
    /// Ethernet frames looked at.
    pub frames: u64,
    /// Distinct source MACs (a lower bound when `macs_capped`).
    pub macs: u64,
    pub macs_capped: bool,
    /// The baseline the flood test used (median of quiet intervals), once learnt.
    pub baseline: Option<u64>,
    pub arp: observe::ArpCounts,
    /// Bindings learnt in the interval, from ARP and from IP packets.
    pub new_arp_bindings: u64,
    pub new_ip_bindings: u64,
    /// Bindings active at the end of the interval.
    pub active_bindings: u64,
    pub spoofed_packets: u64,
    pub spoofed_bytes: u64,
}

/// What the detector decided for one interval.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub stats: IntervalStats,
    pub events: Vec<GuardEvent>,
}

/// Everything the detector and the service go by; replaced on reload.
#[derive(Debug)]
pub struct Policy {
    pub guard: Guard,
    pub sensor: String,
    pub interval_s: u32,
    /// Every customer (who holds an address).
    pub customers: Customers,
    /// The customers bound to MACs.
    pub bound: Arc<Bound>,
    pub hooks: Arc<HookSet>,
}

impl Policy {
    /// The policy of a configuration with `[guard]`.
    pub fn new(cfg: &Config, guard: &Guard) -> Self {
        Self {
            guard: guard.clone(),
            sensor: cfg.sensor.clone(),
            interval_s: cfg.accounting.interval_s,
            customers: Customers::new(cfg.customers.clone()),
            bound: Arc::new(Bound::new(&cfg.customers)),
            hooks: Arc::new(HookSet {
                argvs: guard.hooks.clone(),
                timeout: cfg.alerts.timeout,
                retries: cfg.alerts.retries,
                backoff: std::time::Duration::from_secs(1),
            }),
        }
    }
}

/// The placeholders of a guard hook for `e` (see `config::GUARD_HOOK_PLACEHOLDERS`).
pub fn event_vars(e: &GuardEvent) -> Vec<(String, String)> {
    let macs = |l: &[Mac]| l.iter().map(Mac::to_string).collect::<Vec<_>>().join(" ");
    let top = e.groups.first();
    [
        ("kind", e.kind.name().to_owned()),
        ("ip", e.ip.map(|i| i.to_string()).unwrap_or_default()),
        ("old_mac", macs(&e.old_macs)),
        (
            "new_mac",
            e.new_mac.map(|m| m.to_string()).unwrap_or_default(),
        ),
        ("customer", e.customer.clone().unwrap_or_default()),
        ("packets", e.packets.to_string()),
        ("bytes", e.bytes.to_string()),
        (
            "interface",
            top.map(|g| g.interface.clone()).unwrap_or_default(),
        ),
        ("vlan", top.map(|g| g.vlan.to_string()).unwrap_or_default()),
        ("macs", macs(&e.macs)),
        ("reason", e.reason.clone()),
        ("time", crate::quota::time(e.ts)),
        ("sensor", e.sensor.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod detect_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GUARD_HOOK_PLACEHOLDERS;

    #[test]
    fn every_documented_placeholder_has_a_value() {
        let e = GuardEvent {
            id: 1,
            sensor: "s".into(),
            ts: 1_704_067_260,
            interval_start: 1_704_067_260,
            kind: Kind::ArpSpoof,
            customer: Some("goneril".into()),
            ip: Some("198.51.100.1".parse().unwrap()),
            old_macs: vec![Mac(0xa), Mac(0xb)],
            new_mac: Some(Mac(0xc)),
            packets: 3,
            bytes: 0,
            macs: vec![],
            groups: vec![Group {
                interface: "br0".into(),
                vlan: 10,
                macs: 7,
            }],
            reason: "r".into(),
            hooks: HookStatus::Pending,
        };
        let vars = event_vars(&e);
        let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, GUARD_HOOK_PLACEHOLDERS);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("old_mac"), "00:00:00:00:00:0a 00:00:00:00:00:0b");
        assert_eq!(get("new_mac"), "00:00:00:00:00:0c");
        assert_eq!(get("vlan"), "10");
        assert_eq!(get("time"), "2024-01-01T00:01:00Z");
        assert_eq!(Kind::parse("arp_spoof"), Some(Kind::ArpSpoof));
        assert_eq!(Kind::parse("nope"), None);
    }
}
