//! Home Assistant MQTT discovery: one sensor per device and measure, retained on
//! `<discovery>/sensor/relais_<device>/<measure>/config`. The sensors read the JSON copy of
//! each reading on `<prefix>/device/<device>/<kind>`.

use serde_json::{Value, json};

use super::payload::{DeviceState, device_slug};

/// One sensor a device kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// The last level of the config topic and of the unique id.
    pub id: &'static str,
    /// The name shown.
    pub name: &'static str,
    /// The reading kind whose device topic it reads.
    pub kind: &'static str,
    /// Where the value is in the payload.
    pub template: &'static str,
    /// Home Assistant's unit.
    pub unit: &'static str,
    /// Home Assistant's device class, if one fits.
    pub device_class: Option<&'static str>,
}

const fn measure(
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    template: &'static str,
    unit: &'static str,
    device_class: Option<&'static str>,
) -> Measure {
    Measure {
        id,
        name,
        kind,
        template,
        unit,
        device_class,
    }
}

const VALUE: &str = "{{ value_json.value.value }}";
const WEIGHT: Measure = measure(
    "weight",
    "Weight",
    "body_weight",
    VALUE,
    "kg",
    Some("weight"),
);
const PULSE: Measure = measure("pulse", "Pulse", "pulse_rate", VALUE, "bpm", None);

/// The sensors of a device kind (as `DeviceKind::as_str` names it).
pub fn measures(kind: &str) -> Vec<Measure> {
    match kind {
        "weight_scale" | "body_composition_scale" => vec![WEIGHT],
        "glucose_meter" => vec![measure(
            "glucose",
            "Glucose",
            "blood_glucose",
            VALUE,
            "mg/dL",
            Some("blood_glucose_concentration"),
        )],
        "cgm" => vec![measure(
            "glucose",
            "Glucose",
            "interstitial_glucose",
            VALUE,
            "mg/dL",
            Some("blood_glucose_concentration"),
        )],
        "blood_pressure_monitor" => vec![
            measure(
                "systolic",
                "Systolic",
                "blood_pressure",
                "{{ value_json.systolic.value }}",
                "mmHg",
                None,
            ),
            measure(
                "diastolic",
                "Diastolic",
                "blood_pressure",
                "{{ value_json.diastolic.value }}",
                "mmHg",
                None,
            ),
            PULSE,
        ],
        "thermometer" => vec![measure(
            "temperature",
            "Temperature",
            "body_temperature",
            VALUE,
            "°C",
            Some("temperature"),
        )],
        "pulse_oximeter" => vec![
            measure("spo2", "SpO2", "oxygen_saturation", VALUE, "%", None),
            PULSE,
        ],
        "heart_rate_sensor" => vec![measure(
            "heart_rate",
            "Heart rate",
            "heart_rate",
            VALUE,
            "bpm",
            None,
        )],
        _ => Vec::new(),
    }
}

/// The config topic of a device's measure.
pub fn config_topic(discovery: &str, address: &str, measure: &Measure) -> String {
    format!(
        "{discovery}/sensor/relais_{}/{}/config",
        device_slug(address),
        measure.id
    )
}

/// Whether `topic` is one of ours (a config topic under a `relais_` node).
pub fn is_ours(discovery: &str, topic: &str) -> bool {
    topic
        .strip_prefix(discovery)
        .and_then(|t| t.strip_prefix("/sensor/relais_"))
        .is_some_and(|t| t.ends_with("/config"))
}

/// The configs of a device: `(topic, payload)` per measure.
pub fn configs(discovery: &str, prefix: &str, device: &DeviceState) -> Vec<(String, Value)> {
    let slug = device_slug(&device.address);
    let kind = device.kind.as_deref().unwrap_or_default();
    let name = device
        .name
        .clone()
        .or_else(|| device.model.clone())
        .unwrap_or_else(|| format!("relais {kind} {slug}"));
    let block = json!({
        "identifiers": [format!("relais_{slug}")],
        "connections": [["bluetooth", device.address.to_ascii_lowercase()]],
        "name": name,
        "manufacturer": device.manufacturer,
        "model": device.model,
    });
    measures(kind)
        .iter()
        .map(|m| {
            let unique = format!("relais_{slug}_{}", m.id);
            let mut config = json!({
                "name": m.name,
                "unique_id": unique,
                "object_id": unique,
                "state_topic": format!("{prefix}/device/{slug}/{}", m.kind),
                "value_template": m.template,
                "unit_of_measurement": m.unit,
                "state_class": "measurement",
                "availability_topic": format!("{prefix}/status"),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": block,
                "origin": { "name": "relais", "sw_version": env!("CARGO_PKG_VERSION") },
            });
            if let (Some(class), Some(obj)) = (m.device_class, config.as_object_mut()) {
                obj.insert("device_class".into(), json!(class));
            }
            (config_topic(discovery, &device.address, m), config)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cuff_has_three_sensors_with_units_and_a_device_block() {
        let device = DeviceState {
            address: "C0:FF:EE:00:00:03".into(),
            name: None,
            kind: Some("blood_pressure_monitor".into()),
            manufacturer: Some("Relais".into()),
            model: Some("RC-1".into()),
            battery: None,
            last_seen: None,
            paired: Some(true),
        };
        let configs = configs("homeassistant", "relais", &device);
        let topics: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/sensor/relais_c0ffee000003/systolic/config",
                "homeassistant/sensor/relais_c0ffee000003/diastolic/config",
                "homeassistant/sensor/relais_c0ffee000003/pulse/config",
            ]
        );
        let (_, systolic) = &configs[0];
        assert_eq!(systolic["unit_of_measurement"], "mmHg");
        assert_eq!(systolic["state_class"], "measurement");
        assert_eq!(
            systolic["state_topic"],
            "relais/device/c0ffee000003/blood_pressure"
        );
        assert_eq!(systolic["device"]["model"], "RC-1");
        assert_eq!(configs[2].1["unit_of_measurement"], "bpm");
        assert!(is_ours("homeassistant", topics[0]));
        assert!(!is_ours(
            "homeassistant",
            "homeassistant/sensor/other/x/config"
        ));
    }

    #[test]
    fn every_health_measure_has_its_device_class() {
        let class = |kind: &str| measures(kind)[0].device_class;
        assert_eq!(class("weight_scale"), Some("weight"));
        assert_eq!(class("glucose_meter"), Some("blood_glucose_concentration"));
        assert_eq!(class("thermometer"), Some("temperature"));
        assert_eq!(measures("pulse_oximeter")[0].unit, "%");
    }
}
