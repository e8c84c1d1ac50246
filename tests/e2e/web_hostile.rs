//! Hostile names through every page of the dashboard over real HTTP on loopback: customer
//! names, a configured host name and an interface name full of markup, quotes and newlines,
//! which the config would refuse. The server runs in this process, built from the library with
//! those names, so that the escaping is tested on its own (input validation is the other
//! guard): HTML shows them as text, JSON and SVG carry them exactly, `/metrics` stays parseable,
//! and error messages that echo the request escape it too.

use crate::web::{request, Response};
use bwacct::capture::live::InterfaceStats;
use bwacct::classify::Class;
use bwacct::config::{self, Customer};
use bwacct::counters::{Counters, Layout};
use bwacct::customer::Customers;
use bwacct::names::Names;
use bwacct::parse::Proto;
use bwacct::status::{Source, Status};
use bwacct::store::sqlite::SqliteStore;
use bwacct::store::{Sample, Store};
use bwacct::usage::{Dir, Host, Usage};
use bwacct::web::html::url_part;
use bwacct::web::{self, Context};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

const CUSTOMER: &str = "<script>alert(1)</script>\"'&amp;";
/// Ends an HTML attribute and a Prometheus label, and starts a new sample line.
const CUSTOMER2: &str = "x\"} 1\nevil_metric{a=\"b\"} 2\n\"><img src=x onerror=alert(2)>";
const STATIC_NAME: &str = "<b>static</b><svg onload=alert(3)>";
const INTERFACE: &str = "<i>eth0</i>\"\nevil_interface 1";
/// 2024-01-01T00:00:00Z
const DAY: i64 = 1_704_067_200;
/// Stored hosts in 2001:db8:1::/64: one more than a selection may sum.
const CROWD: u32 = 4097;

/// Raw markup that must never appear in a page (the layout's own tags differ).
const MARKUP: [&str; 6] = [
    "<script>",
    "<img src=x",
    "<b>",
    "<i>",
    "<svg",
    "onerror=alert(2)>",
];

fn usage(bytes: u64) -> Usage {
    let mut u = Usage::default();
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, bytes);
    u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 1);
    u
}

fn customer(name: &str, net: &str) -> Customer {
    Customer {
        name: name.into(),
        networks: vec![net.parse().unwrap()],
        vif: None,
        mark: None,
        allotment: None,
        shape: None,
        billing_day: 1,
        macs: Vec::new(),
    }
}

/// The dashboard on 127.0.0.1, served from a runtime on its own thread until dropped.
struct InProcess {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn start() -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bw.db");
        let mut hosts: Vec<(Host, Usage)> = vec![
            ("198.51.100.1".parse().unwrap(), usage(3_000_000)),
            ("198.51.100.2".parse().unwrap(), usage(2_000_000)),
            ("198.51.100.3".parse().unwrap(), usage(1_000_000)),
        ];
        for i in 1..=CROWD {
            hosts.push((format!("2001:db8:1::{i:x}").parse().unwrap(), usage(100)));
        }
        let sample = Sample {
            sensor: "test".into(),
            start: DAY,
            interval_s: 60,
            hosts,
            ..Default::default()
        };
        SqliteStore::open(&db).unwrap().write(&sample).unwrap();

