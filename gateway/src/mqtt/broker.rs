//! The embedded MQTT broker (`[mqtt] embedded_broker = true`): rumqttd on a loopback port, for
//! a household without a broker of its own. The bridge then publishes to it like to any other.
//!
//! Loopback only: the broker has no TLS here and is meant for programs on the hub itself
//! (Home Assistant on the same box, `mosquitto_sub`). rumqttd runs on threads of its own with
//! no way to stop them: the broker lives as long as the process.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};

use crate::hub::config::MqttSection;

/// How long the broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the embedded broker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configured host is not a loopback address.
    #[error(
        "mqtt.host {0:?}: the embedded broker only listens on loopback (127.0.0.1 or ::1); \
         for a broker on the network, run Mosquitto and set embedded_broker = false"
    )]
    NotLoopback(String),
    /// TLS was asked for.
    #[error("mqtt.tls: the embedded broker speaks plain MQTT on loopback only")]
    Tls,
    /// The host does not resolve.
    #[error("mqtt.host {0:?} does not resolve to an address")]
    Unresolved(String),
    /// Something already listens there (another broker?).
    #[error("{address}: the port is taken ({source}); is another broker running there?")]
    PortTaken {
        /// Where.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The broker did not come up.
    #[error("the embedded MQTT broker did not start on {0}")]
    NotListening(SocketAddr),
    /// Its thread could not start.
    #[error("starting the embedded MQTT broker: {0}")]
    Thread(std::io::Error),
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    address: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts rumqttd on `section.host:section.port` (MQTT 3.1.1 or 5, as the bridge speaks;
    /// `username`/`password`, when set, are the only credentials it accepts) and returns once
    /// it accepts connections.
    pub fn start(section: &MqttSection) -> Result<Self, BrokerError> {
        if section.tls {
            return Err(BrokerError::Tls);
        }
        let address = loopback_address(&section.host, section.port)?;
        // rumqttd logs a failed bind and carries on without a listener; checked first so the
        // error says what is wrong (and a broker already there is not mistaken for ours).
        TcpListener::bind(address).map_err(|source| BrokerError::PortTaken { address, source })?;
        let mut broker = Broker::new(config(section, address));
        std::thread::Builder::new()
            .name("mqtt-broker".to_owned())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!("the embedded MQTT broker stopped: {e}");
                }
            })
            .map_err(BrokerError::Thread)?;
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening(address));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!(%address, "mqtt: embedded broker listening");
        Ok(Self { address })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// `host:port` when every address `host` names is a loopback one.
fn loopback_address(host: &str, port: u16) -> Result<SocketAddr, BrokerError> {
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| BrokerError::Unresolved(host.to_owned()))?
        .collect();
    let first = addresses
        .first()
        .copied()
        .ok_or_else(|| BrokerError::Unresolved(host.to_owned()))?;
    if addresses.iter().all(|a| a.ip().is_loopback()) {
        Ok(first)
    } else {
        Err(BrokerError::NotLoopback(host.to_owned()))
    }
}

/// rumqttd's configuration: one listener, memory bounded for a household's traffic.
fn config(section: &MqttSection, address: SocketAddr) -> rumqttd::Config {
    let auth = (!section.username.is_empty())
        .then(|| HashMap::from([(section.username.clone(), section.password.clone())]));
    let server = ServerSettings {
        name: "relais".to_owned(),
        listen: address,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 256 * 1024,
            max_inflight_count: 100,
            auth,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let servers = Some(HashMap::from([("relais".to_owned(), server)]));
    let v5 = section.protocol.trim() == "5";
    rumqttd::Config {
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            // Per topic filter; readings are a few hundred bytes.
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
            ..RouterConfig::default()
        },
        v4: if v5 { None } else { servers.clone() },
        v5: if v5 { servers } else { None },
        ..rumqttd::Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_accepted() {
        assert!(loopback_address("127.0.0.1", 1883).is_ok());
        assert!(loopback_address("::1", 1883).is_ok());
        assert!(matches!(
            loopback_address("192.0.2.7", 1883),
            Err(BrokerError::NotLoopback(_))
        ));
        assert!(matches!(
            loopback_address("0.0.0.0", 1883),
            Err(BrokerError::NotLoopback(_))
        ));
    }

    #[test]
    fn tls_is_refused() {
        let section = MqttSection {
            tls: true,
            embedded_broker: true,
            ..MqttSection::default()
        };
        assert!(matches!(
            EmbeddedBroker::start(&section),
            Err(BrokerError::Tls)
        ));
    }

    #[test]
    fn a_taken_port_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let section = MqttSection {
            embedded_broker: true,
            port: taken.local_addr().unwrap().port(),
            ..MqttSection::default()
        };
        assert!(matches!(
            EmbeddedBroker::start(&section),
            Err(BrokerError::PortTaken { .. })
        ));
    }
}
