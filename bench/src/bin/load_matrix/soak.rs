//! `soak`: one long open-loop run at a fixed rate (70% of the cell's maximum sustainable
//! rate, which `max-rate` finds), reported as a time series. Per interval: the messages
//! answered and their p50, p99 and p99.9 (the generator's per-interval histograms,
//! `report.json` `intervals`), and the server's resident memory and CPU time per message
//! (the driver's samples). The verdict says whether p99 and memory stayed flat.
//!
//! The generator's intervals count from its first message; the samples from the start of
//! `sim load`. The two are lined up at the traffic window's start (the last sample before
//! the first answer), so a server figure is off by at most one sampling period (200 ms).

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::{
    append_line, merge, run_once, summary_of, Cell, Common, Durability, Pacing, RunOutput, RunSpec,
    Sample, Traffic,
};

/// p99 trends up when the median p99 of the last third of the intervals is above the first
/// third's by more than this, in percent (150: 1.5 times).
const P99_TREND_PERCENT_MAX: u64 = 150;
/// Memory is flat when the server's resident set grows by at most this share over the last
/// two thirds of the run. The first third is warm-up: tables, caches and the allocator's
/// arenas reach their working size.
const RSS_GROWTH_PERCENT_MAX: f64 = 10.0;
/// An interval shorter than this share of `--interval-s` (the last, cut by the end of the
/// run) is shown but left out of the verdict: a few answers make no percentile.
const INTERVAL_KEPT_PERCENT_MIN: f64 = 50.0;
/// Intervals a verdict needs at least: one per third.
const INTERVALS_MIN: u64 = 3;

#[derive(Debug, Args)]
pub struct SoakArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum, default_value = "sync")]
    durability: Durability,
    #[arg(long, default_value_t = 1)]
    partitions: usize,
    #[arg(long, default_value_t = 10_000)]
    cards: u64,
    /// Open-loop rate in messages per second (or --max-rate-from).
    #[arg(
        long,
        required_unless_present = "max_rate_from",
        conflicts_with = "max_rate_from"
    )]
    rate: Option<u64>,
    /// A `max-rate` run's `probes.jsonl`: the rate is --rate-percent of the highest rate that
    /// passed there for this cell (durability, partitions, cards).
    #[arg(long, value_name = "FILE")]
    max_rate_from: Option<PathBuf>,
    /// With --max-rate-from: the share of the maximum sustainable rate to run at.
    #[arg(long, default_value_t = 70)]
    rate_percent: u64,
    /// Traffic, in seconds.
    #[arg(long, default_value_t = 600)]
    duration_s: u64,
    /// One row of the time series per this many seconds.
    #[arg(long, default_value_t = 30)]
    interval_s: u64,
    /// Every interval's p99 must stay within this.
    #[arg(long, default_value_t = 2_000)]
    p99_max_us: u64,
    /// Keep the server's data directory (journal and snapshots: gigabytes after ten
    /// minutes); by default it is deleted once the run is measured.
    #[arg(long)]
    keep_data: bool,
}

/// One row of the time series.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    start_s: f64,
    end_s: f64,
    answered: u64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    /// The server's resident set at the interval's end.
    rss_kib: u64,
    /// The server's CPU time over the interval per message it answered in it.
    server_cpu_us_per_msg: Option<f64>,
}

pub fn run(args: &SoakArgs) -> Result<()> {
    let c = &args.common;
    if args.interval_s == 0 || args.duration_s < INTERVALS_MIN * args.interval_s {
        bail!("--duration-s must hold at least {INTERVALS_MIN} intervals of --interval-s");
    }
    fs::create_dir_all(&c.out)?;
    let cell = Cell {
        durability: args.durability,
        partitions: args.partitions,
        cards: args.cards,
    };
    let (rate_per_s, rate_note) = rate_of(args, cell)?;
    let pacing = Pacing::Open { rate_per_s };
    let mut spec = RunSpec::new(cell, pacing, Traffic::Seconds(args.duration_s));
    spec.extra_load = vec!["--report-interval-s".into(), args.interval_s.to_string()];
    let run = run_once(c, &spec)?;
    if !args.keep_data {
        let data = run.dir.join("data");
        fs::remove_dir_all(&data).with_context(|| format!("remove {}", data.display()))?;
    }
    let rows = series(&run)?;
    let verdict = verdict(&rows, args, &run.report, run.status.success());
    let mut summary = summary_of(&run, &spec);
    merge(&mut summary, json!({ "soak": verdict.clone() }));
    append_line(&c.out.join("results.jsonl"), &summary)?;
    let lines: Vec<String> = rows.iter().map(|r| row_json(r).to_string()).collect();
    fs::write(c.out.join("soak.jsonl"), lines.join("\n") + "\n")?;
    let plot = run.dir.join("report").join("latency.svg");
    fs::copy(&plot, c.out.join("soak.svg"))?;
    let text = markdown(args, &run, &summary, &rows, &verdict, &rate_note);
    fs::write(c.out.join("soak.md"), &text)?;
    print!("{text}");
    Ok(())
}

