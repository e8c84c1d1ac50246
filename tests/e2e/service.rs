//! Running as a service: the systemd units in `contrib/systemd` pass `systemd-analyze verify`
//! and its offline security check, the timer starts the report service, whose commands write
//! yesterday's report; the example configuration is valid with every option; `--version`,
//! `--help`, the completions and the manual pages are complete and the shipped copies current.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(rel)
}

/// The value of `Key=` lines of a unit file.
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_systemd_units_pass_verify_and_the_timer_runs_the_report() {
    let units = [
        "bwacct.service",
        "bwacct-report.service",
        "bwacct-report.timer",
    ];
    let text: Vec<String> = units
        .iter()
        .map(|u| std::fs::read_to_string(contrib(&format!("systemd/{u}"))).unwrap())
        .collect();
    // the collector: a dedicated user, its state directory, two capabilities and no more
    let run = &text[0];
    assert_eq!(values(run, "User"), ["bwacct"]);
    assert!(values(run, "StateDirectory")[0]
        .split(' ')
        .any(|d| d == "bwacct"));
    assert_eq!(
        values(run, "AmbientCapabilities"),
        ["CAP_NET_RAW CAP_NET_ADMIN"]
    );
    assert_eq!(
        values(run, "CapabilityBoundingSet"),
        ["CAP_NET_RAW CAP_NET_ADMIN"]
    );
    assert_eq!(values(&text[1], "CapabilityBoundingSet"), [""]);
    // the timer starts the report service, which exists under that name
    assert_eq!(values(&text[2], "Unit"), ["bwacct-report.service"]);

    let Ok(analyze) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed (scripts/setup --test installs systemd); the units were not verified");
        return;
    };
    assert!(analyze.status.success());
    // verify checks that ExecStart's program exists: point it at this build
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (unit, text) in units.iter().zip(&text) {
        let p = dir.path().join(unit);
        std::fs::write(
            &p,
            text.replace("/usr/bin/bwacct", env!("CARGO_BIN_EXE_bwacct")),
        )
        .unwrap();
        paths.push(p);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // hardening: an exposure of at most 2.5 on systemd's 0-10 scale
    for service in &paths[..2] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
            .arg(service)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            service.display(),
            text.lines().last().unwrap_or("")
        );
    }
}

#[test]
fn the_report_service_writes_yesterdays_report() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &["198.51.100.0/24"], "");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("replay")
            .arg(data("small-eth-2k.pcap")),
    );
    let unit = std::fs::read_to_string(contrib("systemd/bwacct-report.service")).unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let yesterday = || (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let before = yesterday();
    let starts = values(&unit, "ExecStart");
    assert_eq!(starts.len(), 2);
    for line in starts {
        let line = line
            .replace("/etc/bwacct/bwacct.toml", cfg.to_str().unwrap())
            .replace("/var/lib/bwacct/reports", reports.to_str().unwrap());
        let argv: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(argv[0], "/usr/bin/bwacct");
        run_ok(bwacct().args(&argv[1..]));
    }
    // (midnight may pass meanwhile)
    let after = yesterday();
    for ext in ["html", "csv"] {
        let f = |d| reports.join(format!("usage-{d}.{ext}"));
        assert!(
            f(before).exists() || f(after).exists(),
            "{} missing",
            f(after).display()
        );
    }
}

#[test]
fn the_example_config_is_valid_with_every_option() {
    let example = contrib("bwacct.toml");
    run_ok(bwacct().arg("-c").arg(&example).arg("check-config"));
    let text = std::fs::read_to_string(&example).unwrap();
    for key in [
        "sensor",
        "interfaces",
        "promiscuous",
        "snaplen",
        "filter",
        "buffer_mib",
        "timeout_ms",
        "local",
        "interval_s",
        "count",
        "ipv6_prefix",
        "max_hosts",
        "http",
        "ftp",
        "mail",
        "p2p",
        "sqlite",
        "samples_days",
        "hourly_days",
        "daily_days",
        "monthly_days",
        "timezone",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
            "contrib/bwacct.toml does not show `{key}`"
        );
    }
    // every commented option, switched on, is accepted as written
    let all_on: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' ')) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // check-config checks that capture interfaces exist: use one this host has
    let all_on = all_on.replace("interfaces = [\"peth0\"]", "interfaces = [\"lo\"]");
    let dir = tempfile::tempdir().unwrap();
    let on = dir.path().join("all-on.toml");
    std::fs::write(&on, all_on).unwrap();
    let out = run_ok(bwacct().arg("-c").arg(&on).arg("check-config"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("sensor      dom0-a"), "{said}");
    assert!(
        said.contains("retention   samples 35 days, hourly 400 days, daily 3653 days"),
        "{said}"
    );
    assert!(said.contains("report      days in UTC"), "{said}");
}

