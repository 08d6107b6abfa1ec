//! The check every fuzz target runs: decoding arbitrary bytes never panics, and whatever decodes
//! encodes back to bytes that decode to the same value.

use relais_protocol::{Characteristic, EncodeError, Quirks};

/// Quirk sets tried on every input: none, and each decoding quirk alone.
pub const QUIRK_SETS: [Quirks; 3] = [
    Quirks::NONE,
    Quirks {
        beurer_big_endian_pulse_status: true,
        ..Quirks::NONE
    },
    Quirks {
        omron_day_of_week_zero: true,
        ketone_meal_code: true,
        ..Quirks::NONE
    },
];

/// Decoding never panics; whatever decodes re-encodes to bytes that decode to the same value.
pub fn check<T: Characteristic + PartialEq + core::fmt::Debug>(data: &[u8]) {
    for quirks in QUIRK_SETS {
        let Ok(decoded) = T::decode_with(data, quirks) else {
            continue;
        };
        let mut buf = [0u8; 1024];
        match decoded.value.encode_with(&mut buf, quirks) {
            Ok(n) => {
                let again = T::decode_with(&buf[..n], quirks)
                    .unwrap_or_else(|e| panic!("re-decoding {:02x?} failed: {e}", &buf[..n]));
                assert_eq!(again.value, decoded.value, "value changed through encode");
                assert_eq!(again.trailing, 0);
            }
            // Some decoded values carry codes the specification reserves; encoders refuse to
            // emit those, by design.
            Err(EncodeError::Unrepresentable { .. }) => {}
            Err(e) => panic!("encoding a decoded value failed: {e}"),
        }
    }
}

/// `check`, and the readings of whatever decodes are computed too (unit conversions included).
pub fn check_measurement<T>(data: &[u8])
where
    T: Characteristic + relais_protocol::ToReadings + PartialEq + core::fmt::Debug,
{
    check::<T>(data);
    for quirks in QUIRK_SETS {
        if let Ok(decoded) = T::decode_with(data, quirks) {
            let _ = decoded.value.readings();
        }
    }
}

/// Decoders outside the `Characteristic` trait follow the same rule: no panic, and a value that
/// decodes survives encode -> decode unchanged.
macro_rules! roundtrip {
    ($data:expr, $decode:expr, $encode:expr) => {{
        if let Ok(decoded) = $decode($data) {
            let mut buf = [0u8; 64];
            if let Ok(n) = $encode(&decoded.value, &mut buf[..]) {
                let again = $decode(&buf[..n]).expect("re-decoding an encoded value");
                assert_eq!(again.value, decoded.value, "value changed through encode");
            }
        }
    }};
}

pub fn date_time(data: &[u8]) {
    use relais_protocol::time::DateTime;
    roundtrip!(data, DateTime::decode, |v: &DateTime, b: &mut [u8]| v
        .encode(b));
}

pub fn current_time(data: &[u8]) {
    use relais_protocol::time::CurrentTime;
    for quirks in QUIRK_SETS {
        roundtrip!(
            data,
            |d| CurrentTime::decode_with(d, quirks),
            |v: &CurrentTime, b: &mut [u8]| v.encode(b)
        );
    }
}

pub fn local_time_information(data: &[u8]) {
    use relais_protocol::time::LocalTimeInformation;
    roundtrip!(
        data,
        LocalTimeInformation::decode,
        |v: &LocalTimeInformation, b: &mut [u8]| v.encode(b)
    );
}

pub fn mi_smart_scale(data: &[u8]) {
    use relais_protocol::ToReadings;
    use relais_protocol::xiaomi::MiSmartScale;
    if let Ok(d) = MiSmartScale::decode(data) {
        let _ = d.value.readings();
    }
    roundtrip!(
        data,
        MiSmartScale::decode,
        |v: &MiSmartScale, b: &mut [u8]| v.encode(b)
    );
}

pub fn mi_body_composition_scale(data: &[u8]) {
    use relais_protocol::ToReadings;
    use relais_protocol::xiaomi::MiBodyCompositionScale;
    if let Ok(d) = MiBodyCompositionScale::decode(data) {
        let _ = d.value.readings();
    }
    roundtrip!(
        data,
        MiBodyCompositionScale::decode,
        |v: &MiBodyCompositionScale, b: &mut [u8]| v.encode(b)
    );
}

/// The server side of RACP: every write is either accepted as a request that re-encodes to
/// itself, or rejected with a response the server can indicate.
pub fn racp_server(data: &[u8]) {
    use relais_protocol::racp::{RacpRequest, Service};
    for service in [Service::Glucose, Service::ContinuousGlucoseMonitoring] {
        match RacpRequest::validate(data, service) {
            Ok(request) => {
                let mut buf = [0u8; 32];
                let n = request.encode(&mut buf).expect("a valid request encodes");
                assert_eq!(&buf[..n], data, "a valid request re-encodes byte for byte");
            }
            Err(rejection) => {
                let mut buf = [0u8; 8];
                rejection
                    .response()
                    .encode(&mut buf)
                    .expect("a rejection encodes");
            }
        }
    }
}
