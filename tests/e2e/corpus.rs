//! Exact accuracy: replay each capture with its truth beside it, then compare the JSON report
//! IP by IP and class by class, and the replay statistics with the truth's.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const LOCAL: [&str; 2] = ["198.51.100.0/24", "2001:db8:100::/56"];
pub const EVERYTHING: [&str; 2] = ["0.0.0.0/0", "::/0"];

pub fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("capture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "pcap" || e == "pcapng")
                && p.with_file_name(format!(
                    "{}.truth.json",
                    p.file_name().unwrap().to_string_lossy()
                ))
                .exists()
        })
        .collect();
    v.sort();
    v
}

/// Replays one capture into a fresh store and returns (differences, summary, truth).
pub fn check(
    file: &Path,
    local: &[&str],
) -> (Vec<String>, std::collections::BTreeMap<String, f64>, Value) {
    check_with(file, local, "")
}

/// [`check`] with `extra` configuration (before `[accounting]`).
pub fn check_with(
    file: &Path,
    local: &[&str],
    extra: &str,
) -> (Vec<String>, std::collections::BTreeMap<String, f64>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), local, extra);
    let out = run_ok(bwacct().arg("-c").arg(&cfg).arg("replay").arg(file));
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.truth.json", file.display())).unwrap(),
    )
    .unwrap();
    let rows = report_all(&cfg);
    (diff_truth(&rows, &truth), summary(&out.stdout), truth)
}

/// The statistics a synthetic truth implies for the replay summary.
pub fn check_stats(
    name: &str,
    s: &std::collections::BTreeMap<String, f64>,
    truth: &Value,
) -> Vec<String> {
    let t = &truth["stats"];
    let n = |k: &str| t[k].as_u64().unwrap_or(0) as f64;
    let mut bad = Vec::new();
    let mut expect = |what: &str, got: f64, want: f64| {
        if got != want {
            bad.push(format!("{name}: {what} {got} (truth {want})"));
        }
    };
    expect("packets", s["packets"], n("packets"));
    expect(
        "accounted + foreign",
        s["accounted"] + s["foreign"],
        n("ip_readable"),
    );
    expect(
        "malformed + non-IP",
        s["malformed"] + s["non-IP"],
        n("ip_unreadable"),
    );
    expect("non-IP", s["non-IP"], n("other_l2"));
    expect(
        "length mismatch",
        s["length mismatch"],
        n("length_mismatch"),
    );
    bad
}

#[test]
fn project_captures_match_their_truth() {
    let files = captures(&data(""));
    assert!(files.len() >= 7, "tests/data holds the synthetic captures");
    for f in files {
        let (diffs, s, truth) = check(&f, &LOCAL);
        assert!(
            diffs.is_empty(),
            "{}: {} differences, first: {:#?}",
            f.display(),
            diffs.len(),
            &diffs[..diffs.len().min(10)]
        );
        let bad = check_stats(&f.display().to_string(), &s, &truth);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn project_real_captures_match_their_truth() {
    let files = captures(&data("real"));
    assert!(files.len() >= 15, "tests/data/real holds tcpdump captures");
    for f in files {
        let (diffs, _, _) = check(&f, &EVERYTHING);
        let expected = crate::real_corpus::deviation(&f);
        assert_eq!(diffs, expected, "{}", f.display());
    }
}

#[test]
fn shared_corpus_matches_its_truth() {
    let Some(dir) = shared_corpus() else {
        eprintln!(
            "SKIPPED: ../shared/corpus is not on this machine; tests/data covers the same kinds"
        );
        return;
    };
    for f in captures(&dir) {
        let (diffs, s, truth) = check(&f, &LOCAL);
        assert!(
            diffs.is_empty(),
            "{}: {} differences, first: {:#?}",
            f.display(),
            diffs.len(),
            &diffs[..diffs.len().min(10)]
        );
        let bad = check_stats(&f.display().to_string(), &s, &truth);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn unknown_link_types_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    // a pcap header with link type 105 (802.11) and no packets
    let mut wifi = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
    ];
    wifi.extend_from_slice(&105u32.to_le_bytes());
    let path = dir.path().join("wifi.pcap");
    std::fs::write(&path, wifi).unwrap();
    let out = bwacct()
        .arg("-c")
        .arg(&cfg)
        .arg("replay")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wifi.pcap") && err.contains("link type 105"),
        "{err}"
    );
    let out = bwacct()
        .arg("-c")
        .arg(&cfg)
        .args(["replay", "/nonexistent.pcap"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pcap"));
}

#[test]
fn a_broken_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 7\n",
    )
    .unwrap();
    let out = bwacct()
        .arg("-c")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:") && err.contains("accounting.interval_s"),
        "{err}"
    );
}

#[test]
fn a_truncated_file_keeps_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    let full = std::fs::read(data("small-eth-2k.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 30]).unwrap();
    let out = run_ok(bwacct().arg("-c").arg(&cfg).arg("replay").arg(&cut));
    let s = summary(&out.stdout);
    assert_eq!(
        s["packets"], 1999.0,
        "every whole record before the cut is counted"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("damaged file"));
}
