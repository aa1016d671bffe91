//! The service's counters and histograms, and their Prometheus text rendering
//! (`GET /metrics`).
//!
//! Everything is a fixed array of atomics allocated at start: recording on the ISO path is a
//! few relaxed increments, never an allocation or a lock. Label sets are bounded by
//! construction (the MTIs cardcore knows, the response codes it can send, plus `other`).
//! Latencies are recorded in nanoseconds and rendered in seconds, with integer arithmetic.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cardcore_core::iso8583::Mti;
use cardcore_ledger::journal::{flush_bucket_bound_us, MetricsSnapshot};

/// Response codes counted under their own label; any other lands in `other`.
pub const RESPONSE_CODES: [&str; 24] = [
    "00", "03", "05", "12", "14", "25", "30", "51", "54", "55", "57", "59", "61", "62", "63", "64",
    "65", "70", "75", "91", "96", "1A", "N7", "R1",
];
const CODE_SLOTS: usize = RESPONSE_CODES.len() + 1;
const MTI_SLOTS: usize = Mti::ALL.len();

/// Upper bounds of the latency buckets, in microseconds: 5 us (a decision alone) to 1 s (a
/// struggling disk).
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000,
];
/// Upper bounds of the events-per-flush buckets: 1 up to the journal's largest batch.
pub const FLUSH_EVENTS_BOUNDS: [u64; 13] =
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 2_048, 4_096];

const _: () = assert!(
    FLUSH_EVENTS_BOUNDS[FLUSH_EVENTS_BOUNDS.len() - 1]
        >= cardcore_ledger::journal::JOURNAL_BATCH_MAX as u64
);

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed it.
    Peer,
    /// Nothing to read and nothing in flight for the idle timeout.
    Idle,
    /// A frame longer than the limit: the stream cannot be trusted to be in step.
    FrameTooLong,
    /// A frame whose MTI could not be read: nothing to answer it with.
    Unreadable,
    /// A frame that did not arrive whole within the frame timeout (a peer trickling bytes).
    SlowFrame,
    /// Reading or writing the socket failed.
    Io,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    pub const ALL: [CloseReason; 7] = [
        CloseReason::Peer,
        CloseReason::Idle,
        CloseReason::FrameTooLong,
        CloseReason::Unreadable,
        CloseReason::SlowFrame,
        CloseReason::Io,
        CloseReason::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Peer => "peer",
            CloseReason::Idle => "idle",
            CloseReason::FrameTooLong => "frame_too_long",
            CloseReason::Unreadable => "unreadable",
            CloseReason::SlowFrame => "slow_frame",
            CloseReason::Io => "io",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// Why a listener closed a connection as soon as it accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection slot of the listener was taken.
    ConnectionBound,
    /// The peer's address already held its bound of connections.
    PeerBound,
}

impl Refusal {
    pub const ALL: [Refusal; 2] = [Refusal::ConnectionBound, Refusal::PeerBound];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConnectionBound => "connection_bound",
            Refusal::PeerBound => "peer_bound",
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::ConnectionBound => 0,
            Refusal::PeerBound => 1,
        }
    }
}

