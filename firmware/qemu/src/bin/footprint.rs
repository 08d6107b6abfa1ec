//! The footprint image: all three personalities with the GATT core and the record log, wired to
//! the board's pins and flash, with the main loop a product would have. There is no radio
//! stack: BLE events come from a mailbox a stack would fill, and the actions go to an outbox it
//! would drain, so every event and action path stays in the image. Its flash and static RAM use
//! are what `scripts/firmware.sh` reports; under QEMU it boots and idles.
#![no_std]
#![no_main]

use core::ptr;

use cortex_m_rt::entry;
use relais_firmware::cuff::{BloodPressureCuff, CycleConfig};
use relais_firmware::devices::DeviceActions;
use relais_firmware::devices::cuff::CuffDevice;
use relais_firmware::devices::glucose_meter::GlucoseMeterDevice;
use relais_firmware::devices::scale::ScaleDevice;
use relais_firmware::drivers::hx711::{Gain, Hx711};
use relais_firmware::gatt::{ConnId, Event, Handle, WriteKind};
use relais_firmware::glucose_meter::GlucoseMeter;
use relais_firmware::record_log::{RecordLog, WhenFull};
use relais_firmware::scale::{Calibration, CalibrationStore, Scale};
use relais_firmware_qemu::board::{BusyDelay, GPIO0, GPIO1, GpioPin, MemoryFlash};

/// NOR flash regions (on the nRF52840, the last pages of the internal flash).
const FLASH_BASE: usize = 0x2020_0000;
const PAGE: usize = 4096;
const CALIBRATION: usize = FLASH_BASE;
const WEIGHINGS: usize = FLASH_BASE + 2 * PAGE;
const GLUCOSE: usize = FLASH_BASE + 6 * PAGE;

/// Where a BLE stack would leave its next event, and where the actions go.
const MAILBOX: usize = 0x2030_0000;
const OUTBOX: usize = 0x2030_1000;

/// One event from the stack's mailbox: kind, device, connection, handle and up to 20 bytes.
struct Mail {
    kind: u8,
    device: u8,
    conn: u8,
    handle: u16,
    len: usize,
    data: [u8; 20],
}

fn take_mail() -> Option<Mail> {
    let read = |offset: usize| -> u8 {
        // SAFETY: the mailbox is RAM reserved for the stack; any byte value is valid.
        unsafe { ptr::read_volatile((MAILBOX + offset) as *const u8) }
    };
    let kind = read(0);
    if kind == 0 {
        return None;
    }
    let mut data = [0u8; 20];
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = read(8 + i);
    }
    // SAFETY: as above; writing 0 marks the mail as taken.
    unsafe { ptr::write_volatile(MAILBOX as *mut u8, 0) };
    Some(Mail {
        kind,
        device: read(1),
        conn: read(2),
        handle: u16::from_le_bytes([read(3), read(4)]),
        len: usize::from(read(5)).min(20),
        data,
    })
}

fn to_event(mail: &Mail) -> Event<'_> {
    let conn = ConnId(u16::from(mail.conn));
    match mail.kind {
        1 => Event::Connected { conn, bond: None },
        2 => Event::Disconnected { conn },
        3 => Event::Read {
            conn,
            handle: Handle(mail.handle),
            offset: 0,
        },
        4 => Event::Write {
            conn,
            handle: Handle(mail.handle),
            data: mail.data.get(..mail.len).unwrap_or_default(),
            kind: WriteKind::Request,
        },
        _ => Event::IndicationConfirmed { conn },
    }
}

/// `singleton!` runs once; a second run would be a bug in this file.
fn halt() -> ! {
    loop {
        cortex_m::asm::bkpt();
    }
}

fn post(actions: &DeviceActions) {
    for (i, action) in actions.iter().enumerate() {
        let tag = match action {
            relais_firmware::gatt::Action::Respond { .. } => 1,
            relais_firmware::gatt::Action::Notify { value, .. } => 2 + value.len() as u32,
            relais_firmware::gatt::Action::Indicate { value, .. } => 3 + value.len() as u32,
            relais_firmware::gatt::Action::Disconnect { .. } => 4,
        };
        // SAFETY: the outbox is RAM reserved for the stack.
        unsafe { ptr::write_volatile((OUTBOX + 4 * (i % 64)) as *mut u32, tag) };
    }
}

