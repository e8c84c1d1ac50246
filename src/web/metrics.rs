//! `/metrics` in the Prometheus text format (0.0.4): per-host and per-customer byte and packet
//! counters (cumulated since start, so monotonic across flushes), capture outcomes, kernel
//! drops per interface, flush durations and errors, and the layer-2 guard's events, ARP counts
//! and spoofed traffic. Reads `Status` only, never the store.

use super::Context;
use crate::customer::Customers;
use crate::guard::Kind;
use crate::names::dns::DnsStats;
use crate::status::{GuardView, Snapshot};
use crate::usage::{Dir, Host, Usage};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Context>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    let snap = ctx.status.snapshot();
    let (hosts, other) = ctx.status.totals();
    let mut text = exposition(&snap, &hosts, &other, &ctx.customers);
    if let Some((stats, cached)) = ctx.names.as_ref().and_then(|n| n.dns()) {
        dns_lines(&mut text, stats, cached);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// A label value with `\`, `"` and newlines escaped.
struct Label<'a>(&'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Four lines per owner: bytes and packets, sent and received.
fn usage_lines(out: &mut String, owner: (&str, &str), u: &Usage, packets: bool) {
    let metric = if packets {
        "packets_total"
    } else {
        "bytes_total"
    };
    let (label, value) = owner;
    for (dir, d) in [(Dir::Tx, "tx"), (Dir::Rx, "rx")] {
        let v = if packets {
            u.total_packets(dir)
        } else {
            u.total_bytes(dir)
        };
        let _ = writeln!(
            out,
            "bwacct_{}_{metric}{{{label}=\"{}\",direction=\"{d}\"}} {v}",
            if label == "ip" { "host" } else { "customer" },
            Label(value)
        );
    }
}

pub fn exposition(
    snap: &Snapshot,
    hosts: &[(Host, Usage)],
    other: &Usage,
    customers: &Customers,
) -> String {
    let mut out = String::with_capacity(4096 + hosts.len() * 220);
    for packets in [false, true] {
        let what = if packets { "Packets" } else { "Bytes" };
        family(
            &mut out,
            if packets {
                "bwacct_host_packets_total"
            } else {
                "bwacct_host_bytes_total"
            },
            "counter",
            &format!("{what} sent (tx) and received (rx) by a local host since bwacct started; ip=\"other\" sums hosts past the series cap."),
        );
        for (host, u) in hosts {
            usage_lines(&mut out, ("ip", &host.to_string()), u, packets);
        }
        if !other.is_zero() {
            usage_lines(&mut out, ("ip", "other"), other, packets);
        }
    }
    if !customers.is_empty() {
        // one rule for who owns a row, shared with reports and quotas
        let mut sums: std::collections::HashMap<&str, Usage> = customers
            .iter()
            .map(|c| (c.name.as_str(), Usage::default()))
            .collect();
        for (host, u) in hosts {
            if let Some(sum) = customers
                .of(host)
                .and_then(|c| sums.get_mut(c.name.as_str()))
            {
                sum.merge(u);
            }
        }
        for packets in [false, true] {
            let what = if packets { "Packets" } else { "Bytes" };
            family(
                &mut out,
                if packets {
                    "bwacct_customer_packets_total"
                } else {
                    "bwacct_customer_bytes_total"
                },
                "counter",
                &format!("{what} sent (tx) and received (rx) by a customer's addresses since bwacct started."),
            );
            for c in customers.iter() {
                if let Some(u) = sums.get(c.name.as_str()) {
                    usage_lines(&mut out, ("customer", &c.name), u, packets);
                }
            }
        }
    }
    let p = &snap.packets;
    for (name, help, v) in [
        (
            "bwacct_capture_packets_total",
            "Frames seen by the capture.",
            p.packets,
        ),
        (
            "bwacct_capture_accounted_packets_total",
            "IP packets with a local end.",
            p.accounted,
        ),
        (
            "bwacct_capture_accounted_bytes_total",
            "Layer-3 bytes of the accounted packets.",
            p.bytes,
        ),
        (
            "bwacct_capture_foreign_packets_total",
            "IP packets with no local end (never charged).",
            p.foreign,
        ),
        (
            "bwacct_capture_non_ip_packets_total",
            "Frames that are not IP.",
            p.non_ip,
        ),
        (
            "bwacct_capture_malformed_packets_total",
            "Frames that say IP but whose header is cut or insane.",
            p.malformed,
        ),
        (
            "bwacct_capture_length_mismatch_packets_total",
            "Packets whose declared length exceeded the wire (capped).",
            p.length_mismatch,
        ),
    ] {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    for (name, help, pick) in [
        (
            "bwacct_kernel_received_packets_total",
            "Packets the kernel passed to the capture.",
            0,
        ),
        (
            "bwacct_kernel_dropped_packets_total",
            "Packets the kernel dropped for want of buffer space (counts are short).",
            1,
        ),
        (
            "bwacct_kernel_interface_dropped_packets_total",
            "Packets the interface dropped.",
            2,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for i in &snap.interfaces {
            let k = &i.kernel;
            let v = [k.received, k.dropped, k.if_dropped][pick];
            let _ = writeln!(out, "{name}{{interface=\"{}\"}} {v}", Label(&i.name));
        }
    }
    let f = &snap.flush;
    family(
        &mut out,
        "bwacct_flushes_total",
        "counter",
        "Interval flushes and retries.",
    );
    let _ = writeln!(out, "bwacct_flushes_total {}", f.flushes);
    family(
        &mut out,
        "bwacct_flush_errors_total",
        "counter",
        "Store writes that failed (retried; counts are kept in memory).",
    );
    let _ = writeln!(out, "bwacct_flush_errors_total {}", f.errors);
    family(
        &mut out,
        "bwacct_flush_seconds_total",
        "counter",
        "Time spent flushing.",
    );
    let _ = writeln!(out, "bwacct_flush_seconds_total {}", f.seconds_total);
    family(
        &mut out,
        "bwacct_last_flush_duration_seconds",
        "gauge",
        "Duration of the last flush.",
    );
    let _ = writeln!(out, "bwacct_last_flush_duration_seconds {}", f.last_seconds);
    if let Some(t) = f.last_at {
        family(
            &mut out,
            "bwacct_last_flush_timestamp_seconds",
            "gauge",
            "Unix time of the last flush.",
        );
        let _ = writeln!(out, "bwacct_last_flush_timestamp_seconds {t}");
    }
    family(
        &mut out,
        "bwacct_flush_pending_intervals",
        "gauge",
        "Intervals waiting to be written to the store.",
    );
    let _ = writeln!(out, "bwacct_flush_pending_intervals {}", f.pending);
    family(
        &mut out,
        "bwacct_start_time_seconds",
        "gauge",
        "Unix time this process started.",
    );
    let _ = writeln!(out, "bwacct_start_time_seconds {}", snap.started);
    if let Some(g) = &snap.guard {
        guard_lines(&mut out, g, customers);
    }
    out
}

/// The layer-2 guard's series: events per kind, ARP packets, the last interval's source MACs
/// and bindings, and spoofed traffic per bound customer.
fn guard_lines(out: &mut String, g: &GuardView, customers: &Customers) {
    family(
        out,
        "bwacct_guard_events_total",
        "counter",
        "Layer-2 events raised since start, per kind.",
    );
    for k in Kind::ALL {
        let v = g.events.get(&k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "bwacct_guard_events_total{{kind=\"{}\"}} {v}",
            k.name()
        );
    }
    family(
        out,
        "bwacct_guard_arp_packets_total",
        "counter",
        "ARP packets seen since start: requests, replies, gratuitous, probes, unsolicited replies.",
    );
    let a = &g.arp;
    for (t, v) in [
        ("request", a.requests),
        ("reply", a.replies),
        ("gratuitous", a.gratuitous),
        ("probe", a.probes),
        ("unsolicited", a.unsolicited),
    ] {
        let _ = writeln!(out, "bwacct_guard_arp_packets_total{{type=\"{t}\"}} {v}");
    }
    if let Some(l) = &g.last {
        for (name, help, v) in [
            (
                "bwacct_guard_source_macs",
                "Distinct source MACs in the last interval.",
                Some(l.macs),
            ),
            (
                "bwacct_guard_source_macs_baseline",
                "The learnt baseline of distinct source MACs per interval.",
                l.baseline,
            ),
            (
                "bwacct_guard_active_bindings",
                "IPv4 to MAC bindings active at the end of the last interval.",
                Some(l.active_bindings),
            ),
        ] {
            if let Some(v) = v {
                family(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {v}");
            }
        }
    }
    let bound: Vec<&str> = customers
        .iter()
        .filter(|c| !c.macs.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    for (name, help, packets) in [
        (
            "bwacct_customer_spoofed_bytes_total",
            "Bytes sent since start from a bound customer's addresses by other MACs (also counted in its usage).",
            false,
        ),
        (
            "bwacct_customer_spoofed_packets_total",
            "Packets sent since start from a bound customer's addresses by other MACs.",
            true,
        ),
    ] {
        family(out, name, "counter", help);
        let mut names: Vec<&str> = bound.clone();
        names.extend(g.spoofed.keys().map(String::as_str).filter(|n| !bound.contains(n)));
        for c in names {
            let t = g.spoofed.get(c).copied().unwrap_or_default();
            let v = if packets { t.packets } else { t.bytes };
            let _ = writeln!(out, "{name}{{customer=\"{}\"}} {v}", Label(c));
        }
    }
}

/// The reverse-DNS resolver's outcomes (when it is on).
fn dns_lines(out: &mut String, stats: &DnsStats, cached: usize) {
    family(
        out,
        "bwacct_dns_lookups_total",
        "counter",
        "Reverse DNS lookups by outcome: name, no_name, invalid (a name refused), timeout, failed, capped (not made: the per-minute cap).",
    );
    for (outcome, n) in [
        ("name", &stats.named),
        ("no_name", &stats.no_name),
        ("invalid", &stats.invalid),
        ("timeout", &stats.timed_out),
        ("failed", &stats.failed),
        ("capped", &stats.capped),
    ] {
        let _ = writeln!(
            out,
            "bwacct_dns_lookups_total{{outcome=\"{outcome}\"}} {}",
            n.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    family(
        out,
        "bwacct_dns_cached_addresses",
        "gauge",
        "Addresses whose reverse DNS answer (a name or none) is remembered.",
    );
    let _ = writeln!(out, "bwacct_dns_cached_addresses {cached}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;
    use crate::parse::Proto;
    use crate::status::{Source, Status};
    use crate::store::Sample;

    fn sample(start: i64, v: u64) -> Sample {
        let mut u = Usage::default();
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, v);
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), true, 1);
        Sample {
            sensor: "t".into(),
            start,
            interval_s: 60,
            hosts: vec![
                ("198.51.100.7".parse().unwrap(), u),
                ("2001:db8:100::1".parse().unwrap(), u),
            ],
            ..Default::default()
        }
    }

    fn value(text: &str, series: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn counters_add_up_across_flushes_and_labels_are_escaped() {
        let status = Status::new(Source::Store, 1000);
        let customers = Customers::new(vec![crate::config::Customer {
            name: "a\"b".into(),
            networks: vec!["198.51.100.0/24".parse().unwrap()],
            vif: None,
            mark: None,
            allotment: None,
            shape: None,
            billing_day: 1,
            macs: Vec::new(),
        }]);
        let scrape = || {
            let (hosts, other) = status.totals();
            exposition(&status.snapshot(), &hosts, &other, &customers)
        };
        status.observe(&sample(0, 100));
        let first = scrape();
        status.observe(&sample(60, 50));
        let second = scrape();
        let host = "bwacct_host_bytes_total{ip=\"198.51.100.7\",direction=\"tx\"}";
        assert_eq!(value(&first, host), 100);
        assert_eq!(value(&second, host), 150);
        assert_eq!(
            value(
                &second,
                "bwacct_host_packets_total{ip=\"2001:db8:100::1\",direction=\"tx\"}"
            ),
            2
        );
        assert_eq!(
            value(
                &second,
                "bwacct_customer_bytes_total{customer=\"a\\\"b\",direction=\"tx\"}"
            ),
            150
        );
        assert!(second.contains("# TYPE bwacct_host_bytes_total counter"));
        assert_eq!(value(&second, "bwacct_start_time_seconds"), 1000);
        // every sample line is `name{labels} value` or `name value`
        for line in second.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn guard_series_count_events_arp_and_spoofed_traffic_per_bound_customer() {
        use crate::guard::{GuardEvent, IntervalStats, Verdict};
        use crate::parse::l2::Mac;
        let status = Status::new(Source::Store, 0);
        let customer = |name: &str, macs: Vec<Mac>| crate::config::Customer {
            name: name.into(),
            networks: vec![],
            vif: None,
            mark: None,
            allotment: None,
            shape: None,
            billing_day: 1,
            macs,
        };
        let customers = Customers::new(vec![
            customer("goneril", vec![Mac(0xa)]),
            customer("regan", vec![Mac(0xb)]),
            customer("cordelia", vec![]),
        ]);
        let scrape = || {
            let (hosts, other) = status.totals();
            exposition(&status.snapshot(), &hosts, &other, &customers)
        };
        assert!(!scrape().contains("bwacct_guard"), "no guard, no series");
        let event = |kind, customer: Option<&str>, packets, bytes| GuardEvent {
            id: 0,
            sensor: "t".into(),
            ts: 0,
            interval_start: 0,
            kind,
            customer: customer.map(str::to_owned),
            ip: None,
            old_macs: vec![],
            new_mac: None,
            packets,
            bytes,
            macs: vec![],
            groups: vec![],
            reason: String::new(),
            hooks: crate::store::quota::HookStatus::None,
        };
        for start in [0, 60] {
            status.observe_guard(&Verdict {
                stats: IntervalStats {
                    start,
                    macs: 40 + start as u64,
                    baseline: Some(35),
                    active_bindings: 7,
                    arp: crate::guard::observe::ArpCounts {
                        requests: 5,
                        replies: 4,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                events: vec![
                    event(Kind::ArpSpoof, None, 3, 0),
                    event(Kind::SpoofedSource, Some("goneril"), 10, 1500),
                ],
            });
        }
        let text = scrape();
        assert_eq!(
            value(&text, "bwacct_guard_events_total{kind=\"arp_spoof\"}"),
            2
        );
        assert_eq!(
            value(&text, "bwacct_guard_events_total{kind=\"mac_flood\"}"),
            0
        );
        assert_eq!(
            value(&text, "bwacct_guard_arp_packets_total{type=\"request\"}"),
            10
        );
        assert_eq!(value(&text, "bwacct_guard_source_macs "), 100);
        assert_eq!(value(&text, "bwacct_guard_source_macs_baseline "), 35);
        assert_eq!(value(&text, "bwacct_guard_active_bindings "), 7);
        assert_eq!(
            value(
                &text,
                "bwacct_customer_spoofed_bytes_total{customer=\"goneril\"}"
            ),
            3000
        );
        assert_eq!(
            value(
                &text,
                "bwacct_customer_spoofed_packets_total{customer=\"regan\"}"
            ),
            0
        );
        assert!(
            !text.contains("customer=\"cordelia\"} "),
            "cordelia is not bound"
        );
    }
}
