//! Notifications in, measurements out: a sans-I/O assembler for the profiles whose values
//! arrive unasked (scales, cuffs, thermometers, oximeters, CGMs, heart rate sensors).
//!
//! - A measurement characteristic's value that decodes is one [`Record`].
//! - A combined Weight Scale + Body Composition scale indicates a Weight Measurement and a Body
//!   Composition Measurement (possibly in several packets) for one weighing, in either order;
//!   the halves are held until both arrived and leave as one record. The driver calls
//!   [`Assembler::flush`] when nothing more came for a while, so a half whose partner never
//!   comes still leaves on its own.
//! - Intermediate values (cuff pressure during inflation, intermediate temperature, continuous
//!   oximetry, heart rate) are live values: shown, never stored.
//! - Values that do not decode are skipped with the reason, never with the health values.
//!   Characteristics relais does not know are ignored.

use relais_protocol::body_composition::BodyCompositionMeasurement;
use relais_protocol::{Characteristic as _, Quirks, uuid};

use crate::payload::{Payload, PayloadError, Record};

/// What came out of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A whole measurement, to store.
    Record(Record),
    /// A value to show while a measurement is under way.
    Live(Payload),
    /// A value that does not decode, skipped.
    Skipped {
        /// The characteristic.
        characteristic: u16,
        /// Why, without the value.
        reason: String,
    },
}

/// Characteristics whose values are measurements to store.
const MEASUREMENTS: [u16; 6] = [
    uuid::BLOOD_PRESSURE_MEASUREMENT,
    uuid::WEIGHT_MEASUREMENT,
    uuid::BODY_COMPOSITION_MEASUREMENT,
    uuid::TEMPERATURE_MEASUREMENT,
    uuid::PLX_SPOT_CHECK_MEASUREMENT,
    uuid::CGM_MEASUREMENT,
];

/// Characteristics whose values are live progress.
const LIVE: [u16; 4] = [
    uuid::INTERMEDIATE_CUFF_PRESSURE,
    uuid::INTERMEDIATE_TEMPERATURE,
    uuid::PLX_CONTINUOUS_MEASUREMENT,
    uuid::HEART_RATE_MEASUREMENT,
];

/// Every characteristic the assembler takes, to subscribe to.
pub fn subscriptions() -> impl Iterator<Item = u16> {
    MEASUREMENTS.into_iter().chain(LIVE)
}

/// The assembler of one connection.
#[derive(Debug, Clone)]
pub struct Assembler {
    quirks: Quirks,
    /// The device indicates both halves of a weighing.
    combined_scale: bool,
    weight: Option<Payload>,
    /// Body composition packets of the weighing under way.
    body: Vec<Payload>,
    /// The last body composition packet ended its measurement.
    body_complete: bool,
    /// A CGM's Session Start Time as read at connection: it times every CGM record.
    cgm_session_start: Option<Payload>,
}

impl Assembler {
    /// An assembler for a device that has `characteristics` (a scale with both Weight and
    /// Body Composition Measurement is a combined scale).
    pub fn new(quirks: Quirks, characteristics: &[u16]) -> Self {
        Self {
            quirks,
            combined_scale: characteristics.contains(&uuid::WEIGHT_MEASUREMENT)
                && characteristics.contains(&uuid::BODY_COMPOSITION_MEASUREMENT),
            weight: None,
            body: Vec::new(),
            body_complete: false,
            cgm_session_start: None,
        }
    }

    /// The CGM Session Start Time (0x2AAA) value read at connection; CGM records carry it.
    pub fn set_cgm_session_start(&mut self, bytes: Vec<u8>) {
        self.cgm_session_start = Some(Payload::characteristic(uuid::CGM_SESSION_START_TIME, bytes));
    }

    /// True while half a weighing is held: the driver should flush after a short wait.
    pub fn is_holding(&self) -> bool {
        self.weight.is_some() || !self.body.is_empty()
    }

