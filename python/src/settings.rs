//! Sampler and likelihood settings from keywords, as the command line's flags.

use pyo3::prelude::*;

use sda::assimilate::SampleConfig;
use sda::options::parse;
use sda::score::preset::{Flags, Preset, Settings};

use crate::errors::{py_err, value_error};

/// The sampler and likelihood settings of `preset`, overridden by every setting given (the
/// command line's `--preset` and flags, with the same names and the same refusals).
#[allow(clippy::too_many_arguments)]
pub(crate) fn settings(
    preset: &str,
    sampler: Option<&str>,
    steps: Option<usize>,
    grid: Option<&str>,
    eta: Option<f64>,
    corrections: Option<usize>,
    corrector: Option<&str>,
    tau: Option<f64>,
    delta: Option<f64>,
    likelihood: Option<&str>,
    solver: Option<&str>,
    iterations: Option<usize>,
    gamma: Option<f64>,
    zeta: Option<f64>,
) -> PyResult<Settings> {
    let preset: Preset = parse("--preset", preset).map_err(py_err)?;
    let flags = Flags {
        sampler: sampler
            .map(|v| parse("--sampler", v))
            .transpose()
            .map_err(py_err)?,
        steps,
        grid: grid
            .map(|v| parse("--grid", v))
            .transpose()
            .map_err(py_err)?,
        eta,
        corrections,
        corrector: corrector
            .map(|v| parse("--corrector", v))
            .transpose()
            .map_err(py_err)?,
        tau,
        delta,
        likelihood: likelihood
            .map(|v| parse("--likelihood", v))
            .transpose()
            .map_err(py_err)?,
        solver: solver
            .map(|v| parse("--solver", v))
            .transpose()
            .map_err(py_err)?,
        iterations,
        gamma,
        zeta,
    };
    preset.resolve(&flags).map_err(py_err)
}

/// `gamma=`: a number, or `"auto"` (chosen on validation trajectories, as `--gamma auto`),
/// checked with `calibration` and `calibration_data`, which go with `"auto"` only. Returns
/// whether it is `"auto"` and the γ of the settings (0.03 for `"auto"`, until calibrated).
pub(crate) fn gamma_in(
    gamma: Option<&Bound<'_, PyAny>>,
    calibration: usize,
    calibration_data: Option<&Bound<'_, PyAny>>,
) -> PyResult<(bool, Option<f64>)> {
    let auto = match gamma {
        Some(g) if g.extract::<String>().is_ok_and(|v| v == "auto") => true,
        Some(g) if g.extract::<f64>().is_err() => {
            return Err(value_error("gamma: a number > 0, or \"auto\""));
        }
        _ => false,
    };
    if !auto && (calibration != 4 || calibration_data.is_some()) {
        return Err(value_error(
            "calibration and calibration_data go with gamma=\"auto\" only",
        ));
    }
    if auto && calibration == 0 {
        return Err(value_error(
            "calibration=0: the calibration needs at least 1 validation window",
        ));
    }
    let gamma = match gamma {
        Some(_) if auto => Some(0.03),
        Some(g) => Some(g.extract::<f64>()?),
        None => None,
    };
    Ok((auto, gamma))
}

/// How trajectories are drawn (`sampling`, `window`, `context`, `conditioning`), as
/// `sda assimilate --sampling`.
pub(crate) struct Drawing<'a> {
    pub(crate) sampling: &'a str,
    pub(crate) window: Option<usize>,
    pub(crate) context: Option<usize>,
    pub(crate) conditioning: &'a str,
    pub(crate) context_std: f64,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn sample_config(
    length: usize,
    samples: usize,
    batch: usize,
    settings: &Settings,
    composition: &str,
    precision: &str,
    seed: u64,
    guard: bool,
    drawing: Drawing<'_>,
) -> PyResult<SampleConfig> {
    Ok(SampleConfig {
        length,
        samples,
        batch,
        composition: parse("--composition", composition).map_err(py_err)?,
        precision: parse("--precision", precision).map_err(py_err)?,
        seed,
        guard,
        sampling: parse("--sampling", drawing.sampling).map_err(py_err)?,
        window: drawing.window,
        context: drawing.context,
        conditioning: parse("--conditioning", drawing.conditioning).map_err(py_err)?,
        context_std: drawing.context_std,
        ..Default::default()
    }
    .with(settings))
}
