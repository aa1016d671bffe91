//! The latency plot of a run, as a self-contained SVG written by hand: the percentile curve
//! on a "nines" axis (0%, 90%, 99%, 99.9% ... evenly spaced, the way HdrHistogram plots
//! are read), the answered requests in each second of the run, and p50, p99 and p99.9 of
//! each report interval (a drift over a long run shows there).

use std::fmt::Write;

use super::report::{group, LoadReport, PercentilePoint};
use super::stats::IntervalStats;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 1_000.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 870.0;
/// Top and bottom of the two panels.
const CURVE_TOP: f64 = 70.0;
const CURVE_BOTTOM: f64 = 360.0;
const RATE_TOP: f64 = 450.0;
const RATE_BOTTOM: f64 = 670.0;
const SERIES_TOP: f64 = 760.0;
const SERIES_BOTTOM: f64 = 950.0;
/// The percentiles the time series panel draws, with their colours.
const SERIES: [(&str, &str); 3] = [("p50", "#1f5fbf"), ("p99", "#d0761c"), ("p99.9", "#b02a2a")];
/// The nines axis shows at least 99.9% and at most 99.9999%.
const NINES_MIN: u32 = 3;
const NINES_MAX: u32 = 6;
const Y_TICKS: u32 = 5;

/// The plot for `report`.
pub fn latency_plot(report: &LoadReport) -> String {
    let mut svg = String::with_capacity(16 * 1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let c = &report.config;
    let title = format!(
        "{} messages, {} answered/s, seed {} ({})",
        group(report.messages),
        group(report.throughput_per_s.round() as u64),
        report.seed,
        c.target
    );
    text(&mut svg, WIDTH / 2.0, 24.0, "middle", 15.0, &title);
    curve_panel(&mut svg, &report.latency_percentiles);
    rate_panel(&mut svg, &report.throughput_timeline_per_s);
    series_panel(&mut svg, &report.intervals);
    svg.push_str("</svg>\n");
    svg
}

fn curve_panel(svg: &mut String, points: &[PercentilePoint]) {
    text(
        svg,
        LEFT,
        CURVE_TOP - 14.0,
        "start",
        13.0,
        "Latency by percentile (µs)",
    );
    let y_max = nice_ceiling(points.iter().map(|p| p.latency_us).max().unwrap_or(0));
    let nines = nines_shown(points);
    let x_of = |percentile: f64| {
        let n = nines_of(percentile).min(f64::from(nines));
        LEFT + (RIGHT - LEFT) * n / f64::from(nines)
    };
    let y_of = |v: u64| CURVE_BOTTOM - (CURVE_BOTTOM - CURVE_TOP) * v as f64 / y_max as f64;
    y_axis(svg, CURVE_TOP, CURVE_BOTTOM, y_max);
    for n in 0..=nines {
        let x = LEFT + (RIGHT - LEFT) * f64::from(n) / f64::from(nines);
        grid_line(svg, x, CURVE_TOP, x, CURVE_BOTTOM);
        text(svg, x, CURVE_BOTTOM + 18.0, "middle", 12.0, &nines_label(n));
    }
    let path: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x_of(p.percentile), y_of(p.latency_us)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
}

fn rate_panel(svg: &mut String, per_s: &[u64]) {
    text(
        svg,
        LEFT,
        RATE_TOP - 14.0,
        "start",
        13.0,
        "Answers per second",
    );
    let y_max = nice_ceiling(per_s.iter().copied().max().unwrap_or(0));
    y_axis(svg, RATE_TOP, RATE_BOTTOM, y_max);
    let seconds = per_s.len().max(1);
    let bar = (RIGHT - LEFT) / seconds as f64;
    for (i, &n) in per_s.iter().enumerate() {
        let h = (RATE_BOTTOM - RATE_TOP) * n as f64 / y_max as f64;
        let _ = write!(
            svg,
            r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="#3f8f4f"/>"##,
            LEFT + bar * i as f64,
            RATE_BOTTOM - h,
            (bar * 0.9).max(0.5),
            h
        );
    }
    let step = nice_ceiling((seconds as u64).div_ceil(10)).max(1);
    let mut s = 0;
    while s <= seconds as u64 {
        let x = LEFT + bar * s as f64;
        text(svg, x, RATE_BOTTOM + 18.0, "middle", 12.0, &format!("{s}s"));
        s += step;
    }
}

/// p50, p99 and p99.9 of each interval, one point per interval at its end.
fn series_panel(svg: &mut String, intervals: &[IntervalStats]) {
    let intervals = without_short_tail(intervals);
    let title = match intervals.first() {
        Some(i) => format!(
            "Latency per {} s interval (µs): p50, p99, p99.9",
            i.end_s - i.start_s
        ),
        None => "Latency per interval (µs)".to_owned(),
    };
    text(svg, LEFT, SERIES_TOP - 14.0, "start", 13.0, &title);
    let pick = |i: &IntervalStats, k: usize| match k {
        0 => i.latency_us.p50,
        1 => i.latency_us.p99,
        _ => i.latency_us.p999,
    };
    let y_max = nice_ceiling(intervals.iter().map(|i| pick(i, 2)).max().unwrap_or(0));
    y_axis(svg, SERIES_TOP, SERIES_BOTTOM, y_max);
    let t_max = intervals.last().map_or(1.0, |i| i.end_s).max(1.0);
    let x_of = |t: f64| LEFT + (RIGHT - LEFT) * t / t_max;
    let y_of = |v: u64| SERIES_BOTTOM - (SERIES_BOTTOM - SERIES_TOP) * v as f64 / y_max as f64;
    for (k, (label, colour)) in SERIES.iter().enumerate() {
        let points: Vec<String> = intervals
            .iter()
            .map(|i| format!("{:.1},{:.1}", x_of(i.end_s), y_of(pick(i, k))))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let x = RIGHT - 150.0 + 50.0 * k as f64;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/>"#,
            SERIES_TOP - 24.0
        );
        text(svg, x + 14.0, SERIES_TOP - 15.0, "start", 11.0, label);
    }
    let step = nice_ceiling((t_max as u64).div_ceil(10)).max(1);
    let mut s = 0;
    while s as f64 <= t_max {
        text(
            svg,
            x_of(s as f64),
            SERIES_BOTTOM + 18.0,
            "middle",
            12.0,
            &format!("{s}s"),
        );
        s += step;
    }
}

