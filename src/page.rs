//! What an operator reads: the statistics as aligned text or JSON, and the page at `/`, one
//! SVG chart per target drawn as SmokePing draws it (the median per 5-minute bucket as a step
//! across it, the min–max band as "smoke" around it, loss as a coloured mark under the
//! bucket). Pure: no
//! JavaScript, no outside asset, so the page works from a machine with no other access.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::line::{LocalTime, Name};
use crate::stats::{self, ChartPoint, Refilled, Summary};

/// One target as the operator's view shows it.
pub struct TargetView {
    pub name: Name,
    /// Where its probes last went; none until one went out.
    pub address: Option<String>,
    /// The 1 m, 1 h and 24 h windows, in that order.
    pub windows: Vec<Summary>,
    /// RFC 3550's smoothed jitter, now.
    pub jitter: Option<Duration>,
    /// The last 24 h, 5-minute buckets holding a probe, oldest first.
    pub chart: Vec<ChartPoint>,
}

/// Every target, and what the start-up refill read from the results file (none while it
/// reads).
pub struct Overview {
    pub targets: Vec<TargetView>,
    pub refill: Option<Refilled>,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[derive(Serialize)]
struct TargetJson<'a> {
    target: &'a str,
    address: Option<&'a str>,
    windows: serde_json::Map<String, serde_json::Value>,
    jitter_rfc3550_ms: Option<f64>,
}

#[derive(Serialize)]
struct OverviewJson<'a> {
    targets: Vec<TargetJson<'a>>,
    /// Null while the results file is read back.
    refill: Option<RefillJson>,
}

#[derive(Serialize)]
struct RefillJson {
    used: u64,
    skipped: u64,
}

/// `/latency-stats?format=json`.
pub fn stats_json(overview: &Overview) -> Vec<u8> {
    let targets = overview
        .targets
        .iter()
        .map(|target| TargetJson {
            target: &target.name,
            address: target.address.as_deref(),
            windows: target
                .windows
                .iter()
                .map(|summary| {
                    (summary.window.to_string(), serde_json::to_value(summary).unwrap_or_default())
                })
                .collect(),
            jitter_rfc3550_ms: target.jitter.map(millis),
        })
        .collect();
    let refill = overview.refill.map(|refill| RefillJson { used: refill.used, skipped: refill.skipped });
    // Strings, integers and finite floats: serializing cannot fail.
    let mut body = serde_json::to_vec_pretty(&OverviewJson { targets, refill }).unwrap_or_default();
    body.push(b'\n');
    body
}

/// A figure in milliseconds, or `-` when there is none.
fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{value:.3}"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{value:.1}"))
}

/// The cells of one window's row, after the target and address.
fn row(summary: &Summary) -> Vec<String> {
    let rtt = summary.rtt_ms.as_ref();
    let errors: u64 = summary.errors.values().sum();
    vec![
        summary.window.to_string(),
        summary.sent.to_string(),
        summary.replies.to_string(),
        summary.timeouts.to_string(),
        errors.to_string(),
        summary.duplicates.to_string(),
        summary.late.to_string(),
        percent(summary.loss_percent),
        ms(rtt.map(|r| r.min)),
        ms(rtt.map(|r| r.mean)),
        ms(rtt.map(|r| r.p50)),
        ms(rtt.map(|r| r.p90)),
        ms(rtt.map(|r| r.p99)),
        ms(rtt.map(|r| r.max)),
        ms(rtt.map(|r| r.mdev)),
        ms(summary.jitter_ms),
    ]
}

const COLUMNS: [&str; 18] = [
    "target", "address", "window", "sent", "replies", "timeouts", "errors", "dup", "late", "loss%", "min",
    "mean", "p50", "p90", "p99", "max", "mdev", "jitter",
];

