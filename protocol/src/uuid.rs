//! 16-bit UUIDs of the SIG services and characteristics relais speaks.

// Services.
pub const GENERIC_ACCESS_SERVICE: u16 = 0x1800;
pub const CURRENT_TIME_SERVICE: u16 = 0x1805;
pub const GLUCOSE_SERVICE: u16 = 0x1808;
pub const HEALTH_THERMOMETER_SERVICE: u16 = 0x1809;
pub const DEVICE_INFORMATION_SERVICE: u16 = 0x180A;
pub const HEART_RATE_SERVICE: u16 = 0x180D;
pub const BLOOD_PRESSURE_SERVICE: u16 = 0x1810;
pub const BODY_COMPOSITION_SERVICE: u16 = 0x181B;
pub const WEIGHT_SCALE_SERVICE: u16 = 0x181D;
pub const CONTINUOUS_GLUCOSE_MONITORING_SERVICE: u16 = 0x181F;
pub const PULSE_OXIMETER_SERVICE: u16 = 0x1822;

// Characteristics.
pub const DATE_TIME: u16 = 0x2A08;
pub const LOCAL_TIME_INFORMATION: u16 = 0x2A0F;
pub const TEMPERATURE_MEASUREMENT: u16 = 0x2A1C;
pub const TEMPERATURE_TYPE: u16 = 0x2A1D;
pub const INTERMEDIATE_TEMPERATURE: u16 = 0x2A1E;
pub const MEASUREMENT_INTERVAL: u16 = 0x2A21;
pub const SYSTEM_ID: u16 = 0x2A23;
pub const MODEL_NUMBER_STRING: u16 = 0x2A24;
pub const SERIAL_NUMBER_STRING: u16 = 0x2A25;
pub const FIRMWARE_REVISION_STRING: u16 = 0x2A26;
pub const HARDWARE_REVISION_STRING: u16 = 0x2A27;
pub const SOFTWARE_REVISION_STRING: u16 = 0x2A28;
pub const MANUFACTURER_NAME_STRING: u16 = 0x2A29;
pub const REGULATORY_CERTIFICATION_DATA_LIST: u16 = 0x2A2A;
pub const CURRENT_TIME: u16 = 0x2A2B;
pub const GLUCOSE_MEASUREMENT_CONTEXT: u16 = 0x2A34;
pub const BLOOD_PRESSURE_MEASUREMENT: u16 = 0x2A35;
pub const INTERMEDIATE_CUFF_PRESSURE: u16 = 0x2A36;
pub const HEART_RATE_MEASUREMENT: u16 = 0x2A37;
pub const BODY_SENSOR_LOCATION: u16 = 0x2A38;
pub const GLUCOSE_MEASUREMENT: u16 = 0x2A18;
pub const BLOOD_PRESSURE_FEATURE: u16 = 0x2A49;
pub const PNP_ID: u16 = 0x2A50;
pub const GLUCOSE_FEATURE: u16 = 0x2A51;
pub const RECORD_ACCESS_CONTROL_POINT: u16 = 0x2A52;
pub const PLX_SPOT_CHECK_MEASUREMENT: u16 = 0x2A5E;
pub const PLX_CONTINUOUS_MEASUREMENT: u16 = 0x2A5F;
pub const PLX_FEATURES: u16 = 0x2A60;
pub const BODY_COMPOSITION_FEATURE: u16 = 0x2A9B;
pub const BODY_COMPOSITION_MEASUREMENT: u16 = 0x2A9C;
pub const WEIGHT_MEASUREMENT: u16 = 0x2A9D;
pub const WEIGHT_SCALE_FEATURE: u16 = 0x2A9E;
pub const CGM_MEASUREMENT: u16 = 0x2AA7;
pub const CGM_FEATURE: u16 = 0x2AA8;
pub const CGM_STATUS: u16 = 0x2AA9;
pub const CGM_SESSION_START_TIME: u16 = 0x2AAA;
pub const CGM_SESSION_RUN_TIME: u16 = 0x2AAB;
pub const CGM_SPECIFIC_OPS_CONTROL_POINT: u16 = 0x2AAC;

/// The Bluetooth Base UUID with a 16-bit UUID in place: `0000xxxx-0000-1000-8000-00805f9b34fb`.
pub const fn to_u128(short: u16) -> u128 {
    ((short as u128) << 96) | 0x0000_0000_0000_1000_8000_0080_5f9b_34fb
}

/// The 16-bit form of a UUID built on the Bluetooth Base UUID, else `None`.
pub const fn from_u128(uuid: u128) -> Option<u16> {
    let base = uuid & !(0xFFFF_FFFFu128 << 96);
    if base == 0x0000_0000_0000_1000_8000_0080_5f9b_34fb && uuid >> 112 == 0 {
        Some((uuid >> 96) as u16)
    } else {
        None
    }
}
