//! `serve`: the dashboard, JSON API and `/metrics` alone, reading the store. A poller takes in
//! the intervals the collector writes (after this server started), the guard's too, so that
//! `/metrics` and the "now" view move; the rest reads the store on request.

use super::AppError;
use crate::config::Config;
use crate::flush::bucket_start;
use crate::guard::Verdict;
use crate::status::{Source, Status};
use crate::store::guard::GuardStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Query, Sample, Store};
use crate::web::{self, Context, OpenStore};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long after an interval's end its flush is expected to be in the store.
const WRITE_GRACE_S: i64 = 5;

/// Read-only connections to the configured SQLite store.
pub fn sqlite_reader(path: PathBuf) -> OpenStore {
    Box::new(move || Ok(Box::new(SqliteStore::open_read_only(&path)?) as Box<dyn Store>))
}

/// Binds `listen`, saying so, and warning when it is reachable from other machines.
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, AppError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Listen {
            address: listen.to_string(),
            source,
        })?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        tracing::warn!(address = %local, "the dashboard is reachable from other machines: it has no authentication of its own; restrict it with a firewall or a reverse proxy");
    }
    tracing::info!("dashboard on http://{local}/");
    Ok(listener)
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    cfg: Config,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let path = cfg.storage.sqlite.clone();
    // A clear error now rather than on the first request.
    SqliteStore::open_read_only(&path)?;
    let status = Arc::new(Status::new(Source::Store, now_secs()));
    let ctx = Arc::new(Context::new(
        sqlite_reader(path),
        Arc::clone(&status),
        Arc::new(crate::customer::Customers::new(cfg.customers.clone())),
    ));
    let listener = bind(listen).await?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(poll_store(
        Arc::clone(&ctx),
        cfg.accounting.interval_s,
        cfg.sensor.clone(),
        stop_rx.clone(),
    ));
    let server = web::serve(listener, ctx, async move {
        let _ = stop_rx.changed().await;
    });
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => { r?; }
        _ = shutdown => {
            let _ = stop_tx.send(true);
            server.await?;
        }
    }
    let _ = stop_tx.send(true);
    let _ = poller.await;
    Ok(())
}

/// Feeds `Status` with every interval the store completes: [watermark, upto) at each tick.
async fn poll_store(
    ctx: Arc<Context>,
    interval_s: u32,
    sensor: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let interval = i64::from(interval_s);
    let complete = move || bucket_start(now_secs() - WRITE_GRACE_S, interval_s);
    let mut watermark = complete();
    let tick = Duration::from_secs(interval_s.clamp(1, 30).into());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        let upto = complete();
        if upto <= watermark {
            continue;
        }
        let from = watermark;
        let sensor = sensor.clone();
        let read = ctx
            .stores
            .with(
                move |s| -> Result<(Vec<Sample>, Vec<Verdict>), crate::store::StoreError> {
                    // Everything before the last interval in one read, then the last one alone
                    // (the "now" view shows it).
                    let mut out = Vec::new();
                    for (a, b) in [(from, upto - interval), (upto - interval, upto)] {
                        if b <= a {
                            continue;
                        }
                        let q = Query {
                            from: a,
                            to: b,
                            sensor: None,
                        };
                        let stats = s.stats(&q)?;
                        out.push(Sample {
                            sensor: sensor.clone(),
                            start: a,
                            interval_s: (b - a) as u32,
                            hosts: s.usage_by_host(&q)?,
                            stats: stats.packets,
                            kernel: stats.kernel,
                        });
                    }
                    let verdicts = match s.guard() {
                        Some(g) => guard_verdicts(g, from, upto)?,
                        None => Vec::new(),
                    };
                    Ok((out, verdicts))
                },
            )
            .await;
        match read {
            Ok(Ok((samples, verdicts))) => {
                for s in &samples {
                    ctx.status.observe(s);
                }
                for v in &verdicts {
                    ctx.status.observe_guard(v);
                }
                watermark = upto;
            }
            Ok(Err(e)) => tracing::warn!("cannot read new intervals from the store: {e}"),
            Err(e) => tracing::warn!("cannot read new intervals from the store: {e}"),
        }
    }
}

/// The guard's intervals and events written in [from, to), as verdicts (one per stored interval
/// row, each with the events decided in it).
fn guard_verdicts(
    g: &dyn GuardStore,
    from: i64,
    to: i64,
) -> Result<Vec<Verdict>, crate::store::StoreError> {
    let mut verdicts: Vec<Verdict> = g
        .guard_intervals(&Query {
            from,
            to,
            sensor: None,
        })?
        .into_iter()
        .map(|stats| Verdict {
            stats,
            events: Vec::new(),
        })
        .collect();
    for e in g.guard_events_between(from, to)? {
        if let Some(v) = verdicts
            .iter_mut()
            .find(|v| v.stats.start == e.interval_start)
        {
            v.events.push(e);
        }
    }
    Ok(verdicts)
}
