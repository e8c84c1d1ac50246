//! `QuotaStore` for SQLite: the quota tables, and per-bucket traffic of a set of hosts, read
//! from the coarsest levels whose rows fit in the buckets (`rollup::plan`) by key lookups
//! (`hosts`). A store at an older schema opened read-only has no quota tables: it reads as
//! empty.

use super::hosts::{id_list, Lookup};
use super::{db_int, SqliteStore};
use crate::classify::Class;
use crate::rollup::{self, Level};
use crate::store::quota::{
    AppliedStep, Bucket, EventFilter, HookStatus, QuotaEvent, QuotaStore, StoredState,
};
use crate::store::{Store, StoreError, COLUMNS};
use crate::usage::{cell, Dir, Host};
use rusqlite::params;
use std::collections::BTreeMap;

/// `tcp_tx_bytes + udp_tx_bytes + ...`: the total bytes of one direction.
fn total_expr(dir: Dir) -> String {
    Class::ALL
        .iter()
        .filter(|c| matches!(c, Class::Proto(_)))
        .filter_map(|c| COLUMNS.get(cell(dir, c.index(), false)))
        .cloned()
        .collect::<Vec<_>>()
        .join(" + ")
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl SqliteStore {
    fn has_quota_tables(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'quota_state'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

impl QuotaStore for SqliteStore {
    fn hosts_after(&self, after: i64) -> Result<Vec<(i64, Host)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, addr FROM hosts WHERE id > ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([after], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, addr) = row.map_err(|e| self.err(e))?;
            let host = addr.parse().map_err(|_| StoreError::BadHost {
                path: self.path.display().to_string(),
                addr,
            })?;
            out.push((id, host));
        }
        Ok(out)
    }

    fn traffic_buckets(
        &self,
        hosts: &[i64],
        from: i64,
        to: i64,
        bucket_s: u32,
    ) -> Result<Vec<Bucket>, StoreError> {
        let b = i64::from(bucket_s.max(1));
        if hosts.is_empty() || to <= from {
            return Ok(Vec::new());
        }
        let ids = id_list(hosts);
        let select = format!("sum({}), sum({})", total_expr(Dir::Tx), total_expr(Dir::Rx));
        self.snapshot(|| {
            let mut sums: BTreeMap<i64, Bucket> = BTreeMap::new();
            let coarsest = Level::coarsest_within(0, b);
            for piece in rollup::plan_up_to(from, to, coarsest, &self.watermarks()?) {
                let lookup = Lookup {
                    level: piece.level,
                    from: piece.from,
                    to: piece.to,
                    sensor: None,
                    ids: &ids,
                };
                self.each_time_of_hosts(&lookup, &select, |r| {
                    let ts: i64 = r.get(0)?;
                    let start = ts - ts.rem_euclid(b);
                    let e = sums.entry(start).or_insert(Bucket {
                        start,
                        ..Default::default()
                    });
                    e.tx_bytes = e.tx_bytes.saturating_add(u(r.get(1)?));
                    e.rx_bytes = e.rx_bytes.saturating_add(u(r.get(2)?));
                    Ok(())
                })?;
            }
            Ok(sums.into_values().collect())
        })
    }

    fn quota_states(&self) -> Result<Vec<StoredState>, StoreError> {
        if !self.has_quota_tables()? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT customer, state, since, period_start, allotment, unit FROM quota_state
                 ORDER BY customer",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredState {
                    customer: r.get(0)?,
                    state: r.get(1)?,
                    since: r.get(2)?,
                    period_start: r.get(3)?,
                    allotment: u(r.get(4)?),
                    unit: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn save_quota_state(
        &mut self,
        s: &StoredState,
        event: Option<&QuotaEvent>,
    ) -> Result<Option<i64>, StoreError> {
        let run = |conn: &mut rusqlite::Connection| -> rusqlite::Result<Option<i64>> {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO quota_state (customer, state, since, period_start, allotment, unit)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer) DO UPDATE SET state = excluded.state,
                   since = excluded.since, period_start = excluded.period_start,
                   allotment = excluded.allotment, unit = excluded.unit",
                params![
                    s.customer,
                    s.state,
                    s.since,
                    s.period_start,
                    db_int(s.allotment),
                    s.unit
                ],
            )?;
            let id = match event {
                Some(e) => Some(tx.query_row(
                    "INSERT INTO quota_events (customer, ts, old_state, new_state, used, allotment,
                       unit, estimate, used_bytes, period_start, reason, hooks)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
                    params![
                        e.customer,
                        e.ts,
                        e.old_state,
                        e.new_state,
                        db_int(e.used),
                        db_int(e.allotment),
                        e.unit,
                        db_int(e.estimate),
                        db_int(e.used_bytes),
                        e.period_start,
                        e.reason,
                        e.hooks.name()
                    ],
                    |r| r.get(0),
                )?),
                None => None,
            };
            tx.commit()?;
            Ok(id)
        };
        run(&mut self.conn).map_err(|e| self.err(e))
    }

    fn quota_events(&self, f: &EventFilter) -> Result<Vec<QuotaEvent>, StoreError> {
        if !self.has_quota_tables()? {
            return Ok(Vec::new());
        }
        let limit = f.limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT * FROM (
                   SELECT id, customer, ts, old_state, new_state, used, allotment, unit, estimate,
                          used_bytes, period_start, reason, hooks FROM quota_events
                   WHERE (?1 IS NULL OR customer = ?1) AND (?2 IS NULL OR ts < ?2)
                     AND (?3 IS NULL OR hooks = ?3)
                   ORDER BY ts DESC, id DESC LIMIT ?4)
                 ORDER BY ts, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![f.customer, f.before, f.hooks.map(HookStatus::name), limit],
                |r| {
                    Ok(QuotaEvent {
                        id: r.get(0)?,
                        customer: r.get(1)?,
                        ts: r.get(2)?,
                        old_state: r.get(3)?,
                        new_state: r.get(4)?,
                        used: u(r.get(5)?),
                        allotment: u(r.get(6)?),
                        unit: r.get(7)?,
                        estimate: u(r.get(8)?),
                        used_bytes: u(r.get(9)?),
                        period_start: r.get(10)?,
                        reason: r.get(11)?,
                        hooks: HookStatus::parse(&r.get::<_, String>(12)?),
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn set_event_hooks(&mut self, id: i64, status: HookStatus) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE quota_events SET hooks = ?2 WHERE id = ?1",
                params![id, status.name()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn applied_steps(&self, owner: Option<&str>) -> Result<Vec<AppliedStep>, StoreError> {
        if !self.has_quota_tables()? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT owner, key, step, applied_at FROM shaping_applied
                 WHERE (?1 IS NULL OR owner = ?1) ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([owner], |r| {
                Ok(AppliedStep {
                    owner: r.get(0)?,
                    key: r.get(1)?,
                    step: r.get(2)?,
                    applied_at: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn add_applied_step(&mut self, s: &AppliedStep) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO shaping_applied (owner, key, step, applied_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner, key) DO NOTHING",
                params![s.owner, s.key, s.step, s.applied_at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn remove_applied_step(&mut self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM shaping_applied WHERE owner = ?1 AND key = ?2",
                params![owner, key],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Proto;
    use crate::store::{Sample, Store};
    use crate::usage::Usage;

    fn usage(tx: u64, rx: u64) -> Usage {
        let mut u = Usage::default();
        u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, tx);
        u.set(Dir::Rx, Class::Proto(Proto::Udp), false, rx);
        u.set(Dir::Rx, Class::Proto(Proto::Icmp), false, 1);
        u
    }

    #[test]
    fn buckets_sum_hosts_and_minutes_across_sensors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(&dir.path().join("bw.db")).unwrap();
        for (sensor, ts, host, tx, rx) in [
            ("a", 0, "198.51.100.1", 100, 10),
            ("a", 60, "198.51.100.1", 200, 20),
            ("a", 60, "198.51.100.2", 1000, 0),
            ("b", 60, "198.51.100.1", 5, 5),
            ("a", 300, "198.51.100.1", 7, 0),
            ("a", 600, "198.51.100.1", 9, 0),
        ] {
            s.write(&Sample {
                sensor: sensor.into(),
                start: ts,
                interval_s: 60,
                hosts: vec![(host.parse().unwrap(), usage(tx, rx))],
                ..Default::default()
            })
            .unwrap();
        }
        let hosts = s.hosts_after(0).unwrap();
        assert_eq!(hosts.len(), 2);
        let one: Vec<i64> = hosts
            .iter()
            .filter(|(_, h)| h.to_string() == "198.51.100.1")
            .map(|(id, _)| *id)
            .collect();
        let b = s.traffic_buckets(&one, 0, 600, 300).unwrap();
        assert_eq!(
            b,
            vec![
                Bucket {
                    start: 0,
                    tx_bytes: 305,
                    rx_bytes: 38
                },
                Bucket {
                    start: 300,
                    tx_bytes: 7,
                    rx_bytes: 1
                },
            ]
        );
        let all: Vec<i64> = hosts.iter().map(|(id, _)| *id).collect();
        let b = s.traffic_buckets(&all, 0, 601, 300).unwrap();
        assert_eq!(b[0].tx_bytes, 1305);
        assert_eq!(
            b[2],
            Bucket {
                start: 600,
                tx_bytes: 9,
                rx_bytes: 1
            }
        );
        assert!(s.hosts_after(hosts[1].0).unwrap().is_empty());
    }

    #[test]
    fn states_events_and_steps_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bw.db");
        let mut s = SqliteStore::open(&path).unwrap();
        let state = StoredState {
            customer: "goneril".into(),
            state: "over".into(),
            since: 1000,
            period_start: 0,
            allotment: 5,
            unit: "bytes".into(),
        };
        let event = QuotaEvent {
            id: 0,
            customer: "goneril".into(),
            ts: 1000,
            old_state: "ok".into(),
            new_state: "over".into(),
            used: 6,
            allotment: 5,
            unit: "bytes".into(),
            estimate: 60,
            used_bytes: 6,
            period_start: 0,
            reason: "used 120.0% of the allotment".into(),
            hooks: HookStatus::Pending,
        };
        let id = s.save_quota_state(&state, Some(&event)).unwrap().unwrap();
        s.save_quota_state(
            &StoredState {
                since: 2000,
                state: "ok".into(),
                ..state.clone()
            },
            None,
        )
        .unwrap();
        assert_eq!(s.quota_states().unwrap()[0].since, 2000);
        let pending = EventFilter {
            hooks: Some(HookStatus::Pending),
            ..Default::default()
        };
        assert_eq!(
            s.quota_events(&pending).unwrap(),
            vec![QuotaEvent {
                id,
                ..event.clone()
            }]
        );
        s.set_event_hooks(id, HookStatus::Done).unwrap();
        assert!(s.quota_events(&pending).unwrap().is_empty());
        assert!(s
            .quota_events(&EventFilter {
                before: Some(1000),
                ..Default::default()
            })
            .unwrap()
            .is_empty());

        let step = |owner: &str, key: &str| AppliedStep {
            owner: owner.into(),
            key: key.into(),
            step: "{}".into(),
            applied_at: 5,
        };
        s.add_applied_step(&step("", "root")).unwrap();
        s.add_applied_step(&step("goneril", "tbf")).unwrap();
        s.add_applied_step(&step("goneril", "tbf")).unwrap();
        assert_eq!(s.applied_steps(None).unwrap().len(), 2);
        assert_eq!(
            s.applied_steps(Some("goneril")).unwrap(),
            vec![step("goneril", "tbf")]
        );
        s.remove_applied_step("goneril", "tbf").unwrap();
        assert_eq!(s.applied_steps(None).unwrap(), vec![step("", "root")]);
        drop(s);
        // A read-only reader of this store sees the same.
        let r = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(r.quota_events(&EventFilter::default()).unwrap().len(), 1);
    }
}
