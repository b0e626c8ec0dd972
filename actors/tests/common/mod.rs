//! Helpers shared by the end-to-end tests of the `spacetime` binary.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the real `spacetime` binary with `args`.
pub fn spacetime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spacetime"))
        .args(args)
        .output()
        .expect("the spacetime binary runs")
}

/// The command's standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command's standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed command exits 1 with exactly one line, `error: ...`, on stderr.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

/// A temp path as a command-line argument.
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A clock stopped far in the future: every block timestamp is in its past, so imports never
/// wait on the future-drift rule.
pub struct FixedClock;

impl spacetime_actors::clock::Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        u64::MAX / 2
    }
}
