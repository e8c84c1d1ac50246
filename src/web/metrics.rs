//! `/metrics` in the Prometheus text format (0.0.4): per-host and per-customer byte and packet
//! counters (cumulated since start, so monotonic across flushes), capture outcomes, kernel
//! drops per interface, flush durations and errors. Reads `Status` only, never the store.

use super::Context;
use crate::customer::Customers;
use crate::names::dns::DnsStats;
use crate::status::Snapshot;
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
    out
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
}
