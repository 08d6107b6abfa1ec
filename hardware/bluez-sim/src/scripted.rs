//! Scripted devices for the profiles no reference firmware implements: a GATT table, values to
//! read, and a script of notifications/indications (bytes built with the `relais-protocol`
//! encoders) sent in order once the central subscribes, indications one at a time, each after
//! the previous one's confirmation.

use std::collections::{HashMap, HashSet, VecDeque};

use relais_firmware::devices::FIRST_HANDLE;
use relais_firmware::gatt::{
    Action, AttError, AttributeKind, Characteristic as GattCharacteristic, ConnId, Event, Handle,
    Properties, Service, Table, Uuid, Value, WriteKind,
};
use relais_firmware::gatt_table;
use relais_protocol::body_composition::BodyCompositionMeasurement;
use relais_protocol::weight_scale::{
    HeightResolution, WeightMeasurement, WeightResolution, WeightScaleFeature,
};
use relais_protocol::{Characteristic, DateTime, MedValue, Quantity, Quirks, Unit, uuid};

use crate::device::{Advertisement, VirtualDevice, sig_uuid};
use crate::error::DeviceFault;

/// Health Thermometer: Temperature Measurement (indicate).
pub const THERMOMETER_TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[Service::primary(
        Uuid::sig(uuid::HEALTH_THERMOMETER_SERVICE),
        &[GattCharacteristic::new(
            Uuid::sig(uuid::TEMPERATURE_MEASUREMENT),
            Properties::INDICATE
        )]
    )]
);

/// Pulse Oximeter: PLX Spot-check Measurement (indicate).
pub const PULSE_OXIMETER_TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[Service::primary(
        Uuid::sig(uuid::PULSE_OXIMETER_SERVICE),
        &[GattCharacteristic::new(
            Uuid::sig(uuid::PLX_SPOT_CHECK_MEASUREMENT),
            Properties::INDICATE
        )]
    )]
);

/// Blood Pressure: Blood Pressure Measurement (indicate), for scripted (quirky) cuffs.
pub const BLOOD_PRESSURE_TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[Service::primary(
        Uuid::sig(uuid::BLOOD_PRESSURE_SERVICE),
        &[GattCharacteristic::new(
            Uuid::sig(uuid::BLOOD_PRESSURE_MEASUREMENT),
            Properties::INDICATE
        )]
    )]
);

/// Continuous Glucose Monitoring: CGM Measurement (notify), CGM Session Start Time (read).
pub const CGM_TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[Service::primary(
        Uuid::sig(uuid::CONTINUOUS_GLUCOSE_MONITORING_SERVICE),
        &[
            GattCharacteristic::new(Uuid::sig(uuid::CGM_MEASUREMENT), Properties::NOTIFY),
            GattCharacteristic::new(Uuid::sig(uuid::CGM_SESSION_START_TIME), Properties::READ)
        ]
    )]
);

/// Weight Scale: Weight Scale Feature (read), Weight Measurement (indicate).
pub const WEIGHT_SCALE_TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[Service::primary(
        Uuid::sig(uuid::WEIGHT_SCALE_SERVICE),
        &[
            GattCharacteristic::new(Uuid::sig(uuid::WEIGHT_SCALE_FEATURE), Properties::READ),
            GattCharacteristic::new(Uuid::sig(uuid::WEIGHT_MEASUREMENT), Properties::INDICATE)
        ]
    )]
);

/// A body composition scale: Weight Scale (Feature read, Measurement indicate) and Body
/// Composition (Feature read, Measurement indicate).
pub const BODY_COMPOSITION_SCALE_TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[
        Service::primary(
            Uuid::sig(uuid::WEIGHT_SCALE_SERVICE),
            &[
                GattCharacteristic::new(Uuid::sig(uuid::WEIGHT_SCALE_FEATURE), Properties::READ),
                GattCharacteristic::new(Uuid::sig(uuid::WEIGHT_MEASUREMENT), Properties::INDICATE)
            ]
        ),
        Service::primary(
            Uuid::sig(uuid::BODY_COMPOSITION_SERVICE),
            &[
                GattCharacteristic::new(
                    Uuid::sig(uuid::BODY_COMPOSITION_FEATURE),
                    Properties::READ
                ),
                GattCharacteristic::new(
                    Uuid::sig(uuid::BODY_COMPOSITION_MEASUREMENT),
                    Properties::INDICATE
                )
            ]
        )
    ]
);

