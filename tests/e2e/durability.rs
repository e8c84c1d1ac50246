//! Durability and store failures, for real: `bwacct run` on a namespace veth with bounded UDP
//! traffic, killed with SIGKILL at random points and restarted (loss at most the interval in
//! flight, no double count), stopped with SIGTERM (no loss); a store locked by another writer,
//! on a read-only file system, and on a full file system (a 4 MiB tmpfs) while traffic flows:
//! the flusher warns and retries, capture goes on, and the totals come out exact once the
//! store is back, or, if it is still failing at SIGTERM, from the journal at the next start.
//! Root only.

use crate::common::*;
use crate::live::{sh, start_run_logged, stop, terminate, Log, Netns};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where B sends from and A listens (no listener: the port-unreachable replies are ICMP from A
/// and do not touch B's UDP count).
const A4: &str = "198.51.100.10";
const B4: &str = "198.51.100.20";
const PAYLOAD: usize = 100;

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// UDP datagrams from B to A at a steady pace, each one's send time printed.
pub struct Sender(Child);

impl Sender {
    pub fn start(net: &Netns, count: usize, gap_s: f64) -> Self {
        let script = format!(
            "import socket,time,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             for i in range({count}):\n    s.sendto(b'x'*{PAYLOAD},('{A4}',9999))\n    \
             print(repr(time.time()))\n    time.sleep({gap_s})\n"
        );
        let child = net
            .exec(&net.b)
            .args(["python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sender");
        Sender(child)
    }

    /// Waits for the last datagram; returns every send time.
    pub fn finish(self) -> Vec<f64> {
        let out = self.0.wait_with_output().expect("sender");
        assert!(out.status.success(), "sender failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.parse().expect("a time"))
            .collect()
    }
}

/// B's UDP packets in the store, all time (0 before the store exists).
pub fn counted(cfg: &Path) -> u64 {
    if !cfg.with_file_name("bw.db").exists() {
        return 0;
    }
    report_all(cfg)
        .get(B4)
        .and_then(|r| r["classes"]["udp"]["tx_packets"].as_u64())
        .unwrap_or(0)
}

/// A small deterministic generator for the kill points (the seed is printed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn live_config(dir: &Path, net: &Netns, storage: &str) -> PathBuf {
    let cfg = config(
        dir,
        &["198.51.100.0/24"],
        &format!("[capture]\ninterfaces = [\"{}\"]\n", net.if_a),
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[accounting]\n", "[accounting]\ninterval_s = 1\n");
    let text = text.replace("[storage]\n", &format!("[storage]\n{storage}"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn warnings(log: &Log, what: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(what))
        .count()
}

/// Waits (bounded) until the store holds `want` of B's packets.
fn wait_counted(cfg: &Path, want: u64, within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let n = counted(cfg);
        if n >= want || start.elapsed() > within {
            return n;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn sigkill_loses_at_most_the_interval_in_flight_and_sigterm_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    let net = Netns::new("kill");
    let dir = tempfile::tempdir().unwrap();
    let cfg = live_config(dir.path(), &net, "");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill points seed {seed}");
    let mut rng = Rng(seed);
    let mut report = Vec::new();
    for kill in 1..=4 {
        let before = counted(&cfg);
        let (mut run, _log) = start_run_logged(&net, &net.a, &cfg);
        let sender = Sender::start(&net, 500, 0.004);
        // Anywhere from the first datagrams to after the last one.
        std::thread::sleep(Duration::from_millis(200 + rng.below(2800)));
        let t_kill = now();
        sh(&["kill", "-KILL", &run.id().to_string()]);
        run.wait().unwrap();
        let times = sender.finish();
        let sent = times.iter().filter(|&&t| t < t_kill).count() as u64;
        let stored = counted(&cfg) - before;
        // In flight at t: the open interval and the one just closed (its flush may be under
        // way), i.e. everything sent since the start of the previous second.
        let window_start = t_kill.floor() - 1.0;
        let in_flight = times
            .iter()
            .filter(|&&t| t >= window_start && t < t_kill)
            .count() as u64;
        assert!(
            stored <= sent,
            "kill {kill}: stored {stored} > sent {sent}: double count"
        );
        let loss = sent - stored;
        report.push(format!(
            "kill {kill} at +{:.2} s into the second: sent {sent}, stored {stored}, lost {loss} (in flight {in_flight})",
            t_kill - t_kill.floor()
        ));
        assert!(
            loss <= in_flight,
            "kill {kill}: lost {loss} > the {in_flight} in flight: {report:#?}"
        );
    }
    // SIGTERM: nothing lost.
    let before = counted(&cfg);
    let (run, _log) = start_run_logged(&net, &net.a, &cfg);
    let n = Sender::start(&net, 300, 0.002).finish().len() as u64;
    std::thread::sleep(Duration::from_millis(300));
    stop(run);
    let stored = counted(&cfg) - before;
    report.push(format!(
        "SIGTERM: sent {n}, stored {stored}, lost {}",
        n - stored.min(n)
    ));
    eprintln!("durability:\n{}", report.join("\n"));
    assert_eq!(stored, n, "SIGTERM loses nothing");
}

#[test]
fn a_locked_store_is_retried_and_spilled_to_the_journal_at_sigterm() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    let net = Netns::new("lock");
    let dir = tempfile::tempdir().unwrap();
    let cfg = live_config(dir.path(), &net, "retry_on_stop_s = 1\n");
    let db = dir.path().join("bw.db");
    let (run, log) = start_run_logged(&net, &net.a, &cfg);

    // Another writer holds the store for longer than bwacct's 5 s busy timeout.
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let n1 = Sender::start(&net, 300, 0.004).finish().len() as u64;
    std::thread::sleep(Duration::from_secs(6));
    let failed = warnings(&log, "store write failed");
    assert!(failed >= 1, "a warning for every failed write");
    assert_eq!(counted_raw(&db), 0, "nothing written while locked");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(wait_counted(&cfg, n1, Duration::from_secs(15)), n1);

    // Locked again, and SIGTERM while it is: the counts go to the journal.
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let n2 = Sender::start(&net, 200, 0.004).finish().len() as u64;
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = terminate(run);
    assert!(
        !status.success(),
        "a stop with unwritten counts is reported"
    );
    let journal = dir.path().join("bw.db.pending");
    assert!(journal.exists(), "{}", log.lock().unwrap().join("\n"));
    assert!(
        warnings(&log, "saved in the journal") + warnings(&log, "pending counts are saved") >= 1
    );
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    assert_eq!(counted(&cfg), n1);

    // The next start merges the journal before anything new.
    let (run, log) = start_run_logged(&net, &net.a, &cfg);
    stop(run);
    assert!(warnings(&log, "merged intervals") >= 1);
    assert!(!journal.exists());
    assert_eq!(counted(&cfg), n1 + n2);
    eprintln!("locked store: {failed} failed writes warned, {n1} + {n2} datagrams, all counted");
}

/// B's packets in the store at `db`, read without bwacct (a reader never waits in WAL mode).
fn counted_raw(db: &Path) -> u64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT coalesce(sum(s.udp_tx_packets), 0) FROM samples s JOIN hosts h ON h.id = s.host_id WHERE h.addr = ?1",
        [B4],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}

/// A small tmpfs mounted for one test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &at.display().to_string(),
        ]);
        Tmpfs(at.to_owned())
    }

    /// Fills it to the last block.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let out = std::process::Command::new("dd")
            .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=4k"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("No space left"));
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

/// The counts of B's UDP packets in the "unwritten counts" lines of a log.
fn logged(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter(|l| l.contains("unwritten counts") && l.contains(&format!("host={B4}")))
        .map(|l| udp_tx_packets(l))
        .sum()
}

#[test]
fn a_full_file_system_is_retried_and_nothing_is_silently_lost() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs and live capture need root (CI runs it as root)");
        return;
    }
    let net = Netns::new("full");
    let top = tempfile::tempdir().unwrap();
    let fs = Tmpfs::new(&top.path().join("store"), "4m");
    let cfg = live_config(&fs.0, &net, "retry_on_stop_s = 1\n");
    let (run, log) = start_run_logged(&net, &net.a, &cfg);

    // Full while traffic flows, then space again.
    std::thread::sleep(Duration::from_millis(1500));
    let filler = fs.fill();
    let n1 = Sender::start(&net, 200, 0.004).finish().len() as u64;
    std::thread::sleep(Duration::from_secs(2));
    let full_warnings = warnings(&log, "store write failed");
    assert!(full_warnings >= 1, "a warning for every failed write");
    assert!(warnings(&log, "full") >= 1, "the log says the disk is full");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(wait_counted(&cfg, n1, Duration::from_secs(15)), n1);

    // Full at SIGTERM: neither the store nor the journal beside it can take the counts; they
    // are logged, host by host, and the exit says so.
    fs.fill();
    let n2 = Sender::start(&net, 100, 0.004).finish().len() as u64;
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = terminate(run);
    assert!(!status.success());
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("nor to its journal")),
        "{lines:#?}"
    );
    assert_eq!(
        logged(&lines),
        n2,
        "the unwritten counts are all in the log"
    );
    assert_eq!(counted(&cfg), n1);
    eprintln!(
        "full file system: {full_warnings} failed writes warned, {n1} counted after freeing space; full at SIGTERM: {n2} logged"
    );
}

