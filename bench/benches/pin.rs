//! PIN verification on the decision path: decrypt field 52 under the zone PIN key, check the
//! format-0 structure, and compare the keyed PIN verification value in constant time.
//!
//! Budget: 5 µs per verification, a small share of an authorisation's latency budget. The
//! path does not allocate; the benches measure it with the keys loaded once, as the engine
//! holds them.

use std::hint::black_box;

use cardcore_core::pin::{
    constant_time_eq, decrypt_pin_block, encrypt_pin_block, Pin, PinVerificationKey,
    PinVerificationValue, ZonePinKey,
};
use cardcore_core::Pan;
use criterion::{criterion_group, criterion_main, Criterion};

fn pin_verification(c: &mut Criterion) {
    let zpk = ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("test key");
    let pvk = PinVerificationKey::new([0x42; 32]);
    let pan = Pan::parse("4000001234567899").expect("test PAN");
    let pin = Pin::parse("2580").expect("test PIN");
    let pvv = PinVerificationValue::compute(&pvk, &pan, &pin);
    let block = encrypt_pin_block(&zpk, &pan, &pin);

    let mut group = c.benchmark_group("pin");
    group.bench_function("verify_block", |b| {
        b.iter(|| pvv.verify_block(black_box(&zpk), &pvk, black_box(&pan), black_box(&block)))
    });
    group.bench_function("decrypt_block", |b| {
        b.iter(|| decrypt_pin_block(black_box(&zpk), black_box(&pan), black_box(&block)))
    });
    group.bench_function("pvv_verify", |b| {
        b.iter(|| pvv.verify(black_box(&pvk), black_box(&pan), black_box(&pin)))
    });
    let stored = pvv.to_bytes();
    let candidate = pvv.to_bytes();
    group.bench_function("constant_time_eq_32", |b| {
        b.iter(|| constant_time_eq(black_box(&stored), black_box(&candidate)))
    });
    group.finish();
}

criterion_group!(benches, pin_verification);
criterion_main!(benches);