/// A characteristic of a scripted table: its value handle and properties.
#[derive(Debug, Clone, Copy)]
struct Entry {
    value_handle: Handle,
    properties: Properties,
}

/// A device without firmware: fixed readable values and a script of values to send.
#[derive(Debug)]
pub struct ScriptedDevice {
    advertisement: Advertisement,
    table: &'static Table,
    chars: HashMap<u16, Entry>,
    readable: HashMap<Handle, Vec<u8>>,
    script: VecDeque<(Handle, Vec<u8>)>,
    subscribed: HashSet<Handle>,
    conn: Option<ConnId>,
    awaiting_confirmation: bool,
}

impl ScriptedDevice {
    /// A device at `address` named `name`, advertising `service`, serving `table`.
    pub fn new(address: &str, name: &str, service: u16, table: &'static Table) -> Self {
        let chars = table
            .attributes()
            .filter_map(|a| match a.kind {
                AttributeKind::CharacteristicDeclaration {
                    characteristic,
                    value_handle,
                } => match characteristic.uuid {
                    Uuid::Sig(short) => Some((
                        short,
                        Entry {
                            value_handle,
                            properties: characteristic.properties,
                        },
                    )),
                    Uuid::Vendor(_) => None,
                },
                _ => None,
            })
            .collect();
        Self {
            advertisement: Advertisement {
                address: address.to_owned(),
                name: name.to_owned(),
                service_uuids: vec![sig_uuid(service)],
                service_data: HashMap::new(),
                manufacturer_data: HashMap::new(),
                rssi: -65,
            },
            table,
            chars,
            readable: HashMap::new(),
            script: VecDeque::new(),
            subscribed: HashSet::new(),
            conn: None,
            awaiting_confirmation: false,
        }
    }

    /// A thermometer (0x1809) whose script is Temperature Measurement indications.
    pub fn thermometer(address: &str) -> Self {
        Self::new(
            address,
            "RS-THERMO",
            uuid::HEALTH_THERMOMETER_SERVICE,
            &THERMOMETER_TABLE,
        )
    }

    /// A pulse oximeter (0x1822) whose script is PLX Spot-check Measurement indications.
    pub fn pulse_oximeter(address: &str) -> Self {
        Self::new(
            address,
            "RS-OXIMETER",
            uuid::PULSE_OXIMETER_SERVICE,
            &PULSE_OXIMETER_TABLE,
        )
    }

    /// A blood-pressure cuff (0x1810) whose script is Blood Pressure Measurement
    /// indications; with [`ScriptedDevice::with_quirks`] and
    /// `Quirks { beurer_big_endian_pulse_status: true, .. }` it sends what a Beurer BM cuff
    /// does (big-endian pulse rate and status, a stray user byte).
    pub fn blood_pressure(address: &str) -> Self {
        Self::new(
            address,
            "BM54",
            uuid::BLOOD_PRESSURE_SERVICE,
            &BLOOD_PRESSURE_TABLE,
        )
    }

    /// A CGM (0x181F) whose script is CGM Measurement notifications; give it a readable
    /// Session Start Time with [`ScriptedDevice::with_value`].
    pub fn cgm(address: &str) -> Self {
        Self::new(
            address,
            "RS-CGM",
            uuid::CONTINUOUS_GLUCOSE_MONITORING_SERVICE,
            &CGM_TABLE,
        )
    }

    /// A weight scale (0x181D) whose script is Weight Measurement indications; give it a
    /// readable Weight Scale Feature with [`ScriptedDevice::with_value`].
    pub fn weight_scale(address: &str) -> Self {
        Self::new(
            address,
            "RS-WEIGHT",
            uuid::WEIGHT_SCALE_SERVICE,
            &WEIGHT_SCALE_TABLE,
        )
    }