/// `/latency-stats`: one row per target and window, columns aligned, times in milliseconds.
pub fn stats_text(overview: &Overview) -> String {
    let mut rows: Vec<Vec<String>> = vec![COLUMNS.iter().map(|c| c.to_string()).collect()];
    for target in &overview.targets {
        for summary in &target.windows {
            let mut cells =
                vec![target.name.to_string(), target.address.clone().unwrap_or_else(|| "-".into())];
            cells.extend(row(summary));
            rows.push(cells);
        }
    }
    let mut widths = vec![0; COLUMNS.len()];
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for cells in &rows {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            // Names and words read from the left, numbers from the right.
            .map(
                |(column, (cell, width))| {
                    if column < 3 { format!("{cell:<width$}") } else { format!("{cell:>width$}") }
                },
            )
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    let _ = match overview.refill {
        Some(refill) => writeln!(
            text,
            "times in ms; refilled at start from the results file: {} lines, {} skipped",
            refill.used, refill.skipped
        ),
        None => writeln!(text, "times in ms; the last 24 h of the results file are still being read back"),
    };
    text
}

/// Every endpoint, for the page's links.
const LINKS: [(&str, &str); 8] = [
    ("/latency", "probe now"),
    ("/latency?format=json", "probe now (JSON)"),
    ("/latency-results?tail=100", "last 100 lines"),
    ("/latency-results", "all results"),
    ("/latency-results?format=json", "all results (NDJSON)"),
    ("/latency-stats", "statistics"),
    ("/latency-stats?format=json", "statistics (JSON)"),
    ("/metrics", "Prometheus metrics"),
];

/// The chart's geometry, in SVG user units.
const WIDTH: f64 = 720.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 712.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 150.0;
const LOSS_TOP: f64 = 154.0;
const LOSS_HEIGHT: f64 = 8.0;
const HEIGHT: f64 = 180.0;
/// The chart's buckets, as the statistics keep them.
const BUCKET: i64 = stats::BUCKET_SECONDS;
const BUCKETS: i64 = stats::BUCKETS as i64;

/// Loss as SmokePing colours it: more loss, hotter colour; all lost stands apart.
fn loss_colour(lost: u64, sent: u64) -> &'static str {
    let fraction = lost as f64 / sent.max(1) as f64;
    match fraction {
        f if f >= 1.0 => "#862e9c",
        f if f > 0.2 => "#e03131",
        f if f > 0.05 => "#f08c00",
        _ => "#f5c518",
    }
}

/// A round number at or above `value`, so the axis reads well: 1, 2 or 5 times a power of ten.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|step| step * power).find(|top| *top >= value).unwrap_or(10.0 * power)
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// Neighbouring buckets with loss of one colour, drawn as one mark.
struct LossRun {
    left: f64,
    start: i64,
    end: i64,
    colour: &'static str,
    lost: u64,
    sent: u64,
}

