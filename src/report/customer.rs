//! Per-customer report rows: usage rows summed by the customer that holds them (see
//! `crate::customer` for who holds what), the quota state each customer ended the period in,
//! and (with `[guard]`) its spoofed traffic in the period.

use super::{By, Report, Row};
use crate::customer::Customers;
use crate::store::guard::GuardStore;
use crate::store::quota::{EventFilter, QuotaStore};
use crate::store::StoreError;
use crate::usage::{Host, Usage};
use std::collections::{BTreeMap, HashMap};

/// One row per configured customer, and one for the addresses of nobody (if any).
pub(super) fn rows(hosts: Vec<(Host, Usage)>, customers: &Customers) -> Vec<Row> {
    let mut groups: BTreeMap<Option<String>, (Vec<Host>, Usage)> = customers
        .iter()
        .map(|c| (Some(c.name.clone()), (Vec::new(), Usage::default())))
        .collect();
    for (host, usage) in hosts {
        let key = customers.of(&host).map(|c| c.name.clone());
        let g = groups.entry(key).or_default();
        g.0.push(host);
        g.1.merge(&usage);
    }
    groups
        .into_iter()
        .filter_map(|(customer, (mut ips, usage))| {
            ips.sort();
            let first = match &customer {
                Some(name) => customers
                    .get(name)
                    .and_then(|c| c.networks.first())
                    .map(|n| match n.prefix_len() == n.max_prefix_len() {
                        true => Host::Addr(n.addr()),
                        false => Host::Net(*n),
                    }),
                None => ips.first().copied(),
            }?;
            Some(Row {
                host: first,
                customer,
                usage,
                ips,
                state: None,
                spoofed: None,
            })
        })
        .collect()
}

/// The addresses, space-separated, at most `max` of them and a count of the rest.
pub(super) fn ip_list(ips: &[Host], max: usize) -> String {
    let mut s: Vec<String> = ips.iter().take(max).map(Host::to_string).collect();
    if ips.len() > max {
        s.push(format!("+{}", ips.len() - max));
    }
    s.join(" ")
}

/// Fills each customer row's quota state at the end of the report's period: the state of its
/// last change before then, or `ok` for a customer checked without a change.
pub fn annotate_states(report: &mut Report, store: &dyn QuotaStore) -> Result<(), StoreError> {
    if report.by != By::Customer {
        return Ok(());
    }
    let to = report.period.to.timestamp();
    let mut last: HashMap<String, String> = HashMap::new();
    for e in store.quota_events(&EventFilter {
        before: Some(to),
        ..Default::default()
    })? {
        last.insert(e.customer, e.new_state);
    }
    let checked: HashMap<String, i64> = store
        .quota_states()?
        .into_iter()
        .map(|s| (s.customer, s.since))
        .collect();
    for row in &mut report.rows {
        let Some(name) = &row.customer else {
            continue;
        };
        row.state = last.get(name).cloned().or_else(|| {
            checked
                .get(name)
                .filter(|since| **since < to)
                .map(|_| "ok".to_owned())
        });
    }
    Ok(())
}

/// Fills each customer row's spoofed traffic in the report's period (intervals starting in it).
pub fn annotate_spoofed(report: &mut Report, store: &dyn GuardStore) -> Result<(), StoreError> {
    if report.by != By::Customer {
        return Ok(());
    }
    let sums = store.spoofed(report.period.from.timestamp(), report.period.to.timestamp())?;
    for row in &mut report.rows {
        if let Some(name) = &row.customer {
            row.spoofed = Some(sums.get(name).copied().unwrap_or_default());
        }
    }
    Ok(())
}
