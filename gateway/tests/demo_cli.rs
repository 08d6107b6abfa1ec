//! `relais demo` as a user runs it: the built binary, alone (its own D-Bus broker, emulated
//! BlueZ, MES sandbox and MQTT broker inside). Readings of every device and member must reach
//! the sandbox, the web page must sign in with the printed password (and refuse another) and
//! list the household, the embedded broker must carry the hub's status, and SIGINT (or SIGTERM) must
//! stop it all with success, leaving no process, bus socket or temporary directory behind.
//! The `--bus dbus-daemon` case needs `dbus-daemon` (Debian `dbus`) and fails without it.
//!
//! Prints the time from start to the first delivered reading and the delivery rate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each device of the demo household, for each member using it: (member, kind, device).
const EXPECTED: [(&str, &str, &str); 6] = [
    ("Alice", "blood_glucose", "RS-GLUCOSE"),
    ("Alice", "body_weight", "RS-SCALE"),
    ("Bernard", "body_weight", "RS-SCALE"),
    ("Alice", "blood_pressure", "RS-CUFF"),
    ("Bernard", "blood_pressure", "RS-CUFF"),
    ("Bernard", "body_weight", "Mi Smart Scale"),
];

/// A printed delivery: `+  12.3s  Alice    body_weight 65.900 kg  [RS-SCALE]  -> MES ok`.
#[derive(Debug)]
struct Delivered {
    member: String,
    kind: String,
    device: String,
}

fn delivered(line: &str) -> Option<Delivered> {
    let rest = line.strip_suffix("  -> MES ok")?;
    let (before, device) = rest.rsplit_once("  [")?;
    let mut words = before.trim_start_matches('+').split_whitespace().skip(1);
    Some(Delivered {
        member: words.next()?.to_owned(),
        kind: words.next()?.to_owned(),
        device: device.strip_suffix(']')?.to_owned(),
    })
}

/// The text after `label` on the first line holding it, up to the next space.
fn after(lines: &[String], label: &str) -> String {
    let line = lines
        .iter()
        .find_map(|l| l.split_once(label).map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("no {label:?} in {lines:#?}"));
    line.split_whitespace().next().unwrap().to_owned()
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, not ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// A failed run: SIGTERM, so the demo still cleans up after itself, then SIGKILL.
fn give_up(demo: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = demo.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = demo.kill();
    let _ = demo.wait();
}

fn retained(port: &str, topic: &str) -> Option<String> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", port])
        .args(["-t", topic, "-C", "1", "-W", "2", "--retained-only"])
        .output()
        .expect("mosquitto_sub is missing: apt-get install mosquitto-clients");
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_delivers_every_household_reading_and_stops_cleanly_on_sigint() {
    let children = run_demo(&[], "-INT").await;
    assert!(children.is_empty(), "busd runs in-process: {children:?}");
}

/// With `--bus dbus-daemon` the demo has a child: SIGTERM must stop it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_dbus_daemon_reaps_it_on_sigterm() {
    let children = run_demo(&["--bus", "dbus-daemon"], "-TERM").await;
    assert_eq!(children.len(), 1, "the dbus-daemon: {children:?}");
}

