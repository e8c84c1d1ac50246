//! The bad-config table: every mistake is reported by `check-config` (and stops `run` before
//! it captures) with the file, the line and the key, or, for what only the system can tell (a
//! missing interface, a store the service user cannot write), with the name and the reason.

use crate::common::*;
use std::path::Path;

const LOCAL: &str = "[accounting]\nlocal = [\"198.51.100.0/24\"]\n";

/// (what, config text after `sensor = "t"`, what the error must say). `{dir}` is a temporary
/// directory writable by root.
const TABLE: &[(&str, &str, &[&str])] = &[
    (
        "unknown key",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\nintervl_s = 60\n",
        &[":4:", "did you mean `interval_s`"],
    ),
    (
        "unknown section key",
        "[storage]\nsqlte = \"x\"\n",
        &[":3:", "did you mean `sqlite`"],
    ),
    (
        "snaplen range",
        "[capture]\nsnaplen = 10\n",
        &[":3:", "capture.snaplen", "expected 68 to 262144"],
    ),
    (
        "buffer range",
        "[capture]\nbuffer_mib = 0\n",
        &["capture.buffer_mib", "expected 1 to 2047"],
    ),
    (
        "timeout range",
        "[capture]\ntimeout_ms = 20000\n",
        &["capture.timeout_ms", "expected 1 to 10000"],
    ),
    (
        "interval range",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 0\n",
        &["accounting.interval_s", "expected 1 to 86400"],
    ),
    (
        "interval alignment",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 7\n",
        &["accounting.interval_s", "does not divide a day"],
    ),
    (
        "ipv6 prefix range",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\nipv6_prefix = 8\n",
        &["accounting.ipv6_prefix", "expected 16 to 128"],
    ),
    (
        "max hosts range",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\nmax_hosts = 1\n",
        &["accounting.max_hosts", "expected 16"],
    ),
    (
        "count mode",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\ncount = \"bits\"\n",
        &["accounting.count", "not a count mode"],
    ),
    (
        "overlapping networks",
        "[accounting]\nlocal = [\"198.51.100.0/24\", \"198.51.100.128/25\"]\n",
        &[":3:", "198.51.100.128/25 overlaps 198.51.100.0/24"],
    ),
    (
        "host bits",
        "[accounting]\nlocal = [\"198.51.100.1/24\"]\n",
        &["has host bits set", "198.51.100.0/24"],
    ),
    (
        "not a network",
        "[accounting]\nlocal = [\"customers\"]\n",
        &["is not a network"],
    ),
    (
        "no networks",
        "[accounting]\nlocal = []\n",
        &["no local networks"],
    ),
    (
        "port range",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\n[accounting.ports]\nhttp = [70000]\n",
        &[":5:", "accounting.ports.http", "not a port"],
    ),
    (
        "port twice",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\n[accounting.ports]\nmail = [80]\n",
        &["port 80 is already in the http list"],
    ),
    (
        "port twice in a list",
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\n[accounting.ports]\nftp = [21, 21]\n",
        &["port 21 is listed twice"],
    ),
    ("bad sensor name", "", &["is not a valid name"]),
    (
        "bad interface name",
        "[capture]\ninterfaces = [\"eth0;reboot\"]\n",
        &["capture.interfaces", "not a valid interface name"],
    ),
    (
        "interface twice",
        "[capture]\ninterfaces = [\"lo\", \"lo\"]\n",
        &["listed twice"],
    ),
    (
        "filter on two lines",
        "[capture]\nfilter = \"tcp\\nudp\"\n",
        &["capture.filter", "one line"],
    ),
    (
        "empty store path",
        "[storage]\nsqlite = \" \"\n",
        &["storage.sqlite", "empty"],
    ),
    (
        "pending bound range",
        "[storage]\nmax_pending_mib = 0\n",
        &["storage.max_pending_mib", "expected 1 to 65536"],
    ),
    (
        "retry on stop range",
        "[storage]\nretry_on_stop_s = 4000\n",
        &["storage.retry_on_stop_s", "expected 0 to 3600"],
    ),
    (
        "bad user name",
        "[service]\nuser = \"Root!\"\n",
        &["service.user", "not a valid user name"],
    ),
    (
        "bad group name",
        "[service]\ngroup = \"a b\"\n",
        &["service.group", "not a valid group name"],
    ),
];

fn write(dir: &Path, body: &str, sensor: &str) -> std::path::PathBuf {
    let has_local = body.contains("[accounting]");
    let text = format!(
        "sensor = \"{sensor}\"\n{body}{}",
        if has_local { "" } else { LOCAL }
    );
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn check_config(cfg: &Path) -> (bool, String) {
    let out = bwacct()
        .arg("-c")
        .arg(cfg)
        .arg("check-config")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_bad_option_is_named_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    for (what, body, want) in TABLE {
        let sensor = if *what == "bad sensor name" {
            "dom0 a"
        } else {
            "t"
        };
        let cfg = write(dir.path(), body, sensor);
        let (ok, err) = check_config(&cfg);
        assert!(!ok, "{what}: accepted");
        assert!(err.contains("bad.toml:"), "{what}: no file and line: {err}");
        for w in *want {
            assert!(err.contains(w), "{what}: {err:?} lacks {w:?}");
        }
    }
    eprintln!("bad-config table: {} mistakes, each reported", TABLE.len());
}

#[test]
fn a_missing_interface_and_an_unwritable_store_stop_check_config_and_run() {
    if !is_root() {
        eprintln!(
            "SKIPPED: checking the store for the service user needs root (CI runs it as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A directory only root may write: the service user (nobody) cannot keep a store there.
    let locked = dir.path().join("root-only");
    std::fs::create_dir(&locked).unwrap();
    let store = locked.join("bw.db");
    let cases = [
        (
            "missing interface",
            format!("[capture]\ninterfaces = [\"nosuch0\"]\n[service]\nuser = \"root\"\n[storage]\nsqlite = \"{}\"\n", dir.path().join("ok.db").display()),
            vec!["capture interface \"nosuch0\" does not exist", "lo"],
        ),
        (
            "unwritable store",
            format!("[capture]\ninterfaces = [\"lo\"]\n[service]\nuser = \"nobody\"\n[storage]\nsqlite = \"{}\"\n", store.display()),
            vec!["root-only is not writable by user nobody", "mode 0755"],
        ),
    ];
    for (what, body, want) in cases {
        let cfg = write(dir.path(), &body, "t");
        let (ok, err) = check_config(&cfg);
        assert!(!ok, "{what}: check-config accepted it");
        for w in &want {
            assert!(err.contains(w), "check-config, {what}: {err:?} lacks {w:?}");
        }
        let out = bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["--log", "info", "run"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "run, {what}");
        assert!(
            !err.contains("capturing"),
            "run, {what}: it captured first: {err}"
        );
        for w in &want {
            assert!(err.contains(w), "run, {what}: {err:?} lacks {w:?}");
        }
    }
    assert!(!store.exists(), "nothing was created");
}
