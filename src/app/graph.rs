//! `graph`: one picture of some addresses over a window or a period, or the static site.

use super::AppError;
use crate::cli::GraphArgs;
use crate::config::Config;
use crate::customer::Customers;
use crate::graph::{host_net, Chart, GraphRequest, ImageFormat, Summary, Window};
use crate::period::{parse_time, Period, PeriodArgs};
use crate::site::{self, SiteSummary};
use crate::store::sqlite::SqliteStore;
use crate::units;
use crate::usage::Host;
use chrono::{DateTime, TimeZone, Utc};
use std::fmt;
use std::path::PathBuf;

/// The longest range one graph or site covers.
const MAX_DAYS: i64 = 366;

/// What `graph` wrote.
#[derive(Debug)]
pub enum GraphOutput {
    File {
        path: PathBuf,
        format: ImageFormat,
        summary: Summary,
    },
    Site(SiteSummary),
}

impl fmt::Display for GraphOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphOutput::File {
                path,
                format,
                summary: s,
            } => write!(
                f,
                "wrote {} ({}): sent {} peak {}, received {} peak {}",
                path.display(),
                format.extension(),
                units::bytes(s.tx_bytes),
                units::bits_per_second(s.tx_peak),
                units::bytes(s.rx_bytes),
                units::bits_per_second(s.rx_peak)
            ),
            GraphOutput::Site(s) => write!(
                f,
                "wrote {}: index.html with {} hosts, {} host pages, {} graphs",
                s.dir.display(),
                s.hosts,
                s.pages,
                s.graphs
            ),
        }
    }
}

fn unix(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

/// The range asked for: a period (`--day`, `--month`, `--from/--to`) or a window ending at
/// `--end` (default: the last day up to now).
fn range(args: &GraphArgs, now: DateTime<Utc>) -> Result<Period, AppError> {
    let period = PeriodArgs {
        day: args.day.clone(),
        month: args.month.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
    };
    let p = if period.day.is_some() || period.month.is_some() || period.from.is_some() {
        period.resolve(now)?
    } else {
        let end = match &args.end {
            Some(e) => parse_time(e)?,
            None => now,
        };
        let (from, to) = args.period.unwrap_or(Window::Day).ending(end.timestamp());
        Period {
            from: unix(from),
            to: unix(to),
            zone: chrono_tz::Tz::UTC,
        }
    };
    if p.to - p.from > chrono::Duration::days(MAX_DAYS) {
        return Err(AppError::Usage(format!(
            "a graph covers at most {MAX_DAYS} days; {} to {} is longer",
            p.from.to_rfc3339(),
            p.to.to_rfc3339()
        )));
    }
    Ok(p)
}

pub fn graph(cfg: &Config, args: &GraphArgs, now: DateTime<Utc>) -> Result<GraphOutput, AppError> {
    let period = range(args, now)?;
    let store = SqliteStore::open_read_only(&cfg.storage.sqlite)?;
    if let Some(dir) = &args.site {
        let opts = site::SiteOptions {
            period,
            top: args.top,
            sensor: args.sensor.clone(),
            customers: Customers::new(cfg.customers.clone()),
            names: cfg.names.clone(),
        };
        return Ok(GraphOutput::Site(site::write(&store, dir, &opts)?));
    }
    let mut nets = Vec::new();
    for text in &args.ip {
        let host: Host = text
            .trim()
            .parse()
            .map_err(|_| AppError::Usage(format!("--ip {text:?} is not an address or network")))?;
        nets.push(host_net(&host));
    }
    let Some(path) = args.out.clone() else {
        return Err(AppError::Usage("give --out FILE (or --site DIR)".into()));
    };
    let format = args
        .format
        .unwrap_or_else(|| match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("svg") => ImageFormat::Svg,
            _ => ImageFormat::Png,
        });
    let mut title = nets
        .iter()
        .map(crate::graph::net_name)
        .collect::<Vec<_>>()
        .join(", ");
    if let (Some(settings), [net]) = (&cfg.names, nets.as_slice()) {
        if net.prefix_len() == net.max_prefix_len() {
            let host = Host::Addr(net.addr());
            let customers = std::sync::Arc::new(Customers::new(cfg.customers.clone()));
            let names = crate::names::resolve_blocking(settings, customers, &[host])?;
            if let Some(name) = names.get(&host) {
                title = format!("{title} ({name})");
            }
        }
    }
    let chart = Chart::fetch(
        &store,
        &GraphRequest {
            title,
            nets,
            from: period.from.timestamp(),
            to: period.to.timestamp(),
            sensor: args.sensor.clone(),
        },
    )?;
    let image = chart.render(format, (args.width, args.height))?;
    std::fs::write(&path, &image.bytes).map_err(|e| {
        AppError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", path.display()),
        ))
    })?;
    Ok(GraphOutput::File {
        path,
        format,
        summary: chart.summary(),
    })
}
