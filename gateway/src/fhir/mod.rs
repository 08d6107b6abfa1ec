//! FHIR R4 for Mon espace santé (MES) API Mesure: a [`Reading`] in, one transaction Bundle
//! (one Observation, one conditionally created Device) or a typed reason it cannot be sent out.
//!
//! Pure: no I/O, no clock, no randomness. The caller passes the device identity, the household
//! member's pairing, the hub settings, the device clock skew and the reception time; the same
//! input always gives the same Bundle (ids are name-based, see [`bundle`]).
//!
//! The decisions where the reference (`mes-api-mesure.md`) is silent are documented where they
//! are made:
//! - per measure, codes, units, body sites, glucose moments and what is refused:
//!   [`observation`];
//! - numbers and rounding: [`units`]; time zones, DST gaps and folds, clock skew: [`time`];
//! - device identification and the `ifNoneExist` condition: [`device`], [`identifier`];
//! - CGM aggregates and their coverage rule: [`cgm`];
//! - profile URL generations: [`codes::ProfileFlavour`].
//!
//! Never half-valid: a reading MES would refuse, or that would need a made-up value (no date, no
//! body site, no manufacturer), yields an [`Unsendable`] instead of a Bundle. In particular a
//! reading without a usable time is not dated by its reception unless
//! [`HubSettings::use_reception_time_for_undated`] says so, and even then only a live one (not
//! one the device sent from its memory).
//!
//! The PHD-style dedup key ([`identifier::DedupKey`]) is returned beside the Bundle for the
//! local ledger and not sent (see its doc).

pub mod bundle;
pub mod cgm;
pub mod codes;
pub mod device;
pub mod identifier;
pub mod observation;
pub mod time;
pub mod units;

#[cfg(test)]
mod tests;

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use relais_protocol::{Kind, Reading};
use serde_json::{Value, json};

pub use cgm::{CgmAggregate, CgmError, CgmWindow};
pub use codes::{MeasureKind, ProfileFlavour};
pub use device::{CuffSite, DeviceIdentity, DeviceKind};
pub use identifier::{Eui48, Eui64, Oid};
pub use observation::{GlucoseMoment, Measure, Measurement, MeasurementTime, Undated};
pub use time::{ClockContext, Effective, LocalResolution, TimeSource};

use identifier::{DedupKey, matches_if_none_exist};
use observation::kind_name;

/// The zone the hub assumes unless told otherwise.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Paris";

/// How far after its reception a corrected reading time may lie before it is refused as "in the
/// future" (clock correction is approximate; more than this means the device clock is wrong and
/// its skew unknown).
pub const FUTURE_TOLERANCE: SignedDuration = SignedDuration::from_secs(5 * 60);

/// A household member's pairing with MES: who the Observation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// The assigning authority OID given at pairing (`subject.identifier.system`).
    pub assigning_authority: Oid,
    /// The idPe (identifiant Patient Externe) bound at pairing (`subject.identifier.value`).
    pub id_pe: String,
}

/// Hub-wide settings of the mapping.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The hub's OID, a sub-OID of the solution's: `meta.source` of every Observation, and the
    /// system of device identifiers the hub assigns.
    pub source: Oid,
    /// Which canonical URLs `meta.profile` carries.
    pub profiles: ProfileFlavour,
    /// The IANA zone device clocks are read in.
    pub time_zone: TimeZone,
    /// Date a live reading that has no usable time by its reception time (off by default: it is
    /// only right for readings sent as they are taken, such as heart rate notifications).
    pub use_reception_time_for_undated: bool,
}

impl HubSettings {
    /// ANS 3.x profiles, Europe/Paris, undated readings refused.
    pub fn new(source: Oid) -> Result<Self, jiff::Error> {
        Ok(Self {
            source,
            profiles: ProfileFlavour::default(),
            time_zone: TimeZone::get(DEFAULT_TIME_ZONE)?,
            use_reception_time_for_undated: false,
        })
    }
}

/// A reading ready for MES.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedReading {
    /// The transaction Bundle to POST.
    pub bundle: Value,
    /// The PHD-style key the uploader's ledger deduplicates on. Contains the idPe and the value:
    /// keep it out of logs.
    pub dedup_key: String,
    /// When the Observation says the measure was taken, and how that was worked out.
    pub effective: Effective,
    pub measure: MeasureKind,
}

