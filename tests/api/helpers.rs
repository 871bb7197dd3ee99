//! Test harness: the real server on a free port, a temporary database, and a
//! real SMTP server (`smtp.rs`) running in this process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use latch::Config;
use latch::config::{MailTransport, Sources};
use serde_json::{Value, json};
use tempfile::TempDir;

pub use crate::smtp::SmtpServer;
pub use crate::test_db::TestDb;

pub const TEST_SECRET: &str = "integration-test-signing-secret-0123456789";
pub const PASSWORD: &str = "correct-horse-9";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub config: Config,
    pub smtp: SmtpServer,
    pub db: TestDb,
    server: Option<latch::Server>,
    _dir: TempDir,
}

/// Defaults for tests: port 0 (for the metrics too, so that servers started
/// side by side do not collide), a temp database, cheap scrypt, a known secret.
pub fn test_config(dir: &TempDir, smtp_port: u16) -> Config {
    let mut config = latch::config::load(Sources::default())
        .expect("defaults load")
        .config;
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.metrics.bind = Some("127.0.0.1:0".parse().unwrap());
    config.database.path = dir.path().join("auth.db");
    config.jwt.secret = Some(TEST_SECRET.into());
    config.password.scrypt_log_n = 4;
    config.password.scrypt_p = 1;
    config.smtp.host = "127.0.0.1".into();
    config.smtp.port = smtp_port;
    config.mail.transport = MailTransport::Smtp;
    config.mail.file_dir = dir.path().join("mail");
    config.mail.retry_max_secs = 1;
    // Tests register many users from one address; tests/api/limits.rs
    // switches limits back on.
    config.limits.enabled = false;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts latch with `customize` applied to the test configuration; the SMTP
/// server is up.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let smtp = SmtpServer::start();
    spawn_app_with_smtp(smtp, customize).await
}

/// Starts latch on a SQLite file whatever the suite's backend: for tests
/// of the file itself (backups, crashes, a full disk).
pub async fn spawn_sqlite_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    spawn_sqlite_app_with_smtp(SmtpServer::start(), customize).await
}

pub async fn spawn_sqlite_app_with_smtp(
    smtp: SmtpServer,
    customize: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_with_smtp(smtp, |config| {
        if config.database.url.take().is_some() {
            config.database.path = sqlite_path_beside(&config.mail.file_dir);
        }
        customize(config)
    })
    .await
}

/// The test folder's `auth.db` (the mail folder is in the same folder).
fn sqlite_path_beside(mail_dir: &std::path::Path) -> PathBuf {
    mail_dir
        .parent()
        .expect("the mail folder is in the test folder")
        .join("auth.db")
}

pub async fn spawn_app_with_smtp(smtp: SmtpServer, customize: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with_clock(smtp, latch::clock::system(), customize).await
}

