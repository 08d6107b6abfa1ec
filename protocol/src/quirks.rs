//! Vendor deviations from the SIG specifications. Each is a named option that the user or the
//! device database turns on; none is ever guessed from the bytes.

/// The deviations a decoder or a session may have to tolerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Quirks {
    /// Beurer BM-series cuffs: Pulse Rate and Measurement Status are big-endian, and a user-ID
    /// byte is appended even when the flags do not announce one.
    pub beurer_big_endian_pulse_status: bool,
    /// Omron: Current Time reports day of week 0 on a known date; take the weekday from the date.
    pub omron_day_of_week_zero: bool,
    /// Roche meters: the device clock is set through Date Time (0x2A08), not Current Time.
    pub roche_date_time_clock: bool,
    /// Meters whose sequence numbers decrease for newer records (TaiDoc DM30b class).
    pub reversed_sequence_numbers: bool,
    /// CareSens meters: a context Meal of 0x06 (reserved) marks a blood ketone reading.
    pub ketone_meal_code: bool,
}

/// A quirk's name on the command line and in configuration, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct QuirkInfo {
    pub name: &'static str,
    pub description: &'static str,
    set: fn(&mut Quirks),
}

impl Quirks {
    pub const NONE: Quirks = Quirks {
        beurer_big_endian_pulse_status: false,
        omron_day_of_week_zero: false,
        roche_date_time_clock: false,
        reversed_sequence_numbers: false,
        ketone_meal_code: false,
    };

    pub const KNOWN: &'static [QuirkInfo] = &[
        QuirkInfo {
            name: "beurer-big-endian-pulse-status",
            description: "Beurer BM cuffs: big-endian Pulse Rate and Measurement Status, stray user-ID byte",
            set: |q| q.beurer_big_endian_pulse_status = true,
        },
        QuirkInfo {
            name: "omron-day-of-week-zero",
            description: "Omron: Current Time day of week 0 on a known date; weekday taken from the date",
            set: |q| q.omron_day_of_week_zero = true,
        },
        QuirkInfo {
            name: "roche-date-time-clock",
            description: "Roche meters: clock set through Date Time (0x2A08) instead of Current Time",
            set: |q| q.roche_date_time_clock = true,
        },
        QuirkInfo {
            name: "reversed-sequence-numbers",
            description: "Meters whose glucose sequence numbers decrease for newer records",
            set: |q| q.reversed_sequence_numbers = true,
        },
        QuirkInfo {
            name: "ketone-meal-code",
            description: "CareSens meters: glucose context Meal 0x06 marks a blood ketone reading",
            set: |q| q.ketone_meal_code = true,
        },
    ];

    /// Turns on the quirk called `name`; `false` if no quirk has that name.
    pub fn enable(&mut self, name: &str) -> bool {
        match Self::KNOWN.iter().find(|q| q.name == name) {
            Some(info) => {
                (info.set)(self);
                true
            }
            None => false,
        }
    }

    /// The characteristic a session writes to set the device clock.
    pub const fn clock_characteristic(&self) -> u16 {
        if self.roche_date_time_clock {
            crate::uuid::DATE_TIME
        } else {
            crate::uuid::CURRENT_TIME
        }
    }
}
