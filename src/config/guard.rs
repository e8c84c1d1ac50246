//! `[guard]`: the layer-2 checks (MAC flooding, ARP spoofing, spoofed sources) and their
//! thresholds, static bindings and hooks, validated once. Its presence turns the guard on.
//! Nothing here looks at a frame.

use super::raw::RawGuard;
use super::{Accounting, VResult, Validator};
use crate::parse::l2::Mac;
use std::net::Ipv4Addr;
use toml::Spanned;

/// The guard's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    /// A MAC flood needs at least this many distinct source MACs in one interval...
    pub mac_flood_min: u32,
    /// ...and this many times the learned baseline (once there is one).
    pub mac_flood_factor: f64,
    /// Quiet intervals the baseline is learned from (the median of the last N).
    pub baseline_intervals: u32,
    /// Distinct source MACs each capture thread tracks per interval.
    pub max_macs: u32,
    /// Unsolicited ARP replies per interval that make a flood.
    pub arp_reply_flood: u32,
    /// A binding is active this long after its MAC last used it.
    pub binding_active_s: u32,
    /// IPv4 → MAC bindings remembered at most.
    pub max_bindings: u32,
    /// One Ethernet frame in this many (a power of two), when it is an IPv4 packet, teaches an
    /// IP → MAC binding.
    pub learn_sample: u32,
    /// Bindings known in advance (a gateway's), defended from the first frame.
    pub bindings: Vec<(Ipv4Addr, Mac)>,
    /// Argv lists run for each event, with [`GUARD_HOOK_PLACEHOLDERS`].
    pub hooks: Vec<Vec<String>>,
}

/// Intervals learned before the baseline takes part in the flood test.
pub const BASELINE_WARMUP: u32 = 3;

/// The placeholders a guard hook may use, in the order of the documentation.
pub const GUARD_HOOK_PLACEHOLDERS: [&str; 13] = [
    "kind",
    "ip",
    "old_mac",
    "new_mac",
    "customer",
    "packets",
    "bytes",
    "interface",
    "vlan",
    "macs",
    "reason",
    "time",
    "sensor",
];

impl Validator<'_> {
    /// A MAC that can own an address: not a group address, not all zeros.
    pub(super) fn unicast_mac(&self, s: &Spanned<String>) -> VResult<Mac> {
        let mac: Mac = s
            .get_ref()
            .parse()
            .or_else(|e: crate::parse::l2::BadMac| self.err(s.span(), e.to_string()))?;
        if mac.is_group() || mac.0 == 0 {
            return self.err(
                s.span(),
                format!("{mac} is not a unicast address: no host sends from it"),
            );
        }
        Ok(mac)
    }

    pub(super) fn guard(&self, raw: Option<RawGuard>, acct: &Accounting) -> VResult<Option<Guard>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let max_macs = self.int(&raw.max_macs, 65_536, 16, 4_194_304)? as u32;
        let mac_flood_min = self.int(&raw.mac_flood_min, 1000, 2, i64::from(max_macs))? as u32;
        let mac_flood_factor = match &raw.mac_flood_factor {
            None => 4.0,
            Some(f) if f.get_ref().is_finite() && (1.0..=1000.0).contains(f.get_ref()) => {
                *f.get_ref()
            }
            Some(f) => {
                return self.err(
                    f.span(),
                    format!("{} is out of range: expected 1 to 1000", f.get_ref()),
                )
            }
        };
        let learn_sample = self.int(&raw.learn_sample, 1024, 1, 65_536)? as u32;
        if !learn_sample.is_power_of_two() {
            let span = raw
                .learn_sample
                .as_ref()
                .map(Spanned::span)
                .unwrap_or_default();
            return self.err(
                span,
                format!("{learn_sample} is not a power of two (1, 2, 4, ..., 65536)"),
            );
        }
        let mut bindings: Vec<(Ipv4Addr, Mac)> = Vec::new();
        if let Some(table) = raw.bindings {
            for (ip, mac) in table.into_inner() {
                let Ok(addr) = ip.parse::<Ipv4Addr>() else {
                    return self.err(
                        mac.span(),
                        format!("{ip:?} is not an IPv4 address (ARP binds IPv4 addresses)"),
                    );
                };
                if !acct
                    .local
                    .iter()
                    .any(|n| n.contains(&std::net::IpAddr::V4(addr)))
                {
                    return self.err(
                        mac.span(),
                        format!("{addr} is not inside accounting.local: the guard watches local addresses"),
                    );
                }
                bindings.push((addr, self.unicast_mac(&mac)?));
            }
        }
        Ok(Some(Guard {
            mac_flood_min,
            mac_flood_factor,
            baseline_intervals: self.int(&raw.baseline_intervals, 30, 3, 10_000)? as u32,
            max_macs,
            arp_reply_flood: self.int(&raw.arp_reply_flood, 100, 1, 1_000_000_000)? as u32,
            binding_active_s: self.int(&raw.binding_active_s, 300, 1, 604_800)? as u32,
            max_bindings: self.int(&raw.max_bindings, 65_536, 16, 16_777_216)? as u32,
            learn_sample,
            bindings,
            hooks: self.hooks(raw.hooks, &GUARD_HOOK_PLACEHOLDERS)?,
        }))
    }
}

impl Guard {
    /// Lines for `check-config`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "guard       MAC flood at {} source MACs per interval and {}× the baseline (median of {} quiet intervals), {} tracked per capture thread; ARP reply flood at {} unsolicited replies; bindings active for {} s, at most {}, learnt from 1 IP packet in {}",
            self.mac_flood_min,
            self.mac_flood_factor,
            self.baseline_intervals,
            self.max_macs,
            self.arp_reply_flood,
            self.binding_active_s,
            self.max_bindings,
            self.learn_sample
        );
        for (ip, mac) in &self.bindings {
            s.push_str(&format!("\nbinding     {ip} is at {mac}"));
        }
        for h in &self.hooks {
            s.push_str(&format!("\nguard hook  {h:?}"));
        }
        s
    }
}
