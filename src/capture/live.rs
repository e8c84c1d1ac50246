//! Live capture on network interfaces: per interface, one or more pcap handles joined in a
//! `PACKET_FANOUT` group (by local host or by flow), each read by its own thread a ring block at a time
//! (TPACKET_V3, immediate mode off; walked by `capture::ring` on Ethernet, else
//! `pcap_dispatch`); kernel counters published per interface and
//! per thread for the flusher, the logs and the status pages. With the layer-2 guard, ARP passes
//! the kernel filter and each frame is also shown to the thread's guard tap.

use super::ring::Ring;
use super::{bpf_filters, fanout, spread, CaptureError};
use crate::account::{Accountant, Counting, RingCounting};
use crate::config;
use crate::counters::Writer;
use crate::guard::service::Tap;
use crate::parse::{self, LinkType};
use pcap::{Active, Capture, Device};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kernel statistics of one interface (64-bit, extended from libpcap's wrapping 32-bit values).
/// `received` and `dropped` are the sums over the interface's capture threads (each fanout
/// member has its own ring and counters); `if_dropped` is the interface's own drop counter.
#[derive(Debug, Default)]
pub struct InterfaceStats {
    pub interface: String,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub if_dropped: AtomicU64,
    /// One entry per capture thread of this interface, in thread order.
    pub threads: Vec<ThreadStats>,
}

/// Kernel statistics of one capture thread's socket: what the fanout gave it and what its ring
/// had no room for.
#[derive(Debug, Default)]
pub struct ThreadStats {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
}

/// A snapshot of [`InterfaceStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

/// A snapshot of one capture thread's [`ThreadStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadKernelStats {
    pub received: u64,
    pub dropped: u64,
}

/// A snapshot of one interface with its threads, for status pages and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InterfaceSnapshot {
    pub interface: String,
    #[serde(flatten)]
    pub total: KernelStats,
    pub threads: Vec<ThreadKernelStats>,
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

impl ThreadKernelStats {
    pub fn since(&self, earlier: &ThreadKernelStats) -> ThreadKernelStats {
        ThreadKernelStats {
            received: self.received.saturating_sub(earlier.received),
            dropped: self.dropped.saturating_sub(earlier.dropped),
        }
    }
}

impl InterfaceStats {
    fn new(interface: &str, threads: usize) -> Self {
        Self {
            interface: interface.to_owned(),
            threads: (0..threads).map(|_| ThreadStats::default()).collect(),
            ..Default::default()
        }
    }

    pub fn read(&self) -> KernelStats {
        KernelStats {
            received: self.received.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            if_dropped: self.if_dropped.load(Relaxed),
        }
    }

    pub fn snapshot(&self) -> InterfaceSnapshot {
        InterfaceSnapshot {
            interface: self.interface.clone(),
            total: self.read(),
            threads: self
                .threads
                .iter()
                .map(|t| ThreadKernelStats {
                    received: t.received.load(Relaxed),
                    dropped: t.dropped.load(Relaxed),
                })
                .collect(),
        }
    }
}

/// The time since the Unix epoch.
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix seconds now (the guard's interval clock on live capture, as the flusher's).
fn wall_clock() -> i64 {
    unix_now().as_secs() as i64
}

/// Extends a wrapping 32-bit counter to 64 bits; returns the increase.
fn extend(cell: &AtomicU64, now32: u32) -> u64 {
    let old = cell.load(Relaxed);
    let delta = u64::from(now32.wrapping_sub(old as u32));
    cell.store(old + delta, Relaxed);
    delta
}

/// Microseconds since the Unix epoch, as pcap timestamps count.
fn now_us() -> i64 {
    unix_now().as_micros() as i64
}

/// One capture thread's pcap handle on an interface.
pub struct LiveSource {
    interface: String,
    cap: Capture<Active>,
    link: LinkType,
    stats: Arc<InterfaceStats>,
    /// This handle's place among the interface's capture threads.
    thread: usize,
    /// Frames stamped before this instant (µs) were queued before the handle joined the fanout
    /// group: another member counted them too, so they are skipped (0: nothing to skip).
    joined_us: i64,
    /// The kernel filter installed (every member of a fanout group needs the same one).
    filter: String,
    /// How long the kernel holds a partly filled ring block.
    timeout: Duration,
    coalesce: Coalesce,
    /// The ring, read without libpcap's walk (Ethernet), else None.
    ring: Option<Ring>,
}

