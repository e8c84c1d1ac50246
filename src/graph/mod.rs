//! Usage graphs (PNG and SVG, drawn with plotters and an embedded font): sent and received
//! rates over time, stacked by protocol class, received mirrored below the axis. This module
//! fetches the series and lays out the figures; `draw` paints; nothing here serves or writes.

mod draw;

/// Registers the embedded font with plotters (done before any drawing; anything else in the
/// process that draws text with plotters, like criterion's plots, needs it too).
pub use draw::register_fonts;

use crate::classify::Class;
use crate::parse::Proto;
use crate::store::{Query, Series, SeriesQuery, Store, StoreError};
use crate::usage::{Dir, Host};
use ipnet::IpNet;

/// The classes stacked in a graph, bottom up: they sum to the total.
pub const STACK: [Class; 4] = [
    Class::Proto(Proto::Tcp),
    Class::Proto(Proto::Udp),
    Class::Proto(Proto::Icmp),
    Class::Proto(Proto::Other),
];

/// The fill colour of each class in [`STACK`], as RGB.
pub const COLOURS: [(u8, u8, u8); 4] = [
    (31, 119, 180),
    (255, 127, 14),
    (214, 39, 40),
    (148, 103, 189),
];

/// Bounds of a picture's size in pixels.
pub const MIN_SIZE: (u32, u32) = (320, 200);
pub const MAX_SIZE: (u32, u32) = (2400, 1200);
pub const DEFAULT_SIZE: (u32, u32) = (760, 320);

/// The usual graph windows, each ending at a chosen time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Day,
    Week,
    Month,
    Year,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::Day, Window::Week, Window::Month, Window::Year];

    pub fn name(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
            Window::Year => "year",
        }
    }

    pub fn seconds(self) -> i64 {
        const DAY: i64 = 86_400;
        match self {
            Window::Day => DAY,
            Window::Week => 7 * DAY,
            Window::Month => 30 * DAY,
            Window::Year => 365 * DAY,
        }
    }

    /// The window ending at `end` (Unix seconds), its end rounded up to a whole step so that
    /// buckets fall on the clock: (from, to).
    pub fn ending(self, end: i64) -> (i64, i64) {
        let step = step_for(self.seconds());
        let to = (end + step - 1).div_euclid(step) * step;
        (to - self.seconds(), to)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Svg => "image/svg+xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

/// The networks a host row covers: an address as a /32 or /128, a network as itself.
pub fn host_net(host: &Host) -> IpNet {
    match host {
        Host::Addr(a) => IpNet::from(*a),
        Host::Net(n) => n.trunc(),
    }
}

/// A host row's name for titles and links: the address, or the network with its prefix.
pub fn net_name(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// A bucket width for a span: about 400 buckets or fewer, on a round duration.
pub fn step_for(span: i64) -> i64 {
    const STEPS: [i64; 10] = [
        60, 300, 600, 1800, 3600, 7200, 21_600, 43_200, 86_400, 604_800,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 400)
        .unwrap_or(604_800)
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot draw the graph: {0}")]
    Draw(String),
    #[error("cannot encode the PNG: {0}")]
    Png(#[from] png::EncodingError),
    #[error("the embedded font is unreadable")]
    Font,
    #[error("a graph is {min_w}x{min_h} to {max_w}x{max_h} pixels, not {w}x{h}",
        min_w = MIN_SIZE.0, min_h = MIN_SIZE.1, max_w = MAX_SIZE.0, max_h = MAX_SIZE.1)]
    Size { w: u32, h: u32 },
}

/// What to draw: whose traffic (a title and the networks it covers) over which range.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub title: String,
    pub nets: Vec<IpNet>,
    pub from: i64,
    pub to: i64,
    pub sensor: Option<String>,
}

/// A series ready to draw, with its title.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub series: Series,
}

/// A drawn picture and where its plot area is (pixels: x0, y0, x1, y1, exclusive ends).
#[derive(Debug, Clone)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub plot_area: (i32, i32, i32, i32),
}

/// Period totals and peaks for the caption.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Peak rates in bits/s.
    pub tx_peak: f64,
    pub rx_peak: f64,
}

impl Chart {
    /// Reads the series for a request, in buckets no shorter than the stored samples.
    pub fn fetch(store: &dyn Store, req: &GraphRequest) -> Result<Chart, StoreError> {
        let series = store.series(&SeriesQuery {
            range: Query {
                from: req.from,
                to: req.to,
                sensor: req.sensor.clone(),
            },
            step: step_for(req.to - req.from),
            nets: req.nets.clone(),
        })?;
        let interval = series.interval_s;
        Ok(Chart {
            title: req.title.clone(),
            series: series.coarsen(interval),
        })
    }

    pub fn summary(&self) -> Summary {
        let step = self.series.step.max(1) as f64;
        let mut s = Summary::default();
        for (_, u) in &self.series.points {
            let (tx, rx) = (u.total_bytes(Dir::Tx), u.total_bytes(Dir::Rx));
            s.tx_bytes += tx;
            s.rx_bytes += rx;
            s.tx_peak = s.tx_peak.max(tx as f64 * 8.0 / step);
            s.rx_peak = s.rx_peak.max(rx as f64 * 8.0 / step);
        }
        s
    }

    /// Draws the chart at `size` pixels.
    pub fn render(&self, format: ImageFormat, size: (u32, u32)) -> Result<Image, GraphError> {
        let (w, h) = size;
        if !(MIN_SIZE.0..=MAX_SIZE.0).contains(&w) || !(MIN_SIZE.1..=MAX_SIZE.1).contains(&h) {
            return Err(GraphError::Size { w, h });
        }
        draw::register_fonts()?;
        match format {
            ImageFormat::Svg => draw::svg(self, size),
            ImageFormat::Png => draw::png(self, size),
        }
    }
}

#[cfg(test)]
mod tests;
