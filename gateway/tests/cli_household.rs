//! The household commands a headless hub is run with, as processes on a real store: devices
//! (list, rename), the web page's password, members.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use relais::ble::DeviceKind;
use relais::ble::device::Identity;
use relais::store::Store;

fn relais(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relais"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn devices_are_listed_and_renamed_and_the_password_is_set_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.sqlite");
    let config = dir.path().join("relais.toml");
    std::fs::write(&config, format!("[hub]\ndatabase = {db:?}\n")).unwrap();

    let none = relais(&config, &["devices"], None);
    assert!(none.status.success());
    assert!(text(&none).is_empty());
    assert!(String::from_utf8_lossy(&none.stderr).contains("relais scan"));

    let scale = Identity {
        address: "C0:FF:EE:00:00:02".to_owned(),
        name: Some("RS-SCALE".to_owned()),
        ..Identity::default()
    };
    Store::open(&db)
        .unwrap()
        .note_device(&scale, DeviceKind::WeightScale)
        .unwrap();
    let listed = text(&relais(&config, &["devices"], None));
    assert!(
        listed.starts_with("C0:FF:EE:00:00:02\tRS-SCALE\tweight_scale\t"),
        "{listed}"
    );

    let renamed = relais(
        &config,
        &[
            "devices",
            "rename",
            "C0:FF:EE:00:00:02",
            "Balance de la salle de bain",
        ],
        None,
    );
    assert!(renamed.status.success(), "{renamed:?}");
    let json: serde_json::Value = serde_json::from_str(&text(&relais(
        &config,
        &["devices", "list", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(json[0]["label"], "Balance de la salle de bain");
    let unknown = relais(
        &config,
        &["devices", "rename", "C0:FF:EE:00:00:09", "x"],
        None,
    );
    assert!(!unknown.status.success(), "an unknown device is an error");

    // Too short: refused, nothing stored.
    let short = relais(
        &config,
        &["password", "--hub-name", "Maison"],
        Some("court\n"),
    );
    assert!(!short.status.success());
    assert!(Store::open(&db).unwrap().web_admin().unwrap().is_none());
    let set = relais(
        &config,
        &["password", "--hub-name", "Maison"],
        Some("un mot de passe assez long\n"),
    );
    assert!(set.status.success(), "{set:?}");
    let admin = Store::open(&db).unwrap().web_admin().unwrap().unwrap();
    assert_eq!(admin.hub_name, "Maison");
    assert!(relais::web::auth::verify_password(
        "un mot de passe assez long",
        &admin.password_hash
    ));
    assert!(!relais::web::auth::verify_password(
        "court",
        &admin.password_hash
    ));
    // A new password keeps the name.
    relais(&config, &["password"], Some("un autre mot de passe\n"));
    let admin = Store::open(&db).unwrap().web_admin().unwrap().unwrap();
    assert_eq!(admin.hub_name, "Maison");
    assert!(relais::web::auth::verify_password(
        "un autre mot de passe",
        &admin.password_hash
    ));
}
