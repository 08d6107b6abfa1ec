//! What a device is, from the services it advertises.

use relais_protocol::uuid;
use serde::Serialize;

/// The health services relais scans for.
pub const HEALTH_SERVICES: [u16; 8] = [
    uuid::GLUCOSE_SERVICE,
    uuid::BLOOD_PRESSURE_SERVICE,
    uuid::WEIGHT_SCALE_SERVICE,
    uuid::BODY_COMPOSITION_SERVICE,
    uuid::HEALTH_THERMOMETER_SERVICE,
    uuid::HEART_RATE_SERVICE,
    uuid::PULSE_OXIMETER_SERVICE,
    uuid::CONTINUOUS_GLUCOSE_MONITORING_SERVICE,
];

/// A health device's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Glucose Service 0x1808.
    GlucoseMeter,
    /// Continuous Glucose Monitoring 0x181F.
    Cgm,
    /// Blood Pressure 0x1810.
    BloodPressureMonitor,
    /// Body Composition 0x181B (usually with weight).
    BodyCompositionScale,
    /// Weight Scale 0x181D.
    WeightScale,
    /// Pulse Oximeter 0x1822.
    PulseOximeter,
    /// Health Thermometer 0x1809.
    Thermometer,
    /// Heart Rate 0x180D.
    HeartRateSensor,
}

impl DeviceKind {
    /// The kind from advertised 16-bit service UUIDs, most specific service first (a CGM may
    /// also advertise other services; a body composition scale also advertises weight).
    pub fn from_services(services: &[u16]) -> Option<Self> {
        const ORDER: [(u16, DeviceKind); 8] = [
            (uuid::CONTINUOUS_GLUCOSE_MONITORING_SERVICE, DeviceKind::Cgm),
            (uuid::GLUCOSE_SERVICE, DeviceKind::GlucoseMeter),
            (
                uuid::BLOOD_PRESSURE_SERVICE,
                DeviceKind::BloodPressureMonitor,
            ),
            (
                uuid::BODY_COMPOSITION_SERVICE,
                DeviceKind::BodyCompositionScale,
            ),
            (uuid::WEIGHT_SCALE_SERVICE, DeviceKind::WeightScale),
            (uuid::PULSE_OXIMETER_SERVICE, DeviceKind::PulseOximeter),
            (uuid::HEALTH_THERMOMETER_SERVICE, DeviceKind::Thermometer),
            (uuid::HEART_RATE_SERVICE, DeviceKind::HeartRateSensor),
        ];
        ORDER
            .iter()
            .find(|(service, _)| services.contains(service))
            .map(|&(_, kind)| kind)
    }

    /// The name printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GlucoseMeter => "glucose_meter",
            Self::Cgm => "cgm",
            Self::BloodPressureMonitor => "blood_pressure_monitor",
            Self::BodyCompositionScale => "body_composition_scale",
            Self::WeightScale => "weight_scale",
            Self::PulseOximeter => "pulse_oximeter",
            Self::Thermometer => "thermometer",
            Self::HeartRateSensor => "heart_rate_sensor",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_the_most_specific_service() {
        assert_eq!(
            DeviceKind::from_services(&[0x180A, uuid::GLUCOSE_SERVICE]),
            Some(DeviceKind::GlucoseMeter)
        );
        assert_eq!(
            DeviceKind::from_services(&[
                uuid::WEIGHT_SCALE_SERVICE,
                uuid::BODY_COMPOSITION_SERVICE
            ]),
            Some(DeviceKind::BodyCompositionScale)
        );
        assert_eq!(DeviceKind::from_services(&[0x180F]), None);
    }
}
