//! Least privilege, for real: `bwacct run` started as root in a network namespace drops to the
//! service user once its capture is open (every thread: uid, gid, no capability, no new
//! privileges), and still counts and stores; the shaping case keeps CAP_NET_ADMIN only, and a
//! child (as tc would be) can use it. Creates a system user for the test and removes it. Root only.

use crate::common::*;
use crate::live::{start_run, stop, Netns};
use bwacct::privilege::ProcStatus;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

/// A system user (and its group) made for one test; removed when dropped.
pub struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl SystemUser {
    pub fn new(tag: &str) -> Self {
        let name = format!("bwt-{tag}-{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").arg(&name).output();
        let out = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .output()
            .expect("run useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        SystemUser { name, uid, gid }
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// Every thread of `pid`, parsed from `/proc/PID/task/*/status`.
fn threads(pid: u32) -> Vec<ProcStatus> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .map(|t| {
            ProcStatus::parse(&std::fs::read_to_string(t.unwrap().path().join("status")).unwrap())
        })
        .collect()
}

#[test]
fn run_drops_root_to_the_service_user() {
    if !is_root() {
        eprintln!("SKIPPED: dropping root needs root (CI runs it as root)");
        return;
    }
    let user = SystemUser::new("run");
    let net = Netns::new("priv");
    let dir = tempfile::tempdir().unwrap();
    // The store's directory belongs to the service user, as systemd's StateDirectory= makes it.
    std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid)).unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24"],
        &format!(
            "[capture]\ninterfaces = [\"{}\"]\n[service]\nuser = \"{}\"\n",
            net.if_a, user.name
        ),
    );
    let run = start_run(&net, &net.a, &cfg);
    let pid = run.id();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "bwacct"
    );
    // The capture and flush threads start right after the "capturing" line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut all = threads(pid);
    while all.len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        all = threads(pid);
    }
    assert!(
        all.len() >= 3,
        "main, capture and flush threads: {}",
        all.len()
    );
    for t in &all {
        assert_eq!(t.uids, [user.uid; 4], "{t:?}");
        assert_eq!(t.gids, [user.gid; 4], "{t:?}");
        assert_eq!(
            (t.cap_inh, t.cap_prm, t.cap_eff, t.cap_bnd, t.cap_amb),
            (0, 0, 0, 0, 0),
            "no capability at all without shaping: {t:?}"
        );
        assert!(t.no_new_privs, "{t:?}");
    }
    let ping = net
        .exec(&net.b)
        .args(["ping", "-q", "-c", "3", "-i", "0.2", "198.51.100.10"])
        .output()
        .unwrap();
    assert!(ping.status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop(run);
    let db = dir.path().join("bw.db");
    assert_eq!(
        std::fs::metadata(&db).unwrap().uid(),
        user.uid,
        "the store is written as the user"
    );
    let rows = report_all(&cfg);
    assert_eq!(rows["198.51.100.10"]["rx_packets"].as_u64(), Some(3));
}

#[test]
fn a_missing_service_user_stops_run_before_capture() {
    if !is_root() {
        eprintln!("SKIPPED: dropping root needs root (CI runs it as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24"],
        "[capture]\ninterfaces = [\"lo\"]\n[service]\nuser = \"bwacct-no-such-user\"\n",
    );
    for cmd in ["run", "check-config"] {
        let out = bwacct().arg("-c").arg(&cfg).arg(cmd).output().unwrap();
        assert!(!out.status.success(), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("\"bwacct-no-such-user\" does not exist") && err.contains("useradd"),
            "{cmd}: {err}"
        );
    }
}

/// `target/debug/examples/privilege_probe`, built by a plain `cargo test` beside this test binary.
fn probe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let probe = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("examples/privilege_probe"))
        .expect("target directory");
    assert!(
        probe.exists(),
        "{} is missing: `cargo test` builds it (`cargo test --test e2e` alone does not: run `cargo build --example privilege_probe` first)",
        probe.display()
    );
    probe
}

#[test]
fn shaping_keeps_net_admin_only_and_children_can_use_it() {
    if !is_root() {
        eprintln!("SKIPPED: dropping root needs root (CI runs it as root)");
        return;
    }
    let user = SystemUser::new("shape");
    let net = Netns::new("cap");
    for (shaping, addr) in [(true, "192.0.2.1/32"), (false, "192.0.2.2/32")] {
        let mut cmd = net.exec(&net.a);
        cmd.arg(probe()).arg(&user.name);
        if shaping {
            cmd.arg("--shaping");
        }
        let out = cmd
            .args(["--", "ip", "addr", "add", addr, "dev", "lo"])
            .output()
            .expect("run privilege_probe");
        let text = String::from_utf8_lossy(&out.stdout);
        let s = ProcStatus::parse(&text);
        let want = if shaping { 1u64 << 12 } else { 0 };
        assert_eq!(s.uids, [user.uid; 4], "{text}");
        assert_eq!(
            (s.cap_prm, s.cap_eff, s.cap_bnd, s.cap_amb),
            (want, want, want, want),
            "{text}"
        );
        assert!(s.no_new_privs, "{text}");
        // A child (tc, ip, iptables) gets CAP_NET_ADMIN through the ambient set, or nothing.
        assert_eq!(
            out.status.success(),
            shaping,
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = net
            .exec(&net.a)
            .args(["ip", "addr", "show", "lo"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert_eq!(listed.contains(addr), shaping, "{listed}");
    }
}
