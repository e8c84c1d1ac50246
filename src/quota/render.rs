//! `bwacct quota` output and the quota rows of `bwacct events`: aligned tables for people, JSON
//! for programs. Volumes in decimal units (allotments are sold in GB of 10⁹ bytes), rates in
//! bit/s.

use super::check::Status;
use super::{state, time};
use crate::config::Allotment;
use crate::store::guard::SpoofedTotal;
use crate::store::quota::QuotaEvent;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `254403` → `254.4 kB`.
pub fn decimal_bytes(v: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if v < 1000 {
        return format!("{v} B");
    }
    let mut x = v as f64 / 1000.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if x < 1000.0 {
            break;
        }
        x /= 1000.0;
        unit = u;
    }
    format!("{x:.1} {unit}")
}

fn amount(v: u64, unit: &str) -> String {
    if unit == "bytes" {
        decimal_bytes(v)
    } else {
        crate::units::bits_per_second(v as f64)
    }
}

fn status_json(s: &Status, spoofed: Option<&SpoofedTotal>) -> Value {
    let (kind, measure) = match s.allotment {
        Allotment::Volume { measure, .. } => ("volume", Some(measure.name())),
        Allotment::P95 { .. } => ("p95", None),
    };
    let mut v = json!({
        "customer": s.customer,
        "kind": kind,
        "measure": measure,
        "used": s.measured.used,
        "allotment": s.amount,
        "unit": s.unit,
        "percent": (s.percent() * 10.0).round() / 10.0,
        "estimate": s.measured.estimate,
        "state": s.state.name(),
        "since": s.since.map(time),
        "period": {"from": time(s.period.start), "to": time(s.period.end)},
        "tx_bytes": s.measured.tx_bytes,
        "rx_bytes": s.measured.rx_bytes,
    });
    if let (Some(t), Some(m)) = (spoofed, v.as_object_mut()) {
        m.insert("spoofed_bytes".into(), t.bytes.into());
        m.insert("spoofed_packets".into(), t.packets.into());
    }
    v
}

/// A quota event as `bwacct events --format json` lists it.
pub(crate) fn event_json(e: &QuotaEvent) -> Value {
    json!({
        "time": time(e.ts),
        "kind": "quota",
        "customer": e.customer,
        "old_state": e.old_state,
        "new_state": e.new_state,
        "used": e.used,
        "allotment": e.allotment,
        "unit": e.unit,
        "percent": (state::percent(e.used, e.allotment) * 10.0).round() / 10.0,
        "estimate": e.estimate,
        "used_bytes": e.used_bytes,
        "period_start": time(e.period_start),
        "reason": e.reason,
        "hooks": e.hooks.name(),
    })
}

/// Aligns column `i` left when `align[i]` is `l`, right otherwise.
pub(crate) fn table(
    cells: &[Vec<String>],
    align: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let cols = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in cells {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if align.as_bytes().get(i) == Some(&b'l') {
                text.push_str(&format!("{cell:<w$}  "));
            } else {
                text.push_str(&format!("{cell:>w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// `bwacct quota`. `spoofed` (with `[guard]`): each customer's spoofed traffic in its period,
/// shown beside its use (and included in it: the counts are what the IP headers say).
pub fn statuses(
    list: &[Status],
    spoofed: Option<&BTreeMap<String, SpoofedTotal>>,
    at: i64,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let spoofed_of = |s: &Status| spoofed.map(|m| m.get(&s.customer).copied().unwrap_or_default());
    if format == Format::Json {
        let rows: Vec<Value> = list
            .iter()
            .map(|s| status_json(s, spoofed_of(s).as_ref()))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &json!({"at": time(at), "rows": rows}))?;
        return writeln!(out);
    }
    writeln!(out, "Quotas at {}: {} customers", time(at), list.len())?;
    let mut header = [
        "customer",
        "state",
        "used",
        "allotment",
        "percent",
        "estimate",
        "since",
        "period",
    ]
    .map(String::from)
    .to_vec();
    if spoofed.is_some() {
        header.insert(3, "spoofed".into());
    }
    let mut cells = vec![header];
    for s in list {
        let kind = match s.allotment {
            Allotment::Volume { measure, .. } => format!("/month ({})", measure.name()),
            Allotment::P95 { .. } => " (p95)".to_owned(),
        };
        let mut row = vec![
            s.customer.clone(),
            s.state.name().to_owned(),
            amount(s.measured.used, s.unit),
            format!("{}{kind}", amount(s.amount, s.unit)),
            format!("{:.1}%", s.percent()),
            amount(s.measured.estimate, s.unit),
            s.since.map_or_else(|| "-".to_owned(), time),
            format!("{} .. {}", time(s.period.start), time(s.period.end)),
        ];
        if let Some(t) = spoofed_of(s) {
            row.insert(3, decimal_bytes(t.bytes));
        }
        cells.push(row);
    }
    let align = if spoofed.is_some() {
        "llrrrrrll"
    } else {
        "llrrrrll"
    };
    table(&cells, align, out)
}

/// What a quota event changed, in a few words: `ok -> over: 254.4 kB of 200.0 kB (127.2%)`.
pub(crate) fn event_summary(e: &QuotaEvent) -> String {
    format!(
        "{} -> {}: {} of {} ({:.1}%)",
        e.old_state,
        e.new_state,
        amount(e.used, &e.unit),
        amount(e.allotment, &e.unit),
        state::percent(e.used, e.allotment)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_units() {
        assert_eq!(super::decimal_bytes(999), "999 B");
        assert_eq!(super::decimal_bytes(254_403), "254.4 kB");
        assert_eq!(super::decimal_bytes(500_000_000_000), "500.0 GB");
    }
}