/// Starts latch reading the time from `clock` (a `ManualClock` to move time).
pub async fn spawn_app_with_clock(
    smtp: SmtpServer,
    clock: latch::clock::SharedClock,
    customize: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir, smtp.port);
    TestDb::create(dir.path()).await.configure(&mut config);
    customize(&mut config);
    let db = TestDb::of(&config);
    config.validate().expect("test config is valid");
    let server = latch::Server::start_with_clock(config.clone(), clock)
        .await
        .expect("latch starts");
    TestApp {
        addr: server.addr(),
        // No test may hang CI: every request gives up after 30 s.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        config,
        smtp,
        db,
        server: Some(server),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The SQLite file, for tests about the file itself (they run on
    /// SQLite whatever the suite's backend).
    pub fn db_path(&self) -> PathBuf {
        match &self.db {
            TestDb::Sqlite(path) => path.clone(),
            TestDb::Postgres { .. } => {
                panic!("this test needs a SQLite database: start it with spawn_sqlite_app_with")
            }
        }
    }

    /// A direct connection to the SQLite file, for what only SQLite has
    /// (triggers in its syntax, pragmas).
    pub fn sqlite(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    /// Runs one statement behind latch's back (both engines' SQL); returns
    /// the rows it changed.
    pub async fn execute(&self, sql: &str) -> u64 {
        self.db.execute(sql).await
    }

    /// The first row a query returns (see [`TestDb::row`]).
    pub async fn row(&self, sql: &str) -> Vec<Value> {
        self.db.row(sql).await
    }

    /// The one value a query returns.
    pub async fn scalar<T: serde::de::DeserializeOwned>(&self, sql: &str) -> T {
        let value = self.db.row(sql).await.swap_remove(0);
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{sql}: {value} is not the type asked for: {e}"))
    }

    /// Removes an account behind latch's back (as an admin might).
    pub async fn delete_user(&self, username: &str) {
        let n = self
            .execute(&format!(
                "DELETE FROM users WHERE username = {}",
                quote(username)
            ))
            .await;
        assert_eq!(n, 1, "no user {username}");
    }

    /// Marks an account inactive (Django's `is_active = False`).
    pub async fn deactivate_user(&self, username: &str) {
        let n = self
            .execute(&format!(
                "UPDATE users SET is_active = false WHERE username = {}",
                quote(username)
            ))
            .await;
        assert_eq!(n, 1, "no user {username}");
    }

    /// Stops the server gracefully and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await
    }

    pub async fn restart_with(&mut self, customize: impl FnOnce(&mut Config)) {
        self.server.take().expect("server running").shutdown().await;
        customize(&mut self.config);
        let server = latch::Server::start(self.config.clone())
            .await
            .expect("latch restarts");
        self.addr = server.addr();
        self.server = Some(server);
    }

    /// What SIGHUP does: reads the TLS files again.
    pub fn reload_tls(&self) -> anyhow::Result<bool> {
        self.server.as_ref().expect("server running").reload_tls()
    }

    /// Where the metrics listener is, if metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().expect("server running").metrics_addr()
    }

    /// `http://ADDR:PORT/metrics` of the metrics listener (it must be on).
    pub fn metrics_url(&self) -> String {
        let addr = self.metrics_addr().expect("metrics are on");
        format!("http://{addr}/metrics")
    }

    pub fn store(&self) -> &latch::store::Store {
        self.server.as_ref().expect("server running").store()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> TestResponse {
        TestResponse::from(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A POST with exactly this content type (or none) and body.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> TestResponse {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        TestResponse::from(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, authorization: Option<&str>) -> TestResponse {
        let mut request = self.client.get(self.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        TestResponse::from(request.send().await.unwrap()).await
    }

    /// A POST with no body and `Authorization: Bearer <access>`.
    pub async fn post_with_bearer(&self, path: &str, access: &str) -> TestResponse {
        TestResponse::from(
            self.client
                .post(self.url(path))
                .header("authorization", format!("Bearer {access}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn request(&self, method: &str, path: &str) -> TestResponse {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        TestResponse::from(
            self.client
                .request(method, self.url(path))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn register(&self, username: &str, email: &str, password: &str) -> TestResponse {
        self.post_json(
            "/api/auth/register/",
            json!({"username": username, "email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> TestResponse {
        self.post_json(
            "/api/auth/login/",
            json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn profile(&self, access: &str) -> TestResponse {
        self.get("/api/auth/profile/", Some(&format!("Bearer {access}")))
            .await
    }

    /// Registers `username` (email `<username>@example.com`, password
    /// [`PASSWORD`]) and logs in: returns (access, refresh).
    pub async fn user_with_tokens(&self, username: &str) -> (String, String) {
        let r = self
            .register(username, &format!("{username}@example.com"), PASSWORD)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        (
            body["access"].as_str().unwrap().into(),
            body["refresh"].as_str().unwrap().into(),
        )
    }

    pub async fn request_reset(&self, email: &str) -> TestResponse {
        self.post_json("/api/auth/password/reset/", json!({"email": email}))
            .await
    }

    /// Registers `username` (`<username>@example.com`, [`PASSWORD`]), asks
    /// for a reset, and returns the (uid, token) of the link in the mail.
    pub async fn user_with_reset_link(&self, username: &str) -> (String, String) {
        let email = format!("{username}@example.com");
        let r = self.register(username, &email, PASSWORD).await;
        assert_eq!(r.status, 201, "{}", r.text);
        self.request_reset(&email).await;
        let mail = self.smtp.wait_for_mail(1, Duration::from_secs(10)).await;
        mail[0].reset_params()
    }

    pub async fn confirm_reset(&self, uid: &str, token: &str, new_password: &str) -> TestResponse {
        let path = format!("/api/auth/password/reset/confirm/?uid={uid}&token={token}");
        self.post_json(&path, json!({"new_password": new_password}))
            .await
    }
}

impl TestApp {
    /// Stops the server gracefully.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops the server gracefully, keeping its folder (and database).
    pub async fn stop(&mut self) {
        self.server.take().expect("server running").shutdown().await;
    }
}

pub struct TestResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl TestResponse {
    pub async fn from(response: reqwest::Response) -> TestResponse {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        TestResponse {
            status,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Status and the exact body text, for comparing as a client would.
    pub fn assert(&self, status: u16, body: &str) {
        assert_eq!((self.status, self.text.as_str()), (status, body));
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Signs arbitrary claims with the test secret (HS256 unless told otherwise).
pub fn sign(claims: &Value, algorithm: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The claims of a token, without checking anything.
pub fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn now() -> i64 {
    latch::tokens::unix_now()
}

/// True under CI=true, as CI runs the suite: a test whose tools are missing
/// must then fail, not skip.
/// `text` as an SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Waits until `done` holds, checking every 20 ms; fails the test with
/// `what` if it does not within `timeout`. For events the test cannot be
/// told about directly (a row going away, a worker having tried).
pub async fn wait_until(timeout: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done().await {
        assert!(start.elapsed() < timeout, "{what} (waited {timeout:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
