//! The lock-free per-host counters: a table per local network (direct-indexed for IPv4 up to a
//! /16, hashed otherwise), per-network overflow buckets, and the drain that empties them once per
//! interval. Writers never take a lock; nothing counted during a drain is lost. Shared counters
//! combine a batch's repeated counts for a host before the atomic adds (`combine`); counters with
//! one writer are added to with plain stores and drained by that writer (`desk`).
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod cells;
mod combine;
mod desk;
mod direct;
mod epoch;
mod hashed;
mod pool;
mod stats;

pub use cells::Sharing;
pub use stats::PacketStats;

use crate::classify::{App, NetId};
use crate::parse::Proto;
use crate::usage::{Dir, Host, Usage};
use cells::Cells;
use combine::Combiner;
use desk::Desk;
use direct::DirectTable;
use epoch::Epochs;
use hashed::HashedTable;
use ipnet::IpNet;
use stats::StatCells;
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How the counters are laid out.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The local networks, in configuration order (a [`NetId`] indexes this).
    pub nets: Vec<IpNet>,
    /// IPv6 addresses are aggregated to this prefix length (128: per address).
    pub ipv6_prefix: u8,
    /// New addresses per interval and family that the hashed tables take before overflowing.
    pub max_hosts: u32,
    /// IPv4 networks of at most this many address bits (16: a /16) are indexed directly.
    pub direct_max_bits: u8,
}

enum Table {
    Direct(DirectTable),
    Hashed { v6: bool },
}

/// Everything counted since the last drain.
#[derive(Debug, Default)]
pub struct Drained {
    pub hosts: Vec<(Host, Usage)>,
    pub stats: PacketStats,
    /// Addresses that went to an overflow bucket this interval (a warning for the operator).
    pub overflowed: bool,
}

pub struct Counters {
    layout: Layout,
    sharing: Sharing,
    tables: Vec<Table>,
    overflow: Box<[Cells]>,
    hashed_v4: Option<HashedTable>,
    hashed_v6: Option<HashedTable>,
    active: AtomicUsize,
    epochs: Epochs,
    writers: Mutex<Writers>,
    drain: Mutex<PacketStats>,
    /// Where another thread asks the one writer of exclusive counters for a drain.
    desk: Desk,
}

#[derive(Default)]
struct Writers {
    live: Vec<Weak<StatCells>>,
    /// Statistics of writers that have gone away.
    retired: PacketStats,
}

impl Counters {
    /// Counters for any number of writers and a drain from any thread.
    pub fn new(layout: Layout) -> Arc<Self> {
        Self::with_sharing(layout, Sharing::Shared)
    }

    /// Counters for exactly one writer: no lock-prefixed instruction on the packet path. The
    /// writer drains them itself ([`Writer::drain`], replay), or serves the drains another
    /// thread asks for with [`Counters::drain`] between its batches ([`Writer::serve_drain`],
    /// live capture on one thread).
    pub fn exclusive(layout: Layout) -> Writer {
        Self::one_writer(layout).writer()
    }

    /// [`Counters::exclusive`], before its writer is made (live capture on one thread).
    pub fn one_writer(layout: Layout) -> Arc<Self> {
        Self::with_sharing(layout, Sharing::Exclusive)
    }