    /// A body composition scale advertising Body Composition (0x181B) and Weight Scale
    /// (0x181D); script its weighings with [`ScriptedDevice::with_weighing`] and
    /// [`ScriptedDevice::with_split_weighing`], its features with [`ScriptedDevice::with_value`].
    pub fn body_composition_scale(address: &str) -> Self {
        Self::new(
            address,
            "RS-BODY",
            uuid::BODY_COMPOSITION_SERVICE,
            &BODY_COMPOSITION_SCALE_TABLE,
        )
        .with_advertised_service(uuid::WEIGHT_SCALE_SERVICE)
    }

    /// A weight scale that lies: its Weight Scale Feature claims time stamps, BMI and height
    /// (0.05 kg, 0.01 m) but its script is, in order,
    /// 1. a Weight Measurement of 72.4 kg with a time stamp, without BMI and height;
    /// 2. a truncated one: flags announce a time stamp, the bytes stop after its year (5 bytes);
    /// 3. garbage: a time stamp of month 13, day 32, 25 h;
    /// 4. a Weight Measurement of 72.6 kg like the first.
    pub fn lying_weight_scale(address: &str) -> Result<Self, DeviceFault> {
        let feature = WeightScaleFeature {
            time_stamp_supported: true,
            multiple_users_supported: false,
            bmi_supported: true,
            weight_resolution: WeightResolution::Kg0_05OrLb0_1,
            height_resolution: HeightResolution::M0_01OrIn1,
        };
        let at =
            |hour| DateTime::new(2024, 3, 1, hour, 0, 0).ok_or_else(|| DeviceFault("date".into()));
        let weighing = |decigrams: i64, hour| -> Result<WeightMeasurement, DeviceFault> {
            Ok(WeightMeasurement {
                weight: Quantity::new(MedValue::number(decigrams, -1), Unit::Kilogram),
                time_stamp: Some(at(hour)?),
                user_id: None,
                bmi: None,
                height: None,
            })
        };
        let whole = encode(&weighing(724, 7)?, Quirks::NONE)?;
        let truncated = whole.get(..5).unwrap_or_default().to_vec();
        // Flags: time stamp; 72.4 kg (0.005 kg steps); 2024, month 13, day 32, 25:00:00.
        let [w0, w1] = 14_480u16.to_le_bytes();
        let [y0, y1] = 2024u16.to_le_bytes();
        let garbage = [0x02, w0, w1, y0, y1, 13, 32, 25, 0, 0];
        Self::new(
            address,
            "RS-LIAR",
            uuid::WEIGHT_SCALE_SERVICE,
            &WEIGHT_SCALE_TABLE,
        )
        .with_value(&feature)?
        .with_raw(uuid::WEIGHT_MEASUREMENT, &whole)?
        .with_raw(uuid::WEIGHT_MEASUREMENT, &truncated)?
        .with_raw(uuid::WEIGHT_MEASUREMENT, &garbage)?
        .with(&weighing(726, 8)?)
    }

    /// Also advertises `service` (16-bit SIG UUID).
    pub fn with_advertised_service(mut self, service: u16) -> Self {
        self.advertisement.service_uuids.push(sig_uuid(service));
        self
    }

    /// Adds one weighing of a body composition scale: its Weight Measurement indication, then
    /// its Body Composition Measurement indication.
    pub fn with_weighing(
        self,
        weight: &WeightMeasurement,
        body: &BodyCompositionMeasurement,
    ) -> Result<Self, DeviceFault> {
        self.with(weight)?.with(body)
    }

    /// Adds one weighing whose Body Composition Measurement is split in two indications with
    /// the Multiple Packet Measurement flag: the first carries the body fat percentage, time
    /// stamp, user ID and the first half of the optional fields, flag set; the second the body
    /// fat percentage and the rest, flag clear. Both follow the Weight Measurement.
    pub fn with_split_weighing(
        self,
        weight: &WeightMeasurement,
        body: &BodyCompositionMeasurement,
    ) -> Result<Self, DeviceFault> {
        let (first, second) = split(body);
        self.with(weight)?.with(&first)?.with(&second)
    }

