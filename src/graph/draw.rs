//! Paints a [`Chart`] with plotters on any backend: stacked class areas (sent above the axis,
//! received below), axes with rate units and UTC time ticks, legend, totals and peaks. Text uses
//! the embedded DejaVu font: no fontconfig or freetype on the machine.

use super::{Chart, GraphError, Image, COLOURS, STACK};
use crate::units;
use crate::usage::Dir;
use chrono::{DateTime, TimeZone, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::OnceLock;

const FONT: &str = "sans-serif";
const TITLE_H: u32 = 30;
const CAPTION_H: u32 = 50;

/// Registers the embedded font once per process.
pub fn register_fonts() -> Result<(), GraphError> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(GraphError::Font)
    }
}

fn draw_err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> GraphError {
    GraphError::Draw(e.to_string())
}

pub fn svg(chart: &Chart, size: (u32, u32)) -> Result<Image, GraphError> {
    let mut text = String::new();
    let plot_area = {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        let area = paint(&root, chart).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
        area
    };
    Ok(Image {
        bytes: text.into_bytes(),
        plot_area,
    })
}

pub fn png(chart: &Chart, (w, h): (u32, u32)) -> Result<Image, GraphError> {
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    let plot_area = {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let area = paint(&root, chart).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
        area
    };
    let mut bytes = Vec::with_capacity(rgb.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&rgb)?;
        writer.finish()?;
    }
    Ok(Image { bytes, plot_area })
}

fn utc(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

/// The smallest of 1, 2, 2.5, 5 × 10^n at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 0.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude)
}

/// The unit for rates up to `max` bits/s: (divisor, name).
fn rate_unit(max: f64) -> (f64, &'static str) {
    match max {
        m if m >= 1e9 => (1e9, "Gbit/s"),
        m if m >= 1e6 => (1e6, "Mbit/s"),
        m if m >= 1e3 => (1e3, "kbit/s"),
        _ => (1.0, "bit/s"),
    }
}

fn time_format(span: i64) -> &'static str {
    match span {
        s if s <= 2 * 86_400 => "%H:%M",
        s if s <= 14 * 86_400 => "%a %d",
        s if s <= 92 * 86_400 => "%d %b",
        _ => "%b %Y",
    }
}

/// Cumulative rates (bits/s) per stacked class, bottom layer first, for one direction.
fn layers(chart: &Chart, dir: Dir) -> Vec<Vec<f64>> {
    let dense = chart.series.dense();
    let step = chart.series.step.max(1) as f64;
    let mut cum = vec![0f64; dense.len()];
    let mut out = Vec::with_capacity(STACK.len());
    for class in STACK {
        for (c, (_, u)) in cum.iter_mut().zip(&dense) {
            *c += u.get(dir, class, false) as f64 * 8.0 / step;
        }
        out.push(cum.clone());
    }
    out
}

/// The outline of one stacked layer as a step function down to the axis (`sign` −1: below).
fn outline(chart: &Chart, values: &[f64], sign: f64) -> Vec<(DateTime<Utc>, f64)> {
    let s = &chart.series;
    let mut pts = Vec::with_capacity(values.len() * 2 + 2);
    pts.push((utc(s.from), 0.0));
    for (i, v) in values.iter().enumerate() {
        let t0 = s.from + i as i64 * s.step;
        let t1 = (t0 + s.step).min(s.to);
        pts.push((utc(t0), sign * v));
        pts.push((utc(t1), sign * v));
    }
    pts.push((utc(s.to), 0.0));
    pts
}

type Painted<DB> =
    Result<(i32, i32, i32, i32), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Paints the whole figure; returns the plot area in pixels.
