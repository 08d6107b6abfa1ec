//! The reference blood-pressure cuff of `relais-firmware` as a virtual device: the simulated
//! cuff of `relais-board-sim` (pump, valve, pressure sensor behind an HX711, a subject's
//! arteries), on simulated time that runs `speed` times faster than the wall clock. A
//! measurement cycle starts when [`CuffButton::press`] is called, as the user presses the button.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use relais_board_sim::SimClock;
use relais_board_sim::cuff::{
    COUNTS_PER_MMHG, Cuff, CuffConfig, PressureSensor, PumpPin, Subject, ValvePin,
};
use relais_board_sim::hx71x::{ClockPin, DataPin, Hx71x};
use relais_firmware::cuff::{BloodPressureCuff, CycleConfig};
use relais_firmware::devices::cuff::{CuffDevice, TABLE};
use relais_firmware::drivers::hx711::{Gain, Hx711};
use relais_firmware::gatt::{Action, Event};
use relais_protocol::{DateTime, uuid};

use crate::device::{Advertisement, clock_value, set_clock, sig_uuid};
use crate::error::DeviceFault;
use crate::sim::lock;
use crate::threaded::{Firmware, Requests, ThreadedDevice};

/// The cuff's main loop period, in simulated milliseconds (faster than the ADC's 40 Hz).
const STEP_MS: u64 = 1;
/// HX711 output rate of the pressure sensor.
const ADC_RATE_HZ: u32 = 40;

/// Presses the cuff's button: the next poll starts a measurement cycle. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CuffButton {
    /// A press not yet seen by the firmware, with its user id.
    pressed: Arc<Mutex<Option<Option<u8>>>>,
}

impl CuffButton {
    /// Starts a measurement cycle for `user_id` (the cuff's user index, if any).
    pub fn press(&self, user_id: Option<u8>) {
        *lock(&self.pressed) = Some(user_id);
    }

    fn take(&self) -> Option<Option<u8>> {
        lock(&self.pressed).take()
    }
}

/// Builds blood-pressure cuff devices.
#[derive(Debug, Clone)]
pub struct CuffSim {
    address: String,
    subject: Subject,
    seed: u64,
    speed: u64,
    button: CuffButton,
    /// The Current Time written before it is served.
    device_clock: Option<[u8; 10]>,
}

impl CuffSim {
    /// A cuff at `address` on a typical subject, simulated time at wall-clock speed.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            subject: Subject::typical(),
            seed: 5,
            speed: 1,
            button: CuffButton::default(),
            device_clock: None,
        }
    }

    /// The arm the cuff is on.
    pub fn with_subject(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }

    /// Simulated time runs `speed` times faster than the wall clock (a cycle lasts about 40
    /// simulated seconds).
    pub fn with_speed(mut self, speed: u64) -> Self {
        self.speed = speed.max(1);
        self
    }

    /// The button that starts a measurement cycle.
    pub fn button(&self) -> CuffButton {
        self.button.clone()
    }

    /// Sets the device clock (its Current Time) to `time` before the cuff is served, as an
    /// earlier gateway or the user would have: a clock hours wrong gives measurements stamped
    /// hours off. Without it the clock is unset at start. Fails for a time the firmware refuses
    /// (a year outside 2000..=2135, an unknown date).
    pub fn with_device_clock(mut self, time: &DateTime) -> Result<Self, DeviceFault> {
        self.device_clock = Some(clock_value(time)?);
        Ok(self)
    }

    /// Starts the firmware on its thread.
    pub fn spawn(self) -> Result<ThreadedDevice, DeviceFault> {
        let advertisement = Advertisement {
            address: self.address.clone(),
            name: "RS-CUFF".to_owned(),
            service_uuids: vec![sig_uuid(uuid::BLOOD_PRESSURE_SERVICE)],
            service_data: HashMap::new(),
            manufacturer_data: HashMap::new(),
            rssi: -58,
        };
        ThreadedDevice::spawn(advertisement, &TABLE, false, move |requests| {
            run(self, requests);
        })
    }
}

fn fault<E: core::fmt::Debug>(what: &str) -> impl FnOnce(E) -> DeviceFault + '_ {
    move |e| DeviceFault(format!("{what}: {e:?}"))
}

/// Builds the board and the firmware on this thread, then serves the simulator.
fn run(config: CuffSim, requests: Requests) {
    let clock = SimClock::new();
    let sim = RefCell::new(Cuff::new(
        &clock,
        config.subject,
        CuffConfig::default(),
        config.seed,
    ));
    let chip = RefCell::new(Hx71x::new(&clock, PressureSensor(&sim), ADC_RATE_HZ));
    #[allow(clippy::cast_possible_truncation)]
    let cycle = CycleConfig::new(COUNTS_PER_MMHG as f32);
    let built = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .map_err(fault("HX711"))
    .and_then(|adc| {
        BloodPressureCuff::new(adc, PumpPin(&sim), ValvePin(&sim), cycle).map_err(fault("cuff"))
    });
    match built {
        Ok(cuff) => {
            let mut board = Board {
                clock: &clock,
                device: CuffDevice::new(cuff),
                speed: config.speed,
                button: config.button,
            };
            if let Some(value) = config.device_clock
                && let Err(e) = set_clock(&TABLE, &value, |event| board.handle(event))
            {
                requests.serve(&mut Broken(e));
                return;
            }
            requests.serve(&mut board);
        }
        Err(e) => requests.serve(&mut Broken(e)),
    }
}

struct Board<'c, C, D, L, P, V> {
    clock: &'c SimClock,
    device: CuffDevice<C, D, L, P, V>,
    speed: u64,
    button: CuffButton,
}

impl<C, D, L, P, V> Firmware for Board<'_, C, D, L, P, V>
where
    C: OutputPin,
    D: InputPin,
    L: DelayNs,
    P: OutputPin,
    V: OutputPin,
{
    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        self.device
            .handle(event)
            .map(|a| a.into_iter().collect())
            .map_err(|e| DeviceFault(format!("cuff: {e:?}")))
    }

    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        if let Some(user_id) = self.button.take() {
            self.device
                .start(self.clock.now_ms(), user_id)
                .map_err(|e| DeviceFault(format!("cuff start: {e:?}")))?;
        }
        let target = now_ms.saturating_mul(self.speed);
        let mut actions = Vec::new();
        while self.clock.now_ms() < target {
            self.clock.advance_ms(STEP_MS);
            let out = self
                .device
                .poll(self.clock.now_ms())
                .map_err(|e| DeviceFault(format!("cuff: {e:?}")))?;
            actions.extend(out);
        }
        Ok(actions)
    }
}

/// Firmware that failed to build: every request reports why.
struct Broken(DeviceFault);

impl Firmware for Broken {
    fn handle(&mut self, _event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        Err(self.0.clone())
    }

    fn poll(&mut self, _now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        Err(self.0.clone())
    }
}
