//! The packet path: one frame → decode → classify → counters and statistics. No allocation, no
//! lock, no panic. Decoding and counting can run on different threads (replay does).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::classify::{LocalNets, PortTable};
use crate::counters::{Batch, Outcome};
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
        let facts = match decoded {
            Decoded::Ip(facts) => facts,
            Decoded::NonIp => return batch.record(Outcome::NonIp),
            Decoded::Malformed => return batch.record(Outcome::Malformed),
        };
        let src = self.nets.lookup(facts.v6, facts.src);
        let dst = self.nets.lookup(facts.v6, facts.dst);
        if src.is_none() && dst.is_none() {
            return batch.record(Outcome::Foreign {
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
        if let Some((net, key)) = src {
            batch.add(net, key, Dir::Tx, facts.proto, app, bytes);
        }
        if let Some((net, key)) = dst {
            batch.add(net, key, Dir::Rx, facts.proto, app, bytes);
        }
        batch.record(Outcome::Accounted {
            bytes,
            length_mismatch: facts.length_mismatch,
        });
    }
}
