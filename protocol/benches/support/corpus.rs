//! A mixed corpus of realistic measurement payloads, built with the crate's own encoders so the
//! bytes are right by construction. Shared by the decode benchmark and the allocation test.
#![allow(clippy::indexing_slicing, dead_code)]

use relais_protocol::blood_pressure::{BloodPressureMeasurement, MeasurementStatus};
use relais_protocol::glucose::{
    GlucoseMeasurement, GlucoseSampleLocation, GlucoseType, SensorStatusAnnunciation,
};
use relais_protocol::weight_scale::WeightMeasurement;
use relais_protocol::xiaomi::{MiBodyCompositionScale, MiSmartScale};
use relais_protocol::{Characteristic, DateTime, Decimal, MedValue, Quantity, Unit};

/// One payload: the characteristic (or advertised service) UUID and the bytes.
#[derive(Debug)]
pub struct Payload {
    pub uuid: u16,
    pub bytes: Vec<u8>,
}

/// A small deterministic generator, so every run decodes the same corpus.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }

    fn flag(&mut self) -> bool {
        self.next(2) == 1
    }

    fn time(&mut self) -> DateTime {
        DateTime::new(
            2024 + self.next(3) as u16,
            1 + self.next(12) as u8,
            1 + self.next(28) as u8,
            self.next(24) as u8,
            self.next(60) as u8,
            self.next(60) as u8,
        )
        .unwrap_or(DateTime {
            year: None,
            month: None,
            day: None,
            hours: 0,
            minutes: 0,
            seconds: 0,
        })
    }
}

fn encode<T: Characteristic>(value: &T) -> Payload {
    let mut buf = [0u8; 64];
    let n = value.encode(&mut buf).unwrap_or(0);
    Payload {
        uuid: T::UUID,
        bytes: buf.get(..n).unwrap_or_default().to_vec(),
    }
}

fn blood_pressure(g: &mut Lcg) -> Payload {
    let unit = if g.next(8) == 0 {
        Unit::Kilopascal
    } else {
        Unit::MillimetreOfMercury
    };
    let p = |v: u64| Quantity::new(MedValue::number(v as i64, 0), unit);
    let systolic = 100 + g.next(80);
    let diastolic = 55 + g.next(40);
    encode(&BloodPressureMeasurement {
        systolic: p(systolic),
        diastolic: p(diastolic),
        mean_arterial_pressure: p((systolic + 2 * diastolic) / 3),
        time_stamp: g.flag().then(|| g.time()),
        pulse_rate: g
            .flag()
            .then(|| Quantity::new(MedValue::number(50 + g.next(60) as i64, 0), Unit::PerMinute)),
        user_id: g.flag().then(|| 1 + g.next(4) as u8),
        measurement_status: g
            .flag()
            .then(|| MeasurementStatus::from_bits(g.next(8) as u16)),
    })
}

fn weight(g: &mut Lcg) -> Payload {
    let si = g.next(4) != 0;
    let (unit, step) = if si {
        (Unit::Kilogram, Decimal::new(5, -3))
    } else {
        (Unit::Pound, Decimal::new(1, -2))
    };
    let raw = 8_000 + g.next(20_000) as i64;
    let with_bmi = g.flag();
    encode(&WeightMeasurement {
        weight: Quantity::decimal(Decimal::scaled(raw, step), unit),
        time_stamp: g.flag().then(|| g.time()),
        user_id: g.flag().then(|| 1 + g.next(4) as u8),
        bmi: with_bmi.then(|| {
            Quantity::decimal(
                Decimal::new(180 + g.next(120) as i64, -1),
                Unit::KilogramPerSquareMetre,
            )
        }),
        height: with_bmi.then(|| {
            if si {
                Quantity::decimal(Decimal::new(1_500 + g.next(500) as i64, -3), Unit::Metre)
            } else {
                Quantity::decimal(Decimal::new(590 + g.next(200) as i64, -1), Unit::Inch)
            }
        }),
    })
}

fn glucose(g: &mut Lcg, sequence_number: u16) -> Payload {
    let with_concentration = g.next(16) != 0;
    encode(&GlucoseMeasurement {
        sequence_number,
        base_time: g.time(),
        time_offset: g.flag().then(|| g.next(120) as i16 - 60),
        glucose_concentration: with_concentration.then(|| {
            if g.flag() {
                // kg/L: 100 mg/dL is 100e-5 kg/L.
                Quantity::new(
                    MedValue::number(60 + g.next(200) as i64, -5),
                    Unit::KilogramPerLitre,
                )
            } else {
                Quantity::new(
                    MedValue::number(35 + g.next(150) as i64, -4),
                    Unit::MolePerLitre,
                )
            }
        }),
        glucose_type: with_concentration.then_some(GlucoseType::CapillaryWholeBlood),
        sample_location: with_concentration.then_some(GlucoseSampleLocation::Finger),
        sensor_status_annunciation: g
            .flag()
            .then(|| SensorStatusAnnunciation::from_bits(g.next(4) as u16)),
        context_information_follows: g.flag(),
    })
}

/// `per_kind` payloads of each of the three measurement types, interleaved.
pub fn measurements(per_kind: usize) -> Vec<Payload> {
    let mut g = Lcg(0x5EED);
    let mut out = Vec::with_capacity(per_kind * 3);
    for i in 0..per_kind {
        out.push(blood_pressure(&mut g));
        out.push(weight(&mut g));
        out.push(glucose(&mut g, i as u16));
    }
    out
}

/// Xiaomi scale advertisements (service data), both models, settled and not.
pub fn xiaomi_adverts(count: usize) -> Vec<Payload> {
    let mut g = Lcg(0xA11CE);
    (0..count)
        .map(|i| {
            let mut buf = [0u8; 16];
            let raw = 10_000 + g.next(16_000) as u32;
            let time = g.time();
            if i % 2 == 0 {
                let mut v1 = [0u8; 10];
                v1[0] = if g.flag() { 0x22 } else { 0x02 };
                v1[1..3].copy_from_slice(&(raw as u16).to_le_bytes());
                let n = MiSmartScale::decode(&v1)
                    .ok()
                    .map(|d| {
                        let mut s = d.value;
                        s.date_time = relais_protocol::xiaomi::ScaleDateTime::from_date_time(&time);
                        s.encode(&mut buf).unwrap_or(0)
                    })
                    .unwrap_or(0);
                Payload {
                    uuid: MiSmartScale::SERVICE_UUID,
                    bytes: buf[..n].to_vec(),
                }
            } else {
                let mut v2 = [0u8; 13];
                v2[0] = 0x02;
                v2[1] = if g.flag() { 0x26 } else { 0x04 };
                v2[9..11].copy_from_slice(&(400 + g.next(200) as u16).to_le_bytes());
                v2[11..13].copy_from_slice(&(raw as u16).to_le_bytes());
                let n = MiBodyCompositionScale::decode(&v2)
                    .ok()
                    .map(|d| {
                        let mut s = d.value;
                        s.date_time = relais_protocol::xiaomi::ScaleDateTime::from_date_time(&time);
                        s.encode(&mut buf).unwrap_or(0)
                    })
                    .unwrap_or(0);
                Payload {
                    uuid: MiBodyCompositionScale::SERVICE_UUID,
                    bytes: buf[..n].to_vec(),
                }
            }
        })
        .collect()
}
