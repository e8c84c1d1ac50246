//! The commands about customers: `quota`, `events` and `shape plan|apply|clear`. They read the
//! store (`quota`, `events` and `plan` never write it), judge states with the same checker as
//! `run`, and print for people or programs. `events` lists layer-2 events too.

use crate::cli::{EventsArgs, QuotaArgs, ShapeAction, ShapeTarget};
use crate::config::{Allotment, Config, Customer, Method};
use crate::period::{parse_time, PeriodError};
use crate::quota::{render, Checker, Policy, QuotaError, State, Status};
use crate::report::{AllotmentUse, By, CustomerTotals, Quantity};
use crate::shape::{self, ShapeError, System};
use crate::store::central::{open_reader, open_writer};
use crate::store::guard::{GuardStore, SpoofedTotal};
use crate::store::quota::{EventFilter, QuotaStore};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Time(#[from] PeriodError),
}

impl From<ShapeError> for CommandError {
    fn from(e: ShapeError) -> Self {
        CommandError::Quota(QuotaError::Shape(e))
    }
}

impl From<crate::store::StoreError> for CommandError {
    fn from(e: crate::store::StoreError) -> Self {
        CommandError::Quota(QuotaError::Store(e))
    }
}

impl From<std::io::Error> for CommandError {
    fn from(e: std::io::Error) -> Self {
        CommandError::Quota(QuotaError::Io(e))
    }
}

fn at(arg: &Option<String>) -> Result<i64, PeriodError> {
    match arg {
        Some(t) => Ok(parse_time(t)?.timestamp()),
        None => Ok(chrono::Utc::now().timestamp()),
    }
}

fn statuses(cfg: &Config, store: &dyn QuotaStore, at: i64) -> Result<Vec<Status>, CommandError> {
    let mut checker = Checker::new(Arc::new(Policy::new(cfg)));
    Ok(checker.evaluate(store, at)?)
}

fn known<'a>(cfg: &'a Config, name: &str) -> Result<&'a Customer, ShapeError> {
    cfg.customers
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| ShapeError::NoSuchCustomer(name.to_owned()))
}

/// `bwacct quota`.
pub fn quota(cfg: &Config, args: &QuotaArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    let at = at(&args.at)?;
    if let Some(name) = &args.customer {
        known(cfg, name)?;
    }
    let store = open_reader(&cfg.storage)?;
    let mut list = statuses(cfg, &*store, at)?;
    list.retain(|s| args.customer.as_ref().is_none_or(|n| *n == s.customer));
    let spoofed = match store.guard().filter(|_| cfg.guard.is_some()) {
        Some(g) => Some(spoofed_in_periods(g, &list, at)?),
        None => None,
    };
    render::statuses(&list, spoofed.as_ref(), at, args.format, out)?;
    Ok(())
}

/// Each customer's spoofed traffic from the start of its billing period to `at`.
fn spoofed_in_periods(
    store: &dyn GuardStore,
    list: &[Status],
    at: i64,
) -> Result<BTreeMap<String, SpoofedTotal>, CommandError> {
    let mut out = BTreeMap::new();
    let mut by_period: BTreeMap<(i64, i64), BTreeMap<String, SpoofedTotal>> = BTreeMap::new();
    for s in list {
        let range = (s.period.start, at.min(s.period.end));
        let sums = match by_period.entry(range) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(store.spoofed(range.0, range.1)?),
        };
        if let Some(t) = sums.get(&s.customer) {
            out.insert(s.customer.clone(), *t);
        }
    }
    Ok(out)
}

/// `bwacct events`: quota changes and layer-2 events, by time.
pub fn events(cfg: &Config, args: &EventsArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    let store = open_reader(&cfg.storage)?;
    let filter = EventFilter {
        customer: args.customer.clone(),
        limit: Some(args.limit),
        ..Default::default()
    };
    // both kinds are in the local store, with or without a central PostgreSQL store; a sensor
    // whose local store does not exist yet has none
    let list = match store.guard() {
        Some(g) => GuardStore::events(g, &filter, args.kind.as_deref())?,
        None => Vec::new(),
    };
    crate::guard::render::events(&list, args.format, out)?;
    Ok(())
}

