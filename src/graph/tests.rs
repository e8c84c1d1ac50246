//! Graphs drawn from known data and checked as pictures: the PNG decoded pixel by pixel, the
//! SVG read for its texts.

use super::*;
use crate::store::Series;
use crate::usage::Usage;

const DAY0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

/// A day in 5-minute buckets: tcp sent `tx` bytes per bucket in the first half and `2 × tx` in
/// the second; udp received `rx` bytes per bucket throughout.
fn chart(tx: u64, rx: u64) -> Chart {
    let step = 300;
    let points = (0..288)
        .map(|i| {
            let mut u = Usage::default();
            let v = if i < 144 { tx } else { 2 * tx };
            u.set(Dir::Tx, Class::Proto(Proto::Tcp), false, v);
            u.set(Dir::Rx, Class::Proto(Proto::Udp), false, rx);
            (DAY0 + i * step, u)
        })
        .filter(|(_, u)| !u.is_zero())
        .collect();
    Chart {
        title: "198.51.100.7".into(),
        series: Series {
            from: DAY0,
            to: DAY0 + 86_400,
            step,
            points,
            interval_s: 60,
        },
    }
}

struct Picture {
    w: u32,
    rgb: Vec<u8>,
}

impl Picture {
    fn decode(bytes: &[u8]) -> Picture {
        let decoder = png::Decoder::new(bytes);
        let mut reader = decoder.read_info().expect("a PNG");
        let mut rgb = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut rgb).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        rgb.truncate(info.buffer_size());
        Picture { w: info.width, rgb }
    }

    fn is(&self, x: i32, y: i32, (r, g, b): (u8, u8, u8)) -> bool {
        let i = (y as usize * self.w as usize + x as usize) * 3;
        self.rgb[i..i + 3] == [r, g, b]
    }

    /// Pixels of `colour` in column `x` between rows `y0..y1`, and the rows where they are.
    fn column(&self, x: i32, (y0, y1): (i32, i32), colour: (u8, u8, u8)) -> Vec<i32> {
        (y0..y1).filter(|&y| self.is(x, y, colour)).collect()
    }
}

fn median(mut v: Vec<usize>) -> usize {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn png_plots_class_colours_in_the_plot_area_and_bigger_values_taller() {
    let img = chart(3_000_000, 1_000_000)
        .render(ImageFormat::Png, DEFAULT_SIZE)
        .unwrap();
    let (x0, y0, x1, y1) = img.plot_area;
    assert!(
        x1 - x0 > 500 && y1 - y0 > 150,
        "plot area {:?}",
        img.plot_area
    );
    let pic = Picture::decode(&img.bytes);
    let (tcp, udp) = (COLOURS[0], COLOURS[1]);
    let width = x1 - x0;
    let left: Vec<i32> = (x0 + width / 10..x0 + 4 * width / 10).collect();
    let right: Vec<i32> = (x0 + 6 * width / 10..x0 + 9 * width / 10).collect();
    let heights = |xs: &[i32], c| {
        median(
            xs.iter()
                .map(|&x| pic.column(x, (y0, y1), c).len())
                .collect(),
        )
    };
    let (low, high) = (heights(&left, tcp), heights(&right, tcp));
    assert!(low > 10, "sent tcp is drawn: {low} px");
    let ratio = high as f64 / low as f64;
    assert!(
        (1.85..=2.15).contains(&ratio),
        "twice the rate draws twice as tall: {low} px vs {high} px"
    );
    let udp_left = heights(&left, udp);
    let udp_right = heights(&right, udp);
    assert!(
        udp_left > 5 && udp_left.abs_diff(udp_right) <= 1,
        "constant received udp: {udp_left} vs {udp_right}"
    );
    // sent above the axis, received below
    for &x in left.iter().chain(&right) {
        let t = pic.column(x, (y0, y1), tcp);
        let u = pic.column(x, (y0, y1), udp);
        assert!(
            t.iter().max() < u.iter().min(),
            "column {x}: tcp rows {t:?} udp rows {u:?}"
        );
    }
    // 6 MB per 5 min is 160 kbit/s at the peak; received 1 MB per 5 min is a third of the first half
    assert!(
        (udp_left as f64 / low as f64 - 1.0 / 3.0).abs() < 0.05,
        "{udp_left} vs {low}"
    );
}

#[test]
fn an_empty_period_draws_axes_but_no_area() {
    let img = chart(0, 0).render(ImageFormat::Png, (640, 300)).unwrap();
    let (x0, y0, x1, y1) = img.plot_area;
    let pic = Picture::decode(&img.bytes);
    for c in COLOURS {
        let n: usize = (x0..x1).map(|x| pic.column(x, (y0, y1), c).len()).sum();
        assert_eq!(n, 0, "no area of colour {c:?}");
    }
}

#[test]
fn svg_has_title_legend_axis_units_and_caption() {
    let img = chart(3_000_000, 1_000_000)
        .render(ImageFormat::Svg, DEFAULT_SIZE)
        .unwrap();
    let svg = String::from_utf8(img.bytes).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
    let texts: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| {
            t.split_once('>')
                .and_then(|(_, rest)| rest.split_once("</text>"))
        })
        .map(|(text, _)| text.trim())
        .collect();
    for text in [
        "198.51.100.7",
        "tcp",
        "udp",
        "icmp",
        "other",
        "kbit/s",
        "▲ sent",
        "▼ received",
        "00:00",
        "12:00",
        "2024-01-01 00:00 – 2024-01-02 00:00 UTC",
        "sent 1.2 GiB (peak 160.00 kbit/s)",
        "received 274.7 MiB (peak 26.67 kbit/s)",
        "buckets of 5 min",
    ] {
        assert!(
            texts.contains(&text),
            "the SVG lacks the text {text:?}: {texts:?}"
        );
    }
}

#[test]
fn sizes_are_bounded_and_windows_align() {
    assert!(matches!(
        chart(1, 1).render(ImageFormat::Png, (10_000, 300)),
        Err(GraphError::Size { .. })
    ));
    assert_eq!(
        Window::Day.ending(DAY0 + 1),
        (DAY0 - 86_400 + 300, DAY0 + 300)
    );
    assert_eq!(Window::Year.ending(DAY0).1 % 86_400, 0);
    assert_eq!(step_for(86_400), 300);
    assert_eq!(step_for(365 * 86_400), 86_400);
}
