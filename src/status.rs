//! What a running collector shows the dashboard and `/metrics`: the last flushed interval, the
//! per-host counts cumulated since start (monotonic across flushes), capture and flush
//! statistics. Fed once per interval by the flush thread (`run`) or by a store poller (`serve`);
//! the packet path never touches it.

use crate::capture::live::{InterfaceStats, KernelStats};
use crate::counters::{Counters, PacketStats};
use crate::guard::observe::ArpCounts;
use crate::guard::{IntervalStats, Kind, Verdict};
use crate::store::guard::SpoofedTotal;
use crate::store::Sample;
use crate::usage::{Host, Usage};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Hosts of the last interval kept for the "now" view (the busiest).
pub const NOW_HOSTS: usize = 100;

/// Hosts with their own `/metrics` series; hosts first seen after that are summed in one
/// `other` series, so a scan of random addresses cannot grow the exposition without bound.
pub const METRIC_HOSTS: usize = 65_536;

/// Where the capture figures come from.
pub enum Source {
    /// `run`: the live counters and the capture handles' kernel statistics.
    Live {
        counters: Arc<Counters>,
        interfaces: Vec<Arc<InterfaceStats>>,
    },
    /// `serve`: what the store received since this process started.
    Store,
}

/// The last flushed interval.
#[derive(Debug, Clone, Serialize)]
pub struct LastInterval {
    pub start: i64,
    pub interval_s: u32,
    /// Hosts counted in the interval.
    pub active_hosts: usize,
    /// The busiest hosts (at most [`NOW_HOSTS`]), busiest first.
    #[serde(skip)]
    pub hosts: Vec<(Host, Usage)>,
    pub packets: PacketStats,
    pub kernel: KernelStats,
}

/// Flushes so far.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FlushStats {
    pub flushes: u64,
    /// Store writes that failed (each is retried; counts are kept).
    pub errors: u64,
    /// Intervals waiting to be written.
    pub pending: usize,
    pub seconds_total: f64,
    pub last_seconds: f64,
    /// Unix time of the last flush.
    pub last_at: Option<i64>,
}

/// Kernel statistics of one capture interface.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub name: String,
    #[serde(flatten)]
    pub kernel: KernelStats,
}

/// The layer-2 guard's figures: the last interval decided, and sums since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuardView {
    pub last: Option<IntervalStats>,
    /// ARP packets since start.
    pub arp: ArpCounts,
    /// Events since start, per kind.
    pub events: BTreeMap<Kind, u64>,
    /// Spoofed traffic since start, per customer.
    pub spoofed: BTreeMap<String, SpoofedTotal>,
}

/// A consistent copy for one page or response.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// "live" (`run`) or "store" (`serve`).
    pub source: &'static str,
    pub started: i64,
    /// Packet outcomes since start.
    pub packets: PacketStats,
    /// Kernel statistics since start, per interface (`run`) or summed over sensors (`serve`).
    pub interfaces: Vec<Interface>,
    pub flush: FlushStats,
    pub last: Option<LastInterval>,
    /// Absent when the guard is off (or, for `serve`, has written nothing since start).
    pub guard: Option<GuardView>,
}

#[derive(Default)]
struct Inner {
    last: Option<LastInterval>,
    totals: HashMap<Host, Usage>,
    other: Usage,
    packets: PacketStats,
    kernel: KernelStats,
    flush: FlushStats,
    guard: Option<GuardView>,
}

pub struct Status {
    source: Source,
    started: i64,
    inner: Mutex<Inner>,
}

