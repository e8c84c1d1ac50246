//! The layer-2 guard end to end, on captures the tests write: a MAC flood, an ARP poisoning of
//! the gateway, a bound customer's address used from other MACs; each raises exactly the
//! expected events (stored, listed by `events`, run through the hooks, shown by `report`,
//! `quota` and the dashboard), with or without a central PostgreSQL store; the project's clean
//! captures raise none and count the same.

use crate::common::*;
use crate::corpus::{captures, check_stats, check_with, EVERYTHING, LOCAL};
use crate::live::{sh, start_run_in, stop, Namespaces};
use crate::live_web::{fetch_in, LISTEN};
use crate::pcapgen::{arp, mac_text, udp, Pcap, Rng, BROADCAST};
use crate::web::request;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// 2024-01-01T00:00:00Z.
const T: i64 = 1_704_067_200;
const GW: u64 = 0x0200_0000_0001;
const HOSTS: [(u64, &str); 3] = [
    (0x0200_0000_0010, "198.51.100.10"),
    (0x0200_0000_0020, "198.51.100.20"),
    (0x0200_0000_0030, "198.51.100.30"),
];

/// A config with a 10-second interval, `[guard]` (with `guard` settings and a hook logging its
/// arguments to `dir/hook.log`, `|`-separated) and `customers`.
fn guard_config(dir: &Path, guard: &str, customers: &str) -> PathBuf {
    let text = format!(
        "sensor = \"test\"\n\
         [service]\nuser = \"root\"\n\
         [accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 10\n\
         [storage]\nsqlite = \"{db}\"\n\
         [alerts]\ntimeout_s = 20\n\
         [guard]\n{guard}\n\
         hooks = [[\"python3\", \"-c\", 'import sys; open(sys.argv[1],\"a\").write(\"|\".join(sys.argv[2:])+\"\\n\")', \"{log}\", \
         \"{{kind}}\", \"{{ip}}\", \"{{old_mac}}\", \"{{new_mac}}\", \"{{customer}}\", \"{{packets}}\", \"{{bytes}}\", \"{{interface}}\", \"{{vlan}}\"]]\n\
         {customers}",
        db = dir.join("bw.db").display(),
        log = dir.join("hook.log").display(),
    );
    let path = dir.join("bwacct.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn replay(cfg: &Path, file: &Path) -> std::collections::BTreeMap<String, f64> {
    summary(&run_ok(bwacct().arg("-c").arg(cfg).arg("replay").arg(file)).stdout)
}

fn json(cfg: &Path, args: &[&str]) -> Value {
    let out = run_ok(bwacct().arg("-c").arg(cfg).args(args));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn events(cfg: &Path) -> Vec<Value> {
    json(cfg, &["events", "--format", "json"])["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn hook_lines(dir: &Path) -> Vec<String> {
    crate::quota::lines(&dir.join("hook.log"))
}

/// Ordinary traffic of one interval starting at `t`: a host asks for the gateway and is
/// answered, every host and the gateway exchange a datagram.
fn quiet(p: &mut Pcap, t: i64, k: usize) {
    let (m, ip) = HOSTS[k % HOSTS.len()];
    p.frame(t + 1, 0, &arp(1, BROADCAST, (m, ip), (0, "198.51.100.1")));
    p.frame(t + 1, 500, &arp(2, m, (GW, "198.51.100.1"), (m, ip)));
    for (i, (m, ip)) in HOSTS.iter().enumerate() {
        p.frame(t + 2, i as u32, &udp(*m, GW, None, ip, "198.51.100.1", 100));
        p.frame(t + 3, i as u32, &udp(GW, *m, None, "198.51.100.1", ip, 100));
    }
}

#[test]
fn a_mac_flood_raises_one_event_naming_its_vlan_and_macs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "", "");
    let file = dir.path().join("flood.pcap");
    let mut flood = BTreeSet::new();
    {
        let mut p = Pcap::create(&file);
        for k in 0..6 {
            quiet(&mut p, T + 10 * k as i64, k);
        }
        // macof-style: thousands of made-up sources on VLAN 42, within one interval
        let t = T + 60;
        quiet(&mut p, t, 6);
        let mut rng = Rng(0x5eed);
        for i in 0..5000u32 {
            let m = rng.mac();
            flood.insert(m);
            let f = udp(m, rng.mac(), Some(42), "203.0.113.9", "198.51.100.200", 18);
            p.frame(t + 4 + i64::from(i / 1000), i, &f);
        }
        for k in 7..9 {
            quiet(&mut p, T + 10 * k as i64, k);
        }
    }
    assert_eq!(flood.len(), 5000);
    let s = replay(&cfg, &file);
    assert_eq!(s["layer-2 events"], 1.0);
    assert_eq!(s["packets"], 9.0 * 8.0 + 5000.0);

    let ev = events(&cfg);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    let e = &ev[0];
    assert_eq!(e["kind"], "mac_flood");
    assert_eq!(e["time"], "2024-01-01T00:01:00Z");
    assert_eq!(
        e["packets"], 5004,
        "5000 made up, three hosts and the gateway"
    );
    assert_eq!(
        e["groups"],
        serde_json::json!([
            {"interface": "flood.pcap", "vlan": 42, "macs": 5000},
            {"interface": "flood.pcap", "vlan": 0, "macs": 4},
        ])
    );
    let examples = e["macs"].as_array().unwrap();
    assert_eq!(examples.len(), 5);
    let made_up: BTreeSet<String> = flood.iter().map(|&m| mac_text(m)).collect();
    assert!(
        examples
            .iter()
            .all(|m| made_up.contains(m.as_str().unwrap())),
        "{examples:?}"
    );
    assert_eq!(e["hooks"], "done");
    assert_eq!(
        hook_lines(dir.path()),
        vec!["mac_flood|||||5004|0|flood.pcap|42".to_owned()]
    );
    // The counts are untouched: the flood's datagrams count for their local destination.
    let rows = report_all(&cfg);
    assert_eq!(rows["198.51.100.200"]["rx_packets"], 5000);
    assert_eq!(rows["198.51.100.200"]["rx_bytes"], 5000 * 46);
}

/// The gateway's address claimed by a second MAC: gratuitous replies to everyone and
/// arpspoof-style replies to the victim, over two intervals, the gateway still answering.
fn poisoning(file: &Path) {
    let attacker = (0x0200_0000_0066, "198.51.100.66");
    let victim = HOSTS[0];
    let mut p = Pcap::create(file);
    quiet(&mut p, T, 0);
    p.frame(T + 4, 0, &arp(1, BROADCAST, attacker, (0, victim.1)));
    p.frame(T + 4, 300, &arp(2, attacker.0, victim, attacker));
    let t = T + 10;
    for i in 0..5 {
        let claim = arp(
            2,
            BROADCAST,
            (attacker.0, "198.51.100.1"),
            (0, "198.51.100.1"),
        );
        p.frame(t + 1 + i, 0, &claim);
        let to_victim = arp(2, victim.0, (attacker.0, "198.51.100.1"), victim);
        p.frame(t + 1 + i, 100, &to_victim);
    }
    quiet(&mut p, t + 5, 0);
    for i in 0..3 {
        let to_victim = arp(2, victim.0, (attacker.0, "198.51.100.1"), victim);
        p.frame(T + 21 + i, 0, &to_victim);
    }
    quiet(&mut p, T + 30, 0);
}

#[test]
fn an_arp_poisoning_of_the_gateway_raises_one_event_per_interval_naming_both_macs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "", "");
    let file = dir.path().join("poison.pcap");
    poisoning(&file);
    assert_eq!(replay(&cfg, &file)["layer-2 events"], 2.0);
    let ev = events(&cfg);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    for (e, (time, frames)) in ev
        .iter()
        .zip([("2024-01-01T00:00:11Z", 10), ("2024-01-01T00:00:21Z", 3)])
    {
        assert_eq!(e["kind"], "arp_spoof");
        assert_eq!(e["time"], time);
        assert_eq!(e["ip"], "198.51.100.1");
        assert_eq!(e["old_macs"], serde_json::json!(["02:00:00:00:00:01"]));
        assert_eq!(e["new_mac"], "02:00:00:00:00:66");
        assert_eq!(e["packets"], frames);
        assert_eq!(e["customer"], Value::Null);
    }
    assert_eq!(
        hook_lines(dir.path()),
        vec![
            "arp_spoof|198.51.100.1|02:00:00:00:00:01|02:00:00:00:00:66||10|0||".to_owned(),
            "arp_spoof|198.51.100.1|02:00:00:00:00:01|02:00:00:00:00:66||3|0||".to_owned(),
        ]
    );
    let table = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["events", "--kind", "arp_spoof"]),
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("198.51.100.1 02:00:00:00:00:01 -> 02:00:00:00:00:66"),
        "{table}"
    );
    assert!(
        table.contains("while 02:00:00:00:00:01 holds it"),
        "{table}"
    );

    // The same capture with a low threshold for unsolicited replies: the first attack
    // interval (10 unsolicited replies) is also a reply flood, the second (3) is not.
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "arp_reply_flood = 10", "");
    assert_eq!(replay(&cfg, &file)["layer-2 events"], 3.0);
    let kinds: Vec<String> = events(&cfg)
        .iter()
        .map(|e| format!("{} {}", e["kind"], e["packets"]))
        .collect();
    assert_eq!(
        kinds,
        [
            "\"arp_reply_flood\" 10",
            "\"arp_spoof\" 10",
            "\"arp_spoof\" 3"
        ]
    );
}