    fn with_sharing(layout: Layout, sharing: Sharing) -> Arc<Self> {
        let mut need_v4 = false;
        let mut need_v6 = false;
        let tables = layout
            .nets
            .iter()
            .map(|net| match net {
                IpNet::V4(n) if 32 - n.prefix_len() <= layout.direct_max_bits => Table::Direct(
                    DirectTable::new(u32::from(n.network()), 1usize << (32 - n.prefix_len())),
                ),
                IpNet::V4(_) => {
                    need_v4 = true;
                    Table::Hashed { v6: false }
                }
                IpNet::V6(_) => {
                    need_v6 = true;
                    Table::Hashed { v6: true }
                }
            })
            .collect();
        Arc::new(Self {
            overflow: bytemuck::zeroed_slice_box(layout.nets.len()),
            hashed_v4: need_v4.then(|| HashedTable::new(layout.max_hosts)),
            hashed_v6: need_v6.then(|| HashedTable::new(layout.max_hosts)),
            tables,
            layout,
            sharing,
            active: AtomicUsize::new(0),
            epochs: Epochs::default(),
            writers: Mutex::new(Writers::default()),
            drain: Mutex::new(PacketStats::default()),
            desk: Desk::default(),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A handle for one capture thread. Exclusive counters take one writer only.
    pub fn writer(self: &Arc<Self>) -> Writer {
        if self.sharing == Sharing::Exclusive {
            let first = self.desk.writer_arrives();
            debug_assert!(first, "a second writer on exclusive counters");
        }
        let stats = Arc::new(StatCells::default());
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .push(Arc::downgrade(&stats));
        Writer {
            epoch: self.epochs.register(),
            counters: Arc::clone(self),
            stats,
        }
    }

    /// Cumulative statistics of every writer so far.
    pub fn stats(&self) -> PacketStats {
        let writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = writers.retired;
        for w in writers.live.iter().filter_map(Weak::upgrade) {
            total.merge(&w.read());
        }
        total
    }

    #[inline]
    fn row(&self, gen: usize, net: NetId, key: u128) -> Option<&Cells> {
        let found = match self.tables.get(net)? {
            Table::Direct(t) => t.row(key as u32),
            Table::Hashed { v6: false } => self.hashed_v4.as_ref()?.row(gen, key),
            Table::Hashed { v6: true } => self.hashed_v6.as_ref()?.row(gen, key),
        };
        found.or_else(|| self.overflow.get(net))
    }

    /// Empties every table and returns what it held. Must not be called by a thread that holds
    /// an open [`Batch`] (it waits for open batches to end). Exclusive counters are drained by
    /// their writer, between two of its batches, when it next calls [`Writer::serve_drain`]
    /// (this waits for that); with no writer (not made yet, or gone), here.
    pub fn drain(&self) -> Drained {
        match self.sharing {
            Sharing::Shared => self.drain_now(),
            Sharing::Exclusive => self.desk.ask(|| self.drain_now()),
        }
    }

    fn drain_now(&self) -> Drained {
        let mut last_stats = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        let retiring = self.active.load(SeqCst);
        self.active.store(1 - retiring, SeqCst);
        self.epochs.synchronize();

        let mut out = Drained::default();
        for table in &self.tables {
            if let Table::Direct(t) = table {
                t.drain(|a, u| {
                    out.hosts
                        .push((Host::Addr(IpAddr::V4(Ipv4Addr::from(a))), u))
                });
            }
        }
        if let Some(t) = &self.hashed_v4 {
            t.drain(retiring, |k, u| {
                out.hosts
                    .push((Host::Addr(IpAddr::V4(Ipv4Addr::from(k as u32))), u))
            });
        }
        if let Some(t) = &self.hashed_v6 {
            let prefix = self.layout.ipv6_prefix;
            t.drain(retiring, |k, u| {
                let addr = Ipv6Addr::from(k);
                let host = if prefix >= 128 {
                    Host::Addr(IpAddr::V6(addr))
                } else {
                    ipnet::Ipv6Net::new(addr, prefix)
                        .map_or(Host::Addr(IpAddr::V6(addr)), |n| Host::Net(IpNet::V6(n)))
                };
                out.hosts.push((host, u));
            });
        }
        for (net, cells) in self.layout.nets.iter().zip(self.overflow.iter()) {
            if let Some(u) = cells::take(cells) {
                out.overflowed = true;
                out.hosts.push((Host::Net(*net), u));
            }
        }
        let now = self.stats();
        out.stats = now.since(&last_stats);
        *last_stats = now;
        out
    }
}

/// One capture thread's handle: its statistics and its place in the epoch protocol.
pub struct Writer {
    counters: Arc<Counters>,
    epoch: Arc<std::sync::atomic::AtomicU64>,
    stats: Arc<StatCells>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.counters.sharing == Sharing::Exclusive {
            self.counters.desk.writer_leaves();
        }
        let mut writers = self
            .counters
            .writers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        writers.retired.merge(&self.stats.read());
        writers.live.retain(|w| {
            w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.stats))
        });
    }
}