/// The SVG chart of one target's last 24 h, ending with the bucket holding `now`.
fn chart(points: &[ChartPoint], now: i64) -> String {
    let first = (now.div_euclid(BUCKET) - (BUCKETS - 1)) * BUCKET;
    let column = (RIGHT - LEFT) / BUCKETS as f64;
    let x = |start: i64| LEFT + ((start - first) / BUCKET) as f64 * column;
    let shown: Vec<&ChartPoint> =
        points.iter().filter(|p| p.start >= first && p.start < first + BUCKET * BUCKETS).collect();
    // The band's top is the slowest reply, unless a few spikes would flatten everything
    // else: then four times the highest median, and the spikes run off the top.
    let highest_median = shown.iter().filter_map(|p| p.median).map(millis).fold(0.0, f64::max);
    let highest = shown.iter().filter_map(|p| p.max).map(millis).fold(0.0, f64::max);
    let top = nice_ceiling(highest.min(4.0 * highest_median).max(0.01));
    let y = |value: Duration| BOTTOM - (millis(value).min(top) / top) * (BOTTOM - TOP);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">"##
    );
    let _ = write!(
        svg,
        r##"<rect class="plot" x="{LEFT}" y="{TOP}" width="{}" height="{}"/>"##,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    for step in 0..=2 {
        let value = top * step as f64 / 2.0;
        let at = BOTTOM - (BOTTOM - TOP) * step as f64 / 2.0;
        let _ = write!(svg, r##"<line class="grid" x1="{LEFT}" x2="{RIGHT}" y1="{at:.1}" y2="{at:.1}"/>"##);
        let _ = write!(
            svg,
            r##"<text class="axis" x="{}" y="{:.1}" text-anchor="end">{value} ms</text>"##,
            LEFT - 4.0,
            at + 3.0
        );
    }
    for hours_ago in [24, 18, 12, 6, 0] {
        let at = RIGHT - (RIGHT - LEFT) * hours_ago as f64 / 24.0;
        let label = if hours_ago == 0 { "now".to_string() } else { format!("-{hours_ago}h") };
        let _ = write!(
            svg,
            r##"<text class="axis" x="{at:.1}" y="{}" text-anchor="middle">{label}</text>"##,
            HEIGHT - 4.0
        );
    }
    let mut smoke = String::new();
    // A line per stretch of neighbouring buckets: hours without a reply are a gap, as in
    // SmokePing, not a straight line drawn across them.
    let mut medians: Vec<Vec<String>> = Vec::new();
    let mut last_answered: Option<i64> = None;
    let mut losses: Vec<LossRun> = Vec::new();
    for point in &shown {
        let left = x(point.start);
        if let (Some(min), Some(max), Some(mid)) = (point.min, point.max, point.median) {
            let (upper, lower) = (y(max), y(min));
            // At least a hairline, so a steady target still shows its band.
            let height = (lower - upper).max(0.5);
            let _ = write!(smoke, "M{left:.1} {upper:.1}h{column:.2}v{height:.1}h-{column:.2}Z");
            // A step across the bucket, as SmokePing draws it: a lone bucket still shows.
            let level = y(mid);
            let step = [format!("{left:.1},{level:.1}"), format!("{:.1},{level:.1}", left + column)];
            match medians.last_mut() {
                Some(line) if last_answered == Some(point.start - BUCKET) => line.extend(step),
                _ => medians.push(step.to_vec()),
            }
            last_answered = Some(point.start);
        }
        if point.lost > 0 {
            let colour = loss_colour(point.lost, point.sent);
            match losses.last_mut() {
                // Neighbouring buckets of one colour make one mark: a day of steady loss
                // is one element, not 288.
                Some(run) if run.colour == colour && run.end == point.start => {
                    run.end += BUCKET;
                    run.lost += point.lost;
                    run.sent += point.sent;
                }
                _ => losses.push(LossRun {
                    left,
                    end: point.start + BUCKET,
                    start: point.start,
                    colour,
                    lost: point.lost,
                    sent: point.sent,
                }),
            }
        }
    }
    for run in &losses {
        let width = (run.end - run.start) as f64 / BUCKET as f64 * column;
        let _ = write!(
            svg,
            r##"<rect class="loss" x="{:.1}" y="{LOSS_TOP}" width="{width:.2}" height="{LOSS_HEIGHT}" fill="{}"><title>{} of {} lost</title></rect>"##,
            run.left, run.colour, run.lost, run.sent
        );
    }
    let _ = write!(svg, r##"<path class="smoke" d="{smoke}"/>"##);
    for line in &medians {
        let _ = write!(svg, r##"<polyline class="median" points="{}"/>"##, line.join(" "));
    }
    svg.push_str("</svg>");
    svg
}

/// The figures of each window, as a small table.
fn figures(target: &TargetView) -> String {
    let mut table = String::from(r#"<table class="figures"><tr>"#);
    for column in &COLUMNS[2..] {
        let _ = write!(table, "<th>{column}</th>");
    }
    table.push_str("</tr>");
    for summary in &target.windows {
        table.push_str("<tr>");
        for cell in row(summary) {
            let _ = write!(table, "<td>{}</td>", escape(&cell));
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    table
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1em auto;max-width:760px;color:#212529;padding:0 8px}\
h1{font-size:1.4em}h2{font-size:1.1em;margin:1.4em 0 .3em}h2 small{color:#868e96;font-weight:normal}\
nav a{margin-right:.8em}table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
td,th{padding:1px 6px;text-align:right}td:first-child,th:first-child{text-align:left}\
.summary td,.summary th{border-bottom:1px solid #e9ecef}.figures{font-size:12px}\
.plot{fill:#f8f9fa}.grid{stroke:#dee2e6;stroke-width:.5}.axis{font-size:10px;fill:#868e96}\
.smoke{fill:#74c0fc;fill-opacity:.55}.median{fill:none;stroke:#1864ab;stroke-width:1.2}\
.legend span{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px}";

/// The page at `/`: a summary row per target (so fifty read at a glance), then each target's
/// chart and figures. `now` in local seconds (`LocalTime::seconds`).
pub fn html(overview: &Overview, now: i64) -> String {
    // Sized once from what each target draws (a bucket takes about 60 bytes, a target's
    // table and headings about 3 KB): a page of a hundred targets is 1.6 MB, and growing a
    // buffer by doubling held the old one and the new one at once, 3 MB for a moment.
    let estimate: usize = overview.targets.iter().map(|target| 3_000 + 64 * target.chart.len()).sum();
    let mut page = String::with_capacity(8_192 + estimate);
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>latency</title><style>{STYLE}</style></head><body>"
    );
    let stamp = LocalTime::from_seconds(now);
    let _ = write!(
        page,
        "<h1>latency</h1><p>{} target{} · {:04}-{:02}-{:02} {:02}:{:02}:{:02} local time · reload for fresh figures</p><nav>",
        overview.targets.len(),
        if overview.targets.len() == 1 { "" } else { "s" },
        stamp.year,
        stamp.month,
        stamp.day,
        stamp.hour,
        stamp.minute,
        stamp.second
    );
    for (href, label) in LINKS {
        let _ = write!(page, r#"<a href="{}">{label}</a>"#, escape(href));
    }
    page.push_str("</nav>");
    if overview.targets.is_empty() {
        page.push_str(
            "<p>No target is configured: set LATENCY_TARGET in /etc/default/latency or pass --target.</p>",
        );
    } else {
        page.push_str(r#"<table class="summary"><tr><th>target</th><th>address</th><th>loss% 1m</th><th>p50 1h</th><th>p99 1h</th><th>loss% 24h</th></tr>"#);
        for target in &overview.targets {
            let window = |index: usize| target.windows.get(index);
            let rtt = |index: usize| window(index).and_then(|w| w.rtt_ms.as_ref());
            let name = escape(&target.name);
            let _ = write!(
                page,
                r##"<tr><td><a href="#t-{name}">{name}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"##,
                escape(target.address.as_deref().unwrap_or("-")),
                percent(window(0).and_then(|w| w.loss_percent)),
                ms(rtt(1).map(|r| r.p50)),
                ms(rtt(1).map(|r| r.p99)),
                percent(window(2).and_then(|w| w.loss_percent)),
            );
        }
        page.push_str("</table>");
    }
    for target in &overview.targets {
        let name = escape(&target.name);
        let _ = write!(
            page,
            r#"<section class="target" id="t-{name}" data-target="{name}"><h2>{name} <small>{}</small></h2>{}{}</section>"#,
            escape(target.address.as_deref().unwrap_or("no address yet")),
            chart(&target.chart, now),
            figures(target)
        );
    }
    page.push_str(
        "<p class=\"legend\">median per 5 minutes, band from fastest to slowest reply; loss:\
         <span style=\"background:#f5c518\"></span>up to 5%<span style=\"background:#f08c00\"></span>up to 20%\
         <span style=\"background:#e03131\"></span>more<span style=\"background:#862e9c\"></span>all</p></body></html>\n",
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Rtt, Window};
    use std::collections::BTreeMap;

    const NOW: i64 = 1_754_981_813;

    fn summary(window: Window, sent: u64, replies: u64) -> Summary {
        Summary {
            window: window.label(),
            sent,
            replies,
            timeouts: sent - replies,
            errors: BTreeMap::new(),
            duplicates: 0,
            late: 0,
            loss_percent: (sent > 0).then(|| 100.0 * (sent - replies) as f64 / sent as f64),
            rtt_ms: (replies > 0).then_some(Rtt {
                min: 0.2,
                mean: 0.3,
                max: 0.9,
                mdev: 0.1,
                p50: 0.27,
                p90: 0.5,
                p99: 0.8,
            }),
            jitter_ms: None,
        }
    }

    fn point(buckets_ago: i64, sent: u64, lost: u64) -> ChartPoint {
        let micros = |n| (sent > lost).then(|| Duration::from_micros(n));
        ChartPoint {
            start: (NOW.div_euclid(BUCKET) - buckets_ago) * BUCKET,
            sent,
            lost,
            min: micros(200),
            median: micros(270),
            max: micros(900),
        }
    }

    fn view(name: &str, chart: Vec<ChartPoint>) -> TargetView {
        TargetView {
            name: name.parse().expect("a name"),
            address: Some("198.51.100.2".into()),
            windows: Window::ALL.iter().map(|&w| summary(w, 60, 57)).collect(),
            jitter: Some(Duration::from_micros(30)),
            chart,
        }
    }

    fn overview(targets: Vec<TargetView>) -> Overview {
        Overview { targets, refill: Some(Refilled { used: 10, skipped: 2 }) }
    }

    #[test]
    fn each_target_gets_one_chart_with_a_median_point_per_answered_bucket_and_loss_marks() {
        let page = html(
            &overview(vec![
                view(
                    "a",
                    vec![
                        point(300, 1, 0),
                        point(200, 60, 0),
                        point(3, 60, 3),
                        point(1, 60, 0),
                        point(0, 12, 0),
                    ],
                ),
                view("b", vec![point(5, 60, 60), point(4, 60, 60)]),
            ]),
            NOW,
        );
        assert_eq!(page.matches("<svg class=\"chart\"").count(), 2);
        let sections: Vec<&str> = page.split("<section class=\"target\"").skip(1).collect();
        let lines = |section: &str| -> Vec<usize> {
            section
                .split("points=\"")
                .skip(1)
                .map(|rest| rest[..rest.find('"').expect("closed")].split_whitespace().count())
                .collect()
        };
        assert_eq!(
            lines(sections[0]),
            [2, 2, 4],
            "a step a bucket, a line per stretch; none older than 24 h"
        );
        assert_eq!(sections[0].matches("class=\"loss\"").count(), 1);
        assert!(lines(sections[1]).is_empty(), "all lost: no median");
        assert_eq!(sections[1].matches("fill=\"#862e9c\"").count(), 1, "neighbours of one colour, one mark");
        assert!(sections[1].contains("<title>120 of 120 lost</title>"), "{}", sections[1]);
        assert!(!page.contains("<script"), "no JavaScript");
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "no outside asset");
        for (href, _) in LINKS {
            assert!(page.contains(&format!("href=\"{}\"", escape(href))), "{href}");
        }
    }

    #[test]
    fn the_newest_bucket_is_drawn_at_the_right_edge_and_spikes_do_not_flatten_the_rest() {
        let mut spike = point(1, 60, 0);
        spike.max = Some(Duration::from_secs(2));
        let svg = chart(&[spike, point(0, 12, 0)], NOW);
        let column = (RIGHT - LEFT) / BUCKETS as f64;
        assert!(svg.contains(&format!("M{:.1} ", RIGHT - column)), "{svg}");
        assert!(svg.contains(">2 ms</text>"), "the axis tops at 4 × the highest median, rounded: {svg}");
    }

    #[test]
    fn text_columns_line_up_and_json_parses() {
        let overview = overview(vec![view("a", vec![]), view("long-name", vec![])]);
        let text = stats_text(&overview);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 6 + 1);
        let p50 = lines[0].find("p50").expect("a p50 column") + 3;
        for line in &lines[1..7] {
            assert_eq!(&line[p50 - 5..p50], "0.270", "{text}");
        }
        let json: serde_json::Value = serde_json::from_slice(&stats_json(&overview)).expect("JSON");
        assert_eq!(json["targets"][1]["target"], "long-name");
        assert_eq!(json["targets"][0]["windows"]["1h"]["rtt_ms"]["p50"], 0.27);
        assert_eq!(json["targets"][0]["windows"]["24h"]["loss_percent"], 5.0);
        assert_eq!(json["targets"][0]["jitter_rfc3550_ms"], 0.03);
        assert_eq!(json["refill"]["skipped"], 2);
    }

    #[test]
    fn axis_tops_are_round() {
        for (value, top) in [(0.27, 0.5), (1.0, 1.0), (1.2, 2.0), (3.0, 5.0), (7.0, 10.0), (0.011, 0.02)] {
            assert!((nice_ceiling(value) - top).abs() < 1e-9, "{value} → {}", nice_ceiling(value));
        }
    }
}
