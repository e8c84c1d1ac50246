//! The packet path: one frame → decode → classify → counters and statistics. No allocation, no
//! lock, no panic. Decoding and counting can run on different threads (replay does), and when
//! the rows in play outgrow the caches, live capture counts a frame a few frames after it was
//! resolved to its rows, prefetching them meanwhile ([`Deferred`]).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::classify::{App, LocalNets, PortTable};
use crate::counters::{Batch, Outcome, Row, Writer};
use crate::parse::{self, Decoded, LinkType, Proto};
use crate::usage::Dir;
use std::sync::Arc;

/// What a packet's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountMode {
    /// The layer-3 length the outermost IP header declares, capped at the wire (DESIGN.md).
    Ip,
    /// The frame's original length on the wire.
    Frame,
}

#[derive(Clone)]
pub struct Accountant {
    nets: Arc<LocalNets>,
    ports: Arc<PortTable>,
    mode: CountMode,
}

impl Accountant {
    pub fn new(nets: Arc<LocalNets>, ports: Arc<PortTable>, mode: CountMode) -> Self {
        Self { nets, ports, mode }
    }

    /// Counts one frame of a capture with link type `link`. `wire_len` is libpcap's `len`
    /// (original length), not `caplen`.
    #[inline]
    pub fn process(&self, batch: &Batch<'_>, link: LinkType, frame: &[u8], wire_len: u32) {
        self.count(batch, parse::decode(link, frame, wire_len), wire_len);
    }

    /// Counts one frame already decoded (always inlined: see [`parse::decode`]).
    #[inline(always)]
    pub fn count(&self, batch: &Batch<'_>, decoded: Decoded, wire_len: u32) {
        self.resolve(batch, decoded, wire_len).apply(batch);
    }

    /// Finds what one decoded frame counts into, without counting it yet: [`Resolved::apply`]
    /// counts it, in the same batch.
    #[inline(always)]
    pub fn resolve<'a>(&self, batch: &Batch<'a>, decoded: Decoded, wire_len: u32) -> Resolved<'a> {
        let facts = match decoded {
            Decoded::Ip(facts) => facts,
            Decoded::NonIp => return Resolved::only(Outcome::NonIp),
            Decoded::Malformed => return Resolved::only(Outcome::Malformed),
        };
        let src = self.nets.lookup(facts.v6, facts.src);
        let dst = self.nets.lookup(facts.v6, facts.dst);
        if src.is_none() && dst.is_none() {
            return Resolved::only(Outcome::Foreign {
                length_mismatch: facts.length_mismatch,
            });
        }
        let bytes = match self.mode {
            CountMode::Ip => facts.bytes,
            CountMode::Frame => u64::from(wire_len),
        };
        let app = match facts.proto {
            Proto::Tcp | Proto::Udp => self.ports.classify(&facts),
            Proto::Icmp | Proto::Other => None,
        };
        Resolved {
            tx: src.and_then(|(net, key)| batch.row(net, key)),
            rx: dst.and_then(|(net, key)| batch.row(net, key)),
            proto: facts.proto,
            app,
            bytes,
            outcome: Outcome::Accounted {
                bytes,
                length_mismatch: facts.length_mismatch,
            },
        }
    }
}

/// One frame's counts, resolved to the rows they go to.
#[derive(Clone, Copy)]
pub struct Resolved<'a> {
    tx: Option<Row<'a>>,
    rx: Option<Row<'a>>,
    proto: Proto,
    app: Option<App>,
    bytes: u64,
    outcome: Outcome,
}

impl<'a> Resolved<'a> {
    #[inline(always)]
    fn only(outcome: Outcome) -> Self {
        Self {
            tx: None,
            rx: None,
            proto: Proto::Other,
            app: None,
            bytes: 0,
            outcome,
        }
    }

    /// Asks the processor to bring in the cells [`Resolved::apply`] will add to.
    #[inline(always)]
    pub fn prefetch(&self) {
        if let Some(row) = self.tx {
            row.prefetch(Dir::Tx, self.proto, self.app);
        }
        if let Some(row) = self.rx {
            row.prefetch(Dir::Rx, self.proto, self.app);
        }
    }

    /// Counts the frame, in the batch it was resolved in.
    #[inline(always)]
    pub fn apply(self, batch: &Batch<'a>) {
        if let Some(row) = self.tx {
            batch.add_to(row, Dir::Tx, self.proto, self.app, self.bytes);
        }
        if let Some(row) = self.rx {
            batch.add_to(row, Dir::Rx, self.proto, self.app, self.bytes);
        }
        batch.record(self.outcome);
    }
}

/// Frames a [`Deferred`] holds before counting them: time for their cells to arrive.
const DEPTH: usize = 4;

