//! Commands on `<prefix>/command/<name>`, a JSON body, answered through the hub's
//! [`Control`]: `scan`, `pair`, `unpair`, `sync`, `assign`.
//!
//! The answer goes to the MQTT 5 response topic with the correlation data when the request has
//! them; else (MQTT 3.1.1) to `<prefix>/response/<id>`, `id` being the request's own `id`
//! field, or `<prefix>/response` without one. Every answer has `ok`; a scan sends a `progress`
//! answer per device found before its `result`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::hub::control::{Control, ControlError, ScanEvent};
use crate::store::{MeasurementId, MemberId};

use super::client::Incoming;

/// Largest command body taken.
pub const MAX_BODY: usize = 4096;

/// Commands run at once (a scan or a pairing lasts); more are answered `busy`.
pub const MAX_RUNNING: usize = 8;

/// An answer to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Where.
    pub topic: String,
    /// JSON.
    pub payload: Vec<u8>,
    /// MQTT 5 correlation data to carry back.
    pub correlation: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scan {
    #[serde(default = "default_scan_seconds")]
    seconds: u64,
}

const fn default_scan_seconds() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    address: String,
    #[serde(default)]
    passkey: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Address {
    address: String,
}

/// A member by id or by name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MemberRef {
    Id(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assign {
    measurement: i64,
    member: MemberRef,
}

/// Where and how to answer one request.
struct Replier {
    topic: String,
    correlation: Option<Vec<u8>>,
    command: String,
    id: Option<String>,
    out: mpsc::Sender<Answer>,
}

impl Replier {
    async fn send(&self, mut body: serde_json::Map<String, Value>) {
        body.insert("version".into(), json!(1));
        body.insert("command".into(), json!(self.command));
        body.insert("id".into(), json!(self.id));
        let answer = Answer {
            topic: self.topic.clone(),
            payload: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
            correlation: self.correlation.clone(),
        };
        if self.out.send(answer).await.is_err() {
            tracing::debug!("mqtt: the bridge stopped before a command's answer");
        }
    }

    async fn ok(&self, result: Value) {
        let mut body = serde_json::Map::new();
        body.insert("ok".into(), json!(true));
        body.insert("result".into(), result);
        self.send(body).await;
    }

    async fn progress(&self, progress: Value) {
        let mut body = serde_json::Map::new();
        body.insert("ok".into(), json!(true));
        body.insert("progress".into(), progress);
        self.send(body).await;
    }

    async fn error(&self, code: &str, message: &str) {
        let mut body = serde_json::Map::new();
        body.insert("ok".into(), json!(false));
        body.insert("error".into(), json!(code));
        body.insert("message".into(), json!(message));
        self.send(body).await;
    }

    async fn failed(&self, e: &ControlError) {
        self.error(e.code(), &e.to_string()).await;
    }
}

/// A client-chosen id usable as a topic level.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && !id.contains(['/', '+', '#', '\0'])
}

/// Answers the command `incoming` carries (its topic is `<prefix>/command/<name>`); the
/// answers go to `out`. Runs as long as the command does (a scan, a pairing), holding
/// `permit`; without one, too many commands run and this one is answered `busy`.
pub async fn run(
    control: Control,
    prefix: String,
    incoming: Incoming,
    out: mpsc::Sender<Answer>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let name = incoming
        .topic
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = &incoming.payload;
    // The `id` is the answer's, whatever the command: taken out before the body is read.
    let mut parsed = serde_json::from_slice::<Value>(body);
    let id = match &mut parsed {
        Ok(Value::Object(fields)) => fields.remove("id"),
        _ => None,
    };
    let id = id
        .and_then(|id| id.as_str().map(str::to_owned))
        .filter(|id| usable_id(id));
    let topic = match (&incoming.response_topic, &id) {
        (Some(topic), _) if rumqttc::valid_topic(topic) => topic.clone(),
        (_, Some(id)) => format!("{prefix}/response/{id}"),
        _ => format!("{prefix}/response"),
    };
    let reply = Replier {
        topic,
        correlation: incoming.correlation.clone(),
        command: name.clone(),
        id,
        out,
    };
    if permit.is_none() {
        let message = format!("{MAX_RUNNING} commands are under way: ask again later");
        return reply.error("busy", &message).await;
    }
    if body.len() > MAX_BODY {
        let message = format!("{} bytes; at most {MAX_BODY}", body.len());
        return reply.error("too_large", &message).await;
    }
    let parsed = match parsed {
        Ok(value) => value,
        Err(e) => return reply.error("bad_request", &format!("not JSON: {e}")).await,
    };
    let bad = |e: serde_json::Error| format!("the body is not what {name} takes: {e}");
    match name.as_str() {
        "scan" => match serde_json::from_value::<Scan>(parsed) {
            Ok(scan) => match control.scan(Duration::from_secs(scan.seconds)).await {
                Ok(mut events) => {
                    while let Some(event) = events.recv().await {
                        match event {
                            ScanEvent::Found(seen) => {
                                reply.progress(json!({ "found": seen })).await;
                            }
                            ScanEvent::Finished { devices } => {
                                reply.ok(json!({ "devices": devices })).await;
                            }
                        }
                    }
                }
                Err(e) => reply.failed(&e).await,
            },
            Err(e) => reply.error("bad_request", &bad(e)).await,
        },
        "pair" => match serde_json::from_value::<Pair>(parsed) {
            Ok(pair) => match control.pair(&pair.address, pair.passkey).await {
                Ok(paired) => {
                    let already = paired == crate::ble::pairing::Paired::Already;
                    reply
                        .ok(json!({ "address": pair.address, "already_paired": already }))
                        .await;
                }
                Err(e) => reply.failed(&e).await,
            },
            Err(e) => reply.error("bad_request", &bad(e)).await,
        },
        "unpair" => match serde_json::from_value::<Address>(parsed) {
            Ok(a) => match control.unpair(&a.address).await {
                Ok(()) => reply.ok(json!({ "address": a.address })).await,
                Err(e) => reply.failed(&e).await,
            },
            Err(e) => reply.error("bad_request", &bad(e)).await,
        },
        "sync" => match serde_json::from_value::<Address>(parsed) {
            Ok(a) => match control.sync_now(&a.address).await {
                Ok(synced) => {
                    reply
                        .ok(json!({ "address": a.address, "session": synced }))
                        .await;
                }
                Err(e) => reply.failed(&e).await,
            },
            Err(e) => reply.error("bad_request", &bad(e)).await,
        },
        "assign" => match serde_json::from_value::<Assign>(parsed) {
            Ok(a) => {
                let member = match a.member {
                    MemberRef::Id(id) => Ok(MemberId(id)),
                    MemberRef::Name(name) => control.find_member(&name).await,
                };
                let done = match member {
                    Ok(member) => control
                        .assign(MeasurementId(a.measurement), member)
                        .await
                        .map(|()| member),
                    Err(e) => Err(e),
                };
                match done {
                    Ok(member) => {
                        reply
                            .ok(json!({ "measurement": a.measurement, "member": member.0 }))
                            .await;
                    }
                    Err(e) => reply.failed(&e).await,
                }
            }
            Err(e) => reply.error("bad_request", &bad(e)).await,
        },
        other => {
            let message = format!("no command {other:?}: scan, pair, unpair, sync or assign");
            reply.error("unknown_command", &message).await;
        }
    }
}
