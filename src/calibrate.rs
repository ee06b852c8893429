//! `--gamma auto`: γ of the SDA likelihood chosen on the data's validation trajectories.
//!
//! SDA's likelihood `N(y; A(x̂₀), Σ_y + γ (σ_t/μ_t)² I)` (docs/guidance.md) needs γ large
//! enough that the guidance does not run away at high noise levels with a crude prior, and small
//! enough that the posterior still follows the observations. Which γ that is depends on the
//! prior, the operator, the noise and the sampler, so it is measured where the answer is known:
//!
//! 1. `W` windows of the validation trajectories (never seen in training) are observed with the
//!    run's own operator and noise stds: `y_w = A(x_w) + σ_y z`.
//! 2. Each candidate γ assimilates every `y_w` with `S` samples and the run's sampler settings,
//!    guard on; a candidate that diverges on any window is out.
//! 3. The candidate whose residuals `(A(x) − y)/σ_y` have the rms closest to 1 (in ratio: `|ln
//!    z|` smallest) is chosen. For a Gaussian prior and posterior sample, `E[z²] = 1` exactly;
//!    `z ≫ 1` says the observations pull less than they should, `z ≪ 1` that the samples fit
//!    the noise.
//!
//! The validation truths also give each candidate's RMSE and spread over RMSE, which
//! are reported beside rms z but do not choose (the chosen rule needs no truth, so it is the
//! same one a user can check on their own run). The result is cached in the run folder under
//! `calibration/`, keyed by everything that went into it, so that it is paid once.

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::assimilate::{Fit, Observed, SampleConfig, observe, sample};
use crate::data::features;
use crate::error::{Error, Result};
use crate::io::{Array, read_json, write_json};
use crate::metrics::{ensemble_mean, ensemble_spread, rmse};
use crate::model::Model;
use crate::score::guidance::Likelihood;

/// The γ values tried, smallest first (the paper's 0.03 among them).
pub const CANDIDATES: [f64; 7] = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0];

/// How much a calibration may spend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Validation windows assimilated per candidate (≥ 1).
    pub windows: usize,
    /// Samples per window (≥ 2, for the interval's coverage).
    pub samples: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            windows: 4,
            samples: 4,
        }
    }
}

/// What one candidate gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its γ.
    pub gamma: f64,
    /// rms of `(A(x) − y)/σ_y` over windows, samples and observed values.
    pub rms_z: Option<f64>,
    /// RMSE of the samples' mean against the validation truths.
    pub rmse: Option<f64>,
    /// The samples' spread (rms over windows) over their mean's RMSE: `sqrt(S/(S+1))` for a
    /// calibrated ensemble of `S` samples.
    pub spread_error: Option<f64>,
    /// Why the guard stopped it, if it did.
    pub diverged: Option<String>,
}

/// The calibration's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The γ chosen.
    pub gamma: f64,
    /// Every candidate's figures.
    pub candidates: Vec<Candidate>,
    /// The budget it ran with.
    pub budget: Budget,
    /// Seconds it took when it ran.
    pub seconds: f64,
    /// The key it is cached under.
    pub key: String,
    /// Whether it ran now (rather than being read from the cache).
    #[serde(skip)]
    pub fresh: bool,
}

impl Calibration {
    /// One line per candidate, then why the chosen one was chosen.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for c in &self.candidates {
            let mark = if c.gamma == self.gamma { "→" } else { " " };
            let line = match (&c.diverged, c.rms_z) {
                (Some(why), _) => format!("diverged ({why})"),
                (None, Some(z)) => format!(
                    "rms z {z:.3}, RMSE {:.4}, spread/RMSE {:.2}",
                    c.rmse.unwrap_or(f64::NAN),
                    c.spread_error.unwrap_or(f64::NAN)
                ),
                (None, None) => "no figures".into(),
            };
            out.push_str(&format!("  {mark} γ = {:<6} {line}\n", c.gamma));
        }
        let z = self
            .candidates
            .iter()
            .find(|c| c.gamma == self.gamma)
            .and_then(|c| c.rms_z)
            .unwrap_or(f64::NAN);
        let s = self.budget.samples as f64;
        out.push_str(&format!(
            "  chose γ = {} on {} validation windows × {} samples: its rms z {z:.3} is the closest \
             to 1 of the candidates that did not diverge ({:.1} s; RMSE and spread against the \
             validation truths, spread/RMSE ≈ {:.2} when calibrated with {} samples)",
            self.gamma,
            self.budget.windows,
            self.budget.samples,
            self.seconds,
            (s / (s + 1.0)).sqrt(),
            self.budget.samples
        ));
        out
    }
}

