//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the totals, a graph of the period, per-customer totals with their allotment use when
//! customers are given, and the top talkers. Well-formed XML as well as HTML, so that any
//! parser reads it; every byte count also sits exact in a `data-bytes` attribute.

use super::{show_time, Report, SeriesPoint};
use crate::classify::Class;
use crate::units;
use crate::usage::{Dir, Usage};
use std::fmt::Write as _;
use std::io::Write;

/// One customer's traffic over the report's period, and how much of its allotment that is.
/// Filled by the customer module; the page shows a "Customers" section when any are given.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerTotals {
    pub name: String,
    /// How many addresses (or networks) the customer has.
    pub addresses: usize,
    pub usage: Usage,
    pub allotment: Option<AllotmentUse>,
}

/// The use of an allotment: what is measured, how much was used of how much.
#[derive(Debug, Clone, PartialEq)]
pub struct AllotmentUse {
    /// What counts, e.g. `total`, `tx`, `rx`, `max(tx, rx)`, `95th percentile`.
    pub measure: String,
    pub used: Quantity,
    pub allowed: Quantity,
    /// The quota state, e.g. `ok`, `warn`, `over`.
    pub state: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    Bytes(u64),
    BitsPerSecond(f64),
}

impl Quantity {
    fn value(self) -> f64 {
        match self {
            Quantity::Bytes(b) => b as f64,
            Quantity::BitsPerSecond(r) => r,
        }
    }

    fn show(self) -> String {
        match self {
            Quantity::Bytes(b) => units::bytes(b),
            Quantity::BitsPerSecond(r) => units::bits_per_second(r),
        }
    }
}

impl AllotmentUse {
    /// Used as a percentage of allowed (0 when nothing is allowed).
    pub fn percent(&self) -> f64 {
        let allowed = self.allowed.value();
        if allowed > 0.0 {
            100.0 * self.used.value() / allowed
        } else {
            0.0
        }
    }
}

/// Text for an element or an attribute.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A byte count: human units shown, the exact number in `data-bytes`.
fn bytes_cell(v: u64) -> String {
    format!("<td data-bytes=\"{v}\">{}</td>", units::bytes(v))
}

