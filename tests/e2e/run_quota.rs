//! `run` with customers, for real (root, network namespaces): a customer's traffic takes it
//! over its allotment, the hook fires and (with `shaping.auto`) its vif gets a TBF; a broken
//! configuration on SIGHUP is refused and the old one kept; a raised allotment on SIGHUP brings
//! it back to ok, fires the hook again and clears the shaping; no count is lost across reloads.

use crate::common::*;
use crate::live::{send_udp, sh, sink, start_run_logged, stop, Log, Netns};
use crate::quota::{hook, lines};
use crate::shaping::{classifier, root_qdisc};
use std::path::Path;
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn logged(log: &Log, text: &str) -> bool {
    log.lock().unwrap().iter().any(|l| l.contains(text))
}

fn write(cfg: &Path, dir: &Path, net: &Netns, gb: &str, classifier: &str) {
    let text = format!(
        "sensor = \"test\"\n\
         [capture]\ninterfaces = [\"{vif}\"]\n\
         [accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 1\n\
         [storage]\nsqlite = \"{db}\"\n\
         [service]\nuser = \"root\"\n\
         [[customer]]\nname = \"regan\"\naddresses = [\"198.51.100.20\"]\nvif = \"{vif}\"\nmark = 7\n\
         allotment = {{ monthly_gb = {gb} }}\nshape = {{ rate = \"1mbit\" }}\n\
         [shaping]\nuplink = \"up0\"\nauto = true\nclassifier = \"{classifier}\"\n\
         {hook}warn_percent = 100\n",
        vif = net.if_a,
        db = dir.join("bw.db").display(),
        hook = hook(&dir.join("hook.log")),
    );
    std::fs::write(cfg, text).unwrap();
}

fn hup(pid: u32) {
    sh(&["kill", "-HUP", &pid.to_string()]);
}

#[test]
fn run_checks_quotas_reloads_customers_and_shapes_automatically() {
    if !is_root() {
        eprintln!("SKIPPED: live capture and shaping in network namespaces need root (CI runs it as root)");
        return;
    }
    let net = Netns::new("runq");
    sh(&[
        "ip", "netns", "exec", &net.a, "ip", "link", "add", "name", "up0", "type", "veth", "peer",
        "name", "up0p",
    ]);
    let cls = classifier(|| net.exec(&net.a));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bwacct.toml");
    let hooks = dir.path().join("hook.log");
    write(&cfg, dir.path(), &net, "0.00005", cls);
    let (run, log) = start_run_logged(&net, &net.a, &cfg);

    // regan (in B) sends 100 datagrams of 1028 bytes: over its 50,000 bytes.
    let s = sink(&net, &net.a, "AF_INET", 100);
    std::thread::sleep(Duration::from_millis(300));
    send_udp(&net, &net.b, "AF_INET", "198.51.100.10", 100, 1000);
    assert!(s.wait_with_output().unwrap().status.success());
    wait_for("the over hook", || lines(&hooks).len() == 1);
    let first = lines(&hooks)[0].clone();
    let f: Vec<&str> = first.split(' ').collect();
    assert_eq!((f[0], f[1], f[2]), ("regan", "over", "ok"), "{first}");
    let used: u64 = f[3].parse().unwrap();
    assert!((50_000..=102_800).contains(&used), "{first}");
    assert_eq!(
        (f[4], f[6], f[7]),
        ("50000", net.if_a.as_str(), "env=over"),
        "{first}"
    );
    wait_for("the TBF on the vif", || {
        root_qdisc(net.exec(&net.a), &net.if_a) == "tbf"
    });
    assert_eq!(root_qdisc(net.exec(&net.a), "up0"), "htb");

    // A broken file is refused; the running configuration stays.
    std::fs::write(&cfg, "[accounting\nlocal = \n").unwrap();
    hup(run.id());
    wait_for("the refused reload", || logged(&log, "reload refused"));

    // A raised allotment: back to ok, the hook fires again, the shaping goes.
    write(&cfg, dir.path(), &net, "1", cls);
    hup(run.id());
    wait_for("the ok hook", || lines(&hooks).len() == 2);
    let second = lines(&hooks)[1].clone();
    assert!(second.starts_with("regan ok over "), "{second}");
    assert!(second.contains(" 1000000000 "), "{second}");
    wait_for("the TBF to go", || {
        root_qdisc(net.exec(&net.a), &net.if_a) != "tbf"
    });
    assert_ne!(root_qdisc(net.exec(&net.a), "up0"), "htb");

    // Counting went on through the reloads.
    let s = sink(&net, &net.a, "AF_INET", 50);
    std::thread::sleep(Duration::from_millis(300));
    send_udp(&net, &net.b, "AF_INET", "198.51.100.10", 50, 1000);
    assert!(s.wait_with_output().unwrap().status.success());
    std::thread::sleep(Duration::from_millis(1500));
    stop(run);
    let rows = report_all(&cfg);
    assert_eq!(rows["198.51.100.20"]["tx_bytes"], 150 * 1028);
    assert_eq!(rows["198.51.100.20"]["customer"], "regan");

    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["events", "--format", "json"]),
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = e["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{e}");
    assert_eq!(
        (
            events[0]["new_state"].as_str(),
            events[1]["new_state"].as_str()
        ),
        (Some("over"), Some("ok"))
    );
    assert!(
        events[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("allotment changed"),
        "{e}"
    );
    assert!(events.iter().all(|e| e["hooks"] == "done"), "{e}");
    assert_eq!(lines(&hooks).len(), 2);
}