const CUSTOMERS: &str = "\
[[customer]]
name = \"goneril\"
addresses = [\"198.51.100.10\"]
macs = [\"02:00:00:00:00:10\"]
allotment = { monthly_gb = 1 }

[[customer]]
name = \"regan\"
addresses = [\"198.51.100.20\"]
";

/// With a central PostgreSQL store the layer-2 events stay in the sensor's local store, next
/// to its quota events: `events` on the sensor lists them as without PostgreSQL, and the
/// traffic reaches PostgreSQL.
#[test]
fn with_a_central_store_events_still_lists_the_sensors_layer2_events() {
    let Some(pg) = crate::pg::PgCluster::start("guardev") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bwacct");
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[storage]\n",
        &format!(
            "[storage]\npostgres = \"{}\"\n",
            pg.socket_conninfo("bwacct")
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    let file = dir.path().join("poison.pcap");
    poisoning(&file);
    assert_eq!(replay(&cfg, &file)["layer-2 events"], 2.0);
    let ev = events(&cfg);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert!(ev
        .iter()
        .all(|e| e["kind"] == "arp_spoof" && e["ip"] == "198.51.100.1"));
    let spoofs = json(&cfg, &["events", "--kind", "arp_spoof", "--format", "json"]);
    assert_eq!(spoofs["events"].as_array().unwrap().len(), 2, "{spoofs}");
    let quota = json(&cfg, &["events", "--kind", "quota", "--format", "json"]);
    assert_eq!(quota["events"].as_array().unwrap().len(), 0, "{quota}");
    // the traffic is in PostgreSQL
    let rows = pg.psql("bwacct", "SELECT count(*) FROM samples");
    assert_ne!(rows.trim(), "0", "no sample reached PostgreSQL");
}

#[test]
fn a_bound_customers_address_from_other_macs_is_counted_as_spoofed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "", CUSTOMERS);
    let file = dir.path().join("spoofed.pcap");
    let goneril = HOSTS[0];
    {
        let mut p = Pcap::create(&file);
        let own = udp(goneril.0, GW, None, goneril.1, "198.51.100.1", 100);
        let back = udp(GW, goneril.0, None, "198.51.100.1", goneril.1, 100);
        // regan's VM sends with goneril's address, then another MAC does
        let from_regan = udp(HOSTS[1].0, GW, None, goneril.1, "198.51.100.1", 200);
        let from_other = udp(0x0200_0000_0021, GW, None, goneril.1, "198.51.100.1", 200);
        for i in 0..20 {
            p.frame(T + 1, i, &own);
            p.frame(T + 1, 100 + i, &back);
        }
        for i in 0..10 {
            p.frame(T + 2, i, &from_regan);
        }
        for i in 0..4 {
            p.frame(T + 11, i, &own);
        }
        for i in 0..5 {
            p.frame(T + 12, i, &from_other);
        }
        for i in 0..3 {
            p.frame(T + 21, i, &own);
        }
    }
    assert_eq!(replay(&cfg, &file)["layer-2 events"], 2.0);
    let ev = events(&cfg);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    for (e, (time, new, packets)) in ev.iter().zip([
        ("2024-01-01T00:00:02Z", "02:00:00:00:00:20", 10),
        ("2024-01-01T00:00:12Z", "02:00:00:00:00:21", 5),
    ]) {
        assert_eq!(e["kind"], "spoofed_source");
        assert_eq!(e["time"], time);
        assert_eq!(e["customer"], "goneril");
        assert_eq!(e["ip"], "198.51.100.10");
        assert_eq!(e["old_macs"], serde_json::json!(["02:00:00:00:00:10"]));
        assert_eq!(e["new_mac"], new);
        assert_eq!(e["macs"], serde_json::json!([new]));
        assert_eq!(e["packets"], packets);
        assert_eq!(e["bytes"], packets * 228);
    }
    assert_eq!(
        hook_lines(dir.path()),
        vec![
            "spoofed_source|198.51.100.10|02:00:00:00:00:10|02:00:00:00:00:20|goneril|10|2280||"
                .to_owned(),
            "spoofed_source|198.51.100.10|02:00:00:00:00:10|02:00:00:00:00:21|goneril|5|1140||"
                .to_owned(),
        ]
    );
    // Counted for the address as the IP headers say, and shown beside it.
    let legit = (20 + 4 + 3) * 128;
    let spoofed = 15 * 228;
    let rows = report_all(&cfg);
    assert_eq!(rows["198.51.100.10"]["tx_bytes"], legit + spoofed);
    let by_customer = json(
        &cfg,
        &[
            "report",
            "--by",
            "customer",
            "--day",
            "2024-01-01",
            "--format",
            "json",
        ],
    );
    let g = by_customer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["customer"] == "goneril")
        .unwrap()
        .clone();
    assert_eq!(g["tx_bytes"], legit + spoofed);
    assert_eq!(g["spoofed_bytes"], spoofed);
    assert_eq!(g["spoofed_packets"], 15);
    let r = by_customer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["customer"] == "regan")
        .unwrap()
        .clone();
    assert_eq!(r["spoofed_bytes"], 0);
    let q = json(&cfg, &["quota", "--at", "2024-01-02", "--format", "json"]);
    assert_eq!(q["rows"][0]["customer"], "goneril");
    assert_eq!(q["rows"][0]["used"], legit + spoofed + 20 * 128);
    assert_eq!(q["rows"][0]["spoofed_bytes"], spoofed);
    let table = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["quota", "--at", "2024-01-02"]),
    );
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|_| table.contains("spoofed")),
        "{table}"
    );
    assert!(table.contains("3.4 kB"), "{table}");
    let csv = run_ok(bwacct().arg("-c").arg(&cfg).args([
        "report",
        "--by",
        "customer",
        "--day",
        "2024-01-01",
        "--format",
        "csv",
    ]));
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("spoofed_bytes,spoofed_packets"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("goneril,") && l.ends_with(",3420,15")),
        "{csv}"
    );

    // The dashboard lists them, escaped, from the same store.
    let served = serve(&cfg);
    let addr = served.addr.as_str();
    let page = request(addr, "GET", "/events");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("spoofed_source") && html.contains("href=\"/customer/goneril\""),
        "{html}"
    );
    assert!(
        html.contains("10 packets, 2.2 KiB from 02:00:00:00:00:20 as 198.51.100.10"),
        "{html}"
    );
    let api = request(addr, "GET", "/api/v1/events?kind=spoofed_source&top=1").json();
    assert_eq!(api["events"].as_array().unwrap().len(), 1);
    assert_eq!(api["events"][0]["new_mac"], "02:00:00:00:00:21");
    let bad = request(addr, "GET", "/events?kind=%3Cscript%3E");
    assert_eq!(bad.status, 400);
    let bad = bad.text();
    assert!(
        !bad.contains("<script>") && bad.contains("&lt;script&gt;"),
        "{bad}"
    );
    assert_eq!(
        request(addr, "GET", "/api/v1/events?customer=nobody").status,
        404
    );
}

