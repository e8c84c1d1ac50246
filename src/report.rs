//! Usage reports over a period, per IP or per customer: built from the store, rendered as a
//! table, CSV, the JSON shape of DESIGN.md (which other tools read: keep it exact),
//! BandwidthD's CDF lines, or a self-contained HTML page (`html`). Reads the store only through
//! [`Store`].

mod customer;
mod html;

pub use customer::{annotate_spoofed, annotate_states};
pub use html::{AllotmentUse, CustomerTotals, Quantity};

use crate::classify::Class;
use crate::customer::Customers;
use crate::names::NameMap;
use crate::period::Period;
use crate::rollup::{self, Level};
use crate::store::guard::SpoofedTotal;
use crate::store::{Query, Store, StoreError};
use crate::units;
use crate::usage::{Dir, Host, Usage};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns in human units (KiB, MiB, GiB).
    Table,
    /// Exact integers, one row per address, every class.
    Csv,
    /// DESIGN.md's JSON shape, exact integers.
    Json,
    /// A self-contained page: graph of the period, top talkers, customers.
    Html,
    /// BandwidthD's CDF lines (`ip,time,sent x 8,received x 8`), time = the period's end.
    Cdf,
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
    /// What the reader should know: parts of the period older than the retention of the level
    /// that answers them (shown in tables and pages, logged by the command).
    pub notes: Vec<String>,
    /// Usage of all hosts over time, for the HTML graph: filled by [`Report::add_series`].
    pub series: Vec<SeriesPoint>,
    /// Per-customer totals with their allotment use, shown by the HTML page when not empty.
    /// The customer module fills it; a report per IP without customers leaves it empty.
    pub customers: Vec<CustomerTotals>,
    /// Names of the rows' hosts, when asked for (`report --names`): per IP, the JSON rows then
    /// carry `"name"` (null when unknown), CSV a last column `name`, the table a column.
    pub names: Option<NameMap>,
}

impl Report {
    /// The name of a row's host, when names were asked for and it has one.
    pub fn name(&self, row: &Row) -> Option<&str> {
        self.names.as_ref()?.get(&row.host).map(String::as_str)
    }

    fn named(&self) -> bool {
        self.names.is_some() && self.by == By::Ip
    }
}

/// Usage of every host together over `[from, to)` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPoint {
    pub from: i64,
    pub to: i64,
    pub usage: Usage,
}

/// Periods up to this long are graphed per hour, longer ones per day.
const HOURLY_GRAPH_MAX: i64 = 3 * rollup::DAY;

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
    let notes = pruned_notes(store, &period)?;
    Ok(Report {
        period,
        by,
        rows,
        notes,
        series: Vec::new(),
        customers: Vec::new(),
        names: None,
    })
}

/// A note for every part of the period answered by a level that was pruned there.
fn pruned_notes(store: &dyn Store, period: &Period) -> Result<Vec<String>, StoreError> {
    let (from, to) = (period.from.timestamp(), period.to.timestamp());
    let mut notes = Vec::new();
    for p in rollup::plan(from, to, &store.watermarks()?) {
        if let Some(kept) = store.kept_since(p.level)? {
            if p.from < kept {
                notes.push(format!(
                    "{} to {} is answered from {} rows, which are only kept from {} on (storage.retention): that part is incomplete",
                    show_time(period, p.from),
                    show_time(period, p.to.min(kept)),
                    p.level.name(),
                    show_time(period, kept)
                ));
            }
        }
    }
    Ok(notes)
}

