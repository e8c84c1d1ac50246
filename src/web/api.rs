//! The JSON API under `/api/v1/`: usage per host for a period (the rows and shape of
//! `report --format json`, through the same serializer), one host's or customer's time series,
//! the customers, and the capture status. Errors are JSON with a clear message.

use super::params::{host_nets, DefaultPeriod, Params};
use super::{Context, WebError};
use crate::graph::net_name;
use crate::names::Names;
use crate::report::{ClassesJson, Report};
use crate::status::Snapshot;
use crate::store::{Query as Range, Series, SeriesQuery};
use crate::usage::{Dir, Usage};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{TimeZone, Utc};
use ipnet::IpNet;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::sync::Arc;

type Ctx = State<Arc<Context>>;

/// A [`WebError`] answered as `{"error": "..."}`.
pub struct ApiError(WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        ApiError(e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!("api: {:#}", self.0);
        }
        let body = serde_json::json!({ "error": self.0.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => ApiError(WebError::Internal(format!("cannot write JSON: {e}"))).into_response(),
    }
}

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/hosts", get(hosts))
        .route("/api/v1/hosts/{addr}/series", get(host_series))
        .route("/api/v1/customers", get(customers))
        .route("/api/v1/customers/{name}/series", get(customer_series))
        .route("/api/v1/status", get(status))
}

async fn hosts(State(ctx): Ctx, Query(p): Query<Params>) -> Result<Response, ApiError> {
    let period = p.period(Utc::now(), DefaultPeriod::Yesterday)?;
    let top = p.top(None)?;
    let sensor = p.sensor()?;
    let rep = ctx.report(period, sensor).await?;
    let n = top.unwrap_or(usize::MAX).min(rep.rows.len());
    if n == rep.rows.len() && ctx.names.is_none() {
        return Ok(json(&*rep));
    }
    let rows = rep.rows[..n].to_vec();
    // Names as known now: a name still being looked up shows as null.
    let names = ctx
        .names
        .as_ref()
        .map(|names| names.known(rows.iter().map(|r| &r.host)));
    Ok(json(&Report {
        period: rep.period,
        by: rep.by,
        rows,
        names,
        notes: rep.notes.clone(),
        series: Vec::new(),
        customers: Vec::new(),
    }))
}

/// A series as JSON: every bucket of the range, with bytes, packets, rates and classes.
struct SeriesJson<'a> {
    name: &'a str,
    series: &'a Series,
}

struct Point<'a> {
    time: i64,
    step: i64,
    usage: &'a Usage,
}

fn time(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Serialize for Point<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = self.usage;
        let bps = |b: u64| b as f64 * 8.0 / self.step.max(1) as f64;
        let mut m = s.serialize_struct("Point", 8)?;
        m.serialize_field("time", &time(self.time))?;
        m.serialize_field("tx_bytes", &u.total_bytes(Dir::Tx))?;
        m.serialize_field("rx_bytes", &u.total_bytes(Dir::Rx))?;
        m.serialize_field("tx_packets", &u.total_packets(Dir::Tx))?;
        m.serialize_field("rx_packets", &u.total_packets(Dir::Rx))?;
        m.serialize_field("tx_bps", &bps(u.total_bytes(Dir::Tx)))?;
        m.serialize_field("rx_bps", &bps(u.total_bytes(Dir::Rx)))?;
        m.serialize_field("classes", &ClassesJson(u))?;
        m.end()
    }
}

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let dense = self.series.dense();
        let points: Vec<Point<'_>> = dense
            .iter()
            .map(|(t, u)| Point {
                time: *t,
                step: self.series.step,
                usage: u,
            })
            .collect();
        let mut m = s.serialize_struct("Series", 5)?;
        m.serialize_field("name", self.name)?;
        m.serialize_field("from", &time(self.series.from))?;
        m.serialize_field("to", &time(self.series.to))?;
        m.serialize_field("step", &self.series.step)?;
        m.serialize_field("points", &points)?;
        m.end()
    }
}

async fn series(
    ctx: &Context,
    p: &Params,
    name: String,
    nets: Vec<IpNet>,
) -> Result<Response, ApiError> {
    let range = p.range(Utc::now())?;
    let step = p.step(range)?;
    let q = SeriesQuery {
        range: Range {
            from: range.0,
            to: range.1,
            sensor: p.sensor()?,
        },
        step,
        nets,
    };
    let series = ctx
        .stores
        .with(move |s| {
            s.series(&q).map(|r| {
                let i = r.interval_s;
                r.coarsen(i)
            })
        })
        .await??;
    Ok(json(&SeriesJson {
        name: &name,
        series: &series,
    }))
}

async fn host_series(
    State(ctx): Ctx,
    Path(addr): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let net = host_nets(&addr)?;
    series(&ctx, &p, net_name(&net), vec![net]).await
}

async fn customer_series(
    State(ctx): Ctx,
    Path(name): Path<String>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let c = ctx
        .customer(&name)
        .ok_or_else(|| WebError::NotFound(format!("no customer {name:?}")))?;
    let (name, nets) = (c.name.clone(), c.networks.clone());
    series(&ctx, &p, name, nets).await
}

async fn customers(State(ctx): Ctx) -> Response {
    let list: Vec<serde_json::Value> = ctx
        .customers
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "addresses": c.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    json(&serde_json::json!({ "customers": list }))
}

/// The status with the last interval's busiest hosts as rates (and names, when on).
struct StatusJson<'a>(&'a Snapshot, Option<&'a Names>);

impl Serialize for StatusJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (snap, names) = (self.0, self.1);
        let busiest: Vec<serde_json::Value> = snap
            .last
            .iter()
            .flat_map(|l| {
                let secs = f64::from(l.interval_s.max(1));
                l.hosts.iter().map(move |(h, u)| {
                    let mut v = serde_json::json!({
                        "ip": h,
                        "tx_bps": u.total_bytes(Dir::Tx) as f64 * 8.0 / secs,
                        "rx_bps": u.total_bytes(Dir::Rx) as f64 * 8.0 / secs,
                        "tx_bytes": u.total_bytes(Dir::Tx),
                        "rx_bytes": u.total_bytes(Dir::Rx),
                    });
                    if let Some(names) = names {
                        v["name"] = serde_json::json!(names.name(h));
                    }
                    v
                })
            })
            .collect();
        let mut m = s.serialize_struct("Status", 3)?;
        m.serialize_field("status", snap)?;
        m.serialize_field(
            "last_interval_start",
            &snap.last.as_ref().map(|l| time(l.start)),
        )?;
        m.serialize_field("busiest", &busiest)?;
        m.end()
    }
}

async fn status(State(ctx): Ctx) -> Response {
    json(&StatusJson(&ctx.status.snapshot(), ctx.names.as_deref()))
}
