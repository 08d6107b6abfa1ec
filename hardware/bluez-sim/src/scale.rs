//! The reference scale of `relais-firmware` as a virtual device: HX711 and load cell of the
//! simulated board, on simulated time that runs `speed` times faster than the wall clock.

use std::cell::RefCell;
use std::collections::HashMap;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use relais_board_sim::SimClock;
use relais_board_sim::hx71x::{ClockPin, DataPin, Hx71x};
use relais_board_sim::load_cell::LoadCell;
use relais_firmware::devices::scale::{ScaleDevice, TABLE};
use relais_firmware::drivers::hx711::{Gain, Hx711};
use relais_firmware::gatt::{Action, Event};
use relais_firmware::scale::{Calibration, RamOnly, Scale, WeighingArchive};
use relais_protocol::{DateTime, uuid};

use crate::device::{Advertisement, clock_value, set_clock, sig_uuid};
use crate::error::DeviceFault;
use crate::threaded::{Firmware, ThreadedDevice};

/// The scale's main loop period, in simulated milliseconds (faster than the ADC's 10 Hz).
const STEP_MS: u64 = 5;
/// HX711 output rate.
const ADC_RATE_HZ: u32 = 10;

/// Someone on the scale: from `on_ms` to `off_ms` (simulated), `mass_kg`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighing {
    /// When they step on.
    pub on_ms: u64,
    /// When they step off.
    pub off_ms: u64,
    /// Their mass.
    pub mass_kg: f64,
}

/// Builds scale devices.
#[derive(Debug, Clone)]
pub struct ScaleSim {
    address: String,
    seed: u64,
    weighings: Vec<Weighing>,
    /// From each of these simulated times on, the scale's selected user (a household's scale
    /// knows who stands on it).
    users: Vec<(u64, u8)>,
    speed: u64,
    before_start_ms: u64,
    /// The Current Time written before it is served.
    device_clock: Option<[u8; 10]>,
}

impl ScaleSim {
    /// A scale at `address` with an empty platform, simulated time at wall-clock speed.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            seed: 11,
            weighings: Vec::new(),
            users: Vec::new(),
            speed: 1,
            before_start_ms: 0,
            device_clock: None,
        }
    }

    /// Someone steps on and off.
    pub fn with_weighing(mut self, weighing: Weighing) -> Self {
        self.weighings.push(weighing);
        self
    }

    /// Someone the scale knows as user `user` (0 to 3) steps on and off: the measurement
    /// carries that user index.
    pub fn with_user_weighing(mut self, user: u8, weighing: Weighing) -> Self {
        self.users.push((weighing.on_ms, user));
        self.users.sort_by_key(|&(on_ms, _)| on_ms);
        self.with_weighing(weighing)
    }

    /// Simulated time runs `speed` times faster than the wall clock.
    pub fn with_speed(mut self, speed: u64) -> Self {
        self.speed = speed.max(1);
        self
    }

    /// Runs the scale alone (no gateway) for `ms` simulated milliseconds before it is served,
    /// so weighings taken offline wait in its queue.
    pub fn run_before_start(mut self, ms: u64) -> Self {
        self.before_start_ms = ms;
        self
    }

    /// Sets the device clock (its Current Time) to `time` before the scale is served, as an
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
            name: "RS-SCALE".to_owned(),
            service_uuids: vec![sig_uuid(uuid::WEIGHT_SCALE_SERVICE)],
            service_data: HashMap::new(),
            manufacturer_data: HashMap::new(),
            rssi: -55,
        };
        // The scale needs no bond.
        ThreadedDevice::spawn(advertisement, &TABLE, false, move |requests| {
            run(self, requests);
        })
    }
}

fn fault<E: core::fmt::Debug>(what: &str) -> impl FnOnce(E) -> DeviceFault + '_ {
    move |e| DeviceFault(format!("{what}: {e:?}"))
}

/// Builds the board and the firmware on this thread, then serves the simulator.
fn run(config: ScaleSim, requests: crate::threaded::Requests) {
    let clock = SimClock::new();
    let mut cell = LoadCell::new(config.seed);
    for w in &config.weighings {
        // A scenario the load cell refuses leaves the platform empty for that weighing.
        let _ = cell.step_on(w.on_ms, w.mass_kg);
        let _ = cell.step_off(w.off_ms);
    }
    let chip = RefCell::new(Hx71x::new(&clock, cell, ADC_RATE_HZ));
    let built = Hx711::new(
        ClockPin(&chip),
        DataPin(&chip),
        clock.delay(),
        Gain::ChannelA128,
    )
    .map_err(fault("HX711"))
    .and_then(|adc| Scale::new(adc, Calibration::NOMINAL, RamOnly).map_err(fault("scale")));
    let mut firmware = match built {
        Ok(scale) => Board {
            clock: &clock,
            device: ScaleDevice::new(scale),
            speed: config.speed,
            offset_ms: 0,
            users: config.users.into_iter().collect(),
        },
        Err(e) => {
            requests.serve(&mut Broken(e));
            return;
        }
    };
    if let Some(value) = config.device_clock
        && let Err(e) = set_clock(&TABLE, &value, |event| firmware.handle(event))
    {
        requests.serve(&mut Broken(e));
        return;
    }
    // Offline time: what the scale sends then has no one to go to.
    let _ = firmware.advance_to(config.before_start_ms);
    firmware.offset_ms = config.before_start_ms;
    requests.serve(&mut firmware);
}

struct Board<'c, C, D, L, A> {
    clock: &'c SimClock,
    device: ScaleDevice<C, D, L, A>,
    speed: u64,
    /// Simulated time spent before the simulator started.
    offset_ms: u64,
    /// User selections still to make, by simulated time.
    users: std::collections::VecDeque<(u64, u8)>,
}

impl<C, D, L, A> Board<'_, C, D, L, A>
where
    C: OutputPin,
    D: InputPin,
    L: DelayNs,
    A: WeighingArchive,
    A::Error: core::fmt::Debug,
{
    fn advance_to(&mut self, target_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        let mut actions = Vec::new();
        while self.clock.now_ms() < target_ms {
            self.clock.advance_ms(STEP_MS);
            while let Some(&(from_ms, user)) = self.users.front()
                && from_ms <= self.clock.now_ms()
            {
                self.users.pop_front();
                self.device
                    .scale_mut()
                    .select_user(Some(user))
                    .map_err(|e| DeviceFault(format!("scale user {user}: {e:?}")))?;
            }
            let out = self
                .device
                .poll(self.clock.now_ms())
                .map_err(|e| DeviceFault(format!("scale: {e:?}")))?;
            actions.extend(out);
        }
        Ok(actions)
    }
}

impl<C, D, L, A> Firmware for Board<'_, C, D, L, A>
where
    C: OutputPin,
    D: InputPin,
    L: DelayNs,
    A: WeighingArchive,
    A::Error: core::fmt::Debug,
{
    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        self.device
            .handle(event)
            .map(|a| a.into_iter().collect())
            .map_err(|e| DeviceFault(format!("scale: {e:?}")))
    }

    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        let target = now_ms
            .saturating_mul(self.speed)
            .saturating_add(self.offset_ms);
        self.advance_to(target)
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
