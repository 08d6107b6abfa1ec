//! rumqttc's MQTT 3.1.1 and MQTT 5 clients behind one face: the bridge publishes, subscribes
//! and hears the few events it needs, whatever the protocol.

use rumqttc::{Outgoing, QoS, Transport};
use tokio::sync::mpsc;

use super::Settings;

/// The MQTT version spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.
    V5,
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "3.1.1" => Ok(Self::V311),
            "5" | "5.0" => Ok(Self::V5),
            other => Err(format!("mqtt.protocol {other}: expected 3.1.1 or 5")),
        }
    }
}

/// How long an MQTT 5 session outlives its connection (the broker keeps it a week).
const SESSION_EXPIRY_SECONDS: u32 = 7 * 24 * 3600;

/// Largest packet either way; brokers hold other integrations' discovery configs too. MQTT 5
/// tells the broker, which then drops larger messages instead of sending them.
const MAX_PACKET: usize = 256 * 1024;

/// Largest packet taken with MQTT 3.1.1, which cannot tell the broker a limit: a larger one
/// ends the connection, and the broker sends it again on the next (QoS 1), for ever. Large
/// enough that any message short of abuse is read, and refused by its size.
const MAX_PACKET_IN_V311: usize = 16 * 1024 * 1024;

/// Why the broker refused a publish (MQTT 5 PUBACK reason codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Sending it again would be refused again (not authorised, invalid topic or payload).
    pub permanent: bool,
    /// The reason code, in words.
    pub reason: String,
}

/// What the bridge hears from the event loop.
#[derive(Debug)]
pub enum Ev {
    /// The broker's answer to CONNECT.
    ConnAck(Result<(), String>),
    /// A publish left with this packet id (0: QoS 0).
    Published(u16),
    /// The PUBACK of a packet id.
    Acked {
        /// Packet id.
        pkid: u16,
        /// MQTT 5 only: the broker did not take it.
        refused: Option<Refusal>,
    },
    /// A message on a subscription.
    Message(Incoming),
    /// The broker sent DISCONNECT.
    BrokerDisconnect,
    /// Our DISCONNECT left.
    DisconnectSent,
    /// Anything else.
    Other,
}

/// A message the broker passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Its topic.
    pub topic: String,
    /// Its payload (empty: a cleared retained message).
    pub payload: Vec<u8>,
    /// Retained: stored by the broker, maybe long ago.
    pub retain: bool,
    /// MQTT 5: where the sender wants the answer.
    pub response_topic: Option<String>,
    /// MQTT 5: what the answer must carry back.
    pub correlation: Option<Vec<u8>>,
    /// The packet id to acknowledge (QoS 1) once the message is dealt with: acknowledgements
    /// are manual, so that a reading is acknowledged only after the commit that holds it.
    pub ack: Option<u16>,
}

/// Events, or the error that ended the connection.
pub type Events = mpsc::UnboundedReceiver<Result<Ev, String>>;

