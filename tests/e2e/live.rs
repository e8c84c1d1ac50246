//! Live capture for real: two network namespaces joined by a veth pair (made here, removed on
//! drop), `bwacct run` capturing in one, a bounded amount of UDP and ping traffic from the other,
//! SIGTERM, and the stored per-IP bytes compared with what was sent. Root only.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A pair of namespaces joined by a veth pair; removed when dropped.
pub struct Netns {
    pub a: String,
    pub b: String,
    pub if_a: String,
    pub if_b: String,
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// Namespaces `A` (198.51.100.10, 2001:db8:100::a) and `B` (198.51.100.20, 2001:db8:100::b)
    /// with static neighbours (no ARP, no neighbour discovery) and no route anywhere else.
    pub fn new(tag: &str) -> Self {
        // Unique per process and per pair (tests run in parallel); interface names stay
        // under 16 bytes.
        static PAIRS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let id = std::process::id() % 100_000;
        let k = PAIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = Netns {
            a: format!("bwa-{tag}-{id}-a"),
            b: format!("bwa-{tag}-{id}-b"),
            if_a: format!("bw{id}x{k}a"),
            if_b: format!("bw{id}x{k}b"),
        };
        sh(&["ip", "netns", "add", &n.a]);
        sh(&["ip", "netns", "add", &n.b]);
        sh(&[
            "ip",
            "link",
            "add",
            &n.if_a,
            "netns",
            &n.a,
            "address",
            "02:00:00:00:00:0a",
            "type",
            "veth",
            "peer",
            "name",
            &n.if_b,
            "netns",
            &n.b,
            "address",
            "02:00:00:00:00:0b",
        ]);
        for (ns, ifc, v4, v6, peer4, peer6, peer_mac) in [
            (
                &n.a,
                &n.if_a,
                "198.51.100.10/24",
                "2001:db8:100::a/64",
                "198.51.100.20",
                "2001:db8:100::b",
                "02:00:00:00:00:0b",
            ),
            (
                &n.b,
                &n.if_b,
                "198.51.100.20/24",
                "2001:db8:100::b/64",
                "198.51.100.10",
                "2001:db8:100::a",
                "02:00:00:00:00:0a",
            ),
        ] {
            let x = |args: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", ns.as_str()];
                v.extend_from_slice(args);
                sh(&v);
            };
            x(&["sysctl", "-qw", &format!("net.ipv6.conf.{ifc}.accept_ra=0")]);
            x(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{ifc}.router_solicitations=0"),
            ]);
            x(&["ip", "addr", "add", v4, "dev", ifc]);
            x(&["ip", "addr", "add", v6, "dev", ifc, "nodad"]);
            x(&["ip", "link", "set", "lo", "up"]);
            x(&["ip", "link", "set", ifc, "up"]);
            x(&[
                "ip",
                "neigh",
                "replace",
                peer4,
                "lladdr",
                peer_mac,
                "dev",
                ifc,
                "nud",
                "permanent",
            ]);
            x(&[
                "ip",
                "-6",
                "neigh",
                "replace",
                peer6,
                "lladdr",
                peer_mac,
                "dev",
                ifc,
                "nud",
                "permanent",
            ]);
        }
        n
    }

    pub fn exec(&self, ns: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            // A test that failed half-way may have left its processes running in there.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).output();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Namespaces for topologies beyond a pair (wired by the test); removed when dropped.
pub struct Namespaces(pub Vec<String>);

impl Namespaces {
    /// Empty namespaces `bwa-{tag}-{pid}-{name}`, loopback up.
    pub fn new(tag: &str, names: &[&str]) -> Self {
        let id = std::process::id() % 100_000;
        let set = Namespaces(
            names
                .iter()
                .map(|n| format!("bwa-{tag}-{id}-{n}"))
                .collect(),
        );
        for ns in &set.0 {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        }
        set
    }

    /// `ip netns exec` in the `i`-th namespace.
    pub fn exec(&self, i: usize) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0[i]]);
        c
    }

    /// Runs `args` in the `i`-th namespace and insists on success.
    pub fn sh(&self, i: usize, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", self.0[i].as_str()];
        v.extend_from_slice(args);
        sh(&v);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Starts `bwacct run` in namespace `ns` and waits until its capture is open.
pub fn start_run(net: &Netns, ns: &str, cfg: &std::path::Path) -> Child {
    start_run_logged(net, ns, cfg).0
}

/// The log lines of a `bwacct run`, collected as they come.
pub type Log = Arc<Mutex<Vec<String>>>;

/// [`start_run`], also handing back its log.
pub fn start_run_logged(net: &Netns, ns: &str, cfg: &std::path::Path) -> (Child, Log) {
    start_run_in(net.exec(ns), cfg)
}

/// Starts `bwacct run` through `exec` (an `ip netns exec NS` command of any topology), waits
/// until its capture is open and keeps its log.
pub fn start_run_in(mut exec: Command, cfg: &std::path::Path) -> (Child, Log) {
    let mut child = exec
        .arg(env!("CARGO_BIN_EXE_bwacct"))
        .arg("-c")
        .arg(cfg)
        .args(["--log", "info", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bwacct run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let log: Log = Arc::default();
    let lines = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("bwacct: {line}");
            if line.contains("capturing") {
                let _ = tx.send(());
            }
            lines.lock().unwrap().push(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("bwacct started capturing");
    (child, log)
}

/// SIGTERM, then wait (bounded) for a clean exit; returns stdout.
pub fn stop(child: Child) -> String {
    let (status, out) = terminate(child);
    assert!(status.success(), "bwacct run exited with {status}");
    out
}

/// SIGTERM, then wait (bounded, `retry_on_stop_s` included) for the exit; returns its status and
/// stdout.
pub fn terminate(mut child: Child) -> (ExitStatus, String) {
    sh(&["kill", "-TERM", &child.id().to_string()]);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "bwacct did not stop within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    (status, out)
}

/// The UDP port of each family's sink (an IPv6 socket would take the IPv4 port too).
fn port(family: &str) -> u16 {
    if family == "AF_INET6" {
        9998
    } else {
        9999
    }
}

/// A UDP sink in `ns` for `count` datagrams (so no ICMP port-unreachable comes back), bounded in
/// time; returns once its socket is bound.
pub fn sink(net: &Netns, ns: &str, family: &str, count: usize) -> Child {
    let port = port(family);
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\ns.bind(('',{port}))\ns.settimeout(15)\n\
         print('bound',flush=True)\nn=0\nwhile n<{count}:\n    s.recv(65535); n+=1\n"
    );
    let mut child = net
        .exec(ns)
        .args(["python3", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sink");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("sink stdout"))
        .read_line(&mut line)
        .expect("sink ready");
    assert_eq!(line.trim(), "bound", "the sink did not start");
    child
}

/// Sends `count` datagrams of `payload` bytes to `dst` from `ns`.
pub fn send_udp(net: &Netns, ns: &str, family: &str, dst: &str, count: usize, payload: usize) {
    let port = port(family);
    let script = format!(
        "import socket,time\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\n\
         for i in range({count}):\n    s.sendto(b'x'*{payload},('{dst}',{port}))\n    time.sleep(0.001)\n"
    );
    let out = net
        .exec(ns)
        .args(["python3", "-c", &script])
        .output()
        .expect("sender");
    assert!(
        out.status.success(),
        "sender: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn live_capture_counts_exactly_what_was_sent() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    let net = Netns::new("live");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!("[capture]\ninterfaces = [\"{}\"]\n", net.if_a),
    );
    let run = start_run(&net, &net.a, &cfg);

    const N4: usize = 300;
    const N6: usize = 200;
    const P4: usize = 472;
    const P6: usize = 1000;
    const PINGS: usize = 5;
    const PING_DATA: usize = 100;
    let sink4 = sink(&net, &net.a, "AF_INET", N4);
    let sink6 = sink(&net, &net.a, "AF_INET6", N6);
    send_udp(&net, &net.b, "AF_INET", "198.51.100.10", N4, P4);
    send_udp(&net, &net.b, "AF_INET6", "2001:db8:100::a", N6, P6);
    let ping = net
        .exec(&net.b)
        .args([
            "ping",
            "-q",
            "-c",
            &PINGS.to_string(),
            "-i",
            "0.2",
            "-s",
            &PING_DATA.to_string(),
            "198.51.100.10",
        ])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    for mut s in [sink4, sink6] {
        assert!(s.wait().unwrap().success(), "a sink missed datagrams");
    }
    std::thread::sleep(Duration::from_millis(500));
    let summary = stop(run);
    assert!(summary.contains("dropped 0"), "kernel drops: {summary}");

    let rows = report_all(&cfg);
    let get = |ip: &str, f: &str| rows.get(ip).map_or(0, |r| r[f].as_u64().unwrap());
    let ping_bytes = (PINGS * (20 + 8 + PING_DATA)) as u64;
    let udp4 = (N4 * (20 + 8 + P4)) as u64;
    let udp6 = (N6 * (40 + 8 + P6)) as u64;
    assert_eq!(get("198.51.100.20", "tx_bytes"), udp4 + ping_bytes);
    assert_eq!(get("198.51.100.20", "tx_packets"), (N4 + PINGS) as u64);
    assert_eq!(get("198.51.100.20", "rx_bytes"), ping_bytes);
    assert_eq!(get("198.51.100.10", "rx_bytes"), udp4 + ping_bytes);
    assert_eq!(get("198.51.100.10", "tx_bytes"), ping_bytes);
    assert_eq!(get("2001:db8:100::b", "tx_bytes"), udp6);
    assert_eq!(get("2001:db8:100::a", "rx_bytes"), udp6);
    assert_eq!(get("2001:db8:100::a", "rx_packets"), N6 as u64);
    assert_eq!(
        rows["198.51.100.10"]["classes"]["udp"]["rx_bytes"]
            .as_u64()
            .unwrap(),
        udp4
    );
    assert_eq!(
        rows["198.51.100.10"]["classes"]["icmp"]["rx_bytes"]
            .as_u64()
            .unwrap(),
        ping_bytes
    );
    assert_eq!(
        rows.len(),
        4,
        "only the four test addresses: {:?}",
        rows.keys().collect::<Vec<_>>()
    );
}

/// Kernel counters of each capture thread, from the run summary's `thread N:` lines.
pub fn thread_received(summary: &str) -> Vec<u64> {
    summary
        .lines()
        .filter(|l| l.trim_start().starts_with("thread "))
        .filter_map(|l| {
            l.split("received ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Runs `bwacct run` with `cfg` in namespace A while `tcpreplay` sends `file` from B at `pps`
/// packets/s, stops it at once (what sits in the rings' last, partly filled blocks must still be
/// counted) and returns its summary, checked for kernel drops.
pub fn run_during_replay(
    net: &Netns,
    cfg: &std::path::Path,
    file: &std::path::Path,
    pps: u32,
) -> String {
    let run = start_run(net, &net.a, cfg);
    let replay = net
        .exec(&net.b)
        .args([
            "timeout",
            "60",
            "tcpreplay",
            "-q",
            "--pps",
            &pps.to_string(),
            "-i",
        ])
        .arg(&net.if_b)
        .arg(file)
        .output()
        .expect("tcpreplay");
    assert!(
        replay.status.success(),
        "tcpreplay: {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let summary = stop(run);
    assert!(summary.contains("dropped 0"), "kernel drops: {summary}");
    summary
}

/// Copies a capture whose frames were cut by the snaplen with each frame padded back to its
/// length on the wire (zeros after the cut; the headers, and so the truth, are unchanged).
fn pad_to_wire(from: &std::path::Path, to: &std::path::Path) {
    let mut input = pcap::Capture::from_file(from).expect("test capture");
    let mut out = pcap::Capture::dead(input.get_datalink())
        .unwrap()
        .savefile(to)
        .unwrap();
    let mut buf = Vec::new();
    while let Ok(p) = input.next_packet() {
        buf.clear();
        buf.extend_from_slice(p.data);
        buf.resize(p.header.len as usize, 0);
        let header = pcap::PacketHeader {
            caplen: p.header.len,
            ..*p.header
        };
        out.write(&pcap::Packet::new(&header, &buf));
    }
    out.flush().unwrap();
}

/// Replays realistic-eth-3k (padded to its wire length; up to 1500 bytes of IP behind two VLAN
/// tags, hence MTU 9000) from B at `pps` while `bwacct run` captures on A with the `[capture]`
/// section `capture` makes of A's interface and `accounting` added to `[accounting]`; checks
/// every host against the truth and returns the run's summary and its directory (the store).
fn replay_realistic_exactly(
    name: &str,
    capture: impl FnOnce(&str) -> String,
    accounting: &str,
    pps: u32,
) -> (String, tempfile::TempDir) {
    let net = Netns::new(name);
    for (ns, ifc) in [(&net.a, &net.if_a), (&net.b, &net.if_b)] {
        sh(&["ip", "-n", ns, "link", "set", ifc, "mtu", "9000"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames.pcap");
    pad_to_wire(&data("realistic-eth-3k.pcap"), &frames);
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &capture(&net.if_a),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[accounting]\n", &format!("[accounting]\n{accounting}"));
    std::fs::write(&cfg, text).unwrap();
    let summary = run_during_replay(&net, &cfg, &frames, pps);

    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("realistic-eth-3k.pcap.truth.json")).unwrap())
            .unwrap();
    let diffs = diff_truth(&report_all(&cfg), &truth);
    assert!(
        diffs.is_empty(),
        "{} differences: {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(20)]
    );
    (summary, dir)
}

#[test]
fn live_capture_on_several_threads_counts_a_replayed_capture_exactly() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    const THREADS: usize = 3;
    let (summary, _dir) = replay_realistic_exactly(
        "fan",
        |ifc| format!("[capture]\ninterfaces = [\"{ifc}\"]\nthreads = {THREADS}\npin = true\n"),
        "",
        5000,
    );
    let per_thread = thread_received(&summary);
    assert_eq!(per_thread.len(), THREADS, "{summary}");
    assert!(
        per_thread.iter().filter(|&&n| n > 0).count() >= 2,
        "the fanout spread nothing: {summary}"
    );
    assert!(per_thread.iter().sum::<u64>() >= 3000, "{summary}");
}

#[test]
fn live_capture_on_one_thread_drains_at_every_interval_and_counts_exactly() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    // one capture thread (plain adds, drained by that thread when the flush thread asks) and
    // one-second intervals: the 3,000 frames at 1,000/s cross at least two boundaries
    let (summary, dir) = replay_realistic_exactly(
        "one",
        |ifc| format!("[capture]\ninterfaces = [\"{ifc}\"]\nthreads = 1\n"),
        "interval_s = 1\n",
        1000,
    );
    let db = rusqlite::Connection::open(dir.path().join("bw.db")).unwrap();
    let intervals: i64 = db
        .query_row("SELECT COUNT(DISTINCT ts) FROM samples", [], |r| r.get(0))
        .unwrap();
    assert!(intervals >= 3, "{intervals} intervals written: {summary}");
}
