//! `sda._sda`: the native module of the Python package `sda`.
//!
//! A thin layer over the `sda` library: numpy arrays in and out, keyword arguments with the
//! command line's defaults, library errors as Python exceptions. Every computation is a call of
//! the library function the command line calls, so that both give the same bits. Each call
//! releases the GIL while it computes, polls for Ctrl-C between steps (through the library's
//! progress callbacks) and then unwinds to here, raising `KeyboardInterrupt`; panics become
//! `sda.SdaError`, never a crash of the interpreter.
//!
//! This file registers the module's contents; each lives in the file of its concept: the
//! exceptions in `errors`, running a call in `compute`, the conversion of arguments in
//! `convert` (arrays, paths) and `observed` (observations), the classes in `data` and `model`,
//! and each free function in the file of its command (`simulate`, `train`, `observe`,
//! `filter`, `evaluate`, `plot`).

mod compute;
mod convert;
mod data;
mod errors;
mod evaluate;
mod filter;
mod model;
mod observe;
mod observed;
mod plot;
mod record;
mod settings;
mod simulate;
mod train;

use pyo3::prelude::*;

use crate::compute::install_panic_hook;
use crate::data::Data;
use crate::errors::{SdaDivergedError, SdaError, add_error_types};
use crate::model::Model;

/// The version of the Rust library (the package's version).
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Keeps freed memory in the process for reuse, as the `sda` binary does at start: the samplers
/// and trainers allocate and free the same multi-megabyte buffers at every step, and glibc's
/// defaults return them to the kernel, so that every step pays page faults to get them back
/// (about 1 s of system time in a one-minute assimilation).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, under glibc's arena lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[pymodule]
fn _sda(m: &Bound<'_, PyModule>) -> PyResult<()> {
    install_panic_hook();
    keep_freed_memory();
    m.add("__version__", version())?;
    m.add("SdaError", m.py().get_type::<SdaError>())?;
    m.add("SdaDivergedError", m.py().get_type::<SdaDivergedError>())?;
    add_error_types(m)?;
    m.add_class::<Data>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(simulate::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(observe::observe, m)?)?;
    m.add_function(wrap_pyfunction!(filter::filter, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(plot::plot_trajectories, m)?)?;
    Ok(())
}