    /// Feeds one notification or indication.
    pub fn notification(&mut self, characteristic: u16, bytes: &[u8]) -> Vec<Assembled> {
        let payload = Payload::characteristic(characteristic, bytes);
        if LIVE.contains(&characteristic) {
            return vec![self.checked(Record::single(payload.clone()), Assembled::Live(payload))];
        }
        if !MEASUREMENTS.contains(&characteristic) {
            tracing::debug!("ignoring a value of 0x{characteristic:04X}");
            return Vec::new();
        }
        match characteristic {
            uuid::WEIGHT_MEASUREMENT if self.combined_scale => self.weight_half(payload),
            uuid::BODY_COMPOSITION_MEASUREMENT => self.body_half(payload),
            uuid::CGM_MEASUREMENT => {
                let mut record = Record::single(payload);
                record.payloads.extend(self.cgm_session_start.clone());
                vec![self.checked(record.clone(), Assembled::Record(record))]
            }
            _ => {
                let record = Record::single(payload);
                vec![self.checked(record.clone(), Assembled::Record(record))]
            }
        }
    }

    /// Hands over whatever half weighing is held, each half on its own.
    pub fn flush(&mut self) -> Vec<Assembled> {
        let mut out = Vec::new();
        if let Some(weight) = self.weight.take() {
            let record = Record::single(weight);
            out.push(self.checked(record.clone(), Assembled::Record(record)));
        }
        if !self.body.is_empty() {
            let record = Record {
                payloads: std::mem::take(&mut self.body),
            };
            out.push(self.checked(record.clone(), Assembled::Record(record)));
        }
        self.body_complete = false;
        out
    }

    fn weight_half(&mut self, payload: Payload) -> Vec<Assembled> {
        // A second weight before any body composition: the first weighing had none.
        let mut out = if self.weight.is_some() {
            self.flush()
        } else {
            Vec::new()
        };
        self.weight = Some(payload);
        out.extend(self.complete_weighing());
        out
    }

    fn body_half(&mut self, payload: Payload) -> Vec<Assembled> {
        let packet = match BodyCompositionMeasurement::decode_with(&payload.bytes, self.quirks) {
            Ok(decoded) => decoded.value,
            Err(error) => {
                return vec![Assembled::Skipped {
                    characteristic: uuid::BODY_COMPOSITION_MEASUREMENT,
                    reason: format!("{}: {error}", BodyCompositionMeasurement::NAME),
                }];
            }
        };
        let mut out = Vec::new();
        if self.body_complete {
            // A new measurement while the previous one waits for its weight.
            out.extend(self.flush_body());
        }
        self.body.push(payload);
        self.body_complete = !packet.multiple_packet_measurement;
        if !self.body_complete {
            return out;
        }
        if self.combined_scale {
            out.extend(self.complete_weighing());
        } else {
            out.extend(self.flush_body());
        }
        out
    }

    fn flush_body(&mut self) -> Vec<Assembled> {
        self.body_complete = false;
        if self.body.is_empty() {
            return Vec::new();
        }
        let record = Record {
            payloads: std::mem::take(&mut self.body),
        };
        vec![self.checked(record.clone(), Assembled::Record(record))]
    }

    /// Both halves here: one record, weight first.
    fn complete_weighing(&mut self) -> Vec<Assembled> {
        if !self.body_complete {
            return Vec::new();
        }
        let Some(weight) = self.weight.take() else {
            return Vec::new();
        };
        self.body_complete = false;
        let mut payloads = vec![weight];
        payloads.append(&mut self.body);
        let record = Record { payloads };
        match record.readings(self.quirks) {
            Ok(_) => vec![Assembled::Record(record)],
            // Halves that cannot be one weighing (other user, other time) leave separately.
            Err(PayloadError::Mismatch(_)) => {
                let mut payloads = record.payloads.into_iter();
                self.weight = payloads.next();
                self.body = payloads.collect();
                self.flush()
            }
            Err(e) => vec![skipped(&record, &e)],
        }
    }

    /// `ok` when the record decodes, else why it is skipped.
    fn checked(&self, record: Record, ok: Assembled) -> Assembled {
        match record.readings(self.quirks) {
            Ok(_) => ok,
            Err(e) => skipped(&record, &e),
        }
    }
}

