//! Live capture on network interfaces: one pcap handle per interface on its own thread, batch
//! reads (`pcap_dispatch`, TPACKET_V3 ring, immediate mode off), kernel drop counters published
//! for the flusher and logged. With the layer-2 guard, ARP passes the kernel filter and each
//! frame is also shown to the thread's guard tap.

use super::{bpf_filters, CaptureError};
use crate::account::Accountant;
use crate::config;
use crate::counters::Writer;
use crate::guard::service::Tap;
use crate::parse::{self, LinkType};
use pcap::{Active, Capture, Device};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kernel statistics of one interface (64-bit, extended from libpcap's wrapping 32-bit values).
#[derive(Debug, Default)]
pub struct InterfaceStats {
    pub interface: String,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub if_dropped: AtomicU64,
}

/// A snapshot of [`InterfaceStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

impl KernelStats {
    pub fn merge(&mut self, o: &KernelStats) {
        self.received += o.received;
        self.dropped += o.dropped;
        self.if_dropped += o.if_dropped;
    }

    pub fn since(&self, earlier: &KernelStats) -> KernelStats {
        KernelStats {
            received: self.received.saturating_sub(earlier.received),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            if_dropped: self.if_dropped.saturating_sub(earlier.if_dropped),
        }
    }
}

impl InterfaceStats {
    pub fn read(&self) -> KernelStats {
        KernelStats {
            received: self.received.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            if_dropped: self.if_dropped.load(Relaxed),
        }
    }
}

/// Unix seconds now (the guard's interval clock on live capture, as the flusher's).
fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Extends a wrapping 32-bit counter to 64 bits.
fn extend(cell: &AtomicU64, now32: u32) {
    let old = cell.load(Relaxed);
    let delta = now32.wrapping_sub(old as u32);
    cell.store(old + u64::from(delta), Relaxed);
}

pub struct LiveSource {
    interface: String,
    cap: Capture<Active>,
    link: LinkType,
    stats: Arc<InterfaceStats>,
}

/// Stops every capture loop: sets the flag and breaks libpcap out of a blocking read.
#[derive(Clone, Default)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    breakers: Arc<std::sync::Mutex<Vec<pcap::BreakLoop>>>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.flag.store(true, Relaxed);
        for b in self
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            b.breakloop();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Relaxed)
    }
}

impl LiveSource {
    /// Opens `interface` (or libpcap's default device) with the capture settings, and installs
    /// the IP filter (with `arp`, IP or ARP) in the kernel.
    pub fn open(
        cfg: &config::Capture,
        interface: Option<&str>,
        arp: bool,
    ) -> Result<Self, CaptureError> {
        let device: Device = match interface {
            Some(name) => Device::from(name),
            None => Device::lookup()
                .map_err(|source| CaptureError::OpenInterface {
                    interface: "(default)".into(),
                    source,
                })?
                .ok_or(CaptureError::NoDevice)?,
        };
        let name = device.name.clone();
        let open_err = |source| CaptureError::OpenInterface {
            interface: name.clone(),
            source,
        };
        let mut cap = Capture::from_device(device)
            .map_err(open_err)?
            .promisc(cfg.promiscuous)
            .snaplen(cfg.snaplen as i32)
            .buffer_size(cfg.buffer_bytes as i32)
            .timeout(cfg.timeout_ms as i32)
            .immediate_mode(false)
            .open()
            .map_err(open_err)?;
        let link = LinkType::from_dlt(cap.get_datalink().0).map_err(|source| {
            CaptureError::InterfaceLinkType {
                interface: name.clone(),
                source,
            }
        })?;
        let mut last_error = None;
        for filter in bpf_filters(&cfg.filter, arp) {
            match cap.filter(&filter, true) {
                Ok(()) => {
                    tracing::debug!(interface = %name, %filter, "kernel filter installed");
                    last_error = None;
                    break;
                }
                Err(source) => {
                    last_error = Some(CaptureError::Filter {
                        interface: name.clone(),
                        filter,
                        source,
                    })
                }
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }
        Ok(Self {
            stats: Arc::new(InterfaceStats {
                interface: name.clone(),
                ..Default::default()
            }),
            interface: name,
            cap,
            link,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    pub fn stats(&self) -> Arc<InterfaceStats> {
        Arc::clone(&self.stats)
    }

    /// Registers this handle with `stop` so a blocking read can be interrupted.
    pub fn attach(&mut self, stop: &StopHandle) {
        stop.breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.cap.breakloop_handle());
    }

    /// The capture loop: reads a ring block at a time until `stop`. A batch is opened only once
    /// packets are there, so a quiet interface never holds up a drain. `tap` (the guard) sees
    /// every frame and hands its interval over at each boundary of the wall clock.
    pub fn run(
        mut self,
        acct: &Accountant,
        writer: &Writer,
        stop: &StopHandle,
        mut tap: Option<Tap>,
    ) {
        let mut last_stats = Instant::now();
        if let Some(tap) = tap.as_mut() {
            tap.clock(wall_clock());
        }
        while !stop.is_stopped() {
            let mut batch = None;
            let link = self.link;
            let result = match tap.as_mut() {
                None => self.cap.dispatch(None, |p| {
                    let b = batch.get_or_insert_with(|| writer.batch());
                    acct.process(b, link, p.data, p.header.len);
                }),
                Some(tap) => {
                    let r = self.cap.dispatch(None, |p| {
                        let b = batch.get_or_insert_with(|| writer.batch());
                        let decoded = parse::decode(link, p.data, p.header.len);
                        tap.frame(p.header.ts.tv_sec, link, p.data, p.header.len, &decoded);
                        acct.count(b, decoded, p.header.len);
                    });
                    tap.clock(wall_clock());
                    r
                }
            };
            drop(batch);
            match result {
                Ok(_) | Err(pcap::Error::TimeoutExpired) => {}
                // pcap_breakloop makes pcap_dispatch fail: that is the stop request
                Err(_) if stop.is_stopped() => break,
                Err(e) => {
                    tracing::error!(interface = %self.interface, "capture error: {e}; retrying in 1 s");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            if last_stats.elapsed() >= Duration::from_secs(1) {
                self.publish_stats();
                last_stats = Instant::now();
            }
        }
        self.publish_stats();
        if let Some(tap) = tap {
            tap.finish();
        }
    }

    fn publish_stats(&mut self) {
        match self.cap.stats() {
            Ok(s) => {
                extend(&self.stats.received, s.received);
                extend(&self.stats.dropped, s.dropped);
                extend(&self.stats.if_dropped, s.if_dropped);
            }
            Err(e) => tracing::debug!(interface = %self.interface, "no capture statistics: {e}"),
        }
    }
}