fn paint<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Painted<DB> {
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let (top, rest) = root.split_vertically(TITLE_H);
    let (main, bottom) = rest.split_vertically(h.saturating_sub(TITLE_H + CAPTION_H));
    let s = &chart.series;
    let summary = chart.summary();
    let range = format!(
        "{} – {} UTC",
        utc(s.from).format("%Y-%m-%d %H:%M"),
        utc(s.to).format("%Y-%m-%d %H:%M")
    );
    let title_font = (FONT, 20).into_font().style(FontStyle::Bold);
    top.draw(&Text::new(
        chart.title.clone(),
        (10, 7),
        title_font.color(&BLACK),
    ))?;
    let range_font = (FONT, 15).into_font().color(&RGBColor(90, 90, 90));
    let range_w = top.estimate_text_size(&range, &range_font)?.0 as i32;
    top.draw(&Text::new(
        range.clone(),
        (w as i32 - range_w - 12, 10),
        range_font,
    ))?;

    let tx = layers(chart, Dir::Tx);
    let rx = layers(chart, Dir::Rx);
    let peak = |l: &Vec<Vec<f64>>| {
        l.last()
            .map_or(0.0, |v| v.iter().copied().fold(0.0, f64::max))
    };
    let (mut tx_top, mut rx_top) = (nice_ceiling(peak(&tx)), nice_ceiling(peak(&rx)));
    if tx_top == 0.0 && rx_top == 0.0 {
        tx_top = 1000.0;
        rx_top = 1000.0;
    }
    tx_top = tx_top.max(rx_top * 0.1);
    rx_top = rx_top.max(tx_top * 0.1);
    let (div, unit) = rate_unit(tx_top.max(rx_top));
    let fmt = time_format(s.to - s.from);

    let mut cc = ChartBuilder::on(&main)
        .margin_left(8)
        .margin_right(18)
        .margin_top(4)
        .x_label_area_size(24)
        .y_label_area_size(64)
        .build_cartesian_2d(utc(s.from)..utc(s.to), -rx_top..tx_top)?;
    let label = |v: &f64| {
        let x = v.abs() / div;
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    let time_label = |t: &DateTime<Utc>| t.format(fmt).to_string();
    cc.configure_mesh()
        .x_labels((w as usize / 110).max(2))
        .y_labels(9)
        .x_label_formatter(&time_label)
        .y_label_formatter(&label)
        .y_desc(unit)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    for (layer, sign) in [(&tx, 1.0), (&rx, -1.0)] {
        for (values, &(r, g, b)) in layer.iter().zip(COLOURS.iter()).rev() {
            if values.iter().all(|v| *v == 0.0) {
                continue;
            }
            cc.draw_series(std::iter::once(Polygon::new(
                outline(chart, values, sign),
                RGBColor(r, g, b).filled(),
            )))?;
        }
    }
    cc.draw_series(LineSeries::new(
        [(utc(s.from), 0.0), (utc(s.to), 0.0)],
        BLACK.stroke_width(1),
    ))?;
    let (xr, yr) = cc.plotting_area().get_pixel_range();
    let tag_font = (FONT, 15).into_font();
    for (text, y) in [("▲ sent", yr.start + 3), ("▼ received", yr.end - 17)] {
        let tw = root.estimate_text_size(text, &tag_font.color(&BLACK))?.0 as i32;
        root.draw(&Rectangle::new(
            [(xr.start + 3, y - 1), (xr.start + tw + 11, y + 15)],
            WHITE.mix(0.85).filled(),
        ))?;
        root.draw(&Text::new(text, (xr.start + 7, y), tag_font.color(&BLACK)))?;
    }
    if s.points.is_empty() {
        root.draw(&Text::new(
            "no traffic stored for this period",
            ((xr.start + xr.end) / 2 - 110, (yr.start + yr.end) / 2 - 24),
            (FONT, 17).into_font().color(&RGBColor(120, 120, 120)),
        ))?;
    }

    // Legend, then the period's totals and peaks.
    let font = (FONT, 15).into_font();
    let mut x = 72;
    for (class, &(r, g, b)) in STACK.iter().zip(COLOURS.iter()) {
        bottom.draw(&Rectangle::new(
            [(x, 6), (x + 12, 18)],
            RGBColor(r, g, b).filled(),
        ))?;
        bottom.draw(&Text::new(class.name(), (x + 15, 5), font.color(&BLACK)))?;
        x += 24
            + bottom
                .estimate_text_size(class.name(), &font.color(&BLACK))?
                .0 as i32
            + 12;
    }
    let bucket = units_of_time(s.step);
    bottom.draw(&Text::new(
        format!("buckets of {bucket}"),
        (x + 8, 5),
        font.color(&RGBColor(90, 90, 90)),
    ))?;
    let sent = format!(
        "sent {} (peak {})",
        units::bytes(summary.tx_bytes),
        units::bits_per_second(summary.tx_peak)
    );
    let received = format!(
        "received {} (peak {})",
        units::bytes(summary.rx_bytes),
        units::bits_per_second(summary.rx_peak)
    );
    let sent_w = bottom.estimate_text_size(&sent, &font.color(&BLACK))?.0 as i32;
    bottom.draw(&Text::new(sent, (72, 27), font.color(&BLACK)))?;
    bottom.draw(&Text::new(
        received,
        (72 + sent_w + 30, 27),
        font.color(&BLACK),
    ))?;
    Ok((xr.start, yr.start, xr.end, yr.end))
}

/// `300` → `5 min`.
fn units_of_time(s: i64) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nice_numbers_and_units() {
        assert_eq!(super::nice_ceiling(0.0), 0.0);
        assert_eq!(super::nice_ceiling(3.2e6), 5e6);
        assert_eq!(super::nice_ceiling(2e6), 2e6);
        assert_eq!(super::nice_ceiling(2.1e3), 2.5e3);
        assert_eq!(super::rate_unit(5e6), (1e6, "Mbit/s"));
        assert_eq!(super::units_of_time(300), "5 min");
        assert_eq!(super::units_of_time(86_400), "1 d");
    }
}
