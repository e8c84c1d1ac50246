//! Coming from BandwidthD: `import-cdf` on CDF logs written here line by line (the fixed line,
//! the upstream one with the missing comma, 2.0.1's without mail, the all-hosts line), two
//! series covering the same time, a second import, bad lines; and `report --format cdf` read
//! back by `import-cdf`.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const LOCAL: [&str; 2] = ["198.51.100.0/24", "2001:db8:100::/56"];
/// BandwidthD's time of the first interval's end (2023-11-14T22:16:40Z).
const T: i64 = 1_700_000_200;

/// Total, icmp, udp, tcp, ftp, http, mail, p2p.
type Traffic = [u64; 8];

fn line(ip: &str, time: i64, sent: Traffic, received: Traffic) -> String {
    let v: Vec<String> = sent.iter().chain(&received).map(u64::to_string).collect();
    format!("{ip},{time},{}", v.join(","))
}

/// The upstream line: sent p2p and received total run together.
fn joined(ip: &str, time: i64, sent: Traffic, received: Traffic) -> String {
    let s: Vec<String> = sent[..7].iter().map(u64::to_string).collect();
    let r: Vec<String> = received[1..].iter().map(u64::to_string).collect();
    format!(
        "{ip},{time},{},{}{},{}",
        s.join(","),
        sent[7],
        received[0],
        r.join(",")
    )
}

/// BandwidthD 2.0.1: no mail.
fn no_mail(ip: &str, time: i64, sent: Traffic, received: Traffic) -> String {
    let pick = |t: &Traffic| -> Vec<String> {
        [0, 1, 2, 3, 4, 5, 7]
            .iter()
            .map(|&i| t[i].to_string())
            .collect()
    };
    format!(
        "{ip},{time},{},{}",
        pick(&sent).join(","),
        pick(&received).join(",")
    )
}

const A: Traffic = [1000, 10, 90, 800, 0, 500, 100, 300];
const B: Traffic = [5000, 20, 80, 4800, 0, 4000, 0, 700];
const C: Traffic = [70_000, 0, 1000, 69_000, 500, 30_000, 0, 0];
/// A as BandwidthD 2.0.1 writes it: no mail class (the total still holds it).
const A_NO_MAIL: Traffic = [1000, 10, 90, 800, 0, 500, 0, 300];

/// What the report must say for the sum of these (sent, received) pairs.
fn expected(pairs: &[(Traffic, Traffic)]) -> Value {
    let mut sent = [0u64; 8];
    let mut recv = [0u64; 8];
    for (s, r) in pairs {
        for i in 0..8 {
            sent[i] += s[i];
            recv[i] += r[i];
        }
    }
    let class = |i: usize| serde_json::json!({"tx_bytes": sent[i], "rx_bytes": recv[i], "tx_packets": 0, "rx_packets": 0});
    let other = |t: &Traffic| t[0] - t[1] - t[2] - t[3];
    serde_json::json!({
        "tx_bytes": sent[0], "rx_bytes": recv[0], "tx_packets": 0, "rx_packets": 0,
        "classes": {
            "tcp": class(3), "udp": class(2), "icmp": class(1),
            "other": {"tx_bytes": other(&sent), "rx_bytes": other(&recv), "tx_packets": 0, "rx_packets": 0},
            "http": class(5), "ftp": class(4), "mail": class(6), "p2p": class(7),
        }
    })
}

fn check(rows: &BTreeMap<String, Value>, ip: &str, want: &Value) {
    let row = rows
        .get(ip)
        .unwrap_or_else(|| panic!("{ip} missing: {rows:?}"));
    for key in [
        "tx_bytes",
        "rx_bytes",
        "tx_packets",
        "rx_packets",
        "classes",
    ] {
        assert_eq!(&row[key], &want[key], "{ip} {key}");
    }
}

/// Two series: log.1 (200 s) with every kind of line, log.3 (1 hour) with one interval before
/// log.1 begins and one overlapping it.
fn write_logs(dir: &Path) {
    let log1 = [
        line("198.51.100.7", T, A, B),
        joined("198.51.100.8", T, A, B),
        line("0.0.0.0", T, C, C),
        line("198.51.100.7", T + 200, C, A),
        line("2001:db8:100::7", T + 200, A, A),
        no_mail("198.51.100.7", T + 400, B, A),
    ];
    std::fs::write(dir.join("log.1.0.cdf"), log1.join("\n") + "\n").unwrap();
    let log3 = [
        line("198.51.100.9", T - 3600, C, B),
        // covered by log.1: skipped
        line("198.51.100.7", T + 3400, C, C),
    ];
    std::fs::write(dir.join("log.3.0.cdf"), log3.join("\n") + "\n").unwrap();
}

