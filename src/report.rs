//! Usage reports over a period, per IP: built from the store, rendered as a table, CSV or the
//! JSON shape of DESIGN.md (which other tools read: keep it exact).

use crate::classify::Class;
use crate::period::Period;
use crate::store::{Query, Store, StoreError};
use crate::units;
use crate::usage::{Dir, Host, Usage};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Ip,
}

impl By {
    fn name(self) -> &'static str {
        match self {
            By::Ip => "ip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub host: Host,
    pub customer: Option<String>,
    pub usage: Usage,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub period: Period,
    pub by: By,
    pub rows: Vec<Row>,
}

/// Builds a report: rows sorted by total bytes (largest first, then by address), at most `top`.
pub fn build(
    store: &dyn Store,
    period: Period,
    by: By,
    sensor: Option<String>,
    top: Option<usize>,
) -> Result<Report, StoreError> {
    let q = Query {
        from: period.from.timestamp(),
        to: period.to.timestamp(),
        sensor,
    };
    let mut rows: Vec<Row> = store
        .usage_by_host(&q)?
        .into_iter()
        .map(|(host, usage)| Row {
            host,
            customer: None,
            usage,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.usage
            .total()
            .cmp(&a.usage.total())
            .then_with(|| a.host.cmp(&b.host))
    });
    if let Some(n) = top {
        rows.truncate(n);
    }
    Ok(Report { period, by, rows })
}

/// Writes the report in a format.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Format::Csv => csv(report, out),
        Format::Table => table(report, out),
    }
}

/// The four numbers of one class, as JSON: `{"tx_bytes": .., "rx_bytes": .., "tx_packets": ..,
/// "rx_packets": ..}`.
struct ClassJson<'a>(&'a Usage, Class);

impl Serialize for ClassJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("Class", 4)?;
        m.serialize_field("tx_bytes", &self.0.get(Dir::Tx, self.1, false))?;
        m.serialize_field("rx_bytes", &self.0.get(Dir::Rx, self.1, false))?;
        m.serialize_field("tx_packets", &self.0.get(Dir::Tx, self.1, true))?;
        m.serialize_field("rx_packets", &self.0.get(Dir::Rx, self.1, true))?;
        m.end()
    }
}

struct ClassesJson<'a>(&'a Usage);

impl Serialize for ClassesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(Class::ALL.len()))?;
        for class in Class::ALL {
            m.serialize_entry(class.name(), &ClassJson(self.0, class))?;
        }
        m.end()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = &self.usage;
        let mut m = s.serialize_struct("Row", 7)?;
        m.serialize_field("ip", &self.host)?;
        m.serialize_field("customer", &self.customer)?;
        m.serialize_field("tx_bytes", &u.total_bytes(Dir::Tx))?;
        m.serialize_field("rx_bytes", &u.total_bytes(Dir::Rx))?;
        m.serialize_field("tx_packets", &u.total_packets(Dir::Tx))?;
        m.serialize_field("rx_packets", &u.total_packets(Dir::Rx))?;
        m.serialize_field("classes", &ClassesJson(u))?;
        m.end()
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("Report", 4)?;
        let time =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        m.serialize_field("from", &time(self.period.from))?;
        m.serialize_field("to", &time(self.period.to))?;
        m.serialize_field("by", self.by.name())?;
        m.serialize_field("rows", &self.rows)?;
        m.end()
    }
}

/// Neutralises spreadsheet formulas in untrusted text (`=`, `+`, `-`, `@`, tab or CR at the
/// start, also after leading spaces, which spreadsheets skip).
fn csv_text(s: &str) -> String {
    if s.trim_start_matches(' ')
        .starts_with(['=', '+', '-', '@', '\t', '\r'])
    {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn csv(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec![
        "ip".to_owned(),
        "customer".to_owned(),
        "tx_bytes".to_owned(),
        "rx_bytes".to_owned(),
        "tx_packets".to_owned(),
        "rx_packets".to_owned(),
    ];
    for class in Class::ALL {
        for col in ["tx_bytes", "rx_bytes", "tx_packets", "rx_packets"] {
            header.push(format!("{}_{col}", class.name()));
        }
    }
    w.write_record(&header)?;
    for row in &report.rows {
        let u = &row.usage;
        let mut rec = vec![
            row.host.to_string(),
            csv_text(row.customer.as_deref().unwrap_or("")),
            u.total_bytes(Dir::Tx).to_string(),
            u.total_bytes(Dir::Rx).to_string(),
            u.total_packets(Dir::Tx).to_string(),
            u.total_packets(Dir::Rx).to_string(),
        ];
        for class in Class::ALL {
            for (dir, packets) in [
                (Dir::Tx, false),
                (Dir::Rx, false),
                (Dir::Tx, true),
                (Dir::Rx, true),
            ] {
                rec.push(u.get(dir, class, packets).to_string());
            }
        }
        w.write_record(&rec)?;
    }
    w.flush()
}

fn table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    writeln!(
        out,
        "Usage by {} from {} to {}: {} rows",
        report.by.name(),
        time(report.period.from),
        time(report.period.to),
        report.rows.len()
    )?;
    let header = [
        "address",
        "customer",
        "total",
        "sent",
        "received",
        "pkts sent",
        "pkts recv",
        "tcp",
        "udp",
        "icmp",
        "other",
        "http",
        "ftp",
        "mail",
        "p2p",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for row in &report.rows {
        let u = &row.usage;
        let mut line = vec![
            row.host.to_string(),
            row.customer.clone().unwrap_or_else(|| "-".into()),
            units::bytes(u.total()),
            units::bytes(u.total_bytes(Dir::Tx)),
            units::bytes(u.total_bytes(Dir::Rx)),
            u.total_packets(Dir::Tx).to_string(),
            u.total_packets(Dir::Rx).to_string(),
        ];
        for class in Class::ALL {
            line.push(units::bytes(
                u.get(Dir::Tx, class, false) + u.get(Dir::Rx, class, false),
            ));
        }
        cells.push(line);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &cells {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(&widths).enumerate() {
            if i < 2 {
                text.push_str(&format!("{cell:<w$}  "));
            } else {
                text.push_str(&format!("{cell:>w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::csv_text;

    #[test]
    fn spreadsheet_formulas_are_neutralised() {
        for bad in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "  =HYPERLINK(\"x\")",
        ] {
            assert!(csv_text(bad).starts_with('\''), "{bad:?}");
        }
        for fine in ["goneril", "198.51.100.7", "a=b", ""] {
            assert_eq!(csv_text(fine), fine);
        }
    }
}
