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
    about = "Bandwidth accounting by IP header: per-host traffic from packet captures, for hosting providers",
    long_about = "Bandwidth accounting by IP header: counts, per IP address, the bytes and packets each host sent and received (per class: tcp, udp, icmp, other, http, ftp, mail, p2p) from a live capture or capture files, stores them in SQLite with hourly and daily rollups, and reports them.",
    after_help = "The configuration is TOML (see /usr/share/doc/bwacct/bwacct.toml or contrib/bwacct.toml). Logs go to standard error (journald under systemd)."
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
    #[command(
        long_about = "Capture live on [capture] interfaces and write one sample per host per interval (aligned to the UTC clock) to the store, in one transaction per interval. Between flushes, complete hours and days are rolled up into the hourly and daily levels and rows older than [storage.retention] are pruned, a little at a time. Logs one line per interval (packets, bytes, drops, active IPs, flush time) and warns about kernel drops and store retries. SIGTERM or SIGINT flush what is counted and exit."
    )]
    Run,
    /// Count capture files (pcap, pcapng) into the store as if captured live, then print a summary.
    #[command(
        long_about = "Count capture files (pcap, pcapng) into the store as if captured live: intervals come from the packets' own timestamps. At the end, everything written before the current hour is rolled up into the hourly and daily levels. Prints packets, accounted, foreign, non-IP, malformed, length mismatch, seconds and packets/s."
    )]
    Replay(ReplayArgs),
    /// Usage per host over a period.
    #[command(
        long_about = "Usage per host over a period: a day, a month or any range; yesterday by default. Days and months start at midnight in [report] timezone (UTC unless configured) or --timezone. Totals are read from the daily and hourly rollups where they answer exactly, from the samples elsewhere: they are the same whichever answers."
    )]
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
    /// Load BandwidthD's CDF logs (log.N.M.cdf) into the store, keeping history when switching.
    #[command(
        long_about = "Load BandwidthD's CDF logs into the store. Each line (address, time, bytes sent then received for total, icmp, udp, tcp, ftp, http, mail, p2p) becomes one interval ending at its time. The interval comes from the file name (log.1.*: 200 s, log.2.*: 600 s, log.3.*: 1 hour, log.4.*: 12 hours) or --interval. BandwidthD writes the same traffic to all four series: where a finer series covers a time, the coarser ones are skipped there. A file already imported (same content) is skipped. Lines with the upstream missing comma are split where the counts allow."
    )]
    ImportCdf(ImportCdfArgs),
    /// Delete what is older than the retention of each level (`run` prunes continuously).
    #[command(
        long_about = "Delete what is older than [storage.retention] in each level of the store, now, in short transactions (`run` does the same between flushes). Samples are only deleted once the hourly level holds them, hourly rows once the daily level does: reports of whole hours and days keep their totals."
    )]
    Prune,
    /// Print a completion script for a shell.
    Completions(CompletionsArgs),
    /// Write the manual pages (bwacct.1 and one per subcommand).
    Manpage(ManpageArgs),
    /// Print an argon2 hash of a password for `[web] users`. The password is read from the
    /// terminal (twice, not echoed) or from the first line of standard input.
    Passwd,
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
pub struct ImportCdfArgs {
    /// CDF files (log.1.0.cdf, log.2.0.cdf, ...); rotated ones too (log.1.1.cdf ...).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Seconds per line, for files not named log.N.M.cdf.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub interval: Option<u32>,
    /// Store under this sensor name (default: the configured sensor).
    #[arg(long)]
    pub sensor: Option<String>,
    /// Skip lines that cannot be read (counted and listed) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Import files even if the same content was imported before.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Directory for the pages (default: print bwacct.1 to standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files, replayed in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// One day, YYYY-MM-DD (in the report's time zone).
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
    /// Output format: table and html in human units, csv, json and cdf exact.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Time zone for day and month boundaries, e.g. Europe/Berlin (default: `[report] timezone`).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Only the N largest rows.
    #[arg(long)]
    pub top: Option<usize>,
    /// Only this sensor's counts (default: the sum over sensors).
    #[arg(long)]
    pub sensor: Option<String>,
    /// Write to a file instead of standard output; "{date}" in the name becomes the period's
    /// first day (YYYY-MM-DD), e.g. /var/lib/bwacct/reports/usage-{date}.html.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add each address's name: its `[names] static` name, else its customer's, else (with
    /// `[names] reverse_dns = true`) its PTR name. JSON rows get "name", CSV a last column.
    #[arg(long)]
    pub names: bool,
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
