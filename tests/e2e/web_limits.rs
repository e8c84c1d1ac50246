//! The dashboard against hostile clients over real HTTP on loopback (`bwacct serve` on a
//! replayed store): path traversal, oversized heads and targets, request bodies, write methods,
//! malformed requests, slow and idle clients, the connection cap, and the bounds of every
//! period and step. Each answer is an exact status; the server keeps answering throughout.

use crate::web::{request_with, Response, Served};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `bytes` as they are on a fresh connection and reads the answer until the server
/// closes (a request the server refuses early may not be read in full: writing may fail).
fn raw(addr: &str, bytes: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw_on(&mut s, bytes)
}

/// [`raw`] on an open stream (plain or TLS).
pub fn raw_on(s: &mut (impl Read + Write), bytes: &[u8]) -> Response {
    let _ = s.write_all(bytes).and_then(|()| s.flush());
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // a reset after the answer (unread request bytes), or the end of a TLS connection
            // without close_notify, ends it too
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ) && !out.is_empty() =>
            {
                break
            }
            Err(e) => panic!("reading the answer to {:?}: {e}", lossy(bytes)),
        }
    }
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer to {:?}: {:?}", lossy(bytes), lossy(&out)));
    let headers = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    Response {
        status,
        headers,
        body: out[split + 4..].to_vec(),
    }
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned()
}

fn get_raw(addr: &str, target: &[u8]) -> Response {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.0\r\n\r\n");
    raw(addr, &req)
}

/// The server is alive, answers, and logged no panic.
pub fn still_answering(srv: &mut Served) {
    assert!(srv.running(), "the server exited");
    assert_eq!(srv.get("/api/v1/status").status, 200);
    let log = srv.log.lock().unwrap();
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "{}",
        log.join("\n")
    );
}

const SENTINEL: &str = "bwacct-sentinel-not-to-be-served";

#[test]
fn only_embedded_assets_are_served_never_a_file_from_disk() {
    let mut srv = Served::start();
    // Files where a naive static handler would look: the server's working directory, and
    // `static/` and `web/` in it (named like the real assets).
    let dir = srv.dir.path().to_owned();
    for f in [
        "secret.txt",
        "static/secret.txt",
        "static/app.js",
        "web/app.js",
        "web/style.css",
    ] {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, SENTINEL).unwrap();
    }
    let absolute = dir.join("secret.txt").display().to_string();
    let mut targets: Vec<Vec<u8>> = [
        "/secret.txt",
        "/static/secret.txt",
        "/web/app.js",
        "/static/../secret.txt",
        "/static/../../etc/passwd",
        "/static/../../../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static/%252e%252e%252fsecret.txt",
        "/static/..%5c..%5cetc%5cpasswd",
        "/static/..%5csecret.txt",
        "/static\\..\\secret.txt",
        "/static/..\\..\\etc\\passwd",
        "//etc/passwd",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "http://127.0.0.1/etc/passwd",
        "http://127.0.0.1/static/../../etc/passwd",
        "/static/app.js%00",
        "/static/app.js%00.png",
        "/static/secret.txt%00app.js",
        "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/static/%c0%af..%c0%afsecret.txt",
        "/static/%e0%80%ae%e0%80%ae%e0%80%afsecret.txt",
        "/static/%ef%bc%8e%ef%bc%8e%ef%bc%8fsecret.txt",
        "/ip/..%2f..%2fetc%2fpasswd",
        "/customer/..%2F..%2Fetc%2Fpasswd",
        "/graph.png?ip=../../etc/passwd",
        "/api/v1/hosts/..%2F..%2Fetc%2Fpasswd/series",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    targets.push(format!("/static/{absolute}").into_bytes());
    targets.push(absolute.clone().into_bytes());
    targets.push(format!("file://{absolute}").into_bytes());
    // raw bytes hyper refuses before any route: NUL, overlong UTF-8, backslash-free Latin-1
    targets.push(b"/static/app.js\0".to_vec());
    targets.push(b"/static/\xc0\xae\xc0\xae/etc/passwd".to_vec());
    targets.push(b"/static/\xff\xfe".to_vec());
    for target in &targets {
        let r = get_raw(&srv.addr, target);
        assert!(
            matches!(r.status, 400 | 404),
            "{}: {} {}",
            lossy(target),
            r.status,
            r.text()
        );
        let text = r.text();
        assert!(
            !text.contains(SENTINEL) && !text.contains("root:x:0:0"),
            "{} served a file: {text}",
            lossy(target)
        );
    }
    // The assets are the ones built into the binary, not the files beside the server.
    for (path, embedded) in [
        ("/static/app.js", &include_bytes!("../../web/app.js")[..]),
        (
            "/static/style.css",
            &include_bytes!("../../web/style.css")[..],
        ),
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, embedded, "{path}");
    }
    still_answering(&mut srv);
}

