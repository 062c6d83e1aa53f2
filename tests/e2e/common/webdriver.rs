//! A small W3C WebDriver client over the test's own HTTP client, for Debian's
//! `chromedriver` driving headless `chromium`. The console's browser tests need a
//! handful of commands (open, find, type, click, read, screenshot); a client crate
//! would add a second HTTP stack for them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The element reference key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` and `chromium`, when installed.
pub fn installed() -> Option<(String, String)> {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("/usr/bin/{n}"))
            .find(|p| std::path::Path::new(p).exists())
    };
    Some((
        find(&["chromedriver"])?,
        find(&["chromium", "chromium-browser"])?,
    ))
}

/// `chromedriver` and `chromium`, or `None` after saying why the browser test is
/// skipped; where `SCIM_BRIDGE_REQUIRE_BROWSER` is set (CI), their absence fails it.
#[allow(clippy::disallowed_methods)] // the test run's own switch, not the daemon's
pub fn installed_or_skip() -> Option<(String, String)> {
    let found = installed();
    if found.is_none() {
        assert!(
            std::env::var_os("SCIM_BRIDGE_REQUIRE_BROWSER").is_none(),
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        );
    }
    found
}

/// A chromedriver process and one browser session on it; both end on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

impl Browser {
    pub async fn start(driver: &str, chromium: &str) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = scim_bridge::oauth::build_client(Duration::from_secs(60)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"]
            }
        }}});
        let mut b = Browser {
            driver: child,
            http,
            session: String::new(),
            base,
        };
        let v = b.call(reqwest::Method::POST, "/session", Some(caps)).await;
        b.session = v["sessionId"].as_str().expect("a session").to_owned();
        b
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut r = self.http.request(method, &url);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.expect("WebDriver request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("WebDriver JSON");
        if !status.is_success() {
            return Err(format!(
                "WebDriver {path}: {status} {}",
                v["value"]["message"]
            ));
        }
        Ok(v["value"].clone())
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.at("/url"),
            Some(json!({"url": url})),
        )
        .await;
    }

    pub async fn title(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.at("/title"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn url(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.at("/url"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The page's text as the person sees it; empty while a page is being replaced
    /// (a form just submitted), when it has no body for a moment.
    pub async fn text(&self) -> String {
        let read = async {
            let v = self
                .try_call(
                    reqwest::Method::POST,
                    &self.at("/element"),
                    Some(json!({"using": "css selector", "value": "body"})),
                )
                .await?;
            let body = v[ELEMENT].as_str().unwrap_or_default().to_owned();
            self.try_call(
                reqwest::Method::GET,
                &self.at(&format!("/element/{body}/text")),
                None,
            )
            .await
        };
        match read.await {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(_) => String::new(),
        }
    }

    /// Waits (up to 10 s) until the page's text contains `needle`; returns the text.
    pub async fn wait_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "never showed {needle:?}: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element `css` selects.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                &self.at("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().expect("an element").to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &self.at(&format!("/element/{e}/click")),
            Some(json!({})),
        )
        .await;
    }

    /// Presses a key in the focused element (`\u{E004}` is Tab, `\u{E007}` Enter).
    pub async fn keys(&self, keys: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "k", "actions":
            keys.chars().flat_map(|c| [
                json!({"type": "keyDown", "value": c.to_string()}),
                json!({"type": "keyUp", "value": c.to_string()}),
            ]).collect::<Vec<_>>()}]});
        self.call(reqwest::Method::POST, &self.at("/actions"), Some(actions))
            .await;
    }

    /// The focused element's text.
    pub async fn focused_text(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.at("/element/active"), None)
            .await;
        let e = v[ELEMENT].as_str().expect("a focused element").to_owned();
        let v = self
            .call(
                reqwest::Method::GET,
                &self.at(&format!("/element/{e}/text")),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// A PNG of the viewport, saved to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self
            .call(reqwest::Method::GET, &self.at("/screenshot"), None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("PNG");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session's browser goes with its driver's process group only if asked.
        let url = format!("{}/session/{}", self.base, self.session);
        let http = self.http.clone();
        let ended = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(async { http.delete(url).send().await.is_ok() }))
                .unwrap_or(false)
        })
        .join()
        .unwrap_or(false);
        let _ = ended;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/console-screenshots`, beside the test binary's `target/debug/deps`.
pub fn screenshots() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target directory")
        .to_path_buf();
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}
