//! Counters the writer keeps for the server to export. Plain atomics: the writer is the only
//! one that updates them, readers take a [`MetricsSnapshot`] whenever they like.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of the flush latency histogram. Bucket `i` counts flushes that took at most
/// `FLUSH_HISTOGRAM_FIRST_BOUND_US << i` microseconds; the last bucket counts the rest.
pub const FLUSH_HISTOGRAM_BUCKETS: usize = 16;
/// The upper bound of the first flush latency bucket. 64 us up to 1 s in powers of two
/// covers everything from a RAM disk to a struggling network volume.
pub const FLUSH_HISTOGRAM_FIRST_BOUND_US: u64 = 64;

/// The upper bound, in microseconds, of flush latency bucket `index`; `None` for the last,
/// open-ended bucket.
pub fn flush_bucket_bound_us(index: usize) -> Option<u64> {
    (index + 1 < FLUSH_HISTOGRAM_BUCKETS).then(|| FLUSH_HISTOGRAM_FIRST_BOUND_US << index)
}

/// A point-in-time copy of the journal's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Batches applied to the store.
    pub batches_written: u64,
    /// Events applied to the store.
    pub events_written: u64,
    /// Encoded record bytes applied to the store.
    pub bytes_written: u64,
    /// Events in the most recent batch.
    pub last_batch_events: u64,
    /// Successful flushes (fsyncs).
    pub flushes: u64,
    /// Sum and maximum of flush durations, for the mean and the worst case.
    pub flush_latency_us_sum: u64,
    pub flush_latency_us_max: u64,
    /// Flush durations by bucket, see [`flush_bucket_bound_us`].
    pub flush_latency_histogram: [u64; FLUSH_HISTOGRAM_BUCKETS],
    /// Records removed by prefix truncation after snapshots.
    pub records_truncated: u64,
    /// Snapshots written.
    pub snapshots_written: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    batches_written: AtomicU64,
    events_written: AtomicU64,
    bytes_written: AtomicU64,
    last_batch_events: AtomicU64,
    flushes: AtomicU64,
    flush_latency_us_sum: AtomicU64,
    flush_latency_us_max: AtomicU64,
    flush_latency_histogram: [AtomicU64; FLUSH_HISTOGRAM_BUCKETS],
    records_truncated: AtomicU64,
    snapshots_written: AtomicU64,
}

impl Metrics {
    pub(crate) fn record_batch(&self, events: u64, bytes: u64) {
        self.batches_written.fetch_add(1, Ordering::Relaxed);
        self.events_written.fetch_add(events, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        self.last_batch_events.store(events, Ordering::Relaxed);
    }

    pub(crate) fn record_flush(&self, took: Duration) {
        let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flush_latency_us_sum
            .fetch_add(took_us, Ordering::Relaxed);
        self.flush_latency_us_max
            .fetch_max(took_us, Ordering::Relaxed);
        self.flush_latency_histogram[flush_bucket(took_us)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_truncation(&self, records: u64) {
        self.records_truncated.fetch_add(records, Ordering::Relaxed);
    }

    pub(crate) fn record_snapshot(&self) {
        self.snapshots_written.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            batches_written: load(&self.batches_written),
            events_written: load(&self.events_written),
            bytes_written: load(&self.bytes_written),
            last_batch_events: load(&self.last_batch_events),
            flushes: load(&self.flushes),
            flush_latency_us_sum: load(&self.flush_latency_us_sum),
            flush_latency_us_max: load(&self.flush_latency_us_max),
            flush_latency_histogram: std::array::from_fn(|i| {
                load(&self.flush_latency_histogram[i])
            }),
            records_truncated: load(&self.records_truncated),
            snapshots_written: load(&self.snapshots_written),
        }
    }
}

fn flush_bucket(took_us: u64) -> usize {
    (0..FLUSH_HISTOGRAM_BUCKETS - 1)
        .find(|&i| took_us <= FLUSH_HISTOGRAM_FIRST_BOUND_US << i)
        .unwrap_or(FLUSH_HISTOGRAM_BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_land_in_their_bucket() {
        let cases = [
            (0, 0),
            (64, 0),
            (65, 1),
            (128, 1),
            (129, 2),
            (1_000, 4),
            (u64::MAX, 15),
        ];
        for (took_us, bucket) in cases {
            assert_eq!(flush_bucket(took_us), bucket, "{took_us} us");
        }
        assert_eq!(flush_bucket_bound_us(0), Some(64));
        assert_eq!(flush_bucket_bound_us(14), Some(64 << 14));
        assert_eq!(flush_bucket_bound_us(15), None);
    }

    #[test]
    fn snapshot_reflects_what_was_recorded() {
        let metrics = Metrics::default();
        metrics.record_batch(10, 200);
        metrics.record_batch(3, 60);
        metrics.record_flush(Duration::from_micros(100));
        metrics.record_flush(Duration::from_micros(300));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.batches_written, 2);
        assert_eq!(snapshot.events_written, 13);
        assert_eq!(snapshot.bytes_written, 260);
        assert_eq!(snapshot.last_batch_events, 3);
        assert_eq!(snapshot.flushes, 2);
        assert_eq!(snapshot.flush_latency_us_sum, 400);
        assert_eq!(snapshot.flush_latency_us_max, 300);
        assert_eq!(snapshot.flush_latency_histogram[1], 1);
        assert_eq!(snapshot.flush_latency_histogram[3], 1);
    }
}
