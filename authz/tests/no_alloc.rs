//! The approve path does not allocate: a warm partition decides an authorisation, records it,
//! holds the money, counts the usage and encodes its events for the journal without one heap
//! allocation. Counted by `allocation-counter`'s global allocator.

use cardcore_authz::fixture::{eur, Fixture, FIXTURE_START};

const WARM: usize = 4_096;
const MEASURED: usize = 1_000;

#[test]
fn approvals_on_a_warm_partition_do_not_allocate() {
    let mut f = Fixture::new(eur(1_000_000_000), 4 * (WARM + MEASURED));
    // Warm up: grow every table to its working size, then release the holds so the ledger's
    // tables keep their capacity but not their contents.
    let mut warm = Vec::with_capacity(WARM);
    for _ in 0..WARM {
        let r = f.purchase(eur(1_00));
        let a = f.partition.handle(&r, FIXTURE_START);
        assert!(a.response_code.is_approved());
        let _ = f.partition.take_encoded();
        warm.push(r);
    }
    for r in &warm {
        let reversal = f.reversal(r);
        let a = f.partition.handle(&reversal, FIXTURE_START);
        assert!(a.response_code.is_approved());
        let _ = f.partition.take_encoded();
    }
    let requests: Vec<_> = (0..MEASURED).map(|_| f.purchase(eur(2_50))).collect();

    let mut approved = 0;
    let info = allocation_counter::measure(|| {
        for r in &requests {
            let a = f.partition.handle(r, FIXTURE_START);
            approved += usize::from(a.response_code.is_approved());
            approved += usize::from(f.partition.take_encoded().is_some());
        }
    });
    assert_eq!(
        approved,
        2 * MEASURED,
        "every request approved and journaled"
    );
    assert_eq!(
        info.count_total, 0,
        "{} allocations in {MEASURED} approvals",
        info.count_total
    );
}
