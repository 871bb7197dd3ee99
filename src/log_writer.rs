//! Where log lines go: a buffer in memory that a thread of its own writes to
//! stdout every few milliseconds, so that no request ever waits on stdout
//! (a slow terminal, a stuck pipe). tracing-appender's non-blocking writer
//! does the same line by line, waking its thread for every line: at tens of
//! thousands of requests a second that wake-up cost more than the write it
//! saves (measured in BENCHMARKS.md). Here writers only append: the thread
//! is woken by the first line after it wrote, then gives that line up to
//! `FLUSH_EVERY` to gather company (less when much is waiting). An idle
//! server's log thread sleeps.
//!
//! If the output stops taking lines, at most `MAX_PENDING` bytes wait; later
//! lines are dropped, and how many is written once the output moves again.
//!
//! [`batched_after_first_line`] holds every line back until the caller gives
//! the output's first line ([`BatchedWriter::first_line`], the server's
//! `listening on http://...` that a test harness reads), so that no line
//! logged while starting can come before it; then the held lines follow.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Waiting bytes that wake the writing thread before its time.
const WAKE_AT: usize = 64 * 1024;
/// Waiting bytes past which lines are dropped.
const MAX_PENDING: usize = 4 * 1024 * 1024;

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closing: bool,
    /// Nothing is written before the first line (or the exit).
    held: bool,
    /// Write what is waiting now, without gathering company.
    now: bool,
}

/// The writer to give `tracing_subscriber::fmt().with_writer(...)`.
#[derive(Clone)]
pub struct BatchedWriter(Arc<Shared>);

/// Writes out what is left when dropped (at exit).
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the thread that writes to `output`.
pub fn batched<W: Write + Send + 'static>(output: W) -> (BatchedWriter, FlushGuard) {
    start(output, false)
}

/// The same, holding every line back until [`BatchedWriter::first_line`]
/// (or until the guard drops: no line is lost if there is no first line).
pub fn batched_after_first_line<W: Write + Send + 'static>(
    output: W,
) -> (BatchedWriter, FlushGuard) {
    start(output, true)
}

fn start<W: Write + Send + 'static>(output: W, held: bool) -> (BatchedWriter, FlushGuard) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending {
            held,
            ..Pending::default()
        }),
        wake: Condvar::new(),
        dropped: AtomicU64::new(0),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("latch-log".into())
            .spawn(move || write_out(&shared, output))
            .expect("starting the log thread")
    };
    (
        BatchedWriter(shared.clone()),
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    )
}

