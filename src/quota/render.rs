//! `bwacct quota` and `bwacct events` output: aligned tables for people, JSON for programs.
//! Volumes in decimal units (allotments are sold in GB of 10⁹ bytes), rates in bit/s.

use super::check::Status;
use super::{state, time};
use crate::config::Allotment;
use crate::store::quota::QuotaEvent;
use serde_json::{json, Value};
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

fn status_json(s: &Status) -> Value {
    let (kind, measure) = match s.allotment {
        Allotment::Volume { measure, .. } => ("volume", Some(measure.name())),
        Allotment::P95 { .. } => ("p95", None),
    };
    json!({
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
    })
}

fn event_json(e: &QuotaEvent) -> Value {
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
fn table(cells: &[Vec<String>], align: &str, out: &mut dyn Write) -> std::io::Result<()> {
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

/// `bwacct quota`.
pub fn statuses(
    list: &[Status],
    at: i64,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if format == Format::Json {
        let rows: Vec<Value> = list.iter().map(status_json).collect();
        serde_json::to_writer_pretty(&mut *out, &json!({"at": time(at), "rows": rows}))?;
        return writeln!(out);
    }
    writeln!(out, "Quotas at {}: {} customers", time(at), list.len())?;
    let mut cells = vec![[
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
    .to_vec()];
    for s in list {
        let kind = match s.allotment {
            Allotment::Volume { measure, .. } => format!("/month ({})", measure.name()),
            Allotment::P95 { .. } => " (p95)".to_owned(),
        };
        cells.push(vec![
            s.customer.clone(),
            s.state.name().to_owned(),
            amount(s.measured.used, s.unit),
            format!("{}{kind}", amount(s.amount, s.unit)),
            format!("{:.1}%", s.percent()),
            amount(s.measured.estimate, s.unit),
            s.since.map_or_else(|| "-".to_owned(), time),
            format!("{} .. {}", time(s.period.start), time(s.period.end)),
        ]);
    }
    table(&cells, "llrrrrll", out)
}

/// `bwacct events`.
pub fn events(list: &[QuotaEvent], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        let rows: Vec<Value> = list.iter().map(event_json).collect();
        serde_json::to_writer_pretty(&mut *out, &json!({"events": rows}))?;
        return writeln!(out);
    }
    let mut cells = vec![[
        "time",
        "customer",
        "change",
        "used",
        "allotment",
        "percent",
        "hooks",
        "reason",
    ]
    .map(String::from)
    .to_vec()];
    for e in list {
        cells.push(vec![
            time(e.ts),
            e.customer.clone(),
            format!("{} -> {}", e.old_state, e.new_state),
            amount(e.used, &e.unit),
            amount(e.allotment, &e.unit),
            format!("{:.1}%", state::percent(e.used, e.allotment)),
            e.hooks.name().to_owned(),
            e.reason.clone(),
        ]);
    }
    table(&cells, "lllrrrll", out)
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