/// A histogram over fixed bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, then the open-ended bucket.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records `value` against bounds given in `value / scale` units.
    fn record_scaled(&self, value: u64, scale: u64) {
        let index = self
            .bounds
            .iter()
            .position(|&b| value <= b.saturating_mul(scale))
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Per-bucket counts (not cumulative) and the sum.
    pub fn read(&self) -> (Vec<u64>, u64) {
        let counts = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        (counts, self.sum.load(Ordering::Relaxed))
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// The service's metrics registry, shared by the ISO path and the HTTP API.
#[derive(Debug)]
pub struct Metrics {
    /// Requests answered, by request MTI and response code.
    messages: Box<[[AtomicU64; CODE_SLOTS]]>,
    /// From a frame decoded to its response ready, not counting the durability wait (ns).
    decision_latency: Histogram,
    /// From a response ready to its events durable, `sync` mode only (ns).
    durability_wait: Histogram,
    /// Events made durable by each flush of the journal.
    flush_events: Histogram,
    connections_open: AtomicU64,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_closed: [AtomicU64; CloseReason::ALL.len()],
    in_flight: AtomicU64,
    /// Frames with no readable MTI: the connection was closed.
    frames_unreadable: AtomicU64,
    /// Messages that parsed but have no response to send (a response MTI sent to us).
    unanswerable: AtomicU64,
    /// Answers the engine could not give (stopped, journal failed): answered `96`.
    engine_errors: AtomicU64,
    /// HTTP responses by status class (1xx..5xx).
    http_responses: [AtomicU64; 5],
    /// HTTP connections closed as soon as they were accepted, by [`Refusal`].
    http_connections_refused: [AtomicU64; Refusal::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            messages: (0..MTI_SLOTS)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            decision_latency: Histogram::new(&LATENCY_BOUNDS_US),
            durability_wait: Histogram::new(&LATENCY_BOUNDS_US),
            flush_events: Histogram::new(&FLUSH_EVENTS_BOUNDS),
            connections_open: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_closed: std::array::from_fn(|_| AtomicU64::new(0)),
            in_flight: AtomicU64::new(0),
            frames_unreadable: AtomicU64::new(0),
            unanswerable: AtomicU64::new(0),
            engine_errors: AtomicU64::new(0),
            http_responses: std::array::from_fn(|_| AtomicU64::new(0)),
            http_connections_refused: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts one answered request.
    pub fn record_message(&self, request: Mti, code: [u8; 2]) {
        let mti = mti_slot(request);
        self.messages[mti][code_slot(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests of this MTI were answered with this code.
    pub fn messages(&self, request: Mti, code: [u8; 2]) -> u64 {
        self.messages[mti_slot(request)][code_slot(code)].load(Ordering::Relaxed)
    }

    pub fn record_decision_latency(&self, took: Duration) {
        self.decision_latency.record_scaled(nanos(took), 1_000);
    }

    pub fn record_durability_wait(&self, took: Duration) {
        self.durability_wait.record_scaled(nanos(took), 1_000);
    }

    pub fn record_flush_events(&self, events: u64) {
        self.flush_events.record_scaled(events, 1);
    }

    pub fn decision_latency(&self) -> &Histogram {
        &self.decision_latency
    }

    pub fn durability_wait(&self) -> &Histogram {
        &self.durability_wait
    }

    pub fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, reason: CloseReason) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
        let index = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.connections_closed[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    pub fn connections_refused(&self) -> u64 {
        self.connections_refused.load(Ordering::Relaxed)
    }

    pub fn connections_closed(&self, reason: CloseReason) -> u64 {
        let index = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.connections_closed[index].load(Ordering::Relaxed)
    }

    pub fn in_flight_add(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn in_flight_done(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn frame_unreadable(&self) {
        self.frames_unreadable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unanswerable(&self) {
        self.unanswerable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn engine_error(&self) {
        self.engine_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one HTTP connection closed at once by the listener's bounds.
    pub fn http_connection_refused(&self, why: Refusal) {
        self.http_connections_refused[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn http_connections_refused(&self, why: Refusal) -> u64 {
        self.http_connections_refused[why.index()].load(Ordering::Relaxed)
    }

    /// Counts one HTTP response (for the management API's middleware).
    pub fn record_http_response(&self, status: u16) {
        if let Some(slot) = (status / 100)
            .checked_sub(1)
            .and_then(|i| self.http_responses.get(usize::from(i)))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders the service's own metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        self.render_messages(out);
        render_histogram(
            out,
            "cardcore_decision_latency_seconds",
            "From an ISO 8583 frame decoded to its response ready, without the durability wait.",
            &self.decision_latency,
            Unit::NanosAsSeconds,
        );
        render_histogram(
            out,
            "cardcore_durability_wait_seconds",
            "From a response ready to its journal events durable (sync mode).",
            &self.durability_wait,
            Unit::NanosAsSeconds,
        );
        render_histogram(
            out,
            "cardcore_journal_flush_events",
            "Events made durable by one journal flush.",
            &self.flush_events,
            Unit::Plain,
        );
        self.render_connections(out);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let simple = [
            (
                "cardcore_iso_in_flight",
                "gauge",
                "ISO 8583 requests being decided or waiting to be written.",
                load(&self.in_flight),
            ),
            (
                "cardcore_iso_frames_unreadable_total",
                "counter",
                "Frames with no readable MTI; their connection was closed.",
                load(&self.frames_unreadable),
            ),
            (
                "cardcore_iso_unanswerable_total",
                "counter",
                "Messages with no response to send, such as responses sent to the issuer.",
                load(&self.unanswerable),
            ),
            (
                "cardcore_iso_engine_errors_total",
                "counter",
                "Requests the engine could not answer; answered 96.",
                load(&self.engine_errors),
            ),
        ];
        for (name, kind, help, value) in simple {
            render_single(out, name, kind, help, value);
        }
        self.render_http(out);
    }

    fn render_messages(&self, out: &mut String) {
        header(
            out,
            "cardcore_iso_messages_total",
            "counter",
            "ISO 8583 requests answered, by request MTI and response code.",
        );
        for (mti, row) in Mti::ALL.iter().zip(self.messages.iter()) {
            for (slot, count) in row.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let code = RESPONSE_CODES.get(slot).copied().unwrap_or("other");
                let _ = writeln!(
                    out,
                    "cardcore_iso_messages_total{{mti=\"{}\",code=\"{code}\"}} {count}",
                    mti.as_str()
                );
            }
        }
    }

    fn render_connections(&self, out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        render_single(
            out,
            "cardcore_iso_connections_open",
            "gauge",
            "ISO 8583 connections open.",
            load(&self.connections_open),
        );
        render_single(
            out,
            "cardcore_iso_connections_accepted_total",
            "counter",
            "ISO 8583 connections accepted and served.",
            load(&self.connections_accepted),
        );
        render_single(
            out,
            "cardcore_iso_connections_refused_total",
            "counter",
            "ISO 8583 connections closed at once: the connection bound was reached.",
            load(&self.connections_refused),
        );
        header(
            out,
            "cardcore_iso_connections_closed_total",
            "counter",
            "ISO 8583 connections closed, by reason.",
        );
        for (reason, count) in CloseReason::ALL.iter().zip(&self.connections_closed) {
            let _ = writeln!(
                out,
                "cardcore_iso_connections_closed_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                load(count)
            );
        }
    }

    fn render_http(&self, out: &mut String) {
        header(
            out,
            "cardcore_http_responses_total",
            "counter",
            "Management API responses, by status class.",
        );
        for (i, count) in self.http_responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "cardcore_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                count.load(Ordering::Relaxed)
            );
        }
        let name = "cardcore_http_connections_refused_total";
        header(
            out,
            name,
            "counter",
            "Management API connections closed at once, by the bound that refused them.",
        );
        for why in Refusal::ALL {
            let count = self.http_connections_refused[why.index()].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {count}", why.as_str());
        }
    }
}

/// What the journal reports, for rendering next to the service's metrics.
#[derive(Clone, Debug, Default)]
pub struct JournalView {
    pub metrics: MetricsSnapshot,
    pub durable_seq: u64,
    pub last_appended_seq: u64,
    pub queue_len: usize,
    pub failed: bool,
}

/// Renders the journal's counters, flush latency histogram and watermarks.
pub fn render_journal(out: &mut String, view: &JournalView) {
    let m = &view.metrics;
    let counters = [
        (
            "cardcore_journal_batches_total",
            "counter",
            "Batches written to the journal.",
            m.batches_written,
        ),
        (
            "cardcore_journal_events_total",
            "counter",
            "Events written to the journal.",
            m.events_written,
        ),
        (
            "cardcore_journal_bytes_total",
            "counter",
            "Encoded bytes written to the journal.",
            m.bytes_written,
        ),
        (
            "cardcore_journal_last_batch_events",
            "gauge",
            "Events in the most recent batch.",
            m.last_batch_events,
        ),
        (
            "cardcore_journal_records_truncated_total",
            "counter",
            "Journal records removed after snapshots.",
            m.records_truncated,
        ),
        (
            "cardcore_journal_snapshots_total",
            "counter",
            "Snapshots written.",
            m.snapshots_written,
        ),
        (
            "cardcore_journal_durable_seq",
            "gauge",
            "Every event up to this sequence number is durable.",
            view.durable_seq,
        ),
        (
            "cardcore_journal_appended_seq",
            "gauge",
            "Sequence number of the last event appended.",
            view.last_appended_seq,
        ),
        (
            "cardcore_journal_queue_len",
            "gauge",
            "Events waiting for the journal writer.",
            view.queue_len as u64,
        ),
        (
            "cardcore_journal_failed",
            "gauge",
            "1 if the journal writer stopped after an error.",
            u64::from(view.failed),
        ),
    ];
    for (name, kind, help, value) in counters {
        render_single(out, name, kind, help, value);
    }
    let max = "cardcore_journal_flush_latency_max_seconds";
    header(out, max, "gauge", "Longest journal flush so far.");
    let _ = writeln!(out, "{max} {}", seconds(m.flush_latency_us_max, 1_000_000));
    let name = "cardcore_journal_flush_latency_seconds";
    header(
        out,
        name,
        "histogram",
        "Duration of journal flushes (fsync).",
    );
    let mut cumulative = 0;
    for (i, count) in m.flush_latency_histogram.iter().enumerate() {
        cumulative += count;
        let le =
            flush_bucket_bound_us(i).map_or_else(|| "+Inf".to_owned(), |us| seconds(us, 1_000_000));
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(
        out,
        "{name}_sum {}",
        seconds(m.flush_latency_us_sum, 1_000_000)
    );
    let _ = writeln!(out, "{name}_count {cumulative}");
}

#[derive(Clone, Copy)]
enum Unit {
    /// Values in nanoseconds, bounds in microseconds, rendered in seconds.
    NanosAsSeconds,
    Plain,
}

fn render_histogram(out: &mut String, name: &str, help: &str, histogram: &Histogram, unit: Unit) {
    header(out, name, "histogram", help);
    let (counts, sum) = histogram.read();
    let mut cumulative = 0;
    for (i, count) in counts.iter().enumerate() {
        cumulative += count;
        let le = match (histogram.bounds.get(i), unit) {
            (None, _) => "+Inf".to_owned(),
            (Some(&us), Unit::NanosAsSeconds) => seconds(us, 1_000_000),
            (Some(&b), Unit::Plain) => b.to_string(),
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let sum = match unit {
        Unit::NanosAsSeconds => seconds(sum, 1_000_000_000),
        Unit::Plain => sum.to_string(),
    };
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {cumulative}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// `value / per_second` as a decimal number of seconds, exactly, without floats.
fn seconds(value: u64, per_second: u64) -> String {
    let whole = value / per_second;
    let fraction = value % per_second;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = per_second.ilog10() as usize;
    let text = format!("{whole}.{fraction:0digits$}");
    text.trim_end_matches('0').to_owned()
}

fn nanos(took: Duration) -> u64 {
    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
}

fn mti_slot(mti: Mti) -> usize {
    Mti::ALL.iter().position(|m| *m == mti).unwrap_or(0)
}

fn code_slot(code: [u8; 2]) -> usize {
    RESPONSE_CODES
        .iter()
        .position(|c| c.as_bytes() == code)
        .unwrap_or(RESPONSE_CODES.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_decimals() {
        let cases = [
            (0, 1_000_000, "0"),
            (5, 1_000_000, "0.000005"),
            (1_000_000, 1_000_000, "1"),
            (1_250_000, 1_000_000, "1.25"),
            (123, 1_000_000_000, "0.000000123"),
        ];
        for (value, per_second, expected) in cases {
            assert_eq!(seconds(value, per_second), expected, "{value}/{per_second}");
        }
    }

    #[test]
    fn messages_are_counted_by_mti_and_code() {
        let m = Metrics::new();
        m.record_message(Mti::AuthorizationRequest, *b"00");
        m.record_message(Mti::AuthorizationRequest, *b"00");
        m.record_message(Mti::AuthorizationRequest, *b"XX");
        m.record_message(Mti::NetworkManagementRequest, *b"00");
        assert_eq!(m.messages(Mti::AuthorizationRequest, *b"00"), 2);
        assert_eq!(m.messages(Mti::AuthorizationRequest, *b"51"), 0);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("cardcore_iso_messages_total{mti=\"0100\",code=\"00\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("cardcore_iso_messages_total{mti=\"0100\",code=\"other\"} 1\n"));
        assert!(out.contains("cardcore_iso_messages_total{mti=\"0800\",code=\"00\"} 1\n"));
        assert!(!out.contains("code=\"51\""), "zero series are left out");
    }

    #[test]
    fn histograms_render_cumulative_buckets_in_seconds() {
        let m = Metrics::new();
        m.record_decision_latency(Duration::from_micros(3));
        m.record_decision_latency(Duration::from_micros(40));
        m.record_decision_latency(Duration::from_secs(5));
        let mut out = String::new();
        m.render(&mut out);
        let name = "cardcore_decision_latency_seconds";
        for line in [
            format!("{name}_bucket{{le=\"0.000005\"}} 1"),
            format!("{name}_bucket{{le=\"0.00005\"}} 2"),
            format!("{name}_bucket{{le=\"1\"}} 2"),
            format!("{name}_bucket{{le=\"+Inf\"}} 3"),
            format!("{name}_sum 5.000043"),
            format!("{name}_count 3"),
        ] {
            assert!(
                out.contains(&format!("{line}\n")),
                "missing {line:?} in\n{out}"
            );
        }
    }

    #[test]
    fn journal_view_renders_flush_histogram() {
        let mut view = JournalView {
            durable_seq: 7,
            ..JournalView::default()
        };
        view.metrics.flush_latency_histogram[0] = 2;
        view.metrics.flush_latency_histogram[2] = 1;
        view.metrics.flush_latency_us_sum = 300;
        let mut out = String::new();
        render_journal(&mut out, &view);
        let name = "cardcore_journal_flush_latency_seconds";
        for line in [
            format!("{name}_bucket{{le=\"0.000064\"}} 2"),
            format!("{name}_bucket{{le=\"0.000128\"}} 2"),
            format!("{name}_bucket{{le=\"0.000256\"}} 3"),
            format!("{name}_bucket{{le=\"+Inf\"}} 3"),
            format!("{name}_sum 0.0003"),
            "cardcore_journal_durable_seq 7".to_owned(),
        ] {
            assert!(
                out.contains(&format!("{line}\n")),
                "missing {line:?} in\n{out}"
            );
        }
    }

    #[test]
    fn connections_and_http_classes_are_counted() {
        let m = Metrics::new();
        m.connection_opened();
        m.connection_opened();
        m.connection_closed(CloseReason::Idle);
        m.connection_refused();
        m.record_http_response(204);
        m.record_http_response(404);
        m.record_http_response(999);
        m.http_connection_refused(Refusal::PeerBound);
        m.http_connection_refused(Refusal::PeerBound);
        assert_eq!(m.http_connections_refused(Refusal::PeerBound), 2);
        assert_eq!(m.connections_open(), 1);
        assert_eq!(m.connections_closed(CloseReason::Idle), 1);
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "cardcore_iso_connections_open 1",
            "cardcore_iso_connections_refused_total 1",
            "cardcore_iso_connections_closed_total{reason=\"idle\"} 1",
            "cardcore_http_responses_total{class=\"2xx\"} 1",
            "cardcore_http_responses_total{class=\"4xx\"} 1",
            "cardcore_http_responses_total{class=\"5xx\"} 0",
            "cardcore_http_connections_refused_total{reason=\"peer_bound\"} 2",
            "cardcore_http_connections_refused_total{reason=\"connection_bound\"} 0",
        ] {
            assert!(
                out.contains(&format!("{line}\n")),
                "missing {line:?} in\n{out}"
            );
        }
    }
}
