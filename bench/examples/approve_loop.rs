//! Runs direct approvals on a warm partition in a loop: a target for profilers
//! (`valgrind --tool=callgrind`, `perf record`). Takes the decision count as its argument
//! (up to 130 000 fit the partition's reserved room).

use std::hint::black_box;

use cardcore_authz::fixture::{eur, Fixture, FIXTURE_START};

/// Transactions the partition reserves room for, whatever the count: the same start-up work
/// for every count, so that subtracting a 1-decision run leaves the decisions alone.
const CAPACITY: usize = 1 << 17;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut f = Fixture::new(eur(i64::MAX / 4), CAPACITY.max(n + 1024));
    let requests: Vec<_> = (0..n).map(|_| f.purchase(eur(1_00))).collect();
    for r in &requests {
        black_box(f.partition.handle(r, FIXTURE_START));
        black_box(f.partition.take_encoded());
    }
}
