//! Writing to PostgreSQL: one transaction per batch. The batch's id is recorded first (a batch
//! already recorded is skipped whole: exactly once), new hosts are added in address order (two
//! sensors adding the same hosts never deadlock), the rows go through a binary COPY into a
//! temporary table and are added to the samples (and to every rollup level whose watermark is
//! past them) by one upsert each.

use super::PgStore;
use crate::rollup::{Level, Watermarks};
use crate::store::schema::{db_int, stats_row, stats_table, usage_table, COLUMNS, STATS_COLUMNS};
use crate::store::{Sample, StoreError};
use crate::usage::{Host, CELLS};
use postgres::types::ToSql;
use postgres::Transaction;
use std::collections::HashMap;
use std::io::Write;

/// Identifies a batch for ever: the outbox it comes from (a random id drawn when the local
/// store's outbox was made) and its sequence number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchId {
    pub origin: i64,
    pub seq: i64,
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Written,
    /// The batch was delivered before (its first delivery committed, its acknowledgement was
    /// lost): nothing written again.
    AlreadyThere,
}

/// Ids a transaction created, kept once it commits.
#[derive(Default)]
struct Fresh {
    hosts: HashMap<Host, i64>,
    sensors: HashMap<String, i32>,
}

fn marks_of(tx: &mut Transaction<'_>) -> Result<Watermarks, postgres::Error> {
    // FOR SHARE: a rollup (FOR UPDATE) cannot move a watermark past these rows before they
    // commit; writers do not wait for each other
    let mut marks = Watermarks::default();
    for row in tx.query("SELECT level, upto FROM rolled FOR SHARE", &[])? {
        let level: String = row.get(0);
        marks.set(&level, row.get(1));
    }
    Ok(marks)
}

/// `INSERT INTO table (cols) SELECT ... ON CONFLICT (keys) DO UPDATE` adding every counter.
fn add_sql(table: &str, keys: &[&str], counters: &[&str], extra: &[&str], from: &str) -> String {
    let cols: Vec<&str> = keys.iter().chain(counters).chain(extra).copied().collect();
    let adds: Vec<String> = counters
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) {from} ON CONFLICT ({}) DO UPDATE SET {}",
        cols.join(", "),
        keys.join(", "),
        adds.join(", ")
    )
}

/// The samples' rows from `incoming` into a level's usage table; rollups get `$1` as time.
fn usage_from_incoming(level: Level) -> String {
    let counters: Vec<&str> = COLUMNS.iter().map(String::as_str).collect();
    let cols = COLUMNS.join(", ");
    if level == Level::Samples {
        add_sql(
            usage_table(level),
            &["ts", "sensor_id", "host_id"],
            &counters,
            &["interval_s"],
            &format!("SELECT ts, sensor_id, host_id, {cols}, interval_s FROM incoming"),
        )
    } else {
        add_sql(
            usage_table(level),
            &["ts", "sensor_id", "host_id"],
            &counters,
            &[],
            &format!("SELECT $1::bigint, sensor_id, host_id, {cols} FROM incoming"),
        )
    }
}

/// One statistics row into a level: `$1` time, `$2` sensor, the counters, (`interval_s`).
fn stats_values(level: Level) -> String {
    let n = STATS_COLUMNS.len();
    let extra: &[&str] = if level == Level::Samples {
        &["interval_s"]
    } else {
        &[]
    };
    let marks: Vec<String> = (1..=2 + n + extra.len())
        .map(|i| match i {
            2 => "$2::integer".to_owned(),
            i if i == 2 + n + 1 => format!("${i}::integer"),
            i => format!("${i}::bigint"),
        })
        .collect();
    add_sql(
        stats_table(level),
        &["ts", "sensor_id"],
        &STATS_COLUMNS,
        extra,
        &format!("VALUES ({})", marks.join(", ")),
    )
}

impl PgStore {
    /// Writes one batch from an outbox, unless it was delivered before.
    pub fn deliver(&mut self, id: BatchId, sample: &Sample) -> Result<Delivery, StoreError> {
        self.write_batch(Some(id), std::slice::from_ref(sample))
    }

