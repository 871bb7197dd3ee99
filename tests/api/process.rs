//! latch as a separate process, for tests that need the real binary: signals,
//! kill -9, its log output.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_latch");

/// A latch process with its output collected.
pub struct Process {
    pub child: Child,
    /// stdout and stderr, line by line as they arrive.
    output: Arc<Mutex<String>>,
    /// stdout alone.
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts latch in `dir` (so its database is `dir/data/auth.db`) on a free port.
    pub fn start(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Process {
        Process::spawn(dir, &[&["--bind", "127.0.0.1:0"], args].concat(), envs)
    }

    /// Runs `latch <args>` in `dir`, with `envs` added to the environment.
    pub fn spawn(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Process {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            // A free port for the metrics too (the default, 9100, would be
            // shared by the processes tests start side by side).
            .env("LATCH_METRICS_BIND", "127.0.0.1:0")
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .env_remove("LATCH_TEST_DATABASE_URL")
            .env_remove("LATCH_TEST_BACKEND")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        for (stream, only) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                Some(stdout.clone()),
            ),
            (Box::new(child.stderr.take().unwrap()), None),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                    if let Some(only) = &only {
                        only.lock().unwrap().push(line);
                    }
                }
            });
        }
        Process {
            child,
            output,
            stdout,
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The lines written to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The first line written to stdout (waits for it).
    pub fn first_stdout_line(&self) -> String {
        let start = Instant::now();
        loop {
            if let Some(first) = self.stdout_lines().into_iter().next() {
                return first;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nothing on stdout:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let out = self.output();
            if let Some(line) = out.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {needle:?} in:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn addr(&self) -> String {
        let line = self.wait_for("latch is listening");
        line.split("addr=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
