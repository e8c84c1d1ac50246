//! `GuardStore` for SQLite: layer-2 events and per-interval figures. A store at an older schema
//! opened read-only has no guard tables: it reads as empty.

use super::{db_int, SqliteStore};
use crate::guard::observe::ArpCounts;
use crate::guard::{Group, GuardEvent, IntervalStats, Kind, Verdict};
use crate::parse::l2::Mac;
use crate::store::guard::{GuardStore, SpoofedTotal};
use crate::store::quota::{EventFilter, HookStatus};
use crate::store::{Query, StoreError};
use rusqlite::{params, Row};
use std::collections::BTreeMap;

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

fn macs_text(l: &[Mac]) -> String {
    l.iter().map(Mac::to_string).collect::<Vec<_>>().join(" ")
}

fn macs_of(s: &str) -> Vec<Mac> {
    s.split_whitespace()
        .filter_map(|m| m.parse().ok())
        .collect()
}

const EVENT_COLUMNS: &str = "id, sensor, ts, interval_start, kind, customer, ip, old_macs, \
    new_mac, packets, bytes, macs, groups, reason, hooks";

fn event(r: &Row<'_>) -> rusqlite::Result<Option<GuardEvent>> {
    let kind: String = r.get(4)?;
    let Some(kind) = Kind::parse(&kind) else {
        return Ok(None);
    };
    Ok(Some(GuardEvent {
        id: r.get(0)?,
        sensor: r.get(1)?,
        ts: r.get(2)?,
        interval_start: r.get(3)?,
        kind,
        customer: r.get(5)?,
        ip: r.get::<_, Option<String>>(6)?.and_then(|s| s.parse().ok()),
        old_macs: macs_of(&r.get::<_, String>(7)?),
        new_mac: r.get::<_, Option<String>>(8)?.and_then(|s| s.parse().ok()),
        packets: u(r.get(9)?),
        bytes: u(r.get(10)?),
        macs: macs_of(&r.get::<_, String>(11)?),
        groups: serde_json::from_str::<Vec<Group>>(&r.get::<_, String>(12)?).unwrap_or_default(),
        reason: r.get(13)?,
        hooks: HookStatus::parse(&r.get::<_, String>(14)?),
    }))
}

impl SqliteStore {
    fn has_guard_tables(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'guard_events'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

impl SqliteStore {
    /// Events by filter, kind and range of `interval_start`, oldest first.
    fn select_events(
        &self,
        f: &EventFilter,
        kind: Option<&str>,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<GuardEvent>, StoreError> {
        if !self.has_guard_tables()? {
            return Ok(Vec::new());
        }
        let limit = f.limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
        let sql = format!(
            "SELECT * FROM (
               SELECT {EVENT_COLUMNS} FROM guard_events
               WHERE (?1 IS NULL OR customer = ?1) AND (?2 IS NULL OR ts < ?2)
                 AND (?3 IS NULL OR hooks = ?3) AND (?4 IS NULL OR kind = ?4)
                 AND (?5 IS NULL OR interval_start >= ?5) AND (?6 IS NULL OR interval_start < ?6)
               ORDER BY ts DESC, id DESC LIMIT ?7)
             ORDER BY ts, id"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![
                    f.customer,
                    f.before,
                    f.hooks.map(HookStatus::name),
                    kind,
                    range.map(|r| r.0),
                    range.map(|r| r.1),
                    limit
                ],
                event,
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row.map_err(|e| self.err(e))?);
        }
        Ok(out)
    }
}