/// The rate to run at, and how it was chosen.
fn rate_of(args: &SoakArgs, cell: Cell) -> Result<(u64, String)> {
    if let Some(rate) = args.rate {
        return Ok((rate, format!("{rate}/s as given")));
    }
    let path = args
        .max_rate_from
        .as_ref()
        .context("--rate or --max-rate-from")?;
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let max = highest_passing_rate(&text, cell)
        .with_context(|| format!("no passing probe of this cell in {}", path.display()))?;
    let rate = max * args.rate_percent / 100;
    let note = format!(
        "{rate}/s: {}% of {max}/s, the highest rate that passed in `{}`",
        args.rate_percent,
        path.display()
    );
    Ok((rate, note))
}

/// The highest `config_rate` of the passing probes of `cell` in a `probes.jsonl`.
fn highest_passing_rate(probes: &str, cell: Cell) -> Option<u64> {
    probes
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|p| p["passed"].as_bool() == Some(true))
        .filter(|p| p["durability"].as_str() == Some(cell.durability.as_str()))
        .filter(|p| p["partitions"].as_u64() == u64::try_from(cell.partitions).ok())
        .filter(|p| p["cards"].as_u64() == Some(cell.cards))
        .filter_map(|p| p["config_rate"].as_u64())
        .max()
}

/// The generator's intervals with the server's memory and CPU over each.
fn series(run: &RunOutput) -> Result<Vec<Row>> {
    let Some(intervals) = run.report["intervals"].as_array() else {
        bail!("report.json has no intervals: is `cardcore` older than the soak command?");
    };
    let t0 = traffic_start(&run.samples).unwrap_or(0.0);
    let rows = intervals
        .iter()
        .map(|i| {
            let (start_s, end_s) = (f(&i["start_s"]), f(&i["end_s"]));
            let a = sample_at(&run.samples, t0 + start_s);
            let b = sample_at(&run.samples, t0 + end_s);
            let messages = b.map_or(0.0, |b| b.messages) - a.map_or(0.0, |a| a.messages);
            let cpu_s = b.map_or(0.0, |b| b.server_cpu_s) - a.map_or(0.0, |a| a.server_cpu_s);
            Row {
                start_s,
                end_s,
                answered: i["answered"].as_u64().unwrap_or(0),
                p50_us: i["latency_us"]["p50"].as_u64().unwrap_or(0),
                p99_us: i["latency_us"]["p99"].as_u64().unwrap_or(0),
                p999_us: i["latency_us"]["p999"].as_u64().unwrap_or(0),
                rss_kib: b.map_or(0, |b| b.server_rss_kib),
                server_cpu_us_per_msg: (messages > 0.0).then(|| cpu_s * 1e6 / messages),
            }
        })
        .collect();
    Ok(rows)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// When the generator started sending, on the samples' clock: the last sample before the
/// first answer.
fn traffic_start(samples: &[Sample]) -> Option<f64> {
    let first = samples.iter().position(|s| s.messages > 0.0)?;
    Some(samples[first.saturating_sub(1)].t_s)
}

/// The last sample taken at or before `t_s` (the first one if none was).
fn sample_at(samples: &[Sample], t_s: f64) -> Option<&Sample> {
    let after = samples.partition_point(|s| s.t_s <= t_s);
    samples.get(after.saturating_sub(1))
}

/// The verdict over the rows long enough to judge.
fn verdict(rows: &[Row], args: &SoakArgs, report: &Value, load_ok: bool) -> Value {
    let min_s = args.interval_s as f64 * INTERVAL_KEPT_PERCENT_MIN / 100.0;
    let kept: Vec<&Row> = rows
        .iter()
        .filter(|r| r.end_s - r.start_s >= min_s)
        .collect();
    let third = kept.len() / 3;
    if third == 0 {
        return json!({ "judged": false, "why": "fewer than three whole intervals" });
    }
    let worst = kept.iter().max_by_key(|r| r.p99_us).copied();
    let worst_p99_us = worst.map_or(0, |r| r.p99_us);
    let empty = kept.iter().filter(|r| r.answered == 0).count();
    let p99s = |rows: &[&Row]| median(rows.iter().map(|r| r.p99_us).collect());
    let (first_p99_us, last_p99_us) = (p99s(&kept[..third]), p99s(&kept[kept.len() - third..]));
    let p99_within = worst_p99_us <= args.p99_max_us && empty == 0;
    let p99_no_trend = last_p99_us * 100 <= first_p99_us * P99_TREND_PERCENT_MAX;
    let (from, to) = (kept[third - 1], kept[kept.len() - 1]);
    let later: u64 = kept[third..].iter().map(|r| r.answered).sum();
    let growth_kib = to.rss_kib as f64 - from.rss_kib as f64;
    let growth_percent = growth_kib * 100.0 / (from.rss_kib.max(1) as f64);
    let run_ok = load_ok && report["unanswered"].as_u64() == Some(0);
    json!({
        "judged": true, "intervals_judged": kept.len(), "empty_intervals": empty,
        "p99_max_us": args.p99_max_us, "worst_p99_us": worst_p99_us,
        "worst_p99_at_s": worst.map(|r| r.start_s),
        "first_third_median_p99_us": first_p99_us, "last_third_median_p99_us": last_p99_us,
        "p99_trend_percent_max": P99_TREND_PERCENT_MAX,
        "p99_flat": p99_within && p99_no_trend,
        "rss_after_first_third_kib": from.rss_kib, "rss_end_kib": to.rss_kib,
        "rss_growth_percent": growth_percent, "rss_growth_percent_max": RSS_GROWTH_PERCENT_MAX,
        "rss_growth_bytes_per_msg": growth_kib * 1024.0 / (later.max(1) as f64),
        "memory_flat": growth_percent <= RSS_GROWTH_PERCENT_MAX,
        "run_ok": run_ok,
    })
}

/// The median of `values` (the lower of the middle two); 0 for none.
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    match values.len() {
        0 => 0,
        n => values[(n - 1) / 2],
    }
}

