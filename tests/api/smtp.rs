//! An SMTP server (mailin-embedded) on a loopback port, in the test process,
//! collecting what latch sends. It can start "down" (port reserved, nothing
//! listening) and come up later.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{Handler, Response, Server as SmtpListener, response};

/// A mail as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub raw: String,
}

impl ReceivedMail {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }

    /// The text body, decoded from quoted-printable if it was sent that way.
    pub fn body(&self) -> String {
        let (_, body) = self.raw.split_once("\r\n\r\n").expect("headers end");
        let encoding = self.header("Content-Transfer-Encoding").unwrap_or_default();
        if encoding.eq_ignore_ascii_case("quoted-printable") {
            let decoded =
                quoted_printable::decode(body, quoted_printable::ParseMode::Robust).unwrap();
            String::from_utf8(decoded).unwrap()
        } else {
            body.to_string()
        }
    }

    /// The `uid` and `token` of the reset link in the body.
    pub fn reset_params(&self) -> (String, String) {
        let body = self.body();
        let link = body
            .split_whitespace()
            .find(|w| w.contains("uid="))
            .expect("a reset link");
        let query = link.split_once('?').unwrap().1;
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_string()
        };
        (param("uid"), param("token"))
    }
}

#[derive(Clone, Default)]
struct Collector {
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    /// How long the server takes over each mail before it answers.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    /// Addresses starting with "refused" do not exist here (550), as a real
    /// relay answers for a mailbox it does not have.
    fn rcpt(&mut self, to: &str) -> Response {
        if to.trim_start_matches('<').starts_with("refused") {
            response::NO_MAILBOX
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let delay = self.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(delay));
        let mail = ReceivedMail {
            to: std::mem::take(&mut self.to),
            raw: String::from_utf8_lossy(&self.data).into_owned(),
        };
        self.inbox.lock().unwrap().push(mail);
        response::OK
    }
}

/// An SMTP server (mailin-embedded) on a loopback port, collecting mail.
pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let server = SmtpServer::down();
        server.come_up();
        server
    }

    /// A free port with nothing listening yet: the SMTP server is "down".
    pub fn down() -> SmtpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        SmtpServer {
            port,
            inbox: Arc::default(),
            delay_ms: Arc::default(),
        }
    }

    /// Starts listening on the reserved port.
    pub fn come_up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("SMTP port still free");
        let handler = Collector {
            inbox: self.inbox.clone(),
            delay_ms: self.delay_ms.clone(),
            ..Default::default()
        };
        let mut server = SmtpListener::new(handler);
        server
            .with_name("test-smtp")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
    }

    /// From now on, each mail is answered only after `delay`: a sender is
    /// mid-delivery for that long.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits until at least `count` mails have arrived.
    pub async fn wait_for_mail(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let start = Instant::now();
        loop {
            let mails = self.received();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                start.elapsed() < timeout,
                "expected {count} mails within {timeout:?}, got {}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
