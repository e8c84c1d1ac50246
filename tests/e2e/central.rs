//! The central PostgreSQL store, against a real server started by the test (`pg`): two sensors
//! replaying different captures at once into one database (totals per address are the sum of
//! both truths, per sensor each truth), a replay while the database is down (everything arrives
//! once it is back), exactly-once redelivery, migrations from an empty database and from the
//! previous schema version, and `check-config`'s warning about overlapping sensors.

use crate::common::*;
use crate::pg::PgCluster;
use bwacct::config::Postgres;
use bwacct::store::postgres::{migrations, BatchId, Delivery, PgStore};
use bwacct::store::{Query, Sample, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const LOCAL: [&str; 2] = ["198.51.100.0/24", "2001:db8:100::/56"];
const PASSWORD: &str = "correct-horse";

/// A sensor's config in its own directory: its local store, and `postgres` for the central one.
pub fn sensor_config(dir: &Path, sensor: &str, postgres: &str, extra_storage: &str) -> PathBuf {
    let cfg = config(dir, &LOCAL, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("sensor = \"test\"", &format!("sensor = \"{sensor}\""))
        .replace(
            "[storage]\n",
            &format!("[storage]\npostgres = \"{postgres}\"\n{extra_storage}"),
        );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// The truth files' hosts added together, as one truth.
fn summed_truth(truths: &[&Value]) -> Value {
    let maps: Vec<BTreeMap<String, Value>> = truths
        .iter()
        .map(|t| {
            t["hosts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    serde_json::json!({ "hosts": sum_rows(&maps) })
}

fn all_time(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["--from", "1970-01-01", "--to", "2200-01-01"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn rows(cfg: &Path, extra: &[&str]) -> BTreeMap<String, Value> {
    let args = all_time(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    report_rows(cfg, &args)
}

pub fn settings(conninfo: String) -> Postgres {
    Postgres {
        conninfo,
        password_file: None,
    }
}

#[test]
fn two_sensors_replay_at_once_into_one_database() {
    let Some(pg) = PgCluster::start("two") else {
        return;
    };
    pg.create_db("bwacct", "bwacct", PASSWORD);
    let root = tempfile::tempdir().unwrap();
    // over TCP with the password from a file, as a sensor on another machine would
    let pw = root.path().join("pgpass");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let conninfo = pg.tcp_conninfo("bwacct", "bwacct");
    let pw_line = format!("postgres_password_file = \"{}\"\n", pw.display());
    let captures = [
        ("dom0-a", data("realistic-eth-3k.pcap")),
        ("dom0-b", data("multiday-eth-3k.pcap")),
    ];
    let mut children = Vec::new();
    for (sensor, capture) in &captures {
        let dir = root.path().join(sensor);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = sensor_config(&dir, sensor, &conninfo, &pw_line);
        let child = bwacct()
            .arg("-c")
            .arg(&cfg)
            .arg("replay")
            .arg(capture)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push((cfg, child));
    }
    let mut intervals = 0.0;
    let mut cfgs = Vec::new();
    for (cfg, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = summary(&out.stdout);
        assert!(!s.contains_key("queued batches"), "all delivered: {s:?}");
        intervals += s["intervals"];
        cfgs.push(cfg);
    }
    let password_never_logged = !std::fs::read_to_string(&cfgs[0])
        .unwrap()
        .contains(PASSWORD);
    assert!(password_never_logged);
    // One batch per interval flushed, each recorded once.
    let batches: f64 = pg
        .psql("bwacct", "SELECT count(*) FROM batches")
        .parse()
        .unwrap();
    assert_eq!(batches, intervals);
    let truths: Vec<Value> = captures.iter().map(|(_, c)| truth_of(c)).collect();

    // A dashboard machine: no local store, the central one only.
    let reader_dir = root.path().join("reader");
    std::fs::create_dir_all(&reader_dir).unwrap();
    let reader = sensor_config(&reader_dir, "reader", &conninfo, &pw_line);
    assert!(!reader_dir.join("bw.db").exists());
    let all = rows(&reader, &[]);
    let diffs = diff_truth(&all, &summed_truth(&[&truths[0], &truths[1]]));
    assert!(diffs.is_empty(), "sum of both sensors: {diffs:#?}");
    for ((sensor, _), truth) in captures.iter().zip(&truths) {
        let one = rows(&reader, &["--sensor", sensor]);
        let diffs = diff_truth(&one, truth);
        assert!(diffs.is_empty(), "{sensor} alone: {diffs:#?}");
    }
    // The dashboard of that machine reads the central store too, per sensor or summed.
    let dashboard = std::fs::read_to_string(&reader).unwrap().replace(
        "[accounting]",
        "[web]\nlisten = \"127.0.0.1:0\"\n[accounting]",
    );
    std::fs::write(&reader, dashboard).unwrap();
    let srv = crate::web::Served::serve(tempfile::tempdir().unwrap(), reader.clone());
    let day_a = "/api/v1/hosts?day=2024-01-01";
    let api = |path: &str| -> BTreeMap<String, Value> {
        let r = srv.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["ip"].as_str().unwrap().to_owned(), r.clone()))
            .collect()
    };
    let diffs = diff_truth(&api(day_a), &truths[0]);
    assert!(diffs.is_empty(), "dashboard, {day_a}: {diffs:#?}");
    let diffs = diff_truth(&api(&format!("{day_a}&sensor=dom0-a")), &truths[0]);
    assert!(diffs.is_empty(), "dashboard, dom0-a: {diffs:#?}");
    assert!(api(&format!("{day_a}&sensor=dom0-b")).is_empty());
    // One busy host of the multi-day capture: its series from the central store sums to its
    // truth for its sensor, and to nothing for the other.
    let busiest = truths[1]["hosts"]
        .as_object()
        .unwrap()
        .iter()
        .max_by_key(|(_, t)| t["rx_bytes"].as_u64().unwrap_or(0))
        .map(|(ip, _)| ip.clone())
        .unwrap();
    let days = "from=2026-10-24&to=2026-11-03&step=3600";
    for (sensor, truth) in [
        ("dom0-b", &truths[1]["hosts"][&busiest]),
        ("dom0-a", &Value::Null),
    ] {
        let path = format!("/api/v1/hosts/{busiest}/series?{days}&sensor={sensor}");
        let r = srv.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let series = r.json();
        let points = series["points"].as_array().unwrap();
        assert_eq!(points.len(), 240, "{path}");
        for f in ["tx_bytes", "rx_bytes", "tx_packets", "rx_packets"] {
            let sum: u64 = points.iter().map(|p| p[f].as_u64().unwrap()).sum();
            assert_eq!(sum, truth[f].as_u64().unwrap_or(0), "{path} {f}");
        }
    }
    drop(srv);
    // The same host's graph, drawn from the central store.
    let png = root.path().join("host.png");
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&reader)
            .args([
                "graph",
                "--ip",
                &busiest,
                "--from",
                "2026-10-24",
                "--to",
                "2026-11-03",
                "--sensor",
                "dom0-b",
                "--out",
            ])
            .arg(&png),
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 1000,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The multi-day capture's whole days were rolled up centrally and answer the same.
    let daily: u64 = pg
        .psql("bwacct", "SELECT count(DISTINCT ts) FROM daily")
        .parse()
        .unwrap();
    assert!(daily >= 7, "daily rollups in PostgreSQL: {daily}");
    // Both sensors declared the same networks: check-config names the other one.
    let out = bwacct()
        .arg("-c")
        .arg(&cfgs[1])
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: sensors dom0-b and dom0-a both account 198.51.100.0/24"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(
        described.contains(&format!(
            "central     postgres host=127.0.0.1 port={} dbname=bwacct user=bwacct",
            pg.port
        )),
        "{described}"
    );
}

#[test]
fn a_replay_while_the_database_is_down_delivers_everything_once_it_is_back() {
    let Some(pg) = PgCluster::start("down") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bw");
    let dir = tempfile::tempdir().unwrap();
    let capture = data("multiday-eth-3k.pcap");
    let cfg = sensor_config(
        dir.path(),
        "dom0-a",
        &pg.socket_conninfo("bw"),
        "retry_on_stop_s = 120\n",
    );
    pg.stop_server();
    let child = bwacct()
        .arg("-c")
        .arg(&cfg)
        .args(["--log", "info", "replay"])
        .arg(&capture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Counting goes on into the local store meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let local = dir.path().join("bw.db");
    while !local.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    pg.start_server();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("PostgreSQL unreachable"), "{err}");
    assert!(err.contains("PostgreSQL is back"), "{err}");
    let s = summary(&out.stdout);
    let batches: f64 = pg
        .psql("bw", "SELECT count(*) FROM batches")
        .parse()
        .unwrap();
    assert_eq!(batches, s["intervals"], "every interval once");
    let diffs = diff_truth(&rows(&cfg, &[]), &truth_of(&capture));
    assert!(diffs.is_empty(), "{diffs:#?}");
}

pub fn one_sample(sensor: &str, start: i64, host: &str, bytes: u64) -> Sample {
    let mut usage = bwacct::usage::Usage::default();
    usage.0[0] = bytes;
    usage.0[1] = 1;
    Sample {
        sensor: sensor.into(),
        start,
        interval_s: 60,
        hosts: vec![(host.parse().unwrap(), usage)],
        ..Default::default()
    }
}

fn tx_bytes(store: &PgStore, sensor: Option<&str>) -> u64 {
    store
        .usage_by_host(&Query {
            from: 0,
            to: i64::MAX,
            sensor: sensor.map(str::to_owned),
        })
        .unwrap()
        .iter()
        .map(|(_, u)| u.0[0])
        .sum()
}

#[test]
fn a_redelivered_batch_is_not_counted_twice() {
    let Some(pg) = PgCluster::start("redeliver") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bw");
    let mut store = PgStore::open(&settings(pg.socket_conninfo("bw"))).unwrap();
    let id = BatchId { origin: 42, seq: 7 };
    let s = one_sample("dom0-a", 1_800_000_000, "198.51.100.7", 1000);
    assert_eq!(store.deliver(id, &s).unwrap(), Delivery::Written);
    // the acknowledgement was lost (a kill before the outbox forgot it): delivered again
    assert_eq!(store.deliver(id, &s).unwrap(), Delivery::AlreadyThere);
    // the same sequence number from another outbox (a recreated local store) is new
    let other = BatchId { origin: 43, seq: 7 };
    assert_eq!(store.deliver(other, &s).unwrap(), Delivery::Written);
    // a batch from another sensor with the same ids is new too
    let b = one_sample("dom0-b", 1_800_000_000, "198.51.100.7", 5);
    assert_eq!(store.deliver(id, &b).unwrap(), Delivery::Written);
    assert_eq!(tx_bytes(&store, None), 2005);
    assert_eq!(tx_bytes(&store, Some("dom0-a")), 2000);
    assert_eq!(tx_bytes(&store, Some("dom0-b")), 5);
    // late samples below a rollup watermark are added to the levels in the same transaction
    assert_eq!(
        store
            .roll_up(1_800_000_000 + 2 * 86_400, usize::MAX)
            .unwrap(),
        2
    );
    let late = one_sample("dom0-b", 1_800_000_060, "198.51.100.7", 10);
    assert_eq!(
        store.deliver(BatchId { origin: 1, seq: 1 }, &late).unwrap(),
        Delivery::Written
    );
    let from_levels = store
        .usage_by_host(&Query {
            from: 1_800_000_000 - 1_800_000_000 % 86_400,
            to: 1_800_000_000 - 1_800_000_000 % 86_400 + 86_400,
            sensor: None,
        })
        .unwrap();
    assert_eq!(
        from_levels[0].1 .0[0], 2015,
        "the daily level has the late sample"
    );
}

#[test]
fn migrations_run_on_an_empty_database_and_on_the_previous_version() {
    let Some(pg) = PgCluster::start("migrate") else {
        return;
    };
    let known = migrations().len() as i64;
    pg.psql("postgres", "CREATE DATABASE fresh");
    let fresh = PgStore::open(&settings(pg.socket_conninfo("fresh"))).unwrap();
    assert_eq!(fresh.schema_version().unwrap(), known);
    // opening again changes nothing
    drop(fresh);
    let again = PgStore::open(&settings(pg.socket_conninfo("fresh"))).unwrap();
    assert_eq!(again.schema_version().unwrap(), known);

    // A database as the previous version left it, with data in it.
    pg.psql("postgres", "CREATE DATABASE old");
    let previous = &migrations()[..known as usize - 1];
    let mut sql = String::from("CREATE TABLE schema_version (version INTEGER NOT NULL);\n");
    for m in previous {
        sql.push_str(m);
    }
    sql.push_str(&format!(
        "INSERT INTO schema_version VALUES ({});
         INSERT INTO sensors (name, first_seen, last_seen) VALUES ('old', 1800000000, 1800000000);
         INSERT INTO hosts (addr) VALUES ('198.51.100.9');
         INSERT INTO samples (ts, sensor_id, host_id, interval_s, tcp_tx_bytes, tcp_tx_packets)
           VALUES (1800000000, 1, 1, 60, 777, 3);
         INSERT INTO capture_stats (ts, sensor_id, interval_s, packets) VALUES (1800000000, 1, 60, 3);",
        known - 1
    ));
    pg.psql("old", &sql);
    assert_eq!(pg.psql("old", "SELECT to_regclass('monthly') IS NULL"), "t");
    // a reader refuses a database a sensor has not migrated yet
    let e = PgStore::open_read_only(&settings(pg.socket_conninfo("old")))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("start a sensor"), "{e}");
    let mut store = PgStore::open(&settings(pg.socket_conninfo("old"))).unwrap();
    assert_eq!(store.schema_version().unwrap(), known);
    assert_eq!(
        pg.psql("old", "SELECT to_regclass('hourly_by_host') IS NOT NULL"),
        "t"
    );
    assert_eq!(
        pg.psql(
            "old",
            "SELECT to_regclass('monthly_by_host') IS NOT NULL AND to_regclass('capture_stats_monthly') IS NOT NULL"
        ),
        "t"
    );
    assert_eq!(tx_bytes(&store, Some("old")), 777);
    store
        .deliver(
            BatchId { origin: 9, seq: 1 },
            &one_sample("old", 1_800_000_060, "198.51.100.9", 3),
        )
        .unwrap();
    assert_eq!(tx_bytes(&store, None), 780);
    // a database newer than this bwacct is refused, not misread
    pg.psql(
        "old",
        &format!("UPDATE schema_version SET version = {}", known + 1),
    );
    let e = PgStore::open(&settings(pg.socket_conninfo("old")))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("newer than this bwacct knows"), "{e}");
}

#[test]
fn quota_sums_a_customer_seen_by_two_sensors() {
    let Some(pg) = PgCluster::start("quota") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bw");
    let root = tempfile::tempdir().unwrap();
    let capture = data("realistic-eth-3k.pcap");
    let truth = truth_of(&capture);
    let customer = "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.1\"]\n\
                    allotment = { monthly_gb = 0.0004 }\n";
    let with_customer = |dir: &Path, sensor: &str| {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = sensor_config(dir, sensor, &pg.socket_conninfo("bw"), "");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("{text}\n{customer}")).unwrap();
        cfg
    };
    // Two sensors see the same customer's address (one after the other, as two SPAN ports
    // of the same traffic would be an operator's error, but the sums show what each saw).
    let mut changes = Vec::new();
    for sensor in ["dom0-a", "dom0-b"] {
        let cfg = with_customer(&root.path().join(sensor), sensor);
        let out = run_ok(bwacct().arg("-c").arg(&cfg).arg("replay").arg(&capture));
        changes.push(summary(&out.stdout)["quota changes"]);
    }
    let one: u64 = ["tx_bytes", "rx_bytes"]
        .iter()
        .map(|f| truth["hosts"]["198.51.100.1"][f].as_u64().unwrap())
        .sum();
    assert_eq!(one, 254_403);
    let reader = with_customer(&root.path().join("reader"), "reader");
    let out = run_ok(bwacct().arg("-c").arg(&reader).args([
        "quota",
        "--at",
        "2024-01-01T12:00:00Z",
        "--format",
        "json",
    ]));
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    let g = &q["rows"][0];
    assert_eq!(g["customer"], "goneril", "{q}");
    assert_eq!(g["used"], 2 * one, "{q}");
    assert_eq!(g["state"], "over", "{q}");
    // Alone, dom0-a's share stays under the 400,000-byte allotment; the sum of both is over
    // it, and the second sensor's quota check (reading PostgreSQL) saw that.
    assert_eq!(changes, vec![0.0, 1.0], "quota changes per replay");
    // `report --by customer` sums both sensors too, and shows one with --sensor.
    for (extra, want) in [(vec![], 2 * one), (vec!["--sensor", "dom0-b"], one)] {
        let mut args = vec!["report", "--day", "2024-01-01", "--by", "customer"];
        args.extend(extra);
        args.extend(["--format", "json"]);
        let out = run_ok(bwacct().arg("-c").arg(&reader).args(&args));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["customer"] == "goneril")
            .unwrap_or_else(|| panic!("{r}"));
        let total = row["tx_bytes"].as_u64().unwrap() + row["rx_bytes"].as_u64().unwrap();
        assert_eq!(total, want, "{args:?}");
    }
}
