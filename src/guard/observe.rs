//! The guard's part of the packet path, one [`Observer`] per capture thread: the distinct source
//! MACs of the interval (`super::macs`), ARP requests, replies and claims (off the IP path),
//! IP → MAC bindings from one Ethernet frame in `learn_sample` when it carries IPv4 (a cold
//! call), and every packet sent from a bound customer's address by another MAC. No lock, no
//! allocation per packet, no panic; at each interval boundary the owner thread hands a
//! [`Part`] over.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use super::macs::{MacTable, Wire};
use super::Bound;
use crate::account::CountMode;
use crate::classify::LocalNets;
use crate::config::Guard;
use crate::parse::l2::{self, Arp, ArpOp, Mac};
use crate::parse::{Decoded, IpFacts, LinkType};
use std::sync::Arc;

/// Hash maps with a fast, randomly keyed hasher (ARP and learnt bindings).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// ARP claims (address, MAC) kept per interval and thread.
const MAX_CLAIMS: usize = 4096;
/// IP → MAC pairs learnt from IP packets per interval and thread.
const MAX_LEARNT: usize = 16_384;
/// Requests remembered to tell solicited replies (direct-mapped).
const ASKED_SLOTS: usize = 1024;
/// A reply within this many seconds of its request is solicited.
const ANSWER_S: i64 = 5;
/// Example MACs kept per spoofed customer.
pub const EXAMPLES: usize = 4;

/// An address claimed by a MAC in ARP during the interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub ip: u32,
    pub mac: Mac,
    pub first: i64,
    pub last: i64,
    pub frames: u64,
    /// Replies nobody asked for (gratuitous replies included).
    pub unsolicited: u64,
    pub gratuitous: u64,
}

/// ARP counts of an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArpCounts {
    pub requests: u64,
    pub replies: u64,
    pub gratuitous: u64,
    pub probes: u64,
    pub unsolicited: u64,
}

impl ArpCounts {
    pub fn merge(&mut self, o: &ArpCounts) {
        self.requests += o.requests;
        self.replies += o.replies;
        self.gratuitous += o.gratuitous;
        self.probes += o.probes;
        self.unsolicited += o.unsolicited;
    }
}

struct ArpLog {
    counts: ArpCounts,
    claims: HashMap<(u32, Mac), Claim>,
    /// Claims past [`MAX_CLAIMS`] (counted, not kept).
    dropped: u64,
    /// (asker, target, time) of recent requests.
    asked: Box<[(u32, u32, i64)]>,
}

impl ArpLog {
    fn new() -> Self {
        Self {
            counts: ArpCounts::default(),
            claims: HashMap::with_capacity_and_hasher(MAX_CLAIMS, ahash::RandomState::new()),
            dropped: 0,
            asked: vec![(0, 0, i64::MIN); ASKED_SLOTS].into_boxed_slice(),
        }
    }

    fn slot(asker: u32, target: u32) -> usize {
        (u64::from(asker ^ target.rotate_left(16)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54)
            as usize
            % ASKED_SLOTS
    }

    fn packet(&mut self, ts: i64, a: &Arp) {
        let gratuitous = a.gratuitous();
        let c = &mut self.counts;
        c.gratuitous += u64::from(gratuitous);
        let unsolicited = match a.op {
            ArpOp::Request => {
                c.requests += 1;
                if a.probe() {
                    c.probes += 1;
                }
                if !gratuitous {
                    if let Some(s) = self.asked.get_mut(Self::slot(a.sender_ip, a.target_ip)) {
                        *s = (a.sender_ip, a.target_ip, ts);
                    }
                }
                false
            }
            ArpOp::Reply => {
                c.replies += 1;
                let asked = self
                    .asked
                    .get(Self::slot(a.target_ip, a.sender_ip))
                    .is_some_and(|&(asker, target, at)| {
                        asker == a.target_ip
                            && target == a.sender_ip
                            && (0..=ANSWER_S).contains(&(ts - at))
                    });
                let unsolicited = gratuitous || !asked;
                c.unsolicited += u64::from(unsolicited);
                unsolicited
            }
            ArpOp::Other => return,
        };
        if a.probe() || a.sender_mac.is_group() {
            return;
        }
        let full = self.claims.len() >= MAX_CLAIMS;
        let key = (a.sender_ip, a.sender_mac);
        match self.claims.get_mut(&key) {
            Some(claim) => {
                claim.last = claim.last.max(ts);
                claim.first = claim.first.min(ts);
                claim.frames += 1;
                claim.unsolicited += u64::from(unsolicited);
                claim.gratuitous += u64::from(gratuitous);
            }
            None if full => self.dropped += 1,
            None => {
                self.claims.insert(
                    key,
                    Claim {
                        ip: a.sender_ip,
                        mac: a.sender_mac,
                        first: ts,
                        last: ts,
                        frames: 1,
                        unsolicited: u64::from(unsolicited),
                        gratuitous: u64::from(gratuitous),
                    },
                );
            }
        }
    }
}

/// A bound customer's packets from other MACs in the interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spoofed {
    pub customer: String,
    pub first: i64,
    /// The source address of the first of them.
    pub ip: std::net::IpAddr,
    pub packets: u64,
    pub bytes: u64,
    /// The first few MACs they came from.
    pub macs: Vec<Mac>,
}

