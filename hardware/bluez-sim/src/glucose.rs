//! The reference glucose meter of `relais-firmware` as a virtual device: records in a RAM flash
//! of the simulated board, the firmware's RACP server and GATT table.

use std::collections::HashMap;

use relais_board_sim::RamFlash;
use relais_firmware::devices::glucose_meter::{GlucoseMeterDevice, TABLE};
use relais_firmware::gatt::{Action, Event, Table};
use relais_firmware::glucose_meter::GlucoseMeter;
use relais_firmware::record_log::{RecordLog, WhenFull};
use relais_protocol::glucose::{
    GlucoseMeasurement, GlucoseMeasurementContext, GlucoseSampleLocation, GlucoseType, Meal,
};
use relais_protocol::{DateTime, MedValue, Quantity, Unit, uuid};

use crate::device::{Advertisement, VirtualDevice, clock_value, set_clock, sig_uuid};
use crate::error::DeviceFault;

/// Flash pages of the simulated meter's record log: 96 KiB, about 1,400 records with their
/// contexts (a catch-up of 1,000 must fit).
pub const PAGES: usize = 24;
const PAGE_SIZE: u32 = 4096;

/// The firmware glucose meter behind the emulated radio.
#[derive(Debug)]
pub struct GlucoseMeterSim {
    advertisement: Advertisement,
    paired: bool,
    /// Boxed: its flash is ~100 KiB, too much to move around a test's stack.
    device: Box<GlucoseMeterDevice<RamFlash<PAGES>>>,
    /// Synthetic records made so far (the next one's index).
    made: u32,
    /// Measurements still to take while running, one every `every_ms` of simulator time.
    to_take: u32,
    every_ms: u64,
    next_take_ms: u64,
}

impl GlucoseMeterSim {
    /// A meter at `address` holding `records` synthetic measurements (one per hour on
    /// 2024-03-01, 90 + i mg/dL, fasting context), advertising the Glucose service.
    pub fn with_records(address: &str, records: u32) -> Result<Self, DeviceFault> {
        let log = RecordLog::mount(
            RamFlash::<PAGES>::new(),
            0..PAGES as u32 * PAGE_SIZE,
            WhenFull::Refuse,
        )
        .map_err(|e| DeviceFault(format!("record log: {e:?}")))?;
        let mut device = Box::new(GlucoseMeterDevice::new(GlucoseMeter::new(log)));
        for i in 0..records {
            let (measurement, context) = synthetic_record(i)?;
            device
                .record(measurement, Some(context))
                .map_err(|e| DeviceFault(format!("record: {e:?}")))?;
        }
        Ok(Self {
            advertisement: Advertisement {
                address: address.to_owned(),
                name: "RS-GLUCOSE".to_owned(),
                service_uuids: vec![sig_uuid(uuid::GLUCOSE_SERVICE)],
                service_data: HashMap::new(),
                manufacturer_data: HashMap::new(),
                rssi: -60,
            },
            paired: true,
            device,
            made: records,
            to_take: 0,
            every_ms: 0,
            next_take_ms: 0,
        })
    }

    /// While running, the meter takes `count` more synthetic measurements, one every
    /// `every_ms` of simulator time (the first after `every_ms`), as a user would: a device
    /// that keeps producing readings.
    pub fn with_new_records(mut self, every_ms: u64, count: u32) -> Self {
        self.to_take = count;
        self.every_ms = every_ms.max(1);
        self.next_take_ms = self.every_ms;
        self
    }

    /// Replaces the advertisement's service data.
    pub fn with_service_data(mut self, service: &str, data: &[u8]) -> Self {
        self.advertisement
            .service_data
            .insert(service.to_owned(), data.to_vec());
        self
    }

    /// Adds manufacturer data to the advertisement.
    pub fn with_manufacturer_data(mut self, company: u16, data: &[u8]) -> Self {
        self.advertisement
            .manufacturer_data
            .insert(company, data.to_vec());
        self
    }

    /// Starts without a bond: the encrypted characteristics answer "Not paired" until
    /// Device1.Pair.
    pub fn unpaired(mut self) -> Self {
        self.paired = false;
        self
    }

    /// Sets the device clock (its Current Time) to `time` before the meter is served, as a
    /// earlier gateway or the user would have: a clock hours wrong gives records stamped hours
    /// off. Without it the clock is unset at start, as on a meter fresh out of its box.
    pub fn with_device_clock(mut self, time: &DateTime) -> Result<Self, DeviceFault> {
        let value = clock_value(time)?;
        set_clock(&TABLE, &value, |event| {
            self.device
                .handle(event)
                .map(|a| a.into_iter().collect())
                .map_err(|e| DeviceFault(format!("glucose meter: {e:?}")))
        })?;
        Ok(self)
    }

    /// The firmware device, to inspect its meter.
    pub fn firmware(&self) -> &GlucoseMeterDevice<RamFlash<PAGES>> {
        &self.device
    }
}

fn synthetic_record(
    i: u32,
) -> Result<(GlucoseMeasurement, GlucoseMeasurementContext), DeviceFault> {
    let hour = u8::try_from(i % 24).map_err(|_| DeviceFault("hour".into()))?;
    let base_time =
        DateTime::new(2024, 3, 1, hour, 0, 0).ok_or_else(|| DeviceFault("date".into()))?;
    let measurement = GlucoseMeasurement {
        sequence_number: 0,
        base_time,
        time_offset: None,
        glucose_concentration: Some(Quantity::new(
            MedValue::number(i64::from(90 + i), -5),
            Unit::KilogramPerLitre,
        )),
        glucose_type: Some(GlucoseType::CapillaryWholeBlood),
        sample_location: Some(GlucoseSampleLocation::Finger),
        sensor_status_annunciation: None,
        context_information_follows: false,
    };
    let context = GlucoseMeasurementContext {
        sequence_number: 0,
        extended_flags: None,
        carbohydrate_id: None,
        carbohydrate: None,
        meal: Some(Meal::Fasting),
        blood_ketone: false,
        tester: None,
        health: None,
        exercise_duration: None,
        exercise_intensity: None,
        medication_id: None,
        medication: None,
        hba1c: None,
    };
    Ok((measurement, context))
}

impl VirtualDevice for GlucoseMeterSim {
    fn advertisement(&self) -> &Advertisement {
        &self.advertisement
    }

    fn table(&self) -> &'static Table {
        &TABLE
    }

    fn initially_paired(&self) -> bool {
        // The meter serves its records only over a bonded link: by default it is paired out of
        // band, as a gateway does with bluetoothctl.
        self.paired
    }

    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        self.device
            .handle(event)
            .map(|a| a.into_iter().collect())
            .map_err(|e| DeviceFault(format!("glucose meter: {e:?}")))
    }

    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        while self.to_take > 0 && now_ms >= self.next_take_ms {
            let (measurement, context) = synthetic_record(self.made)?;
            self.device
                .record(measurement, Some(context))
                .map_err(|e| DeviceFault(format!("record: {e:?}")))?;
            self.made = self.made.saturating_add(1);
            self.to_take -= 1;
            self.next_take_ms = self.next_take_ms.saturating_add(self.every_ms);
        }
        self.device
            .poll(now_ms)
            .map(|a| a.into_iter().collect())
            .map_err(|e| DeviceFault(format!("glucose meter: {e:?}")))
    }
}
