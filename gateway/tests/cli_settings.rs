//! `relais settings` as a process on a real store: saving, the checks the hub makes at start,
//! the password hidden, precedence of the environment and `--set` over saved values, unset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};

use relais::store::Store;

fn relais(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn line<'a>(shown: &'a str, key: &str) -> &'a str {
    shown
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} in {shown}"))
}

#[test]
fn settings_are_saved_checked_shown_with_their_origin_and_unset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.sqlite");
    let config = dir.path().join("relais.toml");
    std::fs::write(
        &config,
        format!("[hub]\ndatabase = {db:?}\n[mqtt]\nhost = \"file.lan\"\n"),
    )
    .unwrap();

    let shown = stdout(&relais(&config, &["settings"], &[]));
    assert_eq!(
        line(&shown, "mqtt.host"),
        "mqtt.host = file.lan  (file or default)"
    );

    for (key, value) in [
        ("hub.time_zone", "America/Cayenne"),
        ("mqtt.host", "saved.lan"),
        ("mqtt.password", "s3cret-pw"),
    ] {
        let set = relais(&config, &["settings", "set", key, value], &[]);
        assert!(set.status.success(), "{key}: {}", stderr(&set));
        assert!(stdout(&set).contains("restarts"), "{}", stdout(&set));
    }
    let refused = relais(
        &config,
        &["settings", "set", "hub.time_zone", "Europe/Atlantis"],
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Europe/Atlantis"),
        "{}",
        stderr(&refused)
    );
    let refused = relais(&config, &["settings", "set", "mqtt.port", "70000"], &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("mqtt.port"),
        "{}",
        stderr(&refused)
    );
    let refused = relais(
        &config,
        &["settings", "set", "mes.base_url", "http://x"],
        &[],
    );
    assert!(!refused.status.success(), "only the page's keys are saved");

    let saved = Store::open(&db).unwrap().saved_settings().unwrap();
    let keys: Vec<&str> = saved.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["hub.time_zone", "mqtt.host", "mqtt.password"]);

    let shown = stdout(&relais(&config, &["settings"], &[]));
    assert_eq!(
        line(&shown, "hub.time_zone"),
        "hub.time_zone = America/Cayenne  (saved)"
    );
    assert_eq!(line(&shown, "mqtt.host"), "mqtt.host = saved.lan  (saved)");
    assert!(!shown.contains("s3cret-pw"), "{shown}");

    // The environment and --set win over saved values, and say so.
    let shown = stdout(&relais(
        &config,
        &["settings", "--set", "hub.time_zone=Asia/Tokyo"],
        &[("RELAIS_MQTT__HOST", "env.lan")],
    ));
    assert_eq!(
        line(&shown, "mqtt.host"),
        "mqtt.host = env.lan  (RELAIS_MQTT__HOST)"
    );
    assert_eq!(
        line(&shown, "hub.time_zone"),
        "hub.time_zone = Asia/Tokyo  (--set hub.time_zone)"
    );

    let unset = relais(&config, &["settings", "unset", "mqtt.host"], &[]);
    assert!(unset.status.success(), "{}", stderr(&unset));
    let shown = stdout(&relais(&config, &["settings"], &[]));
    assert_eq!(
        line(&shown, "mqtt.host"),
        "mqtt.host = file.lan  (file or default)"
    );
    let again = relais(&config, &["settings", "unset", "mqtt.host"], &[]);
    assert!(stdout(&again).contains("was not saved"));
}