#[derive(Clone, Copy, Default)]
struct Tally {
    packets: u64,
    bytes: u64,
    first: i64,
    v6: bool,
    ip: u128,
    macs: [Mac; EXAMPLES],
    n_macs: usize,
}

/// What one observer saw in one interval.
#[derive(Clone, Debug, Default)]
pub struct Part {
    pub start: i64,
    /// Port names, indexed by the `port` of `macs`.
    pub ports: Vec<String>,
    /// Distinct source MACs with the VLAN and port each was first seen on.
    pub macs: Vec<(Mac, u16, u16)>,
    /// Sightings of MACs that did not fit in the table (`max_macs`): `macs` is then short.
    pub macs_past_cap: u64,
    /// Ethernet frames looked at.
    pub frames: u64,
    pub arp: ArpCounts,
    pub claims: Vec<Claim>,
    pub claims_dropped: u64,
    /// (address, MAC, last seen) from sampled IP packets with a local source.
    pub learnt: Vec<(u32, Mac, i64)>,
    pub spoofed: Vec<Spoofed>,
}

/// One capture thread's layer-2 view of the current interval.
pub struct Observer {
    bound: Arc<Bound>,
    /// `bound` when a customer is bound: the packet path tests this field, nothing else.
    sources: Option<Arc<Bound>>,
    nets: Arc<LocalNets>,
    mode: CountMode,
    /// `learn_sample` − 1: a frame whose number (`frames`) has these bits 0 may teach.
    learn_mask: u64,
    macs: MacTable,
    frames: u64,
    arp: ArpLog,
    learnt: HashMap<(u32, Mac), i64>,
    tallies: Vec<Tally>,
    port: u16,
    ports: Vec<String>,
    start: i64,
}