        let customers = Arc::new(Customers::new(vec![
            customer(CUSTOMER, "198.51.100.1/32"),
            customer(CUSTOMER2, "198.51.100.2/32"),
        ]));
        let names = Names::start(
            &config::Names {
                fixed: vec![("198.51.100.3".parse().unwrap(), STATIC_NAME.into())],
                ..Default::default()
            },
            Arc::clone(&customers),
        )
        .unwrap();
        let counters = Counters::new(Layout {
            nets: vec!["198.51.100.0/24".parse().unwrap()],
            ipv6_prefix: 128,
            max_hosts: 1024,
            direct_max_bits: 16,
        });
        let interface = InterfaceStats {
            interface: INTERFACE.into(),
            ..Default::default()
        };
        let status = Arc::new(Status::new(
            Source::Live {
                counters,
                interfaces: vec![Arc::new(interface)],
            },
            DAY,
        ));
        status.observe(&sample);
        let ctx = Context::new(
            Box::new(move || Ok(Box::new(SqliteStore::open_read_only(&db)?) as Box<dyn Store>)),
            status,
            customers,
        )
        .with_names(Arc::new(names));

        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(web::serve(listener, Arc::new(ctx), async {
                let _ = stopped.await;
            }))
            .unwrap();
        });
        InProcess {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Response {
        request(&self.addr, "GET", path)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `name` as the pages escape it.
fn escaped(name: &str) -> String {
    bwacct::web::html::esc(name).to_string()
}

fn no_markup(r: &Response, what: &str) {
    let text = r.text();
    for bad in MARKUP {
        assert!(!text.contains(bad), "{what} shows {bad:?}:\n{text}");
    }
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
}

#[test]
fn hostile_names_are_escaped_in_every_page_and_error() {
    let srv = InProcess::start();

    // HTML pages: the names as text, the links to them percent-encoded and working.
    let index = srv.get("/?day=2024-01-01&top=10");
    assert_eq!(index.status, 200);
    no_markup(&index, "the top-talkers page");
    let html = index.text();
    for name in [CUSTOMER, CUSTOMER2] {
        let link = format!("/customer/{}", url_part(name));
        assert!(
            html.contains(&format!("<a href=\"{link}\">{}</a>", escaped(name))),
            "{name:?} not linked: {html}"
        );
        let page = srv.get(&link);
        assert_eq!(page.status, 200, "{link}");
        no_markup(&page, "a customer's page");
        assert!(page.text().contains(&format!("<h1>{}</h1>", escaped(name))));
        assert!(page.text().contains(&format!(
            "<img src=\"/graph.png?customer={}&amp;window=day\"",
            url_part(name)
        )));
    }
    assert!(html.contains(&format!(
        "<span class=\"dns\">{}</span>",
        escaped(STATIC_NAME)
    )));
    let host = srv.get("/ip/198.51.100.3");
    no_markup(&host, "a host's page");
    assert!(host
        .text()
        .contains(&format!("<h1>198.51.100.3 ({})</h1>", escaped(STATIC_NAME))));
    let now = srv.get("/now");
    no_markup(&now, "the now page");
    for shown in [
        format!("<dt>interface {}</dt>", escaped(INTERFACE)),
        format!("<td class=\"t\">{}</td>", escaped(STATIC_NAME)),
        format!("<td class=\"t\">{}</td>", escaped(CUSTOMER)),
    ] {
        assert!(now.text().contains(&shown), "{shown} not on /now");
    }

    // Errors that echo what was asked.
    for (path, status) in [
        ("/customer/%3Cscript%3Ealert(4)%3C%2Fscript%3E", 404),
        ("/?day=%3Cscript%3Ealert(5)%3C%2Fscript%3E", 400),
        (
            "/graph.png?ip=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E",
            400,
        ),
        ("/graph.svg?customer=%3Cb%3E", 404),
        ("/ip/%3Csvg%20onload%3Dalert(6)%3E", 400),
        ("/now?x=%3Cscript%3E", 200),
        ("/static/%3Cscript%3E", 404),
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        no_markup(&r, path);
    }
    let r = srv.get("/customer/%3Cscript%3Ealert(4)%3C%2Fscript%3E");
    assert!(r
        .text()
        .contains("no customer &quot;&lt;script&gt;alert(4)&lt;/script&gt;&quot;"));

    // SVG: well-formed, the title exactly the name.
    for (query, title) in [
        (
            format!("customer={}", url_part(CUSTOMER)),
            CUSTOMER.to_owned(),
        ),
        (
            format!("customer={}", url_part(CUSTOMER2)),
            CUSTOMER2.to_owned(),
        ),
        (
            "ip=198.51.100.3".to_owned(),
            format!("198.51.100.3 ({STATIC_NAME})"),
        ),
    ] {
        let svg = srv.get(&format!("/graph.svg?{query}&day=2024-01-01"));
        assert_eq!(svg.status, 200, "{query}");
        assert!(!svg.text().contains("<script") && !svg.text().contains("<b>"));
        let texts = svg_texts(&svg.text());
        assert!(
            texts.iter().any(|t| t.trim() == title),
            "{title:?} not in {texts:?}"
        );
    }

    // JSON: the names exactly, as strings.
    let customers = srv.get("/api/v1/customers").json();
    let listed: BTreeSet<&str> = customers["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, BTreeSet::from([CUSTOMER, CUSTOMER2]));
    let hosts = srv.get("/api/v1/hosts?day=2024-01-01&top=3").json();
    let row = |ip: &str| -> Value {
        hosts["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ip"] == ip)
            .cloned()
            .unwrap_or_else(|| panic!("no {ip} in {hosts}"))
    };
    assert_eq!(row("198.51.100.1")["customer"], CUSTOMER);
    assert_eq!(row("198.51.100.2")["name"], CUSTOMER2);
    assert_eq!(row("198.51.100.3")["name"], STATIC_NAME);
    let status = srv.get("/api/v1/status").json();
    assert_eq!(status["status"]["interfaces"][0]["name"], INTERFACE);
    let busiest = &status["busiest"];
    assert_eq!(busiest[2]["name"], STATIC_NAME, "{busiest}");
    let series = srv.get(&format!(
        "/api/v1/customers/{}/series?day=2024-01-01",
        url_part(CUSTOMER2)
    ));
    assert_eq!(series.json()["name"], CUSTOMER2);
    let missing = srv.get("/api/v1/customers/%3Cscript%3Ealert(7)%3C%2Fscript%3E/series");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        missing.json()["error"],
        "no customer \"<script>alert(7)</script>\""
    );

    // /metrics: every line parses; the labels hold the names exactly; no injected series.
    let metrics = srv.get("/metrics").text();
    let mut labels = Vec::new();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (name, l) = sample_line(line).unwrap_or_else(|| panic!("unparseable: {line:?}"));
        assert!(name.starts_with("bwacct_"), "an injected series: {line:?}");
        labels.extend(l);
    }
    for (key, value) in [
        ("customer", CUSTOMER),
        ("customer", CUSTOMER2),
        ("interface", INTERFACE),
    ] {
        assert!(
            labels.iter().any(|(k, v)| k == key && v == value),
            "no {key}={value:?} in {labels:?}"
        );
    }
}

