//! `sda.simulate`: a data set of a built-in system.

use pyo3::prelude::*;

use sda::data::simulate_splits;
use sda::mcs::System;

use crate::compute::{bar, compute};
use crate::data::Data;
use crate::errors::{py_err, value_error};

/// `sda simulate`: independent chains of a system, split 80/10/10 by chain.
///
/// system: `lorenz63`, `lorenz96`, `linear` (a damped spring, whose exact posterior is a
/// Kalman smoother's) or `kolmogorov` (2-D Navier–Stokes; states `(2, size/coarsen,
/// size/coarsen)`). trajectories: number of chains. length: states kept per chain (default
/// 1024; kolmogorov 64). burn_in: transitions dropped before the first kept state (default
/// 1024; kolmogorov 64). size, coarsen: the Kolmogorov grid and block-averaging (default 256, 4).
/// Returns a `Data` with float32 `(N, L, *state)` arrays in physical units.
#[pyfunction]
#[pyo3(signature = (system, *, trajectories=1024, length=None, burn_in=None, seed=0, size=None, coarsen=None, progress=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn simulate(
    py: Python<'_>,
    system: &str,
    trajectories: usize,
    length: Option<usize>,
    burn_in: Option<usize>,
    seed: u64,
    size: Option<usize>,
    coarsen: Option<usize>,
    progress: bool,
) -> PyResult<Data> {
    let mut system = System::from_name(system).map_err(py_err)?;
    match &mut system {
        System::Kolmogorov(k) => {
            k.size = size.unwrap_or(k.size);
            k.coarsen = coarsen.unwrap_or(k.coarsen);
            k.check().map_err(py_err)?;
        }
        _ => {
            if size.is_some() || coarsen.is_some() {
                return Err(value_error(format!(
                    "size/coarsen: only for kolmogorov, not {}",
                    system.name()
                )));
            }
        }
    }
    let n = system.default_length();
    let (length, burn_in) = (length.unwrap_or(n), burn_in.unwrap_or(n));
    let pb = bar(trajectories as u64, "simulate", progress);
    let s = compute(py, |_| {
        simulate_splits(system, trajectories, length, burn_in, seed, &|_| pb.inc(1))
    })?;
    pb.finish_and_clear();
    Data::from_splits(py, s, None)
}