/// A connected (or connecting) client.
pub enum Client {
    /// MQTT 3.1.1.
    V311(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
}

/// Aborts the event loop's task when dropped, however the session ends.
pub struct Pump(tokio::task::JoinHandle<()>);

impl Drop for Pump {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn transport(settings: &Settings) -> Option<Transport> {
    settings
        .tls
        .as_ref()
        .map(|tls| Transport::tls(tls.ca.clone(), tls.client.clone(), None))
}

/// Starts the event loop of a new connection: a persistent session, `offline` retained on
/// `will_topic` as the last will. The first event is the CONNACK or an error.
pub fn connect(settings: &Settings, will_topic: &str) -> (Client, Events, Pump) {
    let (tx, events) = mpsc::unbounded_channel();
    match settings.protocol {
        Protocol::V311 => {
            let mut o = rumqttc::MqttOptions::new(
                settings.client_id.clone(),
                settings.host.clone(),
                settings.port,
            );
            o.set_clean_session(false)
                .set_manual_acks(true)
                .set_keep_alive(settings.keep_alive)
                .set_max_packet_size(MAX_PACKET_IN_V311, MAX_PACKET)
                .set_last_will(rumqttc::LastWill::new(
                    will_topic,
                    "offline",
                    QoS::AtLeastOnce,
                    true,
                ));
            if let Some((user, password)) = &settings.credentials {
                o.set_credentials(user.clone(), password.expose().to_owned());
            }
            if let Some(t) = transport(settings) {
                o.set_transport(t);
            }
            let (client, mut eventloop) = rumqttc::AsyncClient::new(o, 256);
            let pump = tokio::spawn(async move {
                loop {
                    let event = eventloop.poll().await.map(v311).map_err(|e| e.to_string());
                    let failed = event.is_err();
                    if tx.send(event).is_err() || failed {
                        break;
                    }
                }
            });
            (Client::V311(client), events, Pump(pump))
        }
        Protocol::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(
                settings.client_id.clone(),
                settings.host.clone(),
                settings.port,
            );
            let packet = u32::try_from(MAX_PACKET).ok();
            o.set_clean_start(false)
                .set_manual_acks(true)
                .set_session_expiry_interval(Some(SESSION_EXPIRY_SECONDS))
                .set_keep_alive(settings.keep_alive)
                .set_max_packet_size(packet)
                .set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                    will_topic,
                    "offline",
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    true,
                    None,
                ));
            if let Some((user, password)) = &settings.credentials {
                o.set_credentials(user.clone(), password.expose().to_owned());
            }
            if let Some(t) = transport(settings) {
                o.set_transport(t);
            }
            let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 256);
            let pump = tokio::spawn(async move {
                loop {
                    let event = eventloop.poll().await.map(v5).map_err(|e| e.to_string());
                    let failed = event.is_err();
                    if tx.send(event).is_err() || failed {
                        break;
                    }
                }
            });
            (Client::V5(client), events, Pump(pump))
        }
    }
}

fn outgoing(o: &Outgoing) -> Ev {
    match o {
        Outgoing::Publish(pkid) => Ev::Published(*pkid),
        Outgoing::Disconnect => Ev::DisconnectSent,
        _ => Ev::Other,
    }
}

fn v311(event: rumqttc::Event) -> Ev {
    use rumqttc::{ConnectReturnCode, Event, Packet};
    match event {
        Event::Incoming(Packet::ConnAck(ack)) => Ev::ConnAck(
            (ack.code == ConnectReturnCode::Success)
                .then_some(())
                .ok_or_else(|| format!("{:?}", ack.code)),
        ),
        Event::Incoming(Packet::PubAck(ack)) => Ev::Acked {
            pkid: ack.pkid,
            refused: None,
        },
        Event::Incoming(Packet::Publish(p)) => Ev::Message(Incoming {
            ack: (p.qos != QoS::AtMostOnce).then_some(p.pkid),
            topic: p.topic,
            payload: p.payload.to_vec(),
            retain: p.retain,
            response_topic: None,
            correlation: None,
        }),
        Event::Incoming(Packet::Disconnect) => Ev::BrokerDisconnect,
        Event::Outgoing(o) => outgoing(&o),
        Event::Incoming(_) => Ev::Other,
    }
}

