//! The ISO 8583 codec on the hot path: parsing a typical authorisation request (0100 with 20
//! fields, 239 bytes) and packing a message of the same shape, beside the `iso8583_rs` crate
//! doing the same work on the same message.
//!
//! iso8583_rs reads its spec from `SPEC_FILE` (set by `.cargo/config.toml`) and only knows
//! binary bitmaps, so it is handed the same message with its bitmap as 8 raw bytes; the
//! conversion happens once, outside the measured loops.
//!
//! The machine is shared, and wall-clock figures grow with its load. After the criterion
//! groups, `cargo bench` therefore also prints the CPU time per operation of cardcore's three
//! paths, from the thread's own on-CPU time (`/proc/thread-self/schedstat`) over a few
//! million iterations, with the load average beside it.

use std::hint::black_box;

use cardcore_core::iso8583::{decode_hex, parse, MessageBuilder, Mti};
use criterion::{criterion_group, Criterion};
use iso8583_rs::iso8583::iso_spec;

/// A typical e-commerce-free chip authorisation: PAN, processing code, amount, times, STAN,
/// expiry, MCC, entry mode, acquirer, RRN, terminal, merchant, CVV2, currency, PIN block and
/// ICC data.
const FIELDS: [(u8, &str); 20] = [
    (2, "4000001234567899"),
    (3, "000000"),
    (4, "000000004000"),
    (7, "1121101530"),
    (11, "000042"),
    (12, "111530"),
    (14, "2907"),
    (18, "5411"),
    (22, "051"),
    (25, "00"),
    (32, "430010"),
    (35, "4000001234567899=2907"),
    (37, "632510000042"),
    (41, "TERMID01"),
    (42, "CARD ACCEPTOR  "),
    (43, "ACME GROCERIES           BERLIN       DE"),
    (48, "9203789"),
    (49, "978"),
    (52, "041234FFEDCBA987"),
    (55, "9F2602ABCD9F3602001C"),
];

fn build(builder: &mut MessageBuilder) {
    builder.reset(Mti::AuthorizationRequest);
    for (field, value) in FIELDS {
        builder.set(field, value.as_bytes()).expect("valid field");
    }
}

/// The same message with its hex bitmap as 8 raw bytes, for iso8583_rs.
fn with_binary_bitmap(wire: &[u8]) -> Vec<u8> {
    let mut bitmap = [0u8; 8];
    decode_hex(&wire[4..20], &mut bitmap).expect("hex bitmap");
    assert_eq!(bitmap[0] & 0x80, 0, "no secondary bitmap in this message");
    [&wire[..4], &bitmap[..], &wire[20..]].concat()
}

/// Budget: parse ≤ 300 ns for this message, and at least 5× faster than iso8583_rs.
fn parse_0100(c: &mut Criterion) {
    let mut builder = MessageBuilder::new(Mti::AuthorizationRequest);
    build(&mut builder);
    let wire = builder.to_vec();
    let mut oracle_wire = with_binary_bitmap(&wire);
    let spec = iso_spec::spec("");
    assert_eq!(
        spec.parse(&mut oracle_wire).map(|m| m.fd_map.len()).ok(),
        Some(22)
    );

    let mut group = c.benchmark_group("codec/parse_0100");
    group.bench_function("cardcore", |b| {
        b.iter(|| parse(black_box(&wire)).map(|m| m.amount_minor()))
    });
    group.bench_function("cardcore_with_typed_reads", |b| {
        b.iter(|| {
            let m = parse(black_box(&wire)).expect("valid");
            (
                m.amount_minor(),
                m.currency_numeric(),
                m.stan(),
                m.mcc(),
                m.pin_block(),
            )
        })
    });
    group.bench_function("iso8583_rs", |b| {
        b.iter(|| {
            spec.parse(black_box(&mut oracle_wire))
                .map(|m| m.fd_map.len())
        })
    });
    group.finish();
}

/// Budget: pack ≤ 300 ns for this message, and at least 5× faster than iso8583_rs.
/// `pack` writes an already built message into a reused buffer; `build_and_pack` also sets
/// (and validates) the 20 fields, in a reused builder.
fn pack_0100(c: &mut Criterion) {
    let mut builder = MessageBuilder::new(Mti::AuthorizationRequest);
    build(&mut builder);
    let mut out: Vec<u8> = Vec::with_capacity(1024);

    let spec = iso_spec::spec("");
    let segment = spec
        .get_message_from_header("0100")
        .expect("0100 in the spec");
    let oracle_message = || {
        let mut m = iso_spec::new_msg(spec, segment);
        m.set("message_type", "0100").expect("message type");
        for (field, value) in FIELDS {
            m.set_on(u32::from(field), value).expect("field");
        }
        m
    };
    let prepared = oracle_message();
    let expected = with_binary_bitmap(&builder.to_vec());
    assert_eq!(
        prepared.assemble().ok(),
        Some(expected),
        "both pack the same bytes"
    );

    let mut group = c.benchmark_group("codec/pack_0100");
    group.bench_function("cardcore", |b| {
        b.iter(|| {
            out.clear();
            black_box(&builder).pack_into(&mut out)
        })
    });
    group.bench_function("iso8583_rs", |b| b.iter(|| black_box(&prepared).assemble()));
    group.bench_function("cardcore_build_and_pack", |b| {
        b.iter(|| {
            build(&mut builder);
            out.clear();
            builder.pack_into(&mut out)
        })
    });
    group.bench_function("iso8583_rs_build_and_pack", |b| {
        b.iter(|| oracle_message().assemble())
    });
    group.finish();
}

criterion_group!(benches, parse_0100, pack_0100);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench`, not when test runs execute each bench once.
    if std::env::args().any(|a| a == "--bench") {
        cpu_time_report();
    }
}

/// The thread's time on a CPU so far, in nanoseconds (Linux).
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// CPU nanoseconds per call of `op`, over `iterations` calls after a warm-up.
fn cpu_ns_per_op(iterations: u64, mut op: impl FnMut() -> usize) -> Option<f64> {
    for _ in 0..iterations / 10 {
        black_box(op());
    }
    let start = thread_cpu_ns()?;
    for _ in 0..iterations {
        black_box(op());
    }
    let spent = thread_cpu_ns()? - start;
    Some(spent as f64 / iterations as f64)
}

fn cpu_time_report() {
    const ITERATIONS: u64 = 4_000_000;
    let mut builder = MessageBuilder::new(Mti::AuthorizationRequest);
    build(&mut builder);
    let wire = builder.to_vec();
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let parse_ns = cpu_ns_per_op(ITERATIONS, || {
        parse(black_box(&wire)).map_or(0, |m| m.amount_minor().unwrap_or(0) as usize)
    });
    let pack_ns = cpu_ns_per_op(ITERATIONS, || {
        out.clear();
        black_box(&builder).pack_into(&mut out)
    });
    let mut fresh = MessageBuilder::new(Mti::AuthorizationRequest);
    let build_ns = cpu_ns_per_op(ITERATIONS / 4, || {
        build(black_box(&mut fresh));
        out.clear();
        fresh.pack_into(&mut out)
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    println!("CPU time per operation (load average {load}):");
    for (name, ns) in [
        ("parse_0100", parse_ns),
        ("pack_0100", pack_ns),
        ("build_and_pack", build_ns),
    ] {
        match ns {
            Some(ns) => println!("  codec/{name}/cardcore: {ns:.0} ns CPU"),
            None => println!("  codec/{name}/cardcore: thread CPU time unavailable"),
        }
    }
}
