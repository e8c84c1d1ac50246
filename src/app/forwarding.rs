//! The store the flusher of `run` and `replay` writes: the local SQLite store alone, or, with
//! `[storage] postgres`, the local store with its outbox and the forwarder that delivers it.

use super::AppError;
use crate::config::Config;
use crate::forward::{networks_text, Forwarder, Left, Settings};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use std::time::Duration;

/// The flusher's store, and the forwarder when there is a central store. `on_delivered` runs
/// after each batch reaches PostgreSQL; `prune`: the forwarder prunes the central store by
/// the retention (`run`), or only rolls it up (`replay`, like the local store).
pub(super) fn flush_store(
    cfg: &Config,
    prune: bool,
    on_delivered: Option<Box<dyn Fn() + Send>>,
) -> Result<(Box<dyn Store>, Option<Forwarder>), AppError> {
    let Some(pg) = &cfg.storage.postgres else {
        return Ok((Box::new(SqliteStore::open(&cfg.storage.sqlite)?), None));
    };
    let (forwarder, store) = Forwarder::start(Settings {
        sqlite: cfg.storage.sqlite.clone(),
        postgres: pg.clone(),
        sensor: cfg.sensor.clone(),
        local_networks: networks_text(&cfg.accounting.local),
        retention: prune.then_some(cfg.storage.retention),
        on_delivered,
    })?;
    tracing::info!(
        store = %pg.target(),
        "forwarding every flush to PostgreSQL through the local store's outbox"
    );
    Ok((Box::new(store), Some(forwarder)))
}

/// Lets the forwarder deliver what is queued (for at most `patience`) and stop.
pub(super) fn finish(forwarder: Option<Forwarder>, patience: Duration) -> Left {
    match forwarder {
        Some(f) => f.finish(patience),
        None => Left {
            batches: 0,
            oldest: None,
        },
    }
}

/// What `check-config` says about the central store: unreachable, or sensors whose local
/// networks overlap this one's (read from its sensors table). Never fatal: a sensor starts and
/// queues while the database is away.
pub fn central_warnings(cfg: &Config) -> Vec<String> {
    let Some(pg) = &cfg.storage.postgres else {
        return Vec::new();
    };
    let checked = crate::store::postgres::PgStore::open_read_only(pg).and_then(|store| {
        crate::store::postgres::sensor_overlaps(&store, &cfg.sensor, &cfg.accounting.local)
    });
    match checked {
        Ok(list) => list,
        Err(e) => vec![format!(
            "{e} (a sensor still starts: it keeps its flushes until PostgreSQL is reachable)"
        )],
    }
}
