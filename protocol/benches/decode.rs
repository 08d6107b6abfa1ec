//! Decoding throughput on a mixed corpus of Blood Pressure, Weight and Glucose Measurements, and
//! on Xiaomi scale advertisements. Before measuring, a counting allocator checks that decoding
//! allocates nothing. The corpus is written to `target/relais-bench-corpus.tsv` so that
//! `scripts/bench-decode.sh` can time another decoder on exactly the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::glucose::GlucoseMeasurement;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::xiaomi::{MiBodyCompositionScale, MiSmartScale};
use relais_protocol::{Characteristic, uuid};

#[global_allocator]
static ALLOCATOR: counting_allocator::CountingAllocator = counting_allocator::CountingAllocator;

/// Decodes one payload; returns a value derived from the result so nothing is optimised away.
#[inline]
fn decode(p: &corpus::Payload) -> u32 {
    let bytes = black_box(p.bytes.as_slice());
    let ok = match p.uuid {
        uuid::BLOOD_PRESSURE_MEASUREMENT => BloodPressureMeasurement::decode(bytes).is_ok(),
        uuid::WEIGHT_MEASUREMENT => WeightMeasurement::decode(bytes).is_ok(),
        uuid::GLUCOSE_MEASUREMENT => GlucoseMeasurement::decode(bytes).is_ok(),
        uuid::WEIGHT_SCALE_SERVICE => MiSmartScale::decode(bytes).is_ok(),
        uuid::BODY_COMPOSITION_SERVICE => MiBodyCompositionScale::decode(bytes).is_ok(),
        _ => false,
    };
    u32::from(ok)
}

fn decode_all(payloads: &[corpus::Payload]) -> u32 {
    payloads.iter().map(decode).sum()
}

fn write_corpus(sets: &[(&str, &[corpus::Payload])]) {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_owned());
    let path = std::path::Path::new(&dir).join("relais-bench-corpus.tsv");
    let mut f = std::fs::File::create(&path).expect("corpus file");
    for (set, payloads) in sets {
        for p in *payloads {
            let hex: String = p.bytes.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(f, "{set}\t{:04x}\t{hex}", p.uuid).expect("corpus line");
        }
    }
}

fn benches(c: &mut Criterion) {
    let mixed = corpus::measurements(1000);
    let by_kind = |u: u16| -> Vec<corpus::Payload> {
        mixed
            .iter()
            .filter(|p| p.uuid == u)
            .map(|p| corpus::Payload {
                uuid: p.uuid,
                bytes: p.bytes.clone(),
            })
            .collect()
    };
    let bpm = by_kind(uuid::BLOOD_PRESSURE_MEASUREMENT);
    let wm = by_kind(uuid::WEIGHT_MEASUREMENT);
    let glm = by_kind(uuid::GLUCOSE_MEASUREMENT);
    let xiaomi = corpus::xiaomi_adverts(1000);
    write_corpus(&[("mixed", &mixed), ("xiaomi", &xiaomi)]);

    let before = counting_allocator::allocations();
    let decoded = decode_all(&mixed) + decode_all(&xiaomi);
    let allocated = counting_allocator::allocations() - before;
    assert_eq!(
        decoded as usize,
        mixed.len() + xiaomi.len(),
        "corpus decodes"
    );
    assert_eq!(allocated, 0, "decoding allocated");
    println!("allocation check: {decoded} payloads decoded, {allocated} heap allocations");

    let mut group = c.benchmark_group("decode");
    for (name, set) in [
        ("mixed", &mixed),
        ("blood_pressure_measurement", &bpm),
        ("weight_measurement", &wm),
        ("glucose_measurement", &glm),
        ("xiaomi_advertisement", &xiaomi),
    ] {
        group.throughput(Throughput::Elements(set.len() as u64));
        group.bench_function(name, |b| b.iter(|| decode_all(black_box(set))));
    }
    group.finish();
}

criterion_group!(decode_benches, benches);
criterion_main!(decode_benches);
