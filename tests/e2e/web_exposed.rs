//! The dashboard's limits where it is exposed, over real TCP on loopback: `bwacct serve` with TLS
//! and access control (the limits hold before any login; traversal, write methods and bad
//! ranges stay refused once logged in; slow and silent clients are cut, handshake included,
//! without holding up others), and the server's memory under a flood of oversized requests.

use crate::access::{bearer, passwd, self_signed, tls_connect, web_table, TOKEN};
use crate::web::{exchange, Served};
use crate::web_limits::{cut_after, raw_on, still_answering, ticking};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(3);

fn in_time(took: Duration, what: &str) {
    assert!(
        took >= TIMEOUT - Duration::from_millis(500) && took < TIMEOUT * 3,
        "{what} cut after {took:?}"
    );
}

#[test]
fn over_tls_with_logins_the_limits_hold_before_and_after_the_login() {
    let certs = tempfile::tempdir().unwrap();
    let (der, cert, key) = self_signed(certs.path());
    let mut srv = Served::with(&web_table(
        &passwd("a long passphrase"),
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\nmax_connections = 2\nclient_timeout_s = {}\n",
            cert.display(),
            key.display(),
            TIMEOUT.as_secs()
        ),
    ));
    let send = |bytes: &[u8]| raw_on(&mut tls_connect(&srv.addr, &der), bytes);
    let token = format!("{}\r\n", bearer(TOKEN));

    // Refused before any login is asked for.
    let head = |extra: &str| format!("GET /api/v1/status HTTP/1.0\r\n{extra}\r\n");
    for (what, req, status) in [
        (
            "a 10 KiB target",
            format!("GET /?x={} HTTP/1.0\r\n\r\n", "a".repeat(10 * 1024)),
            414,
        ),
        (
            "a 40 KiB header field",
            head(&format!("X-Big: {}\r\n", "a".repeat(40 * 1024))),
            431,
        ),
        (
            "GET with a body",
            "GET /api/v1/hosts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".into(),
            413,
        ),
        (
            "a malformed head",
            "GET / HTTP/1.1\r\nHost x\r\n\r\n".into(),
            400,
        ),
        // without credentials nothing else is told
        (
            "traversal",
            "GET /static/../../etc/passwd HTTP/1.0\r\n\r\n".into(),
            401,
        ),
        ("POST", "POST /api/v1/hosts HTTP/1.0\r\n\r\n".into(), 401),
    ] {
        let r = send(req.as_bytes());
        assert_eq!(r.status, status, "{what}: {}", r.text());
    }
    // Logged in (a token): traversal finds nothing, writes are not allowed, ranges are bounded.
    for target in [
        "/static/../../etc/passwd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/%252e%252e%252fetc%252fpasswd",
        "/static/..%5c..%5cetc%5cpasswd",
        "/static/app.js%00.png",
    ] {
        let r = send(format!("GET {target} HTTP/1.0\r\n{token}\r\n").as_bytes());
        assert_eq!(r.status, 404, "{target}: {}", r.text());
        assert!(!r.text().contains("root:x:0:0"), "{target}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let r = send(
            format!("{method} /api/v1/hosts HTTP/1.1\r\nHost: x\r\n{token}Content-Length: 2\r\n\r\n{{}}")
                .as_bytes(),
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow").as_deref(), Some("GET,HEAD"), "{method}");
        assert_eq!(
            r.json()["error"],
            "only GET and HEAD are answered: nothing here can be changed over HTTP"
        );
    }
    for (query, want) in [
        ("from=2020-01-01&to=2024-01-01", "longer than 366 days"),
        ("from=1969-12-31&to=1970-01-02", "not within 1970-01-01"),
        ("day=2024-02-30", "is not a date"),
    ] {
        let r = send(format!("GET /api/v1/hosts?{query} HTTP/1.0\r\n{token}\r\n").as_bytes());
        assert_eq!(r.status, 400, "{query}");
        let e = r.json()["error"].as_str().unwrap().to_owned();
        assert!(e.contains(want), "{query}: {e}");
    }

    // Slowloris after the handshake: cut at the timeout while another client is answered.
    let mut slow = tls_connect(&srv.addr, &der);
    slow.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.flush().unwrap();
    let other = std::thread::spawn({
        let (addr, der, token) = (srv.addr.clone(), der.clone(), bearer(TOKEN));
        move || {
            std::thread::sleep(Duration::from_millis(500));
            let mut s = tls_connect(&addr, &der);
            exchange(&mut s, &addr, "GET", "/api/v1/status", &[token]).status
        }
    });
    in_time(
        cut_after(&mut slow, Some(b"X-Slow: 1\r\n")),
        "a trickled head over TLS",
    );
    assert_eq!(other.join().unwrap(), 200);

    // Silent TCP connections that never start their handshake, more than the connection cap:
    // each is cut at the timeout, and a client that does shake hands is answered meanwhile.
    let mut silent: Vec<TcpStream> = (0..5).map(|_| ticking(&srv.addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut s = tls_connect(&srv.addr, &der);
    let asked = Instant::now();
    let r = exchange(&mut s, &srv.addr, "GET", "/api/v1/status", &[bearer(TOKEN)]);
    assert_eq!(r.status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    let cut = std::thread::scope(|scope| {
        let cuts: Vec<_> = silent
            .iter_mut()
            .map(|s| scope.spawn(move || cut_after(s, None)))
            .collect();
        cuts.into_iter().map(|c| c.join().unwrap()).max().unwrap()
    });
    // the first was open 300 ms and a request before the others were watched
    assert!(
        cut + Duration::from_millis(300) + asked.elapsed() >= TIMEOUT - Duration::from_millis(500)
            && cut < TIMEOUT * 3,
        "silent handshakes cut after {cut:?}"
    );
    still_answering_tls(&mut srv, &der);
}

fn still_answering_tls(srv: &mut Served, der: &[u8]) {
    assert!(srv.running(), "the server exited");
    let mut s = tls_connect(&srv.addr, der);
    let r = exchange(&mut s, &srv.addr, "GET", "/api/v1/status", &[bearer(TOKEN)]);
    assert_eq!(r.status, 200);
}

/// The server's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Sends `head` then `filler` bytes (up to `total`) until the server stops taking them, and
/// reads until it closes. Returns the bytes the server took.
fn flood(addr: &str, head: &[u8], total: usize) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sent = 0;
    if s.write_all(head).is_err() {
        return sent;
    }
    let chunk = vec![b'a'; 1 << 16];
    while sent < total {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
    sent
}

#[test]
fn floods_of_oversized_requests_do_not_grow_the_server() {
    let mut srv = Served::start();
    const EACH: usize = 16 << 20;
    let floods: [&[u8]; 4] = [
        // a request line that never ends
        b"GET /?x=",
        // a header field that never ends
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ",
        // header fields without end
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        // a 1 GB body on a method that is not allowed
        b"POST /api/v1/hosts HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
    ];
    // once, so that the allocator and the runtime have what they keep anyway
    for head in floods {
        flood(&srv.addr, head, EACH);
    }
    let before = rss_kib(srv.pid());
    let started = Instant::now();
    let (mut offered, mut taken) = (0, 0);
    for _ in 0..5 {
        for head in floods {
            taken += flood(&srv.addr, head, EACH);
            offered += EACH;
        }
    }
    let after = rss_kib(srv.pid());
    eprintln!(
        "offered {} MiB, the sockets took {} KiB, in {:?}; server RSS {before} KiB before, {after} KiB after",
        offered >> 20,
        taken >> 10,
        started.elapsed()
    );
    assert!(
        after < before + 8 * 1024,
        "the server grew from {before} KiB to {after} KiB"
    );
    still_answering(&mut srv);
}