fn row_json(r: &Row) -> Value {
    json!({
        "start_s": r.start_s, "end_s": r.end_s, "answered": r.answered,
        "p50_us": r.p50_us, "p99_us": r.p99_us, "p999_us": r.p999_us,
        "server_rss_kib": r.rss_kib, "server_cpu_us_per_msg": r.server_cpu_us_per_msg,
    })
}

fn markdown(
    args: &SoakArgs,
    run: &RunOutput,
    summary: &Value,
    rows: &[Row],
    v: &Value,
    rate_note: &str,
) -> String {
    let mut out = format!(
        "# Soak: {}, {} partition(s), {} cards, open loop for {} s\n\n\
         `{}`\n\nRate: {rate_note}.\n\n\
         Load average (1 min) before {:.2}, after {:.2}. Files: `runs/{}/` (server and \
         generator command lines and output, `report/report.json`), `soak.jsonl`, \
         `soak.svg` (the generator's plot; its last panel is p50, p99 and p99.9 per interval).\n\n\
         | interval | answered | msgs/s | p50 µs | p99 µs | p99.9 µs | server RSS MiB | \
         server CPU µs/msg |\n|---|---|---|---|---|---|---|---|\n",
        args.durability.as_str(),
        args.partitions,
        args.cards,
        args.duration_s,
        std::env::args().collect::<Vec<_>>().join(" "),
        run.loadavg_before,
        summary["loadavg_after"].as_f64().unwrap_or(f64::NAN),
        run.name,
    );
    let min_s = args.interval_s as f64 * INTERVAL_KEPT_PERCENT_MIN / 100.0;
    for r in rows {
        let span = r.end_s - r.start_s;
        let cpu = r
            .server_cpu_us_per_msg
            .map_or("-".to_owned(), |us| format!("{us:.1}"));
        let rate = if span >= min_s {
            format!("{:.0}", r.answered as f64 / span)
        } else {
            "- (short, not judged)".to_owned()
        };
        out.push_str(&format!(
            "| {:.1}–{:.1} s | {} | {rate} | {} | {} | {} | {:.1} | {cpu} |\n",
            r.start_s,
            r.end_s,
            r.answered,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.rss_kib as f64 / 1024.0,
        ));
    }
    out.push('\n');
    out.push_str(&verdict_text(v, summary));
    out
}

