//! `[[customer]]`, `[alerts]` and `[shaping]`: what a good file means, and the error each
//! broken one gives (file, line, key, problem).

use super::*;
use crate::quantity::{Micros, Rate, Size};

const HEAD: &str =
    "[accounting]\nlocal = [\"198.51.100.0/24\", \"2001:db8:100::/56\"]\nipv6_prefix = 64\n";

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("/etc/bwacct/test.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn customers_alerts_and_shaping_are_understood() {
    let text = format!(
        "{HEAD}
[[customer]]
name = \"goneril\"
addresses = [\"198.51.100.10\", \"2001:db8:100:1::/64\"]
vif = \"vif1.0\"
mark = 5
allotment = {{ monthly_gb = 500, measure = \"max\" }}
shape = {{ rate = \"1mbit\", peak = \"2mbit\", burst = \"40mb\", latency = \"50ms\" }}
billing_day = 15

[[customer]]
name = \"regan\"
addresses = [\"198.51.100.16/28\"]
allotment = {{ p95_mbit = 2.5 }}

[[customer]]
name = \"cordelia\"
addresses = [\"198.51.100.40\"]
allotment = {{ monthly_gb = 0.25 }}

[alerts]
hooks = [[\"/usr/local/sbin/over-quota\", \"{{customer}}\", \"--state={{state}}\"]]
timeout_s = 5
warn_percent = 90

[shaping]
uplink = \"eth0\"
uplink_rate = \"100mbit\"
auto = true
classifier = \"bpf\"
"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.customers.len(), 3);
    let g = &c.customers[0];
    assert_eq!(
        g.networks,
        vec![
            "198.51.100.10/32".parse().unwrap(),
            "2001:db8:100:1::/64".parse().unwrap()
        ]
    );
    assert_eq!(
        (g.vif.as_deref(), g.mark, g.billing_day),
        (Some("vif1.0"), Some(5), 15)
    );
    assert_eq!(
        g.allotment,
        Some(Allotment::Volume {
            bytes: 500_000_000_000,
            measure: Measure::Max
        })
    );
    assert_eq!(
        g.shape,
        Some(Shape {
            rate: Rate(1_000_000),
            peak: Some(Rate(2_000_000)),
            burst: Size(40 << 20),
            latency: Micros(50_000)
        })
    );
    assert_eq!(
        c.customers[1].allotment,
        Some(Allotment::P95 {
            bits_per_s: 2_500_000
        })
    );
    assert_eq!(c.customers[1].billing_day, 1);
    assert_eq!(
        c.customers[2].allotment,
        Some(Allotment::Volume {
            bytes: 250_000_000,
            measure: Measure::Total
        })
    );
    assert_eq!(
        c.alerts.hooks,
        vec![vec![
            "/usr/local/sbin/over-quota".to_owned(),
            "{customer}".into(),
            "--state={state}".into()
        ]]
    );
    assert_eq!(
        (
            c.alerts.timeout.as_secs(),
            c.alerts.warn_percent,
            c.alerts.retries
        ),
        (5, 90.0, 3)
    );
    assert_eq!(c.shaping.uplink, "eth0");
    assert_eq!(c.shaping.uplink_rate, Rate(100_000_000));
    assert!(c.shaping.auto);
    assert_eq!(c.shaping.classifier, Classifier::Bpf);
    let d = c.describe();
    assert!(d.contains("customer    goneril 198.51.100.10/32, 2001:db8:100:1::/64, vif vif1.0, mark 5, allotment 500 GB/month (max), billing day 15, shape rate 1mbit peak 2mbit burst 40mb latency 50ms"), "{d}");
    assert!(d.contains("allotment 2.50 Mbit/s (95th percentile)"), "{d}");
    assert!(
        d.contains("shaping     bridge method, uplink eth0 at 100mbit"),
        "{d}"
    );
}

#[test]
fn defaults_without_customers() {
    let c = parse(HEAD).unwrap();
    assert!(c.customers.is_empty());
    assert_eq!(c.shaping.uplink, "peth0");
    assert_eq!(c.shaping.method, Method::Bridge);
    assert_eq!(c.shaping.classifier, Classifier::Fw);
    assert!(!c.shaping.auto);
    assert_eq!(
        (c.alerts.warn_percent, c.alerts.hysteresis_percent),
        (80.0, 5.0)
    );
    assert!(c.alerts.hooks.is_empty());
}

#[test]
fn broken_customers_name_file_line_key_and_problem() {
    let one = |body: &str| format!("{HEAD}[[customer]]\n{body}\n");
    let two = |a: &str, b: &str| format!("{HEAD}[[customer]]\n{a}\n[[customer]]\n{b}\n");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            two("name = \"goneril\"\naddresses = [\"198.51.100.10\"]", "name = \"regan\"\naddresses = [\"198.51.100.20\", \"198.51.100.10\"]"),
            vec!["test.toml:9:", "customer.addresses", "198.51.100.10/32 is already in customer \"goneril\" (line 6)"],
        ),
        (
            two("name = \"goneril\"\naddresses = [\"198.51.100.0/28\"]", "name = \"regan\"\naddresses = [\"198.51.100.10\"]"),
            vec!["test.toml:9:", "198.51.100.10/32 overlaps 198.51.100.0/28, already in customer \"goneril\" (line 6)"],
        ),
        (
            one("name = \"goneril\"\naddresses = [\"198.51.100.10\", \"198.51.100.10/32\"]"),
            vec!["test.toml:6:", "listed twice for this customer"],
        ),
        (
            two("name = \"goneril\"\naddresses = [\"198.51.100.10\"]", "name = \"goneril\"\naddresses = [\"198.51.100.11\"]"),
            vec!["test.toml:8:", "customer.name", "customer \"goneril\" is already defined at line 5"],
        ),
        (one("name = \"goneril\"\naddresses = [\"192.0.2.1\"]"), vec!["test.toml:6:", "192.0.2.1/32 is not inside accounting.local"]),
        (
            one("name = \"goneril\"\naddresses = [\"2001:db8:100:1::5\"]"),
            vec!["test.toml:6:", "finer than accounting.ipv6_prefix = 64", "list 2001:db8:100:1::/64 instead"],
        ),
        (one("name = \"goneril\"\naddresses = [\"198.51.100.1/24\"]"), vec!["test.toml:6:", "host bits set"]),
        (one("name = \"goneril\"\naddresses = [\"not an address\"]"), vec!["test.toml:6:", "is not a network"]),
        (one("name = \"goneril\""), vec!["test.toml:4:", "has no addresses"]),
        (one("name = \"-rf\"\naddresses = [\"198.51.100.1\"]"), vec!["test.toml:5:", "customer.name", "not a valid name"]),
        (one("name = \"a b\"\naddresses = [\"198.51.100.1\"]"), vec!["test.toml:5:", "not a valid name"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nvif = \"vif1; reboot\""), vec!["test.toml:7:", "customer.vif", "not a valid interface name"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nmark = 0"), vec!["test.toml:7:", "customer.mark", "out of range"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nmark = 40000"), vec!["test.toml:7:", "out of range: expected 1 to 32767"]),
        (
            two("name = \"g\"\naddresses = [\"198.51.100.1\"]\nmark = 3", "name = \"r\"\naddresses = [\"198.51.100.2\"]\nmark = 3"),
            vec!["test.toml:11:", "mark 3 is already customer \"g\"'s (line 7)"],
        ),
        (
            two("name = \"g\"\naddresses = [\"198.51.100.1\"]\nvif = \"vif1\"", "name = \"r\"\naddresses = [\"198.51.100.2\"]\nvif = \"vif1\""),
            vec!["test.toml:11:", "vif \"vif1\" is already customer \"g\"'s (line 7)"],
        ),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthly_gb = 1, p95_mbit = 2 }"), vec!["test.toml:7:", "customer.allotment", "not both"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nallotment = { measure = \"tx\" }"), vec!["test.toml:7:", "needs monthly_gb"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthly_gb = -1 }"), vec!["test.toml:7:", "monthly_gb must be a positive number"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthly_gb = 1, measure = \"both\" }"), vec!["test.toml:7:", "\"both\" is not a measure"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nallotment = { p95_mbit = 1, measure = \"tx\" }"), vec!["test.toml:7:", "measure goes with monthly_gb"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nallotment = { monthy_gb = 1 }"), vec!["test.toml:7:", "unknown field `monthy_gb`", "did you mean `monthly_gb`"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nbiling_day = 3"), vec!["test.toml:7:", "did you mean `billing_day`"]),
        (one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nbilling_day = 32"), vec!["test.toml:7:", "customer.billing_day", "out of range"]),
        (
            one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nvif = \"v\"\nmark = 1\nshape = { rate = \"2mbit\", peak = \"1mbit\" }"),
            vec!["test.toml:9:", "customer.shape", "peak 1mbit must be above rate 2mbit"],
        ),
        (
            one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nvif = \"v\"\nmark = 1\nshape = { rate = \"2\" }"),
            vec!["test.toml:9:", "\"2\" is not a rate"],
        ),
        (
            one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nvif = \"v\"\nmark = 1\nshape = { rate = \"1mbit\", burst = \"1kb\" }"),
            vec!["test.toml:9:", "burst 1kb is below 1600 bytes"],
        ),
        (
            one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nvif = \"v\"\nshape = { rate = \"1mbit\" }"),
            vec!["test.toml:4:", "has a shape but no mark"],
        ),
        (
            one("name = \"g\"\naddresses = [\"198.51.100.1\"]\nmark = 1\nshape = { rate = \"1mbit\" }"),
            vec!["test.toml:4:", "has a shape but no vif"],
        ),
    ];
    for (text, expected) in cases {
        let e = match parse(&text) {
            Ok(_) => panic!("accepted a broken config:\n{text}"),
            Err(e) => e,
        };
        for want in expected {
            assert!(
                e.contains(want),
                "config:\n{text}\nerror: {e}\nmissing: {want}"
            );
        }
    }
}

#[test]
fn broken_alerts_and_shaping() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[alerts]\nhooks = [[\"/bin/notify\", \"{custmer}\"]]\n",
            &[
                "test.toml:5:",
                "alerts.hooks",
                "unknown placeholder {custmer}",
            ],
        ),
        (
            "[alerts]\nhooks = [[]]\n",
            &["test.toml:5:", "a hook is an argv"],
        ),
        (
            "[alerts]\nhooks = [[\"\"]]\n",
            &["test.toml:5:", "the hook's program is empty"],
        ),
        (
            "[alerts]\nwarn_percent = 120\n",
            &["test.toml:5:", "alerts.warn_percent", "out of range"],
        ),
        (
            "[alerts]\ntimeout_s = 0\n",
            &["test.toml:5:", "alerts.timeout_s", "out of range"],
        ),
        (
            "[shaping]\nmethod = \"magic\"\n",
            &["test.toml:5:", "shaping.method", "not a shaping method"],
        ),
        (
            "[shaping]\nmethod = \"address\"\n",
            &["test.toml:5:", "needs shaping.downlink"],
        ),
        (
            "[shaping]\nuplink = \"-eth0\"\n",
            &[
                "test.toml:5:",
                "shaping.uplink",
                "not a valid interface name",
            ],
        ),
        (
            "[shaping]\nuplink_rate = \"fast\"\n",
            &["test.toml:5:", "shaping.uplink_rate", "not a rate"],
        ),
        (
            "[shaping]\nclassifier = \"u32\"\n",
            &["test.toml:5:", "not a classifier"],
        ),
        (
            "[shaping]\ndownlink = \"peth0\"\n",
            &["test.toml:5:", "must differ from the uplink"],
        ),
    ];
    for (tail, expected) in cases {
        let text = format!("{HEAD}{tail}");
        let e = match parse(&text) {
            Ok(_) => panic!("accepted a broken config:\n{text}"),
            Err(e) => e,
        };
        for want in *expected {
            assert!(
                e.contains(want),
                "config:\n{text}\nerror: {e}\nmissing: {want}"
            );
        }
    }
}
