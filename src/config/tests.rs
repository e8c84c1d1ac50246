//! Broken configurations, each with the error it must give (file, line, key, problem).

use super::*;

fn err(text: &str) -> String {
    match Config::parse(Path::new("/etc/bwacct/test.toml"), text) {
        Ok(_) => panic!("accepted a broken config:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const LOCAL: &str = "[accounting]\nlocal = [\"198.51.100.0/24\"]\n";

#[test]
fn a_minimal_config_gets_the_defaults() {
    let c = Config::parse(Path::new("x.toml"), LOCAL).unwrap();
    assert_eq!(c.accounting.interval_s, 60);
    assert_eq!(c.accounting.ipv6_prefix, 128);
    assert_eq!(c.accounting.count, CountMode::Ip);
    assert_eq!(c.capture.snaplen, 128);
    assert!(c.capture.promiscuous);
    assert_eq!(c.capture.threads, crate::capture::fanout::default_threads());
    assert!(!c.capture.pin);
    assert_eq!(c.capture.coalesce_ms, 500);
    assert_eq!(c.capture.fanout, crate::config::Fanout::Host);
    let t = Config::parse(
        Path::new("x.toml"),
        &format!("[capture]\nthreads = 4\npin = true\nfanout = \"flow\"\n{LOCAL}"),
    )
    .unwrap();
    assert_eq!((t.capture.threads, t.capture.pin), (4, true));
    assert_eq!(t.capture.fanout, crate::config::Fanout::Flow);
    assert!(t
        .describe()
        .contains("4 thread(s) per interface, pinned, fanout by flow"));
    assert_eq!(c.storage.sqlite, PathBuf::from("/var/lib/bwacct/bwacct.db"));
    let http = &c
        .accounting
        .ports
        .iter()
        .find(|(a, _)| *a == App::Http)
        .unwrap()
        .1;
    assert_eq!(http, &vec![80, 443, 8080]);
    assert!(c.describe().contains("local       198.51.100.0/24"));
    assert!(c.web.is_none(), "no dashboard unless [web] is set");
    let c = Config::parse(Path::new("x.toml"), &format!("[web]\n{LOCAL}")).unwrap();
    assert_eq!(c.web.unwrap().listen.to_string(), DEFAULT_LISTEN);
    let c = Config::parse(
        Path::new("x.toml"),
        &format!("[web]\nlisten = \"[::1]:9090\"\n{LOCAL}"),
    )
    .unwrap();
    assert_eq!(c.web.unwrap().listen.to_string(), "[::1]:9090");
    assert_eq!(c.storage.retention, crate::rollup::Retention::default());
    assert_eq!(c.report.timezone, chrono_tz::Tz::UTC);
}

#[test]
fn retention_and_time_zone_are_read() {
    let text = format!(
        "{LOCAL}[storage.retention]\nsamples_days = 7\nhourly_days = 90\ndaily_days = 0\n[report]\ntimezone = \"Europe/Berlin\"\n"
    );
    let c = Config::parse(Path::new("x.toml"), &text).unwrap();
    assert_eq!(c.storage.retention.samples_days, 7);
    assert_eq!(c.storage.retention.hourly_days, 90);
    assert_eq!(c.storage.retention.daily_days, 0);
    assert_eq!(c.report.timezone.name(), "Europe/Berlin");
    let d = c.describe();
    assert!(
        d.contains("retention   samples 7 days, hourly 90 days, daily forever"),
        "{d}"
    );
    assert!(d.contains("report      days in Europe/Berlin"), "{d}");
}

#[test]
fn broken_configs_name_file_line_key_and_problem() {
    let cases: &[(&str, &[&str])] = &[
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\nintervl_s = 60\n", &["test.toml:3:", "unknown field `intervl_s`", "did you mean `interval_s`"]),
        ("[acounting]\nlocal = []\n", &["test.toml:1:", "unknown field `acounting`", "did you mean `accounting`"]),
        ("[accounting]\nlocal = [\"198.51.100.0/33\"]\n", &["test.toml:2:", "accounting.local", "not a network"]),
        ("[accounting]\nlocal = [\"198.51.100.1/24\"]\n", &["test.toml:2:", "host bits set", "198.51.100.0/24"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\", \"198.51.100.128/25\"]\n", &["test.toml:2:", "overlaps"]),
        ("[accounting]\nlocal = []\n", &["test.toml:2:", "no local networks"]),
        ("[capture]\nsnaplen = 128\n", &["test.toml:", "local is missing"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 7\n", &["test.toml:3:", "accounting.interval_s", "does not divide a day"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = 0\n", &["test.toml:3:", "out of range"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\ninterval_s = \"60\"\n", &["test.toml:3:", "accounting.interval_s", "invalid type"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\ncount = \"bytes\"\n", &["test.toml:3:", "accounting.count", "expected \"ip\" or \"frame\""]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\nipv6_prefix = 129\n", &["test.toml:3:", "ipv6_prefix", "out of range"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[accounting.ports]\nhttp = [80, 70000]\n", &["test.toml:4:", "accounting.ports.http", "70000 is not a port"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[accounting.ports]\nhttp = [25]\n", &["test.toml:4:", "already in the mail list"]),
        ("sensor = \"dom0 a\"\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:1:", "sensor", "not a valid name"]),
        ("[capture]\ninterfaces = [\"eth0; rm -rf /\"]\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "capture.interfaces", "not a valid interface name"]),
        ("[capture]\nsnaplen = 10\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "capture.snaplen", "out of range"]),
        ("[capture]\ncoalesce_ms = 1001\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "capture.coalesce_ms", "out of range: expected 0 to 1000"]),
        ("[capture]\nthreads = 0\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "capture.threads", "out of range: expected 1 to 256"]),
        ("[capture]\nfanout = \"cpu\"\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "capture.fanout", "\"cpu\" is not a fanout"]),
        ("[capture]\npin = \"yes\"\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "capture.pin", "invalid type"]),
        ("[storage]\nsqlite = \"\"\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "storage.sqlite", "empty"]),
        ("[accounting\nlocal = []\n", &["test.toml:1:"]),
        ("[web]\nlisten = \"localhost\"\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "web.listen", "not an address and port"]),
        ("[web]\nlisen = \"127.0.0.1:80\"\n[accounting]\nlocal = [\"198.51.100.0/24\"]\n", &["test.toml:2:", "did you mean `listen`"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[report]\ntimezone = \"Europe/Berlinn\"\n", &["test.toml:4:", "report.timezone", "not a time zone"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[report]\ntimezon = \"UTC\"\n", &["test.toml:4:", "did you mean `timezone`"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[storage.retention]\nhourly_days = 10\n", &["test.toml:4:", "storage.retention.hourly_days", "hourly rollups would be kept 10 days, less than samples (35 days)"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[storage.retention]\nsamples_days = 0\n", &["test.toml:4:", "storage.retention.samples_days", "hourly rollups would be kept 400 days, less than samples (forever)"]),
        ("[accounting]\nlocal = [\"198.51.100.0/24\"]\n[storage.retention]\ndaily_days = -1\n", &["test.toml:4:", "out of range"]),
    ];
    for (text, expected) in cases {
        let e = err(text);
        for want in *expected {
            assert!(
                e.contains(want),
                "config:\n{text}\nerror: {e}\nmissing: {want}"
            );
        }
    }
}

#[test]
fn a_missing_file_is_named() {
    let e = Config::load(Path::new("/nonexistent/bwacct.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/bwacct.toml"), "{e}");
}

#[test]
fn the_guard_and_bound_macs_are_validated_with_file_line_and_key() {
    let c = Config::parse(Path::new("x.toml"), &format!("{LOCAL}[guard]\n")).unwrap();
    let g = c.guard.as_ref().unwrap();
    assert_eq!(
        (g.mac_flood_min, g.max_macs, g.learn_sample),
        (1000, 65_536, 1024)
    );
    assert_eq!((g.arp_reply_flood, g.binding_active_s), (100, 300));
    let d = c.describe();
    assert!(d.contains("guard       MAC flood at 1000"), "{d}");
    assert!(
        d.contains("ip or ip6 or arp"),
        "the kernel filter lets ARP in: {d}"
    );
    assert!(Config::parse(Path::new("x.toml"), LOCAL)
        .unwrap()
        .describe()
        .contains("guard       off"));
    let bound = format!(
        "{LOCAL}[guard]\nbindings = {{ \"198.51.100.1\" = \"02:00:00:00:00:01\" }}\n\
         [[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.10\"]\nmacs = [\"02:00:00:00:00:0A\", \"02-00-00-00-00-0b\"]\n"
    );
    let c = Config::parse(Path::new("x.toml"), &bound).unwrap();
    assert_eq!(c.customers[0].macs.len(), 2);
    assert!(c
        .describe()
        .contains("bound to 02:00:00:00:00:0a 02:00:00:00:00:0b"));
    assert!(c
        .describe()
        .contains("binding     198.51.100.1 is at 02:00:00:00:00:01"));

    let cases: &[(&str, &[&str])] = &[
        ("[guard]\nmac_flood_min = 1\n", &["test.toml:4:", "guard.mac_flood_min", "out of range"]),
        ("[guard]\nmax_macs = 100\nmac_flood_min = 200\n", &["test.toml:5:", "guard.mac_flood_min", "expected 2 to 100"]),
        ("[guard]\nlearn_sample = 3\n", &["test.toml:4:", "guard.learn_sample", "power of two"]),
        ("[guard]\nmac_flood_factor = 0.5\n", &["test.toml:4:", "guard.mac_flood_factor", "out of range"]),
        ("[guard]\nmac_flood_minn = 5\n", &["test.toml:4:", "did you mean `mac_flood_min`"]),
        ("[guard]\nbindings = { \"198.51.100.1\" = \"zz\" }\n", &["test.toml:4:", "guard.bindings", "not a MAC address"]),
        ("[guard]\nbindings = { \"203.0.113.1\" = \"02:00:00:00:00:01\" }\n", &["test.toml:4:", "not inside accounting.local"]),
        ("[guard]\nbindings = { \"gateway\" = \"02:00:00:00:00:01\" }\n", &["test.toml:4:", "not an IPv4 address"]),
        ("[guard]\nhooks = [[\"/bin/x\", \"{state}\"]]\n", &["test.toml:4:", "guard.hooks", "unknown placeholder {state}", "{new_mac}"]),
        ("[[customer]]\nname = \"g\"\naddresses = [\"198.51.100.10\"]\nmacs = [\"02:00:00:00:00:0a\"]\n", &["test.toml:6:", "customer.macs", "[guard] is not set"]),
        ("[guard]\n[[customer]]\nname = \"g\"\naddresses = [\"198.51.100.10\"]\nmacs = [\"01:00:5e:00:00:01\"]\n", &["test.toml:7:", "customer.macs", "not a unicast address"]),
        ("[guard]\n[[customer]]\nname = \"g\"\naddresses = [\"198.51.100.10\"]\nmacs = [\"02:00:00:00:00:0a\", \"02:00:00:00:00:0A\"]\n", &["test.toml:7:", "listed twice"]),
        ("[guard]\n[[customer]]\nname = \"g\"\naddresses = [\"198.51.100.10\"]\nmacs = []\n", &["test.toml:7:", "macs is empty"]),
    ];
    for (text, expected) in cases {
        let text = format!("{LOCAL}{text}");
        let e = err(&text);
        for want in *expected {
            assert!(
                e.contains(want),
                "config:\n{text}\nerror: {e}\nmissing: {want}"
            );
        }
    }
}
