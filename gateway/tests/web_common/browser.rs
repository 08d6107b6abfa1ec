//! A headless Chromium driven over WebDriver: chromedriver started on a free port in its own
//! process group (stopped with every browser it started when the test ends, even by a panic),
//! screenshots kept under `target/web-screenshots/`, and axe-core run on the page.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// axe-core, vendored (see `tests/web/vendor/README.md`).
const AXE: &str = include_str!("../web/vendor/axe.min.js");

struct Driver {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browsers it started.
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    shots: PathBuf,
    taken: AtomicUsize,
    _driver: Driver,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; screenshots go to
    /// `target/web-screenshots/<name>/`. Fails when `chromedriver` or `chromium` is missing.
    pub async fn start(name: &str) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = free_port();
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect(
                "chromedriver (Debian packages `chromium` and `chromium-driver`) must be installed",
            );
        let driver = Driver {
            child,
            _profile: profile,
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--window-size=1280,1000",
                    // A French household's browser.
                    "--lang=fr-FR", "--accept-lang=fr-FR,fr",
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ],
            }),
        );
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let client = client.expect("chromedriver answers and starts chromium");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/web-screenshots")
            .join(name);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            client,
            shots,
            taken: AtomicUsize::new(0),
            _driver: driver,
        }
    }

    /// Saves a screenshot of the page as `NN-step.png`.
    pub async fn shot(&self, step: &str) {
        let png = self.client.screenshot().await.unwrap();
        let n = self.taken.fetch_add(1, Ordering::Relaxed) + 1;
        std::fs::write(self.shots.join(format!("{n:02}-{step}.png")), png).unwrap();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks what `css` names (a submit button or a link) and waits for the next page to
    /// load: WebDriver's click may return before the navigation it starts is over.
    pub async fn click(&self, css: &str) {
        self.client
            .execute("window.relaisOldPage = true;", vec![])
            .await
            .unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let loaded = self
                .client
                .execute(
                    "return document.readyState === 'complete' && !window.relaisOldPage;",
                    vec![],
                )
                .await;
            // Errors while the navigation is under way mean "not yet".
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The serious and critical accessibility violations axe-core finds on the page.
    pub async fn axe(&self) -> Vec<Value> {
        self.client.execute(AXE, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document).then(r => done(r.violations), e => done({ error: String(e) }));",
                vec![],
            )
            .await
            .unwrap();
        let violations = result
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("axe failed: {result}"));
        violations
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect()
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