fn skipped(record: &Record, error: &PayloadError) -> Assembled {
    let characteristic = match record.origin() {
        Some(crate::payload::Origin::Characteristic(u)) => u,
        _ => 0,
    };
    Assembled::Skipped {
        characteristic,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEIGHT: [u8; 3] = [0x00, 0xAC, 0x0D];
    const BODY: [u8; 4] = [0x00, 0x00, 0xC8, 0x00];
    // Multiple packet flag (bit 12) set, then clear with an impedance (bit 9).
    const BODY_FIRST: [u8; 4] = [0x00, 0x10, 0xC8, 0x00];
    const BODY_LAST: [u8; 6] = [0x00, 0x02, 0xC8, 0x00, 0x88, 0x13];

    fn combined() -> Assembler {
        Assembler::new(
            Quirks::NONE,
            &[uuid::WEIGHT_MEASUREMENT, uuid::BODY_COMPOSITION_MEASUREMENT],
        )
    }

    fn records(out: &[Assembled]) -> Vec<Vec<u16>> {
        out.iter()
            .filter_map(|a| match a {
                Assembled::Record(r) => Some(
                    r.payloads
                        .iter()
                        .map(|p| match p.origin {
                            crate::payload::Origin::Characteristic(u) => u,
                            crate::payload::Origin::ServiceData(u) => u,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_weight_waits_for_its_body_composition() {
        let mut a = combined();
        assert!(a.notification(uuid::WEIGHT_MEASUREMENT, &WEIGHT).is_empty());
        assert!(a.is_holding());
        let out = a.notification(uuid::BODY_COMPOSITION_MEASUREMENT, &BODY);
        assert_eq!(records(&out), vec![vec![0x2A9D, 0x2A9C]]);
        assert!(!a.is_holding());
    }

    #[test]
    fn the_body_composition_may_come_first_and_in_packets() {
        let mut a = combined();
        assert!(
            a.notification(uuid::BODY_COMPOSITION_MEASUREMENT, &BODY_FIRST)
                .is_empty()
        );
        assert!(
            a.notification(uuid::BODY_COMPOSITION_MEASUREMENT, &BODY_LAST)
                .is_empty()
        );
        let out = a.notification(uuid::WEIGHT_MEASUREMENT, &WEIGHT);
        assert_eq!(records(&out), vec![vec![0x2A9D, 0x2A9C, 0x2A9C]]);
    }

    #[test]
    fn a_lone_half_leaves_on_flush_or_with_the_next_weighing() {
        let mut a = combined();
        a.notification(uuid::WEIGHT_MEASUREMENT, &WEIGHT);
        let out = a.notification(uuid::WEIGHT_MEASUREMENT, &WEIGHT);
        assert_eq!(records(&out), vec![vec![0x2A9D]]);
        assert_eq!(records(&a.flush()), vec![vec![0x2A9D]]);
        assert!(a.flush().is_empty());
    }

    #[test]
    fn a_weight_only_scale_sends_each_weight_at_once() {
        let mut a = Assembler::new(Quirks::NONE, &[uuid::WEIGHT_MEASUREMENT]);
        let out = a.notification(uuid::WEIGHT_MEASUREMENT, &WEIGHT);
        assert_eq!(records(&out), vec![vec![0x2A9D]]);
    }

    #[test]
    fn garbage_is_skipped_and_unknown_values_ignored() {
        let mut a = combined();
        let out = a.notification(uuid::BLOOD_PRESSURE_MEASUREMENT, &[0x1E, 0x78]);
        assert!(matches!(
            &out[..],
            [Assembled::Skipped {
                characteristic: 0x2A35,
                ..
            }]
        ));
        let out = a.notification(uuid::BODY_COMPOSITION_MEASUREMENT, &[0xFF]);
        assert!(matches!(&out[..], [Assembled::Skipped { .. }]));
        assert!(a.notification(0x2A19, &[50]).is_empty());
        assert!(!a.is_holding());
    }

    #[test]
    fn intermediate_values_are_live() {
        let mut a = combined();
        // Intermediate cuff pressure 80 mmHg, no other field.
        let out = a.notification(
            uuid::INTERMEDIATE_CUFF_PRESSURE,
            &[0x00, 0x50, 0x00, 0xFF, 0x07, 0xFF, 0x07],
        );
        assert!(matches!(&out[..], [Assembled::Live(_)]));
    }
}
