//! An advertising-only Xiaomi Mi Smart Scale: no firmware, no connection; each weighing is
//! broadcast as service data on 0x181D, encoded with `relais_protocol::xiaomi`, and changes as a
//! person steps on (unsettled, then stabilized) and off (weight removed).

use std::collections::HashMap;

use relais_firmware::devices::FIRST_HANDLE;
use relais_firmware::gatt::{Action, Characteristic, Event, Properties, Service, Table, Uuid};
use relais_firmware::gatt_table;
use relais_protocol::xiaomi::{MiSmartScale, ScaleDateTime, UnitMode};
use relais_protocol::{DateTime, MedValue, Quantity, Unit, uuid};

use crate::device::{Advertisement, VirtualDevice, sig_uuid};
use crate::error::DeviceFault;
use crate::scale::Weighing;

/// A table that is never exported: the scale refuses every connection.
const ADVERT_ONLY: Table = gatt_table!(
    FIRST_HANDLE,
    &[Service::primary(
        Uuid::sig(uuid::WEIGHT_SCALE_SERVICE),
        &[Characteristic::new(
            Uuid::sig(uuid::WEIGHT_MEASUREMENT),
            Properties::READ
        )]
    )]
);

/// How long the weight takes to settle after stepping on, at most.
const SETTLE_MS: u64 = 1_500;

/// A Xiaomi Mi Smart Scale (XMTZC01HM/XMTZC04HM) that only advertises. Simulated time is the
/// simulator's clock (milliseconds since [`crate::Simulator::start`]).
#[derive(Debug)]
pub struct XiaomiScaleSim {
    advertisement: Advertisement,
    weighings: Vec<Weighing>,
    date_time: DateTime,
}

impl XiaomiScaleSim {
    /// A scale at `address` with an empty platform; it advertises 0 kg, weight removed.
    pub fn new(address: &str) -> Result<Self, DeviceFault> {
        let date_time =
            DateTime::new(2024, 3, 1, 8, 0, 0).ok_or_else(|| DeviceFault("scale date".into()))?;
        let mut scale = Self {
            advertisement: Advertisement {
                address: address.to_owned(),
                name: "MI_SCALE".to_owned(),
                service_uuids: vec![sig_uuid(MiSmartScale::SERVICE_UUID)],
                service_data: HashMap::new(),
                manufacturer_data: HashMap::new(),
                rssi: -70,
            },
            weighings: Vec::new(),
            date_time,
        };
        scale.update(0)?;
        Ok(scale)
    }

    /// Someone steps on at `on_ms` and off at `off_ms` (simulator time); the weight settles
    /// after half the time on (at most 1.5 s), in steps of 5 g.
    pub fn with_weighing(mut self, weighing: Weighing) -> Self {
        self.weighings.push(weighing);
        self
    }

    /// Sets the date and time the scale broadcasts (its clock is not running).
    pub fn with_date_time(mut self, date_time: DateTime) -> Self {
        self.date_time = date_time;
        self
    }

    /// What the scale broadcasts at `now_ms`.
    pub fn service_data_at(&self, now_ms: u64) -> Result<Vec<u8>, DeviceFault> {
        let last = self
            .weighings
            .iter()
            .filter(|w| w.on_ms <= now_ms)
            .max_by_key(|w| w.on_ms);
        let (raw, stabilized, removed) = match last {
            None => (0, false, true),
            Some(w) if now_ms >= w.off_ms => (raw_weight(w.mass_kg), true, true),
            Some(w) => {
                let settle = (w.off_ms.saturating_sub(w.on_ms) / 2).min(SETTLE_MS);
                let elapsed = now_ms.saturating_sub(w.on_ms);
                let full = raw_weight(w.mass_kg);
                if elapsed >= settle {
                    (full, true, false)
                } else {
                    let part = i64::try_from(elapsed).unwrap_or(0);
                    let whole = i64::try_from(settle.max(1)).unwrap_or(1);
                    (full.saturating_mul(part) / whole, false, false)
                }
            }
        };
        let advert = MiSmartScale {
            unit_mode: UnitMode::Kilogram,
            stabilized,
            weight_removed: removed,
            reserved_bits: 0,
            weight: Quantity::new(MedValue::number(raw.saturating_mul(5), -3), Unit::Kilogram),
            date_time: ScaleDateTime::from_date_time(&self.date_time),
        };
        let mut out = [0u8; MiSmartScale::LEN];
        let n = advert
            .encode(&mut out)
            .map_err(|e| DeviceFault(format!("xiaomi advert: {e:?}")))?;
        Ok(out.get(..n).unwrap_or_default().to_vec())
    }

    fn update(&mut self, now_ms: u64) -> Result<(), DeviceFault> {
        let data = self.service_data_at(now_ms)?;
        self.advertisement
            .service_data
            .insert(sig_uuid(MiSmartScale::SERVICE_UUID), data);
        Ok(())
    }
}

/// The weight in the scale's units of 5 g, clamped to what its u16 holds.
fn raw_weight(mass_kg: f64) -> i64 {
    let raw = (mass_kg * 200.0).round();
    if raw.is_nan() || raw <= 0.0 {
        0
    } else if raw >= f64::from(u16::MAX) {
        i64::from(u16::MAX)
    } else {
        raw as i64
    }
}

impl VirtualDevice for XiaomiScaleSim {
    fn advertisement(&self) -> &Advertisement {
        &self.advertisement
    }

    fn table(&self) -> &'static Table {
        &ADVERT_ONLY
    }

    fn initially_paired(&self) -> bool {
        false
    }

    fn connectable(&self) -> bool {
        false
    }

    fn handle(&mut self, _event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        Ok(Vec::new())
    }

    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        self.update(now_ms)?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_weighing_settles_then_is_removed() {
        let scale = XiaomiScaleSim::new("C0:00:00:00:00:01")
            .unwrap()
            .with_weighing(Weighing {
                on_ms: 1_000,
                off_ms: 4_000,
                mass_kg: 72.4,
            });
        let at = |ms| {
            MiSmartScale::decode(&scale.service_data_at(ms).unwrap())
                .unwrap()
                .value
        };
        assert!(at(0).weight_removed);
        let stepping = at(1_500);
        assert!(!stepping.stabilized && !stepping.weight_removed);
        let settled = at(3_000);
        assert!(settled.stabilized && !settled.weight_removed);
        assert_eq!(
            settled.weight,
            Quantity::new(MedValue::number(72_400, -3), Unit::Kilogram)
        );
        assert!(at(5_000).weight_removed);
    }
}
