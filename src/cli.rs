//! The command line (clap derive): global options and one struct per subcommand.

use crate::graph::{ImageFormat, Window};
use crate::quota::render::Format as ListFormat;
use crate::report::{By, Format};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "bwacct",
    version,
    about = "Bandwidth accounting by IP header: per-host traffic from packet captures, for hosting providers"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "BWACCT_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,

    /// Log filter (tracing's env-filter syntax), e.g. "debug" or "bwacct=debug".
    #[arg(long, global = true, env = "BWACCT_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture live, flush every interval to the store; SIGTERM/SIGINT flush and exit.
    Run,
    /// Count capture files (pcap, pcapng) into the store as if captured live, then print a summary.
    Replay(ReplayArgs),
    /// Usage per host over a period.
    Report(ReportArgs),
    /// Validate the configuration and print what it means.
    CheckConfig,
    /// Allotment status per customer: used, allotment, percent, estimate, state, since.
    Quota(QuotaArgs),
    /// Stored events: quota state changes and layer-2 alarms ([guard]).
    Events(EventsArgs),
    /// Traffic shaping of customers over their allotment: plan, apply or clear.
    Shape(ShapeArgs),
    /// Draw a usage graph (PNG or SVG) of addresses or networks, or write the static site.
    Graph(GraphArgs),
    /// Serve the dashboard, the JSON API and /metrics from the store (no capture).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Only this customer.
    pub customer: Option<String>,
    /// Status as of this time (RFC 3339 or a date; default now), e.g. the time of replayed data.
    #[arg(long)]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this customer's events.
    #[arg(long)]
    pub customer: Option<String>,
    /// The newest N events.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Only this kind: quota, mac_flood, arp_spoof, arp_reply_flood or spoofed_source.
    #[arg(long, value_parser = ["quota", "mac_flood", "arp_spoof", "arp_reply_flood", "spoofed_source"])]
    pub kind: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct ShapeArgs {
    #[command(subcommand)]
    pub action: ShapeAction,
}

#[derive(Debug, Subcommand)]
pub enum ShapeAction {
    /// Print the commands that should be in effect: for every customer over its allotment, or
    /// for the one named even if it is not.
    Plan(ShapeTarget),
    /// Run those commands, skipping what is already in effect, and record them.
    Apply(ShapeTarget),
    /// Undo exactly what apply recorded (for one customer, or all).
    Clear { customer: Option<String> },
}

#[derive(Debug, Args)]
pub struct ShapeTarget {
    pub customer: Option<String>,
    /// Judge who is over as of this time (RFC 3339 or a date; default now).
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files, replayed in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// One day, YYYY-MM-DD (UTC).
    #[arg(long, conflicts_with_all = ["month", "from", "to"])]
    pub day: Option<String>,
    /// One month, YYYY-MM.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub month: Option<String>,
    /// Start (RFC 3339 or YYYY-MM-DD), inclusive.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End (RFC 3339 or YYYY-MM-DD), exclusive.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Rows per address.
    #[arg(long, value_enum, default_value = "ip")]
    pub by: By,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only the N largest rows.
    #[arg(long)]
    pub top: Option<usize>,
    /// Only this sensor's counts (default: the sum over sensors).
    #[arg(long)]
    pub sensor: Option<String>,
    /// Write to a file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Addresses or networks, summed into one graph (repeat, or separate with commas).
    #[arg(long, value_delimiter = ',', required_unless_present = "site")]
    pub ip: Vec<String>,
    /// A window ending at --end (default: now): day, week, month (30 days) or year (365 days).
    #[arg(long, value_enum, conflicts_with_all = ["day", "month", "from", "to"])]
    pub period: Option<Window>,
    /// End of the window (RFC 3339 or YYYY-MM-DD).
    #[arg(long, conflicts_with_all = ["day", "month", "from", "to"])]
    pub end: Option<String>,
    /// One day, YYYY-MM-DD (UTC).
    #[arg(long, conflicts_with_all = ["month", "from", "to"])]
    pub day: Option<String>,
    /// One month, YYYY-MM.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub month: Option<String>,
    /// Start (RFC 3339 or YYYY-MM-DD), inclusive.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End (RFC 3339 or YYYY-MM-DD), exclusive.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Image format (default: from --out's extension, else png).
    #[arg(long, value_enum)]
    pub format: Option<ImageFormat>,
    /// The picture's file.
    #[arg(long, required_unless_present = "site", conflicts_with = "site")]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = crate::graph::DEFAULT_SIZE.0)]
    pub width: u32,
    #[arg(long, default_value_t = crate::graph::DEFAULT_SIZE.1)]
    pub height: u32,
    /// Only this sensor's counts (default: the sum over sensors).
    #[arg(long)]
    pub sensor: Option<String>,
    /// Write the static site into DIR: index.html (top talkers) and a page per host with its
    /// day, week, month and year graphs.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["ip", "format"])]
    pub site: Option<PathBuf>,
    /// With --site: pages for the N busiest hosts.
    #[arg(long, default_value_t = 100)]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (default: [web] listen, else 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}
