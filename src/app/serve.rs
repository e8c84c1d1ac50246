//! `serve`: the dashboard, JSON API and `/metrics` alone, reading the store. A poller takes in
//! the intervals the collector writes (after this server started), the guard's too, so that
//! `/metrics` and the "now" view move; the rest reads the store on request.

use super::AppError;
use crate::config::{self, Config, Storage};
use crate::customer::Customers;
use crate::flush::bucket_start;
use crate::guard::Verdict;
use crate::names::Names;
use crate::privilege::{self, Account, Dropped};
use crate::status::{Source, Status};
use crate::store::central::open_reader;
use crate::store::guard::GuardStore;
use crate::store::{Query, Sample, Store};
use crate::web::auth::{self, Access};
use crate::web::tls;
use crate::web::{self, Context, OpenStore, StorePool};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::ServerConfig;

/// How long after an interval's end its flush is expected to be in the store.
const WRITE_GRACE_S: i64 = 5;

/// Read-only connections to the configured store (PostgreSQL if set, else SQLite).
pub fn store_reader(storage: Storage) -> OpenStore {
    Box::new(move || Ok(open_reader(&storage)? as Box<dyn Store>))
}

/// The dashboard's socket with its access control and TLS, ready to serve.
pub struct Bound {
    listener: tokio::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    access: Option<Arc<Access>>,
    limits: config::Limits,
}

/// Binds `listen` for the dashboard of `web`, saying so. Refuses an address that other
/// machines can reach unless access is controlled; reads the TLS certificate (a clear error
/// now rather than at the first handshake).
pub async fn bind(listen: SocketAddr, web: &config::Web) -> Result<Bound, AppError> {
    auth::check_exposure(listen, &web.access)?;
    let tls = web.tls.as_ref().map(tls::server_config).transpose()?;
    let access = match web.access.is_configured() {
        true => Some(Arc::new(Access::new(&web.access)?)),
        false => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Listen {
            address: listen.to_string(),
            source,
        })?;
    let local = listener.local_addr()?;
    let exposed = !local.ip().to_canonical().is_loopback();
    if exposed && tls.is_none() && !web.access.users.is_empty() {
        tracing::warn!(address = %local, "passwords and tokens cross the network in clear text: set [web] tls_cert and tls_key, or serve through a TLS proxy");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    match &access {
        Some(_) => tracing::info!("dashboard access: credentials required"),
        None => tracing::info!("dashboard access: open to anyone who can connect"),
    }
    tracing::info!("dashboard on {scheme}://{local}/");
    Ok(Bound {
        listener,
        tls,
        access,
        limits: web.limits,
    })
}

impl Bound {
    /// Serves `ctx` (with this socket's access control) until `shutdown` completes.
    pub async fn serve(
        self,
        ctx: Context,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let ctx = match self.access {
            Some(a) => ctx.with_access(a),
            None => ctx,
        };
        web::serve_on(
            self.listener,
            self.tls,
            self.limits,
            Arc::new(ctx),
            shutdown,
        )
        .await
    }
}

/// The names shown next to addresses, when `[names]` is set (inside the runtime).
pub fn names(cfg: &Config, customers: &Arc<Customers>) -> Result<Option<Arc<Names>>, AppError> {
    match &cfg.names {
        Some(n) => Ok(Some(Arc::new(Names::start(n, Arc::clone(customers))?))),
        None => Ok(None),
    }
}

/// The dashboard's context: store readers, status, customers and names.
pub fn context(
    cfg: &Config,
    status: Arc<Status>,
    customers: Arc<Customers>,
    names: Option<Arc<Names>>,
) -> Context {
    let ctx = Context::new(store_reader(cfg.storage.clone()), status, customers);
    match names {
        Some(n) => ctx.with_names(n),
        None => ctx,
    }
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
    let web = cfg.web.clone().unwrap_or_default();
    // Clear errors now rather than on the first request: exposure first.
    auth::check_exposure(listen, &web.access)?;
    // Bind as started (a privileged port stays possible), then never serve as root.
    let bound = bind(listen, &web).await?;
    let account = Account::for_service(&cfg.service)?;
    match privilege::drop_privileges(&account, &[])? {
        Dropped::To { user, uid, .. } => tracing::info!(user, uid, "dropped root"),
        Dropped::NotRoot { .. } => {}
        Dropped::KeptRoot => tracing::warn!(
            "[service] user = \"root\": serving with every privilege (not recommended)"
        ),
    }
    // The store is read as the service account; a clear error now rather than on the first
    // request (PostgreSQL's client blocks).
    let check = cfg.storage.clone();
    tokio::task::spawn_blocking(move || open_reader(&check).map(drop))
        .await
        .map_err(std::io::Error::other)??;
    let status = Arc::new(Status::new(Source::Store, now_secs()));
    let customers = Arc::new(Customers::new(cfg.customers.clone()));
    let names = names(&cfg, &customers)?;
    let ctx = context(&cfg, Arc::clone(&status), customers, names);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(poll_store(
        Arc::clone(&ctx.stores),
        Arc::clone(&status),
        cfg.accounting.interval_s,
        cfg.sensor.clone(),
        stop_rx.clone(),
    ));
    let server = bound.serve(ctx, async move {
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
    stores: Arc<StorePool>,
    status: Arc<Status>,
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
        let read = stores
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
                    status.observe(s);
                }
                for v in &verdicts {
                    status.observe_guard(v);
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