/// The customers a `plan` or `apply` is for: the one named, or every one over at `--at`
/// (judged on the store, opened only then).
fn targets<'a>(
    cfg: &'a Config,
    t: &ShapeTarget,
    store: impl FnOnce() -> Result<Box<dyn QuotaStore>, crate::store::StoreError>,
    out: &mut dyn Write,
) -> Result<Vec<&'a Customer>, CommandError> {
    if let Some(name) = &t.customer {
        return Ok(vec![known(cfg, name)?]);
    }
    let at = at(&t.at)?;
    let mut list = Vec::new();
    for s in statuses(cfg, &*store()?, at)? {
        if s.state != State::Over {
            continue;
        }
        let c = known(cfg, &s.customer)?;
        if c.shape.is_some() {
            list.push(c);
        } else {
            writeln!(out, "# customer {} is over but has no shape", c.name)?;
        }
    }
    Ok(list)
}

/// `bwacct shape plan|apply|clear`.
pub fn shape(cfg: &Config, action: &ShapeAction, out: &mut dyn Write) -> Result<(), CommandError> {
    match action {
        ShapeAction::Plan(t) => {
            let store = || open_reader(&cfg.storage);
            let list = targets(cfg, t, store, out)?;
            shape::render(&shape::plan(&list, &cfg.shaping)?, out)?;
        }
        ShapeAction::Apply(t) => {
            let list = targets(cfg, t, || open_writer(&cfg.storage), out)?;
            let mut store = open_writer(&cfg.storage)?;
            let steps = shape::plan(&list, &cfg.shaping)?;
            if cfg.shaping.method == Method::Bridge && !steps.is_empty() {
                if let Some(w) = shape::bridge_netfilter_warning() {
                    tracing::warn!("{w}");
                }
            }
            let now = chrono::Utc::now().timestamp();
            let done = shape::apply(&steps, &mut System, &mut *store, now)?;
            writeln!(
                out,
                "applied: {} steps run, {} already in effect",
                done.ran, done.unchanged
            )?;
        }
        ShapeAction::Clear { customer } => {
            let mut store = open_writer(&cfg.storage)?;
            let done = shape::clear(customer.as_deref(), &mut System, &mut *store)?;
            writeln!(
                out,
                "cleared: {} steps undone, {} already gone",
                done.ran, done.unchanged
            )?;
        }
    }
    Ok(())
}

/// The customers section of the HTML report: each customer's traffic over the report's period
/// and, where it has an allotment, its use of it at the end of that period (measured over its
/// billing period, as `quota` does).
pub fn report_customers(
    cfg: &Config,
    store: &dyn QuotaStore,
    period: crate::period::Period,
    now: i64,
) -> Result<Vec<CustomerTotals>, CommandError> {
    if cfg.customers.is_empty() {
        return Ok(Vec::new());
    }
    let customers = crate::customer::Customers::new(cfg.customers.clone());
    let rows = crate::report::build(store, period, By::Customer, None, None, &customers)?.rows;
    let at = period.to.timestamp().min(now);
    let status = statuses(cfg, store, at)?;
    Ok(cfg
        .customers
        .iter()
        .map(|c| {
            let usage = rows
                .iter()
                .find(|r| r.customer.as_deref() == Some(c.name.as_str()))
                .map(|r| r.usage)
                .unwrap_or_default();
            let allotment = status.iter().find(|s| s.customer == c.name).map(|s| {
                let (measure, used, allowed) = match s.allotment {
                    Allotment::Volume { measure, .. } => (
                        measure.name().to_owned(),
                        Quantity::Bytes(s.measured.used),
                        Quantity::Bytes(s.amount),
                    ),
                    Allotment::P95 { .. } => (
                        "95th percentile".to_owned(),
                        Quantity::BitsPerSecond(s.measured.used as f64),
                        Quantity::BitsPerSecond(s.amount as f64),
                    ),
                };
                AllotmentUse {
                    measure,
                    used,
                    allowed,
                    state: s.state.name().to_owned(),
                }
            });
            CustomerTotals {
                name: c.name.clone(),
                addresses: c.networks.len(),
                usage,
                allotment,
            }
        })
        .collect())
}
