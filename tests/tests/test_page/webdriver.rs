//! A tiny WebDriver client (W3C WebDriver over HTTP, https://www.w3.org/TR/webdriver2/) for
//! headless Chromium driven by chromedriver: just the commands the test page test needs.
//! Debian's `chromium` and `chromium-driver` are installed on first use when running as root
//! on Debian; anywhere else the test fails saying what to install.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use eas_edge_tests::http::Client;
use eas_edge_tests::process::{ServerProcess, free_port};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PACKAGES: &[&str] = &["chromium", "chromium-driver"];

/// The key under which WebDriver returns an element reference (W3C §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session; the browser and its driver end on drop.
pub struct Browser {
    http: Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    /// Chromium's profile, removed with the browser.
    profile: PathBuf,
    /// Dropped (killed) after `drop` deleted the session.
    _driver: ServerProcess,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with its profile in `dir`, recording every
    /// network request the pages make (the performance log).
    pub fn start(dir: &Path) -> Result<Browser> {
        ensure_installed()?;
        let port = free_port()?;
        let driver = ServerProcess::start(
            "chromedriver",
            Command::new(CHROMEDRIVER).arg(format!("--port={port}")),
            &dir.join("chromedriver.log"),
            SocketAddr::from(([127, 0, 0, 1], port)),
        )?;
        let profile = dir.join("chromium-profile");
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // root in a container: Chromium's sandbox needs user namespaces
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--window-size=900,1400",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": { "performance": "ALL" },
        }}});
        let http = Client::default();
        let base = format!("http://127.0.0.1:{port}");
        let created = call(&http, "POST", &format!("{base}/session"), Some(&capabilities))
            .context("starting Chromium through chromedriver")?;
        let id = created["sessionId"].as_str().context("no sessionId in the new session")?;
        let session = format!("{base}/session/{id}");
        let browser = Browser { http, session, profile, _driver: driver };
        // Debian's Chromium opens its start page (a search engine) first: leave it and forget
        // its requests, so that the log holds only what the tests' pages ask for.
        browser.goto("about:blank")?;
        browser.requested_urls()?;
        Ok(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        call(&self.http, method, &format!("{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", "/url", Some(&json!({ "url": url })))?;
        Ok(())
    }

    fn element(&self, css: &str) -> Result<String> {
        let found = self
            .call("POST", "/element", Some(&json!({ "using": "css selector", "value": css })))
            .with_context(|| format!("finding {css}"))?;
        Ok(found[ELEMENT].as_str().context("no element reference")?.to_owned())
    }

    /// Replaces the text of the input matching `css`.
    pub fn fill(&self, css: &str, text: &str) -> Result<()> {
        let element = self.element(css)?;
        self.call("POST", &format!("/element/{element}/clear"), Some(&json!({})))?;
        self.call("POST", &format!("/element/{element}/value"), Some(&json!({ "text": text })))?;
        Ok(())
    }

    pub fn click(&self, css: &str) -> Result<()> {
        let element = self.element(css)?;
        self.call("POST", &format!("/element/{element}/click"), Some(&json!({})))?;
        Ok(())
    }

    /// Runs `body` as a function in the page and returns what it returns.
    pub fn script(&self, body: &str) -> Result<Value> {
        self.call("POST", "/execute/sync", Some(&json!({ "script": body, "args": [] })))
    }

    /// Runs `body` until it returns something other than `null`/`false`, and returns that.
    pub fn wait_for(&self, body: &str, limit: Duration) -> Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.script(body)?;
            if !(value.is_null() || value == Value::Bool(false)) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("waited {limit:?} in vain for: {body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let encoded = self.call("GET", "/screenshot", None)?;
        let encoded = encoded.as_str().context("screenshot is not a string")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(encoded)?)
    }

    /// The URL of every request the browser's pages sent since the last call (chromedriver's
    /// performance log: DevTools `Network.requestWillBeSent` events).
    pub fn requested_urls(&self) -> Result<Vec<String>> {
        let entries = self.call("POST", "/se/log", Some(&json!({ "type": "performance" })))?;
        let mut urls = Vec::new();
        for entry in entries.as_array().context("the log is not a list")? {
            let message: Value =
                serde_json::from_str(entry["message"].as_str().context("log entry")?)?;
            if message["message"]["method"] == "Network.requestWillBeSent" {
                let url = message["message"]["params"]["request"]["url"].as_str();
                urls.push(url.context("request without URL")?.to_owned());
            }
        }
        Ok(urls)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // ends Chromium; killing only the driver would leave the browser behind
        if let Err(error) = self.call("DELETE", "", None) {
            eprintln!("closing the browser: {error:#}");
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One WebDriver command: the `value` of its answer, or its error as an error.
fn call(http: &Client, method: &str, url: &str, body: Option<&Value>) -> Result<Value> {
    let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
    let headers: &[(&str, &str)] =
        if body.is_some() { &[("Content-Type", "application/json")] } else { &[] };
    let reply = http.send(method, url, None, headers, &bytes)?;
    let answer: Value = serde_json::from_slice(&reply.body).with_context(|| {
        format!("{method} {url}: HTTP {}: {}", reply.status, String::from_utf8_lossy(&reply.body))
    })?;
    let value = answer["value"].clone();
    if reply.status != 200 {
        bail!("{method} {url}: {} ({})", value["error"], value["message"]);
    }
    Ok(value)
}

/// Installs Chromium and chromedriver once per test run, or says how to.
fn ensure_installed() -> Result<()> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let present = || Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if present() {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    let debian = Path::new("/etc/debian_version").exists();
    if !(root && debian) {
        bail!(
            "the browser test needs Debian's {0} (found no {CHROMIUM} or {CHROMEDRIVER}); \
             install them with: sudo apt-get install {0}",
            PACKAGES.join(" ")
        );
    }
    let install = || {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q"])
            .args(["--no-install-recommends", "--no-upgrade"])
            .args(PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    // a fresh machine has no package lists yet
    if !install() {
        let _ = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600", "update", "-q"])
            .status();
        if !install() {
            bail!("installing {} with apt-get failed (see its output above)", PACKAGES.join(" "));
        }
    }
    if !present() {
        bail!(
            "apt-get installed {} but {CHROMIUM} or {CHROMEDRIVER} is missing",
            PACKAGES.join(" ")
        );
    }
    Ok(())
}

/// A directory for the test's browser profile, logs and screenshots, kept after the test so
/// the screenshots can be looked at.
pub fn artifact_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("eas-edge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