/// An 8 MiB ext4 image, loop-mounted with errors=remount-ro; unmounted when dropped.
struct Ext4(PathBuf);

impl Ext4 {
    fn new(top: &Path) -> Self {
        let image = top.join("ro.img");
        let at = top.join("store");
        std::fs::create_dir_all(&at).unwrap();
        sh(&["truncate", "-s", "8M", &image.display().to_string()]);
        sh(&["mkfs.ext4", "-q", &image.display().to_string()]);
        sh(&[
            "mount",
            "-o",
            "loop,errors=remount-ro",
            &image.display().to_string(),
            &at.display().to_string(),
        ]);
        Ext4(at)
    }

    /// An ext4 error, as a failing disk would raise: the kernel makes the file system read-only
    /// under the running process (a plain `remount,ro` refuses while files are open).
    fn fail(&self) {
        let out = std::process::Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(&self.0)
            .output()
            .unwrap();
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let dev = dev.rsplit('/').next().unwrap();
        std::fs::write(format!("/sys/fs/ext4/{dev}/trigger_fs_error"), "1").unwrap();
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

#[test]
fn a_file_system_gone_read_only_is_retried_logged_and_refused_at_start() {
    if !is_root() {
        eprintln!("SKIPPED: loop-mounting ext4 and live capture need root (CI runs it as root)");
        return;
    }
    let net = Netns::new("ro");
    let top = tempfile::tempdir().unwrap();
    let fs = Ext4::new(top.path());
    let cfg = live_config(&fs.0, &net, "retry_on_stop_s = 1\n");
    let (run, log) = start_run_logged(&net, &net.a, &cfg);
    let n1 = Sender::start(&net, 200, 0.004).finish().len() as u64;
    assert_eq!(wait_counted(&cfg, n1, Duration::from_secs(10)), n1);

    fs.fail();
    let n2 = Sender::start(&net, 200, 0.004).finish().len() as u64;
    std::thread::sleep(Duration::from_secs(2));
    let ro_warnings = warnings(&log, "store write failed");
    assert!(ro_warnings >= 1, "a warning for every failed write");
    let (status, _) = terminate(run);
    assert!(!status.success());
    let lines = log.lock().unwrap().clone();
    assert_eq!(
        logged(&lines),
        n2,
        "the unwritten counts are all in the log"
    );

    // A new start refuses before capturing, and says why.
    let out = net
        .exec(&net.a)
        .arg(env!("CARGO_BIN_EXE_bwacct"))
        .arg("-c")
        .arg(&cfg)
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read-only file system"), "{err}");
    eprintln!("read-only file system: {ro_warnings} failed writes warned, {n2} logged at SIGTERM");
}

/// B's UDP transmit packets from an "unwritten counts" log line (`cells=[...]`, in the order of
/// `bwacct::usage::cell`).
fn udp_tx_packets(line: &str) -> u64 {
    let cells = line
        .split("cells=[")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .expect("cells");
    let values: Vec<u64> = cells
        .split(',')
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    values[bwacct::usage::cell(bwacct::usage::Dir::Tx, 1, true)]
}