/// Average rate in bits/s of `bytes` over `seconds`.
fn rate(bytes: u64, seconds: i64) -> f64 {
    if seconds > 0 {
        bytes as f64 * 8.0 / seconds as f64
    } else {
        0.0
    }
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td.name, th.name { text-align: left; }
.bar { width: 8em; height: 0.8em; background: #eee; display: inline-block; }
.bar span { display: block; height: 100%; background: #4a7; }
.over .bar span { background: #c33; } .warn .bar span { background: #d90; }
.note { color: #a50; }
svg text { font-size: 11px; fill: #444; }
";

/// Writes the page.
pub fn render(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let p = &report.period;
    let (from, to) = (p.from.timestamp(), p.to.timestamp());
    let title = format!(
        "Usage by {} from {} to {}",
        report.by.name(),
        show_time(p, from),
        show_time(p, to)
    );
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>bwacct: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    summary(&mut h, report, to - from);
    h.push_str("<section id=\"graph\">\n<h2>Traffic</h2>\n");
    if report.series.is_empty() {
        h.push_str("<p>No graph in this report.</p>\n");
    } else {
        h.push_str(&graph(report));
    }
    h.push_str("</section>\n");
    if !report.customers.is_empty() {
        customers(&mut h, report, to - from);
    }
    talkers(&mut h, report, to - from);
    if !report.notes.is_empty() {
        h.push_str("<section id=\"notes\">\n<h2>Notes</h2>\n");
        for n in &report.notes {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(n));
        }
        h.push_str("</section>\n");
    }
    let _ = write!(
        h,
        "<footer><p>bwacct {}</p></footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out.write_all(h.as_bytes())
}

/// Totals over every host: from the series when read (it covers all hosts even with `--top`),
/// else from the rows.
fn summary(h: &mut String, report: &Report, seconds: i64) {
    let mut total = Usage::default();
    let mut peak: f64 = 0.0;
    if report.series.is_empty() {
        for r in &report.rows {
            total.merge(&r.usage);
        }
    } else {
        for pt in &report.series {
            total.merge(&pt.usage);
            peak = peak.max(rate(pt.usage.total(), pt.to - pt.from));
        }
    }
    h.push_str("<section id=\"summary\">\n<table>\n");
    for (name, v) in [
        ("total", total.total()),
        ("sent", total.total_bytes(Dir::Tx)),
        ("received", total.total_bytes(Dir::Rx)),
    ] {
        let _ = writeln!(
            h,
            "<tr><th class=\"name\">{name}</th>{}</tr>",
            bytes_cell(v)
        );
    }
    let _ = writeln!(
        h,
        "<tr><th class=\"name\">average rate</th><td>{}</td></tr>",
        units::bits_per_second(rate(total.total(), seconds))
    );
    if peak > 0.0 {
        let _ = writeln!(
            h,
            "<tr><th class=\"name\">busiest graph step</th><td>{}</td></tr>",
            units::bits_per_second(peak)
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn customers(h: &mut String, report: &Report, seconds: i64) {
    h.push_str("<section id=\"customers\">\n<h2>Customers</h2>\n<table>\n<tr><th class=\"name\">customer</th><th>addresses</th><th>total</th><th>sent</th><th>received</th><th>average</th><th class=\"name\">allotment</th><th class=\"name\">state</th></tr>\n");
    for c in &report.customers {
        let u = &c.usage;
        let (class, allotment, state) = match &c.allotment {
            Some(a) => {
                let pct = a.percent();
                (
                    esc(&a.state),
                    format!(
                        "<span class=\"bar\"><span style=\"width: {:.0}%\"></span></span> {} of {} {} ({pct:.0} %)",
                        pct.clamp(0.0, 100.0),
                        a.used.show(),
                        a.allowed.show(),
                        esc(&a.measure)
                    ),
                    esc(&a.state),
                )
            }
            None => (String::new(), "none".to_owned(), "-".to_owned()),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td class=\"name\">{}</td><td>{}</td>{}{}{}<td>{}</td><td class=\"name\">{allotment}</td><td class=\"name\">{state}</td></tr>",
            esc(&c.name),
            c.addresses,
            bytes_cell(u.total()),
            bytes_cell(u.total_bytes(Dir::Tx)),
            bytes_cell(u.total_bytes(Dir::Rx)),
            units::bits_per_second(rate(u.total(), seconds)),
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn talkers(h: &mut String, report: &Report, seconds: i64) {
    h.push_str("<section id=\"top\">\n<h2>Top talkers</h2>\n<table id=\"rows\">\n<tr><th>#</th><th class=\"name\">address</th><th class=\"name\">customer</th><th>total</th><th>sent</th><th>received</th><th>average</th><th>packets sent</th><th>packets received</th>");
    for class in Class::ALL {
        let _ = write!(h, "<th>{}</th>", class.name());
    }
    h.push_str("</tr>\n");
    for (i, row) in report.rows.iter().enumerate() {
        let u = &row.usage;
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td>{}{}{}<td>{}</td><td>{}</td><td>{}</td>",
            i + 1,
            esc(&row.host.to_string()),
            esc(row.customer.as_deref().unwrap_or("-")),
            bytes_cell(u.total()),
            bytes_cell(u.total_bytes(Dir::Tx)),
            bytes_cell(u.total_bytes(Dir::Rx)),
            units::bits_per_second(rate(u.total(), seconds)),
            u.total_packets(Dir::Tx),
            u.total_packets(Dir::Rx),
        );
        for class in Class::ALL {
            h.push_str(&bytes_cell(
                u.get(Dir::Tx, class, false) + u.get(Dir::Rx, class, false),
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n</section>\n");
}

const W: f64 = 960.0;
const H: f64 = 260.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 30.0;

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

/// The series as rates (bits/s): received as a filled step area, sent as a step line.
fn graph(report: &Report) -> String {
    let p = &report.period;
    let (from, to) = (p.from.timestamp(), p.to.timestamp());
    let span = (to - from).max(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: i64| LEFT + (t - from) as f64 / span * pw;
    let rates = |pt: &SeriesPoint, dir: Dir| rate(pt.usage.total_bytes(dir), pt.to - pt.from);
    let max = report
        .series
        .iter()
        .flat_map(|pt| [rates(pt, Dir::Tx), rates(pt, Dir::Rx)])
        .fold(0.0, f64::max);
    let ymax = nice_ceiling(max);
    let y = |r: f64| TOP + ph - r / ymax * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\n<title>Traffic in bits/s, received (area) and sent (line)</title>"
    );
    for i in 0..=4 {
        let r = ymax * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            y(r),
            W - RIGHT,
            LEFT - 6.0,
            y(r) + 4.0,
            esc(&units::bits_per_second(r))
        );
    }
    for (dir, fill, stroke) in [(Dir::Rx, "#9cd3a8", "#4a7"), (Dir::Tx, "none", "#36c")] {
        let mut d = String::new();
        let base = y(0.0);
        let _ = write!(d, "M{:.1},{base:.1}", x(from));
        for pt in &report.series {
            let v = y(rates(pt, dir));
            let _ = write!(d, " L{:.1},{v:.1} L{:.1},{v:.1}", x(pt.from), x(pt.to));
        }
        if fill != "none" {
            let _ = write!(d, " L{:.1},{base:.1} Z", x(to));
        }
        let _ = writeln!(
            s,
            "<path d=\"{d}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>"
        );
    }
    // time ticks: steps of hours for short periods, of days beyond
    let steps = [
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86_400,
        2 * 86_400,
        7 * 86_400,
    ];
    let step = steps
        .into_iter()
        .find(|st| (to - from) / st <= 8)
        .unwrap_or(14 * 86_400);
    let fmt = if to - from <= 2 * 86_400 {
        "%H:%M"
    } else {
        "%b %d"
    };
    let mut t = from;
    while t <= to {
        let label = chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .with_timezone(&p.zone)
            .format(fmt)
            .to_string();
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#999\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>",
            x(t),
            TOP + ph,
            TOP + ph + 4.0,
            H - 10.0,
            esc(&label)
        );
        t += step;
    }
    let _ = writeln!(
        s,
        "<rect x=\"{0}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#9cd3a8\"/><text x=\"{1}\" y=\"13\">received</text><rect x=\"{2}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#36c\"/><text x=\"{3}\" y=\"13\">sent</text>\n</svg>",
        LEFT,
        LEFT + 14.0,
        LEFT + 90.0,
        LEFT + 104.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allotments_show_their_use() {
        let a = AllotmentUse {
            measure: "total".into(),
            used: Quantity::Bytes(400 << 30),
            allowed: Quantity::Bytes(500 << 30),
            state: "warn".into(),
        };
        assert_eq!(a.percent(), 80.0);
        assert_eq!(a.used.show(), "400.0 GiB");
        let r = Quantity::BitsPerSecond(12_500_000.0);
        assert_eq!(r.show(), "12.50 Mbit/s");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3_100.0), 5_000.0);
        assert_eq!(nice_ceiling(1_000.0), 1_000.0);
    }

    /// The hook the customer module fills: customers appear with their allotment use.
    #[test]
    fn customers_show_with_their_allotment_use() {
        use crate::report::{By, Row, SeriesPoint};
        let mut usage = Usage::default();
        usage.set(Dir::Tx, crate::classify::Class::ALL[0], false, 3 << 30);
        usage.set(Dir::Rx, crate::classify::Class::ALL[1], false, 1 << 30);
        let period = crate::period::day(chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        let from = period.from.timestamp();
        let report = Report {
            names: None,
            period,
            by: By::Ip,
            rows: vec![Row {
                host: "198.51.100.7".parse().unwrap(),
                customer: Some("goneril & <co>".into()),
                usage,
                ips: Vec::new(),
                state: None,
                spoofed: None,
            }],
            notes: vec!["a note".into()],
            series: vec![SeriesPoint {
                from,
                to: from + 86_400,
                usage,
            }],
            customers: vec![
                CustomerTotals {
                    name: "goneril & <co>".into(),
                    addresses: 2,
                    usage,
                    allotment: Some(AllotmentUse {
                        measure: "total".into(),
                        used: Quantity::Bytes(4 << 30),
                        allowed: Quantity::Bytes(5 << 30),
                        state: "warn".into(),
                    }),
                },
                CustomerTotals {
                    name: "regan".into(),
                    addresses: 1,
                    usage: Usage::default(),
                    allotment: Some(AllotmentUse {
                        measure: "95th percentile".into(),
                        used: Quantity::BitsPerSecond(12e6),
                        allowed: Quantity::BitsPerSecond(10e6),
                        state: "over".into(),
                    }),
                },
            ],
        };
        let mut out = Vec::new();
        render(&report, &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        // well-formed: a strict parser reads it to the end
        let mut reader = quick_xml::Reader::from_str(&html);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}\n{html}"),
            }
        }
        assert!(html.contains("<section id=\"customers\">"));
        assert!(html.contains("goneril &amp; &lt;co&gt;"));
        assert!(html.contains("4.0 GiB of 5.0 GiB total (80 %)"), "{html}");
        assert!(html.contains("<tr class=\"warn\">"));
        assert!(html.contains("12.00 Mbit/s of 10.00 Mbit/s 95th percentile (120 %)"));
        assert!(html.contains("width: 100%"), "the bar stops at full");
        assert!(html.contains("<p class=\"note\">a note</p>"));
        // the day's 4 GiB at an even rate
        assert!(html.contains(&units::bits_per_second(
            (4u64 << 30) as f64 * 8.0 / 86_400.0
        )));
        // without customers, no such section
        let mut bare = report.clone();
        bare.customers.clear();
        let mut out = Vec::new();
        render(&bare, &mut out).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("id=\"customers\""));
    }
}