/// The text of every `<text>` in an SVG (which must be well-formed), entities resolved.
fn svg_texts(svg: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    loop {
        let event = reader.read_event().unwrap_or_else(|e| {
            panic!(
                "the SVG is not well-formed at {}: {e}",
                reader.buffer_position()
            )
        });
        match event {
            Event::Eof => return out,
            Event::Start(e) if e.name().as_ref() == b"text" => current = Some(String::new()),
            Event::End(e) if e.name().as_ref() == b"text" => out.extend(current.take()),
            Event::Text(t) => {
                if let Some(c) = &mut current {
                    c.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(c) = &mut current {
                    let entity = format!("&{};", r.decode().unwrap());
                    c.push_str(&quick_xml::escape::unescape(&entity).expect("a known entity"));
                }
            }
            _ => {}
        }
    }
}

/// A Prometheus text sample line: its metric name and labels (unescaped).
fn sample_line(line: &str) -> Option<(String, Vec<(String, String)>)> {
    fn ident(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
        let mut s = String::new();
        while let Some(&c) = chars.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            s.push(c);
            chars.next();
        }
        s
    }
    let mut chars = line.chars().peekable();
    let name = ident(&mut chars);
    if name.is_empty() {
        return None;
    }
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            let key = ident(&mut chars);
            if key.is_empty() || chars.next()? != '=' || chars.next()? != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        _ => return None,
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.next()? {
                ',' => {}
                '}' => break,
                _ => return None,
            }
        }
    }
    if chars.next()? != ' ' {
        return None;
    }
    chars.collect::<String>().parse::<f64>().ok()?;
    Some((name, labels))
}

#[test]
fn a_selection_past_the_host_cap_is_a_400_in_graphs_and_series() {
    let srv = InProcess::start();
    let want = format!("the selection covers {CROWD} stored hosts; at most 4096");
    for path in [
        "/graph.png?ip=2001:db8:1::/64&day=2024-01-01",
        "/graph.svg?ip=2001:db8:1::/112&window=week&end=2024-01-02",
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(&want), "{path}: {}", r.text());
    }
    let r = srv.get("/api/v1/hosts/2001:db8:1::%2F64/series?day=2024-01-01");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains(&want));
    // one fewer host is fine
    let r = srv.get("/api/v1/hosts/2001:db8:1::%2F116/series?day=2024-01-01");
    assert_eq!(r.status, 200, "{}", r.text());
}
