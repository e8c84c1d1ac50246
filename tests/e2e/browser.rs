//! The dashboard in a real browser: headless Chromium, driven over the DevTools protocol (a
//! small client on a WebSocket), opens the top-talkers page of a replayed corpus capture, checks
//! the table's totals against the truth file, that every graph image loaded and that sorting
//! works, and saves screenshots under `target/screenshots/`.

use crate::web::{truth, Served};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Headless Chromium with a fresh profile; killed and removed on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

impl Browser {
    fn launch(exe: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1400,1100",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Chromium writes its DevTools port and browser path into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let start = Instant::now();
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&port_file) {
                if t.lines().count() >= 2 {
                    break t;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromium did not open its DevTools port"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut lines = text.lines();
        let port = lines.next().unwrap().trim().to_owned();
        let path = lines.next().unwrap().trim().to_owned();
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("DevTools port");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("DevTools WebSocket");
        Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: None,
        }
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to chromium");
        loop {
            let m = match self.ws.read() {
                Ok(m) => m,
                // a signal to the test process cut the read short: read again
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                    continue
                }
                Err(e) => panic!("read from chromium: {e}"),
            };
            let Ok(text) = m.into_text() else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Opens a page target and attaches to it.
    fn open(&mut self) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().unwrap().to_owned();
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": id, "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        self.call("Page.enable", json!({}));
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Navigates and waits until the page and all its images have finished loading.
    fn visit(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let start = Instant::now();
        loop {
            let ready = self.eval(&format!(
                "document.URL === {} && document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)",
                json!(url)
            ));
            if ready == json!(true) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{url} did not finish loading"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let bytes = base64(shot["data"].as_str().unwrap());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| !matches!(c, b'=' | b'\n' | b'\r'))
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(val(*c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn dashboard_in_headless_chromium_shows_the_truth() {
    let Some(exe) = chromium() else {
        eprintln!("SKIPPED: the browser test needs Chromium (Debian package `chromium`, installed by scripts/setup --test)");
        return;
    };
    let truth = truth();
    let hosts = truth["hosts"].as_object().unwrap();
    let srv = Served::start();
    let mut b = Browser::launch(&exe);
    b.open();

    b.visit(&srv.url("/?day=2024-01-01&top=1000"));
    let rows = b.eval(
        "Array.from(document.querySelectorAll('#top tbody tr')).map(r => [r.dataset.host, ...[3, 4, 5].map(i => Number(r.cells[i].dataset.v))])",
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows.len(),
        hosts.len(),
        "one table row per host of the capture"
    );
    for r in rows {
        let ip = r[0].as_str().unwrap();
        let t = &hosts[ip];
        let (tx, rx) = (
            t["tx_bytes"].as_u64().unwrap(),
            t["rx_bytes"].as_u64().unwrap(),
        );
        assert_eq!(
            (r[1].as_u64(), r[2].as_u64(), r[3].as_u64()),
            (Some(tx + rx), Some(tx), Some(rx)),
            "{ip}: total, sent, received"
        );
    }
    let sum = b.eval("Array.from(document.querySelectorAll('#sum td')).slice(3, 6).map(c => Number(c.dataset.v))");
    let tx: u64 = hosts
        .values()
        .map(|h| h["tx_bytes"].as_u64().unwrap())
        .sum();
    let rx: u64 = hosts
        .values()
        .map(|h| h["rx_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, json!([tx + rx, tx, rx]), "the footer sums every host");
    let first = b.eval("document.querySelector('#top tbody tr').dataset.host");
    let shown = b.eval("document.querySelector('#top tbody tr td:nth-child(4)').textContent");
    assert!(
        shown.as_str().unwrap().ends_with("KiB"),
        "totals shown in units: {shown}"
    );
    let images =
        b.eval("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])");
    let images = images.as_array().unwrap();
    assert_eq!(
        images.len(),
        5,
        "graphs of the five busiest hosts: {images:?}"
    );
    for img in images {
        assert!(img[1].as_u64().unwrap() > 0, "graph did not load: {img}");
    }
    let path = b.screenshot("dashboard.png");
    eprintln!("screenshot: {}", path.display());

    // sorting: a second click on "total" sorts ascending
    b.eval("document.querySelector('#top thead th:nth-child(4)').click(); document.querySelector('#top thead th:nth-child(4)').click(); true");
    let totals = b.eval("Array.from(document.querySelectorAll('#top tbody tr')).map(r => Number(r.cells[3].dataset.v))");
    let totals: Vec<u64> = totals
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "ascending after two clicks"
    );

    // the busiest host's page: four graphs, all loaded
    b.visit(&srv.url(&format!(
        "/ip/{}?end=2024-01-01T00:05:00Z",
        first.as_str().unwrap()
    )));
    let images = b.eval("Array.from(document.images).map(i => i.naturalWidth)");
    assert_eq!(
        images,
        json!([760, 760, 760, 760]),
        "day, week, month and year graphs"
    );
    b.screenshot("host.png");
    b.visit(&srv.url("/now"));
    assert_eq!(
        b.eval("document.querySelectorAll('#live dl.status dt').length > 5"),
        json!(true)
    );
    b.screenshot("now.png");
}
