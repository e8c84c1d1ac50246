//! Quotas: how much of its allotment each customer used in its billing period (`measure`,
//! `period`), the ok/warn/over state and its changes (`state`), the checker that reads the
//! store and records the changes (`check`), their display (`render`), and the service that
//! checks after every flush, runs the hooks and (with `shaping.auto`) shapes (`service`).

pub mod check;
#[cfg(test)]
mod check_tests;
pub mod measure;
pub mod period;
pub mod render;
pub mod service;
pub mod state;

pub use check::{Checker, Policy, Status};
pub use state::State;

use crate::shape::ShapeError;
use crate::store::quota::QuotaEvent;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// RFC 3339, seconds, UTC.
pub fn time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The placeholders of a quota hook for `e` (see `config::HOOK_PLACEHOLDERS`).
pub fn event_vars(e: &QuotaEvent, vif: Option<&str>) -> Vec<(String, String)> {
    let volume = e.unit == "bytes";
    [
        ("customer", e.customer.clone()),
        ("state", e.new_state.clone()),
        ("old_state", e.old_state.clone()),
        ("used_bytes", e.used_bytes.to_string()),
        (
            "allotment_bytes",
            if volume { e.allotment } else { 0 }.to_string(),
        ),
        (
            "percent",
            format!("{:.1}", state::percent(e.used, e.allotment)),
        ),
        ("vif", vif.unwrap_or("").to_owned()),
        ("used", e.used.to_string()),
        ("allotment", e.allotment.to_string()),
        ("unit", e.unit.clone()),
        ("estimate", e.estimate.to_string()),
        ("reason", e.reason.clone()),
        ("time", time(e.ts)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HOOK_PLACEHOLDERS;

    #[test]
    fn every_documented_placeholder_has_a_value() {
        let e = QuotaEvent {
            id: 1,
            customer: "goneril".into(),
            ts: 1_704_067_260,
            old_state: "ok".into(),
            new_state: "over".into(),
            used: 254_403,
            allotment: 200_000,
            unit: "bytes".into(),
            estimate: 1,
            used_bytes: 254_403,
            period_start: 0,
            reason: "r".into(),
            hooks: crate::store::quota::HookStatus::Pending,
        };
        let vars = event_vars(&e, Some("vif1.0"));
        let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, HOOK_PLACEHOLDERS);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("percent"), "127.2");
        assert_eq!(get("time"), "2024-01-01T00:01:00Z");
        assert_eq!(get("allotment_bytes"), "200000");
        let p95 = QuotaEvent {
            unit: "bit/s".into(),
            ..e
        };
        assert_eq!(
            event_vars(&p95, None)
                .iter()
                .find(|(k, _)| k == "allotment_bytes")
                .unwrap()
                .1,
            "0"
        );
    }
}
