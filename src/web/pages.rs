//! The dashboard's pages: top talkers for a period, a page per host and per customer with its
//! four graphs, the live "now" view with the capture status, the graph images (rendered on
//! request, cached) and the embedded assets. HTML only; the data comes from the store and
//! `Status`.

use super::html::{self, esc, url_part, Links, Page};
use super::params::{host_nets, DefaultPeriod, Params};
use super::{Context, WebError};
use crate::graph::{net_name, Chart, GraphRequest, ImageFormat, Window};
use crate::status::Snapshot;
use crate::units;
use crate::usage::{Dir, Host};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use std::fmt::Write;
use std::sync::Arc;

type Ctx = State<Arc<Context>>;

/// Graphs of the busiest hosts under the top-talkers table.
const INDEX_GRAPHS: usize = 5;

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/", get(index))
        .route("/ip/{addr}", get(host_page))
        .route("/customer/{name}", get(customer_page))
        .route("/now", get(now_page))
        .route("/graph.png", get(graph_png))
        .route("/graph.svg", get(graph_svg))
        .route(
            "/static/style.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    html::STYLE,
                )
            }),
        )
        .route(
            "/static/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    html::SCRIPT,
                )
            }),
        )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn unix(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

fn nav(here: &str) -> String {
    let mut out = String::new();
    for (href, name) in [
        ("/", "Top talkers"),
        ("/now", "Now"),
        ("/events", "Events"),
        ("/metrics", "Metrics"),
    ] {
        let class = if href == here { " class=\"here\"" } else { "" };
        let _ = write!(out, "<a href=\"{href}\"{class}>{name}</a>");
    }
    out
}

pub(super) fn page(title: &str, here: &str, body: &str) -> Html<String> {
    let footer = format!(
        "bwacct {} · times in UTC · <a href=\"/api/v1/status\">status JSON</a>",
        env!("CARGO_PKG_VERSION")
    );
    Html(
        Page {
            title,
            assets: "/static/",
            home: "/",
            nav: &nav(here),
            body,
            footer: &footer,
        }
        .render(),
    )
}

/// Links of the dashboard: host pages show graphs ending at the table's period.
struct Dashboard<'a> {
    ctx: &'a Context,
    end: Option<String>,
}

impl Links for Dashboard<'_> {
    fn host(&self, host: &Host) -> Option<String> {
        Some(match &self.end {
            Some(end) => format!("/ip/{}?end={}", url_part(&host.to_string()), url_part(end)),
            None => format!("/ip/{}", url_part(&host.to_string())),
        })
    }

    fn customer(&self, name: &str) -> Option<String> {
        self.ctx
            .customer(name)
            .map(|c| format!("/customer/{}", url_part(&c.name)))
    }

    fn name(&self, host: &Host) -> Option<String> {
        self.ctx.name(host)
    }
}

async fn index(State(ctx): Ctx, Query(p): Query<Params>) -> Result<Html<String>, WebError> {
    let now = Utc::now();
    let period = p.period(now, DefaultPeriod::Today)?;
    let shown = p.top(Some(100))?.unwrap_or(100);
    let sensor = p.sensor()?;
    let rep = ctx.report(period, sensor).await?;
    let (from, to) = (rfc3339(period.from), rfc3339(period.to));
    let end = (period.to < now).then(|| to.clone());
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"period\">From {} to {} · {} hosts with traffic</p><p class=\"links\">",
        esc(&period.from.format("%Y-%m-%d %H:%M").to_string()),
        esc(&period.to.format("%Y-%m-%d %H:%M").to_string()),
        rep.rows.len()
    );
    let today = now.date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let last_month = today.with_day0(0).unwrap_or(today) - chrono::Duration::days(1);
    for (label, query) in [
        ("today", format!("day={today}")),
        ("yesterday", format!("day={yesterday}")),
        ("this month", format!("month={}", today.format("%Y-%m"))),
        (
            "last month",
            format!("month={}", last_month.format("%Y-%m")),
        ),
    ] {
        let _ = write!(body, "<a href=\"/?{}\">{label}</a>", esc(&query));
    }
    let _ = write!(
        body,
        "<a href=\"/api/v1/hosts?from={}&amp;to={}\">JSON</a></p>",
        url_part(&from),
        url_part(&to)
    );
    let _ = write!(
        body,
        "<form class=\"period\" method=\"get\" action=\"/\"><label>day <input type=\"date\" name=\"day\" value=\"{}\"></label><label>rows <input type=\"number\" name=\"top\" min=\"1\" max=\"100000\" value=\"{shown}\"></label><button type=\"submit\">show</button></form>",
        esc(&period.from.format("%Y-%m-%d").to_string())
    );
    let links = Dashboard {
        ctx: &ctx,
        end: end.clone(),
    };
    body.push_str(&html::top_table(&rep.rows, shown, &links));
    if rep.rows.len() > shown {
        let _ = write!(
            body,
            "<p class=\"note\">The {shown} busiest of {} hosts; the last line sums them all.</p>",
            rep.rows.len()
        );
    }
    if !rep.rows.is_empty() {
        body.push_str("<h2>Busiest hosts</h2><div class=\"graphs\">");
        for row in rep.rows.iter().take(INDEX_GRAPHS) {
            let addr = row.host.to_string();
            let src = format!(
                "/graph.png?ip={}&from={}&to={}",
                url_part(&addr),
                url_part(&from),
                url_part(&to)
            );
            html::figure(&mut body, &src, &addr, "", crate::graph::DEFAULT_SIZE);
        }
        body.push_str("</div>");
    }
    Ok(page("Top talkers", "/", &body))
}