impl Writer {
    /// Opens a batch: until it is dropped, a drain waits for it. Keep batches short (one
    /// `pcap_dispatch` call, a few thousand packets of a file), and open one at a time.
    #[inline]
    pub fn batch(&self) -> Batch<'_> {
        self.counters.epochs.enter(&self.epoch);
        let gen = self.counters.active.load(SeqCst);
        Batch {
            writer: self,
            gen,
            local: LocalStats::default(),
            combine: Combiner::default(),
        }
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The counter rows a batch opened now may add to: every row of the direct tables, and the
    /// hosts the hashed tables hold this interval (a few loads: call it once per ring read).
    pub fn rows_in_play(&self) -> u64 {
        let c = &self.counters;
        let gen = c.active.load(SeqCst);
        let direct: usize = c
            .tables
            .iter()
            .map(|t| match t {
                Table::Direct(d) => d.size(),
                Table::Hashed { .. } => 0,
            })
            .sum();
        let hashed = [&c.hashed_v4, &c.hashed_v6]
            .into_iter()
            .flatten()
            .map(|t| t.keys(gen))
            .sum::<u64>();
        direct as u64 + hashed
    }

    /// Asks the processor to bring in every row [`Writer::rows_in_play`] counts (a hint: no
    /// effect on the counts). A capture thread's read after a wait finds its rows evicted:
    /// brought in at once, their loads overlap, where the count would wait for them one by one.
    pub fn warm(&self) {
        let c = &self.counters;
        let gen = c.active.load(SeqCst);
        for t in &c.tables {
            if let Table::Direct(d) = t {
                d.warm();
            }
        }
        for h in [&c.hashed_v4, &c.hashed_v6].into_iter().flatten() {
            h.warm(gen);
        }
    }

    /// Whether another thread waits for this writer to serve a drain ([`Writer::serve_drain`]);
    /// never with shared counters.
    #[inline]
    pub fn drain_asked(&self) -> bool {
        self.counters.desk.asked()
    }

    /// Sleeps up to `timeout`, woken as soon as another thread asks this writer for a drain;
    /// true if one is asked (with shared counters, never: the whole timeout is slept).
    pub fn await_drain_ask(&self, timeout: Duration) -> bool {
        self.counters.desk.await_ask(timeout)
    }

    /// Drains the counters from the writer's own thread. `&mut self`: no batch of this writer
    /// is open, so with exclusive counters nothing else can be touching the cells.
    pub fn drain(&mut self) -> Drained {
        self.counters.drain_now()
    }

    /// Exclusive counters: drains them if another thread asked ([`Counters::drain`]) and hands
    /// the result over. Call it between batches, at least every capture timeout; it costs one
    /// load when nobody asked. Shared counters: nothing to do.
    #[inline]
    pub fn serve_drain(&mut self) {
        if self.counters.desk.asked() {
            let counters = &self.counters;
            counters.desk.serve(|| counters.drain_now());
        }
    }
}

/// Counting within one batch. Packet statistics are summed in the batch (plain stack cells) and
/// handed to the writer's statistics when the batch ends.
pub struct Batch<'a> {
    writer: &'a Writer,
    gen: usize,
    local: LocalStats,
    /// Counts for shared cells, added at the latest when the batch ends.
    combine: Combiner<'a>,
}