impl GuardStore for SqliteStore {
    fn write_guard(
        &mut self,
        v: &Verdict,
        sensor: &str,
        hooks: HookStatus,
    ) -> Result<Vec<GuardEvent>, StoreError> {
        let run = |conn: &mut rusqlite::Connection| -> rusqlite::Result<Vec<GuardEvent>> {
            let tx = conn.transaction()?;
            let s = &v.stats;
            tx.execute(
                "INSERT INTO guard_intervals (ts, sensor, interval_s, frames, macs, macs_capped,
                   baseline, arp_requests, arp_replies, arp_gratuitous, arp_probes, arp_unsolicited,
                   new_arp_bindings, new_ip_bindings, active_bindings, spoofed_packets, spoofed_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (ts, sensor) DO UPDATE SET frames = frames + excluded.frames,
                   macs = max(macs, excluded.macs), macs_capped = max(macs_capped, excluded.macs_capped),
                   baseline = excluded.baseline, arp_requests = arp_requests + excluded.arp_requests,
                   arp_replies = arp_replies + excluded.arp_replies,
                   arp_gratuitous = arp_gratuitous + excluded.arp_gratuitous,
                   arp_probes = arp_probes + excluded.arp_probes,
                   arp_unsolicited = arp_unsolicited + excluded.arp_unsolicited,
                   new_arp_bindings = new_arp_bindings + excluded.new_arp_bindings,
                   new_ip_bindings = new_ip_bindings + excluded.new_ip_bindings,
                   active_bindings = excluded.active_bindings,
                   spoofed_packets = spoofed_packets + excluded.spoofed_packets,
                   spoofed_bytes = spoofed_bytes + excluded.spoofed_bytes",
                params![
                    s.start,
                    sensor,
                    s.interval_s,
                    db_int(s.frames),
                    db_int(s.macs),
                    s.macs_capped,
                    s.baseline.map(db_int),
                    db_int(s.arp.requests),
                    db_int(s.arp.replies),
                    db_int(s.arp.gratuitous),
                    db_int(s.arp.probes),
                    db_int(s.arp.unsolicited),
                    db_int(s.new_arp_bindings),
                    db_int(s.new_ip_bindings),
                    db_int(s.active_bindings),
                    db_int(s.spoofed_packets),
                    db_int(s.spoofed_bytes),
                ],
            )?;
            let mut out = Vec::with_capacity(v.events.len());
            for e in &v.events {
                let id: i64 = tx.query_row(
                    "INSERT INTO guard_events (sensor, ts, interval_start, kind, customer, ip,
                       old_macs, new_mac, packets, bytes, macs, groups, reason, hooks)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     RETURNING id",
                    params![
                        sensor,
                        e.ts,
                        e.interval_start,
                        e.kind.name(),
                        e.customer,
                        e.ip.map(|i| i.to_string()),
                        macs_text(&e.old_macs),
                        e.new_mac.map(|m| m.to_string()),
                        db_int(e.packets),
                        db_int(e.bytes),
                        macs_text(&e.macs),
                        serde_json::to_string(&e.groups).unwrap_or_else(|_| "[]".into()),
                        e.reason,
                        hooks.name(),
                    ],
                    |r| r.get(0),
                )?;
                out.push(GuardEvent {
                    id,
                    sensor: sensor.to_owned(),
                    hooks,
                    ..e.clone()
                });
            }
            tx.commit()?;
            Ok(out)
        };
        run(&mut self.conn).map_err(|e| self.err(e))
    }

    fn guard_events(
        &self,
        f: &EventFilter,
        kind: Option<&str>,
    ) -> Result<Vec<GuardEvent>, StoreError> {
        self.select_events(f, kind, None)
    }

    fn guard_events_between(&self, from: i64, to: i64) -> Result<Vec<GuardEvent>, StoreError> {
        self.select_events(&EventFilter::default(), None, Some((from, to)))
    }

    fn set_guard_hooks(&mut self, id: i64, status: HookStatus) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE guard_events SET hooks = ?2 WHERE id = ?1",
                params![id, status.name()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn guard_intervals(&self, q: &Query) -> Result<Vec<IntervalStats>, StoreError> {
        if !self.has_guard_tables()? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, interval_s, frames, macs, macs_capped, baseline, arp_requests,
                   arp_replies, arp_gratuitous, arp_probes, arp_unsolicited, new_arp_bindings,
                   new_ip_bindings, active_bindings, spoofed_packets, spoofed_bytes
                 FROM guard_intervals
                 WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR sensor = ?3) ORDER BY ts, sensor",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![q.from, q.to, q.sensor], |r| {
                Ok(IntervalStats {
                    start: r.get(0)?,
                    interval_s: r.get(1)?,
                    frames: u(r.get(2)?),
                    macs: u(r.get(3)?),
                    macs_capped: r.get(4)?,
                    baseline: r.get::<_, Option<i64>>(5)?.map(u),
                    arp: ArpCounts {
                        requests: u(r.get(6)?),
                        replies: u(r.get(7)?),
                        gratuitous: u(r.get(8)?),
                        probes: u(r.get(9)?),
                        unsolicited: u(r.get(10)?),
                    },
                    new_arp_bindings: u(r.get(11)?),
                    new_ip_bindings: u(r.get(12)?),
                    active_bindings: u(r.get(13)?),
                    spoofed_packets: u(r.get(14)?),
                    spoofed_bytes: u(r.get(15)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn spoofed(&self, from: i64, to: i64) -> Result<BTreeMap<String, SpoofedTotal>, StoreError> {
        if !self.has_guard_tables()? {
            return Ok(BTreeMap::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT customer, sum(packets), sum(bytes) FROM guard_events
                 WHERE kind = 'spoofed_source' AND customer IS NOT NULL
                   AND interval_start >= ?1 AND interval_start < ?2
                 GROUP BY customer",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![from, to], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    SpoofedTotal {
                        packets: u(r.get(1)?),
                        bytes: u(r.get(2)?),
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::guard::Event;
    use crate::store::quota::{QuotaEvent, QuotaStore, StoredState};
    use crate::store::sqlite::SqliteStore;

    fn guard_event(kind: Kind, ts: i64, customer: Option<&str>, bytes: u64) -> GuardEvent {
        GuardEvent {
            id: 0,
            sensor: String::new(),
            ts,
            interval_start: ts - ts % 60,
            kind,
            customer: customer.map(str::to_owned),
            ip: Some("198.51.100.1".parse().unwrap()),
            old_macs: vec![Mac(0xa), Mac(0xb)],
            new_mac: Some(Mac(0xc)),
            packets: 2,
            bytes,
            macs: vec![Mac(0xc)],
            groups: vec![Group {
                interface: "br0".into(),
                vlan: 7,
                macs: 3,
            }],
            reason: "because".into(),
            hooks: HookStatus::Pending,
        }
    }

    #[test]
    fn events_intervals_and_spoofed_sums_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bw.db");
        let mut s = SqliteStore::open(&path).unwrap();
        let verdict = |start: i64, events: Vec<GuardEvent>| Verdict {
            stats: IntervalStats {
                start,
                interval_s: 60,
                frames: 10,
                macs: 4,
                baseline: Some(3),
                arp: ArpCounts {
                    requests: 2,
                    ..Default::default()
                },
                spoofed_bytes: events.iter().map(|e| e.bytes).sum(),
                ..Default::default()
            },
            events,
        };
        let written = s
            .write_guard(
                &verdict(
                    60,
                    vec![
                        guard_event(Kind::ArpSpoof, 70, None, 0),
                        guard_event(Kind::SpoofedSource, 75, Some("goneril"), 500),
                    ],
                ),
                "dom0",
                HookStatus::Pending,
            )
            .unwrap();
        assert_eq!(written.len(), 2);
        assert!(written[0].id > 0 && written[0].sensor == "dom0");
        s.write_guard(
            &verdict(
                120,
                vec![guard_event(Kind::SpoofedSource, 130, Some("goneril"), 7)],
            ),
            "dom0",
            HookStatus::None,
        )
        .unwrap();
        // the same interval again (a restart) adds up
        s.write_guard(&verdict(120, vec![]), "dom0", HookStatus::None)
            .unwrap();
        s.save_quota_state(
            &StoredState {
                customer: "goneril".into(),
                state: "over".into(),
                since: 100,
                period_start: 0,
                allotment: 5,
                unit: "bytes".into(),
            },
            Some(&QuotaEvent {
                id: 0,
                customer: "goneril".into(),
                ts: 100,
                old_state: "ok".into(),
                new_state: "over".into(),
                used: 6,
                allotment: 5,
                unit: "bytes".into(),
                estimate: 6,
                used_bytes: 6,
                period_start: 0,
                reason: "r".into(),
                hooks: HookStatus::Done,
            }),
        )
        .unwrap();
        s.set_guard_hooks(written[0].id, HookStatus::Done).unwrap();
        drop(s);

        let r = SqliteStore::open_read_only(&path).unwrap();
        let all = r.events(&EventFilter::default(), None).unwrap();
        let kinds: Vec<&str> = all.iter().map(Event::kind).collect();
        assert_eq!(
            kinds,
            ["arp_spoof", "spoofed_source", "quota", "spoofed_source"]
        );
        let Event::Guard(first) = &all[0] else {
            panic!("{all:?}")
        };
        assert_eq!(
            first,
            &GuardEvent {
                id: written[0].id,
                sensor: "dom0".into(),
                hooks: HookStatus::Done,
                ..guard_event(Kind::ArpSpoof, 70, None, 0)
            }
        );
        let newest = r
            .events(
                &EventFilter {
                    limit: Some(2),
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        assert_eq!(newest.iter().map(Event::ts).collect::<Vec<_>>(), [100, 130]);
        let only = r
            .events(
                &EventFilter {
                    customer: Some("goneril".into()),
                    ..Default::default()
                },
                Some("spoofed_source"),
            )
            .unwrap();
        assert_eq!(only.len(), 2);
        assert_eq!(
            r.events(&EventFilter::default(), Some("quota"))
                .unwrap()
                .len(),
            1
        );
        let second: Vec<i64> = r
            .guard_events_between(120, 180)
            .unwrap()
            .iter()
            .map(|e| e.ts)
            .collect();
        assert_eq!(second, [130]);
        let sums = r.spoofed(0, 120).unwrap();
        assert_eq!(
            sums["goneril"],
            SpoofedTotal {
                packets: 2,
                bytes: 500
            }
        );
        assert_eq!(r.spoofed(0, 1000).unwrap()["goneril"].bytes, 507);
        let rows = r
            .guard_intervals(&Query {
                from: 0,
                to: 1000,
                sensor: None,
            })
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].start, rows[1].frames, rows[1].macs), (120, 20, 4));
        assert_eq!(rows[1].arp.requests, 4);
        assert_eq!(rows[0].baseline, Some(3));
    }
}
