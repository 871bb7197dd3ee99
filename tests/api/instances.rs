//! Several latch processes on one PostgreSQL database and one SMTP server, as
//! behind a load balancer: no request fails because another instance exists,
//! and nothing acknowledged is lost when one dies. Needs the server at
//! `LATCH_TEST_DATABASE_URL` (`.ci/with-postgres`); outside CI, without it,
//! each test says so and does nothing. The outbox's leases are also tested
//! with two processes on one SQLite file, which needs nothing.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, SmtpServer};
use crate::process::Process;
use crate::test_db::{fresh_postgres_database, postgres_url};

/// One latch process, spoken to over HTTP.
struct Instance {
    process: Option<Process>,
    base: String,
    client: reqwest::Client,
}

/// A database of their own and the instances on it.
struct Cluster {
    url: String,
    smtp: SmtpServer,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A fresh database on the test server, or None outside CI without one.
    async fn new(test: &str) -> Option<Cluster> {
        let Some(server) = postgres_url() else {
            eprintln!("{test}: no PostgreSQL (set LATCH_TEST_DATABASE_URL; CI always does)");
            return None;
        };
        Some(Cluster {
            url: fresh_postgres_database(&server).await,
            smtp: SmtpServer::start(),
            _dir: tempfile::tempdir().unwrap(),
        })
    }

    /// Processes sharing one SQLite file instead.
    fn on_sqlite() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        Cluster {
            url: format!("sqlite://{}", dir.path().join("shared.db").display()),
            smtp: SmtpServer::start(),
            _dir: dir,
        }
    }

    /// Starts an instance. No secret is configured: the instances must
    /// agree on the one the first of them generated.
    fn start(&self, extra: &[(&str, &str)]) -> Instance {
        let port = self.smtp.port.to_string();
        let mut envs = vec![
            ("LATCH_DATABASE_URL", self.url.as_str()),
            ("LATCH_SMTP_HOST", "127.0.0.1"),
            ("LATCH_SMTP_PORT", port.as_str()),
            ("LATCH_SMTP_TIMEOUT_SECS", "2"),
            ("LATCH_MAIL_LEASE_SECS", "4"),
            ("LATCH_MAIL_RETRY_MAX_SECS", "1"),
            ("LATCH_PASSWORD_SCRYPT_LOG_N", "4"),
            ("LATCH_PASSWORD_SCRYPT_P", "1"),
            ("LATCH_LIMITS_ENABLED", "false"),
        ];
        envs.extend_from_slice(extra);
        let process = Process::start(self._dir.path(), &[], &envs);
        let base = format!("http://{}", process.addr());
        Instance {
            process: Some(process),
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }
}