fn verdict_text(v: &Value, summary: &Value) -> String {
    if v["judged"].as_bool() != Some(true) {
        return format!("Verdict: not judged ({}).\n", v["why"]);
    }
    let yes = |key: &str| {
        if v[key].as_bool() == Some(true) {
            "yes"
        } else {
            "NO"
        }
    };
    format!(
        "- p99 flat: **{}**. Bound per interval {} µs: worst p99 {} µs (the interval from \
         {} s); intervals without answers: {}. Median p99 of the last third {} µs against \
         the first third's {} µs (bound: {}% of it).\n\
         - memory flat: **{}**. Server RSS {:.1} MiB after the first third, {:.1} MiB at the \
         end: {:+.1}% (bound {}%), {:.0} bytes per message answered over the last two \
         thirds.\n\
         - run: **{}**. {} messages answered, {} unanswered, reconciliation {}.\n",
        yes("p99_flat"),
        v["p99_max_us"],
        v["worst_p99_us"],
        v["worst_p99_at_s"],
        v["empty_intervals"],
        v["last_third_median_p99_us"],
        v["first_third_median_p99_us"],
        v["p99_trend_percent_max"],
        yes("memory_flat"),
        v["rss_after_first_third_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        v["rss_end_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        v["rss_growth_percent"].as_f64().unwrap_or(f64::NAN),
        v["rss_growth_percent_max"],
        v["rss_growth_bytes_per_msg"].as_f64().unwrap_or(f64::NAN),
        yes("run_ok"),
        summary["answered"],
        summary["unanswered"],
        if summary["reconciliation_ok"].as_bool() == Some(true) {
            "OK"
        } else {
            "FAILED"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start_s: f64, answered: u64, p99_us: u64, rss_kib: u64) -> Row {
        Row {
            start_s,
            end_s: start_s + 30.0,
            answered,
            p50_us: p99_us / 4,
            p99_us,
            p999_us: p99_us * 2,
            rss_kib,
            server_cpu_us_per_msg: Some(40.0),
        }
    }

    fn args() -> SoakArgs {
        SoakArgs {
            common: Common {
                cardcore: "cardcore".into(),
                out: "out".into(),
                seed: 1,
                connections: 4,
                serve_args: Vec::new(),
            },
            durability: Durability::Sync,
            partitions: 1,
            cards: 10_000,
            rate: Some(1_000),
            max_rate_from: None,
            rate_percent: 70,
            duration_s: 180,
            interval_s: 30,
            p99_max_us: 2_000,
            keep_data: false,
        }
    }

    #[test]
    fn the_rate_comes_from_the_highest_passing_probe_of_the_same_cell() {
        let probe = |durability: &str, partitions: u64, rate: u64, passed: bool| {
            json!({"durability": durability, "partitions": partitions, "cards": 10_000,
                   "config_rate": rate, "passed": passed})
            .to_string()
        };
        let probes = [
            probe("sync", 1, 4_000, false),
            probe("sync", 1, 2_000, true),
            probe("sync", 1, 3_000, true),
            probe("sync", 1, 3_500, false),
            probe("async", 1, 12_000, true),
            probe("sync", 2, 5_000, true),
            "not json".to_owned(),
        ]
        .join("\n");
        let cell = |durability, partitions| Cell {
            durability,
            partitions,
            cards: 10_000,
        };
        assert_eq!(
            highest_passing_rate(&probes, cell(Durability::Sync, 1)),
            Some(3_000)
        );
        assert_eq!(
            highest_passing_rate(&probes, cell(Durability::Async, 1)),
            Some(12_000)
        );
        assert_eq!(
            highest_passing_rate(&probes, cell(Durability::Async, 2)),
            None
        );
        let (rate, note) = rate_of(&args(), cell(Durability::Sync, 1)).unwrap();
        assert_eq!((rate, note.as_str()), (1_000, "1000/s as given"));
    }

    fn judge(rows: &[Row]) -> Value {
        verdict(rows, &args(), &json!({"unanswered": 0}), true)
    }

    #[test]
    fn a_steady_run_is_flat_and_a_short_last_interval_is_not_judged() {
        let mut rows: Vec<Row> = (0..6)
            .map(|i| row(30.0 * i as f64, 30_000, 900 + i * 10, 100_000 + i * 1_000))
            .collect();
        let mut tail = row(180.0, 3, 50_000, 200_000);
        tail.end_s = 180.2;
        rows.push(tail);
        let v = judge(&rows);
        assert_eq!(v["intervals_judged"], 6);
        assert_eq!(v["p99_flat"], true);
        assert_eq!(v["worst_p99_us"], 950);
        assert_eq!(v["memory_flat"], true);
        // From the end of the second interval (101,000 KiB) to the sixth's (105,000 KiB).
        assert_eq!(v["rss_after_first_third_kib"], 101_000);
        let percent = v["rss_growth_percent"].as_f64().unwrap();
        assert!((percent - 3.96).abs() < 0.01, "{percent}");
        let per_msg = v["rss_growth_bytes_per_msg"].as_f64().unwrap();
        assert!((per_msg - 4_000.0 * 1024.0 / 120_000.0).abs() < 1e-6);
        assert_eq!(v["run_ok"], true);
    }

    #[test]
    fn a_p99_over_the_bound_a_rising_p99_a_stall_and_growing_memory_each_fail() {
        let steady = |i: u64| row(30.0 * i as f64, 30_000, 1_000, 100_000);
        let mut over: Vec<Row> = (0..6).map(steady).collect();
        over[3].p99_us = 2_001;
        assert_eq!(judge(&over)["p99_flat"], false);
        let mut rising: Vec<Row> = (0..6).map(steady).collect();
        (rising[4].p99_us, rising[5].p99_us) = (1_600, 1_700);
        let v = judge(&rising);
        assert_eq!(v["p99_flat"], false);
        assert_eq!(v["last_third_median_p99_us"], 1_600);
        let mut stalled: Vec<Row> = (0..6).map(steady).collect();
        stalled[2] = row(60.0, 0, 0, 100_000);
        let v = judge(&stalled);
        assert_eq!(
            (v["empty_intervals"].as_u64(), v["p99_flat"].as_bool()),
            (Some(1), Some(false))
        );
        let mut growing: Vec<Row> = (0..6).map(steady).collect();
        growing[5].rss_kib = 111_000;
        assert_eq!(judge(&growing)["memory_flat"], false);
        assert_eq!(judge(&growing[..2])["judged"], false);
    }

    #[test]
    fn server_figures_come_from_the_samples_around_each_interval() {
        let sample = |t_s: f64, messages: f64, server_cpu_s: f64, rss: u64| Sample {
            t_s,
            messages,
            server_cpu_s,
            server_rss_kib: rss,
            ..Sample::default()
        };
        let samples = [
            sample(4.8, 0.0, 1.0, 50_000),
            sample(5.0, 0.0, 1.5, 50_000),
            sample(5.2, 100.0, 1.6, 51_000),
            sample(35.0, 30_000.0, 2.5, 60_000),
            sample(65.0, 60_000.0, 3.1, 61_000),
        ];
        assert_eq!(traffic_start(&samples), Some(5.0));
        assert_eq!(sample_at(&samples, 35.0).map(|s| s.t_s), Some(35.0));
        assert_eq!(sample_at(&samples, 34.9).map(|s| s.t_s), Some(5.2));
        assert_eq!(sample_at(&samples, 0.0).map(|s| s.t_s), Some(4.8));
        let run = RunOutput {
            name: "x".into(),
            dir: "x".into(),
            status: ok_status(),
            samples: samples.to_vec(),
            wall_s: 70.0,
            report: json!({"intervals": [
                {"start_s": 0.0, "end_s": 30.0, "answered": 29_990,
                 "latency_us": {"p50": 100, "p99": 900, "p999": 1_500}},
                {"start_s": 30.0, "end_s": 60.0, "answered": 30_010,
                 "latency_us": {"p50": 110, "p99": 950, "p999": 1_600}},
            ]}),
            metrics: String::new(),
            rss_empty_kib: 0,
            server_start_s: 0.0,
            serve_args: Vec::new(),
            loadavg_before: 0.0,
        };
        let rows = series(&run).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].answered, rows[0].p99_us, rows[0].rss_kib),
            (29_990, 900, 60_000)
        );
        // 1.0 s of CPU for 30,000 messages.
        let cpu = rows[0].server_cpu_us_per_msg.unwrap();
        assert!((cpu - 1e6 / 30_000.0).abs() < 1e-6, "{cpu}");
        assert_eq!(rows[1].rss_kib, 61_000);
        assert_eq!(median(vec![5, 1, 3, 2]), 2);
        assert_eq!(median(Vec::new()), 0);
    }

    fn ok_status() -> std::process::ExitStatus {
        std::process::Command::new("true")
            .status()
            .expect("run true")
    }
}