fn v5(event: rumqttc::v5::Event) -> Ev {
    use rumqttc::v5::Event;
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason};
    match event {
        Event::Incoming(Packet::ConnAck(ack)) => Ev::ConnAck(
            (ack.code == ConnectReturnCode::Success)
                .then_some(())
                .ok_or_else(|| format!("{:?}", ack.code)),
        ),
        Event::Incoming(Packet::PubAck(ack)) => Ev::Acked {
            pkid: ack.pkid,
            refused: match ack.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
                reason @ (PubAckReason::NotAuthorized
                | PubAckReason::TopicNameInvalid
                | PubAckReason::PayloadFormatInvalid) => Some(Refusal {
                    permanent: true,
                    reason: format!("{reason:?}"),
                }),
                reason => Some(Refusal {
                    permanent: false,
                    reason: format!("{reason:?}"),
                }),
            },
        },
        Event::Incoming(Packet::Publish(p)) => {
            let (response_topic, correlation) = p
                .properties
                .map(|props| {
                    (
                        props.response_topic,
                        props.correlation_data.map(|c| c.to_vec()),
                    )
                })
                .unwrap_or_default();
            Ev::Message(Incoming {
                ack: (p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce).then_some(p.pkid),
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload.to_vec(),
                retain: p.retain,
                response_topic,
                correlation,
            })
        }
        Event::Incoming(Packet::Disconnect(_)) => Ev::BrokerDisconnect,
        Event::Outgoing(o) => outgoing(&o),
        Event::Incoming(_) => Ev::Other,
    }
}

impl Client {
    /// Hands a QoS 1 publish to the event loop.
    pub async fn publish(
        &self,
        topic: String,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        let qos1 = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
        match self {
            Self::V311(c) => c
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await
                .map_err(|e| format!("publish: {e}")),
            Self::V5(c) => c
                .publish(topic, qos1, retain, payload)
                .await
                .map_err(|e| format!("publish: {e}")),
        }
    }

    /// Subscribes to `filter` at QoS 0.
    pub async fn subscribe(&self, filter: String) -> Result<(), String> {
        self.subscribe_qos(filter, false).await
    }

    /// Subscribes to `filter` at QoS 1 when `at_least_once`, else 0.
    pub async fn subscribe_qos(&self, filter: String, at_least_once: bool) -> Result<(), String> {
        use rumqttc::v5::mqttbytes::QoS as QoS5;
        let (qos, qos5) = if at_least_once {
            (QoS::AtLeastOnce, QoS5::AtLeastOnce)
        } else {
            (QoS::AtMostOnce, QoS5::AtMostOnce)
        };
        match self {
            Self::V311(c) => c
                .subscribe(filter, qos)
                .await
                .map_err(|e| format!("subscribe: {e}")),
            Self::V5(c) => c
                .subscribe(filter, qos5)
                .await
                .map_err(|e| format!("subscribe: {e}")),
        }
    }

    /// Hands a QoS 1 answer to the event loop; MQTT 5 carries `correlation` back.
    pub async fn publish_reply(
        &self,
        topic: String,
        payload: Vec<u8>,
        correlation: Option<Vec<u8>>,
    ) -> Result<(), String> {
        match (self, correlation) {
            (Self::V5(c), Some(correlation)) => {
                let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
                    correlation_data: Some(correlation.into()),
                    content_type: Some("application/json".to_owned()),
                    ..Default::default()
                };
                c.publish_with_properties(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                    props,
                )
                .await
                .map_err(|e| format!("publish: {e}"))
            }
            _ => self.publish(topic, false, payload).await,
        }
    }

    /// Acknowledges the incoming QoS 1 message with packet id `pkid`.
    pub async fn ack(&self, pkid: u16) -> Result<(), String> {
        match self {
            Self::V311(c) => {
                let mut p = rumqttc::Publish::new("", QoS::AtLeastOnce, Vec::new());
                p.pkid = pkid;
                c.ack(&p).await.map_err(|e| format!("ack: {e}"))
            }
            Self::V5(c) => {
                let qos1 = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
                let mut p = rumqttc::v5::mqttbytes::v5::Publish::new("", qos1, Vec::new(), None);
                p.pkid = pkid;
                c.ack(&p).await.map_err(|e| format!("ack: {e}"))
            }
        }
    }

    /// Sends DISCONNECT (no last will).
    pub async fn disconnect(&self) -> Result<(), String> {
        match self {
            Self::V311(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Self::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V311(_) => "Client(MQTT 3.1.1)",
            Self::V5(_) => "Client(MQTT 5)",
        })
    }
}

impl std::fmt::Debug for Pump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pump")
    }
}