#[derive(Default)]
struct LocalStats {
    accounted: Cell<u64>,
    bytes: Cell<u64>,
    foreign: Cell<u64>,
    non_ip: Cell<u64>,
    malformed: Cell<u64>,
    length_mismatch: Cell<u64>,
}

#[inline]
fn inc(c: &Cell<u64>, by: u64) {
    c.set(c.get().wrapping_add(by));
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        // before leaving the epoch: a drain waiting for this batch must find every count
        self.combine.flush();
        let l = &self.local;
        let s = &self.writer.stats;
        let packets = l.accounted.get() + l.foreign.get() + l.non_ip.get() + l.malformed.get();
        stats::bump(&s.packets, packets);
        stats::bump(&s.accounted, l.accounted.get());
        stats::bump(&s.bytes, l.bytes.get());
        stats::bump(&s.foreign, l.foreign.get());
        stats::bump(&s.non_ip, l.non_ip.get());
        stats::bump(&s.malformed, l.malformed.get());
        stats::bump(&s.length_mismatch, l.length_mismatch.get());
        Epochs::leave(&self.writer.epoch);
    }
}

/// One host's counter row, found in an open batch.
#[derive(Clone, Copy)]
pub struct Row<'a>(&'a Cells);

impl Row<'_> {
    /// Asks the processor to bring in the cells a packet of this class will add to.
    #[inline(always)]
    pub fn prefetch(self, dir: Dir, proto: Proto, app: Option<App>) {
        cells::prefetch(self.0, dir, proto, app);
    }
}

/// What happened to one frame, for the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accounted { bytes: u64, length_mismatch: bool },
    Foreign { length_mismatch: bool },
    NonIp,
    Malformed,
}

impl<'a> Batch<'a> {
    /// Counts one packet for one local host.
    #[inline(always)]
    pub fn add(&self, net: NetId, key: u128, dir: Dir, proto: Proto, app: Option<App>, bytes: u64) {
        if let Some(row) = self.row(net, key) {
            self.add_to(row, dir, proto, app, bytes);
        }
    }

    /// The counter row of one local host (made if new), for [`Batch::add_to`] while this batch
    /// is open.
    #[inline(always)]
    pub fn row(&self, net: NetId, key: u128) -> Option<Row<'a>> {
        let counters: &'a Counters = &self.writer.counters;
        counters.row(self.gen, net, key).map(Row)
    }

    /// Counts one packet into a row of this batch.
    #[inline(always)]
    pub fn add_to(&self, row: Row<'a>, dir: Dir, proto: Proto, app: Option<App>, bytes: u64) {
        match self.writer.counters.sharing {
            Sharing::Shared => self.add_shared(row.0, dir, proto, app, bytes),
            Sharing::Exclusive => cells::add(row.0, Sharing::Exclusive, dir, proto, app, bytes, 1),
        }
    }

    /// The shared path out of line, so that the exclusive one (replay) stays small enough to
    /// inline into the packet loop.
    #[inline(never)]
    fn add_shared(&self, row: &'a Cells, dir: Dir, proto: Proto, app: Option<App>, bytes: u64) {
        self.combine.add(row, dir, proto, app, bytes);
    }

    /// Records what one frame was.
    #[inline]
    pub fn record(&self, outcome: Outcome) {
        let l = &self.local;
        match outcome {
            Outcome::Accounted {
                bytes,
                length_mismatch,
            } => {
                inc(&l.accounted, 1);
                inc(&l.bytes, bytes);
                inc(&l.length_mismatch, u64::from(length_mismatch));
            }
            Outcome::Foreign { length_mismatch } => {
                inc(&l.foreign, 1);
                inc(&l.length_mismatch, u64::from(length_mismatch));
            }
            Outcome::NonIp => inc(&l.non_ip, 1),
            Outcome::Malformed => inc(&l.malformed, 1),
        }
    }
}

#[cfg(test)]
mod tests;
