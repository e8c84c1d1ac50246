//! The static site (`graph --site DIR`): `index.html` with the top-talkers table of a period,
//! a page per host (and per customer) with its day, week, month and year graphs as PNG files,
//! and the stylesheet and script. Relative links only: it works from any web server or from
//! disk. Reads the store, writes files; serves nothing.

use crate::customer::Customers;
use crate::graph::{host_net, net_name, Chart, GraphError, GraphRequest, ImageFormat, Window};
use crate::names::NameMap;
use crate::period::Period;
use crate::report::{self, By};
use crate::store::{Store, StoreError};
use crate::usage::Host;
use crate::web::html::{self, esc, Links, Page};
use ipnet::IpNet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Names(#[from] crate::names::NamesError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub struct SiteOptions {
    /// The period of the top-talkers table; the graphs end where it ends.
    pub period: Period,
    /// Pages for the `top` busiest hosts.
    pub top: usize,
    pub sensor: Option<String>,
    pub customers: Customers,
    /// `[names]`: names next to addresses (looked up once, before the pages are written).
    pub names: Option<crate::config::Names>,
}

#[derive(Debug, Clone)]
pub struct SiteSummary {
    pub dir: PathBuf,
    /// Hosts in the table.
    pub hosts: usize,
    /// Host and customer pages written.
    pub pages: usize,
    pub graphs: usize,
}

/// A file name for a host that is safe on every file system and in a relative URL (no `:`,
/// which a browser would read as a URL scheme, no `/`).
pub fn file_stem(host: &Host) -> String {
    host.to_string().replace(':', "-").replace('/', "_")
}

struct SiteLinks<'a> {
    /// Hosts that have a page.
    paged: &'a [Host],
    customers: &'a Customers,
    names: &'a NameMap,
}

impl Links for SiteLinks<'_> {
    fn host(&self, host: &Host) -> Option<String> {
        self.paged
            .contains(host)
            .then(|| format!("hosts/{}.html", file_stem(host)))
    }

    fn customer(&self, name: &str) -> Option<String> {
        self.customers
            .get(name)
            .is_some()
            .then(|| format!("customers/{}.html", html::url_part(name)))
    }

    fn name(&self, host: &Host) -> Option<String> {
        self.names.get(host).cloned()
    }
}

struct Writer<'a> {
    dir: &'a Path,
    summary: SiteSummary,
}

impl Writer<'_> {
    fn file(&self, rel: &str, bytes: &[u8]) -> Result<(), SiteError> {
        let path = self.dir.join(rel);
        let err = |source| SiteError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::write(&path, bytes).map_err(err)
    }

    /// A page with the four graphs of a selection; `rel_dir` is where it lives ("hosts").
    fn graph_page(
        &mut self,
        store: &dyn Store,
        opts: &SiteOptions,
        (rel_dir, stem): (&str, &str),
        (title, nets): (&str, &[IpNet]),
        intro: &str,
    ) -> Result<(), SiteError> {
        let mut body = String::from(intro);
        body.push_str("<div class=\"graphs\">");
        for w in Window::ALL {
            let (from, to) = w.ending(opts.period.to.timestamp());
            let chart = Chart::fetch(
                store,
                &GraphRequest {
                    title: title.to_owned(),
                    nets: nets.to_vec(),
                    from,
                    to,
                    sensor: opts.sensor.clone(),
                },
            )?;
            let image = chart.render(ImageFormat::Png, crate::graph::DEFAULT_SIZE)?;
            let name = format!("{stem}-{}.png", w.name());
            self.file(&format!("{rel_dir}/{name}"), &image.bytes)?;
            self.summary.graphs += 1;
            html::figure(
                &mut body,
                &name,
                w.name(),
                w.name(),
                crate::graph::DEFAULT_SIZE,
            );
        }
        body.push_str("</div>");
        let page = Page {
            title,
            assets: "../",
            home: "../index.html",
            nav: "<a href=\"../index.html\">Top talkers</a>",
            body: &body,
            footer: "bwacct static site · times in UTC",
        }
        .render();
        self.file(&format!("{rel_dir}/{stem}.html"), page.as_bytes())?;
        self.summary.pages += 1;
        Ok(())
    }
}

/// Writes the site into `dir` (created if needed; files of an earlier run are overwritten).
pub fn write(store: &dyn Store, dir: &Path, opts: &SiteOptions) -> Result<SiteSummary, SiteError> {
    let rep = report::build(
        store,
        opts.period,
        By::Ip,
        opts.sensor.clone(),
        None,
        &opts.customers,
    )?;
    let mut w = Writer {
        dir,
        summary: SiteSummary {
            dir: dir.to_owned(),
            hosts: rep.rows.len(),
            pages: 0,
            graphs: 0,
        },
    };
    w.file("style.css", html::STYLE.as_bytes())?;
    w.file("app.js", html::SCRIPT.as_bytes())?;
    let paged: Vec<Host> = rep.rows.iter().take(opts.top).map(|r| r.host).collect();
    let names = match &opts.names {
        Some(settings) => {
            let hosts: Vec<Host> = rep.rows.iter().map(|r| r.host).collect();
            let customers = Arc::new(opts.customers.clone());
            crate::names::resolve_blocking(settings, customers, &hosts)?
        }
        None => NameMap::new(),
    };
    for host in &paged {
        let net = host_net(host);
        let title = match (names.get(host), host) {
            (Some(name), Host::Addr(_)) => format!("{} ({name})", net_name(&net)),
            _ => net_name(&net),
        };
        w.graph_page(
            store,
            opts,
            ("hosts", &file_stem(host)),
            (&title, &[net]),
            "",
        )?;
    }
    for c in opts.customers.iter() {
        let mut intro = String::from("<p class=\"period\">Addresses: ");
        let names: Vec<String> = c
            .networks
            .iter()
            .map(|n| esc(&net_name(n)).to_string())
            .collect();
        intro.push_str(&names.join(", "));
        intro.push_str("</p>");
        w.graph_page(
            store,
            opts,
            ("customers", &html::url_part(&c.name)),
            (&c.name, &c.networks),
            &intro,
        )?;
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"period\">From {} to {} (UTC) · {} hosts with traffic · written {}</p>",
        esc(&opts.period.from.format("%Y-%m-%d %H:%M").to_string()),
        esc(&opts.period.to.format("%Y-%m-%d %H:%M").to_string()),
        rep.rows.len(),
        esc(&chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string())
    );
    let links = SiteLinks {
        paged: &paged,
        customers: &opts.customers,
        names: &names,
    };
    body.push_str(&html::top_table(&rep.rows, rep.rows.len(), &links));
    let index = Page {
        title: "Top talkers",
        assets: "",
        home: "index.html",
        nav: "<a href=\"index.html\" class=\"here\">Top talkers</a>",
        body: &body,
        footer: "bwacct static site · times in UTC",
    }
    .render();
    w.file("index.html", index.as_bytes())?;
    Ok(w.summary)
}