/// Bytes of ring a frame takes besides its captured bytes, rounded up (TPACKET_V3's header,
/// the link-layer address and alignment).
const FRAME_OVERHEAD: u32 = 112;
/// The lowest packet rate (per second) a thread assumes traffic could jump to while it waits.
const BURST_FLOOR: f64 = 1_000_000.0;
/// How long before the end of an accounting interval a wait ends: the read that follows is
/// done before the flush thread drains (with several capture threads it does not wait for
/// them), so the interval's frames are in its drain but for the last few milliseconds' and the
/// kernel's partly filled block.
const BOUNDARY_LEAD: Duration = Duration::from_millis(20);

/// How long a capture thread waits after a read that found frames before it reads its ring
/// again, so that each read takes more frames: fewer wakeups, and fewer reads that start with
/// cold caches (a read after a wait pays for that whatever it holds). At most
/// `capture.coalesce_ms` in all and never up to the end of the accounting interval (the frames
/// of an interval are read before its drain), in steps no longer than a quarter of the ring
/// takes to fill at four times the rate the read just saw (or at [`BURST_FLOOR`] packets a
/// second if more), each frame taken at a full snaplen. After each step the thread reads at
/// once if a quarter of the ring's blocks wait for it ([`Ring::quarter_full`]; through
/// `pcap_dispatch`, which cannot look, it waits one step only) or if a drain is asked of it.
/// So the ring never holds more than half its blocks because of a wait: a wait never makes
/// the kernel drop.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Coalesce {
    max: Duration,
    /// Frames the ring holds at the least.
    ring_frames: f64,
    /// The accounting interval (seconds), whose ends on the UTC clock a wait never passes.
    interval_s: u32,
}

impl Coalesce {
    fn new(cfg: &config::Capture, interval_s: u32) -> Self {
        Self {
            max: Duration::from_millis(u64::from(cfg.coalesce_ms)),
            ring_frames: f64::from(cfg.buffer_bytes) / f64::from(cfg.snaplen + FRAME_OVERHEAD),
            interval_s: interval_s.max(1),
        }
    }

    /// The whole wait, at `unix` time (since the epoch): `capture.coalesce_ms`, or less if the
    /// interval ends sooner: then it ends [`BOUNDARY_LEAD`] before that.
    fn longest(&self, unix: Duration) -> Duration {
        let interval = Duration::from_secs(u64::from(self.interval_s));
        let into = Duration::from_nanos((unix.as_nanos() % interval.as_nanos()) as u64);
        self.max
            .min((interval - into).saturating_sub(BOUNDARY_LEAD))
    }

    /// The longest step of the wait after a read of `frames` frames that arrived over `since`.
    fn step(&self, frames: usize, since: Duration) -> Duration {
        if frames == 0 || self.max.is_zero() {
            return Duration::ZERO;
        }
        let rate = frames as f64 / since.as_secs_f64().max(1e-6);
        let burst = (4.0 * rate).max(BURST_FLOOR);
        self.max
            .min(Duration::from_secs_f64(self.ring_frames / 4.0 / burst))
    }
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
    /// Opens `interface` (or libpcap's default device) with `cfg.threads` handles joined in one
    /// fanout group (by local host of `acct`'s networks, or by flow), each with the same kernel
    /// IP filter and its share of the ring buffer. The first handle counts from the moment it is
    /// open; each later one skips what it queued before it joined the group. With `arp`, the
    /// filter lets ARP in too (the guard).
    pub fn open_threads(
        cfg: &config::Capture,
        acct: &config::Accounting,
        interface: Option<&str>,
        arp: bool,
    ) -> Result<Vec<Self>, CaptureError> {
        let threads = cfg.threads.max(1) as usize;
        // capture.buffer_mib is the interface's: its threads share it (the fanout gives each a
        // share of the packets), each ring at least 2 MiB
        let cfg = &config::Capture {
            buffer_bytes: (cfg.buffer_bytes / threads as u32).max(2 << 20),
            ..cfg.clone()
        };
        let first = Self::open(cfg, acct.interval_s, interface, arp)?;
        let name = first.interface.clone();
        let stats = Arc::new(InterfaceStats::new(&name, threads));
        let fanout_err = |source: std::io::Error| CaptureError::Fanout {
            interface: name.clone(),
            source,
        };
        let program = match cfg.fanout {
            config::Fanout::Host if threads > 1 => {
                let p = spread::by_local_host(&acct.local, acct.ipv6_prefix);
                if p.is_none() {
                    tracing::warn!(interface = %name, "too many local networks for the fanout by host: spreading by flow");
                }
                p
            }
            _ => None,
        };
        let mode = program
            .as_deref()
            .map_or(fanout::Mode::Flow, fanout::Mode::Program);
        let group = if threads > 1 {
            Some(fanout::create(first.cap.as_raw_fd(), mode).map_err(fanout_err)?)
        } else {
            None
        };
        let filter = first.filter.clone();
        let mut sources = vec![first];
        for thread in 1..threads {
            let mut src =
                Self::open_filtered(cfg, acct.interval_s, &name, std::slice::from_ref(&filter))?;
            if let Some(id) = group {
                src.joined_us = now_us();
                fanout::join(src.cap.as_raw_fd(), id, mode).map_err(fanout_err)?;
            }
            src.thread = thread;
            sources.push(src);
        }
        for s in &mut sources {
            s.stats = Arc::clone(&stats);
        }
        if let Some(id) = group {
            tracing::debug!(interface = %name, threads, group = id, fanout = ?cfg.fanout, "fanout group joined");
        }
        Ok(sources)
    }

