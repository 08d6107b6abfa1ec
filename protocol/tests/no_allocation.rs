//! The decoders and the readings they produce never touch the heap: a counting global allocator
//! sees no allocation while a mixed corpus is decoded and normalised.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../benches/support/corpus.rs"]
mod corpus;
#[path = "../benches/support/counting_allocator.rs"]
mod counting_allocator;

use relais_protocol::blood_pressure::BloodPressureMeasurement;
use relais_protocol::glucose::GlucoseMeasurement;
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::xiaomi::{MiBodyCompositionScale, MiSmartScale};
use relais_protocol::{Characteristic, ToReadings, uuid};

#[global_allocator]
static ALLOCATOR: counting_allocator::CountingAllocator = counting_allocator::CountingAllocator;

fn decode_all(payloads: &[corpus::Payload]) -> usize {
    let mut readings = 0;
    for p in payloads {
        readings += match p.uuid {
            uuid::BLOOD_PRESSURE_MEASUREMENT => BloodPressureMeasurement::decode(&p.bytes)
                .unwrap()
                .value
                .readings()
                .len(),
            uuid::WEIGHT_MEASUREMENT => WeightMeasurement::decode(&p.bytes)
                .unwrap()
                .value
                .readings()
                .len(),
            uuid::GLUCOSE_MEASUREMENT => GlucoseMeasurement::decode(&p.bytes)
                .unwrap()
                .value
                .readings()
                .len(),
            uuid::WEIGHT_SCALE_SERVICE => MiSmartScale::decode(&p.bytes)
                .unwrap()
                .value
                .readings()
                .len(),
            uuid::BODY_COMPOSITION_SERVICE => MiBodyCompositionScale::decode(&p.bytes)
                .unwrap()
                .value
                .readings()
                .len(),
            other => panic!("unexpected payload {other:04x}"),
        };
    }
    readings
}

#[test]
fn decoding_and_normalising_allocate_nothing() {
    let mut payloads = corpus::measurements(1000);
    payloads.extend(corpus::xiaomi_adverts(200));
    let before = counting_allocator::allocations();
    let readings = decode_all(&payloads);
    let after = counting_allocator::allocations();
    assert!(readings >= payloads.len(), "every payload yields a reading");
    assert_eq!(
        after - before,
        0,
        "decoding {} payloads allocated",
        payloads.len()
    );
}
