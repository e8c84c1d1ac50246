//! The dashboard, the JSON API and `/metrics` over HTTP (axum). Read-only (GET only), listens on
//! localhost unless configured, validates and bounds every range, escapes every name, serves
//! only what is embedded in the binary (it never opens a file for a request). Store reads run
//! on blocking threads, a few at a time; graphs are cached briefly.
//!
//! Layout: `params` (query parsing and bounds), `pages` (HTML), `api` (JSON), `events` (quota
//! and layer-2 events, page and JSON), `metrics` (Prometheus text), `cache` (rendered graphs),
//! `html` (escaping and fragments, shared with the static site), `auth` (who may see it), `tls`
//! (HTTPS), `guard` (request limits, error formats), `server` (connections: caps and timeouts).

mod api;
pub mod auth;
mod cache;
mod events;
mod guard;
pub mod html;
mod metrics;
mod pages;
mod params;
pub mod server;
pub mod tls;

use crate::config::{Customer, Limits};
use crate::customer::Customers;
use crate::graph::GraphError;
use crate::names::Names;
use crate::period::Period;
use crate::report::{self, By, Report};
use crate::status::Status;
use crate::store::{Store, StoreError};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Opens a reading connection to the store.
pub type OpenStore = Box<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// Rendered graphs and reports kept (a report of 10,000 hosts is a few MB).
const GRAPHS_CACHED: usize = 256;
const REPORTS_CACHED: usize = 16;

/// Store reads running at once (the machine has few cores; a burst of requests waits).
const STORE_READERS: usize = 3;

/// Reading connections, opened on demand and kept for reuse.
pub struct StorePool {
    open: OpenStore,
    idle: Mutex<Vec<Box<dyn Store>>>,
    permits: tokio::sync::Semaphore,
}

impl StorePool {
    pub fn new(open: OpenStore) -> Self {
        Self {
            open,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(STORE_READERS),
        }
    }

    /// Runs `f` with a store on a blocking thread.
    pub async fn with<R, F>(self: &Arc<Self>, f: F) -> Result<R, WebError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Store) -> R + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| WebError::Internal("the store pool is closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let reuse = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let store = match reuse {
                Some(s) => s,
                None => (pool.open)()?,
            };
            let out = f(&*store);
            let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < STORE_READERS {
                idle.push(store);
            }
            Ok(out)
        })
        .await
        .map_err(|e| WebError::Internal(format!("a store reader failed: {e}")))?
    }
}

/// Everything the handlers share.
pub struct Context {
    pub stores: Arc<StorePool>,
    pub status: Arc<Status>,
    pub customers: Arc<Customers>,
    /// Names next to addresses (`[names]`); none: addresses only, JSON without `name`.
    pub names: Option<Arc<Names>>,
    /// Who may see the pages; none: anyone who can connect.
    access: Option<Arc<auth::Access>>,
    graphs: cache::Cache<axum::body::Bytes>,
    reports: cache::Cache<Arc<Report>>,
}

impl Context {
    pub fn new(open: OpenStore, status: Arc<Status>, customers: Arc<Customers>) -> Self {
        Self {
            stores: Arc::new(StorePool::new(open)),
            status,
            customers,
            names: None,
            access: None,
            graphs: cache::Cache::new(GRAPHS_CACHED),
            reports: cache::Cache::new(REPORTS_CACHED),
        }
    }

    /// Shows names next to addresses.
    pub fn with_names(mut self, names: Arc<Names>) -> Self {
        self.names = Some(names);
        self
    }

    /// Asks for credentials (when `access` has any).
    pub fn with_access(mut self, access: Arc<auth::Access>) -> Self {
        self.access = Some(access);
        self
    }

    /// The name of a host as known now (never waits).
    fn name(&self, host: &crate::usage::Host) -> Option<String> {
        self.names.as_ref()?.name(host)
    }

    /// The report of a period (every row, busiest first), from the cache when it is fresh: the
    /// top-talkers page and its JSON share one store read.
    async fn report(
        &self,
        period: Period,
        sensor: Option<String>,
    ) -> Result<Arc<Report>, WebError> {
        let key = format!(
            "{}|{}|{sensor:?}",
            period.from.timestamp(),
            period.to.timestamp()
        );
        if let Some(r) = self.reports.get(&key) {
            return Ok(r);
        }
        let customers = Arc::clone(&self.customers);
        let rep = self
            .stores
            .with(move |s| report::build(s, period, By::Ip, sensor, None, &customers))
            .await??;
        let rep = Arc::new(rep);
        self.reports.put(key, Arc::clone(&rep));
        Ok(rep)
    }

    fn customer(&self, name: &str) -> Option<&Customer> {
        self.customers.get(name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_)
            | WebError::Store(StoreError::NoSensor(_) | StoreError::SelectionTooLarge { .. })
            | WebError::Graph(
                GraphError::Size { .. }
                | GraphError::Store(StoreError::NoSensor(_) | StoreError::SelectionTooLarge { .. }),
            ) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error page: the status and the message (escaped) in the common layout.
fn error_page(status: StatusCode, message: &str) -> Response {
    let title = format!("Error {}", status.as_u16());
    let body = format!("<p class=\"warn\">{}</p>", html::esc(message));
    let page = html::Page {
        title: &title,
        assets: "/static/",
        home: "/",
        nav: "<a href=\"/\">Top talkers</a><a href=\"/now\">Now</a>",
        body: &body,
        footer: "",
    };
    (status, axum::response::Html(page.render())).into_response()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("web: {self:#}");
        }
        error_page(status, &self.to_string())
    }
}

/// Headers every response carries: no sniffing, only our own scripts, styles and images.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// A path nothing answers: 404, in JSON under `/api/`.
async fn no_such_page(uri: Uri) -> Response {
    let e = WebError::NotFound("no such page".into());
    match uri.path().starts_with("/api/") {
        true => api::ApiError::from(e).into_response(),
        false => e.into_response(),
    }
}

/// Every route: pages, graphs, assets (embedded), the API and `/metrics`. GET only; behind the
/// request limits, and the access check when there is one.
pub fn router(ctx: Arc<Context>) -> Router {
    let mut routes = pages::routes()
        .merge(api::routes())
        .merge(events::routes())
        .merge(metrics::routes())
        .fallback(no_such_page);
    if let Some(access) = &ctx.access {
        routes = routes.layer(axum::middleware::from_fn_with_state(
            Arc::clone(access),
            auth::require,
        ));
    }
    routes
        .layer(axum::middleware::from_fn(guard::limits))
        .layer(axum::middleware::from_fn(guard::uniform_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(ctx)
}

/// Serves plain HTTP with the default limits until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, None, Limits::default(), ctx, shutdown).await
}

/// Serves HTTP, or HTTPS with `tls`, until `shutdown` completes.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    limits: Limits,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(ctx);
    match tls {
        None => server::run(listener, app, limits, shutdown).await,
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config, limits.client_timeout)?;
            server::run(listener, app, limits, shutdown).await
        }
    }
}
