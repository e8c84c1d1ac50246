//! Report formats end to end: golden files for the table, CSV, JSON and CDF of a day of the
//! multi-day capture (`BWACCT_BLESS=1 cargo test --test e2e reports` rewrites them after an
//! intended change), and the HTML page: well-formed, self-contained, with the right totals.

use crate::common::*;
use quick_xml::events::Event;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LOCAL: [&str; 2] = ["198.51.100.0/24", "2001:db8:100::/56"];

fn replayed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("replay")
            .arg(data("multiday-eth-3k.pcap")),
    );
    (dir, cfg)
}

/// Compares `actual` with `tests/data/golden/NAME`, or writes it there with `BWACCT_BLESS=1`.
fn golden(name: &str, actual: &str) {
    let path = data("golden").join(name);
    if std::env::var_os("BWACCT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BWACCT_BLESS=1 writes it)", path.display()));
    if want != actual {
        let first = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\nwant: {:?}\ngot:  {:?}\n(BWACCT_BLESS=1 rewrites it after an intended change)",
            path.display(),
            first + 1,
            want.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

fn report(cfg: &Path, args: &[&str]) -> String {
    let out = run_ok(bwacct().arg("-c").arg(cfg).arg("report").args(args));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn table_csv_json_and_cdf_match_their_golden_files() {
    let (_dir, cfg) = replayed();
    let day = ["--day", "2026-10-25", "--top", "8"];
    for (format, file) in [
        ("table", "day-2026-10-25.txt"),
        ("csv", "day-2026-10-25.csv"),
        ("json", "day-2026-10-25.json"),
        ("cdf", "day-2026-10-25.cdf"),
    ] {
        golden(
            file,
            &report(&cfg, &[&day[..], &["--format", format]].concat()),
        );
    }
    // the same day in Berlin: 25 hours, times shown in CEST and CET
    golden(
        "day-2026-10-25-berlin.txt",
        &report(&cfg, &[&day[..], &["--timezone", "Europe/Berlin"]].concat()),
    );
    // CSV and CDF carry the JSON's exact numbers
    let json: Value =
        serde_json::from_str(&report(&cfg, &[&day[..], &["--format", "json"]].concat())).unwrap();
    let csv = report(&cfg, &[&day[..], &["--format", "csv"]].concat());
    let cdf = report(&cfg, &[&day[..], &["--format", "cdf"]].concat());
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for (i, row) in rows.iter().enumerate() {
        let ip = row["ip"].as_str().unwrap();
        let line: Vec<&str> = csv.lines().nth(i + 1).unwrap().split(',').collect();
        assert_eq!(line[0], ip);
        assert_eq!(line[2], row["tx_bytes"].to_string());
        assert_eq!(line[3], row["rx_bytes"].to_string());
        let fields: Vec<&str> = cdf.lines().nth(i).unwrap().split(',').collect();
        assert_eq!(fields.len(), 18);
        assert_eq!(fields[0], ip);
        // the end of the period, as BandwidthD stamps the end of its intervals
        assert_eq!(fields[1], "1792972800");
        assert_eq!(fields[2], row["tx_bytes"].to_string());
        assert_eq!(fields[5], row["classes"]["tcp"]["tx_bytes"].to_string());
        assert_eq!(fields[10], row["rx_bytes"].to_string());
        assert_eq!(fields[17], row["classes"]["p2p"]["rx_bytes"].to_string());
    }
}

/// What the page says, read with a strict XML parser (a malformed page fails here).
#[derive(Debug, Default)]
struct Page {
    /// `data-bytes` of the summary table: total, sent, received.
    summary: Vec<u64>,
    /// Per row of the top talkers: address and its `data-bytes` cells.
    rows: Vec<(String, Vec<u64>)>,
    svg_paths: usize,
    external: Vec<String>,
}

fn parse_page(html: &str) -> Page {
    let mut reader = quick_xml::Reader::from_str(html);
    let mut page = Page::default();
    let mut section = String::new();
    let mut cell = 0;
    let mut in_row = false;
    loop {
        let event = reader.read_event().unwrap_or_else(|e| {
            panic!(
                "the page is not well-formed at {}: {e}",
                reader.buffer_position()
            )
        });
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let attr = |key: &str| {
                    e.attributes()
                        .filter_map(Result::ok)
                        .find(|a| a.key.as_ref() == key.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                for key in ["src", "href"] {
                    if let Some(v) = attr(key) {
                        page.external.push(v);
                    }
                }
                match name.as_str() {
                    "section" => section = attr("id").unwrap_or_default(),
                    "path" => page.svg_paths += 1,
                    "tr" if section == "top" => {
                        in_row = false;
                        cell = 0;
                    }
                    "td" => {
                        cell += 1;
                        let bytes = attr("data-bytes").map(|v| v.parse::<u64>().unwrap());
                        match (section.as_str(), bytes) {
                            ("summary", Some(b)) => page.summary.push(b),
                            ("top", Some(b)) => {
                                if let Some(row) = page.rows.last_mut() {
                                    row.1.push(b);
                                }
                            }
                            ("top", None) if cell == 2 => in_row = true,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_row => {
                page.rows
                    .push((t.decode().unwrap().into_owned(), Vec::new()));
                in_row = false;
            }
            _ => {}
        }
    }
    page
}

fn totals(rows: &BTreeMap<String, Value>) -> (u64, u64) {
    rows.values().fold((0, 0), |(tx, rx), r| {
        (
            tx + r["tx_bytes"].as_u64().unwrap(),
            rx + r["rx_bytes"].as_u64().unwrap(),
        )
    })
}

#[test]
fn the_html_report_parses_and_holds_the_right_totals() {
    let (dir, cfg) = replayed();
    let period = ["--from", "2026-10-24", "--to", "2026-11-03"];
    let out = dir.path().join("usage-{date}.html");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("report")
            .args(period)
            .args([
                "--format",
                "html",
                "--top",
                "20",
                "--out",
                out.to_str().unwrap(),
            ]),
    );
    // {date} is the period's first day; the file is whole (written aside, then renamed)
    let path = dir.path().join("usage-2026-10-24.html");
    assert!(!dir.path().join("usage-2026-10-24.partial").exists());
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let page = parse_page(&html);
    assert!(
        page.external.is_empty(),
        "self-contained: {:?}",
        page.external
    );
    assert!(
        page.svg_paths >= 2,
        "the graph has a sent and a received path"
    );

    // the summary covers every address (not only the top 20), exactly
    let truth = truth_of(&data("multiday-eth-3k.pcap"));
    let (tx, rx) = (
        truth["totals"]["tx_bytes"].as_u64().unwrap(),
        truth["totals"]["rx_bytes"].as_u64().unwrap(),
    );
    assert_eq!(page.summary, vec![tx + rx, tx, rx]);

    // the top talkers are the JSON report's first 20 rows, cell by cell
    let json: Value = serde_json::from_str(&report(
        &cfg,
        &[&period[..], &["--format", "json", "--top", "20"]].concat(),
    ))
    .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(page.rows.len(), 20);
    for ((ip, cells), row) in page.rows.iter().zip(rows) {
        assert_eq!(ip, row["ip"].as_str().unwrap());
        let (t, r) = (
            row["tx_bytes"].as_u64().unwrap(),
            row["rx_bytes"].as_u64().unwrap(),
        );
        let mut want = vec![t + r, t, r];
        for class in ["tcp", "udp", "icmp", "other", "http", "ftp", "mail", "p2p"] {
            let c = &row["classes"][class];
            want.push(c["tx_bytes"].as_u64().unwrap() + c["rx_bytes"].as_u64().unwrap());
        }
        assert_eq!(cells, &want, "{ip}");
    }
    // and the whole report agrees with the summary
    assert_eq!(totals(&report_rows(&cfg, &period)), (tx, rx));
}
