//! Shaping: the planned commands against golden files, then for real, as root, in network
//! namespaces made here: TCP throughput measured with iperf3 before, during and after
//! `shape apply` / `shape clear` — a TBF on a veth, and the Xen bridge method (TBF on the vif,
//! physdev mark + HTB class on the uplink) on a bridge.

use crate::common::*;
use crate::live::{sh, Namespaces, Netns};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CUSTOMERS: &str = "\
[[customer]]
name = \"goneril\"
addresses = [\"198.51.100.10\", \"198.51.100.64/28\", \"2001:db8:100:1::/64\"]
vif = \"vif1.0\"
mark = 5
allotment = { monthly_gb = 500 }
shape = { rate = \"1mbit\", peak = \"2mbit\", burst = \"40mb\", latency = \"50ms\" }

[[customer]]
name = \"regan\"
addresses = [\"198.51.100.20\"]
vif = \"vif2.0\"
mark = 12
shape = { rate = \"512kbit\" }
";

fn golden(name: &str, shaping: &str, customer: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!("{CUSTOMERS}\n[shaping]\n{shaping}"),
    );
    let out = run_ok(
        bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["shape", "plan", customer]),
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let path = data(&format!("shape/{name}.plan"));
    if std::env::var_os("BWACCT_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "plan differs from {} (BWACCT_BLESS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn planned_commands_match_the_golden_files() {
    golden(
        "bridge-fw-goneril",
        "uplink = \"peth0\"\nuplink_rate = \"1gbit\"\n",
        "goneril",
    );
    golden(
        "bridge-bpf-regan",
        "uplink = \"eth0\"\nuplink_rate = \"100mbit\"\nclassifier = \"bpf\"\n",
        "regan",
    );
    golden(
        "address-goneril",
        "method = \"address\"\nuplink = \"eth0\"\ndownlink = \"eth1\"\nuplink_rate = \"10gbit\"\n",
        "goneril",
    );
}

#[test]
fn planning_needs_a_known_customer_with_a_shape() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!(
            "{CUSTOMERS}\n[[customer]]\nname = \"cordelia\"\naddresses = [\"198.51.100.30\"]\n"
        ),
    );
    for (who, why) in [
        ("edmund", "no customer \"edmund\""),
        ("cordelia", "customer \"cordelia\" cannot be shaped"),
    ] {
        let out = bwacct()
            .arg("-c")
            .arg(&cfg)
            .args(["shape", "plan", who])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{err}");
    }
}

/// An iperf3 server for one test in `ns`; returns once it listens.
fn iperf_server(ns: &mut Command, bind: &str) -> std::process::Child {
    let mut child = ns
        .args(["iperf3", "-s", "-1", "--forceflush", "-B", bind])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("listening") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the iperf3 server did not start listening");
    }
    child
}

/// TCP throughput in bit/s received over 3 seconds (after 1 second left out): client in
/// `client`, server in `server` at `addr`; `reverse`: the server sends.
fn throughput(client: Command, mut server: Command, addr: &str, reverse: bool) -> f64 {
    let mut srv = iperf_server(&mut server, addr);
    let mut c = client;
    c.args([
        "iperf3",
        "-c",
        addr,
        "-t",
        "3",
        "-O",
        "1",
        "-J",
        "--connect-timeout",
        "5000",
    ]);
    if reverse {
        c.arg("-R");
    }
    let out = c.output().expect("iperf3 client");
    let _ = srv.kill();
    let _ = srv.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("iperf3: {}", String::from_utf8_lossy(&out.stdout)));
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3 result: {v}"))
}

fn shape(exec: Command, cfg: &Path, args: &[&str]) -> String {
    let mut c = exec;
    c.env("BWACCT_LOG", "warn")
        .arg(env!("CARGO_BIN_EXE_bwacct"))
        .arg("-c")
        .arg(cfg)
        .arg("shape")
        .args(args);
    String::from_utf8(run_ok(&mut c).stdout).unwrap()
}

fn stdout(mut c: Command) -> String {
    String::from_utf8(run_ok(&mut c).stdout).unwrap()
}

/// The kind of `dev`'s root qdisc.
pub fn root_qdisc(mut exec: Command, dev: &str) -> String {
    let out = run_ok(exec.args(["tc", "-j", "qdisc", "show", "dev", dev]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .and_then(|a| a.iter().find(|q| q["root"] == true))
        .and_then(|q| q["kind"].as_str())
        .unwrap_or("")
        .to_owned()
}

const RATE: f64 = 1e6;

fn mbit(v: f64) -> String {
    format!("{:.2} Mbit/s", v / 1e6)
}

fn assert_shaped(what: &str, v: f64) {
    eprintln!("{what}: {}", mbit(v));
    assert!(
        v <= 1.2 * RATE,
        "{what}: {} is over 1.2 × 1 Mbit/s",
        mbit(v)
    );
    assert!(
        v >= 0.5 * RATE,
        "{what}: {} is far below the rate: broken, not shaped",
        mbit(v)
    );
}

fn assert_free(what: &str, v: f64, before: f64) {
    eprintln!("{what}: {} (before shaping {})", mbit(v), mbit(before));
    // Twenty times the shaped rate: unmistakably unshaped, even on a busy 2-core machine.
    assert!(v >= 20.0 * RATE, "{what}: {} did not recover", mbit(v));
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    config(dir, &["198.51.100.0/24"], body)
}

#[test]
fn a_tbf_on_a_veth_holds_the_rate_and_clear_restores_it() {
    if !is_root() {
        eprintln!("SKIPPED: shaping in network namespaces needs root (CI runs it as root)");
        return;
    }
    let net = Netns::new("tbf");
    // An uplink for the HTB half of the plan (veth: this kernel may lack dummy devices).
    sh(&[
        "ip", "netns", "exec", &net.a, "ip", "link", "add", "name", "up0", "type", "veth", "peer",
        "name", "up0p",
    ]);
    sh(&[
        "ip", "netns", "exec", &net.a, "ip", "link", "set", "up0", "up",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[customer]]\nname = \"regan\"\naddresses = [\"198.51.100.20\"]\nvif = \"{}\"\nmark = 7\n\
             shape = {{ rate = \"1mbit\", peak = \"2mbit\", burst = \"32kb\", latency = \"50ms\" }}\n\
             [shaping]\nuplink = \"up0\"\nuplink_rate = \"1gbit\"\nclassifier = \"{}\"\n",
            net.if_a,
            classifier(|| net.exec(&net.a))
        ),
    );
    let to_b = || throughput(net.exec(&net.a), net.exec(&net.b), "198.51.100.20", false);
    let before = to_b();
    eprintln!("unshaped: {}", mbit(before));

    let applied = shape(net.exec(&net.a), &cfg, &["apply", "regan"]);
    assert_eq!(applied, "applied: 7 steps run, 0 already in effect\n");
    assert_eq!(root_qdisc(net.exec(&net.a), &net.if_a), "tbf");
    // Idempotent: nothing runs twice.
    let again = shape(net.exec(&net.a), &cfg, &["apply", "regan"]);
    assert_eq!(again, "applied: 0 steps run, 7 already in effect\n");
    assert_shaped("shaped to 1mbit", to_b());

    let cleared = shape(net.exec(&net.a), &cfg, &["clear", "regan"]);
    assert_eq!(cleared, "cleared: 7 steps undone, 0 already gone\n");
    assert_eq!(root_qdisc(net.exec(&net.a), &net.if_a), "noqueue");
    assert_eq!(root_qdisc(net.exec(&net.a), "up0"), "noqueue");
    let rules = stdout({
        let mut c = net.exec(&net.a);
        c.args(["iptables", "-t", "mangle", "-S", "FORWARD"]);
        c
    });
    assert!(!rules.contains("physdev"), "{rules}");
    assert_free("after clear", to_b(), before);
    let nothing = shape(net.exec(&net.a), &cfg, &["clear"]);
    assert_eq!(nothing, "cleared: 0 steps undone, 0 already gone\n");
}

/// The mark classifier to test with: `fw` where the kernel has it (Debian's, as a module), else
/// `bpf` (this machine's kernel is built without CONFIG_NET_CLS_FW: "TC classifier not found").
pub fn classifier(exec: impl Fn() -> Command) -> &'static str {
    let run = |args: &[&str]| {
        let mut c = exec();
        c.args(args);
        c.output().map(|o| o.status.success()).unwrap_or(false)
    };
    assert!(run(&[
        "ip",
        "link",
        "add",
        "name",
        "fwprobe",
        "type",
        "veth",
        "peer",
        "name",
        "fwprobe-p"
    ]));
    assert!(run(&[
        "tc", "qdisc", "add", "dev", "fwprobe", "root", "handle", "1:", "htb"
    ]));
    let fw = run(&[
        "tc", "filter", "add", "dev", "fwprobe", "parent", "1:", "protocol", "all", "prio", "1",
        "handle", "1", "fw", "classid", "1:1",
    ]);
    assert!(run(&["ip", "link", "del", "fwprobe"]));
    if fw {
        "fw"
    } else {
        eprintln!("NOTE: this kernel has no fw classifier (CONFIG_NET_CLS_FW unset): the mark is classified by the bpf classifier instead");
        "bpf"
    }
}

/// Bytes an HTB class has sent (`tc -s class show`).
fn class_sent(ns: &Namespaces, i: usize, dev: &str, classid: &str) -> u64 {
    let mut c = ns.exec(i);
    c.args(["tc", "-s", "class", "show", "dev", dev, "classid", classid]);
    let text = stdout(c);
    text.split_whitespace()
        .skip_while(|w| *w != "Sent")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Sent in {text}"))
}

#[test]
fn the_bridge_method_shapes_both_directions_through_vif_and_mark() {
    if !is_root() {
        eprintln!("SKIPPED: shaping in network namespaces needs root (CI runs it as root)");
        return;
    }
    // domU ── vif1.0 ┐
    //                br0 (dom0: mark by physdev, HTB on peth0)
    // peer ── peth0 ─┘
    let ns = Namespaces::new("br", &["domu", "dom0", "peer"]);
    let (domu, dom0, peer) = (0, 1, 2);
    for (dev, other) in [("vif1.0", domu), ("peth0", peer)] {
        sh(&[
            "ip",
            "link",
            "add",
            "name",
            dev,
            "netns",
            &ns.0[dom0],
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns.0[other],
        ]);
    }
    ns.sh(dom0, &["ip", "link", "add", "br0", "type", "bridge"]);
    for dev in ["vif1.0", "peth0"] {
        ns.sh(dom0, &["ip", "link", "set", dev, "master", "br0"]);
        ns.sh(dom0, &["ip", "link", "set", dev, "up"]);
    }
    ns.sh(dom0, &["ip", "link", "set", "br0", "up"]);
    if !Path::new("/proc/sys/net/bridge").exists() {
        let _ = Command::new("modprobe").arg("br_netfilter").status();
    }
    ns.sh(
        dom0,
        &["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"],
    );
    ns.sh(
        dom0,
        &["sysctl", "-qw", "net.bridge.bridge-nf-call-ip6tables=1"],
    );
    for (i, addr) in [(domu, "198.51.100.10/24"), (peer, "198.51.100.20/24")] {
        ns.sh(i, &["ip", "addr", "add", addr, "dev", "eth0"]);
        ns.sh(i, &["ip", "link", "set", "eth0", "up"]);
    }
    let classifier = classifier(|| ns.exec(dom0));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.10\"]\nvif = \"vif1.0\"\nmark = 5\n\
             shape = {{ rate = \"1mbit\", burst = \"32kb\" }}\n\
             [shaping]\nuplink = \"peth0\"\nuplink_rate = \"1gbit\"\nclassifier = \"{classifier}\"\n"
        ),
    );
    let from_customer = || throughput(ns.exec(domu), ns.exec(peer), "198.51.100.20", false);
    let to_customer = || throughput(ns.exec(domu), ns.exec(peer), "198.51.100.20", true);
    let (before_from, before_to) = (from_customer(), to_customer());
    eprintln!(
        "unshaped: from {} to {}",
        mbit(before_from),
        mbit(before_to)
    );

    let applied = shape(ns.exec(dom0), &cfg, &["apply", "goneril"]);
    assert_eq!(applied, "applied: 7 steps run, 0 already in effect\n");
    assert_shaped(
        "from the customer (physdev mark → HTB class on peth0)",
        from_customer(),
    );
    // The customer's class carried it: the mark was set by physdev and read by the filter.
    assert!(class_sent(&ns, dom0, "peth0", "1:5") > 300_000);
    assert_shaped("to the customer (TBF on vif1.0)", to_customer());

    let cleared = shape(ns.exec(dom0), &cfg, &["clear"]);
    assert_eq!(cleared, "cleared: 7 steps undone, 0 already gone\n");
    for dev in ["vif1.0", "peth0"] {
        assert_eq!(root_qdisc(ns.exec(dom0), dev), "noqueue", "{dev}");
    }
    for program in ["iptables", "ip6tables"] {
        let mut c = ns.exec(dom0);
        c.args([program, "-t", "mangle", "-S", "FORWARD"]);
        let rules = stdout(c);
        assert!(!rules.contains("physdev"), "{program}: {rules}");
    }
    assert_free(
        "from the customer after clear",
        from_customer(),
        before_from,
    );
    assert_free("to the customer after clear", to_customer(), before_to);
}

