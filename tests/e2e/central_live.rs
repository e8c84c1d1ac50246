//! A live sensor (`bwacct run` on a namespace veth, bounded UDP traffic) forwarding to a real
//! PostgreSQL server that goes away while it counts: it keeps counting into its local store,
//! is killed with SIGKILL during the outage, restarts with the database still down, and when
//! the database is back every flushed batch arrives exactly once: the central totals equal the
//! local store's, and at most the interval in flight at the kill is missing. Root only.

use crate::common::*;
use crate::durability::{counted, now, Sender};
use crate::live::{sh, start_run_logged, stop, Log, Netns};
use crate::pg::PgCluster;
use std::path::Path;
use std::time::{Duration, Instant};

fn logged(log: &Log, what: &str) -> bool {
    log.lock().unwrap().iter().any(|l| l.contains(what))
}

/// Waits (bounded) for `cond`.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    cond()
}

/// The same sensor's config without the central store: reports of the local store alone.
fn local_only(cfg: &Path) -> std::path::PathBuf {
    let text: String = std::fs::read_to_string(cfg)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("postgres ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = cfg.with_file_name("local.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_outage_and_a_sigkill_during_it_lose_nothing_beyond_the_interval_in_flight() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    let Some(pg) = PgCluster::start("live") else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE bw");
    let net = Netns::new("pgl");
    let dir = tempfile::tempdir().unwrap();
    // the live capture config (1-second intervals), with the central store over its socket
    let cfg = crate::durability::live_config(
        dir.path(),
        &net,
        &format!(
            "postgres = \"{}\"\nretry_on_stop_s = 2\n",
            pg.socket_conninfo("bw")
        ),
    );
    let local = local_only(&cfg);

    // 1. counting with the database up, then it goes away mid-traffic
    let (run, log) = start_run_logged(&net, &net.a, &cfg);
    let first = Sender::start(&net, 400, 0.005);
    std::thread::sleep(Duration::from_millis(1000));
    pg.stop_server();
    let mut sent = first.finish().len() as u64;
    assert!(
        wait_for(Duration::from_secs(20), || logged(
            &log,
            "PostgreSQL unreachable"
        )),
        "the forwarder noticed the outage"
    );
    // 2. more traffic, SIGKILL in the middle of it, database still down
    let second = Sender::start(&net, 400, 0.005);
    std::thread::sleep(Duration::from_millis(1200));
    let mut run = run;
    let t_kill = now();
    sh(&["kill", "-KILL", &run.id().to_string()]);
    run.wait().unwrap();
    let times = second.finish();
    let before_kill = times.iter().filter(|&&t| t < t_kill).count() as u64;
    let in_flight = times
        .iter()
        .filter(|&&t| t >= t_kill.floor() - 1.0 && t < t_kill)
        .count() as u64;
    sent += before_kill;
    // 3. restarted during the outage: counts and queues
    let (run, log) = start_run_logged(&net, &net.a, &cfg);
    sent += Sender::start(&net, 200, 0.005).finish().len() as u64;
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        wait_for(Duration::from_secs(20), || logged(
            &log,
            "PostgreSQL unreachable"
        )),
        "still queuing"
    );
    let queued: u64 = {
        let conn = rusqlite::Connection::open(dir.path().join("bw.db")).unwrap();
        conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    assert!(queued > 0, "batches wait in the outbox");
    // 4. the database is back: the queue drains, in order, once
    pg.start_server();
    assert!(
        wait_for(Duration::from_secs(60), || logged(
            &log,
            "PostgreSQL is back"
        )),
        "the forwarder reconnected"
    );
    stop(run);
    let central = counted(&cfg);
    let kept = counted(&local);
    let outbox: u64 = {
        let conn = rusqlite::Connection::open(dir.path().join("bw.db")).unwrap();
        conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    eprintln!(
        "central outage: sent {sent} (in flight at the kill {in_flight}), local store {kept}, PostgreSQL {central}, queued at the peak {queued}, left {outbox}"
    );
    assert_eq!(outbox, 0, "the outbox drained");
    assert_eq!(central, kept, "every flushed batch arrived exactly once");
    assert!(central <= sent, "double count: {central} > {sent}");
    assert!(
        sent - central <= in_flight,
        "lost {} > the {in_flight} in flight at the kill",
        sent - central
    );
    let batches: u64 = pg
        .psql("bw", "SELECT count(*) FROM batches")
        .parse()
        .unwrap();
    let distinct: u64 = pg
        .psql("bw", "SELECT count(DISTINCT (origin, seq)) FROM batches")
        .parse()
        .unwrap();
    assert_eq!(batches, distinct);
}