type Pin = GpioPin;
type Scale_ = ScaleDevice<Pin, Pin, BusyDelay, RecordLog<MemoryFlash>>;
type Cuff_ = CuffDevice<Pin, Pin, BusyDelay, Pin, Pin>;
type Glucose_ = GlucoseMeterDevice<MemoryFlash>;

#[entry]
fn main() -> ! {
    let delay = BusyDelay;
    let mut now_ms: u64 = 0;

    let calibration = CalibrationStore::new(MemoryFlash::new(CALIBRATION, 2 * PAGE), 0)
        .ok()
        .and_then(|mut store| store.load().ok().flatten())
        .unwrap_or(Calibration::NOMINAL);
    let weighings = RecordLog::mount(
        MemoryFlash::new(WEIGHINGS, 4 * PAGE),
        0..(4 * PAGE) as u32,
        WhenFull::DropOldest,
    );
    let scale_adc = Hx711::new(
        GpioPin::new(GPIO0, 2),
        GpioPin::new(GPIO0, 3),
        delay,
        Gain::ChannelA128,
    );
    // The devices live in statics (cortex-m's `singleton!`), as in a product: their state is
    // what the static RAM figure counts.
    let scale: &'static mut Option<Scale_> = match cortex_m::singleton!(: Option<Scale_> = match (scale_adc, weighings) {
        (Ok(adc), Ok(log)) => Scale::new(adc, calibration, log).ok().map(ScaleDevice::new),
        _ => None,
    }) {
        Some(s) => s,
        None => halt(),
    };

    let cuff_adc = Hx711::new(
        GpioPin::new(GPIO1, 0),
        GpioPin::new(GPIO1, 1),
        delay,
        Gain::ChannelA64,
    );
    let cuff: &'static mut Option<Cuff_> = match cortex_m::singleton!(: Option<Cuff_> = cuff_adc.ok().and_then(|adc| {
        BloodPressureCuff::new(
            adc,
            GpioPin::new(GPIO1, 2),
            GpioPin::new(GPIO1, 3),
            CycleConfig::new(20_000.0),
        )
        .ok()
        .map(CuffDevice::new)
    })) {
        Some(c) => c,
        None => halt(),
    };

    let glucose: &'static mut Option<Glucose_> = match cortex_m::singleton!(: Option<Glucose_> = RecordLog::mount(
        MemoryFlash::new(GLUCOSE, 8 * PAGE),
        0..(8 * PAGE) as u32,
        WhenFull::Refuse,
    )
    .ok()
    .map(|log| GlucoseMeterDevice::new(GlucoseMeter::new(log))))
    {
        Some(g) => g,
        None => halt(),
    };

    loop {
        now_ms += 5;
        if let Some(mail) = take_mail() {
            let event = to_event(&mail);
            let actions = match mail.device {
                0 => scale.as_mut().and_then(|d| d.handle(event).ok()),
                1 => cuff.as_mut().and_then(|d| d.handle(event).ok()),
                _ => glucose.as_mut().and_then(|d| d.handle(event).ok()),
            };
            if let Some(actions) = actions {
                post(&actions);
            }
            if mail.kind == 9 {
                if let Some(cuff) = cuff.as_mut() {
                    let _ = cuff.start(now_ms, None);
                }
            }
        }
        if let Some(actions) = scale.as_mut().and_then(|d| d.poll(now_ms).ok()) {
            post(&actions);
        }
        if let Some(actions) = cuff.as_mut().and_then(|d| d.poll(now_ms).ok()) {
            post(&actions);
        }
        if let Some(actions) = glucose.as_mut().and_then(|d| d.poll(now_ms).ok()) {
            post(&actions);
        }
        cortex_m::asm::delay(5 * 25_000);
    }
}