impl Instance {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}\n{}", self.output()));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn register(&self, username: &str) -> u16 {
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD});
        self.post("/api/auth/register/", body).await.0
    }

    /// Logs in; the (refresh, access) pair.
    async fn login(&self, username: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/auth/login/",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}\n{}", self.output());
        (
            body["refresh"].as_str().unwrap().to_string(),
            body["access"].as_str().unwrap().to_string(),
        )
    }

    async fn refresh(&self, refresh: &str) -> (u16, Value) {
        self.post("/api/auth/token/refresh/", json!({"refresh": refresh}))
            .await
    }

    async fn profile(&self, access: &str) -> u16 {
        self.client
            .get(format!("{}/api/auth/profile/", self.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn output(&self) -> String {
        self.process
            .as_ref()
            .map(Process::output)
            .unwrap_or_default()
    }

    fn kill_hard(&mut self) {
        self.process.take().expect("running").kill_hard();
    }
}

#[tokio::test]
async fn a_registration_race_across_instances_gives_exactly_one_201() {
    let Some(cluster) = Cluster::new("registration race").await else {
        return;
    };
    let (a, b) = (cluster.start(&[]), cluster.start(&[]));
    for round in 0..5 {
        let name = format!("racer{round}");
        let tries = (0..8).map(|n| {
            let instance = if n % 2 == 0 { &a } else { &b };
            instance.register(&name)
        });
        let statuses = join_all(tries).await;
        let created = statuses.iter().filter(|s| **s == 201).count();
        assert_eq!(created, 1, "round {round}: {statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 400),
            "{statuses:?}"
        );
    }
    // A token one instance signed works on the other: they share the
    // generated secret.
    let (_, access) = a.login("racer0").await;
    assert_eq!(b.profile(&access).await, 200);
}

#[tokio::test]
async fn one_reset_link_confirmed_on_two_instances_at_once_succeeds_once() {
    let Some(cluster) = Cluster::new("reset race").await else {
        return;
    };
    let (a, b) = (cluster.start(&[]), cluster.start(&[]));
    for round in 0..5 {
        let name = format!("ann{round}");
        assert_eq!(a.register(&name).await, 201);
        let before = cluster.smtp.received().len();
        let (status, _) = a
            .post(
                "/api/auth/password/reset/",
                json!({"email": format!("{name}@example.com")}),
            )
            .await;
        assert_eq!(status, 200);
        let mail = cluster
            .smtp
            .wait_for_mail(before + 1, Duration::from_secs(10))
            .await
            .pop()
            .unwrap();
        let (uid, token) = mail.reset_params();
        let body = |password: &str| json!({"new_password": password});
        let path = format!("/api/auth/password/reset/confirm/?uid={uid}&token={token}");
        let ((on_a, _), (on_b, _)) = tokio::join!(
            a.post(&path, body("first-new-horse-1")),
            b.post(&path, body("second-new-horse-2"))
        );
        let mut statuses = [on_a, on_b];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "round {round}");
    }
}

#[tokio::test]
async fn a_token_blacklisted_or_logged_out_on_one_instance_is_refused_on_the_other() {
    let Some(cluster) = Cluster::new("revocation across instances").await else {
        return;
    };
    let (a, b) = (cluster.start(&[]), cluster.start(&[]));
    assert_eq!(a.register("ann").await, 201);
    let (refresh, _) = a.login("ann").await;
    assert_eq!(b.refresh(&refresh).await.0, 200);
    let (status, _) = a
        .post("/api/auth/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(b.refresh(&refresh).await.0, 401);

    let (first, access) = b.login("ann").await;
    let (second, _) = a.login("ann").await;
    let logout_all = a
        .client
        .post(format!("{}/api/auth/logout/all/", a.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(logout_all, 200);
    assert_eq!(b.refresh(&first).await.0, 401);
    assert_eq!(b.refresh(&second).await.0, 401);
}

#[tokio::test]
async fn a_rotated_token_replayed_on_another_instance_ends_the_whole_login() {
    let Some(cluster) = Cluster::new("rotation replay").await else {
        return;
    };
    let rotation = [
        ("LATCH_JWT_ROTATE_REFRESH_TOKENS", "true"),
        ("LATCH_JWT_ROTATION_GRACE_SECS", "0"),
    ];
    let (a, b) = (cluster.start(&rotation), cluster.start(&rotation));
    assert_eq!(a.register("ann").await, 201);
    let (first, _) = a.login("ann").await;
    let (status, body) = a.refresh(&first).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh"].as_str().unwrap().to_string();
    // The first token again, on the other instance: a replay.
    assert_eq!(b.refresh(&first).await.0, 401);
    // It revoked the token it had been exchanged for, on every instance.
    assert_eq!(a.refresh(&second).await.0, 401);
    assert_eq!(b.refresh(&second).await.0, 401);
}

#[tokio::test]
async fn with_both_workers_up_every_queued_mail_is_delivered_once() {
    let Some(cluster) = Cluster::new("mail once").await else {
        return;
    };
    each_mail_is_delivered_once(&cluster).await;
}

/// The same leases on SQLite: two processes on one file.
#[tokio::test]
async fn two_processes_on_one_sqlite_file_deliver_each_mail_once() {
    each_mail_is_delivered_once(&Cluster::on_sqlite()).await;
}

async fn each_mail_is_delivered_once(cluster: &Cluster) {
    let (a, b) = (cluster.start(&[]), cluster.start(&[]));
    // Each delivery takes a while, so that both workers are at it at once.
    cluster.smtp.set_delay(Duration::from_millis(20));
    const USERS: usize = 30;
    for n in 0..USERS {
        assert_eq!(a.register(&format!("u{n}")).await, 201);
    }
    let requests = (0..USERS).map(|n| {
        let instance = if n % 2 == 0 { &a } else { &b };
        instance.post(
            "/api/auth/password/reset/",
            json!({"email": format!("u{n}@example.com")}),
        )
    });
    for (status, _) in join_all(requests).await {
        assert_eq!(status, 200);
    }
    cluster
        .smtp
        .wait_for_mail(USERS, Duration::from_secs(20))
        .await;
    // Past a lease, for a second delivery that must not come.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let received = cluster.smtp.received();
    let recipients: HashSet<&String> = received.iter().flat_map(|m| &m.to).collect();
    assert_eq!(recipients.len(), USERS, "every address got its mail");
    assert_eq!(received.len(), USERS, "and only once");
}

#[tokio::test]
async fn failed_logins_of_one_account_count_once_across_instances() {
    let Some(cluster) = Cluster::new("login limit").await else {
        return;
    };
    let limits = [
        ("LATCH_LIMITS_ENABLED", "true"),
        ("LATCH_LIMITS_LOGIN_FAILURES_PER_ACCOUNT", "4"),
    ];
    let (a, b) = (cluster.start(&limits), cluster.start(&limits));
    assert_eq!(a.register("ann").await, 201);
    let wrong = json!({"username": "ann", "password": "not-the-password"});
    let mut statuses = Vec::new();
    for n in 0..8 {
        let instance = if n % 2 == 0 { &a } else { &b };
        statuses.push(instance.post("/api/auth/login/", wrong.clone()).await.0);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429, 429, 429],
        "four failures in all, not four per instance"
    );
    // The right password is refused too, on either instance, until the
    // window lets one more try through.
    let right = json!({"username": "ann", "password": PASSWORD});
    assert_eq!(b.post("/api/auth/login/", right).await.0, 429);
}

#[tokio::test]
async fn an_instance_killed_mid_flood_and_mid_delivery_loses_nothing_acknowledged() {
    let Some(cluster) = Cluster::new("kill -9").await else {
        return;
    };
    let mut a = cluster.start(&[]);
    let b = cluster.start(&[]);
    // The SMTP server holds back its answers: mail is mid-delivery when a dies.
    cluster.smtp.set_delay(Duration::from_millis(50));
    // Clients keep registering and asking for reset mail on a, four at a
    // time; a is killed while they do.
    let (done, stopped) = tokio::sync::watch::channel(false);
    let clients = (0..4).map(|client| {
        let base = a.base.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut users, mut mails) = (Vec::new(), Vec::new());
            for n in 0..25 {
                if *stopped.borrow() {
                    break;
                }
                let name = format!("c{client}n{n}");
                let email = format!("{name}@example.com");
                let body = json!({"username": name, "email": email, "password": PASSWORD});
                let Some(201) = post(&http, &base, "/api/auth/register/", body).await else {
                    break;
                };
                users.push(name);
                let body = json!({"email": email});
                let Some(200) = post(&http, &base, "/api/auth/password/reset/", body).await else {
                    break;
                };
                mails.push(email);
            }
            (users, mails)
        })
    });
    let clients: Vec<_> = clients.collect();
    // Killed while the clients are still at it and its worker is sending.
    while cluster.smtp.received().len() < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.kill_hard();
    let _ = done.send(true);
    let (mut users, mut mails) = (Vec::new(), HashSet::new());
    for client in clients {
        let (u, m) = client.await.unwrap();
        users.extend(u);
        mails.extend(m);
    }
    assert!(users.len() >= 4, "the flood got going: {users:?}");
    // Everything a acknowledged is there for b: the accounts log in, and
    // every mail arrives (what a had claimed, once its lease ends).
    for name in &users {
        b.login(name).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let arrived: HashSet<String> = cluster
            .smtp
            .received()
            .iter()
            .flat_map(|m| m.to.clone())
            .map(|to| to.trim_matches(|c| c == '<' || c == '>').to_string())
            .collect();
        let missing: Vec<&String> = mails.difference(&arrived).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} acknowledged mails never arrived: {missing:?}\n{}",
            missing.len(),
            mails.len(),
            b.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A POST's status, or None when the server did not answer (it was killed).
async fn post(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Option<u16> {
    let response = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    response.bytes().await.ok()?;
    Some(status)
}

#[tokio::test]
async fn three_instances_migrate_one_empty_database_at_once() {
    let Some(cluster) = Cluster::new("migrate at once").await else {
        return;
    };
    let instances: Vec<Instance> = (0..3).map(|_| cluster.start(&[])).collect();
    for instance in &instances {
        let status = instance
            .client
            .get(format!("{}/readyz", instance.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200, "{}", instance.output());
    }
    let version = crate::test_db::client(&cluster.url)
        .await
        .query_one("SELECT version FROM latch_schema", &[])
        .await
        .unwrap()
        .get::<_, i32>(0);
    assert_eq!(version, 5);
}