    /// Creates what this connection's writes use: the temporary table COPY fills.
    pub(super) fn prepare_session(&mut self) -> Result<(), StoreError> {
        self.client
            .borrow_mut()
            .batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming (LIKE samples) ON COMMIT DELETE ROWS",
            )
            .map_err(|e| self.err(&e))
    }

    /// Writes samples in one transaction, recording `id` first when given.
    pub(super) fn write_batch(
        &mut self,
        id: Option<BatchId>,
        samples: &[Sample],
    ) -> Result<Delivery, StoreError> {
        let mut fresh = Fresh::default();
        let result = {
            let mut client = self.client.borrow_mut();
            let known = (&self.host_ids, &self.sensor_ids);
            let mut run = || -> Result<Delivery, WriteError> {
                let mut tx = client.transaction()?;
                let done = write_tx(&mut tx, known, &mut fresh, id, samples)?;
                if done == Delivery::Written {
                    tx.commit()?;
                }
                Ok(done)
            };
            run()
        };
        match result {
            Ok(done) => {
                self.host_ids.extend(fresh.hosts);
                self.sensor_ids.extend(fresh.sensors);
                Ok(done)
            }
            Err(WriteError::Pg(e)) => Err(self.err(&e)),
            Err(WriteError::Send(e)) => Err(StoreError::Postgres {
                target: self.target.clone(),
                message: format!("sending the rows: {e}"),
                transient: true,
            }),
        }
    }
}

type Known<'a> = (&'a HashMap<Host, i64>, &'a HashMap<String, i32>);

fn write_tx(
    tx: &mut Transaction<'_>,
    known: Known<'_>,
    fresh: &mut Fresh,
    id: Option<BatchId>,
    samples: &[Sample],
) -> Result<Delivery, WriteError> {
    for (i, sample) in samples.iter().enumerate() {
        let sensor_id = sensor_id(tx, known.1, fresh, sample)?;
        if let (0, Some(id)) = (i, id) {
            let hosts = i32::try_from(sample.hosts.len()).unwrap_or(i32::MAX);
            let fresh_batch = tx.execute(
                "INSERT INTO batches (sensor_id, origin, seq, start, hosts)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&sensor_id, &id.origin, &id.seq, &sample.start, &hosts],
            )?;
            if fresh_batch == 0 {
                return Ok(Delivery::AlreadyThere);
            }
        }
        let marks = marks_of(tx)?;
        write_sample(tx, known.0, fresh, &marks, sensor_id, sample)?;
    }
    Ok(Delivery::Written)
}

fn sensor_id(
    tx: &mut Transaction<'_>,
    known: &HashMap<String, i32>,
    fresh: &mut Fresh,
    sample: &Sample,
) -> Result<i32, postgres::Error> {
    if let Some(&id) = known
        .get(&sample.sensor)
        .or_else(|| fresh.sensors.get(&sample.sensor))
    {
        return Ok(id);
    }
    let id: i32 = tx
        .query_one(
            "INSERT INTO sensors (name, first_seen, last_seen) VALUES ($1, $2, $2)
             ON CONFLICT (name) DO UPDATE SET last_seen = GREATEST(sensors.last_seen, excluded.last_seen)
             RETURNING id",
            &[&sample.sensor, &sample.start],
        )?
        .get(0);
    fresh.sensors.insert(sample.sensor.clone(), id);
    Ok(id)
}