/// A Unix time in the period's zone, e.g. `2026-11-24 00:00 CET`.
fn show_time(period: &Period, ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&period.zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

impl Report {
    /// Reads the usage of all hosts over the period for the graph: per hour for periods up to
    /// three days, per day beyond (shorter steps at the edges), from the same levels as the
    /// totals. Empty steps are points too.
    pub fn add_series(
        &mut self,
        store: &dyn Store,
        sensor: Option<String>,
    ) -> Result<(), StoreError> {
        let (from, to) = (self.period.from.timestamp(), self.period.to.timestamp());
        let step = if to - from <= HOURLY_GRAPH_MAX {
            Level::Hourly
        } else {
            Level::Daily
        };
        let q = Query { from, to, sensor };
        let mut points = Vec::new();
        for p in rollup::plan_up_to(from, to, step, &store.watermarks()?) {
            // a level's own buckets, or the graph's step over samples
            let width = p.level.bucket().or(step.bucket()).unwrap_or(rollup::HOUR);
            let mut rows = store
                .series_at(p.level, &q.piece(&p), None)?
                .into_iter()
                .peekable();
            let mut t = p.from;
            while t < p.to {
                let end = (t - t.rem_euclid(width) + width).min(p.to);
                let mut usage = Usage::default();
                while let Some((_, u)) = rows.next_if(|(ts, _)| *ts < end) {
                    usage.merge(&u);
                }
                points.push(SeriesPoint {
                    from: t,
                    to: end,
                    usage,
                });
                t = end;
            }
        }
        self.series = points;
        Ok(())
    }
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
        Format::Html => html::render(report, out),
        Format::Cdf => cdf(report, out),
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

/// A row as JSON: `ip` and `customer` per IP (and `name` when names were asked for);
/// `customer`, `ips` and `state` per customer.
struct RowJson<'a>(&'a Row, &'a Report);

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RowJson(row, report) = self;
        let u = &row.usage;
        let mut m = s.serialize_struct("Row", 10)?;
        match report.by {
            By::Ip => {
                m.serialize_field("ip", &row.host)?;
                m.serialize_field("customer", &row.customer)?;
                if report.named() {
                    m.serialize_field("name", &report.name(row))?;
                }
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
        let zone = self.period.zone;
        let time = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&zone)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        m.serialize_field("from", &time(self.period.from))?;
        m.serialize_field("to", &time(self.period.to))?;
        m.serialize_field("by", self.by.name())?;
        let rows: Vec<RowJson<'_>> = self.rows.iter().map(|r| RowJson(r, self)).collect();
        m.serialize_field("rows", &rows)?;
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
    if report.named() {
        header.push("name".to_owned());
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
        if report.named() {
            rec.push(csv_text(report.name(row).unwrap_or("")));
        }
        w.write_record(&rec)?;
    }
    w.flush()
}

/// BandwidthD's CDF: per row `ip,time,` then total, icmp, udp, tcp, ftp, http, mail, p2p sent,
/// then the same received (bytes), time being the end of the period as BandwidthD stamps the
/// end of its intervals.
fn cdf(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let end = report.period.to.timestamp();
    for row in &report.rows {
        writeln!(
            out,
            "{}",
            crate::cdf::Record::from_usage(row.host, end, &row.usage)
        )?;
    }
    Ok(())
}

fn table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let p = &report.period;
    let seconds = ((p.to - p.from).num_seconds().max(1)) as f64;
    writeln!(
        out,
        "Usage by {} from {} to {}: {} rows",
        report.by.name(),
        show_time(p, p.from.timestamp()),
        show_time(p, p.to.timestamp()),
        report.rows.len()
    )?;
    let first = match report.by {
        By::Ip => ["address", "customer"],
        By::Customer => ["customer", "addresses"],
    };
    let mut header = vec![
        first[0],
        first[1],
        "total",
        "sent",
        "received",
        "average",
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
    // Names (untrusted, though checked) go in a column of their own, after the address.
    let left = if report.named() {
        header.insert(1, "name");
        3
    } else {
        2
    };
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
            units::bits_per_second(u.total() as f64 * 8.0 / seconds),
            u.total_packets(Dir::Tx).to_string(),
            u.total_packets(Dir::Rx).to_string(),
        ];
        for class in Class::ALL {
            line.push(units::bytes(
                u.get(Dir::Tx, class, false) + u.get(Dir::Rx, class, false),
            ));
        }
        if report.named() {
            line.insert(1, report.name(row).unwrap_or("-").to_owned());
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
            if i < left {
                text.push_str(&format!("{cell:<w$}  "));
            } else {
                text.push_str(&format!("{cell:>w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
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
