//! What the command-line tests share: running the built binary and judging its failures.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `sda` with `args`.
pub fn sda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .output()
        .expect("sda runs")
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a failure with a one-line message containing `needle`, and no output at `out`.
pub fn fails_with(o: &Output, out: &Path, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success");
    assert!(err.contains(needle), "message lacks '{needle}': {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!out.exists(), "{} was written", out.display());
}
