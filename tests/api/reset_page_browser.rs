//! The reset page at work in a real browser: headless Chromium, driven
//! through chromedriver (WebDriver) by fantoccini. A user asks for a reset,
//! the link from the mail is opened, and the page is used as a person would:
//! two passwords that differ (refused before anything is sent), one too
//! short (the server's own words), a good one (success, and the API logs in
//! with it), then the same link again (expired). At least one submission is
//! typed with the keyboard alone. A screenshot is kept in
//! target/screenshots/reset-page.png.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them), or the programs named by LATCH_CHROMIUM and LATCH_CHROMEDRIVER.
//! Without them the test says so and passes, except under CI=true, where it
//! fails.

use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, in_ci, spawn_app};

/// Debian's; LATCH_CHROMIUM and LATCH_CHROMEDRIVER name others.
fn program(variable: &str, debian: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| debian.to_string())
}
/// How long the browser may take to show something; it is polled meanwhile.
const WAIT: Duration = Duration::from_secs(10);
const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";

/// chromedriver on a free loopback port, killed when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start(chromedriver: &str) -> Chromedriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {chromedriver}: {e}"));
        let mut driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Ready once it accepts connections.
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait().unwrap() {
                panic!("{chromedriver} exited at start: {status}");
            }
            assert!(start.elapsed() < WAIT, "{chromedriver} did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session with headless Chromium, the size of a phone.
async fn browser(driver: &Chromedriver, chromium: &str) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
            ],
            // A phone's screen: 390 CSS pixels wide, as the page must fit.
            "mobileEmulation": {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": false},
            },
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("starting headless Chromium through chromedriver: {e}"))
}

/// Where the screenshot goes: `target/screenshots/` (beside `target/tmp`).
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("screenshots")
}

