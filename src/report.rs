//! Usage reports over a period, per IP or per customer: built from the store, rendered as a
//! table, CSV or the JSON shape of DESIGN.md (which other tools read: keep it exact).

mod customer;

pub use customer::{annotate_spoofed, annotate_states};

use crate::classify::Class;
use crate::customer::Customers;
use crate::period::Period;
use crate::store::guard::SpoofedTotal;
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
    Customer,
}

impl By {
    fn name(self) -> &'static str {
        match self {
            By::Ip => "ip",
            By::Customer => "customer",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    /// The address or network of the row; for a customer row, its first address (or, for the
    /// row of addresses that belong to no customer, the first of them).
    pub host: Host,
    /// The customer the row belongs to (none: no customer holds it).
    pub customer: Option<String>,
    pub usage: Usage,
    /// Customer rows: the stored addresses and networks summed into the row.
    pub ips: Vec<Host>,
    /// Customer rows: the quota state at the end of the period, when one was recorded.
    pub state: Option<String>,
    /// Customer rows with `[guard]`: traffic from the customer's addresses sent by other MACs
    /// in the period (included in `usage`, shown beside it).
    pub spoofed: Option<SpoofedTotal>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub period: Period,
    pub by: By,
    pub rows: Vec<Row>,
}

/// Builds a report: rows sorted by total bytes (largest first, then by address or customer),
/// at most `top`. Per IP, each row names its customer; per customer, every configured customer
/// has a row (zero if it sent nothing), and the addresses of no customer share one more row.
pub fn build(
    store: &dyn Store,
    period: Period,
    by: By,
    sensor: Option<String>,
    top: Option<usize>,
    customers: &Customers,
) -> Result<Report, StoreError> {
    let q = Query {
        from: period.from.timestamp(),
        to: period.to.timestamp(),
        sensor,
    };
    let hosts = store.usage_by_host(&q)?;
    let mut rows: Vec<Row> = match by {
        By::Ip => hosts
            .into_iter()
            .map(|(host, usage)| Row {
                host,
                customer: customers.of(&host).map(|c| c.name.clone()),
                usage,
                ips: Vec::new(),
                state: None,
                spoofed: None,
            })
            .collect(),
        By::Customer => customer::rows(hosts, customers),
    };
    rows.sort_by(|a, b| {
        let tie = match by {
            By::Ip => a.host.cmp(&b.host),
            By::Customer => a
                .customer
                .is_none()
                .cmp(&b.customer.is_none())
                .then_with(|| a.customer.cmp(&b.customer)),
        };
        b.usage.total().cmp(&a.usage.total()).then(tie)
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

/// Every class of a usage as JSON: `{"tcp": {..}, "udp": {..}, ...}` (also the API's series points).
pub struct ClassesJson<'a>(pub &'a Usage);

impl Serialize for ClassesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(Class::ALL.len()))?;
        for class in Class::ALL {
            m.serialize_entry(class.name(), &ClassJson(self.0, class))?;
        }
        m.end()
    }
}

/// A row as JSON: `ip` and `customer` per IP; `customer`, `ips` and `state` per customer.
struct RowJson<'a>(&'a Row, By);

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RowJson(row, by) = self;
        let u = &row.usage;
        let mut m = s.serialize_struct("Row", 10)?;
        match by {
            By::Ip => {
                m.serialize_field("ip", &row.host)?;
                m.serialize_field("customer", &row.customer)?;
            }
            By::Customer => {
                m.serialize_field("customer", &row.customer)?;
                m.serialize_field("ips", &row.ips)?;
                m.serialize_field("state", &row.state)?;
                if let Some(t) = &row.spoofed {
                    m.serialize_field("spoofed_bytes", &t.bytes)?;
                    m.serialize_field("spoofed_packets", &t.packets)?;
                }
            }
        }
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
        let rows: Vec<RowJson<'_>> = self.rows.iter().map(|r| RowJson(r, self.by)).collect();
        m.serialize_field("rows", &rows)?;
        m.end()
    }
}

/// Neutralises spreadsheet formulas in untrusted text (`=`, `+`, `-`, `@` at the start).
fn csv_text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn csv(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let first = match report.by {
        By::Ip => ["ip", "customer"],
        By::Customer => ["customer", "ips"],
    };
    let mut header = vec![
        first[0].to_owned(),
        first[1].to_owned(),
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
    let spoofed = report.rows.iter().any(|r| r.spoofed.is_some());
    if spoofed {
        header.extend(["spoofed_bytes".to_owned(), "spoofed_packets".to_owned()]);
    }
    w.write_record(&header)?;
    for row in &report.rows {
        let u = &row.usage;
        let customer = csv_text(row.customer.as_deref().unwrap_or(""));
        let (a, b) = match report.by {
            By::Ip => (row.host.to_string(), customer),
            By::Customer => (customer, customer::ip_list(&row.ips, usize::MAX)),
        };
        let mut rec = vec![
            a,
            b,
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
        if spoofed {
            let t = row.spoofed.unwrap_or_default();
            rec.extend([t.bytes.to_string(), t.packets.to_string()]);
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
    let first = match report.by {
        By::Ip => ["address", "customer"],
        By::Customer => ["customer", "addresses"],
    };
    let header = [
        first[0],
        first[1],
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
        let customer = row.customer.clone().unwrap_or_else(|| "-".into());
        let (a, b) = match report.by {
            By::Ip => (row.host.to_string(), customer),
            By::Customer => {
                let mut notes: Vec<String> = row.state.iter().cloned().collect();
                if let Some(t) = row.spoofed.filter(|t| t.packets > 0) {
                    notes.push(format!("spoofed {}", units::bytes(t.bytes)));
                }
                (
                    match notes.is_empty() {
                        true => customer,
                        false => format!("{customer} ({})", notes.join("; ")),
                    },
                    customer::ip_list(&row.ips, 3),
                )
            }
        };
        let mut line = vec![
            a,
            b,
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