    /// Opens one handle on `interface` (or libpcap's default device) with the capture settings,
    /// and installs the IP filter (with `arp`, IP or ARP) in the kernel.
    fn open(
        cfg: &config::Capture,
        interval_s: u32,
        interface: Option<&str>,
        arp: bool,
    ) -> Result<Self, CaptureError> {
        let name = match interface {
            Some(name) => name.to_owned(),
            None => {
                Device::lookup()
                    .map_err(|source| CaptureError::OpenInterface {
                        interface: "(default)".into(),
                        source,
                    })?
                    .ok_or(CaptureError::NoDevice)?
                    .name
            }
        };
        Self::open_filtered(cfg, interval_s, &name, &bpf_filters(&cfg.filter, arp))
    }

    /// Opens one handle and installs the first of `filters` that the kernel takes.
    fn open_filtered(
        cfg: &config::Capture,
        interval_s: u32,
        name: &str,
        filters: &[String],
    ) -> Result<Self, CaptureError> {
        let open_err = |source| CaptureError::OpenInterface {
            interface: name.to_owned(),
            source,
        };
        let mut cap = Capture::from_device(Device::from(name))
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
                interface: name.to_owned(),
                source,
            }
        })?;
        let mut last_error = None;
        for filter in filters {
            match cap.filter(filter, true) {
                Ok(()) => {
                    tracing::debug!(interface = %name, %filter, "kernel filter installed");
                    let fd = cap.as_raw_fd();
                    let ring = (link == LinkType::Ethernet)
                        .then(|| Ring::map(fd, cfg.buffer_bytes, cfg.snaplen))
                        .flatten();
                    if ring.is_none() {
                        tracing::debug!(interface = %name, "not Ethernet, not TPACKET_V3 or libpcap's mapping of the ring not found: reading it through pcap_dispatch");
                    }
                    return Ok(Self {
                        stats: Arc::new(InterfaceStats::new(name, 1)),
                        interface: name.to_owned(),
                        cap,
                        link,
                        thread: 0,
                        joined_us: 0,
                        filter: filter.clone(),
                        timeout: Duration::from_millis(u64::from(cfg.timeout_ms)),
                        coalesce: Coalesce::new(cfg, interval_s),
                        ring,
                    });
                }
                Err(source) => {
                    last_error = Some(CaptureError::Filter {
                        interface: name.to_owned(),
                        filter: filter.clone(),
                        source,
                    })
                }
            }
        }
        Err(last_error.unwrap_or(CaptureError::NoFilter {
            interface: name.to_owned(),
        }))
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// This handle's index among its interface's capture threads.
    pub fn thread(&self) -> usize {
        self.thread
    }

    /// The statistics of the whole interface (shared by its threads).
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

    /// The capture loop: reads the ring blocks the kernel has handed over, then waits a little
    /// ([`Coalesce`]) for more, until `stop`; then reads what the kernel had queued by then.
    /// A batch is opened only once packets are there, so a quiet interface never
    /// holds up a drain; between batches, the thread serves the drains asked of it (exclusive
    /// counters). `tap` (the guard) sees every frame and hands its interval over at each
    /// boundary of the wall clock.
    pub fn run(
        mut self,
        acct: &Accountant,
        writer: &mut Writer,
        stop: &StopHandle,
        mut tap: Option<Tap>,
    ) {
        let mut last_stats = Instant::now();
        let started = Instant::now();
        let mut last_read = started;
        let mut skipped = 0u64;
        if let Some(tap) = tap.as_mut() {
            tap.clock(wall_clock());
        }
        while !stop.is_stopped() {
            // TPACKET_V3 never retires an empty block: a thread that gets no frames would sleep
            // in libpcap's wait, holding up the drain it serves and its guard interval; a drain
            // asked takes what is there now
            let timeout = if writer.drain_asked() {
                Duration::ZERO
            } else {
                self.timeout
            };
            if !ready(self.cap.as_raw_fd(), timeout) {
                writer.serve_drain();
                if let Some(tap) = tap.as_mut() {
                    tap.clock(wall_clock());
                }
                continue;
            }
            let joined_us = self.joined_us;
            let step = match read(
                (&mut self.cap, self.ring.as_mut()),
                (self.link, joined_us),
                &mut skipped,
                acct,
                writer,
                tap.as_mut(),
            ) {
                Ok(frames) => {
                    let now = Instant::now();
                    let step = self.coalesce.step(frames, now - last_read);
                    last_read = now;
                    step
                }
                Err(pcap::Error::TimeoutExpired) => Duration::ZERO,
                // pcap_breakloop makes pcap_dispatch fail: that is the stop request
                Err(_) if stop.is_stopped() => break,
                Err(e) => {
                    tracing::error!(interface = %self.interface, thread = self.thread, "capture error: {e}; retrying in 1 s");
                    std::thread::sleep(Duration::from_secs(1));
                    Duration::ZERO
                }
            };
            // after the read: a drain asked while the thread waited takes the frames that came
            writer.serve_drain();
            if self.joined_us != 0 && started.elapsed() >= Duration::from_secs(1) {
                // what was queued before the join has been read by now
                self.joined_us = 0;
                if skipped > 0 {
                    tracing::debug!(interface = %self.interface, thread = self.thread, skipped, "frames queued before joining the fanout group skipped");
                }
            }
            if last_stats.elapsed() >= Duration::from_secs(1) {
                self.publish_stats();
                last_stats = Instant::now();
            }
            self.pause(step, writer, stop);
        }
        self.finish(acct, writer, skipped, tap);
    }

    /// The wait after a read ([`Coalesce`]): steps of at most `step` until the wait is over, a
    /// quarter of the ring waits, a drain is asked or the stop is.
    fn pause(&self, step: Duration, writer: &Writer, stop: &StopHandle) {
        if step.is_zero() {
            return;
        }
        let longest = self.coalesce.longest(unix_now());
        let Some(ring) = &self.ring else {
            if !stop.is_stopped() {
                writer.await_drain_ask(step.min(longest));
            }
            return;
        };
        let until = Instant::now() + longest;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero()
                || stop.is_stopped()
                || ring.quarter_full()
                || writer.await_drain_ask(step.min(left))
            {
                return;
            }
        }
    }

    /// After the stop request: reads, without blocking, what the kernel queued before it. The
    /// ring's last, partly filled block is handed over only when the block timeout expires, so
    /// this reads until the ring is empty after that timeout (a continuous stream is cut one
    /// more timeout later).
    fn finish(self, acct: &Accountant, writer: &Writer, mut skipped: u64, mut tap: Option<Tap>) {
        let Self {
            interface,
            cap,
            link,
            stats,
            thread,
            joined_us,
            timeout,
            mut ring,
            ..
        } = self;
        let mut cap = match cap.setnonblock() {
            Ok(cap) => cap,
            Err(e) => {
                tracing::warn!(%interface, thread, "the packets still in the kernel ring are not counted: {e}");
                return;
            }
        };
        let deadline = Instant::now() + timeout + Duration::from_millis(20);
        loop {
            let n = read(
                (&mut cap, ring.as_mut()),
                (link, joined_us),
                &mut skipped,
                acct,
                writer,
                tap.as_mut(),
            )
            .unwrap_or(0);
            let now = Instant::now();
            if (n == 0 && now >= deadline) || now >= deadline + timeout {
                break;
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        publish_stats(&mut cap, &stats, thread, &interface);
        if let Some(tap) = tap {
            tap.finish();
        }
    }

    fn publish_stats(&mut self) {
        publish_stats(&mut self.cap, &self.stats, self.thread, &self.interface);
    }
}

/// One read of the ring (`pcap_dispatch`, or [`Ring`]): every packet it holds, in
/// one counter batch (opened only if a packet is there), counted at once or deferred as
/// [`RingCounting::new`] chooses. Frames stamped before `joined_us` are skipped and counted in
/// `skipped`. `tap` (the guard) sees every counted frame in the interval of its timestamp,
/// then the wall clock (so that a quiet thread hands its intervals over too).
fn read(
    source: (&mut Capture<Active>, Option<&mut Ring>),
    link: (LinkType, i64),
    skipped: &mut u64,
    acct: &Accountant,
    writer: &Writer,
    tap: Option<&mut Tap>,
) -> Result<usize, pcap::Error> {
    match RingCounting::new(acct, writer) {
        RingCounting::AtOnce(counting) => read_with(source, link, skipped, counting, tap),
        RingCounting::Deferred(counting) => read_with(source, link, skipped, counting, tap),
    }
}

/// [`read`] with one kind of counting.
fn read_with(
    source: (&mut Capture<Active>, Option<&mut Ring>),
    (link, joined_us): (LinkType, i64),
    skipped: &mut u64,
    mut counting: impl Counting,
    tap: Option<&mut Tap>,
) -> Result<usize, pcap::Error> {
    let mut early = |sec: i64, usec: i64| {
        let early = joined_us != 0 && sec * 1_000_000 + usec < joined_us;
        *skipped += u64::from(early);
        early
    };
    match tap {
        None => each_frame(source, |data, len, sec, usec| {
            if !early(sec, usec) {
                counting.process(link, data, len);
            }
        }),
        Some(tap) => {
            let r = each_frame(source, |data, len, sec, usec| {
                if early(sec, usec) {
                    return;
                }
                let decoded = parse::decode(link, data, len);
                // a frame belongs to the interval of its kernel timestamp
                tap.clock(sec);
                tap.frame(sec, link, data, len, &decoded);
                counting.count(decoded, len);
            });
            tap.clock(wall_clock());
            r
        }
    }
}

/// Hands every frame the ring holds to `f(data, wire length, seconds, microseconds)`, through
/// the [`Ring`] when there is one, else through `pcap_dispatch`. A ring read that
/// had nothing reports the socket's error if it has one (libpcap's read would).
fn each_frame(
    (cap, ring): (&mut Capture<Active>, Option<&mut Ring>),
    mut f: impl FnMut(&[u8], u32, i64, i64),
) -> Result<usize, pcap::Error> {
    let Some(ring) = ring else {
        return cap.dispatch(None, |p| {
            f(
                p.data,
                p.header.len,
                p.header.ts.tv_sec,
                p.header.ts.tv_usec,
            )
        });
    };
    match ring.read(|frame| f(frame.data, frame.wire_len, frame.sec, frame.usec)) {
        0 => socket_error(cap.as_raw_fd()).map_or(Ok(0), |e| Err(pcap::Error::PcapError(e))),
        n => Ok(n),
    }
}

/// What is wrong with a capture socket whose poll says error, hang-up or invalid, if it does.
fn socket_error(fd: std::os::fd::RawFd) -> Option<String> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
        return None;
    }
    if p.revents & libc::POLLERR != 0 {
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` and `len` are valid for the call and sized as the option is.
        unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        return Some(format!(
            "error on the packet socket: {}",
            std::io::Error::from_raw_os_error(err)
        ));
    }
    if p.revents & libc::POLLHUP != 0 {
        return Some("hang-up on the packet socket (the interface went away?)".into());
    }
    (p.revents & libc::POLLNVAL != 0).then(|| "invalid packet socket".into())
}

/// Waits up to `timeout` for the ring to hand a block over: false when it stayed empty or a
/// signal cut the wait short (the loop comes round again); a failed wait says true, and the
/// read reports the error.
fn ready(fd: std::os::fd::RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut p, 1, ms) } {
        0 => false,
        -1 => std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted,
        _ => true,
    }
}

/// Publishes one capture thread's kernel counters into its interface's statistics.
fn publish_stats(
    cap: &mut Capture<Active>,
    iface: &InterfaceStats,
    thread: usize,
    interface: &str,
) {
    let s = match cap.stats() {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%interface, thread, "no capture statistics: {e}");
            return;
        }
    };
    if let Some(t) = iface.threads.get(thread) {
        iface
            .received
            .fetch_add(extend(&t.received, s.received), Relaxed);
        iface
            .dropped
            .fetch_add(extend(&t.dropped, s.dropped), Relaxed);
    }
    // libpcap reads the interface's own drop counter: every handle sees the same one
    if thread == 0 {
        extend(&iface.if_dropped, s.if_dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn coalesce(extra: &str) -> Coalesce {
        let text = format!("[capture]\n{extra}\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n");
        let cfg = Config::parse(std::path::Path::new("t.toml"), &text).unwrap();
        Coalesce::new(&cfg.capture, cfg.accounting.interval_s)
    }

    #[test]
    fn a_step_of_the_wait_after_a_read_never_lets_more_than_a_quarter_of_the_ring_fill() {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // the defaults: 500 ms at most, a 64 MiB ring of 240-byte frames (279,620 of them)
        let c = coalesce("");
        assert_eq!(c.max, Duration::from_millis(500));
        assert_eq!(
            c.step(0, Duration::from_millis(5)),
            Duration::ZERO,
            "no frames"
        );
        // up to 250,000/s, a burst of 1 M/s fills a quarter in 69.9 ms
        let w = ms(c.step(1, Duration::from_secs(1)));
        assert!((69.8..70.0).contains(&w), "{w} ms");
        // 1,450 frames in 5 ms (290,000/s): a burst of 1.16 M/s fills a quarter in 60.3 ms
        let w = ms(c.step(1450, Duration::from_millis(5)));
        assert!((60.2..60.4).contains(&w), "{w} ms");
        // a lower cap holds
        let capped = coalesce("coalesce_ms = 50");
        assert_eq!(
            capped.step(1450, Duration::from_millis(5)),
            Duration::from_millis(50)
        );
        // 10,000 frames in 5 ms (2 M/s): a quarter of the ring at 8 M/s is 8.7 ms
        let w = ms(c.step(10_000, Duration::from_millis(5)));
        assert!((8.6..8.8).contains(&w), "{w} ms");
        // the quarter of the ring at the wait's rate holds
        for (frames, since_ms) in [(1, 1000), (100, 1), (50_000, 10), (1_000_000, 100)] {
            let since = Duration::from_millis(since_ms);
            let rate = (frames as f64 / since.as_secs_f64() * 4.0).max(BURST_FLOOR);
            let filled = rate * c.step(frames, since).as_secs_f64();
            assert!(
                filled <= c.ring_frames / 4.0 + 1.0,
                "{frames} in {since_ms} ms"
            );
        }
        // a small ring (2 MiB, full-size frames) waits less, whatever the traffic
        let small = coalesce("buffer_mib = 2\nsnaplen = 1500");
        let w = ms(small.step(1, Duration::from_secs(1)));
        assert!((0.3..0.35).contains(&w), "{w} ms");
        // off
        let off = coalesce("coalesce_ms = 0");
        assert_eq!(off.step(1450, Duration::from_millis(5)), Duration::ZERO);
    }

    /// The whole wait is `coalesce_ms`, cut 20 ms before the end of the accounting interval
    /// (60 s by default) so that the interval's frames are read before its drain.
    #[test]
    fn a_wait_ends_before_the_accounting_interval_does() {
        let c = coalesce("");
        let at =
            |secs: u64, ms: u64| c.longest(Duration::from_secs(secs) + Duration::from_millis(ms));
        let ms = Duration::from_millis;
        assert_eq!(at(1_704_067_200, 0), ms(500), "an interval starts");
        assert_eq!(at(1_704_067_212, 300), ms(500));
        assert_eq!(at(1_704_067_259, 700), ms(280), "300 ms before the end");
        assert_eq!(at(1_704_067_259, 985), ms(0), "15 ms before the end");
        let short = Coalesce {
            max: ms(250),
            interval_s: 1,
            ..c
        };
        assert_eq!(short.longest(ms(41_800)), ms(180));
        assert_eq!(short.longest(ms(41_500)), ms(250));
    }
}
