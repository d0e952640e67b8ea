//! The browser test page (issue #8) in real headless Chromium, driven over WebDriver: the page
//! loads from the gateway alone, a wrong password gets a friendly message (and no browser
//! password dialog), the right one shows IMAP, folders with their roles, SMTP, the EAS
//! versions and the push method of the real Dovecot + Postfix stack; with SMTP or IMAP down
//! the page says so in words, with no stack trace.

#[path = "test_page/webdriver.rs"]
mod webdriver;

use anyhow::{Context, Result, bail, ensure};
use eas_edge_tests::gateway::{Gateway, GatewayOptions, TEST_DOMAIN};
use eas_edge_tests::http::Client;
use eas_edge_tests::mailstack::MailStack;
use eas_edge_tests::process::free_port;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use webdriver::Browser;

const PASSWORD: &str = "page pw 1";
/// What a browser sends when it navigates to a URL.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// How long the checks may take in the page (the host bounds each at 15 s).
const CHECK_WAIT: Duration = Duration::from_secs(40);

/// Marks of a leaked stack trace or panic, none of which may reach the page.
const TRACE_MARKS: &[&str] = &["panicked", "backtrace", "RUST_BACKTRACE", ".rs:", "wasm trap"];

/// Everything the page shows, read from the DOM in one script.
const READ_PAGE: &str = r#"
const section = id => {
  const node = document.getElementById(id);
  return {
    ok: node.dataset.ok || null,
    message: node.querySelector('.message').textContent,
    detail: node.querySelector('.detail').textContent,
    tags: [...node.querySelectorAll('.tags li')].map(li => li.textContent + (li.className ? ':' + li.className : '')),
  };
};
return {
  state: document.getElementById('status').dataset.state,
  status: document.getElementById('status').textContent,
  imap: section('result-imap'),
  folders: section('result-folders'),
  rows: [...document.querySelectorAll('#result-folders tbody tr')].map(r => [...r.cells].map(c => c.textContent)),
  smtp: section('result-smtp'),
  eas: section('result-eas'),
  push: section('result-push'),
  text: document.body.innerText,
  linked: [...document.querySelectorAll('[src],[href]')].map(n => n.getAttribute('src') || n.getAttribute('href')),
};
"#;

/// Waits until the page has finished a check (success or refusal).
const CHECK_DONE: &str = r#"
const state = document.getElementById('status').dataset.state;
return state === 'done' || state === 'error' ? state : null;
"#;

fn user(local_part: &str) -> String {
    format!("{local_part}@{TEST_DOMAIN}")
}

/// Logs in on the page that `browser` shows and returns what the page then shows.
fn log_in(browser: &Browser, address: &str, password: &str) -> Result<Value> {
    browser.fill("#address", address)?;
    browser.fill("#password", password)?;
    // the previous answer's state must not count as this one's
    browser.script("document.getElementById('status').dataset.state = 'idle'; return null;")?;
    browser.click("#submit")?;
    browser.wait_for(CHECK_DONE, CHECK_WAIT)?;
    browser.script(READ_PAGE)
}

fn no_trace(page: &Value) -> Result<()> {
    let text = page["text"].as_str().context("page text")?;
    for mark in TRACE_MARKS {
        ensure!(!text.contains(mark), "the page shows {mark:?}:\n{text}");
    }
    Ok(())
}

