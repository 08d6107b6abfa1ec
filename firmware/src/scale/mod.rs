//! The scale personality: an HX711 under four load cells, weighing people.
//!
//! `Scale` reads the ADC when a conversion is ready and hands each one to the `Weigher`
//! (spike filter, stability window, tare, auto-zero tracking, calibration): one Weight
//! Measurement per weighing, taken when the person holds still, never while they move, never a
//! second one before they step off. Each measurement is queued (`OfflineQueue`) until the
//! gateway confirms it, so the GATT layer just indicates `pending()` and calls `delivered()`
//! once the indication is confirmed.
//!
//! Inputs the scale does not own come in as plain values: the wall clock (when the device clock
//! is set) with each `poll`, the selected user, the display unit. The calibration comes from
//! `CalibrationStore` at boot and goes back there when a calibration finishes.

pub mod calibration;
pub mod calibration_store;
pub mod filter;
pub mod measurement;
pub mod offline_queue;
pub mod stability;
pub mod weigher;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use relais_protocol::DateTime;
use relais_protocol::weight_scale::{WeightMeasurement, WeightResolution, WeightScaleFeature};

use crate::drivers::hx711::{self, Hx711};
pub use calibration::{Calibration, CalibrationError, CalibrationStep};
pub use calibration_store::{CalibrationStore, StoreError};
pub use measurement::{UNKNOWN_USER, Weighing, WeightUnit};
pub use offline_queue::{OfflineQueue, RamOnly, WeighingArchive};
pub use weigher::{Phase, Weigher, WeigherEvent};

/// Users the scale tells apart (user indices 0 to 3).
pub const MAX_USERS: u8 = 4;

/// The resolution the scale rounds to and announces: 0.05 kg or 0.1 lb, well above what it
/// measures (see `firmware/tests/scale_accuracy.rs`) and what a bathroom scale displays.
pub const DEFAULT_RESOLUTION: WeightResolution = WeightResolution::Kg0_05OrLb0_1;

/// What a poll produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleEvent {
    /// A weighing finished; it is also queued for the gateway (see `pending`). For the
    /// display: the GATT layer sends from the queue, not from this event.
    Measured(WeightMeasurement),
    /// The two-point calibration finished and is in use: save it with `CalibrationStore::save`.
    Calibrated(Calibration),
    /// The two-point calibration failed; the previous calibration stays in use.
    CalibrationFailed(CalibrationError),
}

/// Why the scale could not do its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleError<EClock, EData, EArchive> {
    /// The ADC did not answer.
    Adc(hx711::Error<EClock, EData>),
    /// The archive of undelivered weighings failed (the weighing stays unqueued).
    Archive(EArchive),
}

/// A user index the scale does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUser(pub u8);

/// A resolution a scale cannot announce (not specified, reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidResolution(pub WeightResolution);

/// The error type of a scale's operations, spelled out once.
pub type ErrorOf<Clock, Data, Archive> = ScaleError<
    <Clock as embedded_hal::digital::ErrorType>::Error,
    <Data as embedded_hal::digital::ErrorType>::Error,
    <Archive as WeighingArchive>::Error,
>;

/// The scale: ADC, weighing logic, settings and the queue for the gateway.
#[derive(Debug)]
pub struct Scale<Clock, Data, Delay, Archive = RamOnly> {
    adc: Hx711<Clock, Data, Delay>,
    weigher: Weigher,
    queue: OfflineQueue<Archive>,
    unit: WeightUnit,
    user_id: u8,
    resolution: WeightResolution,
}