/// The intervals worth a point: a last one shorter than half the first (cut by the end of
/// the run, with a handful of answers) would draw a percentile that means nothing.
fn without_short_tail(intervals: &[IntervalStats]) -> &[IntervalStats] {
    let span = |i: &IntervalStats| i.end_s - i.start_s;
    match (intervals.first(), intervals.split_last()) {
        (Some(first), Some((last, rest))) if !rest.is_empty() && span(last) * 2.0 < span(first) => {
            rest
        }
        _ => intervals,
    }
}

/// Labels and grid of a vertical axis from 0 to `y_max`.
fn y_axis(svg: &mut String, top: f64, bottom: f64, y_max: u64) {
    for i in 0..=Y_TICKS {
        let value = y_max * u64::from(i) / u64::from(Y_TICKS);
        let y = bottom - (bottom - top) * f64::from(i) / f64::from(Y_TICKS);
        grid_line(svg, LEFT, y, RIGHT, y);
        text(svg, LEFT - 8.0, y + 4.0, "end", 12.0, &group(value));
    }
}

fn grid_line(svg: &mut String, x1: f64, y1: f64, x2: f64, y2: f64) {
    let _ = write!(
        svg,
        r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#dddddd"/>"##
    );
}

fn text(svg: &mut String, x: f64, y: f64, anchor: &str, size: f64, content: &str) {
    let _ = write!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}">{}</text>"#,
        escape(content)
    );
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How many nines a percentile has: 90% → 1, 99% → 2, 99.9% → 3; 100% is infinite.
fn nines_of(percentile: f64) -> f64 {
    let rest = 1.0 - percentile / 100.0;
    if rest <= 0.0 {
        f64::INFINITY
    } else {
        -rest.log10()
    }
}

/// The axis covers the curve's highest percentile below 100%, within the bounds.
fn nines_shown(points: &[PercentilePoint]) -> u32 {
    let top = points
        .iter()
        .map(|p| nines_of(p.percentile))
        .filter(|n| n.is_finite())
        .fold(0.0f64, f64::max);
    (top.ceil() as u32).clamp(NINES_MIN, NINES_MAX)
}

fn nines_label(n: u32) -> String {
    match n {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        _ => format!("99.{}%", "9".repeat(n as usize - 2)).replace("99.%", "99%"),
    }
}

/// The smallest 1, 2, 3, 4, 5, 6 or 8 × 10^k not below `v` (at least 1).
fn nice_ceiling(v: u64) -> u64 {
    let mut base = 1u64;
    loop {
        for m in [1, 2, 3, 4, 5, 6, 8] {
            let candidate = base.saturating_mul(m);
            if candidate >= v {
                return candidate;
            }
        }
        if base > u64::MAX / 10 {
            return u64::MAX;
        }
        base *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::report::tests::sample;

    #[test]
    fn axes_helpers() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(7), 8);
        assert_eq!(nice_ceiling(9), 10);
        assert_eq!(nice_ceiling(130), 200);
        assert_eq!(nice_ceiling(21_231), 30_000);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
        assert_eq!(nines_label(0), "0%");
        assert_eq!(nines_label(1), "90%");
        assert_eq!(nines_label(2), "99%");
        assert_eq!(nines_label(4), "99.99%");
        assert!((nines_of(99.9) - 3.0).abs() < 1e-9);
        assert!(nines_of(100.0).is_infinite());
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn a_short_last_interval_is_not_drawn() {
        let interval = |start_s: f64, end_s: f64| IntervalStats {
            start_s,
            end_s,
            answered: 1,
            latency_us: Default::default(),
        };
        let whole = [interval(0.0, 10.0), interval(10.0, 20.0)];
        assert_eq!(without_short_tail(&whole).len(), 2);
        let cut = [
            interval(0.0, 10.0),
            interval(10.0, 20.0),
            interval(20.0, 20.1),
        ];
        assert_eq!(without_short_tail(&cut).len(), 2);
        let alone = [interval(0.0, 0.1)];
        assert_eq!(without_short_tail(&alone).len(), 1);
    }

    #[test]
    fn plot_has_its_three_panels() {
        let svg = latency_plot(&sample());
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Latency by percentile"));
        assert!(svg.contains("Answers per second"));
        assert!(svg.contains("Latency per 1 s interval"));
        // The percentile curve and one line per percentile of the time series.
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("<polyline"));
        assert!(svg.contains(">99.9%<"));
        // One bar per second of the run (the sample spans two).
        assert_eq!(svg.matches(r##"fill="#3f8f4f""##).count(), 2);
    }
}