/// A loopback port nothing listens on: a free one, left unbound.
fn closed_port() -> Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// The plain-HTTP contract of the two routes, as any client sees it.
fn check_http_contract(gateway: &Gateway, address: &str) -> Result<()> {
    let http = Client::default();
    let url = gateway.url();
    let page = http.send("GET", &url, None, &[("Accept", BROWSER_ACCEPT)], &[])?;
    ensure!(page.status == 200, "page: HTTP {}", page.status);
    ensure!(page.header("content-type").is_some_and(|v| v.starts_with("text/html")));
    let policy = page.header("content-security-policy").context("no CSP on the page")?;
    ensure!(policy.starts_with("default-src 'none'"), "CSP: {policy}");
    ensure!(policy.contains("connect-src 'self'") && !policy.contains("unsafe-inline"));
    ensure!(page.header("x-frame-options") == Some("DENY"));
    let html = String::from_utf8(page.body)?;
    ensure!(!html.contains("http://") && !html.contains("https://"), "the page names a URL");

    // EAS traffic still reaches the plugin: OPTIONS, and a GET that is not a browser's
    let options = http.options(&url, Some((address, PASSWORD)))?;
    ensure!(options.status == 200 && options.header("ms-asprotocolversions").is_some());
    let not_browser = http.send("GET", &url, None, &[("Accept", "*/*")], &[])?;
    ensure!(
        !not_browser.header("content-type").is_some_and(|v| v.contains("html")),
        "a GET without Accept: text/html got the page"
    );

    // refusals are 401 without a challenge, so browsers show no dialog of their own
    let check = format!("{url}/check");
    for (credentials, expected) in [
        (Some((address, "wrong")), "Wrong address or password."),
        (None, "Enter your mail address and password."),
        (Some(("someone@elsewhere.test", "x")), "does not serve mail addresses at elsewhere.test"),
    ] {
        let reply = http.send("POST", &check, credentials, &[], &[])?;
        ensure!(reply.status == 401, "check {credentials:?}: HTTP {}", reply.status);
        ensure!(reply.header("www-authenticate").is_none(), "a 401 with a challenge");
        let body: Value = serde_json::from_slice(&reply.body)?;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        ensure!(message.contains(expected), "check {credentials:?} said {body}");
    }
    let get = http.send("GET", &check, Some((address, PASSWORD)), &[], &[])?;
    ensure!(get.status == 405, "GET on the check: HTTP {}", get.status);
    // the right password, as the page sends it: the report never echoes it
    let reply = http.send("POST", &check, Some((address, PASSWORD)), &[], &[])?;
    ensure!(reply.status == 200, "check: HTTP {}", reply.status);
    ensure!(
        !String::from_utf8_lossy(&reply.body).contains(PASSWORD),
        "the report holds the password"
    );
    Ok(())
}