/// `end=T`, checked and in canonical form, for the graph links.
fn end_param(p: &Params) -> Result<Option<String>, WebError> {
    Ok(p.end()?.map(rfc3339))
}

/// The four graphs (day, week, month, year ending at `end`) of a selection.
fn four_graphs(body: &mut String, select: &str, end: Option<&str>) {
    body.push_str("<div class=\"graphs\">");
    for w in Window::ALL {
        let mut src = format!("/graph.png?{select}&window={}", w.name());
        if let Some(end) = end {
            let _ = write!(src, "&end={}", url_part(end));
        }
        html::figure(body, &src, w.name(), w.name(), crate::graph::DEFAULT_SIZE);
    }
    body.push_str("</div>");
}

/// A page or graph title for one address: the address, and its name when one is known.
fn titled(ctx: &Context, net: &ipnet::IpNet) -> String {
    let addr = net_name(net);
    let host = crate::usage::Host::Addr(net.addr());
    let single = net.prefix_len() == net.max_prefix_len();
    match ctx.name(&host).filter(|_| single) {
        Some(name) => format!("{addr} ({name})"),
        None => addr,
    }
}

async fn host_page(
    State(ctx): Ctx,
    Path(addr): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, WebError> {
    let net = host_nets(&addr)?;
    let name = net_name(&net);
    let title = titled(&ctx, &net);
    let end = end_param(&p)?;
    let mut body = String::new();
    let series = format!(
        "/api/v1/hosts/{}/series?window=day{}",
        url_part(&name),
        end.as_deref()
            .map(|e| format!("&end={}", url_part(e)))
            .unwrap_or_default()
    );
    let _ = write!(
        body,
        "<p class=\"links\"><a href=\"{}\">time series JSON</a></p>",
        esc(&series)
    );
    four_graphs(
        &mut body,
        &format!("ip={}", url_part(&name)),
        end.as_deref(),
    );
    Ok(page(&title, "", &body))
}

async fn customer_page(
    State(ctx): Ctx,
    Path(name): Path<String>,
    Query(p): Query<Params>,
) -> Result<Html<String>, WebError> {
    let customer = ctx
        .customer(&name)
        .ok_or_else(|| WebError::NotFound(format!("no customer {name:?}")))?;
    let mut body = String::from("<p class=\"period\">Addresses: ");
    for (i, net) in customer.networks.iter().enumerate() {
        let n = net_name(net);
        let sep = if i > 0 { ", " } else { "" };
        let _ = write!(
            body,
            "{sep}<a href=\"/ip/{}\">{}</a>",
            esc(&url_part(&n)),
            esc(&n)
        );
    }
    body.push_str("</p>");
    four_graphs(
        &mut body,
        &format!("customer={}", url_part(&customer.name)),
        end_param(&p)?.as_deref(),
    );
    Ok(page(&customer.name, "", &body))
}

fn status_html(out: &mut String, s: &Snapshot) {
    out.push_str("<h2>Capture</h2><dl class=\"status\">");
    let mut item = |k: &str, v: String, warn: bool| {
        let class = if warn { " class=\"warn\"" } else { "" };
        let _ = write!(out, "<dt>{}</dt><dd{class}>{}</dd>", esc(k), esc(&v));
    };
    item(
        "source",
        match s.source {
            "live" => "live capture (this process)".into(),
            _ => "the store (intervals written since this server started)".into(),
        },
        false,
    );
    item("since", rfc3339(unix(s.started)), false);
    for i in &s.interfaces {
        item(
            &format!("interface {}", i.name),
            format!(
                "kernel received {}, dropped {}, interface dropped {}",
                i.kernel.received, i.kernel.dropped, i.kernel.if_dropped
            ),
            i.kernel.dropped > 0 || i.kernel.if_dropped > 0,
        );
    }
    let p = &s.packets;
    item("packets", p.packets.to_string(), false);
    item("accounted", p.accounted.to_string(), false);
    item("accounted bytes", units::bytes(p.bytes), false);
    item("foreign", p.foreign.to_string(), false);
    item("non-IP", p.non_ip.to_string(), false);
    item("malformed", p.malformed.to_string(), p.malformed > 0);
    item("length mismatch", p.length_mismatch.to_string(), false);
    let f = &s.flush;
    item(
        "last flush",
        match f.last_at {
            Some(t) => format!("{} ({:.3} s)", rfc3339(unix(t)), f.last_seconds),
            None => "none yet".into(),
        },
        false,
    );
    item("flushes", f.flushes.to_string(), false);
    item("flush errors", f.errors.to_string(), f.errors > 0);
    item("intervals waiting", f.pending.to_string(), f.pending > 0);
    out.push_str("</dl>");
}

fn rate(bytes: u64, seconds: u32) -> String {
    units::bits_per_second(bytes as f64 * 8.0 / f64::from(seconds.max(1)))
}

async fn now_page(State(ctx): Ctx) -> Html<String> {
    let s = ctx.status.snapshot();
    let mut body = String::from("<div id=\"live\" data-refresh-s=\"5\">");
    match &s.last {
        None => body.push_str("<p class=\"period\">No interval flushed yet.</p>"),
        Some(last) => {
            let _ = write!(
                body,
                "<p class=\"period\">Interval {} to {} · {} active hosts · the busiest {}</p>",
                esc(&rfc3339(unix(last.start))),
                esc(&rfc3339(unix(last.start + i64::from(last.interval_s)))),
                last.active_hosts,
                last.hosts.len()
            );
            let named = ctx.names.is_some();
            body.push_str("<div class=\"wide\"><table class=\"sortable\" id=\"now\"><thead><tr><th class=\"t\">address</th>");
            if named {
                body.push_str("<th class=\"t\">name</th>");
            }
            body.push_str("<th>sent</th><th>received</th><th>tcp</th><th>udp</th><th>icmp</th><th>other</th></tr></thead><tbody>");
            for (host, u) in &last.hosts {
                let addr = host.to_string();
                let secs = last.interval_s;
                let name = match named {
                    true => format!(
                        "<td class=\"t\">{}</td>",
                        esc(&ctx.name(host).unwrap_or_default())
                    ),
                    false => String::new(),
                };
                let _ = write!(
                    body,
                    "<tr><td class=\"t\"><a href=\"/ip/{}\">{}</a></td>{name}<td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td>",
                    esc(&url_part(&addr)),
                    esc(&addr),
                    u.total_bytes(Dir::Tx),
                    rate(u.total_bytes(Dir::Tx), secs),
                    u.total_bytes(Dir::Rx),
                    rate(u.total_bytes(Dir::Rx), secs)
                );
                for class in crate::graph::STACK {
                    let b = u.get(Dir::Tx, class, false) + u.get(Dir::Rx, class, false);
                    let _ = write!(body, "<td data-v=\"{b}\">{}</td>", rate(b, secs));
                }
                body.push_str("</tr>");
            }
            body.push_str("</tbody></table></div>");
        }
    }
    status_html(&mut body, &s);
    if let Some(g) = &s.guard {
        super::events::guard_html(&mut body, g);
    }
    body.push_str("</div>");
    page("Now", "/now", &body)
}

async fn graph_png(ctx: Ctx, p: Query<Params>) -> Result<Response, WebError> {
    graph(ctx, p, ImageFormat::Png).await
}

async fn graph_svg(ctx: Ctx, p: Query<Params>) -> Result<Response, WebError> {
    graph(ctx, p, ImageFormat::Svg).await
}

async fn graph(
    State(ctx): Ctx,
    Query(p): Query<Params>,
    format: ImageFormat,
) -> Result<Response, WebError> {
    let (who, nets) = p.selection(&ctx)?;
    let title = match (p.customer.is_some(), nets.as_slice()) {
        (true, _) => who,
        (false, [one]) => titled(&ctx, one),
        (false, _) => nets.iter().map(net_name).collect::<Vec<_>>().join(", "),
    };
    let (from, to) = p.range(Utc::now())?;
    let size = p.size()?;
    let sensor = p.sensor()?;
    let key = format!(
        "{}|{title}|{nets:?}|{from}|{to}|{sensor:?}|{}x{}",
        format.extension(),
        size.0,
        size.1
    );
    let bytes = match ctx.graphs.get(&key) {
        Some(b) => b,
        None => {
            let req = GraphRequest {
                title,
                nets,
                from,
                to,
                sensor,
            };
            let image = ctx
                .stores
                .with(move |s| -> Result<Vec<u8>, WebError> {
                    Ok(Chart::fetch(s, &req)?.render(format, size)?.bytes)
                })
                .await??;
            let b = Bytes::from(image);
            ctx.graphs.put(key, b.clone());
            b
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        bytes,
    )
        .into_response())
}