/// The validation trajectories a model's `--gamma auto` reads: `DATA/valid.npy` of the given
/// data folder, or of the one the run folder's `config.json` names.
pub fn validation_file(model: &Model, run: &Path, data: Option<&Path>) -> Result<PathBuf> {
    let dir = match data
        .map(Path::to_path_buf)
        .or(model.config.data_dir.clone())
    {
        Some(d) => d,
        None => {
            return Err(Error::config(
                "--gamma auto",
                format!(
                    "{} names no data folder to calibrate on; give --calibration-data DIR",
                    run.join("config.json").display()
                ),
            ));
        }
    };
    let path = dir.join("valid.npy");
    if !path.exists() {
        return Err(Error::config(
            "--gamma auto",
            format!(
                "{} not found: the calibration needs the data folder's validation trajectories",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// The `(trajectory, start)` of each of `windows` windows of `length` states spread over `n`
/// trajectories of `l` states: trajectories in turn, then later starts in each.
fn window_starts(n: usize, l: usize, length: usize, windows: usize) -> Vec<(usize, usize)> {
    let per = (l / length).max(1);
    (0..windows)
        .map(|j| {
            let (traj, k) = (j % n, (j / n) % per);
            (traj, k * length)
        })
        .collect()
}

/// The key a calibration is cached under: a fingerprint of everything it depends on.
fn key(observed: &Observed, config: &SampleConfig, budget: &Budget, valid: &Array) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{}|{:?}|{}|{:?}",
        observed.operator,
        observed.noise,
        valid.shape,
        config.length,
        config.steps,
        config.corrections,
        config.method,
        config.grid,
        config.corrector,
        config.tau,
        config.delta,
        config.composition,
        config.sampling,
        config.seed,
        budget,
        valid.data.iter().map(|v| *v as f64).sum::<f64>(),
        CANDIDATES
    );
    crate::output::fingerprint(text.as_bytes())
}

/// The cache file of a calibration in run folder `run`.
pub fn cache_file(run: &Path, key: &str) -> PathBuf {
    run.join("calibration").join(format!("gamma-{key}.json"))
}

/// Chooses γ for `observed` with the sampler settings of `config` (its likelihood is replaced),
/// on the validation trajectories `valid` `(N, L, *state)`; reads or writes the cache in `run`
/// when given. `progress` sees each finished assimilation (of `candidates × windows`).
#[allow(clippy::too_many_arguments)] // each is one input of the calibration, named in its docs
pub fn gamma(
    model: &Model,
    observed: &Observed,
    config: &SampleConfig,
    valid: &Array,
    budget: &Budget,
    run: Option<&Path>,
    device: &Device,
    mut progress: impl FnMut(usize, usize),
) -> Result<Calibration> {
    if budget.windows == 0 || budget.samples < 2 {
        return Err(Error::config(
            "--calibration",
            "needs at least 1 window and 2 samples per window",
        ));
    }
    let shape = &model.config.data.state_shape;
    let (n, l) = (valid.shape[0], valid.shape.get(1).copied().unwrap_or(0));
    if n == 0 || l < config.length {
        return Err(Error::config(
            "--gamma auto",
            format!(
                "the validation trajectories ({} of {} states) are shorter than --length {}",
                n, l, config.length
            ),
        ));
    }
    let key = key(observed, config, budget, valid);
    if let Some(run) = run {
        let path = cache_file(run, &key);
        if path.exists() {
            return read_json(&path);
        }
    }
    let t0 = std::time::Instant::now();
    let cases = cases(observed, config, budget, valid, shape, (n, l))?;
    let total = CANDIDATES.len() * cases.len();
    let mut done = 0;
    let mut candidates = Vec::with_capacity(CANDIDATES.len());
    for &g in &CANDIDATES {
        candidates.push(candidate(
            g,
            model,
            &cases,
            config,
            budget,
            device,
            (&mut done, total),
            &mut progress,
        )?);
    }
    let chosen = candidates
        .iter()
        .filter_map(|c| c.rms_z.map(|z| (c.gamma, z.ln().abs())))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(g, _)| g)
        .ok_or_else(|| {
            Error::config(
                "--gamma auto",
                format!(
                    "every γ from {} to {} diverged on the validation windows: the prior is too \
                     weak for these observations (train it longer, use --likelihood mmps, or more \
                     --steps)",
                    CANDIDATES[0],
                    CANDIDATES[CANDIDATES.len() - 1]
                ),
            )
        })?;
    let calibration = Calibration {
        gamma: chosen,
        candidates,
        budget: budget.clone(),
        seconds: t0.elapsed().as_secs_f64(),
        key,
        fresh: true,
    };
    if let Some(run) = run {
        store(run, &calibration)?;
    }
    Ok(calibration)
}

/// The windows of the validation trajectories `valid` (`n` of `l` states), their truths and
/// their observations (one noise draw each).
fn cases(
    observed: &Observed,
    config: &SampleConfig,
    budget: &Budget,
    valid: &Array,
    shape: &[usize],
    (n, l): (usize, usize),
) -> Result<Vec<(Vec<f32>, Observed)>> {
    let f = features(shape);
    window_starts(n, l, config.length, budget.windows)
        .into_iter()
        .enumerate()
        .map(|(j, (traj, start))| {
            let x =
                valid.data[(traj * l + start) * f..(traj * l + start + config.length) * f].to_vec();
            let y = observe(
                &x,
                config.length,
                shape,
                &observed.operator,
                &observed.noise,
                crate::mcs::splitmix64(config.seed ^ 0xCA11 ^ j as u64),
            )?;
            Ok((
                x,
                Observed {
                    operator: observed.operator.clone(),
                    y,
                    noise: observed.noise.clone(),
                },
            ))
        })
        .collect()
}

/// Samples every case with γ = `g` and measures the fit; `done` counts the assimilations
/// finished (of `total`), which `progress` sees.
#[allow(clippy::too_many_arguments)] // each is one input of the calibration, named in its docs
fn candidate(
    g: f64,
    model: &Model,
    cases: &[(Vec<f32>, Observed)],
    config: &SampleConfig,
    budget: &Budget,
    device: &Device,
    (done, total): (&mut usize, usize),
    progress: &mut impl FnMut(usize, usize),
) -> Result<Candidate> {
    let shape = &model.config.data.state_shape;
    let cfg = SampleConfig {
        samples: budget.samples,
        batch: budget.samples,
        likelihood: Likelihood::Sda { gamma: g },
        guard: true,
        first_batch: 0,
        ..config.clone()
    };
    let (mut z2, mut e2, mut s2) = (0.0, 0.0, 0.0);
    let mut diverged = None;
    for (truth, obs) in cases {
        let x = match sample(model, Some(obs), &cfg, device, |_| {}) {
            Ok(x) => x,
            Err(Error::Diverged { step, steps, t, .. }) => {
                diverged = Some(format!("step {step} of {steps}, t = {t:.3}"));
                *done += cases.len();
                progress((*done).min(total), total);
                break;
            }
            Err(e) => return Err(e),
        };
        let fit = Fit::of(&x, obs, shape)?;
        z2 += fit.rms_z * fit.rms_z;
        let xs: Vec<f64> = x.data.iter().map(|&v| v as f64).collect();
        let t: Vec<f64> = truth.iter().map(|&v| v as f64).collect();
        let r = rmse(&ensemble_mean(&xs, budget.samples), &t);
        e2 += r * r;
        s2 += ensemble_spread(&xs, budget.samples).powi(2);
        *done += 1;
        progress(*done, total);
    }
    let w = cases.len() as f64;
    let ok = diverged.is_none() && (z2 / w).is_finite();
    Ok(Candidate {
        gamma: g,
        rms_z: ok.then(|| (z2 / w).sqrt()),
        rmse: ok.then(|| (e2 / w).sqrt()),
        spread_error: ok.then(|| (s2 / e2).sqrt()),
        diverged,
    })
}

/// Writes `calibration` to its cache file in run folder `run`.
fn store(run: &Path, calibration: &Calibration) -> Result<()> {
    let path = cache_file(run, &calibration.key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_json(&path, calibration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_visit_every_trajectory_before_a_later_start() {
        assert_eq!(
            window_starts(3, 20, 10, 5),
            vec![(0, 0), (1, 0), (2, 0), (0, 10), (1, 10)]
        );
        // Trajectories that hold one window only: starts stay at 0.
        assert_eq!(window_starts(2, 12, 10, 3), vec![(0, 0), (1, 0), (0, 0)]);
    }
}