    fn entry(&self, characteristic: u16) -> Result<Entry, DeviceFault> {
        self.chars.get(&characteristic).copied().ok_or_else(|| {
            DeviceFault(format!(
                "no characteristic {characteristic:04x} in the table"
            ))
        })
    }

    /// Adds `bytes` to the script of the characteristic `characteristic` (16-bit SIG UUID),
    /// sent once the central subscribes to it.
    pub fn with_raw(mut self, characteristic: u16, bytes: &[u8]) -> Result<Self, DeviceFault> {
        let entry = self.entry(characteristic)?;
        if !entry.properties.is_subscribable() {
            return Err(DeviceFault(format!(
                "{characteristic:04x} neither notifies nor indicates"
            )));
        }
        self.script.push_back((entry.value_handle, bytes.to_vec()));
        Ok(self)
    }

    /// Adds `value`, encoded by `relais-protocol`, to the script of its characteristic.
    pub fn with<C: Characteristic>(self, value: &C) -> Result<Self, DeviceFault> {
        self.with_quirks(value, Quirks::NONE)
    }

    /// Adds `value`, encoded with a vendor's deviations (`quirks`), to the script.
    pub fn with_quirks<C: Characteristic>(
        self,
        value: &C,
        quirks: Quirks,
    ) -> Result<Self, DeviceFault> {
        let bytes = encode(value, quirks)?;
        self.with_raw(C::UUID, &bytes)
    }

    /// Makes the characteristic of `value` readable with `value`'s encoding.
    pub fn with_value<C: Characteristic>(mut self, value: &C) -> Result<Self, DeviceFault> {
        let bytes = encode(value, Quirks::NONE)?;
        let entry = self.entry(C::UUID)?;
        self.readable.insert(entry.value_handle, bytes);
        Ok(self)
    }

    /// Makes the characteristic `characteristic` readable with `bytes`.
    pub fn with_raw_value(
        mut self,
        characteristic: u16,
        bytes: &[u8],
    ) -> Result<Self, DeviceFault> {
        let entry = self.entry(characteristic)?;
        self.readable.insert(entry.value_handle, bytes.to_vec());
        Ok(self)
    }

    /// What is left to send.
    pub fn pending(&self) -> usize {
        self.script.len()
    }

    /// The characteristic whose CCCD lives at `handle` (the value handle + 1).
    fn cccd_of(&self, handle: Handle) -> Option<Handle> {
        let value_handle = Handle(handle.0.checked_sub(1)?);
        self.chars
            .values()
            .any(|e| e.value_handle == value_handle && e.properties.is_subscribable())
            .then_some(value_handle)
    }
}

/// Two packets of a multiple-packet Body Composition Measurement (see
/// [`ScriptedDevice::with_split_weighing`]).
fn split(
    body: &BodyCompositionMeasurement,
) -> (BodyCompositionMeasurement, BodyCompositionMeasurement) {
    let mut first = BodyCompositionMeasurement {
        multiple_packet_measurement: true,
        ..*body
    };
    let mut second = BodyCompositionMeasurement {
        time_stamp: None,
        user_id: None,
        multiple_packet_measurement: false,
        ..*body
    };
    // The optional fields in wire order: the first packet keeps those before the middle, the
    // second the others.
    let fields: [(&mut Option<Quantity>, &mut Option<Quantity>); 9] = [
        (&mut first.basal_metabolism, &mut second.basal_metabolism),
        (&mut first.muscle_percentage, &mut second.muscle_percentage),
        (&mut first.muscle_mass, &mut second.muscle_mass),
        (&mut first.fat_free_mass, &mut second.fat_free_mass),
        (&mut first.soft_lean_mass, &mut second.soft_lean_mass),
        (&mut first.body_water_mass, &mut second.body_water_mass),
        (&mut first.impedance, &mut second.impedance),
        (&mut first.weight, &mut second.weight),
        (&mut first.height, &mut second.height),
    ];
    let present = fields.iter().filter(|(a, _)| a.is_some()).count();
    let mut seen = 0;
    for (a, b) in fields {
        if a.is_none() {
            continue;
        }
        if seen < present.div_ceil(2) {
            *b = None;
        } else {
            *a = None;
        }
        seen += 1;
    }
    (first, second)
}

