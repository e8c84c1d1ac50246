//! The guard's decisions, once per interval, from the observers' parts: the distinct source MACs
//! against the absolute threshold and the learnt baseline (MAC flooding), ARP claims against the
//! IPv4 → MAC bindings learnt from ARP and IP packets or configured (ARP spoofing), unsolicited
//! replies (ARP reply floods), and bound customers' packets from other MACs (spoofed sources).
//! Each kind of event is raised at most once per interval and subject (address, customer). Pure
//! apart from its memory of bindings and baseline; no I/O.

use super::observe::{Claim, Part, EXAMPLES};
use super::{Group, GuardEvent, IntervalStats, Kind, Policy, Verdict};
use crate::config::BASELINE_WARMUP;
use crate::parse::l2::Mac;
use crate::store::quota::HookStatus;
use crate::usage::Host;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Example MACs named by a flood event.
const FLOOD_EXAMPLES: usize = 5;
/// Ports and VLANs named by a flood event.
const FLOOD_GROUPS: usize = 3;
/// A binding unused for this long (beyond `binding_active_s`) is forgotten.
const FORGET_S: i64 = 86_400;

/// An address's binding as learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Binding {
    mac: Mac,
    last: i64,
    /// Learnt or confirmed by ARP: only these are defended (a router forwards other hosts'
    /// addresses from its own MAC, so IP packets alone do not prove ownership).
    by_arp: bool,
}

/// MACs first seen on a (port, VLAN): how many, and the first few.
type GroupTally = (u64, Vec<Mac>);

/// The detector's memory across intervals.
pub struct Detector {
    policy: Arc<Policy>,
    bindings: HashMap<u32, Binding>,
    /// Distinct MACs of recent quiet intervals.
    baseline: VecDeque<u64>,
    warned_full: bool,
}

/// Claims of one interval merged across observers.
fn merge_claims(parts: &[Part]) -> Vec<Claim> {
    let mut by: HashMap<(u32, Mac), Claim> = HashMap::new();
    for c in parts.iter().flat_map(|p| &p.claims) {
        by.entry((c.ip, c.mac))
            .and_modify(|m| {
                m.first = m.first.min(c.first);
                m.last = m.last.max(c.last);
                m.frames += c.frames;
                m.unsolicited += c.unsolicited;
                m.gratuitous += c.gratuitous;
            })
            .or_insert(*c);
    }
    let mut v: Vec<Claim> = by.into_values().collect();
    v.sort_by_key(|c| (c.first, c.ip, c.mac));
    v
}

fn median(v: &VecDeque<u64>) -> Option<u64> {
    let mut s: Vec<u64> = v.iter().copied().collect();
    s.sort_unstable();
    s.get(s.len() / 2).copied()
}

fn macs_text(l: &[Mac]) -> String {
    l.iter().map(Mac::to_string).collect::<Vec<_>>().join(", ")
}

