//! SIGHUP in `run`: the configuration file is read and validated again and its customers,
//! alerts and shaping settings go to the quota service, and customers and `[guard]` settings to
//! the guard (bound MACs apply from the next interval). Counting never stops and no count is
//! lost (the counters do not depend on customers). A file that does not validate is logged and
//! the running configuration kept; changes to capture, accounting or storage, or turning the
//! guard on or off, need a restart.

use crate::config::Config;
use crate::guard::service::Msg as GuardMsg;
use crate::quota::service::Msg;
use crate::quota::Policy;
use std::future::Future;
use std::sync::{mpsc, Arc};

/// Waits for `shutdown`, reloading on every SIGHUP meanwhile.
pub(super) async fn serve_until(
    shutdown: impl Future<Output = ()>,
    mut current: Config,
    quota: mpsc::Sender<Msg>,
    guard: Option<mpsc::Sender<GuardMsg>>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("cannot listen for SIGHUP (no reloads): {e}");
            None
        }
    };
    tokio::pin!(shutdown);
    loop {
        let reload = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = reload => {
                if let Some(next) = reload_config(&current, &quota, guard.as_ref()) {
                    current = next;
                }
            }
        }
    }
}

/// Reads the file again; on success hands the new policy over and returns the new config.
fn reload_config(
    current: &Config,
    quota: &mpsc::Sender<Msg>,
    guard: Option<&mpsc::Sender<GuardMsg>>,
) -> Option<Config> {
    let next = match Config::load(&current.path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, the running configuration is kept: {e}");
            return None;
        }
    };
    if next.capture != current.capture
        || next.accounting != current.accounting
        || next.storage != current.storage
        || next.sensor != current.sensor
    {
        tracing::warn!("sensor, [capture], [accounting] and [storage] changes take effect at the next start; only customers, alerts and shaping were reloaded");
    }
    tracing::info!(
        customers = next.customers.len(),
        "configuration reloaded: customers, alerts and shaping"
    );
    let _ = quota.send(Msg::Reload(Arc::new(Policy::new(&next))));
    match (guard, &next.guard) {
        (Some(tx), Some(g)) => {
            let _ = tx.send(GuardMsg::Reload(Arc::new(crate::guard::Policy::new(
                &next, g,
            ))));
        }
        (None, None) => {}
        _ => tracing::warn!("turning [guard] on or off takes effect at the next start"),
    }
    Some(next)
}