impl<Clock, Data, Delay, Archive> Scale<Clock, Data, Delay, Archive>
where
    Clock: OutputPin,
    Data: InputPin,
    Delay: DelayNs,
    Archive: WeighingArchive,
{
    /// A scale over `adc` (channel A, gain 128) with the unit's `calibration` (from
    /// `CalibrationStore::load`, or `Calibration::NOMINAL` before the first one). The queue
    /// starts with whatever `archive` has not delivered yet.
    pub fn new(
        adc: Hx711<Clock, Data, Delay>,
        calibration: Calibration,
        archive: Archive,
    ) -> Result<Self, ErrorOf<Clock, Data, Archive>> {
        Ok(Self {
            adc,
            weigher: Weigher::new(calibration),
            queue: OfflineQueue::new(archive).map_err(ScaleError::Archive)?,
            unit: WeightUnit::default(),
            user_id: UNKNOWN_USER,
            resolution: DEFAULT_RESOLUTION,
        })
    }

    /// Reads the ADC if a conversion is ready (call it more often than the ADC's 10 Hz) and
    /// runs the weighing. `wall_clock` is the device's local time, `None` while its clock is not
    /// set (the measurement then has no time stamp).
    pub fn poll(
        &mut self,
        wall_clock: Option<DateTime>,
    ) -> Result<Option<ScaleEvent>, ErrorOf<Clock, Data, Archive>> {
        if !self.adc.is_ready().map_err(ScaleError::Adc)? {
            return Ok(None);
        }
        let counts = self.adc.read().map_err(ScaleError::Adc)?;
        let weighing = match self.weigher.on_conversion(counts) {
            None => return Ok(None),
            Some(WeigherEvent::Calibrated(calibration)) => {
                return Ok(Some(ScaleEvent::Calibrated(calibration)));
            }
            Some(WeigherEvent::CalibrationFailed(error)) => {
                return Ok(Some(ScaleEvent::CalibrationFailed(error)));
            }
            Some(WeigherEvent::Weighed { kg }) => {
                Weighing::of(kg, self.unit, self.resolution, self.user_id, wall_clock)
                    .unwrap_or_else(|| Weighing::unsuccessful(self.unit, self.user_id, wall_clock))
            }
            Some(WeigherEvent::Overloaded) => {
                Weighing::unsuccessful(self.unit, self.user_id, wall_clock)
            }
        };
        self.queue.push(weighing).map_err(ScaleError::Archive)?;
        Ok(Some(ScaleEvent::Measured(weighing.to_measurement())))
    }

    /// The oldest measurement the gateway has not confirmed: the one to indicate next.
    pub fn pending(&self) -> Option<WeightMeasurement> {
        self.queue.oldest().map(Weighing::to_measurement)
    }

    /// The gateway confirmed the indication of `pending()`: forget it. Call it only after the
    /// confirmation, so a dropped link loses nothing.
    pub fn delivered(&mut self) -> Result<(), ErrorOf<Clock, Data, Archive>> {
        self.queue
            .remove_oldest()
            .map(|_| ())
            .map_err(ScaleError::Archive)
    }

    /// Measurements waiting for the gateway.
    pub fn pending_count(&self) -> usize {
        self.queue.len()
    }

    /// Measurements lost because the RAM queue was full and there is no durable archive.
    pub fn dropped_count(&self) -> u32 {
        self.queue.dropped()
    }

    /// The Weight Scale Feature value to serve.
    pub fn feature(&self) -> WeightScaleFeature {
        measurement::feature(self.resolution)
    }

    /// Shows and sends weights in `unit` from the next measurement on.
    pub fn set_unit(&mut self, unit: WeightUnit) {
        self.unit = unit;
    }

    /// The unit on the display and in the measurements.
    pub fn unit(&self) -> WeightUnit {
        self.unit
    }

    /// Rounds and announces `resolution` from now on: a device maker whose scale measures better
    /// (or worse) than the reference board says so here.
    pub fn set_resolution(
        &mut self,
        resolution: WeightResolution,
    ) -> Result<(), InvalidResolution> {
        if WeightUnit::Kilogram
            .steps_per_display_step(resolution)
            .is_none()
        {
            return Err(InvalidResolution(resolution));
        }
        self.resolution = resolution;
        Ok(())
    }

    /// The user the next measurements belong to: 0 to 3, or `None` (or 255) for an unknown user.
    pub fn select_user(&mut self, user: Option<u8>) -> Result<(), InvalidUser> {
        self.user_id = match user {
            None | Some(UNKNOWN_USER) => UNKNOWN_USER,
            Some(index) if index < MAX_USERS => index,
            Some(index) => return Err(InvalidUser(index)),
        };
        Ok(())
    }

    /// The selected user's index, 255 when unknown.
    pub fn user_id(&self) -> u8 {
        self.user_id
    }

    /// Zeroes the scale at the next still reading.
    pub fn tare(&mut self) {
        self.weigher.request_tare();
    }

    /// Turns auto-zero tracking on (the default) or off.
    pub fn set_auto_zero_tracking(&mut self, on: bool) {
        self.weigher.set_auto_zero_tracking(on);
    }

    /// Starts the two-point calibration with a reference of `known_mass_kg`: empty the platform,
    /// wait, put the mass on. `poll` reports the outcome.
    pub fn begin_calibration(&mut self, known_mass_kg: f32) -> Result<(), CalibrationError> {
        self.weigher.begin_calibration(known_mass_kg)
    }

    /// Abandons a calibration under way.
    pub fn cancel_calibration(&mut self) {
        self.weigher.cancel_calibration();
    }

    /// What a calibration under way waits for.
    pub fn calibration_step(&self) -> Option<CalibrationStep> {
        self.weigher.calibration_step()
    }

    /// The calibration in use.
    pub fn calibration(&self) -> Calibration {
        self.weigher.calibration()
    }

    /// Where the weighing stands.
    pub fn phase(&self) -> Phase {
        self.weigher.phase()
    }

    /// The weight on the platform now, for the display while it settles.
    pub fn live_kg(&self) -> Option<f32> {
        self.weigher.live_kg()
    }

    /// The ADC, for power management (`power_down` between weighings).
    pub fn adc_mut(&mut self) -> &mut Hx711<Clock, Data, Delay> {
        &mut self.adc
    }

    /// Gives the ADC and the archive back.
    pub fn release(self) -> (Hx711<Clock, Data, Delay>, Archive) {
        (self.adc, self.queue.release())
    }
}
