//! The `mes-sandbox` binary on its own: starts on the given address and serves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the sandbox process this test started, even when the test fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_on_the_given_loopback_address_with_a_database_file() {
    let dir = std::env::temp_dir().join(format!("mes-sandbox-bin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sandbox.sqlite");
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_mes-sandbox"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args(["--user", "alice:idpe-alice:secret"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("MES sandbox listening at ")
        .unwrap()
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let home = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Bac à sable"));
    let discovery: serde_json::Value =
        reqwest::get(format!("{base}/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(discovery["issuer"], base);
    assert!(db.exists());

    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn binary_refuses_a_non_loopback_address_unless_told() {
    let output = Command::new(env!("CARGO_BIN_EXE_mes-sandbox"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-non-loopback"));
}
