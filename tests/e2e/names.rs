//! Names next to addresses, against a real DNS server on loopback: Debian's `dnsmasq` started
//! here with a small hosts file (and PTR records with hostile names), the config's names
//! winning over DNS, names in `report --names` (JSON, CSV, table), in the dashboard's JSON and
//! HTML, in graphs and the static site. And a DNS server that never answers: no page waits for
//! it and live capture counts exactly (root: network namespaces).

use crate::common::*;
use crate::live::{send_udp, sink, start_run, stop, Netns};
use crate::web::Served;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `dnsmasq` on 127.0.0.1 at a free high port, answering only from `hosts` and `ptr` records;
/// killed on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A PTR query for `name` (e.g. `1.100.51.198.in-addr.arpa`).
fn ptr_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 12, 0, 1]);
    q
}

impl Dnsmasq {
    /// None (and a SKIPPED line) when dnsmasq is not installed.
    fn start(hosts: &str, ptr: &[(&str, &str)]) -> Option<Dnsmasq> {
        if Command::new("dnsmasq").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED: dnsmasq is not installed (scripts/setup --test installs dnsmasq-base)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts");
        std::fs::write(&file, hosts).unwrap();
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--pid-file",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--no-resolv",
            "--no-hosts",
            "--local-ttl=300",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--addn-hosts={}", file.display()));
        if is_root() {
            cmd.args(["--user=root", "--group=root"]);
        }
        for (addr, name) in ptr {
            cmd.arg(format!("--ptr-record={addr},{name}"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        let d = Dnsmasq {
            child,
            port,
            _dir: dir,
        };
        // Ready when it answers.
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        loop {
            let _ = s.send_to(&ptr_query("1.0.0.127.in-addr.arpa"), ("127.0.0.1", port));
            if s.recv(&mut [0u8; 512]).is_ok() {
                return Some(d);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dnsmasq did not answer"
            );
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const HOSTS: &str = "198.51.100.1 One.Example\n198.51.100.2 ptr-two.example\n\
                     198.51.100.4 ptr-four.example\n2001:db8:100:8:e98:8a34:21f1:d2b6 six.example\n";
/// PTR records whose names must never be printed.
const HOSTILE: [(&str, &str); 3] = [
    ("10.100.51.198.in-addr.arpa", "<script>alert(1)</script>"),
    ("11.100.51.198.in-addr.arpa", "=HYPERLINK(1)"),
    ("100.100.51.198.in-addr.arpa", "198.51.100.8"),
];

/// `[names]` pointed at `dns`, a static name, and a customer.
fn names_config(port: u16) -> String {
    format!(
        "[web]\nlisten = \"127.0.0.1:0\"\n[names]\nreverse_dns = true\nservers = [\"127.0.0.1:{port}\"]\ntimeout_ms = 1000\n\
         [names.static]\n\"198.51.100.2\" = \"Static.Example.\"\n\
         [[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.4\"]\n"
    )
}

fn rows(report: &Value) -> BTreeMap<String, Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ip"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// The names every output must show: DNS, static over DNS, customer over DNS; none for the
/// hostile records and for addresses without a record.
const EXPECTED: [(&str, Option<&str>); 8] = [
    ("198.51.100.1", Some("one.example")),
    ("198.51.100.2", Some("static.example")),
    ("198.51.100.4", Some("goneril")),
    ("2001:db8:100:8:e98:8a34:21f1:d2b6", Some("six.example")),
    ("198.51.100.10", None),
    ("198.51.100.11", None),
    ("198.51.100.100", None),
    ("198.51.100.101", None),
];

fn check_names(rows: &BTreeMap<String, Value>, what: &str) {
    for (ip, want) in EXPECTED {
        let row = rows
            .get(ip)
            .unwrap_or_else(|| panic!("{what}: no row {ip}"));
        assert_eq!(row["name"].as_str(), want, "{what}: {ip}: {row}");
    }
}

fn no_hostile_text(text: &str, what: &str) {
    for bad in ["<script>alert", "&lt;script&gt;", "alert(1)", "HYPERLINK"] {
        assert!(!text.contains(bad), "{what} shows {bad:?}");
    }
}

#[test]
fn names_from_the_config_and_reverse_dns_in_reports_pages_graphs_and_site() {
    let Some(dns) = Dnsmasq::start(HOSTS, &HOSTILE) else {
        return;
    };
    let srv = Served::with(&names_config(dns.port));
    let report = |extra: &[&str]| {
        let out = run_ok(
            bwacct()
                .arg("-c")
                .arg(&srv.cfg)
                .args(["report", "--day", "2024-01-01"])
                .args(extra),
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // report: the DESIGN.md shape without --names; a "name" on every row with it.
    let plain: Value = serde_json::from_str(&report(&["--format", "json"])).unwrap();
    assert!(plain["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("name").is_none()));
    let named: Value = serde_json::from_str(&report(&["--format", "json", "--names"])).unwrap();
    assert!(named["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("name").is_some()));
    check_names(&rows(&named), "report --names");
    // nothing else changes
    let mut stripped = named.clone();
    for r in stripped["rows"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("name");
    }
    assert_eq!(stripped, plain);
    let csv = report(&["--format", "csv", "--names"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",name"));
    assert!(csv
        .lines()
        .any(|l| l.starts_with("198.51.100.1,") && l.ends_with(",one.example")));
    assert!(csv
        .lines()
        .any(|l| l.starts_with("198.51.100.4,goneril,") && l.ends_with(",goneril")));
    no_hostile_text(&csv, "CSV");
    let table = report(&["--names"]);
    assert!(table.contains("six.example") && table.contains("static.example"));
    no_hostile_text(&table, "the table");

    // The dashboard never waits: config names at once, DNS names once looked up.
    let start = Instant::now();
    let api = loop {
        let asked = Instant::now();
        let r = srv.get("/api/v1/hosts?day=2024-01-01");
        assert!(asked.elapsed() < Duration::from_secs(1), "the API waited");
        let api = r.json();
        let rows = rows(&api);
        assert_eq!(rows["198.51.100.2"]["name"], "static.example");
        assert_eq!(rows["198.51.100.4"]["name"], "goneril");
        let known = EXPECTED
            .iter()
            .all(|(ip, want)| rows[*ip]["name"].as_str() == *want);
        if known {
            break api;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "names never came: {api}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    check_names(&rows(&api), "/api/v1/hosts");
    no_hostile_text(&api.to_string(), "the API");
    let index = srv.get("/?day=2024-01-01&top=500").text();
    for name in ["one.example", "static.example", "six.example"] {
        assert!(
            index.contains(&format!("<span class=\"dns\">{name}</span>")),
            "{name} not on the page"
        );
    }
    assert!(
        index.contains(">goneril</a>"),
        "the customer's name links to its page"
    );
    no_hostile_text(&index, "the top-talkers page");
    let host = srv.get("/ip/198.51.100.1").text();
    assert!(
        host.contains("<h1>198.51.100.1 (one.example)</h1>"),
        "{host}"
    );
    let svg = srv.get("/graph.svg?ip=198.51.100.1&day=2024-01-01").text();
    assert!(svg.contains("198.51.100.1 (one.example)"));
    let metrics = srv.get("/metrics").text();
    let outcome = |o: &str| -> u64 {
        let series = format!("bwacct_dns_lookups_total{{outcome=\"{o}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    };
    assert!(outcome("name") >= 2, "{metrics}");
    assert!(
        outcome("invalid") >= 3,
        "the three hostile names: {metrics}"
    );

    // The graph command and the static site.
    let svg = srv.dir.path().join("one.svg");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&srv.cfg)
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
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("198.51.100.1 (one.example)"));
    let site = srv.dir.path().join("site");
    run_ok(
        bwacct()
            .arg("-c")
            .arg(&srv.cfg)
            .args(["graph", "--day", "2024-01-01", "--top", "2", "--site"])
            .arg(&site),
    );
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    for name in ["one.example", "static.example", "six.example"] {
        assert!(
            index.contains(&format!("<span class=\"dns\">{name}</span>")),
            "{name} not in the static site"
        );
    }
    no_hostile_text(&index, "the static site");
}

/// GETs `paths` inside namespace `ns`, each timed there: (status, milliseconds, body).
fn timed_fetch(net: &Netns, ns: &str, listen: &str, paths: &[&str]) -> Vec<(u16, f64, String)> {
    let script = "import sys,time,json,urllib.request\nout=[]\nfor p in sys.argv[2:]:\n    t=time.monotonic()\n    r=urllib.request.urlopen(sys.argv[1]+p, timeout=20)\n    b=r.read().decode()\n    out.append([r.status,(time.monotonic()-t)*1000,b])\nprint(json.dumps(out))";
    let out = net
        .exec(ns)
        .args(["python3", "-c", script, &format!("http://{listen}")])
        .args(paths)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<(u16, f64, String)>>(&out.stdout).unwrap()
}

#[test]
fn a_dns_server_that_never_answers_slows_no_page_and_costs_no_count() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    const LISTEN: &str = "127.0.0.1:8080";
    const TIMEOUT_MS: f64 = 2000.0;
    let net = Netns::new("dns");
    let dir = tempfile::tempdir().unwrap();
    // A DNS "server" in the collector's namespace that reads queries, counts them, and never
    // answers (for at most 120 s).
    let counted = dir.path().join("queries");
    let script = format!(
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',5399))\ns.settimeout(1)\nn=0\nend=time.time()+120\n\
         open('{0}','w').write('0')\nwhile time.time()<end:\n    try:\n        s.recv(512)\n    except socket.timeout:\n        continue\n    n+=1\n    open('{0}','w').write(str(n))\n",
        counted.display()
    );
    let mut hole = net
        .exec(&net.a)
        .args(["python3", "-c", &script])
        .spawn()
        .expect("the silent DNS server");
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!(
            "[capture]\ninterfaces = [\"{}\"]\n[web]\nlisten = \"{LISTEN}\"\n[names]\nreverse_dns = true\nservers = [\"127.0.0.1:5399\"]\ntimeout_ms = {TIMEOUT_MS}\n",
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
    let start = Instant::now();
    while !counted.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the silent server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = start_run(&net, &net.a, &cfg);

    const N: usize = 200;
    const PAYLOAD: usize = 400;
    let mut sink_a = sink(&net, &net.a, "AF_INET", N);
    std::thread::sleep(Duration::from_millis(300));
    send_udp(&net, &net.b, "AF_INET", "198.51.100.10", N, PAYLOAD);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        sink_a.wait().unwrap().success(),
        "the sink got every datagram"
    );

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let hosts = format!("/api/v1/hosts?day={today}");
    let paths = [
        "/",
        "/now",
        hosts.as_str(),
        "/api/v1/status",
        "/ip/198.51.100.20",
    ];
    // The first round asks for the names; the second comes while the lookups hang.
    for round in 0..2 {
        for (path, (status, ms, body)) in
            paths.iter().zip(timed_fetch(&net, &net.a, LISTEN, &paths))
        {
            assert_eq!(status, 200, "{path}");
            eprintln!("round {round}: {path} answered in {ms:.1} ms");
            assert!(ms < TIMEOUT_MS, "round {round}: {path} took {ms:.0} ms");
            assert!(!body.contains(".example"), "{path}: a name from nowhere");
        }
    }
    let queries: u64 = std::fs::read_to_string(&counted)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        queries >= 2,
        "the lookups reached the silent server: {queries}"
    );
    let api: Value =
        serde_json::from_str(&timed_fetch(&net, &net.a, LISTEN, &[&hosts])[0].2).unwrap();
    let per_host = rows(&api);
    let bytes = (N * (20 + 8 + PAYLOAD)) as u64;
    assert_eq!(per_host["198.51.100.20"]["tx_bytes"], bytes);
    assert_eq!(per_host["198.51.100.20"]["name"], Value::Null);
    assert_eq!(per_host["198.51.100.10"]["rx_bytes"], bytes);

    // After the timeout the lookups are given up and counted as such.
    std::thread::sleep(Duration::from_millis(TIMEOUT_MS as u64 + 500));
    let metrics = &timed_fetch(&net, &net.a, LISTEN, &["/metrics"])[0].2;
    let outcome = |o: &str| -> u64 {
        let series = format!("bwacct_dns_lookups_total{{outcome=\"{o}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    };
    // (over UDP the server is silent; the TCP fallback may be refused at once)
    assert!(outcome("timeout") + outcome("failed") >= 2, "{metrics}");
    assert_eq!(outcome("name"), 0);

    let summary = stop(run);
    assert!(summary.contains("dropped 0"), "{summary}");
    let _ = hole.kill();
    let _ = hole.wait();
    let stored = report_all(&cfg);
    assert_eq!(stored["198.51.100.20"]["tx_bytes"], bytes);
    assert_eq!(stored["198.51.100.20"]["tx_packets"], N as u64);
    assert_eq!(stored["198.51.100.10"]["rx_bytes"], bytes);
    assert_eq!(stored.len(), 2, "{:?}", stored.keys().collect::<Vec<_>>());
}