#[test]
fn oversized_requests_and_bodies_are_refused_and_nothing_is_written() {
    let mut srv = Served::start();
    let store = srv.dir.path().join("bw.db");
    let before = (std::fs::read(&store).unwrap(), modified(&store));

    let head = |extra: &str| format!("GET /api/v1/status HTTP/1.0\r\n{extra}\r\n");
    let big_field = head(&format!("X-Big: {}\r\n", "a".repeat(40 * 1024)));
    let many_fields: String = head(
        &(0..100)
            .map(|i| format!("X-{i}: a\r\n"))
            .collect::<String>(),
    );
    for (what, req, status) in [
        ("a 40 KiB header field", big_field.into_bytes(), 431),
        ("100 header fields", many_fields.into_bytes(), 431),
        (
            "a 10 KiB target",
            format!("GET /?x={} HTTP/1.0\r\n\r\n", "a".repeat(10 * 1024)).into_bytes(),
            414,
        ),
        (
            "a 100 KiB target (past the 32 KiB head)",
            format!("GET /?x={} HTTP/1.0\r\n\r\n", "a".repeat(100 * 1024)).into_bytes(),
            431,
        ),
    ] {
        let r = raw(&srv.addr, &req);
        assert_eq!(r.status, status, "{what}: {}", r.text());
    }
    let r = get_raw(
        &srv.addr,
        format!("/?x={}", "a".repeat(10 * 1024)).as_bytes(),
    );
    assert!(r.text().contains("at most 8192 are read"), "{}", r.text());
    // The longest target a page makes: 64 IPv6 networks (percent-encoded) fits.
    let nets: Vec<String> = (0..64)
        .map(|i| format!("2001%3Adb8%3A100%3A{i:x}%3Ae98%3A8a34%3A21f1%3Ad2b6%2F128"))
        .collect();
    let long = format!("/graph.svg?day=2024-01-01&ip={}", nets.join("%2C"));
    assert!(long.len() > 3500, "{}", long.len());
    assert_eq!(srv.get(&long).status, 200);

    // A body on GET or HEAD: 413 at once (the body is never waited for), and the connection
    // is closed.
    for (what, req) in [
        (
            "GET with a body",
            "GET /api/v1/hosts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "GET announcing 10 GB",
            "GET /api/v1/hosts HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n",
        ),
        (
            "GET chunked",
            "GET /api/v1/hosts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        ),
        (
            "HEAD with a body",
            "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        ),
    ] {
        let asked = Instant::now();
        let r = raw(&srv.addr, req.as_bytes());
        assert_eq!(r.status, 413, "{what}: {}", r.text());
        assert!(asked.elapsed() < Duration::from_secs(5), "{what} waited");
        assert_eq!(r.header("connection").as_deref(), Some("close"), "{what}");
        if !req.starts_with("HEAD") {
            assert_eq!(
                r.json()["error"],
                "this server takes no request body",
                "{what}"
            );
        }
    }
    // No write endpoint: every other method is 405, with a message in the page's format, and
    // the body is never read.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/api/v1/hosts", "/", "/metrics", "/static/app.js"] {
            let body = "{\"rows\": []}";
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let r = raw(&srv.addr, req.as_bytes());
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow").as_deref(), Some("GET,HEAD"));
            assert_eq!(r.header("connection").as_deref(), Some("close"));
            assert!(
                r.text().contains("only GET and HEAD are answered"),
                "{method} {path}"
            );
        }
    }
    let r = request_with(&srv.addr, "DELETE", "/api/v1/customers", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    still_answering(&mut srv);
    assert!(
        before == (std::fs::read(&store).unwrap(), modified(&store)),
        "the store changed"
    );
}

fn modified(p: &std::path::Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn malformed_requests_get_clear_400s_and_the_server_keeps_answering() {
    let mut srv = Served::start();
    // Refused by the HTTP parser (no route sees them): a bare 400, the connection closed.
    for req in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /\0 HTTP/1.0\r\n\r\n",
        b"GET /ip/\xff HTTP/1.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        let r = raw(&srv.addr, req);
        assert_eq!(r.status, 400, "{:?}", lossy(req));
    }
    // HTTP/2 is not spoken: its preface is closed without an answer.
    let mut h2 = TcpStream::connect(&srv.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    h2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(h2.read(&mut [0u8; 64]), Ok(0) | Err(_)));
    // Seen by the routes: a 400 that says why, as JSON under /api/ and HTML elsewhere.
    for (path, want) in [
        ("/ip/%ff", "Invalid UTF-8"),
        ("/api/v1/hosts/%ff%fe/series", "Invalid UTF-8"),
        (
            "/api/v1/hosts/198.51.100.1%00/series",
            "is not an IP address",
        ),
        (
            "/api/v1/hosts?day=2024-01-01&day=2024-01-02",
            "duplicate field `day`",
        ),
        ("/?day=%ff%fe", "is not a date"),
        ("/api/v1/hosts?day=2024-13-45", "is not a date"),
        ("/api/v1/hosts?month=2024-99", "2024-99"),
        (
            "/api/v1/hosts?day=2024-01-01&top=99999999999999999999999999",
            "expected a number from 1 to 100000",
        ),
        (
            "/graph.png?ip=198.51.100.1&width=18446744073709551616",
            "width=",
        ),
        ("/graph.png?ip=198.51.100.1&height=-1", "height="),
        ("/api/v1/hosts/198.51.100.1/series?step=-5", "step="),
        ("/api/v1/hosts/198.51.100.1/series?step=1e9", "step="),
        (
            "/api/v1/hosts/198.51.100.1/series?end=99999999-01-01",
            "not a",
        ),
        (
            "/api/v1/hosts?from=-262143-01-01&to=-262143-01-02",
            "not within 1970-01-01 to 9999-12-31",
        ),
        (
            "/graph.svg?ip=198.51.100.1,,,nonsense",
            "is not an IP address",
        ),
        (
            "/graph.svg?ip=198.51.100.1&window=day&day=2024-01-01",
            "not both",
        ),
    ] {
        let r = srv.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let message = match path.starts_with("/api/") {
            true => r.json()["error"].as_str().unwrap().to_owned(),
            false => {
                assert!(
                    r.header("content-type").unwrap().starts_with("text/html"),
                    "{path}"
                );
                r.text()
            }
        };
        assert!(message.contains(want), "{path}: {message}");
    }
    still_answering(&mut srv);
}

/// How long until the server closes `s` (whose reads time out after 200 ms), sending `trickle`
/// every 200 ms meanwhile.
pub fn cut_after(s: &mut (impl Read + Write), trickle: Option<&[u8]>) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    while start.elapsed() < Duration::from_secs(30) {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if let Some(t) = trickle {
                    if s.write_all(t).and_then(|()| s.flush()).is_err() {
                        return start.elapsed();
                    }
                }
            }
            Err(_) => return start.elapsed(),
        }
    }
    panic!("never cut");
}

