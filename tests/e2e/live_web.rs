//! `run` with `[web]`: live capture in network namespaces while the dashboard serves, and
//! `/metrics` scraped across flushes: the per-host byte counters equal what was sent and only
//! grow. Root only (namespaces); the HTTP requests are made inside the capturing namespace.

use crate::common::*;
use crate::live::{send_udp, sink, start_run, stop, Netns};
use serde_json::Value;
use std::time::Duration;

pub const LISTEN: &str = "127.0.0.1:8080";

/// GET inside namespace `ns` (the dashboard listens on that namespace's loopback).
fn fetch(net: &Netns, ns: &str, path: &str) -> String {
    fetch_in(net.exec(ns), path)
}

/// GET through `exec` (an `ip netns exec NS` command) from the dashboard on that namespace's
/// loopback.
pub fn fetch_in(mut exec: std::process::Command, path: &str) -> String {
    let script = "import sys,urllib.request\nprint(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())";
    let out = exec
        .args(["python3", "-c", script, &format!("http://{LISTEN}{path}")])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "GET {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}

#[test]
fn run_serves_metrics_that_count_exactly_and_only_grow() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    let net = Netns::new("web");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!(
            "[capture]\ninterfaces = [\"{}\"]\n[web]\nlisten = \"{LISTEN}\"\n",
            net.if_a
        ),
    );
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("[accounting]\n", "[accounting]\ninterval_s = 1\n"),
    )
    .unwrap();
    let run = start_run(&net, &net.a, &cfg);

    const N: usize = 150;
    const PAYLOAD: usize = 300;
    let per_round = (N * (20 + 8 + PAYLOAD)) as u64;
    let sender = "bwacct_host_bytes_total{ip=\"198.51.100.20\",direction=\"tx\"}";
    let receiver = "bwacct_host_bytes_total{ip=\"198.51.100.10\",direction=\"rx\"}";
    let mut sink_a = sink(&net, &net.a, "AF_INET", 2 * N);
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = Vec::new();
    for round in 1..=2u64 {
        send_udp(&net, &net.b, "AF_INET", "198.51.100.10", N, PAYLOAD);
        // two 1-second intervals: everything sent is flushed
        std::thread::sleep(Duration::from_millis(2500));
        let text = fetch(&net, &net.a, "/metrics");
        assert_eq!(metric(&text, sender), round * per_round, "round {round}");
        assert_eq!(metric(&text, receiver), round * per_round, "round {round}");
        assert_eq!(
            metric(
                &text,
                &format!(
                    "bwacct_kernel_dropped_packets_total{{interface=\"{}\"}}",
                    net.if_a
                )
            ),
            0
        );
        seen.push((
            metric(&text, "bwacct_capture_packets_total"),
            metric(&text, "bwacct_flushes_total"),
        ));
    }
    assert!(
        sink_a.wait().unwrap().success(),
        "the sink got every datagram"
    );
    assert!(
        seen[1].0 >= seen[0].0 + N as u64,
        "capture packets grow: {seen:?}"
    );
    assert!(seen[1].1 > seen[0].1, "flushes grow: {seen:?}");

    let status: Value = serde_json::from_str(&fetch(&net, &net.a, "/api/v1/status")).unwrap();
    assert_eq!(status["status"]["source"], "live");
    assert_eq!(status["status"]["interfaces"][0]["name"], net.if_a.as_str());
    assert!(status["status"]["flush"]["last_at"].is_i64());
    let now = fetch(&net, &net.a, "/now");
    assert!(now.contains(&format!("interface {}", net.if_a)), "{now}");
    let summary = stop(run);
    assert!(summary.contains("dropped 0"), "{summary}");
}