fn encode<C: Characteristic>(value: &C, quirks: Quirks) -> Result<Vec<u8>, DeviceFault> {
    // Room for a quirk's extra bytes (a stray user byte).
    let mut out = vec![0u8; C::MAX_LEN.saturating_add(4)];
    let n = value
        .encode_with(&mut out, quirks)
        .map_err(|e| DeviceFault(format!("encode {}: {e:?}", C::NAME)))?;
    Ok(out.get(..n).unwrap_or_default().to_vec())
}

fn value(bytes: &[u8]) -> Result<Value, DeviceFault> {
    Value::from_slice(bytes).map_err(|_| DeviceFault("value too long".into()))
}

fn respond(conn: ConnId, result: Result<&[u8], AttError>) -> Result<Vec<Action>, DeviceFault> {
    let result = match result {
        Ok(bytes) => Ok(value(bytes)?),
        Err(e) => Err(e),
    };
    Ok(vec![Action::Respond { conn, result }])
}

impl VirtualDevice for ScriptedDevice {
    fn advertisement(&self) -> &Advertisement {
        &self.advertisement
    }

    fn table(&self) -> &'static Table {
        self.table
    }

    fn initially_paired(&self) -> bool {
        false
    }

    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        match event {
            Event::Connected { conn, .. } => {
                self.conn = Some(conn);
                Ok(Vec::new())
            }
            Event::Disconnected { .. } => {
                self.conn = None;
                self.subscribed.clear();
                self.awaiting_confirmation = false;
                Ok(Vec::new())
            }
            Event::IndicationConfirmed { .. } => {
                self.awaiting_confirmation = false;
                Ok(Vec::new())
            }
            Event::Read {
                conn,
                handle,
                offset,
            } => {
                let cccd;
                let bytes: Option<&[u8]> = if let Some(v) = self.readable.get(&handle) {
                    Some(v)
                } else if let Some(value_handle) = self.cccd_of(handle) {
                    cccd = [u8::from(self.subscribed.contains(&value_handle)), 0];
                    Some(&cccd)
                } else {
                    None
                };
                match bytes {
                    Some(b) => match b.get(usize::from(offset)..) {
                        Some(rest) => respond(conn, Ok(rest)),
                        None => respond(conn, Err(AttError::InvalidOffset)),
                    },
                    None => respond(conn, Err(AttError::ReadNotPermitted)),
                }
            }
            Event::Write {
                conn,
                handle,
                data,
                kind,
            } => {
                let result = match self.cccd_of(handle) {
                    Some(value_handle) => {
                        if data.first().is_some_and(|b| b & 0x03 != 0) {
                            self.subscribed.insert(value_handle);
                        } else {
                            self.subscribed.remove(&value_handle);
                        }
                        Ok(&[][..])
                    }
                    None => Err(AttError::WriteNotPermitted),
                };
                match kind {
                    WriteKind::Request => respond(conn, result),
                    WriteKind::Command => Ok(Vec::new()),
                }
            }
            _ => Ok(Vec::new()),
        }
    }

    fn poll(&mut self, _now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        let Some(conn) = self.conn else {
            return Ok(Vec::new());
        };
        if self.awaiting_confirmation {
            return Ok(Vec::new());
        }
        let Some((handle, _)) = self.script.front() else {
            return Ok(Vec::new());
        };
        let handle = *handle;
        if !self.subscribed.contains(&handle) {
            return Ok(Vec::new());
        }
        let indicate = self
            .chars
            .values()
            .any(|e| e.value_handle == handle && !e.properties.contains(Properties::NOTIFY));
        let Some((_, bytes)) = self.script.pop_front() else {
            return Ok(Vec::new());
        };
        let value = value(&bytes)?;
        if indicate {
            self.awaiting_confirmation = true;
            Ok(vec![Action::Indicate {
                conn,
                handle,
                value,
            }])
        } else {
            Ok(vec![Action::Notify {
                conn,
                handle,
                value,
            }])
        }
    }
}
