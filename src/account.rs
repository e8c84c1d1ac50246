//! The packet path: one frame → decode → classify → counters and statistics. No allocation, no
//! lock, no panic. Decoding and counting can run on different threads (replay does), and a
//! frame can be counted a few frames after it was resolved to its rows (live capture, which
//! prefetches the rows meanwhile: [`Deferred`]).
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

/// One ring read's counting (live capture): opens the writer's batch at the first frame, and
/// counts each frame [`DEPTH`] frames after it was resolved, its cells prefetched meanwhile, so
/// that the wait for a host's counter row overlaps the decoding of the next frames. Whatever is
/// still held is counted when it is dropped, before the batch closes.
pub struct Deferred<'a> {
    acct: &'a Accountant,
    writer: &'a Writer,
    held: [Option<Resolved<'a>>; DEPTH],
    next: usize,
    batch: Option<Batch<'a>>,
}

impl<'a> Deferred<'a> {
    pub fn new(acct: &'a Accountant, writer: &'a Writer) -> Self {
        Self {
            acct,
            writer,
            held: [None; DEPTH],
            next: 0,
            batch: None,
        }
    }

    /// Counts one frame of link type `link` (see [`Accountant::process`]).
    #[inline(always)]
    pub fn process(&mut self, link: LinkType, frame: &[u8], wire_len: u32) {
        self.count(parse::decode(link, frame, wire_len), wire_len);
    }

    /// Counts one frame already decoded.
    #[inline(always)]
    pub fn count(&mut self, decoded: Decoded, wire_len: u32) {
        let writer = self.writer;
        let batch = self.batch.get_or_insert_with(|| writer.batch());
        let resolved = self.acct.resolve(batch, decoded, wire_len);
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
        if let Some(batch) = &self.batch {
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
            let mut deferred = Counters::exclusive(layout.clone());
            let mut sizes = [1, 2, DEPTH - 1, DEPTH, DEPTH + 1, 500].into_iter().cycle();
            let mut rest = frames.as_slice();
            while !rest.is_empty() {
                let (read, left) = rest.split_at(sizes.next().unwrap_or(1).min(rest.len()));
                let mut counting = Deferred::new(&acct, &deferred);
                for (data, len) in read {
                    counting.process(link, data, *len);
                }
                rest = left;
            }
            let (want, got) = (sorted(at_once.drain()), sorted(deferred.drain()));
            assert_eq!(got.stats, want.stats, "{file}");
            assert_eq!(got.stats.packets, frames.len() as u64, "{file}");
            assert!(!want.hosts.is_empty(), "{file}");
            assert_eq!(got.hosts, want.hosts, "{file}");
        }
    }
}
