//! `sda.evaluate`: scores of samples against a reference and a truth.

use pyo3::prelude::*;

use crate::compute::compute;
use crate::convert::{array_in, json_to_py, opt_array_in, path_in};
use crate::data::Data;
use crate::errors::{py_err, value_error};
use crate::filter::system_in;
use crate::observed::observed_in;

/// `sda evaluate`: scores of samples `(N, L, *state)` against a reference `(M, L, *state)`
/// (e.g. the particle filter's) and a truth `(1, L, *state)`.
///
/// Returns a dict: `samples`, `failed` (samples with NaN or inf, left out), `w1` (exact
/// Wasserstein-1 to the reference), `mmd`, `log_px` and `log_px_reference` (mean
/// log p(x_2:L | x_1) under the true transition of `system`), `log_py`, `residual_std` and
/// `noise_std` (with `y`, `operator`, `noise`, or `y` a `.csv` table of observations), `rmse`, `spread`, `crps`, `rank_histogram`
/// (with `truth`); a metric whose inputs are missing is None.
///
/// hidden=True scores only the values `y` did not observe (as `sda evaluate --hidden`); mask (an
/// array of the state's or the trajectory's shape, non-zero: scored) chooses the values; a
/// data folder's fixed mask (system given as its path) is left out as well. truth may be
/// `(L, *state)`.
#[pyfunction]
#[pyo3(signature = (samples, reference=None, truth=None, *, system=None, y=None, operator=None, noise=None, hidden=false, mask=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate<'py>(
    py: Python<'py>,
    samples: &Bound<'py, PyAny>,
    reference: Option<&Bound<'py, PyAny>>,
    truth: Option<&Bound<'py, PyAny>>,
    system: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    operator: Option<&str>,
    noise: Option<&Bound<'py, PyAny>>,
    hidden: bool,
    mask: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let samples = array_in(samples, "samples")?;
    if samples.shape.len() < 3 || samples.shape[0] == 0 {
        return Err(value_error(format!(
            "samples: expected a non-empty (N, L, *state) array, got shape {:?}",
            samples.shape
        )));
    }
    let reference = opt_array_in(reference, "reference")?;
    let truth = opt_array_in(truth, "truth")?;
    let system_obj = system;
    let system = system
        .filter(|s| !s.is_none())
        .map(system_in)
        .transpose()?
        .map(|s| s.0);
    let shape = samples.shape[2..].to_vec();
    let observed = match y.filter(|o| !o.is_none()) {
        Some(y) => Some(observed_in(y, operator, noise, &shape, samples.shape[1], None)?.0),
        None => None,
    };
    let keep = scored_in(
        py,
        system_obj,
        &samples.shape[1..],
        observed.as_ref(),
        hidden,
        mask,
    )?;
    let e = compute(py, |_| {
        sda::evaluate::evaluate_at(
            &samples,
            reference.as_ref(),
            truth.as_ref(),
            system.as_ref().and_then(|s| s.chain().ok()),
            observed.as_ref().map(|o| (o, shape.as_slice())),
            keep.as_deref(),
        )
    })?;
    json_to_py(py, &e)
}

/// The values `evaluate` scores: the data folder's fixed mask (system given as a path),
/// `mask`, and with `hidden` the values `observed` did not observe.
fn scored_in(
    _py: Python<'_>,
    system: Option<&Bound<'_, PyAny>>,
    trajectory: &[usize],
    observed: Option<&sda::assimilate::Observed>,
    hidden: bool,
    mask: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Vec<bool>>> {
    let mut fixed = None;
    if let Some(obj) = system.filter(|s| !s.is_none() && s.cast::<Data>().is_err())
        && let Ok(dir) = path_in(obj)
        && dir.is_dir()
    {
        let info = sda::data::read_info(&dir).map_err(py_err)?;
        fixed = sda::record::read_mask(&dir, &info).map_err(py_err)?;
    }
    let mask = opt_array_in(mask.filter(|m| !m.is_none()), "mask")?;
    let unobserved = match (hidden, observed) {
        (true, Some(o)) => Some((&o.operator, "hidden")),
        (true, None) => return Err(value_error("hidden: needs the observations y")),
        (false, _) => None,
    };
    let scored = sda::baseline::points::scored_values(
        trajectory,
        fixed.as_ref().map(|m| (m, "system")),
        mask.as_ref().map(|m| (m, "mask")),
        unobserved,
    )
    .map_err(py_err)?;
    Ok(scored.map(|(keep, _)| keep))
}
