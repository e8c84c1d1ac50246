//! Helpers shared by the end-to-end tests: running the binary, writing configs, reading truth.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bwacct() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bwacct"));
    c.env("BWACCT_LOG", "warn");
    c
}

/// Runs the binary and insists on success.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run bwacct");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// `../shared/corpus` beside the project, if this machine has it.
pub fn shared_corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.is_dir().then_some(p)
}

/// A config file in `dir` accounting `local`, storing into `dir/bw.db`. Unless `extra` has a
/// `[service]` table, `run` keeps root (`user = "root"`): tests of the privilege drop say so.
pub fn config(dir: &Path, local: &[&str], extra: &str) -> PathBuf {
    let nets: Vec<String> = local.iter().map(|n| format!("\"{n}\"")).collect();
    let service = if extra.contains("[service]") {
        ""
    } else {
        "[service]\nuser = \"root\"\n"
    };
    let text = format!(
        "sensor = \"test\"\n{extra}\n[accounting]\nlocal = [{}]\n[storage]\nsqlite = \"{}\"\n{service}",
        nets.join(", "),
        dir.join("bw.db").display()
    );
    let path = dir.join("bwacct.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The replay summary as name → number.
pub fn summary(stdout: &[u8]) -> BTreeMap<String, f64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(char::is_whitespace)?;
            Some((k.trim().to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `report --format json` over all time, rows keyed by address.
pub fn report_all(cfg: &Path) -> BTreeMap<String, Value> {
    let out = run_ok(bwacct().args(["-c"]).arg(cfg).args([
        "report",
        "--from",
        "1970-01-01",
        "--to",
        "2200-01-01",
        "--format",
        "json",
    ]));
    let v: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["ip"].as_str().expect("ip").to_owned(), r.clone()))
        .collect()
}

const FIELDS: [&str; 4] = ["tx_bytes", "rx_bytes", "tx_packets", "rx_packets"];

/// Differences between report rows and a truth file's hosts, per address and per class.
pub fn diff_truth(rows: &BTreeMap<String, Value>, truth: &Value) -> Vec<String> {
    let hosts = truth["hosts"].as_object().expect("truth hosts");
    let mut diffs = Vec::new();
    for (ip, t) in hosts {
        let Some(r) = rows.get(ip) else {
            diffs.push(format!("{ip}: missing from the report"));
            continue;
        };
        for f in FIELDS {
            if r[f] != t[f] {
                diffs.push(format!("{ip} {f}: report {} truth {}", r[f], t[f]));
            }
        }
        for class in ["tcp", "udp", "icmp", "other", "http", "ftp", "mail", "p2p"] {
            let section = if ["tcp", "udp", "icmp", "other"].contains(&class) {
                "proto"
            } else {
                "app"
            };
            for f in FIELDS {
                let want = t[section][class][f].as_u64().unwrap_or(0);
                let got = r["classes"][class][f].as_u64().expect("class field");
                if got != want {
                    diffs.push(format!("{ip} {class}.{f}: report {got} truth {want}"));
                }
            }
        }
    }
    for ip in rows.keys() {
        if !hosts.contains_key(ip) {
            diffs.push(format!("{ip}: in the report, not in the truth"));
        }
    }
    diffs
}

pub fn is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `report --format json` with these period arguments, rows keyed by address.
pub fn report_rows(cfg: &Path, period: &[&str]) -> BTreeMap<String, Value> {
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(cfg)
            .arg("report")
            .args(period)
            .args(["--format", "json"]),
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["ip"].as_str().expect("ip").to_owned(), r.clone()))
        .collect()
}

/// Adds report rows together, address by address, every number (totals and classes).
pub fn sum_rows(reports: &[BTreeMap<String, Value>]) -> BTreeMap<String, Value> {
    fn add(a: &mut Value, b: &Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    match a.get_mut(k) {
                        Some(x) => add(x, v),
                        None => {
                            a.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (a @ Value::Number(_), Value::Number(b)) => {
                let sum = a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0);
                *a = Value::from(sum);
            }
            _ => {}
        }
    }
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for rows in reports {
        for (ip, row) in rows {
            match out.get_mut(ip) {
                Some(acc) => add(acc, row),
                None => {
                    out.insert(ip.clone(), row.clone());
                }
            }
        }
    }
    out
}

/// The truth file beside a capture.
pub fn truth_of(capture: &Path) -> Value {
    let text =
        std::fs::read_to_string(format!("{}.truth.json", capture.display())).expect("truth file");
    serde_json::from_str(&text).expect("truth JSON")
}