impl Detector {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self {
            policy,
            bindings: HashMap::new(),
            baseline: VecDeque::new(),
            warned_full: false,
        }
    }

    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    fn event(&self, kind: Kind, ts: i64, start: i64, reason: String) -> GuardEvent {
        GuardEvent {
            id: 0,
            sensor: self.policy.sensor.clone(),
            ts,
            interval_start: start,
            kind,
            customer: None,
            ip: None,
            old_macs: Vec::new(),
            new_mac: None,
            packets: 0,
            bytes: 0,
            macs: Vec::new(),
            groups: Vec::new(),
            reason,
            hooks: HookStatus::Pending,
        }
    }

    /// The MACs an address is pinned to (configured bindings and bound customers), and the
    /// bound customer's name.
    fn pinned(&self, ip: u32) -> Option<(Vec<Mac>, Option<String>)> {
        let p = &self.policy;
        let mut macs: Vec<Mac> = p
            .guard
            .bindings
            .iter()
            .filter(|(a, _)| u32::from(*a) == ip)
            .map(|(_, m)| *m)
            .collect();
        let mut customer = None;
        if let Some(c) = p.bound.customer_of(false, u128::from(ip)) {
            macs.extend_from_slice(p.bound.macs(c));
            customer = p.bound.name(c).map(str::to_owned);
        }
        (!macs.is_empty()).then_some((macs, customer))
    }

    fn holder(&self, ip: u32) -> Option<String> {
        self.policy
            .customers
            .of(&Host::Addr(IpAddr::V4(Ipv4Addr::from(ip))))
            .map(|c| c.name.clone())
    }

    /// Decides the interval that started at `start` from every observer's part of it.
    pub fn interval(&mut self, start: i64, parts: &[Part]) -> Verdict {
        let interval_s = self.policy.interval_s;
        let end = start + i64::from(interval_s);
        let mut stats = IntervalStats {
            start,
            interval_s,
            ..Default::default()
        };
        let mut events = Vec::new();
        for p in parts {
            stats.frames += p.frames;
            stats.arp.merge(&p.arp);
        }
        if let Some(e) = self.macs(start, parts, &mut stats) {
            events.push(e);
        }
        let claims = merge_claims(parts);
        events.extend(self.claims(start, &claims, &mut stats));
        self.learnt(parts, &mut stats);
        if let Some(e) = self.reply_flood(start, &claims, &stats) {
            events.push(e);
        }
        events.extend(self.spoofed(start, parts, &mut stats));
        let active = i64::from(self.policy.guard.binding_active_s);
        stats.active_bindings = self
            .bindings
            .values()
            .filter(|b| b.last >= end - active)
            .count() as u64;
        self.bindings
            .retain(|_, b| b.last >= end - active - FORGET_S);
        events.sort_by_key(|e| (e.ts, e.kind));
        Verdict { stats, events }
    }

    /// Distinct MACs, and a flood event when they pass both thresholds.
    fn macs(
        &mut self,
        start: i64,
        parts: &[Part],
        stats: &mut IntervalStats,
    ) -> Option<GuardEvent> {
        let mut seen: HashSet<Mac> = HashSet::new();
        // (port, vlan) → (MACs first seen there, examples)
        let mut groups: BTreeMap<(String, u16), GroupTally> = BTreeMap::new();
        let mut past_cap = 0;
        for p in parts {
            past_cap += p.macs_past_cap;
            for &(mac, vlan, port) in &p.macs {
                if !seen.insert(mac) {
                    continue;
                }
                let name = p.ports.get(usize::from(port)).cloned().unwrap_or_default();
                let g = groups.entry((name, vlan)).or_default();
                g.0 += 1;
                if g.1.len() < FLOOD_EXAMPLES {
                    g.1.push(mac);
                }
            }
        }
        // A lower bound when a table was full (`max_macs`): the MACs past it are not known.
        let distinct = seen.len() as u64;
        stats.macs = distinct;
        stats.macs_capped = past_cap > 0;
        if past_cap > 0 {
            tracing::warn!(
                max_macs = self.policy.guard.max_macs,
                "guard.max_macs reached: source MACs are counted up to it"
            );
        }
        let g = &self.policy.guard;
        let baseline = (self.baseline.len() >= BASELINE_WARMUP as usize)
            .then(|| median(&self.baseline))
            .flatten();
        stats.baseline = baseline;
        let flood = distinct >= u64::from(g.mac_flood_min)
            && baseline.is_none_or(|b| distinct as f64 >= g.mac_flood_factor * b.max(1) as f64);
        if !flood {
            if stats.frames > 0 {
                self.baseline.push_back(distinct);
                while self.baseline.len() > g.baseline_intervals as usize {
                    self.baseline.pop_front();
                }
            }
            return None;
        }
        let mut top: Vec<((String, u16), GroupTally)> = groups.into_iter().collect();
        top.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        let mut examples = top.first().map(|t| t.1 .1.clone()).unwrap_or_default();
        examples.sort();
        let groups: Vec<Group> = top
            .iter()
            .take(FLOOD_GROUPS)
            .map(|((interface, vlan), (macs, _))| Group {
                interface: interface.clone(),
                vlan: *vlan,
                macs: *macs,
            })
            .collect();
        let place = groups.first().map_or(String::new(), |t| {
            let vlan = match t.vlan {
                0 => "untagged".to_owned(),
                v => format!("VLAN {v}"),
            };
            format!("; most on {} {vlan} ({})", t.interface, t.macs)
        });
        let capped = if past_cap > 0 { "at least " } else { "" };
        let base = match baseline {
            Some(b) => format!(
                "baseline {b}, threshold {} and {}×",
                g.mac_flood_min, g.mac_flood_factor
            ),
            None => format!("no baseline yet, threshold {}", g.mac_flood_min),
        };
        let mut e = self.event(
            Kind::MacFlood,
            start,
            start,
            format!("{capped}{distinct} source MACs in one interval ({base}){place}"),
        );
        e.packets = distinct;
        e.macs = examples;
        e.groups = groups;
        Some(e)
    }

    /// ARP claims against the bindings: conflicts are events, the rest teach.
    fn claims(
        &mut self,
        start: i64,
        claims: &[Claim],
        stats: &mut IntervalStats,
    ) -> Vec<GuardEvent> {
        let active = i64::from(self.policy.guard.binding_active_s);
        let cap = self.policy.guard.max_bindings as usize;
        let mut raised: HashSet<(u32, Mac)> = HashSet::new();
        let mut events = Vec::new();
        for c in claims {
            let ip = Ipv4Addr::from(c.ip);
            if let Some((macs, customer)) = self.pinned(c.ip) {
                if !macs.contains(&c.mac) && raised.insert((c.ip, c.mac)) {
                    let whose = match &customer {
                        Some(n) => format!("customer {n}'s, bound to {}", macs_text(&macs)),
                        None => format!("configured at {}", macs_text(&macs)),
                    };
                    let mut e = self.event(
                        Kind::ArpSpoof,
                        c.first,
                        start,
                        format!(
                            "{ip} ({whose}) claimed by {} in {} ARP frames",
                            c.mac, c.frames
                        ),
                    );
                    e.customer = customer.or_else(|| self.holder(c.ip));
                    e.ip = Some(IpAddr::V4(ip));
                    e.old_macs = macs;
                    e.new_mac = Some(c.mac);
                    e.packets = c.frames;
                    events.push(e);
                }
                continue;
            }
            match self.bindings.get(&c.ip).copied() {
                None if self.bindings.len() >= cap => {
                    if !self.warned_full {
                        tracing::warn!(
                            max = cap,
                            "guard.max_bindings reached: new addresses are not learnt"
                        );
                        self.warned_full = true;
                    }
                }
                None => {
                    self.bindings.insert(
                        c.ip,
                        Binding {
                            mac: c.mac,
                            last: c.last,
                            by_arp: true,
                        },
                    );
                    stats.new_arp_bindings += 1;
                }
                Some(b) if b.mac == c.mac => {
                    self.bindings.insert(
                        c.ip,
                        Binding {
                            mac: b.mac,
                            last: b.last.max(c.last),
                            by_arp: true,
                        },
                    );
                }
                Some(b) if b.by_arp && c.first - b.last <= active => {
                    if raised.insert((c.ip, c.mac)) {
                        let mut e = self.event(
                            Kind::ArpSpoof,
                            c.first,
                            start,
                            format!(
                                "{ip} claimed by {} in {} ARP frames while {} holds it (last seen {} s before)",
                                c.mac,
                                c.frames,
                                b.mac,
                                (c.first - b.last).max(0)
                            ),
                        );
                        e.customer = self.holder(c.ip);
                        e.ip = Some(IpAddr::V4(ip));
                        e.old_macs = vec![b.mac];
                        e.new_mac = Some(c.mac);
                        e.packets = c.frames;
                        events.push(e);
                    }
                }
                Some(b) => {
                    tracing::info!(ip = %ip, old = %b.mac, new = %c.mac, "binding moved to a new MAC (the old one was idle)");
                    self.bindings.insert(
                        c.ip,
                        Binding {
                            mac: c.mac,
                            last: c.last,
                            by_arp: true,
                        },
                    );
                    stats.new_arp_bindings += 1;
                }
            }
        }
        events
    }

    /// Bindings seen in IP packets: they keep bindings of the same MAC active and teach new
    /// addresses; they never overrule ARP.
    fn learnt(&mut self, parts: &[Part], stats: &mut IntervalStats) {
        let active = i64::from(self.policy.guard.binding_active_s);
        let cap = self.policy.guard.max_bindings as usize;
        for &(ip, mac, ts) in parts.iter().flat_map(|p| &p.learnt) {
            if self.pinned(ip).is_some() {
                continue;
            }
            let full = self.bindings.len() >= cap;
            match self.bindings.get_mut(&ip) {
                Some(b) if b.mac == mac => b.last = b.last.max(ts),
                Some(b) if !b.by_arp && ts - b.last > active => {
                    *b = Binding {
                        mac,
                        last: ts,
                        by_arp: false,
                    };
                }
                Some(_) => {}
                None if full => {}
                None => {
                    self.bindings.insert(
                        ip,
                        Binding {
                            mac,
                            last: ts,
                            by_arp: false,
                        },
                    );
                    stats.new_ip_bindings += 1;
                }
            }
        }
    }

    fn reply_flood(
        &self,
        start: i64,
        claims: &[Claim],
        stats: &IntervalStats,
    ) -> Option<GuardEvent> {
        let threshold = u64::from(self.policy.guard.arp_reply_flood);
        let total = stats.arp.unsolicited;
        if total < threshold {
            return None;
        }
        let top = claims
            .iter()
            .filter(|c| c.unsolicited > 0)
            .max_by_key(|c| (c.unsolicited, c.frames, std::cmp::Reverse((c.ip, c.mac))));
        let mut senders: HashMap<Mac, u64> = HashMap::new();
        for c in claims {
            *senders.entry(c.mac).or_default() += c.unsolicited;
        }
        let mut senders: Vec<(Mac, u64)> = senders.into_iter().filter(|s| s.1 > 0).collect();
        senders.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let what = top.map_or(String::new(), |c| {
            format!("; most from {} claiming {}", c.mac, Ipv4Addr::from(c.ip))
        });
        let mut e = self.event(
            Kind::ArpReplyFlood,
            start,
            start,
            format!(
                "{total} unsolicited ARP replies in one interval (threshold {threshold}){what}"
            ),
        );
        e.packets = total;
        e.macs = senders.iter().take(FLOOD_EXAMPLES).map(|s| s.0).collect();
        if let Some(c) = top {
            e.ip = Some(IpAddr::V4(Ipv4Addr::from(c.ip)));
            e.customer = self.holder(c.ip);
            e.new_mac = Some(c.mac);
            if let Some((macs, _)) = self.pinned(c.ip) {
                e.old_macs = macs;
            } else if let Some(b) = self.bindings.get(&c.ip).filter(|b| b.mac != c.mac) {
                e.old_macs = vec![b.mac];
            }
        }
        Some(e)
    }

    fn spoofed(&self, start: i64, parts: &[Part], stats: &mut IntervalStats) -> Vec<GuardEvent> {
        let mut by: BTreeMap<&str, (i64, IpAddr, u64, u64, Vec<Mac>)> = BTreeMap::new();
        for s in parts.iter().flat_map(|p| &p.spoofed) {
            let e = by
                .entry(s.customer.as_str())
                .or_insert((s.first, s.ip, 0, 0, Vec::new()));
            if s.first < e.0 {
                e.0 = s.first;
                e.1 = s.ip;
            }
            e.2 += s.packets;
            e.3 += s.bytes;
            for m in &s.macs {
                if e.4.len() < EXAMPLES && !e.4.contains(m) {
                    e.4.push(*m);
                }
            }
        }
        let mut events = Vec::new();
        for (customer, (first, ip, packets, bytes, macs)) in by {
            stats.spoofed_packets += packets;
            stats.spoofed_bytes += bytes;
            let bound = self
                .policy
                .bound
                .customer_of(
                    ip.is_ipv6(),
                    match ip {
                        IpAddr::V4(a) => u128::from(u32::from(a)),
                        IpAddr::V6(a) => u128::from(a),
                    },
                )
                .map(|c| self.policy.bound.macs(c).to_vec())
                .unwrap_or_default();
            let mut e = self.event(
                Kind::SpoofedSource,
                first,
                start,
                format!(
                    "{packets} packets ({}) from customer {customer}'s addresses sent by {}, not by its MACs {}",
                    crate::units::bytes(bytes),
                    macs_text(&macs),
                    macs_text(&bound)
                ),
            );
            e.customer = Some(customer.to_owned());
            e.ip = Some(ip);
            e.old_macs = bound;
            e.new_mac = macs.first().copied();
            e.packets = packets;
            e.bytes = bytes;
            e.macs = macs;
            events.push(e);
        }
        events
    }
}