/// Counter rows in play ([`Writer::rows_in_play`]) above which a ring read defers its counting
/// ([`Deferred`]); up to it the rows stay in the caches, and holding frames only costs
/// (`cargo bench --bench packet_path -- deferral`: deferred / at once 1.14 at 1,000 IPv6 hosts,
/// 1.00 at 4,000, 0.68 at 16,000). Up to it, a read first brings all the rows in
/// ([`Writer::warm`], a megabyte at the most): after the wait between two reads they are no
/// longer in the caches.
pub const DEFER_ABOVE_ROWS: u64 = 4096;

/// How one ring read counts its frames: [`AtOnce`] or [`Deferred`], as [`RingCounting::new`]
/// chooses.
pub trait Counting {
    /// Counts one frame already decoded.
    fn count(&mut self, decoded: Decoded, wire_len: u32);

    /// Counts one frame of link type `link` (see [`Accountant::process`]).
    #[inline(always)]
    fn process(&mut self, link: LinkType, frame: &[u8], wire_len: u32) {
        self.count(parse::decode(link, frame, wire_len), wire_len);
    }
}

/// The counting of one ring read (live capture), each kind for its own specialised loop.
pub enum RingCounting<'a> {
    AtOnce(AtOnce<'a>),
    Deferred(Deferred<'a>),
}

impl<'a> RingCounting<'a> {
    /// The counting for a ring read into `writer`'s counters as they are now: deferred when
    /// more rows are in play than [`DEFER_ABOVE_ROWS`], else at once, the rows brought in first.
    pub fn new(acct: &'a Accountant, writer: &'a Writer) -> Self {
        if writer.rows_in_play() > DEFER_ABOVE_ROWS {
            Self::Deferred(Deferred::new(acct, writer))
        } else {
            writer.warm();
            Self::AtOnce(AtOnce::new(acct, writer))
        }
    }
}

/// One ring read's counting, each frame as it comes; opens the writer's batch at the first
/// frame (a read that finds none never holds up a drain).
pub struct AtOnce<'a> {
    acct: &'a Accountant,
    writer: &'a Writer,
    batch: Option<Batch<'a>>,
}

impl<'a> AtOnce<'a> {
    pub fn new(acct: &'a Accountant, writer: &'a Writer) -> Self {
        Self {
            acct,
            writer,
            batch: None,
        }
    }

    /// The read's batch, opened now if this is its first frame.
    #[inline(always)]
    fn batch(&mut self) -> &Batch<'a> {
        let writer = self.writer;
        self.batch.get_or_insert_with(|| writer.batch())
    }
}

impl Counting for AtOnce<'_> {
    #[inline(always)]
    fn count(&mut self, decoded: Decoded, wire_len: u32) {
        let acct = self.acct;
        acct.count(self.batch(), decoded, wire_len);
    }
}

/// One ring read's counting when the rows in play outgrow the caches: opens the writer's batch
/// at the first frame (as [`AtOnce`]), and counts each frame [`DEPTH`] frames after it was
/// resolved, its cells prefetched meanwhile, so that the wait for a host's counter row overlaps
/// the decoding of the next frames. Whatever is still held is counted when it is dropped,
/// before the batch closes.
pub struct Deferred<'a> {
    open: AtOnce<'a>,
    held: [Option<Resolved<'a>>; DEPTH],
    next: usize,
}

impl<'a> Deferred<'a> {
    pub fn new(acct: &'a Accountant, writer: &'a Writer) -> Self {
        Self {
            open: AtOnce::new(acct, writer),
            held: [None; DEPTH],
            next: 0,
        }
    }
}

impl Counting for Deferred<'_> {
    #[inline(always)]
    fn count(&mut self, decoded: Decoded, wire_len: u32) {
        let acct = self.open.acct;
        let batch = self.open.batch();
        let resolved = acct.resolve(batch, decoded, wire_len);
        resolved.prefetch();
        match self.held.get_mut(self.next) {
            Some(slot) => {
                if let Some(oldest) = slot.replace(resolved) {
                    oldest.apply(batch);
                }
            }
            None => resolved.apply(batch),
        }
        self.next = (self.next + 1) % DEPTH;
    }
}