impl Observer {
    /// An observer for frames arriving on `port` (an interface, or a file).
    pub fn new(
        cfg: &Guard,
        bound: Arc<Bound>,
        nets: Arc<LocalNets>,
        mode: CountMode,
        port: &str,
    ) -> Self {
        let seed =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), port);
        Self {
            tallies: vec![Tally::default(); bound.customers()],
            sources: (!bound.is_empty()).then(|| Arc::clone(&bound)),
            bound,
            nets,
            mode,
            learn_mask: u64::from(cfg.learn_sample.saturating_sub(1)),
            macs: MacTable::new(cfg.max_macs as usize, seed),
            frames: 0,
            arp: ArpLog::new(),
            learnt: HashMap::with_capacity_and_hasher(1024, ahash::RandomState::new()),
            port: 0,
            ports: vec![port.to_owned()],
            start: 0,
        }
    }

    /// Frames from now on arrive on `port` (replay: the next file).
    pub fn set_port(&mut self, port: &str) {
        let i = match self.ports.iter().position(|p| p == port) {
            Some(i) => i,
            None => {
                self.ports.push(port.to_owned());
                self.ports.len() - 1
            }
        };
        self.port = u16::try_from(i).unwrap_or(u16::MAX);
    }

    /// Start of the interval being observed.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Sets the start of the first interval (before any frame).
    pub fn begin(&mut self, start: i64) {
        self.start = start;
    }

    /// Looks at one frame (its packet time, link type, bytes, wire length, and what the
    /// accounting decoded).
    #[inline]
    pub fn frame(&mut self, ts: i64, link: LinkType, frame: &[u8], wire_len: u32, d: &Decoded) {
        let source = match link {
            LinkType::Ethernet => Wire::source(frame),
            _ => None,
        };
        if let Some(source) = source {
            self.frames += 1;
            self.macs.see(source, frame, self.port);
            if let (Decoded::Ip(f), Some(b)) = (d, &self.sources) {
                let mac = source.mac();
                if let Some(c) = b.customer_of(f.v6, f.src).filter(|&c| !b.allows(c, mac)) {
                    self.spoofed(c, ts, mac, f, wire_len);
                }
            }
            if self.frames & self.learn_mask == 0 {
                self.learn(ts, source, d);
            }
        }
        if let Decoded::NonIp = d {
            self.non_ip(ts, link, frame);
        }
    }

    /// A packet from bound customer `c`'s address sent by another MAC.
    #[cold]
    fn spoofed(&mut self, c: usize, ts: i64, mac: Mac, f: &IpFacts, wire_len: u32) {
        let bytes = match self.mode {
            CountMode::Ip => f.bytes,
            CountMode::Frame => u64::from(wire_len),
        };
        let Some(t) = self.tallies.get_mut(c) else {
            return;
        };
        if t.packets == 0 {
            t.first = ts;
            t.v6 = f.v6;
            t.ip = f.src;
        }
        t.packets += 1;
        t.bytes += bytes;
        let known = t.macs.get(..t.n_macs).unwrap_or_default();
        if t.n_macs < EXAMPLES && !known.contains(&mac) {
            if let Some(slot) = t.macs.get_mut(t.n_macs) {
                *slot = mac;
                t.n_macs += 1;
            }
        }
    }

    /// The sampled frame: an IPv4 packet with a local source teaches its binding.
    #[cold]
    fn learn(&mut self, ts: i64, source: Wire, d: &Decoded) {
        let Decoded::Ip(f) = d else {
            return;
        };
        let ip = f.src as u32;
        if f.v6 || self.nets.lookup(false, u128::from(ip)).is_none() {
            return;
        }
        let mac = source.mac();
        let full = self.learnt.len() >= MAX_LEARNT;
        match self.learnt.get_mut(&(ip, mac)) {
            Some(last) => *last = (*last).max(ts),
            None if full => {}
            None => {
                self.learnt.insert((ip, mac), ts);
            }
        }
    }

    #[cold]
    fn non_ip(&mut self, ts: i64, link: LinkType, frame: &[u8]) {
        if let Some(a) = l2::arp(link, frame) {
            self.arp.packet(ts, &a);
        }
    }

    /// Ends the interval that started at [`Observer::start`], returning what was seen in it, and
    /// begins the one at `next`. `bound` replaces the bound customers (a reload) from then on.
    pub fn rotate(&mut self, next: i64, bound: Option<Arc<Bound>>) -> Part {
        let (macs, macs_past_cap) = self.macs.take();
        let mut spoofed = Vec::new();
        for (i, t) in self.tallies.iter().enumerate() {
            if t.packets == 0 {
                continue;
            }
            let Some(customer) = self.bound.name(i) else {
                continue;
            };
            let ip = if t.v6 {
                std::net::IpAddr::V6(t.ip.into())
            } else {
                std::net::IpAddr::V4((t.ip as u32).into())
            };
            spoofed.push(Spoofed {
                customer: customer.to_owned(),
                first: t.first,
                ip,
                packets: t.packets,
                bytes: t.bytes,
                macs: t.macs.get(..t.n_macs).unwrap_or_default().to_vec(),
            });
        }
        if let Some(b) = bound {
            self.tallies = vec![Tally::default(); b.customers()];
            self.sources = (!b.is_empty()).then(|| Arc::clone(&b));
            self.bound = b;
        } else {
            self.tallies.iter_mut().for_each(|t| *t = Tally::default());
        }
        let part = Part {
            start: self.start,
            ports: self.ports.clone(),
            macs,
            macs_past_cap,
            frames: std::mem::take(&mut self.frames),
            arp: std::mem::take(&mut self.arp.counts),
            claims: self.arp.claims.drain().map(|(_, c)| c).collect(),
            claims_dropped: std::mem::take(&mut self.arp.dropped),
            learnt: self
                .learnt
                .drain()
                .map(|((ip, mac), ts)| (ip, mac, ts))
                .collect(),
            spoofed,
        };
        self.start = next;
        part
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::parse::{self, LinkType};
    use etherparse::PacketBuilder;

    const T: i64 = 1_704_067_200;

    fn setup(extra: &str) -> (Guard, Arc<Bound>, Arc<LocalNets>) {
        let text = format!(
            "[accounting]\nlocal = [\"198.51.100.0/24\", \"2001:db8:100::/56\"]\n[guard]\nmax_macs = 16\nlearn_sample = 1\n{extra}\n\
             [[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.10\"]\nmacs = [\"02:00:00:00:00:0a\"]\n"
        );
        let cfg = Config::parse(std::path::Path::new("t.toml"), &text).unwrap();
        let nets = Arc::new(LocalNets::new(&cfg.accounting.local, 128));
        (
            cfg.guard.clone().unwrap(),
            Arc::new(Bound::new(&cfg.customers)),
            nets,
        )
    }

    fn udp(src_mac: u64, src: [u8; 4], payload: usize, vlan: Option<u16>) -> Vec<u8> {
        let mac = |m: u64| {
            let b = m.to_be_bytes();
            [b[2], b[3], b[4], b[5], b[6], b[7]]
        };
        let eth = PacketBuilder::ethernet2(mac(src_mac), [2, 0, 0, 0, 0, 0xff]);
        let mut out = Vec::new();
        let body = vec![0u8; payload];
        match vlan {
            Some(v) => eth
                .single_vlan(v.try_into().unwrap())
                .ipv4(src, [198, 51, 100, 1], 64)
                .udp(1000, 2000)
                .write(&mut out, &body)
                .unwrap(),
            None => eth
                .ipv4(src, [198, 51, 100, 1], 64)
                .udp(1000, 2000)
                .write(&mut out, &body)
                .unwrap(),
        }
        out
    }

    fn arp(op: u16, sender: (u64, [u8; 4]), target: [u8; 4]) -> Vec<u8> {
        let m = sender.0.to_be_bytes();
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&m[2..]);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&m[2..]);
        f.extend_from_slice(&sender.1);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f
    }

    fn feed(o: &mut Observer, ts: i64, frame: &[u8]) {
        let d = parse::decode(LinkType::Ethernet, frame, frame.len() as u32);
        o.frame(ts, LinkType::Ethernet, frame, frame.len() as u32, &d);
    }

    #[test]
    fn distinct_macs_with_their_vlan_up_to_the_cap() {
        let (g, b, nets) = setup("");
        let mut o = Observer::new(&g, b, nets, CountMode::Ip, "br0");
        o.begin(T);
        for i in 0..20u64 {
            // each MAC twice, the second time behind a tag: the first sighting is kept
            feed(
                &mut o,
                T,
                &udp(0x0200_0000_1000 + i, [203, 0, 113, 1], 10, None),
            );
            feed(
                &mut o,
                T,
                &udp(0x0200_0000_1000 + i, [203, 0, 113, 1], 10, Some(7)),
            );
        }
        o.set_port("eth1");
        feed(
            &mut o,
            T,
            &udp(0x0200_0000_1000, [203, 0, 113, 1], 10, Some(7)),
        );
        let p = o.rotate(T + 60, None);
        assert_eq!(p.start, T);
        assert_eq!(p.frames, 41);
        assert_eq!(p.macs.len(), 16);
        assert!(p.macs.iter().all(|&(_, vlan, port)| vlan == 0 && port == 0));
        // MACs 17 to 20, each seen twice in a row past the cap (the second one skips the table)
        assert_eq!(p.macs_past_cap, 4);
        assert_eq!(p.ports, vec!["br0".to_owned(), "eth1".to_owned()]);
        let q = o.rotate(T + 120, None);
        assert_eq!((q.start, q.frames, q.macs.len()), (T + 60, 0, 0));
        feed(
            &mut o,
            T + 130,
            &udp(0x0200_0000_2000, [203, 0, 113, 1], 10, Some(9)),
        );
        let r = o.rotate(T + 180, None);
        assert_eq!(r.macs, vec![(Mac(0x0200_0000_2000), 9, 1)]);
    }

    #[test]
    fn arp_requests_answered_in_time_are_solicited_the_rest_is_not() {
        let (g, b, nets) = setup("");
        let mut o = Observer::new(&g, b, nets, CountMode::Ip, "br0");
        let host = (0x0200_0000_0005, [198, 51, 100, 5]);
        let gw = (0x0200_0000_0001, [198, 51, 100, 1]);
        feed(&mut o, T, &arp(1, host, gw.1));
        feed(&mut o, T + 1, &arp(2, gw, host.1));
        // answered too late, never asked, and gratuitous
        feed(&mut o, T + 10, &arp(1, host, gw.1));
        feed(&mut o, T + 16, &arp(2, gw, host.1));
        feed(&mut o, T + 20, &arp(2, gw, [198, 51, 100, 77]));
        feed(&mut o, T + 21, &arp(2, gw, gw.1));
        feed(
            &mut o,
            T + 22,
            &arp(1, (0x0200_0000_0009, [0, 0, 0, 0]), [198, 51, 100, 9]),
        );
        let p = o.rotate(T + 60, None);
        assert_eq!(
            p.arp,
            ArpCounts {
                requests: 3,
                replies: 4,
                gratuitous: 1,
                probes: 1,
                unsolicited: 3,
            }
        );
        let mut claims = p.claims.clone();
        claims.sort_by_key(|c| c.ip);
        assert_eq!(claims.len(), 2, "the probe claims nothing: {claims:?}");
        let g = claims[0];
        assert_eq!(
            (g.mac, g.first, g.last, g.frames),
            (Mac(gw.0), T + 1, T + 21, 4)
        );
        assert_eq!((g.unsolicited, g.gratuitous), (3, 1));
        assert_eq!(claims[1].frames, 2);
    }

    #[test]
    fn a_bound_customers_address_from_another_mac_is_spoofed_and_counted_as_the_accounting_counts()
    {
        let (g, b, nets) = setup("");
        for (mode, per_packet) in [(CountMode::Ip, 28 + 100), (CountMode::Frame, 14 + 28 + 100)] {
            let mut o = Observer::new(&g, Arc::clone(&b), Arc::clone(&nets), mode, "br0");
            let own = udp(0x0200_0000_000a, [198, 51, 100, 10], 100, None);
            for _ in 0..3 {
                feed(&mut o, T, &own);
            }
            for (i, mac) in [0xb, 0xc, 0xd, 0xe, 0xf, 0xb].into_iter().enumerate() {
                let f = udp(0x0200_0000_0000 + mac, [198, 51, 100, 10], 100, None);
                feed(&mut o, T + 5 + i as i64, &f);
            }
            // another address of nobody bound, from any MAC: fine
            feed(
                &mut o,
                T,
                &udp(0x0200_0000_000b, [198, 51, 100, 11], 100, None),
            );
            let p = o.rotate(T + 60, None);
            assert_eq!(p.spoofed.len(), 1);
            let s = &p.spoofed[0];
            assert_eq!(s.customer, "goneril");
            assert_eq!((s.packets, s.bytes, s.first), (6, 6 * per_packet, T + 5));
            assert_eq!(s.ip, "198.51.100.10".parse::<std::net::IpAddr>().unwrap());
            let examples: Vec<u64> = s.macs.iter().map(|m| m.0 & 0xff).collect();
            assert_eq!(examples, [0xb, 0xc, 0xd, 0xe]);
            // learn_sample = 1: every local source teaches its binding; 203.0.113.x is not local
            let mut learnt: Vec<(u32, u64)> = p
                .learnt
                .iter()
                .map(|&(ip, m, _)| (ip & 0xff, m.0 & 0xff))
                .collect();
            learnt.sort();
            assert_eq!(learnt[0], (10, 0xa));
            assert_eq!(learnt.len(), 7);
            assert!(o.rotate(T + 120, None).spoofed.is_empty());
        }
    }

    #[test]
    fn one_frame_in_learn_sample_teaches_when_it_is_an_ipv4_packet_with_a_local_source() {
        let (mut g, b, nets) = setup("");
        g.learn_sample = 4;
        let mut o = Observer::new(&g, b, nets, CountMode::Ip, "br0");
        let host = |i: u64| {
            udp(
                0x0200_0000_0100 + i,
                [198, 51, 100, 100 + i as u8],
                10,
                None,
            )
        };
        for i in 1..=3 {
            feed(&mut o, T + i as i64, &host(i));
        }
        // the 4th frame is ARP: no binding from IP this time (ARP keeps its claims)
        feed(
            &mut o,
            T + 4,
            &arp(
                1,
                (0x0200_0000_0104, [198, 51, 100, 104]),
                [198, 51, 100, 1],
            ),
        );
        for i in 5..=8 {
            feed(&mut o, T + i as i64, &host(i));
        }
        // the 12th comes from a source that is not local
        for i in 9..=12 {
            feed(
                &mut o,
                T + i as i64,
                &udp(0x0200_0000_0100 + i, [203, 0, 113, 1], 10, None),
            );
        }
        let p = o.rotate(T + 60, None);
        assert_eq!(p.frames, 12);
        let ip = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 108));
        assert_eq!(p.learnt, vec![(ip, Mac(0x0200_0000_0108), T + 8)]);
    }

    #[test]
    fn a_reload_applies_from_the_next_interval() {
        let (g, b, nets) = setup("");
        let mut o = Observer::new(&g, b, Arc::clone(&nets), CountMode::Ip, "br0");
        let evil = udp(0x0200_0000_000b, [198, 51, 100, 10], 10, None);
        feed(&mut o, T, &evil);
        let (_, none, _) = setup("");
        let unbound = Arc::new(Bound::new(&[]));
        assert_eq!(none.customers(), 1);
        assert_eq!(o.rotate(T + 60, Some(unbound)).spoofed.len(), 1);
        feed(&mut o, T + 61, &evil);
        assert!(o.rotate(T + 120, None).spoofed.is_empty());
    }
}
