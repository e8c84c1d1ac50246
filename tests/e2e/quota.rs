//! Quotas end to end: a replayed capture takes one customer over a small allotment; `quota`,
//! `events` and `report --by customer` agree with the capture's truth; the hook ran once with
//! the right arguments, and replaying more data (a new process, as after a restart) does not
//! fire it again.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A hook that appends its arguments and one environment variable to `log`: argv only, the
/// values arrive as they are.
pub fn hook(log: &Path) -> String {
    format!(
        "[alerts]\nhooks = [[\"python3\", \"-c\", 'import sys,os; open(sys.argv[1],\"a\").write(\" \".join(sys.argv[2:])+\" env=\"+os.environ[\"BWACCT_STATE\"]+\"\\n\")', \"{}\", \"{{customer}}\", \"{{state}}\", \"{{old_state}}\", \"{{used_bytes}}\", \"{{allotment_bytes}}\", \"{{percent}}\", \"{{vif}}\"]]\ntimeout_s = 20\n",
        log.display()
    )
}

pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn json(cfg: &Path, args: &[&str]) -> Value {
    let out = run_ok(bwacct().arg("-c").arg(cfg).args(args));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn truth_total(truth: &Value, ips: &[&str], field: &str) -> u64 {
    ips.iter()
        .map(|ip| truth["hosts"][ip][field].as_u64().unwrap_or(0))
        .sum()
}

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("hook.log");
    let customers = "\
[[customer]]
name = \"goneril\"
addresses = [\"198.51.100.1\"]
vif = \"vif1.0\"
mark = 5
allotment = { monthly_gb = 0.0002 }
shape = { rate = \"1mbit\" }

[[customer]]
name = \"regan\"
addresses = [\"198.51.100.2\", \"198.51.100.3\"]
allotment = { monthly_gb = 1, measure = \"rx\" }

[[customer]]
name = \"cordelia\"
addresses = [\"198.51.100.94\"]
";
    let cfg = config(
        dir,
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!("{customers}\n{}", hook(&log)),
    );
    (cfg, log)
}

#[test]
fn a_customer_over_its_allotment_fires_the_hook_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log) = setup(dir.path());
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(data("realistic-eth-3k.pcap.truth.json")).unwrap(),
    )
    .unwrap();

    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("replay")
            .arg(data("realistic-eth-3k.pcap")),
    );
    assert_eq!(summary(&out.stdout)["quota changes"], 1.0);

    // The hook ran once, with the values of the change.
    let used = truth_total(&truth, &["198.51.100.1"], "tx_bytes")
        + truth_total(&truth, &["198.51.100.1"], "rx_bytes");
    assert_eq!(used, 254_403);
    assert_eq!(
        lines(&log),
        vec![format!(
            "goneril over ok {used} 200000 127.2 vif1.0 env=over"
        )]
    );

    // `quota` at the time of the data.
    let q = json(
        &cfg,
        &["quota", "--at", "2024-01-01T12:00:00Z", "--format", "json"],
    );
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "cordelia has no allotment: {q}");
    let g = &rows[0];
    assert_eq!(g["customer"], "goneril");
    assert_eq!(g["state"], "over");
    assert_eq!(g["used"], used);
    assert_eq!(g["allotment"], 200_000);
    assert_eq!(g["percent"], 127.2);
    assert_eq!(g["since"], "2024-01-01T00:01:00Z");
    assert_eq!(g["period"]["from"], "2024-01-01T00:00:00Z");
    assert_eq!(g["period"]["to"], "2024-02-01T00:00:00Z");
    let r = &rows[1];
    assert_eq!(r["customer"], "regan");
    assert_eq!(r["state"], "ok");
    assert_eq!(r["measure"], "rx");
    assert_eq!(
        r["used"],
        truth_total(&truth, &["198.51.100.2", "198.51.100.3"], "rx_bytes")
    );
    // The HTML report shows each customer with its allotment use at the end of the day.
    let html = run_ok(bwacct().arg("-c").arg(&cfg).args([
        "report",
        "--day",
        "2024-01-01",
        "--format",
        "html",
    ]));
    let html = String::from_utf8_lossy(&html.stdout);
    let section = &html[html
        .find("<section id=\"customers\">")
        .expect("customers section")..];
    let goneril = section
        .lines()
        .find(|l| l.contains(">goneril<"))
        .expect("a row for goneril");
    assert!(goneril.starts_with("<tr class=\"over\">"), "{goneril}");
    assert!(
        goneril.contains(&format!("data-bytes=\"{used}\"")),
        "{goneril}"
    );
    assert!(goneril.contains("(127 %)"), "{goneril}");
    let table =
        run_ok(
            bwacct()
                .arg("-c")
                .arg(&cfg)
                .args(["quota", "goneril", "--at", "2024-01-02"]),
        );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("goneril") && table.contains("over") && table.contains("127.2%"),
        "{table}"
    );
    assert!(!table.contains("regan"), "{table}");
    // A month later the period is new: ok again (shown, not stored).
    let q = json(
        &cfg,
        &["quota", "goneril", "--at", "2024-02-01", "--format", "json"],
    );
    assert_eq!(q["rows"][0]["state"], "ok");
    assert_eq!(q["rows"][0]["used"], 0);

    // One event, its hooks done.
    let e = json(&cfg, &["events", "--format", "json"]);
    let events = e["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{e}");
    assert_eq!(events[0]["customer"], "goneril");
    assert_eq!(
        (
            events[0]["old_state"].as_str(),
            events[0]["new_state"].as_str()
        ),
        (Some("ok"), Some("over"))
    );
    assert_eq!(events[0]["time"], "2024-01-01T00:01:00Z");
    assert_eq!(events[0]["hooks"], "done");

    // Reports name the customers and sum their addresses.
    let rep = json(
        &cfg,
        &[
            "report",
            "--day",
            "2024-01-01",
            "--by",
            "customer",
            "--format",
            "json",
        ],
    );
    assert_eq!(rep["by"], "customer");
    let rows = rep["rows"].as_array().unwrap();
    let row = |name: Option<&str>| {
        rows.iter()
            .find(|r| r["customer"].as_str() == name)
            .unwrap_or_else(|| panic!("no row {name:?} in {rep}"))
    };
    let g = row(Some("goneril"));
    assert_eq!(g["ips"], serde_json::json!(["198.51.100.1"]));
    assert_eq!(g["state"], "over");
    assert_eq!(g["tx_bytes"], 86_760);
    assert_eq!(g["rx_bytes"], 167_643);
    assert!(g.get("ip").is_none());
    let r = row(Some("regan"));
    assert_eq!(
        r["ips"],
        serde_json::json!(["198.51.100.2", "198.51.100.3"])
    );
    assert_eq!(r["state"], "ok");
    assert_eq!(
        r["tx_bytes"],
        truth_total(&truth, &["198.51.100.2", "198.51.100.3"], "tx_bytes")
    );
    let tcp: u64 = ["198.51.100.2", "198.51.100.3"]
        .iter()
        .map(|ip| {
            truth["hosts"][ip]["proto"]["tcp"]["tx_bytes"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(r["classes"]["tcp"]["tx_bytes"], tcp);
    let c = row(Some("cordelia"));
    assert_eq!(
        (c["tx_bytes"].as_u64(), c["ips"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    // Everyone else is in one row of nobody's addresses; the rows add up to the truth.
    let nobody = row(None);
    assert_eq!(
        nobody["ips"].as_array().unwrap().len(),
        truth["hosts"].as_object().unwrap().len() - 3
    );
    let sum: u64 = rows
        .iter()
        .map(|r| r["tx_bytes"].as_u64().unwrap() + r["rx_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 2_002_459);
    let by_ip = report_all(&cfg);
    assert_eq!(by_ip["198.51.100.1"]["customer"], "goneril");
    assert_eq!(by_ip["198.51.100.3"]["customer"], "regan");
    assert!(by_ip["198.51.100.7"]["customer"].is_null());

    // More traffic of the same month, in a new process: still over, no new event, no hook.
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("replay")
            .arg(data("small-eth-2k.pcap")),
    );
    assert_eq!(summary(&out.stdout)["quota changes"], 0.0);
    assert_eq!(lines(&log).len(), 1, "{:?}", lines(&log));
    let e = json(&cfg, &["events", "--format", "json"]);
    assert_eq!(e["events"].as_array().unwrap().len(), 1);
    let q = json(
        &cfg,
        &[
            "quota",
            "goneril",
            "--at",
            "2024-01-01T12:00:00Z",
            "--format",
            "json",
        ],
    );
    assert_eq!(q["rows"][0]["used"], used + 6112 + 5148);
    assert_eq!(q["rows"][0]["since"], "2024-01-01T00:01:00Z");

    // `shape plan` with no name plans for the customers that are over at the time.
    let plan = run_ok(bwacct().arg("-c").arg(&cfg).args([
        "shape",
        "plan",
        "--at",
        "2024-01-01T12:00:00Z",
    ]));
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("# customer goneril")
            && plan.contains("tc qdisc replace dev vif1.0 root tbf rate 1mbit"),
        "{plan}"
    );
    assert!(!plan.contains("regan"), "{plan}");
    let plan = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["shape", "plan", "--at", "2024-02-01"]),
    );
    assert!(
        plan.stdout.is_empty(),
        "nobody is over in February: {}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

#[test]
fn a_failing_hook_is_retried_and_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24"],
        "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthly_gb = 0.0001 }\n\
         [alerts]\nhooks = [[\"/nonexistent/over-quota\", \"{customer}\"]]\nretries = 1\n",
    );
    let out = bwacct()
        .env("BWACCT_LOG", "warn")
        .arg("-c")
        .arg(&cfg)
        .arg("replay")
        .arg(data("realistic-eth-3k.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a failing hook fails the hook, not the replay"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/over-quota: cannot start"),
        "{err}"
    );
    assert!(err.contains("giving up"), "{err}");
    let e = json(&cfg, &["events", "--format", "json"]);
    assert_eq!(e["events"][0]["hooks"], "failed");
}
