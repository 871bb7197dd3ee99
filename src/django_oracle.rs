//! For unit tests: the real Django as an oracle. `tests/interop/<script>`
//! runs under the Python of `LATCH_INTEROP_PYTHON` (else `python3`), reads
//! a JSON job on stdin and answers JSON. Without such a Python the test is
//! skipped, unless CI=true or LATCH_REQUIRE_INTEROP=1: then it fails.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The Python that can import `modules` (e.g. "django, argon2"), or None
/// (the caller returns: skipped) when there is none and none is required.
pub fn python_with(modules: &str) -> Option<String> {
    let python = std::env::var("LATCH_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into());
    let usable = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(python);
    }
    let required = std::env::var("LATCH_REQUIRE_INTEROP").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true");
    assert!(
        !required,
        "LATCH_REQUIRE_INTEROP=1 or CI=true, but {python} cannot import {modules}"
    );
    eprintln!("skipped: no Python that can import {modules} (set LATCH_INTEROP_PYTHON)");
    None
}

/// Runs `tests/interop/<script>` with `job` as JSON on stdin; its answer.
pub fn ask(python: &str, script: &str, job: &impl serde::Serialize) -> Value {
    let script = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let job = serde_json::to_vec(job).unwrap();
    child.stdin.take().unwrap().write_all(&job).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