impl Drop for Deferred<'_> {
    fn drop(&mut self) {
        if let Some(batch) = &self.open.batch {
            for resolved in self.held.iter_mut().filter_map(Option::take) {
                resolved.apply(batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::FileSource;
    use crate::config::default_ports;
    use crate::counters::{Counters, Drained, Layout};

    fn frames(file: &str) -> (LinkType, Vec<(Vec<u8>, u32)>) {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let mut src = FileSource::open(&path).unwrap();
        let mut out = Vec::new();
        while let Some(p) = src.next_packet().unwrap() {
            out.push((p.data.to_vec(), p.wire_len));
        }
        (src.link(), out)
    }

    fn sorted(mut d: Drained) -> Drained {
        d.hosts.sort_by_key(|(host, _)| *host);
        d
    }

    /// Deferred counting, in ring reads of every size around its depth (a read shorter than the
    /// depth is all held when it ends), counts exactly what counting at once counts.
    #[test]
    fn deferred_counting_counts_what_immediate_counting_counts() {
        let layout = Layout {
            nets: vec![
                "198.51.100.0/24".parse().unwrap(),
                "2001:db8:100::/56".parse().unwrap(),
            ],
            ipv6_prefix: 128,
            max_hosts: 1024,
            direct_max_bits: 16,
        };
        let nets = Arc::new(LocalNets::new(&layout.nets, layout.ipv6_prefix));
        let ports = Arc::new(PortTable::new(&default_ports()));
        let acct = Accountant::new(nets, ports, CountMode::Ip);
        for file in ["realistic-eth-3k.pcap", "adversarial-eth-4k.pcap"] {
            let (link, frames) = frames(file);
            let mut at_once = Counters::exclusive(layout.clone());
            {
                let batch = at_once.batch();
                for (data, len) in &frames {
                    acct.process(&batch, link, data, *len);
                }
            }
            let want = sorted(at_once.drain());
            assert!(!want.hosts.is_empty(), "{file}");
            for deferring in [false, true] {
                let mut ring = Counters::exclusive(layout.clone());
                let mut sizes = [1, 2, DEPTH - 1, DEPTH, DEPTH + 1, 500].into_iter().cycle();
                let mut rest = frames.as_slice();
                while !rest.is_empty() {
                    let (read, left) = rest.split_at(sizes.next().unwrap_or(1).min(rest.len()));
                    if deferring {
                        ring_read(Deferred::new(&acct, &ring), link, read);
                    } else {
                        ring_read(AtOnce::new(&acct, &ring), link, read);
                    }
                    rest = left;
                }
                let got = sorted(ring.drain());
                assert_eq!(got.stats, want.stats, "{file}, deferred: {deferring}");
                assert_eq!(got.stats.packets, frames.len() as u64, "{file}");
                assert_eq!(got.hosts, want.hosts, "{file}, deferred: {deferring}");
            }
        }
    }

    fn ring_read(mut counting: impl Counting, link: LinkType, read: &[(Vec<u8>, u32)]) {
        for (data, len) in read {
            counting.process(link, data, *len);
        }
    }

    /// A ring read counts at once while the rows in play fit in the caches (a /24 and the IPv6
    /// hosts of this interval), defers once the IPv6 hosts pass the bound, and counts at once
    /// again after the drain; a directly indexed /16 is always past it.
    #[test]
    fn ring_reads_defer_only_when_the_rows_in_play_outgrow_the_caches() {
        let layout = |v4: &str| Layout {
            nets: vec![v4.parse().unwrap(), "2001:db8:100::/56".parse().unwrap()],
            ipv6_prefix: 128,
            max_hosts: 16_384,
            direct_max_bits: 16,
        };
        let small = layout("198.51.100.0/24");
        let nets = Arc::new(LocalNets::new(&small.nets, small.ipv6_prefix));
        let ports = Arc::new(PortTable::new(&default_ports()));
        let acct = Accountant::new(nets, ports, CountMode::Ip);
        let deferred =
            |w: &Writer| matches!(RingCounting::new(&acct, w), RingCounting::Deferred(_));
        let mut w = Counters::exclusive(small);
        assert_eq!(w.rows_in_play(), 256);
        assert!(!deferred(&w));
        let v6 = |i: u64| (0x2001_0db8_0100u128 << 80) | u128::from(i);
        let hosts = DEFER_ABOVE_ROWS - 256;
        {
            let batch = w.batch();
            for i in 0..hosts {
                batch.add(1, v6(i), Dir::Tx, Proto::Udp, None, 100);
            }
        }
        assert_eq!(w.rows_in_play(), DEFER_ABOVE_ROWS);
        assert!(!deferred(&w));
        w.batch().add(1, v6(hosts), Dir::Rx, Proto::Udp, None, 100);
        assert!(deferred(&w));
        assert_eq!(w.drain().hosts.len() as u64, hosts + 1);
        assert_eq!(w.rows_in_play(), 256);
        assert!(!deferred(&w));
        let wide = Counters::exclusive(layout("198.51.0.0/16"));
        assert_eq!(wide.rows_in_play(), 65_536);
        assert!(deferred(&wide));
    }
}