impl Status {
    pub fn new(source: Source, started: i64) -> Self {
        Self {
            source,
            started,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in one interval's counts (before it is written: the store may be slow).
    pub fn observe(&self, sample: &Sample) {
        let by_total = |a: &&(Host, Usage), b: &&(Host, Usage)| {
            b.1.total().cmp(&a.1.total()).then_with(|| a.0.cmp(&b.0))
        };
        let mut refs: Vec<&(Host, Usage)> = sample.hosts.iter().collect();
        if refs.len() > NOW_HOSTS {
            refs.select_nth_unstable_by(NOW_HOSTS, by_total);
            refs.truncate(NOW_HOSTS);
        }
        refs.sort_by(by_total);
        let busiest: Vec<(Host, Usage)> = refs.into_iter().copied().collect();
        let mut inner = self.lock();
        for (host, usage) in &sample.hosts {
            let room = inner.totals.len() < METRIC_HOSTS;
            match inner.totals.get_mut(host) {
                Some(t) => t.merge(usage),
                None if room => {
                    inner.totals.insert(*host, *usage);
                }
                None => inner.other.merge(usage),
            }
        }
        inner.packets.merge(&sample.stats);
        inner.kernel.merge(&sample.kernel);
        inner.last = Some(LastInterval {
            start: sample.start,
            interval_s: sample.interval_s,
            active_hosts: sample.hosts.len(),
            hosts: busiest,
            packets: sample.stats,
            kernel: sample.kernel,
        });
    }

    /// Records a flush (or a retry) that took `took`, with the flusher's error count so far.
    pub fn flushed(&self, took: Duration, errors: u64, pending: usize, at: i64) {
        let mut inner = self.lock();
        let f = &mut inner.flush;
        f.flushes += 1;
        f.errors = errors;
        f.pending = pending;
        f.seconds_total += took.as_secs_f64();
        f.last_seconds = took.as_secs_f64();
        f.last_at = Some(at);
    }

    pub fn snapshot(&self) -> Snapshot {
        let (packets, interfaces) = match &self.source {
            Source::Live {
                counters,
                interfaces,
            } => (
                counters.stats(),
                interfaces
                    .iter()
                    .map(|i| Interface {
                        name: i.interface.clone(),
                        kernel: i.read(),
                    })
                    .collect(),
            ),
            Source::Store => {
                let inner = self.lock();
                (
                    inner.packets,
                    vec![Interface {
                        name: "all sensors".into(),
                        kernel: inner.kernel,
                    }],
                )
            }
        };
        let inner = self.lock();
        Snapshot {
            source: match self.source {
                Source::Live { .. } => "live",
                Source::Store => "store",
            },
            started: self.started,
            packets,
            interfaces,
            flush: inner.flush,
            last: inner.last.clone(),
            guard: inner.guard.clone(),
        }
    }

    /// Takes in one interval's layer-2 verdict.
    pub fn observe_guard(&self, v: &Verdict) {
        let mut inner = self.lock();
        let g = inner.guard.get_or_insert_with(GuardView::default);
        if g.last.is_none_or(|l| l.start <= v.stats.start) {
            g.last = Some(v.stats);
        }
        g.arp.merge(&v.stats.arp);
        for e in &v.events {
            *g.events.entry(e.kind).or_default() += 1;
            if e.kind == Kind::SpoofedSource {
                if let Some(c) = &e.customer {
                    let t = g.spoofed.entry(c.clone()).or_default();
                    t.packets += e.packets;
                    t.bytes += e.bytes;
                }
            }
        }
    }

    /// Per-host counts since start (and the sum of hosts past [`METRIC_HOSTS`]), sorted by host.
    pub fn totals(&self) -> (Vec<(Host, Usage)>, Usage) {
        let inner = self.lock();
        let mut v: Vec<(Host, Usage)> = inner.totals.iter().map(|(h, u)| (*h, *u)).collect();
        v.sort_unstable_by_key(|a| a.0);
        (v, inner.other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;
    use crate::parse::Proto;
    use crate::usage::Dir;

    fn sample(start: i64, hosts: &[(&str, u64)]) -> Sample {
        Sample {
            sensor: "t".into(),
            start,
            interval_s: 60,
            hosts: hosts
                .iter()
                .map(|(h, v)| {
                    let mut u = Usage::default();
                    u.set(Dir::Tx, Class::Proto(Proto::Udp), false, *v);
                    u.set(Dir::Tx, Class::Proto(Proto::Udp), true, 1);
                    (h.parse().unwrap(), u)
                })
                .collect(),
            stats: PacketStats {
                packets: hosts.len() as u64,
                ..Default::default()
            },
            kernel: KernelStats::default(),
        }
    }

    #[test]
    fn totals_grow_across_intervals_and_the_last_one_is_kept() {
        let s = Status::new(Source::Store, 0);
        s.observe(&sample(0, &[("198.51.100.1", 100), ("198.51.100.2", 5)]));
        s.observe(&sample(60, &[("198.51.100.1", 7), ("198.51.100.3", 50)]));
        let (totals, other) = s.totals();
        let get = |ip: &str| {
            totals
                .iter()
                .find(|(h, _)| h.to_string() == ip)
                .map(|(_, u)| u.total_bytes(Dir::Tx))
        };
        assert_eq!(get("198.51.100.1"), Some(107));
        assert_eq!(get("198.51.100.2"), Some(5));
        assert_eq!(get("198.51.100.3"), Some(50));
        assert!(other.is_zero());
        let snap = s.snapshot();
        assert_eq!(snap.packets.packets, 4);
        let last = snap.last.unwrap();
        assert_eq!(last.start, 60);
        assert_eq!(last.hosts[0].0.to_string(), "198.51.100.3");
        s.flushed(Duration::from_millis(20), 1, 0, 120);
        s.flushed(Duration::from_millis(30), 1, 0, 180);
        let f = s.snapshot().flush;
        assert_eq!((f.flushes, f.errors, f.last_at), (2, 1, Some(180)));
        assert!((f.seconds_total - 0.05).abs() < 1e-9);
    }

    #[test]
    fn hosts_past_the_cap_go_to_other() {
        let s = Status::new(Source::Store, 0);
        let names: Vec<String> = (0..METRIC_HOSTS + 2)
            .map(|i| format!("2001:db8:2::{:x}:{:x}", i >> 16, i & 0xffff))
            .collect();
        let hosts: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
        s.observe(&sample(0, &hosts));
        let (totals, other) = s.totals();
        assert_eq!(totals.len(), METRIC_HOSTS);
        assert_eq!(other.total_bytes(Dir::Tx), 2);
        assert_eq!(s.snapshot().last.unwrap().hosts.len(), NOW_HOSTS);
    }
}