/// Runs the demo until every expected reading was delivered, then stops it with `signal`;
/// returns the child processes it had (all checked gone).
async fn run_demo(extra: &[&str], signal: &str) -> Vec<u32> {
    let mqtt_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let log = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(["demo", "--mqtt-port", &mqtt_port, "--web-port", "0"])
        .args(extra)
        .env("LANG", "en_GB.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let reader = {
        let (lines, stdout) = (Arc::clone(&lines), demo.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push((started.elapsed(), line));
            }
        })
    };
    let text = |lines: &Arc<Mutex<Vec<(Duration, String)>>>| -> Vec<String> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    };

    let deadline = Instant::now() + Duration::from_secs(240);
    let seen = loop {
        let seen: BTreeSet<(String, String, String)> = text(&lines)
            .iter()
            .filter_map(|l| delivered(l))
            .map(|d| (d.member, d.kind, d.device))
            .collect();
        if EXPECTED
            .iter()
            .all(|(m, k, d)| seen.contains(&(m.to_string(), k.to_string(), d.to_string())))
        {
            break seen;
        }
        if Instant::now() > deadline || demo.try_wait().unwrap().is_some() {
            give_up(&mut demo);
            panic!(
                "not every reading arrived: {seen:?}\nstdout: {:#?}\nstderr: {}",
                text(&lines),
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("delivered: {seen:?}");
    let printed = text(&lines);

    // What was printed as delivered is in the sandbox, for each member.
    let sandbox = after(&printed, "Mon espace santé sandbox: ");
    let http = reqwest::Client::new();
    for (member, id_pe) in [("Alice", "idpe-alice"), ("Bernard", "idpe-bernard")] {
        let printed_for = printed
            .iter()
            .filter_map(|l| delivered(l))
            .filter(|d| d.member == member)
            .count();
        let stored: serde_json::Value = http
            .get(format!("{sandbox}/admin/observations"))
            .query(&[("id_pe", id_pe)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored = stored.as_array().unwrap().len();
        assert!(
            stored >= printed_for,
            "{member}: {printed_for} printed as delivered, {stored} in the sandbox"
        );
    }
    // The web page signs in with the printed password and shows the household's readings.
    let web = printed
        .iter()
        .find_map(|l| l.split_once("Web page: ").map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("no web page in {printed:#?}"));
    let (url, password) = web
        .split_once(" (password: ")
        .unwrap_or_else(|| panic!("{web}"));
    let password = password.trim_end_matches(')');
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let login = browser
        .get(format!("{url}login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .unwrap()
        .captures(&login)
        .unwrap_or_else(|| panic!("no CSRF token in the login page: {login}"))[1]
        .to_owned();
    let wrong = browser
        .post(format!("{url}login"))
        .form(&[("csrf", csrf.as_str()), ("password", "not-the-password")])
        .send()
        .await
        .unwrap();
    assert!(
        !wrong.url().path().starts_with("/members"),
        "{}",
        wrong.url()
    );
    let signed_in = browser
        .post(format!("{url}login"))
        .form(&[("csrf", csrf.as_str()), ("password", password)])
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let members = browser
        .get(format!("{url}members"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        members.contains("Alice") && members.contains("Bernard"),
        "{members}"
    );

    // The embedded broker carries the hub's status.
    assert_eq!(
        retained(&mqtt_port, "relais/status").as_deref(),
        Some("online")
    );

    let socket = PathBuf::from(after(&printed, "unix:path="));
    assert!(socket.exists(), "the bus socket {}", socket.display());
    let database = PathBuf::from(after(&printed, "Database: "));
    let children = children_of(demo.id());

    let status = Command::new("kill")
        .args([signal, &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stop_deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = demo.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > stop_deadline {
            let _ = demo.kill();
            let _ = demo.wait();
            panic!("the demo did not stop within 30 s of {signal}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    reader.join().unwrap();
    assert!(
        exit.success(),
        "{exit:?}\n{}",
        std::fs::read_to_string(log.path()).unwrap_or_default()
    );
    for child in &children {
        assert!(
            !PathBuf::from(format!("/proc/{child}")).exists(),
            "child process {child} outlived the demo"
        );
    }
    assert!(!socket.exists(), "{} left behind", socket.display());
    assert!(
        !socket.parent().unwrap().exists(),
        "the bus directory was left behind"
    );
    assert!(
        !database.parent().unwrap().exists(),
        "the temporary data directory was left behind"
    );

    let all = lines.lock().unwrap();
    let times: Vec<(Duration, Delivered)> = all
        .iter()
        .filter_map(|(t, l)| Some((*t, delivered(l)?)))
        .collect();
    // The meter's stored records come first, all at once; then the devices' own pace.
    let stored_records = 200;
    let caught_up = times
        .iter()
        .filter(|(_, d)| d.kind == "blood_glucose")
        .nth(stored_records - 1)
        .map(|(t, _)| *t)
        .unwrap();
    let (first, last) = (times[0].0, times[times.len() - 1].0);
    let steady = times.iter().filter(|(t, _)| *t > caught_up).count();
    eprintln!(
        "first reading delivered {:.1} s after start; {stored_records} stored records \
         delivered by {:.1} s; then {steady} readings in {:.1} s ({:.1} per minute)",
        first.as_secs_f64(),
        caught_up.as_secs_f64(),
        (last - caught_up).as_secs_f64(),
        steady as f64 * 60.0 / (last - caught_up).as_secs_f64().max(1.0),
    );
    assert!(all.iter().any(|(_, l)| l == "relais demo stopped."));
    children
}
