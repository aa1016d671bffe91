//! What a crash-loop run did and checked, printed at its end.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Decline reasons listed in the summary.
const TOP_DECLINES_SHOWN: usize = 8;

/// See the module documentation. Sums over the whole run unless said otherwise.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// SIGKILLs during traffic.
    pub kills_under_load: u64,
    /// Of those, the kills that came within moments of a burst of requests.
    pub kills_after_burst: u64,
    /// SIGKILLs with nothing in flight, the state hash compared across the restart.
    pub kills_idle: u64,
    /// SIGKILLs of a restarted server within its first moments (recovering, or just
    /// listening), before the restart that is kept.
    pub kills_at_start: u64,
    pub messages_sent: u64,
    pub answers_read: u64,
    /// Answers read after the kill (sent before the server died, read after).
    pub answers_after_kill: u64,
    pub approvals_read: u64,
    /// New transactions declined, by DE 63 reason (DE 39 when there is none).
    pub declines_by_reason: BTreeMap<String, u64>,
    pub clearings_approved: u64,
    pub clock_jumps: u64,
    /// Requests whose answer had not been read at a kill: outcome unknown to the client.
    pub in_flight_at_kill: u64,
    /// Of those, resent as duplicates after the restart and answered.
    pub in_flight_resolved: u64,
    pub in_flight_approved: u64,
    /// Journal records the resends added: messages the kill cut off before they were
    /// recorded (the others were answered from the record, or record nothing).
    pub resend_records_added: u64,
    /// Answered requests sent again after a restart; every one got its first answer again.
    pub duplicate_probes: u64,
    pub duplicate_probe_clearings: u64,
    /// Approved transactions compared with the server (state and amount), over all checks.
    pub approvals_checked: u64,
    /// Declined transactions compared (state).
    pub declines_checked: u64,
    pub balances_reconciled: u64,
    /// Reconciliations, every one exact to the minor unit.
    pub reconciliations: u64,
    pub invariant_checks: u64,
    pub snapshots_written: u64,
    /// Spawn → `listening` of each restart (recovery included).
    pub start_times: Vec<Duration>,
    /// Wall time by phase.
    pub setup_time: Duration,
    pub traffic_time: Duration,
    pub restart_time: Duration,
    pub settle_time: Duration,
    pub check_time: Duration,
    /// Distinct transactions the client knows (at the end, or when the checks failed).
    pub transactions_final: u64,
    pub approved_final: u64,
}

impl Counts {
    pub fn kills(&self) -> u64 {
        self.kills_under_load + self.kills_idle + self.kills_at_start
    }

    /// The most frequent decline reasons, most frequent first.
    fn top_declines(&self) -> String {
        let mut by_count: Vec<(&String, &u64)> = self.declines_by_reason.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = by_count
            .iter()
            .take(TOP_DECLINES_SHOWN)
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        shown.join(", ")
    }

    /// (min, median, max) of the start times.
    pub fn start_time_spread(&self) -> Option<(Duration, Duration, Duration)> {
        let mut times = self.start_times.clone();
        times.sort_unstable();
        let (first, last) = (*times.first()?, *times.last()?);
        Some((first, times[times.len() / 2], last))
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kills: {} (under load {} of which {} right after a burst, idle {}, while starting {}); \
             restarts: {}",
            self.kills(),
            self.kills_under_load,
            self.kills_after_burst,
            self.kills_idle,
            self.kills_at_start,
            self.start_times.len()
        )?;
        writeln!(
            f,
            "traffic: {} sent, {} answers read ({} after a kill), {} approvals, {} clearings \
             approved, {} clock jumps, {} snapshots",
            self.messages_sent,
            self.answers_read,
            self.answers_after_kill,
            self.approvals_read,
            self.clearings_approved,
            self.clock_jumps,
            self.snapshots_written
        )?;
        writeln!(
            f,
            "new transactions declined, by reason: {}",
            self.top_declines()
        )?;
        writeln!(
            f,
            "in flight at a kill: {}, resolved by resending after restart: {} ({} approved; \
             {} journal records added by the resends)",
            self.in_flight_at_kill,
            self.in_flight_resolved,
            self.in_flight_approved,
            self.resend_records_added
        )?;
        writeln!(
            f,
            "answered requests sent again after a restart: {} ({} clearings)",
            self.duplicate_probes, self.duplicate_probe_clearings
        )?;
        writeln!(
            f,
            "checks: {} approved and {} declined transactions compared, {} balances in {} \
             reconciliations, {} invariant checks",
            self.approvals_checked,
            self.declines_checked,
            self.balances_reconciled,
            self.reconciliations,
            self.invariant_checks
        )?;
        writeln!(
            f,
            "{} transactions known to the client, {} of them approved",
            self.transactions_final, self.approved_final
        )?;
        writeln!(
            f,
            "time: setup {:.1} s, traffic {:.1} s, restarts {:.1} s, resends and duplicates \
             {:.1} s, checks {:.1} s",
            self.setup_time.as_secs_f64(),
            self.traffic_time.as_secs_f64(),
            self.restart_time.as_secs_f64(),
            self.settle_time.as_secs_f64(),
            self.check_time.as_secs_f64()
        )?;
        if let Some((min, median, max)) = self.start_time_spread() {
            writeln!(
                f,
                "restart to listening: min {:.0} ms, median {:.0} ms, max {:.0} ms",
                ms(min),
                ms(median),
                ms(max)
            )?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
