//! What the MQTT tests share: a real Mosquitto per test on a free loopback port, and
//! `mosquitto_sub` / `mosquitto_pub` as independent clients (Debian `mosquitto`,
//! `mosquitto-clients`; without them the tests fail).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relais::mqtt::Settings;
use serde_json::Value;

pub const CLIENT_ID: &str = "relais-test";

/// A Mosquitto with persistence in its own directory; restartable on the same port.
pub struct Broker {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    pub fn start() -> Self {
        Self::start_with(|_| String::new())
    }

    /// A broker whose listener gets the configuration lines `extra` writes (given the
    /// broker's directory, for files such as certificates or an ACL).
    pub fn start_with(extra: impl FnOnce(&Path) -> String) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\n{extra}\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nuser root\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut broker = Self {
            dir,
            port,
            child: None,
        };
        broker.up();
        broker
    }

    pub fn up(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log"))
            .unwrap();
        let child = Command::new("mosquitto")
            .arg("-v")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto is missing: apt-get install mosquitto mosquitto-clients");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM: Mosquitto saves its sessions and queued messages, as on a service restart.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            child.wait().unwrap();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn settings(&self) -> Settings {
        let mut settings = Settings::new("127.0.0.1", self.port, CLIENT_ID);
        settings.backoff.initial = Duration::from_millis(200);
        settings.backoff.max = Duration::from_millis(500);
        settings
    }

    /// `mosquitto_sub` on `topics`, QoS 1, a persistent session; lines `qos retain topic
    /// payload` in a file.
    pub fn subscribe(&self, id: &str, topics: &[&str]) -> Subscriber {
        self.subscribe_with(id, topics, &["-F", "%q %r %t %p"])
    }

    /// `mosquitto_sub` on `topics`, QoS 1, a persistent session, with more arguments (a
    /// format, `-V mqttv5`).
    pub fn subscribe_with(&self, id: &str, topics: &[&str], args: &[&str]) -> Subscriber {
        let path = self.dir.path().join(format!("{id}.out"));
        let out = std::fs::File::create(&path).unwrap();
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", "1", "-c", "-i", id])
            .args(args);
        for t in topics {
            cmd.args(["-t", t]);
        }
        let child = cmd
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is missing: apt-get install mosquitto-clients");
        std::thread::sleep(Duration::from_millis(300));
        Subscriber { child, path }
    }

    /// The retained message on `topic`, if any (a fresh client, 1 s at most).
    pub fn retained(&self, topic: &str) -> Option<String> {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-C", "1", "-W", "1", "--retained-only"])
            .output()
            .expect("mosquitto_sub is missing");
        let text = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
        (!text.is_empty()).then_some(text)
    }

    /// `mosquitto_pub` of one message, QoS 1, with more arguments (`-V mqttv5`, `-D ...`).
    pub fn publish(&self, topic: &str, payload: &str, args: &[&str]) {
        // Large payloads go through a file: an argument has at most 128 KiB.
        let file = self.dir.path().join("payload");
        std::fs::write(&file, payload).unwrap();
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", "1", "-t", topic, "-f"])
            .arg(&file)
            .args(args)
            .status()
            .expect("mosquitto_pub is missing");
        assert!(status.success());
    }

    pub fn publish_retained(&self, topic: &str, payload: &str) {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", "1", "-r", "-t", topic, "-m", payload])
            .status()
            .expect("mosquitto_pub is missing");
        assert!(status.success());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Subscriber {
    child: Child,
    path: PathBuf,
}

/// One received message.
#[derive(Debug)]
pub struct Line {
    pub qos: u8,
    pub retained: bool,
    pub topic: String,
    pub payload: String,
}

impl Subscriber {
    /// Everything received, as written.
    pub fn raw(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    pub fn lines(&self) -> Vec<Line> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            // A payload spanning lines (the schema) leaves lines that are not messages.
            .filter_map(|l| {
                let mut parts = l.splitn(4, ' ');
                Some(Line {
                    qos: parts.next()?.parse().ok()?,
                    retained: match parts.next()? {
                        "1" => true,
                        "0" => false,
                        _ => return None,
                    },
                    topic: parts.next()?.to_owned(),
                    payload: parts.next().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    /// The payloads received on `topic`, as JSON.
    pub fn json(&self, topic: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l.topic == topic)
            .map(|l| serde_json::from_str(&l.payload).unwrap())
            .collect()
    }

    pub fn wait_for(&self, what: &str, mut done: impl FnMut(&[Line]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(&self.lines()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
