//! `bwacct events` output for both kinds of event (quota changes and layer-2 events), oldest
//! first: one aligned table for people, one JSON list for programs (quota rows keep their
//! fields). Also the few words that say what a layer-2 event is about (the dashboard's too).

use super::GuardEvent;
use crate::parse::l2::Mac;
use crate::quota::render::{
    event_json as quota_json, event_summary as quota_summary, table, Format,
};
use crate::quota::time;
use crate::store::guard::Event;
use serde_json::{json, Value};
use std::io::Write;

/// A layer-2 event as JSON.
pub fn event_json(e: &GuardEvent) -> Value {
    json!({
        "time": time(e.ts),
        "kind": e.kind.name(),
        "sensor": e.sensor,
        "customer": e.customer,
        "ip": e.ip,
        "old_macs": e.old_macs,
        "new_mac": e.new_mac,
        "packets": e.packets,
        "bytes": e.bytes,
        "macs": e.macs,
        "groups": e.groups,
        "interval_start": time(e.interval_start),
        "reason": e.reason,
        "hooks": e.hooks.name(),
    })
}

fn macs(l: &[Mac]) -> String {
    l.iter().map(Mac::to_string).collect::<Vec<_>>().join(",")
}

/// What a layer-2 event is about, in a few words: `198.51.100.1 02:..:aa -> 02:..:bb`.
pub fn summary(e: &GuardEvent) -> String {
    let ip = e.ip.map(|i| i.to_string()).unwrap_or_default();
    let new = e.new_mac.map(|m| m.to_string()).unwrap_or_default();
    match e.kind {
        super::Kind::MacFlood => {
            let place = e.groups.first().map_or(String::new(), |g| {
                format!(" (most on {} vlan {})", g.interface, g.vlan)
            });
            format!("{} source MACs{place}", e.packets)
        }
        super::Kind::ArpSpoof => format!("{ip} {} -> {new}", macs(&e.old_macs)),
        super::Kind::ArpReplyFlood => {
            format!(
                "{} unsolicited replies, most from {new} for {ip}",
                e.packets
            )
        }
        super::Kind::SpoofedSource => format!(
            "{} packets, {} from {new} as {ip}",
            e.packets,
            crate::units::bytes(e.bytes)
        ),
    }
}

/// `bwacct events`.
pub fn events(list: &[Event], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        let rows: Vec<Value> = list
            .iter()
            .map(|e| match e {
                Event::Quota(q) => quota_json(q),
                Event::Guard(g) => event_json(g),
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &json!({"events": rows}))?;
        return writeln!(out);
    }
    let mut cells = vec![["time", "kind", "customer", "event", "hooks", "reason"]
        .map(String::from)
        .to_vec()];
    for e in list {
        let (what, reason) = match e {
            Event::Quota(q) => (quota_summary(q), q.reason.clone()),
            Event::Guard(g) => (summary(g), g.reason.clone()),
        };
        cells.push(vec![
            time(e.ts()),
            e.kind().to_owned(),
            e.customer().unwrap_or("-").to_owned(),
            what,
            e.hooks().name().to_owned(),
            reason,
        ]);
    }
    table(&cells, "llllll", out)
}