fn lock(shared: &Shared) -> MutexGuard<'_, Pending> {
    // A panic while holding the lock leaves only bytes behind: keep going.
    shared.pending.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_out<W: Write>(shared: &Shared, mut output: W) {
    let mut batch = Vec::new();
    loop {
        let closing = {
            let mut pending = lock(shared);
            while (pending.bytes.is_empty() || pending.held) && !pending.closing {
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            let deadline = Instant::now() + FLUSH_EVERY;
            while pending.bytes.len() < WAKE_AT && !pending.closing && !pending.now {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = shared
                    .wake
                    .wait_timeout(pending, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            pending.now = false;
            std::mem::swap(&mut batch, &mut pending.bytes);
            pending.closing
        };
        if !batch.is_empty() {
            let _ = output.write_all(&batch).and_then(|()| output.flush());
            batch.clear();
        }
        // After the batch: the lines were dropped because it filled the
        // buffer (and the first line stays first).
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                output,
                "latch: {dropped} log lines were dropped: the output did not keep up"
            )
            .and_then(|()| output.flush());
        }
        if closing && lock(shared).bytes.is_empty() {
            return;
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        lock(&self.shared).closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One log line's writer: appends to the buffer.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut pending = lock(self.0);
        if pending.bytes.len() + data.len() > MAX_PENDING {
            drop(pending);
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(data.len());
        }
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(data);
        // The thread sleeps until a first line comes, and cuts its wait for
        // company short when much is waiting: no wake-up for other lines.
        if first || pending.bytes.len() >= WAKE_AT {
            self.0.wake.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BatchedWriter {
    /// Writes `line` and a newline ahead of every line waiting, at once,
    /// and lets the lines held back by [`batched_after_first_line`] follow.
    /// Called once, before anything else could be written, it is the
    /// output's first line.
    pub fn first_line(&self, line: &str) {
        let mut pending = lock(&self.0);
        let mut bytes = Vec::with_capacity(line.len() + 1 + pending.bytes.len());
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        bytes.append(&mut pending.bytes);
        pending.bytes = bytes;
        pending.held = false;
        pending.now = true;
        drop(pending);
        self.0.wake.notify_one();
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records what it got, and can be made to hang.
    #[derive(Clone, Default)]
    struct Output {
        got: Arc<Mutex<Vec<u8>>>,
        stuck: Arc<Mutex<()>>,
        entered: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Write for Output {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.entered.store(true, Ordering::SeqCst);
            let _wait_while_stuck = self.stuck.lock().unwrap();
            self.got.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_and_all_are_written_at_exit() {
        let output = Output::default();
        let (writer, guard) = batched(output.clone());
        for n in 0..1000 {
            writeln!(writer.make_writer(), "line {n}").unwrap();
        }
        drop(guard);
        let got = String::from_utf8(output.got.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_stuck_output_never_holds_up_a_writer_and_drops_are_counted() {
        let output = Output::default();
        let stuck = output.stuck.lock().unwrap();
        let (writer, guard) = batched(output.clone());
        // The thread takes a first batch and hangs on the output.
        writeln!(writer.make_writer(), "first").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !output.entered.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the log thread never wrote");
            std::thread::yield_now();
        }
        let line = vec![b'x'; 1024];
        let started = Instant::now();
        for _ in 0..(2 * MAX_PENDING / line.len()) {
            writer.make_writer().write_all(&line).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(2), "writers waited");
        drop(stuck);
        drop(guard);
        let got = String::from_utf8_lossy(&output.got.lock().unwrap()).into_owned();
        assert!(got.starts_with("first\n"));
        assert!(got.contains("log lines were dropped"), "drops are reported");
        assert!(
            got.len() <= MAX_PENDING + 4096,
            "at most MAX_PENDING waited"
        );
    }

    fn text(output: &Output) -> String {
        String::from_utf8(output.got.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn held_lines_wait_for_the_first_line_then_follow_it() {
        let output = Output::default();
        let (writer, guard) = batched_after_first_line(output.clone());
        writeln!(writer.make_writer(), "early 1").unwrap();
        writeln!(writer.make_writer(), "early 2").unwrap();
        std::thread::sleep(FLUSH_EVERY * 3);
        assert_eq!(text(&output), "", "nothing before the first line");
        writer.first_line("listening on http://127.0.0.1:1");
        // Out before the exit, not held any longer.
        let deadline = Instant::now() + Duration::from_secs(5);
        while text(&output).is_empty() {
            assert!(Instant::now() < deadline, "the first line never came");
            std::thread::yield_now();
        }
        writeln!(writer.make_writer(), "later").unwrap();
        drop(guard);
        assert_eq!(
            text(&output),
            "listening on http://127.0.0.1:1\nearly 1\nearly 2\nlater\n"
        );
    }

    #[test]
    fn held_lines_are_not_lost_without_a_first_line() {
        let output = Output::default();
        let (writer, guard) = batched_after_first_line(output.clone());
        writeln!(writer.make_writer(), "could not start").unwrap();
        drop(guard);
        assert_eq!(text(&output), "could not start\n");
    }
}

#[cfg(test)]
mod idle {
    use super::*;

    /// An output that counts the writes it gets.
    struct Counting(Arc<AtomicU64>);

    impl Write for Counting {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_is_written_within_the_flush_interval_and_lines_close_together_share_a_write() {
        let writes = Arc::new(AtomicU64::new(0));
        let (writer, guard) = batched(Counting(writes.clone()));
        let started = Instant::now();
        for n in 0..100 {
            writeln!(writer.make_writer(), "line {n}").unwrap();
        }
        while writes.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < Duration::from_secs(5), "never written");
            std::thread::yield_now();
        }
        assert!(started.elapsed() < FLUSH_EVERY * 10);
        drop(guard);
        assert!(
            writes.load(Ordering::SeqCst) <= 2,
            "one write for the burst, not one a line"
        );
    }
}
