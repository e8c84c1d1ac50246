//! The outbox of the SQLite store: with a central PostgreSQL store, every flushed sample is
//! also queued here, in the same transaction that writes it locally, until the forwarder has
//! delivered it. Each queued batch has a sequence number that never repeats (AUTOINCREMENT) and
//! the outbox a random origin id drawn once, together the batch's id in PostgreSQL. The body
//! is the journal's text format. The tables are made on first use, beside the versioned schema.

use super::{levels, write_sample, Ids, SqliteStore};
use crate::journal;
use crate::store::postgres::BatchId;
use crate::store::{Sample, StoreError};
use rusqlite::{params, OptionalExtension};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

/// One queued batch.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: BatchId,
    pub sample: Sample,
}

/// A random positive id for a new outbox.
fn random_origin() -> i64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    (h.finish() >> 1) as i64
}

impl SqliteStore {
    /// Makes the outbox tables if missing; returns the outbox's origin id.
    pub fn outbox_origin(&mut self) -> Result<i64, StoreError> {
        let origin = random_origin();
        let run = |conn: &rusqlite::Connection| -> rusqlite::Result<i64> {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    sensor TEXT NOT NULL,
                    start INTEGER NOT NULL,
                    hosts INTEGER NOT NULL,
                    body TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS outbox_origin (
                    one INTEGER PRIMARY KEY CHECK (one = 1),
                    origin INTEGER NOT NULL
                );",
            )?;
            conn.execute(
                "INSERT INTO outbox_origin (one, origin) VALUES (1, ?1) ON CONFLICT DO NOTHING",
                [origin],
            )?;
            conn.query_row("SELECT origin FROM outbox_origin", [], |r| r.get(0))
        };
        run(&self.conn).map_err(|e| self.err(e))
    }

    /// Writes a sample and queues it in the outbox in one transaction; returns its sequence
    /// number. (Call [`SqliteStore::outbox_origin`] once first.)
    pub fn write_queued(&mut self, sample: &Sample) -> Result<i64, StoreError> {
        let body = journal::encode(std::slice::from_ref(sample));
        let run = |store: &mut SqliteStore| -> rusqlite::Result<(i64, Ids)> {
            let tx = store
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let marks = levels::read_marks(&tx)?;
            let mut fresh = Ids::default();
            write_sample(
                &tx,
                &store.host_ids,
                &store.sensor_ids,
                &mut fresh,
                &marks,
                sample,
            )?;
            let seq = tx.query_row(
                "INSERT INTO outbox (sensor, start, hosts, body) VALUES (?1, ?2, ?3, ?4)
                 RETURNING seq",
                params![sample.sensor, sample.start, sample.hosts.len() as i64, body],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok((seq, fresh))
        };
        let (seq, ids) = run(self).map_err(|e| self.err(e))?;
        self.remember(ids);
        Ok(seq)
    }

    /// The oldest queued batch after sequence number `after`, if any.
    pub fn outbox_next(&self, origin: i64, after: i64) -> Result<Option<Queued>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, body FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT 1",
                [after],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((seq, body)) = row else {
            return Ok(None);
        };
        let name = format!("{} outbox batch {seq}", self.path.display());
        let mut samples =
            journal::decode(&body, Path::new(&name)).map_err(|e| StoreError::BadOutbox {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        let sample = samples.pop().ok_or_else(|| StoreError::BadOutbox {
            path: self.path.display().to_string(),
            message: format!("outbox batch {seq} holds no sample"),
        })?;
        Ok(Some(Queued {
            id: BatchId { origin, seq },
            sample,
        }))
    }

    /// Forgets a delivered batch.
    pub fn outbox_remove(&mut self, seq: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM outbox WHERE seq = ?1", [seq])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Batches waiting, and the start of the oldest.
    pub fn outbox_backlog(&self) -> Result<(usize, Option<i64>), StoreError> {
        self.conn
            .query_row("SELECT count(*), min(start) FROM outbox", [], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get(1)?))
            })
            .map_err(|e| self.err(e))
    }
}