#[test]
fn version_help_completions_and_manual_pages() {
    let out = run_ok(bwacct().arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("bwacct {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = run_ok(bwacct().arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let cli = <bwacct::cli::Cli as clap::CommandFactory>::command();
    let subcommands: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    for want in [
        "run",
        "replay",
        "report",
        "import-cdf",
        "prune",
        "completions",
        "manpage",
    ] {
        assert!(subcommands.contains(&want), "{want} in {subcommands:?}");
    }
    for &sub in &subcommands {
        assert!(help.contains(&format!("  {sub}")), "--help lists {sub}");
        let out = run_ok(bwacct().args([sub, "--help"]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Usage: bwacct {sub}")),
            "{sub}: {text}"
        );
        assert!(
            text.contains("--config"),
            "{sub} --help shows the global options"
        );
    }
    // the pages and completions shipped in contrib/ are those this build generates
    let dir = tempfile::tempdir().unwrap();
    run_ok(bwacct().arg("manpage").arg("--out").arg(dir.path()));
    let mut pages: Vec<String> = std::fs::read_dir(contrib("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut fresh: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fresh.sort();
    assert_eq!(pages, fresh, "contrib/man is stale: run scripts/gen-docs");
    assert_eq!(pages.len(), subcommands.len() + 1);
    for page in &pages {
        assert_eq!(
            std::fs::read(contrib(&format!("man/{page}"))).unwrap(),
            std::fs::read(dir.path().join(page)).unwrap(),
            "contrib/man/{page} is stale: run scripts/gen-docs"
        );
    }
    for (shell, file) in [
        ("bash", "bwacct.bash"),
        ("zsh", "_bwacct"),
        ("fish", "bwacct.fish"),
    ] {
        let out = run_ok(bwacct().args(["completions", shell]));
        assert_eq!(
            out.stdout,
            std::fs::read(contrib(&format!("completions/{file}"))).unwrap(),
            "contrib/completions/{file} is stale: run scripts/gen-docs"
        );
    }
    let out = run_ok(bwacct().arg("manpage"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH bwacct 1"));
}

#[test]
fn run_logs_every_interval_and_keeps_the_store_in_shape() {
    if !is_root() {
        eprintln!("SKIPPED: `bwacct run` in network namespaces needs root (CI runs it as root)");
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let net = crate::live::Netns::new("svc");
    let dir = tempfile::tempdir().unwrap();
    // a store with last month's traffic in it, samples kept for a day only
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!(
            "[capture]\ninterfaces = [\"{}\"]\n[storage.retention]\nsamples_days = 1\n",
            net.if_a
        ),
    );
    let capture = data("multiday-eth-3k.pcap");
    run_ok(bwacct().arg("-c").arg(&cfg).arg("replay").arg(&capture));
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("[accounting]\n", "[accounting]\ninterval_s = 1\n"),
    )
    .unwrap();
    // as under systemd: the journal adds the time
    let mut child = net
        .exec(&net.a)
        .arg(env!("CARGO_BIN_EXE_bwacct"))
        .arg("-c")
        .arg(&cfg)
        .args(["--log", "info", "run"])
        .env("JOURNAL_STREAM", "8:12345")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let started = Instant::now();
    let (mut flushed, mut upkeep) = (0, false);
    while started.elapsed() < Duration::from_secs(20) && (flushed < 3 || !upkeep) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            flushed += usize::from(line.contains("interval flushed"));
            upkeep |= line.contains("store upkeep");
            lines.push(line);
        }
    }
    crate::live::stop(child);
    let text = lines.join("\n");
    assert!(flushed >= 3, "one line per interval: {text}");
    let line = lines
        .iter()
        .find(|l| l.contains("interval flushed"))
        .unwrap();
    for field in ["packets=", "bytes=", "dropped=", "active_ips=", "flush_ms="] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(
        line.starts_with("<6> INFO") && !line.contains('\u{1b}'),
        "the journal's priority first, no time stamp, no colour: {line:?}"
    );
    assert!(upkeep, "run prunes the old samples: {text}");
    let conn = rusqlite::Connection::open(dir.path().join("bw.db")).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM samples WHERE ts < 1793664000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        old, 0,
        "samples of the capture (before 2026-11-03) are gone"
    );
    // the rollups still hold every byte of it
    let rows = report_rows(&cfg, &["--from", "2026-10-24", "--to", "2026-11-03"]);
    let diffs = diff_truth(&rows, &truth_of(&capture));
    assert!(diffs.is_empty(), "{:#?}", &diffs[..diffs.len().min(10)]);
}