/// A connection to `addr` whose reads time out after 200 ms (for [`cut_after`]).
pub fn ticking(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

#[test]
fn slow_and_idle_clients_are_cut_and_connections_are_capped() {
    let timeout = Duration::from_secs(3);
    let mut srv = Served::with(
        "[web]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2\nclient_timeout_s = 3\n",
    );
    let connect = || ticking(&srv.addr);
    let in_time = |took: Duration, what: &str| {
        assert!(
            took >= timeout - Duration::from_millis(500) && took < timeout * 3,
            "{what} cut after {took:?}"
        );
    };

    // Slowloris: a head trickled a field at a time is cut at the timeout, while another client
    // is answered.
    let mut slow = connect();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let other = std::thread::spawn({
        let addr = srv.addr.clone();
        move || {
            std::thread::sleep(Duration::from_millis(500));
            crate::web::request(&addr, "GET", "/api/v1/status").status
        }
    });
    in_time(
        cut_after(&mut slow, Some(b"X-Slow: 1\r\n")),
        "a trickled head",
    );
    assert_eq!(other.join().unwrap(), 200);
    // A client that sends nothing, and one idle after an answer (keep-alive).
    in_time(cut_after(&mut connect(), None), "a silent client");
    let mut idle = connect();
    idle.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.read_exact(&mut first).unwrap();
    idle.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    in_time(cut_after(&mut idle, None), "an idle keep-alive client");

    // The cap: two silent connections hold both places; a third client waits until one goes.
    let held = [connect(), connect()];
    std::thread::sleep(Duration::from_millis(200));
    let mut third = connect();
    third
        .write_all(b"GET /api/v1/status HTTP/1.0\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 12];
    let waited = third.read(&mut buf);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "answered past the cap: {waited:?}"
    );
    let released = Instant::now();
    drop(held);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    third.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.0 200");
    assert!(released.elapsed() < Duration::from_secs(2));
    let log = srv.log.lock().unwrap().join("\n");
    assert!(
        log.contains("web: 2 connections open ([web] max_connections): new clients wait"),
        "{log}"
    );
    still_answering(&mut srv);
}

#[test]
fn a_client_that_stops_reading_loses_its_connection() {
    let mut srv = Served::with(
        "[web]\nlisten = \"127.0.0.1:0\"\nmax_connections = 1\nclient_timeout_s = 2\n",
    );
    // 20 answers of about 6 MB each (10,000 buckets) asked at once, a small receive window,
    // and nothing read.
    let one = "GET /api/v1/hosts/198.51.100.1/series?from=2024-01-01&to=2024-12-31&step=3154 HTTP/1.1\r\nHost: x\r\n\r\n";
    let size = srv
        .get(&one["GET ".len()..one.find(" HTTP").unwrap()])
        .body
        .len();
    assert!(size > 5_000_000, "{size}");
    let mut greedy = socket_with_small_window(&srv.addr);
    greedy.write_all(one.repeat(20).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The only place is taken: another client is answered once the greedy one is cut.
    let asked = Instant::now();
    let r = crate::web::request(&srv.addr, "GET", "/api/v1/status");
    assert_eq!(r.status, 200);
    let waited = asked.elapsed();
    assert!(
        waited > Duration::from_millis(1000) && waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );
    // What the greedy client finds when it reads at last: the start of the answers, then the end.
    greedy
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match greedy.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got > 0 && got < 20 * size, "read {got} of {}", 20 * size);
    still_answering(&mut srv);
}

/// A connection whose receive buffer is as small as the kernel allows.
fn socket_with_small_window(addr: &str) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = rt
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.set_recv_buffer_size(4096)?;
            s.connect(addr).await?.into_std()
        })
        .expect("connect");
    s.set_nonblocking(false).unwrap();
    s
}