fn all_time(cfg: &Path) -> BTreeMap<String, Value> {
    report_rows(cfg, &["--from", "2023-01-01", "--to", "2024-01-01"])
}

fn import(cfg: &Path, args: &[&str]) -> std::process::Output {
    bwacct()
        .arg("-c")
        .arg(cfg)
        .arg("import-cdf")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bandwidthd_logs_are_imported_once_finest_series_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    write_logs(dir.path());
    let files = [
        dir.path().join("log.3.0.cdf"),
        dir.path().join("log.1.0.cdf"),
    ];
    let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let out = import(&cfg, &files);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["lines"], 8.0);
    assert_eq!(s["imported"], 6.0);
    assert_eq!(s["covered by finer"], 1.0);
    assert_eq!(s["totals lines"], 1.0);
    assert_eq!(s["joined, exact"], 1.0);

    let rows = all_time(&cfg);
    assert_eq!(rows.len(), 4, "{rows:?}");
    check(
        &rows,
        "198.51.100.7",
        &expected(&[(A, B), (C, A), (B, A_NO_MAIL)]),
    );
    check(&rows, "198.51.100.8", &expected(&[(A, B)]));
    check(&rows, "2001:db8:100::7", &expected(&[(A, A)]));
    check(&rows, "198.51.100.9", &expected(&[(C, B)]));
    // a line covers the interval that ends at its time
    let first = report_rows(
        &cfg,
        &[
            "--from",
            "2023-11-14T22:13:20Z",
            "--to",
            "2023-11-14T22:16:40Z",
        ],
    );
    check(&first, "198.51.100.7", &expected(&[(A, B)]));

    // the same files again: recognised, nothing counted twice
    let out = import(&cfg, &files);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("imported before").count(), 2, "{text}");
    assert_eq!(all_time(&cfg), rows);
    // unless forced
    let out = import(&cfg, &["--force", files[0]]);
    assert!(out.status.success());
    check(
        &all_time(&cfg),
        "198.51.100.9",
        &expected(&[(C, B), (C, B)]),
    );
}

#[test]
fn bad_lines_stop_the_import_or_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    write_logs(dir.path());
    let bad = dir.path().join("log.2.0.cdf");
    std::fs::write(
        &bad,
        format!(
            "{}\n198.51.100.7,{T},12,oops\n",
            line("198.51.100.7", T + 600, A, A)
        ),
    )
    .unwrap();
    let good = dir.path().join("log.1.0.cdf");
    let out = import(&cfg, &[good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log.2.0.cdf:2:") && err.contains("4 fields"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        !dir.path().join("bw.db").exists(),
        "nothing imported, no store made"
    );

    let out = import(
        &cfg,
        &[
            "--skip-bad-lines",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["bad lines"], 1.0);
    // log.2's good line lies inside log.1's time: covered
    assert_eq!(s["covered by finer"], 1.0);

    // a file not named log.N.M.cdf needs its interval
    let other = dir.path().join("traffic.cdf");
    std::fs::write(&other, line("198.51.100.30", T, A, B) + "\n").unwrap();
    let out = import(&cfg, &[other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interval"));
    let out = import(&cfg, &["--interval", "300", other.to_str().unwrap()]);
    assert!(out.status.success());
    check(&all_time(&cfg), "198.51.100.30", &expected(&[(A, B)]));
}

#[test]
fn a_cdf_report_reads_back_into_the_same_totals() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    write_logs(dir.path());
    let log1 = dir.path().join("log.1.0.cdf");
    assert!(import(&cfg, &[log1.to_str().unwrap()]).status.success());
    let period = ["--from", "2023-11-14", "--to", "2023-11-15"];
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("report")
            .args(period)
            .args(["--format", "cdf"]),
    );
    let export = dir.path().join("export.cdf");
    std::fs::write(&export, &out.stdout).unwrap();
    // one line per address, stamped with the period's end, covering the whole day
    let other = tempfile::tempdir().unwrap();
    let cfg2 = config(other.path(), &LOCAL, "");
    let out = import(&cfg2, &["--interval", "86400", export.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report_rows(&cfg2, &period), report_rows(&cfg, &period));
}
