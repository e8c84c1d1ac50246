//! Events on the dashboard: `/events` (quota changes and layer-2 events, newest last, as
//! `bwacct events` lists them) and `/api/v1/events` (the same JSON rows), and the layer-2
//! section of the "now" view. Reads the store and `Status`; every value is escaped.

use super::html::{esc, url_part};
use super::params::Params;
use super::{Context, WebError};
use crate::guard::render::{event_json, summary};
use crate::guard::Kind;
use crate::quota::render::{event_json as quota_json, event_summary as quota_summary};
use crate::quota::time;
use crate::status::GuardView;
use crate::store::guard::Event;
use crate::store::quota::EventFilter;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::Arc;

type Ctx = State<Arc<Context>>;

/// Events a page or response lists at most.
const MAX_EVENTS: usize = 10_000;
/// Events listed when the request names no number.
const DEFAULT_EVENTS: usize = 200;

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/events", get(page))
        .route("/api/v1/events", get(api))
}

/// The newest events the parameters select (`customer`, `kind`, `top`).
async fn select(ctx: &Context, p: &Params) -> Result<Vec<Event>, WebError> {
    let kind = match p.kind.as_deref() {
        None | Some("") => None,
        Some("quota") => Some("quota".to_owned()),
        Some(k) => match Kind::parse(k) {
            Some(k) => Some(k.name().to_owned()),
            None => {
                return Err(WebError::BadRequest(format!(
                "kind {k:?} is not quota, mac_flood, arp_spoof, arp_reply_flood or spoofed_source"
            )))
            }
        },
    };
    if let Some(name) = &p.customer {
        if ctx.customer(name).is_none() {
            return Err(WebError::NotFound(format!("no customer {name:?}")));
        }
    }
    let filter = EventFilter {
        customer: p.customer.clone(),
        limit: Some(
            p.top(Some(DEFAULT_EVENTS))?
                .unwrap_or(DEFAULT_EVENTS)
                .min(MAX_EVENTS),
        ),
        ..Default::default()
    };
    Ok(ctx
        .stores
        .with(move |s| match s.guard() {
            Some(g) => g.events(&filter, kind.as_deref()),
            None => Ok(Vec::new()),
        })
        .await??)
}

async fn api(State(ctx): Ctx, Query(p): Query<Params>) -> Response {
    let rows = match select(&ctx, &p).await {
        Ok(list) => list
            .iter()
            .map(|e| match e {
                Event::Quota(q) => quota_json(q),
                Event::Guard(g) => event_json(g),
            })
            .collect::<Vec<_>>(),
        Err(e) => return super::api::ApiError::from(e).into_response(),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "events": rows }).to_string(),
    )
        .into_response()
}

async fn page(State(ctx): Ctx, Query(p): Query<Params>) -> Result<Html<String>, WebError> {
    let list = select(&ctx, &p).await?;
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"period\">{} events, oldest first · <a href=\"/api/v1/events\">JSON</a></p><p class=\"links\"><a href=\"/events\">all</a>",
        list.len()
    );
    for k in [
        "quota",
        "mac_flood",
        "arp_spoof",
        "arp_reply_flood",
        "spoofed_source",
    ] {
        let _ = write!(body, "<a href=\"/events?kind={k}\">{k}</a>");
    }
    body.push_str("</p>");
    if list.is_empty() {
        body.push_str("<p class=\"note\">No events.</p>");
    } else {
        body.push_str("<div class=\"wide\"><table class=\"sortable\" id=\"events\"><thead><tr><th class=\"t\">time</th><th class=\"t\">kind</th><th class=\"t\">customer</th><th class=\"t\">event</th><th class=\"t\">hooks</th><th class=\"t\">reason</th></tr></thead><tbody>");
        for e in &list {
            let (what, reason) = match e {
                Event::Quota(q) => (quota_summary(q), q.reason.as_str()),
                Event::Guard(g) => (summary(g), g.reason.as_str()),
            };
            let customer = match e.customer() {
                Some(c) if ctx.customer(c).is_some() => {
                    format!("<a href=\"/customer/{}\">{}</a>", esc(&url_part(c)), esc(c))
                }
                Some(c) => esc(c).to_string(),
                None => "-".to_owned(),
            };
            let class = if e.kind() == "quota" {
                ""
            } else {
                " class=\"warn\""
            };
            let _ = write!(
                body,
                "<tr><td class=\"t\">{}</td><td class=\"t\"{class}>{}</td><td class=\"t\">{customer}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td></tr>",
                esc(&time(e.ts())),
                esc(e.kind()),
                esc(&what),
                esc(e.hooks().name()),
                esc(reason)
            );
        }
        body.push_str("</tbody></table></div>");
    }
    Ok(super::pages::page("Events", "/events", &body))
}

/// The layer-2 section of the "now" view.
pub fn guard_html(out: &mut String, g: &GuardView) {
    out.push_str("<h2>Layer 2</h2><dl class=\"status\">");
    let mut item = |k: &str, v: String, warn: bool| {
        let class = if warn { " class=\"warn\"" } else { "" };
        let _ = write!(out, "<dt>{}</dt><dd{class}>{}</dd>", esc(k), esc(&v));
    };
    if let Some(l) = &g.last {
        item("interval", time(l.start), false);
        item(
            "source MACs",
            format!(
                "{}{}{}",
                if l.macs_capped { "at least " } else { "" },
                l.macs,
                l.baseline
                    .map_or(String::new(), |b| format!(" (baseline {b})"))
            ),
            false,
        );
        item(
            "ARP",
            format!(
                "{} requests, {} replies, {} gratuitous, {} unsolicited replies",
                l.arp.requests, l.arp.replies, l.arp.gratuitous, l.arp.unsolicited
            ),
            false,
        );
        item(
            "bindings",
            format!(
                "{} active; new from ARP {}, from IP packets {}",
                l.active_bindings, l.new_arp_bindings, l.new_ip_bindings
            ),
            false,
        );
        item(
            "spoofed",
            format!(
                "{} packets, {}",
                l.spoofed_packets,
                crate::units::bytes(l.spoofed_bytes)
            ),
            l.spoofed_packets > 0,
        );
    }
    for k in Kind::ALL {
        let n = g.events.get(&k).copied().unwrap_or(0);
        item(&format!("{} events", k.name()), n.to_string(), n > 0);
    }
    out.push_str("</dl><p class=\"links\"><a href=\"/events\">all events</a></p>");
}
