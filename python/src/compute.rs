//! Running a library call from Python: without the GIL, stopped by Ctrl-C, panics as
//! `sda.SdaError`, with a progress bar.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pyo3::prelude::*;

use crate::errors::{SdaError, py_err};

/// Marks an unwind started by a Ctrl-C seen in a progress callback.
struct Interrupted;

thread_local! {
    /// Where and why the last panic of this thread happened (the hook keeps it quiet).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f` without the GIL. `f` gets a `poll` function to call between steps: every 50 ms it
/// takes the GIL for a moment and checks for signals; a Ctrl-C unwinds out of `f` (nothing is
/// half-written: the library writes files atomically) and raises `KeyboardInterrupt` here.
pub(crate) fn compute<T: Send>(
    py: Python<'_>,
    f: impl FnOnce(&mut dyn FnMut()) -> sda::Result<T> + Send,
) -> PyResult<T> {
    let (result, interrupt) = py.detach(|| {
        let mut interrupt: Option<PyErr> = None;
        let mut last = Instant::now();
        let mut poll = || {
            if last.elapsed() < Duration::from_millis(50) {
                return;
            }
            last = Instant::now();
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                interrupt = Some(e);
                resume_unwind(Box::new(Interrupted));
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut poll)));
        (result, interrupt)
    });
    match result {
        Ok(r) => r.map_err(py_err),
        Err(payload) if payload.is::<Interrupted>() => Err(interrupt
            .unwrap_or_else(|| pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"))),
        Err(payload) => Err(SdaError::new_err(format!(
            "internal error: {}",
            panic_message(payload)
        ))),
    }
}

pub(crate) fn bar(len: u64, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}",
        )
        .expect("valid template"),
    );
    pb.set_prefix(what.to_string());
    pb
}