#[test]
fn the_page_checks_a_working_account_in_chromium() -> Result<()> {
    let stack = MailStack::start()?;
    let address = user("page");
    stack.add_user(&address, PASSWORD)?;
    let gateway = Gateway::start(&stack)?;
    check_http_contract(&gateway, &address).with_context(|| gateway.log())?;

    let dir = webdriver::artifact_dir("test-page")?;
    let browser = Browser::start(&dir)?;
    let origin = format!("http://{}/", gateway.address);
    browser.goto(&gateway.url())?;
    let title = browser.wait_for(
        "return document.readyState === 'complete' && document.title",
        Duration::from_secs(20),
    )?;
    ensure!(title.as_str().is_some_and(|t| t.contains("check your account")), "title {title}");

    let refused = log_in(&browser, &address, "not the password")?;
    ensure!(refused["state"] == "error", "wrong password: {refused:#}");
    ensure!(
        refused["status"] == "Wrong address or password.",
        "wrong password: {}",
        refused["status"]
    );

    let page = log_in(&browser, &address, PASSWORD)?;
    let shown = || format!("{page:#}\ngateway log:\n{}", gateway.log());
    ensure!(page["state"] == "done", "{}", shown());
    ensure!(page["imap"]["ok"] == "true", "IMAP: {}", shown());
    let extensions = strings(&page["imap"]["tags"]);
    for offered in ["NOTIFY:yes", "IDLE:yes", "CONDSTORE:yes", "SPECIAL-USE:yes"] {
        ensure!(extensions.iter().any(|t| t == offered), "{offered} missing: {extensions:?}");
    }
    ensure!(page["folders"]["ok"] == "true", "folders: {}", shown());
    let rows: Vec<Vec<String>> =
        page["rows"].as_array().into_iter().flatten().map(strings).collect();
    for expected in [
        ["INBOX", "Inbox", "Inbox (type 2)"],
        ["Drafts", "Drafts", "Drafts (type 3)"],
        ["Sent", "Sent", "Sent Items (type 5)"],
        ["Trash", "Trash", "Deleted Items (type 4)"],
    ] {
        ensure!(rows.iter().any(|row| row == &expected), "no row {expected:?} in {rows:?}");
    }
    ensure!(page["smtp"]["ok"] == "true", "SMTP: {}", shown());
    let smtp = strings(&page["smtp"]["tags"]);
    ensure!(smtp.iter().any(|t| t == "AUTH PLAIN"), "SMTP tags {smtp:?}");
    ensure!(page["eas"]["ok"] == "true", "EAS: {}", shown());
    ensure!(
        strings(&page["eas"]["tags"]) == ["12.1", "14.0", "14.1", "16.0", "16.1"],
        "versions: {}",
        page["eas"]["tags"]
    );
    ensure!(strings(&page["push"]["tags"]) == ["NOTIFY"], "push: {}", page["push"]);
    no_trace(&page)?;
    ensure!(!page["text"].as_str().unwrap_or_default().contains(PASSWORD));

    // self-contained: nothing linked, and every request went to the gateway
    ensure!(strings(&page["linked"]).is_empty(), "the page links {}", page["linked"]);
    let urls = browser.requested_urls()?;
    ensure!(urls.iter().any(|u| u.ends_with("/Microsoft-Server-ActiveSync")), "{urls:?}");
    ensure!(urls.iter().any(|u| u.ends_with("/Microsoft-Server-ActiveSync/check")), "{urls:?}");
    let foreign: Vec<&String> = urls.iter().filter(|u| !u.starts_with(&origin)).collect();
    ensure!(foreign.is_empty(), "requests to other origins: {foreign:?}");

    let png = browser.screenshot()?;
    ensure!(png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let file = dir.join("test-page-working.png");
    std::fs::write(&file, &png)?;
    eprintln!("screenshot: {}", file.display());
    Ok(())
}

#[test]
fn the_page_explains_a_broken_backend() -> Result<()> {
    let stack = MailStack::start()?;
    let address = user("broken");
    stack.add_user(&address, PASSWORD)?;
    let smtp_down = GatewayOptions { smtp: Some(closed_port()?), ..Default::default() };
    let smtp_down = Gateway::start_with(&stack, smtp_down)?;
    let imap_down = GatewayOptions { imap_addr: Some(closed_port()?), ..Default::default() };
    let imap_down = Gateway::start_with(&stack, imap_down)?;

    let dir = webdriver::artifact_dir("test-page-broken")?;
    let browser = Browser::start(&dir)?;
    browser.goto(&smtp_down.url())?;
    browser.wait_for("return document.readyState === 'complete'", Duration::from_secs(20))?;
    let page = log_in(&browser, &address, PASSWORD)?;
    let shown = || format!("{page:#}\ngateway log:\n{}", smtp_down.log());
    ensure!(page["state"] == "done", "{}", shown());
    ensure!(page["status"] == "Some checks failed: see below.", "{}", shown());
    ensure!(browser.script("return document.getElementById('status').dataset.ok")? == "false");
    ensure!(page["imap"]["ok"] == "true" && page["eas"]["ok"] == "true", "{}", shown());
    ensure!(page["smtp"]["ok"] == "false", "{}", shown());
    let message = page["smtp"]["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("cannot reach the outgoing mail server")
            && message.contains("sending mail from phones will fail"),
        "SMTP message: {message}"
    );
    ensure!(!page["smtp"]["detail"].as_str().unwrap_or_default().is_empty(), "no detail");
    no_trace(&page)?;
    let png = browser.screenshot()?;
    ensure!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    std::fs::write(dir.join("test-page-smtp-down.png"), &png)?;

    // IMAP down: the login itself cannot be checked, and the page says where it failed
    browser.goto(&imap_down.url())?;
    browser.wait_for("return document.readyState === 'complete'", Duration::from_secs(20))?;
    let page = log_in(&browser, &address, PASSWORD)?;
    ensure!(page["state"] == "error", "{page:#}");
    let status = page["status"].as_str().unwrap_or_default();
    if !status.contains("cannot reach your mail server (IMAP at 127.0.0.1:") {
        bail!("IMAP down: {status}\ngateway log:\n{}", imap_down.log());
    }
    no_trace(&page)?;
    Ok(())
}
