//! Where readings from other gateways may come in: the `[[mqtt.sources]]` of the configuration,
//! checked at start. Only these topics are subscribed to; a message under
//! `<prefix>/ingest/` that no source names is refused.

use std::collections::BTreeMap;

use crate::hub::config::MqttSource;

/// What a source's messages look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// relais's own input payload (`docs/mqtt/ingest.schema.json`).
    Relais,
    /// Theengs Gateway's decoded advertisement JSON.
    Theengs,
    /// OpenMQTTGateway's `BTtoMQTT` JSON.
    OpenMqttGateway,
}

impl std::str::FromStr for SourceFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relais" => Ok(Self::Relais),
            "theengs" => Ok(Self::Theengs),
            "openmqttgateway" => Ok(Self::OpenMqttGateway),
            other => Err(format!(
                "format {other:?}: expected relais, theengs or openmqttgateway"
            )),
        }
    }
}

/// A source, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its name.
    pub name: String,
    /// The topic filter subscribed to.
    pub filter: String,
    /// Its messages' format.
    pub format: SourceFormat,
    /// Every reading's member, when the source says so.
    pub member: Option<String>,
    /// Member by device address (upper case).
    pub devices: BTreeMap<String, String>,
}

impl Source {
    /// The member the configuration gives a device of this source, if any.
    pub fn member_for(&self, address: &str) -> Option<&str> {
        self.devices
            .get(&address.to_ascii_uppercase())
            .or(self.member.as_ref())
            .map(String::as_str)
    }
}

/// The topic level under which sources without their own topic publish.
pub fn ingest_root(prefix: &str) -> String {
    format!("{prefix}/ingest")
}

/// Checks the configured sources.
pub fn from_config(prefix: &str, sections: &[MqttSource]) -> Result<Vec<Source>, String> {
    let mut out: Vec<Source> = Vec::new();
    for section in sections {
        let name = section.name.trim();
        if name.is_empty() || name.contains(['/', '+', '#']) {
            return Err(format!(
                "mqtt.sources: name {name:?} must be a non-empty topic level"
            ));
        }
        if out.iter().any(|s| s.name == name) {
            return Err(format!("mqtt.sources: two sources are called {name}"));
        }
        let filter = if section.topic.is_empty() {
            format!("{}/{name}", ingest_root(prefix))
        } else {
            section.topic.clone()
        };
        if !rumqttc::valid_filter(&filter) {
            return Err(format!(
                "mqtt.sources {name}: {filter:?} is not a topic filter"
            ));
        }
        // The hub's own topics would loop back into it.
        let own = format!("{prefix}/");
        if filter.starts_with(&own) && !filter.starts_with(&format!("{}/", ingest_root(prefix)))
            || filter.starts_with('#')
            || filter.starts_with('+')
        {
            return Err(format!(
                "mqtt.sources {name}: {filter:?} would take the hub's own messages"
            ));
        }
        let format = section
            .format
            .parse()
            .map_err(|e| format!("mqtt.sources {name}: {e}"))?;
        let mut devices = BTreeMap::new();
        for (address, member) in &section.devices {
            if crate::ble::pairing::device_path(address).is_err() {
                return Err(format!(
                    "mqtt.sources {name}: {address:?} is not a Bluetooth address"
                ));
            }
            devices.insert(address.to_ascii_uppercase(), member.clone());
        }
        out.push(Source {
            name: name.to_owned(),
            filter,
            format,
            member: (!section.member.is_empty()).then(|| section.member.clone()),
            devices,
        });
    }
    Ok(out)
}

/// The source a message on `topic` comes from: the first whose filter matches.
pub fn source_of<'a>(sources: &'a [Source], topic: &str) -> Option<&'a Source> {
    sources.iter().find(|s| rumqttc::matches(topic, &s.filter))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn section(name: &str, topic: &str, format: &str) -> MqttSource {
        MqttSource {
            name: name.into(),
            topic: topic.into(),
            format: format.into(),
            member: String::new(),
            devices: BTreeMap::new(),
        }
    }

    #[test]
    fn sources_are_checked_and_matched_by_topic() {
        let mut theengs = section("bathroom", "home/TheengsGateway/BTtoMQTT/+", "theengs");
        theengs
            .devices
            .insert("c4:7c:8d:6a:12:34".into(), "Alice".into());
        theengs.member = "Bob".into();
        let sources = from_config("relais", &[theengs, section("lab", "", "relais")]).unwrap();
        assert_eq!(sources[1].filter, "relais/ingest/lab");
        let s = source_of(&sources, "home/TheengsGateway/BTtoMQTT/C47C8D6A1234").unwrap();
        assert_eq!(s.format, SourceFormat::Theengs);
        assert_eq!(s.member_for("C4:7C:8D:6A:12:34"), Some("Alice"));
        assert_eq!(s.member_for("C4:7C:8D:6A:12:35"), Some("Bob"));
        assert!(source_of(&sources, "relais/ingest/other").is_none());
        assert_eq!(
            source_of(&sources, "relais/ingest/lab").unwrap().name,
            "lab"
        );

        for bad in [
            section("x", "relais/command/#", "relais"),
            section("x", "#", "relais"),
            section("x", "a/#/b", "relais"),
            section("x", "", "csv"),
            section("a/b", "", "relais"),
        ] {
            assert!(
                from_config("relais", std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        let mut unknown = section("x", "", "theengs");
        unknown.devices.insert("not an address".into(), "A".into());
        assert!(from_config("relais", &[unknown]).is_err());
        assert!(
            from_config(
                "relais",
                &[section("x", "", "relais"), section("x", "", "relais")]
            )
            .is_err()
        );
    }
}