/// `bwacct serve` on a config's store, stopped on drop.
struct Served {
    child: std::process::Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(cfg: &Path) -> Served {
    let text = std::fs::read_to_string(cfg).unwrap();
    std::fs::write(cfg, format!("{text}\n[web]\nlisten = \"127.0.0.1:0\"\n")).unwrap();
    let mut child = bwacct()
        .arg("-c")
        .arg(cfg)
        .args(["--log", "info", "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bwacct serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("dashboard on http://").nth(1) {
                let _ = tx.send(rest.trim_end_matches('/').to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20));
    let served = Served {
        child,
        addr: addr.unwrap_or_default(),
    };
    assert!(
        !served.addr.is_empty(),
        "bwacct serve announced its address"
    );
    served
}

#[test]
fn clean_captures_raise_no_layer2_event_and_count_the_same() {
    for (dir, local) in [("", LOCAL), ("real", EVERYTHING)] {
        for f in captures(&data(dir)) {
            let (diffs, s, truth) = check_with(&f, &local, "[guard]\n");
            // the real captures' known differences from their truth, as without the guard
            let expected = crate::real_corpus::deviation(&f);
            assert_eq!(diffs, expected, "{}", f.display());
            assert_eq!(s["layer-2 events"], 0.0, "{}", f.display());
            if dir.is_empty() {
                let bad = check_stats(&f.display().to_string(), &s, &truth);
                assert!(bad.is_empty(), "{bad:#?}");
            }
        }
    }
}

/// Three hosts on a Linux bridge, each in its own namespace behind a veth port; `bwacct run`
/// captures on the bridge with the dashboard on. Host C sends gratuitous ARPs (arping) claiming
/// host B's address after B was seen using it: one ARP-spoofing event per interval they fall
/// in, shown by `/metrics`, `/now` and `/events` while running, and stored.
#[test]
fn live_gratuitous_arps_on_a_bridge_claiming_a_neighbours_address_are_arp_spoofing() {
    if !is_root() {
        eprintln!("SKIPPED: live capture on a bridge in network namespaces needs root (CI runs it as root)");
        return;
    }
    const INTERVAL: u64 = 2;
    let ns = Namespaces::new("l2", &["sw", "a", "b", "c"]);
    ns.sh(0, &["ip", "link", "add", "br0", "type", "bridge"]);
    ns.sh(0, &["ip", "link", "set", "br0", "up"]);
    let hosts = [
        (1, "pa", "02:00:00:00:0a:01", "198.51.100.1/24"),
        (2, "pb", "02:00:00:00:0b:02", "198.51.100.20/24"),
        (3, "pc", "02:00:00:00:0c:03", "198.51.100.30/24"),
    ];
    for (i, port, mac, addr) in hosts {
        sh(&[
            "ip", "link", "add", port, "netns", &ns.0[0], "type", "veth", "peer", "name", "eth0",
            "netns", &ns.0[i], "address", mac,
        ]);
        ns.sh(0, &["ip", "link", "set", port, "master", "br0", "up"]);
        ns.sh(i, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.sh(i, &["ip", "addr", "add", addr, "dev", "eth0"]);
        ns.sh(i, &["ip", "link", "set", "eth0", "up"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_config(dir.path(), "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("interval_s = 10", &format!("interval_s = {INTERVAL}"))
        .replace(
            "[accounting]",
            &format!(
                "[capture]\ninterfaces = [\"br0\"]\nthreads = 2\n[web]\nlisten = \"{LISTEN}\"\n[accounting]"
            ),
        );
    std::fs::write(&cfg, text).unwrap();
    let (run, log) = start_run_in(ns.exec(0), &cfg);

    // B talks to A: both are learnt from their ARP.
    let ping = ns
        .exec(2)
        .args(["ping", "-q", "-c", "2", "-i", "0.2", "198.51.100.1"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    std::thread::sleep(Duration::from_millis(300));
    // C claims B's address three times in 0.2 s (arping exits 1: nobody answers).
    let bucket = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / INTERVAL
    };
    let before = bucket();
    let out = ns
        .exec(3)
        .args([
            "timeout",
            "10",
            "arping",
            "-c",
            "3",
            "-W",
            "0.1",
            "-w",
            "1",
            "-U",
            "-S",
            "198.51.100.20",
            "-i",
            "eth0",
            "198.51.100.20",
        ])
        .output()
        .unwrap();
    let after = bucket();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 packets transmitted"),
        "arping: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The interval ends, the capture thread hands it over, the guard decides.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let spoofs = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("bwacct_guard_events_total{kind=\"arp_spoof\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let metrics = loop {
        let text = fetch_in(ns.exec(0), "/metrics");
        if spoofs(&text) > 0 {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event in time:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let now = fetch_in(ns.exec(0), "/now");
    assert!(
        now.contains("Layer 2") && now.contains("arp_spoof events"),
        "{now}"
    );
    let page = fetch_in(ns.exec(0), "/events");
    assert!(
        page.contains("198.51.100.20 02:00:00:00:0b:02 -&gt; 02:00:00:00:0c:03"),
        "{page}"
    );
    let summary = stop(run);
    assert!(summary.contains("dropped 0"), "{summary}");
    let log = log.lock().unwrap().join("\n");
    assert!(!log.contains("Kernel filter failed"), "{log}");

    let ev = events(&cfg);
    assert!(!ev.is_empty(), "no event; log:\n{log}");
    let intervals: BTreeSet<&str> = ev
        .iter()
        .map(|e| e["interval_start"].as_str().unwrap())
        .collect();
    assert_eq!(intervals.len(), ev.len(), "once per interval: {ev:#?}");
    if before == after {
        assert_eq!(ev.len(), 1, "{ev:#?}");
        assert!(
            metrics.contains("bwacct_guard_events_total{kind=\"arp_spoof\"} 1"),
            "{metrics}"
        );
    }
    for e in &ev {
        assert_eq!(e["kind"], "arp_spoof", "{ev:#?}");
        assert_eq!(e["ip"], "198.51.100.20");
        assert_eq!(e["old_macs"], serde_json::json!(["02:00:00:00:0b:02"]));
        assert_eq!(e["new_mac"], "02:00:00:00:0c:03");
        assert_eq!(e["hooks"], "done");
    }
    let hooks = hook_lines(dir.path());
    assert_eq!(hooks.len(), ev.len());
    assert!(hooks[0].starts_with("arp_spoof|198.51.100.20|02:00:00:00:0b:02|02:00:00:00:0c:03|"));
}