/// Ids of the sample's hosts, adding the hosts the store does not know yet.
fn host_ids(
    tx: &mut Transaction<'_>,
    known: &HashMap<Host, i64>,
    fresh: &mut Fresh,
    sample: &Sample,
) -> Result<(), postgres::Error> {
    let mut missing: Vec<String> = sample
        .hosts
        .iter()
        .filter(|(h, _)| !known.contains_key(h) && !fresh.hosts.contains_key(h))
        .map(|(h, _)| h.to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // the same order in every transaction: two sensors adding the same hosts never deadlock
    missing.sort_unstable();
    tx.execute(
        "INSERT INTO hosts (addr) SELECT a FROM unnest($1::text[]) AS a ORDER BY a
         ON CONFLICT (addr) DO NOTHING",
        &[&missing],
    )?;
    for row in tx.query(
        "SELECT id, addr FROM hosts WHERE addr = ANY($1::text[])",
        &[&missing],
    )? {
        let addr: String = row.get(1);
        if let Ok(host) = addr.parse::<Host>() {
            fresh.hosts.insert(host, row.get(0));
        }
    }
    Ok(())
}

/// Rows sent to the server per write while copying.
const COPY_CHUNK: usize = 1 << 22;

/// PostgreSQL's binary COPY format, written directly (a 100,000-host flush is 3.6 million
/// fields: no per-field conversion objects).
struct CopyRows {
    buf: Vec<u8>,
}

impl Default for CopyRows {
    fn default() -> Self {
        let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
        // signature, flags, header extension length
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0u32.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        Self { buf }
    }
}

impl CopyRows {
    fn int8(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn int4(&mut self, v: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// One row: time, sensor, host, interval, then the cells.
    fn row(&mut self, ts: i64, sensor: i32, host: i64, interval: i32, cells: &[u64; CELLS]) {
        self.buf
            .extend_from_slice(&((4 + CELLS) as i16).to_be_bytes());
        self.int8(ts);
        self.int4(sensor);
        self.int8(host);
        self.int4(interval);
        for &c in cells {
            self.int8(db_int(c));
        }
    }

    fn end(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

/// A failure while sending copied rows (the connection broke).
fn sent(e: std::io::Error) -> WriteError {
    WriteError::Send(e)
}

/// What can fail inside a write transaction.
enum WriteError {
    Pg(postgres::Error),
    Send(std::io::Error),
}

impl From<postgres::Error> for WriteError {
    fn from(e: postgres::Error) -> Self {
        WriteError::Pg(e)
    }
}

fn write_sample(
    tx: &mut Transaction<'_>,
    known: &HashMap<Host, i64>,
    fresh: &mut Fresh,
    marks: &Watermarks,
    sensor_id: i32,
    sample: &Sample,
) -> Result<(), WriteError> {
    host_ids(tx, known, fresh, sample)?;
    let levels: Vec<Level> = Level::ALL
        .into_iter()
        .filter(|&l| marks.of(l).is_some_and(|m| sample.start < m))
        .collect();
    let interval = i32::try_from(sample.interval_s).unwrap_or(i32::MAX);
    if !sample.hosts.is_empty() {
        // A new interval of this sensor (no statistics row yet: they are written together)
        // above every rollup watermark, the usual case, is copied straight into the samples;
        // otherwise through `incoming`, added to what is there and to the rollup levels.
        let merge: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM capture_stats WHERE ts = $1 AND sensor_id = $2)",
                &[&sample.start, &sensor_id],
            )?
            .get(0);
        let direct = !merge && levels == [Level::Samples];
        let table = if direct { "samples" } else { "incoming" };
        if !direct {
            tx.batch_execute("TRUNCATE incoming")?;
        }
        let cols = COLUMNS.join(", ");
        let mut sink = tx.copy_in(&format!(
            "COPY {table} (ts, sensor_id, host_id, interval_s, {cols}) FROM STDIN (FORMAT binary)"
        ))?;
        let mut rows = CopyRows::default();
        for (host, usage) in &sample.hosts {
            // every host was resolved above
            let Some(&host_id) = known.get(host).or_else(|| fresh.hosts.get(host)) else {
                continue;
            };
            rows.row(sample.start, sensor_id, host_id, interval, &usage.0);
            if rows.buf.len() >= COPY_CHUNK {
                sink.write_all(&rows.buf).map_err(sent)?;
                rows.buf.clear();
            }
        }
        rows.end();
        sink.write_all(&rows.buf).map_err(sent)?;
        sink.finish()?;
        if !direct {
            for &level in &levels {
                let sql = usage_from_incoming(level);
                if level == Level::Samples {
                    tx.execute(&sql, &[])?;
                } else {
                    tx.execute(&sql, &[&level.floor(sample.start)])?;
                }
            }
        }
    }
    let stats = stats_row(sample);
    for &level in &levels {
        let ts = level.floor(sample.start);
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&ts, &sensor_id];
        values.extend(stats.iter().map(|v| v as &(dyn ToSql + Sync)));
        if level == Level::Samples {
            values.push(&interval);
        }
        tx.execute(&stats_values(level), &values)?;
    }
    tx.execute(
        "UPDATE sensors SET last_seen = GREATEST(last_seen, $2) WHERE id = $1",
        &[&sensor_id, &sample.start],
    )?;
    Ok(())
}
