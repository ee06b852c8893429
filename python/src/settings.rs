//! Sampler and likelihood settings from keywords, as the command line's flags.

use pyo3::prelude::*;

use sda::assimilate::SampleConfig;
use sda::options::parse;
use sda::score::preset::{Flags, Preset, Settings};

use crate::errors::py_err;

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