#[test]
fn the_address_method_shapes_by_source_address() {
    if !is_root() {
        eprintln!("SKIPPED: shaping in network namespaces needs root (CI runs it as root)");
        return;
    }
    // A host without a bridge: its own address 198.51.100.10 is the customer's; what it sends
    // leaves through the uplink and is matched by source address.
    let net = Netns::new("u32");
    sh(&[
        "ip", "netns", "exec", &net.a, "ip", "link", "add", "name", "down0", "type", "veth",
        "peer", "name", "down0p",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.10\"]\nmark = 9\n\
             shape = {{ rate = \"1mbit\", burst = \"32kb\" }}\n\
             [shaping]\nmethod = \"address\"\nuplink = \"{}\"\ndownlink = \"down0\"\nuplink_rate = \"10gbit\"\n",
            net.if_a
        ),
    );
    let to_b = || throughput(net.exec(&net.a), net.exec(&net.b), "198.51.100.20", false);
    let before = to_b();
    let devs = [net.if_a.as_str(), "down0"];
    let qdiscs = devs.map(|d| root_qdisc(net.exec(&net.a), d));
    let applied = shape(net.exec(&net.a), &cfg, &["apply", "goneril"]);
    assert_eq!(applied, "applied: 8 steps run, 0 already in effect\n");
    assert_eq!(
        devs.map(|d| root_qdisc(net.exec(&net.a), d)),
        ["htb", "htb"]
    );
    assert_shaped("from the customer's address (u32 src → HTB class)", to_b());
    let cleared = shape(net.exec(&net.a), &cfg, &["clear", "goneril"]);
    assert_eq!(cleared, "cleared: 8 steps undone, 0 already gone\n");
    assert_eq!(devs.map(|d| root_qdisc(net.exec(&net.a), d)), qdiscs);
    assert_free("after clear", to_b(), before);
}