#[test]
fn every_endpoint_with_a_period_or_step_bounds_it() {
    let mut srv = Served::with(
        "[web]\nlisten = \"127.0.0.1:0\"\n[[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.10\"]\n",
    );
    // Every endpoint that reads a period (day, month, from and to).
    let periodic = [
        "/?",
        "/api/v1/hosts?",
        "/graph.png?ip=198.51.100.1&",
        "/graph.svg?customer=goneril&",
        "/api/v1/hosts/198.51.100.1/series?",
        "/api/v1/customers/goneril/series?",
    ];
    for base in periodic {
        for (query, want) in [
            ("from=2023-01-01&to=2024-01-03", "longer than 366 days"),
            ("from=1969-12-31&to=1970-01-02", "not within 1970-01-01"),
            ("from=9999-12-31&to=10000-01-01", "is not a time"),
            ("month=-262143-01", "not within"),
            ("from=2024-01-02&to=2024-01-01", "the period is empty"),
        ] {
            let r = srv.get(&format!("{base}{query}"));
            assert_eq!(r.status, 400, "{base}{query}: {}", r.text());
            assert!(r.text().contains(want), "{base}{query}: {}", r.text());
        }
        // 366 days (2024 is a leap year) is allowed
        let r = srv.get(&format!("{base}from=2024-01-01&to=2025-01-01"));
        assert_eq!(r.status, 200, "{base}: {}", r.text());
    }
    // Every endpoint that reads a graph window's end.
    for base in [
        "/ip/198.51.100.1?",
        "/customer/goneril?",
        "/graph.png?ip=198.51.100.1&",
        "/api/v1/hosts/198.51.100.1/series?",
        "/api/v1/customers/goneril/series?",
    ] {
        for (query, want) in [
            ("end=1969-12-31", "not within"),
            ("end=10000-01-01", "is not a time"),
            ("window=year&end=2024-01-01", ""),
        ] {
            let r = srv.get(&format!("{base}{query}"));
            if want.is_empty() {
                assert_eq!(r.status, 200, "{base}{query}: {}", r.text());
            } else {
                assert_eq!(r.status, 400, "{base}{query}: {}", r.text());
                assert!(r.text().contains(want), "{base}{query}: {}", r.text());
            }
        }
    }
    // Every endpoint that reads a step: at most 10,000 buckets, each a whole second.
    for base in [
        "/api/v1/hosts/198.51.100.1/series?window=week&",
        "/api/v1/customers/goneril/series?window=week&",
    ] {
        for (step, want) in [
            ("1", "at most 10000"),
            ("60", "604800 / 60"),
            ("0", "expected a number from 1"),
            ("1.5", "expected a number from 1"),
            ("31622401", "expected a number from 1 to 31622400"),
        ] {
            let r = srv.get(&format!("{base}step={step}"));
            assert_eq!(r.status, 400, "{base}step={step}: {}", r.text());
            let e = r.json()["error"].as_str().unwrap().to_owned();
            let want = if want == "604800 / 60" {
                "gives 10080 buckets"
            } else {
                want
            };
            assert!(e.contains(want), "{base}step={step}: {e}");
        }
        let ok = srv.get(&format!("{base}step=61")).json();
        assert_eq!(ok["points"].as_array().unwrap().len(), 604_800 / 61 + 1);
    }
    still_answering(&mut srv);
}