/// Why a reading is not sent. Messages name flags and kinds, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsendable {
    #[error("MES does not accept {}: {why}", kind_name(*kind))]
    NotAccepted { kind: Kind, why: &'static str },
    #[error("the {flavour} profile generation has no profile for {measure}")]
    NoProfileInFlavour {
        measure: MeasureKind,
        flavour: ProfileFlavour,
    },
    #[error("the device reported a special value ({0}), not a number")]
    SpecialValue(&'static str),
    #[error("the value is in {found}, not in {expected}")]
    UnexpectedUnit {
        found: &'static str,
        expected: &'static str,
    },
    #[error("the value cannot be written as an exact JSON number")]
    ValueOutOfRange,
    #[error("the device marks the reading {0}")]
    UnusableStatus(&'static str),
    #[error("no usable date: {0}")]
    Undated(Undated),
    #[error("the corrected time {effective} is after the reception at {received_at}")]
    InTheFuture {
        effective: jiff::Timestamp,
        received_at: jiff::Timestamp,
    },
    #[error("the reading time is out of range once corrected")]
    TimeOutOfRange,
    #[error("the thermometer did not say where it measured, and the profile requires a body site")]
    MissingTemperatureSite,
    #[error("temperature site `{0}` is not in the value set MES requires (JDV J151)")]
    UnsupportedTemperatureSite(&'static str),
    #[error("the device's {0} is unknown, and PhdDevice requires it")]
    IncompleteDevice(&'static str),
    #[error("no System ID, Bluetooth address or serial number identifies the device")]
    UnidentifiedDevice,
    #[error("the Device condition `{0}` does not match the pattern MES requires")]
    InvalidDeviceCondition(String),
    #[error("the pairing has no idPe")]
    MissingIdPe,
    #[error("malformed reading: {0}")]
    Malformed(&'static str),
}

impl From<time::TimeOutOfRange> for Unsendable {
    fn from(_: time::TimeOutOfRange) -> Self {
        Self::TimeOutOfRange
    }
}

/// The Bundle for one reading, or why it cannot be sent.
pub fn map_reading(
    reading: &Reading,
    device: &DeviceIdentity,
    pairing: &Pairing,
    hub: &HubSettings,
    clock: &ClockContext,
) -> Result<MappedReading, Unsendable> {
    map_measurement(
        &Measurement::from_reading(reading)?,
        device,
        pairing,
        hub,
        clock,
    )
}

/// The two Bundles of a CGM aggregate (mean interstitial glucose, then GMI), dated at the end of
/// its window. `clock.received_at` is when the aggregate is computed (the window may not end
/// after it); the skew does not apply, the end being a hub instant.
pub fn map_cgm_aggregate(
    aggregate: &CgmAggregate,
    device: &DeviceIdentity,
    pairing: &Pairing,
    hub: &HubSettings,
    clock: &ClockContext,
) -> Result<[MappedReading; 2], Unsendable> {
    let [mean, gmi] = aggregate.measurements();
    Ok([
        map_measurement(&mean, device, pairing, hub, clock)?,
        map_measurement(&gmi, device, pairing, hub, clock)?,
    ])
}

/// The effective time of `m` and the `reportedTimestamp` of its dedup key.
fn effective_time(
    m: &Measurement,
    hub: &HubSettings,
    clock: &ClockContext,
) -> Result<(Effective, String), Unsendable> {
    let tz = &hub.time_zone;
    let utc = |e: &Effective| e.instant.strftime("%Y%m%dT%H%M%SZ").to_string();
    match m.time {
        MeasurementTime::Device(local) => Ok((
            time::from_device(local, clock.skew, tz)?,
            local.strftime("%Y%m%dT%H%M%S.00").to_string(),
        )),
        MeasurementTime::Undated(why) => {
            if !hub.use_reception_time_for_undated || m.from_storage {
                return Err(Unsendable::Undated(why));
            }
            let e = time::from_instant(clock.received_at, TimeSource::Reception, tz);
            let reported = utc(&e);
            Ok((e, reported))
        }
        MeasurementTime::Instant(instant) => {
            let e = time::from_instant(instant, TimeSource::Hub, tz);
            let reported = utc(&e);
            Ok((e, reported))
        }
    }
}

/// The Bundle for one measurement, or why it cannot be sent.
pub fn map_measurement(
    m: &Measurement,
    device: &DeviceIdentity,
    pairing: &Pairing,
    hub: &HubSettings,
    clock: &ClockContext,
) -> Result<MappedReading, Unsendable> {
    let kind = m.measure.kind();
    let profile = kind
        .profile(hub.profiles)
        .ok_or(Unsendable::NoProfileInFlavour {
            measure: kind,
            flavour: hub.profiles,
        })?;
    let id_pe = pairing.id_pe.trim();
    if id_pe.is_empty() {
        return Err(Unsendable::MissingIdPe);
    }

    let (effective, reported) = effective_time(m, hub, clock)?;
    let latest = clock
        .received_at
        .checked_add(FUTURE_TOLERANCE)
        .map_err(|_| Unsendable::TimeOutOfRange)?;
    if effective.instant > latest {
        return Err(Unsendable::InTheFuture {
            effective: effective.instant,
            received_at: clock.received_at,
        });
    }

    let key = device.key(&hub.source)?;
    let condition = key.if_none_exist();
    if !matches_if_none_exist(&condition) {
        return Err(Unsendable::InvalidDeviceCondition(condition));
    }
    let device_id = bundle::device_id(&condition);
    let (device_resource, _) = device.resource(device_id, &hub.source)?;

    let subject_system = pairing.assigning_authority.urn();
    let patient = format!("{id_pe}-{subject_system}");
    let value = m.measure.value_text();
    let device_compact = key.compact();
    let dedup_key = DedupKey {
        device: &device_compact,
        patient: &patient,
        code: kind.code().code,
        value: &value,
        unit: kind.ucum(),
        reported: &reported,
        supplemental: m.measure.window().map(|w| w.coding().code),
    }
    .to_string();
    let observation_id = bundle::observation_id(&dedup_key);

    let subject = json!({"system": subject_system, "value": id_pe});
    let observation = observation::observation(
        &m.measure,
        &observation::Context {
            id: &observation_id.to_string(),
            profile,
            source: &hub.source.urn(),
            subject: &subject,
            effective: &effective.date_time,
            device_id: &device_id.to_string(),
            cuff_site: device.cuff_site,
            device_temperature_type: device.temperature_type,
        },
    )?;
    let bundle = bundle::transaction(
        observation,
        observation_id,
        device_resource,
        device_id,
        &condition,
    );
    Ok(MappedReading {
        bundle,
        dedup_key,
        effective,
        measure: kind,
    })
}
