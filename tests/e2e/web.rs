//! The dashboard, API and static site over real HTTP on loopback: `bwacct serve` against a store
//! filled by `replay` of a corpus capture; totals compared with the capture's truth file.

use crate::common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

pub const CAPTURE: &str = "realistic-eth-3k.pcap";
const LOCAL: [&str; 2] = ["198.51.100.0/24", "2001:db8:100::/56"];

/// A store filled by replaying the corpus capture, and `bwacct serve` on it (stopped on drop).
pub struct Served {
    pub dir: tempfile::TempDir,
    pub cfg: PathBuf,
    pub addr: String,
    /// Its log lines, as they come.
    pub log: crate::live::Log,
    child: Child,
}

impl Served {
    pub fn start() -> Served {
        Served::with("[web]\nlisten = \"127.0.0.1:0\"\n")
    }

    /// With `extra` as the config's tables before `[accounting]` (setting `[web] listen`).
    pub fn with(extra: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &LOCAL, extra);
        run_ok(
            bwacct()
                .arg("-c")
                .arg(&cfg)
                .arg("replay")
                .arg(data(CAPTURE)),
        );
        let mut child = bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["--log", "info", "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bwacct serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = crate::live::Log::default();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("bwacct serve: {line}");
                let announced = line.split("dashboard on ").nth(1).map(|url| {
                    let rest = url.split("://").nth(1).unwrap_or(url);
                    rest.trim_end_matches('/').to_owned()
                });
                if let Ok(mut l) = keep.lock() {
                    l.push(line);
                }
                if let Some(addr) = announced {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("bwacct serve announced its address");
        Served {
            dir,
            cfg,
            addr,
            log,
            child,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> Response {
        request(&self.addr, "GET", path)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.0 request (the server answers with a plain body and closes), bounded in time.
pub fn request(addr: &str, method: &str, path: &str) -> Response {
    request_with(addr, method, path, &[])
}

/// [`request`] with extra header lines (`Name: value`).
pub fn request_with(addr: &str, method: &str, path: &str, headers: &[String]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    exchange(&mut s, addr, method, path, headers)
}

/// Writes a request on an open stream (plain or TLS) and reads the response.
pub fn exchange(
    s: &mut (impl Read + Write),
    addr: &str,
    method: &str,
    path: &str,
    headers: &[String],
) -> Response {
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

pub fn truth() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(&format!("{CAPTURE}.truth.json"))).unwrap())
        .unwrap()
}

fn rows_by_ip(report: &Value) -> std::collections::BTreeMap<String, Value> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["ip"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(bytes).read_info().expect("a PNG");
    let info = reader.info();
    (info.width, info.height)
}

#[test]
fn api_over_http_matches_the_truth_and_the_report() {
    let srv = Served::start();
    let truth = truth();

    let hosts = srv.get("/api/v1/hosts?day=2024-01-01");
    assert_eq!(hosts.status, 200, "{}", hosts.text());
    assert_eq!(
        hosts.header("content-type").as_deref(),
        Some("application/json")
    );
    let api = hosts.json();
    let diffs = diff_truth(&rows_by_ip(&api), &truth);
    assert!(
        diffs.is_empty(),
        "{} differences: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );
    // the same rows and shape as `report --format json`
    let out = run_ok(bwacct().arg("-c").arg(&srv.cfg).args([
        "report",
        "--day",
        "2024-01-01",
        "--format",
        "json",
    ]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(api, report);

    let top = srv
        .get("/api/v1/hosts?from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&top=3")
        .json();
    assert_eq!(top["rows"].as_array().unwrap().len(), 3);
    assert_eq!(top["rows"][0], report["rows"][0]);

    // one host's series sums to its totals
    let ip = report["rows"][0]["ip"].as_str().unwrap().to_owned();
    let series = srv
        .get(&format!(
            "/api/v1/hosts/{ip}/series?from=2024-01-01&to=2024-01-01T01:00:00Z&step=60"
        ))
        .json();
    assert_eq!(series["step"], 60);
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    for f in ["tx_bytes", "rx_bytes", "tx_packets", "rx_packets"] {
        let sum: u64 = points.iter().map(|p| p[f].as_u64().unwrap()).sum();
        assert_eq!(sum, truth["hosts"][&ip][f].as_u64().unwrap(), "{ip} {f}");
    }
    let http: u64 = points
        .iter()
        .map(|p| p["classes"]["http"]["rx_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        http,
        truth["hosts"][&ip]["app"]["http"]["rx_bytes"]
            .as_u64()
            .unwrap_or(0)
    );
    let first = &points[0];
    let bps = first["tx_bps"].as_f64().unwrap();
    assert!((bps - first["tx_bytes"].as_f64().unwrap() * 8.0 / 60.0).abs() < 1e-6);

    let status = srv.get("/api/v1/status").json();
    assert_eq!(status["status"]["source"], "store");
    assert_eq!(
        srv.get("/api/v1/customers").json()["customers"],
        serde_json::json!([])
    );
    let metrics = srv.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .text()
        .contains("# TYPE bwacct_capture_packets_total counter"));
}

#[test]
fn nonsense_is_a_clear_400_and_the_server_is_read_only() {
    let srv = Served::start();
    for (path, want) in [
        (
            "/api/v1/hosts?from=2020-01-01&to=2026-01-01",
            "longer than 366 days",
        ),
        ("/api/v1/hosts?day=someday", "is not a date"),
        ("/api/v1/hosts?from=2024-01-01", "from and to go together"),
        ("/api/v1/hosts?day=2024-01-01&top=0", "top="),
        (
            "/api/v1/hosts?day=2024-01-01&sensor=a%20b",
            "not a sensor name",
        ),
        (
            "/api/v1/hosts?day=2024-01-01&sensor=elsewhere",
            "no such sensor",
        ),
        ("/api/v1/hosts/not-an-ip/series", "is not an IP address"),
        (
            "/api/v1/hosts/198.51.100.1/series?from=2024-01-01&to=2024-02-01&step=1",
            "at most 10000",
        ),
        (
            "/api/v1/hosts/198.51.100.1/series?window=fortnight",
            "expected day, week, month or year",
        ),
        ("/api/v1/hosts/0.0.0.0%2F0/series", ""),
    ] {
        let r = srv.get(path);
        if want.is_empty() {
            // a network is allowed as long as it holds few enough stored hosts
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            continue;
        }
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let e = r.json()["error"].as_str().unwrap().to_owned();
        assert!(e.contains(want), "{path}: {e}");
    }
    for (path, status) in [
        ("/graph.png?ip=198.51.100.1&width=99999", 400),
        ("/graph.png", 400),
        ("/graph.png?customer=nobody", 404),
        ("/ip/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400),
        ("/customer/%3Cb%3E", 404),
        ("/nothing-here", 404),
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(
            !r.text().contains("<script>") && !r.text().contains("<b>"),
            "{path} echoes markup: {}",
            r.text()
        );
    }
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(
            request(&srv.addr, method, "/api/v1/hosts").status,
            405,
            "{method}"
        );
    }
}

#[test]
fn pages_and_graphs_are_served() {
    let srv = Served::start();
    let index = srv.get("/?day=2024-01-01&top=5");
    assert_eq!(index.status, 200);
    let html = index.text();
    assert!(
        html.contains("<table class=\"sortable\" id=\"top\">"),
        "{html}"
    );
    assert_eq!(html.matches("<tr data-host=").count(), 5);
    assert!(index
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    let png = srv.get("/graph.png?ip=198.51.100.1&day=2024-01-01");
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(decode_png(&png.body), (760, 320));
    let svg = srv.get("/graph.svg?ip=198.51.100.1,198.51.100.2&window=week&end=2024-01-02");
    assert_eq!(svg.header("content-type").as_deref(), Some("image/svg+xml"));
    assert!(svg.text().contains("198.51.100.1, 198.51.100.2"));
    let host = srv.get("/ip/2001:db8:100:8:e98:8a34:21f1:d2b6?end=2024-01-02T00:00:00Z");
    assert_eq!(host.status, 200);
    assert_eq!(host.text().matches("<img src=\"/graph.png?ip=").count(), 4);
    let now = srv.get("/now");
    assert_eq!(now.status, 200);
    assert!(now.text().contains("id=\"live\""));
    for asset in ["/static/style.css", "/static/app.js"] {
        assert_eq!(srv.get(asset).status, 200, "{asset}");
    }
}

fn site_files(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in walk(dir) {
        v.push(e.strip_prefix(dir).unwrap().display().to_string());
    }
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn graph_command_and_static_site() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &LOCAL, "");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("replay")
            .arg(data(CAPTURE)),
    );
    let truth = truth();

    let svg = dir.path().join("g.svg");
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args([
                "graph",
                "--ip",
                "198.51.100.1",
                "--day",
                "2024-01-01",
                "--out",
            ])
            .arg(&svg),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(svg)"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("198.51.100.1") && text.contains("received"));
    let png = dir.path().join("g.png");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args([
                "graph",
                "--ip",
                "198.51.100.0/24",
                "--period",
                "week",
                "--end",
                "2024-01-02",
                "--out",
            ])
            .arg(&png),
    );
    assert_eq!(decode_png(&std::fs::read(&png).unwrap()), (760, 320));

    let site = dir.path().join("site");
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["graph", "--day", "2024-01-01", "--top", "2", "--site"])
            .arg(&site),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 host pages, 8 graphs"));
    let files = site_files(&site);
    for f in [
        "index.html",
        "style.css",
        "app.js",
        "hosts/198.51.100.1.html",
        "hosts/198.51.100.1-year.png",
        "hosts/2001-db8-100-8-e98-8a34-21f1-d2b6-day.png",
    ] {
        assert!(files.contains(&f.to_owned()), "{f} missing from {files:?}");
    }
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    let hosts = truth["hosts"].as_object().unwrap();
    assert_eq!(index.matches("<tr data-host=").count(), hosts.len());
    let tx: u64 = hosts
        .values()
        .map(|h| h["tx_bytes"].as_u64().unwrap())
        .sum();
    assert!(
        index.contains(&format!("<td data-v=\"{tx}\">")),
        "the footer sums every host"
    );
    assert!(
        index.contains("href=\"hosts/198.51.100.1.html\"") && index.contains("href=\"style.css\"")
    );
    let page = std::fs::read_to_string(site.join("hosts/198.51.100.1.html")).unwrap();
    assert!(
        page.contains("src=\"198.51.100.1-day.png\"") && page.contains("href=\"../style.css\"")
    );
}