#[tokio::test]
async fn a_person_resets_the_password_on_the_page_in_a_real_browser() {
    let chromium = program("LATCH_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = program("LATCH_CHROMEDRIVER", "/usr/bin/chromedriver");
    let missing: Vec<&str> = [chromium.as_str(), chromedriver.as_str()]
        .into_iter()
        .filter(|p| !Path::new(p).is_file())
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "{} missing (Debian: apt-get install chromium chromium-driver)",
            missing.join(" and ")
        );
        assert!(!in_ci(), "CI=true, but the browser test cannot run: {why}");
        eprintln!("reset page browser test skipped: {why}");
        return;
    }
    let started = Instant::now();
    let app = spawn_app().await;
    let driver = Chromedriver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;
    // The session is closed (and Chromium with it) whatever happens.
    let outcome = AssertUnwindSafe(reset_in_the_browser(&app, &client))
        .catch_unwind()
        .await;
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Ok(Ok(())) => eprintln!(
            "reset page browser test: {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Ok(Err(err)) => panic!("WebDriver: {err}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn reset_in_the_browser(app: &TestApp, client: &Client) -> Result<(), CmdError> {
    // A user asks for a reset; the link is the one in the mail. It names
    // latch by the default reset.url (http://localhost:8000/...): the same
    // path and query are opened on the port the test server got.
    let email = "alice@example.com";
    let r = app.register("alice", email, PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.request_reset(email).await;
    let mail = app.smtp.wait_for_mail(1, WAIT).await;
    let body = mail[0].body();
    let link = body
        .split_whitespace()
        .find(|w| w.contains("uid="))
        .expect("a reset link in the mail");
    let after_scheme = &link[link.find("://").expect("an absolute link") + 3..];
    let path_and_query = &after_scheme[after_scheme.find('/').expect("a path")..];
    assert!(path_and_query.starts_with("/reset-password?uid="), "{link}");
    let page_url = app.url(path_and_query);
    let hash_before: String = app.scalar("SELECT password_hash FROM users").await;

    client.goto(&page_url).await?;
    let form = visible_form(client).await?;
    assert_eq!(client.title().await?, "Reset your password");
    // It fits the phone's width: nothing to scroll sideways.
    let widths = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await?;
    assert_eq!(widths, json!([390, 390]), "[page width, screen width]");
    let first = form.find(Locator::Id("new-password")).await?;
    let second = form.find(Locator::Id("new-password-again")).await?;
    let button = form.find(Locator::Css("button[type=submit]")).await?;

    // 1. Keyboard alone: the page puts the cursor in the first field, Tab
    // goes to the second, Enter submits. The two differ: the page says so
    // and sends nothing.
    assert_eq!(focused_id(client).await?, "new-password");
    client
        .active_element()
        .await?
        .send_keys(&format!("first-choice-1{TAB}"))
        .await?;
    assert_eq!(focused_id(client).await?, "new-password-again");
    client
        .active_element()
        .await?
        .send_keys(&format!("second-choice-2{ENTER}"))
        .await?;
    message(client, "The two passwords do not match.").await?;
    assert_eq!(focused_id(client).await?, "new-password-again");
    assert_eq!(second.attr("aria-invalid").await?.as_deref(), Some("true"));

    // 2. With the mouse, a password the policy refuses: its own words.
    for field in [&first, &second] {
        field.clear().await?;
        field.send_keys("short").await?;
    }
    button.click().await?;
    message(
        client,
        "This password is too short. It must contain at least 8 characters.",
    )
    .await?;
    assert_eq!(focused_id(client).await?, "new-password");
    // Neither attempt changed anything: same hash, the link still alive.
    let hash_now: String = app.scalar("SELECT password_hash FROM users").await;
    assert_eq!(hash_now, hash_before, "the password changed");
    let live: i64 = app.scalar("SELECT COUNT(*) FROM reset_tokens").await;
    assert_eq!(live, 1, "the link was used up");

    // 3. A good one, typed and submitted with the keyboard.
    let new_password = "a-much-better-one-42";
    first.clear().await?;
    second.clear().await?;
    first.send_keys(&format!("{new_password}{TAB}")).await?;
    client
        .active_element()
        .await?
        .send_keys(&format!("{new_password}{ENTER}"))
        .await?;
    message(client, "Your password has been reset.").await?;
    assert!(!form.is_displayed().await?, "the form stays after success");
    save_screenshot(client).await?;
    assert_eq!(app.login("alice", new_password).await.status, 200);
    assert_eq!(app.login("alice", PASSWORD).await.status, 401);

    // 4. The same link again: the page loads, the server refuses the token.
    client.goto(&page_url).await?;
    let form = visible_form(client).await?;
    form.find(Locator::Id("new-password"))
        .await?
        .send_keys(&format!("yet-another-one-43{TAB}"))
        .await?;
    client
        .active_element()
        .await?
        .send_keys(&format!("yet-another-one-43{ENTER}"))
        .await?;
    message(client, "Invalid or expired token").await?;
    assert_eq!(app.login("alice", new_password).await.status, 200);
    Ok(())
}

/// The form, once the page's script has shown it.
async fn visible_form(client: &Client) -> Result<Element, CmdError> {
    client
        .wait()
        .at_most(WAIT)
        .every(Duration::from_millis(20))
        .for_element(Locator::Css("form#reset-form:not([hidden])"))
        .await
}

/// Waits until the page's message shows `text`; returns all it says.
async fn message(client: &Client, text: &str) -> Result<String, CmdError> {
    let shown = format!(r#"//p[@id="message" and not(@hidden) and contains(., "{text}")]"#);
    let waited = client
        .wait()
        .at_most(WAIT)
        .every(Duration::from_millis(20))
        .for_element(Locator::XPath(&shown))
        .await;
    match waited {
        Ok(element) => element.text().await,
        Err(CmdError::WaitTimeout) => {
            let says = client.find(Locator::Id("message")).await?.text().await?;
            panic!("the page did not say {text:?} within {WAIT:?}; it says {says:?}");
        }
        Err(err) => Err(err),
    }
}

/// The id of the element that has the keyboard focus.
async fn focused_id(client: &Client) -> Result<String, CmdError> {
    Ok(client
        .active_element()
        .await?
        .attr("id")
        .await?
        .unwrap_or_default())
}

async fn save_screenshot(client: &Client) -> Result<(), CmdError> {
    let png = client.screenshot().await?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reset-page.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    Ok(())
}
