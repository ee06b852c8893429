//! Scores of posterior samples against a reference (a particle filter's samples) and a truth:
//! the metrics of the paper's Lorenz study (docs/method.md §7) and those a data-assimilation user
//! expects (RMSE, spread, CRPS, rank histogram). All in physical units.

use serde::Serialize;

use crate::assimilate::{Fit, Observed};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::{Kolmogorov, MarkovChain};
use crate::metrics::{
    coverage, crps, ensemble_mean, ensemble_spread, mmd, rank_histogram, rmse, wasserstein1,
};
use rayon::prelude::*;

/// Everything `sda evaluate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Samples given.
    pub samples: usize,
    /// Samples with NaN or inf (left out of every metric).
    pub failed: usize,
    /// Exact W1 between samples and reference (flattened trajectories, Euclidean cost).
    pub w1: Option<f64>,
    /// Squared MMD (Gaussian kernel, median-heuristic bandwidth) to the reference.
    pub mmd: Option<f64>,
    /// Mean `log p(x_2:L | x_1)` under the true transition.
    pub log_px: Option<f64>,
    /// The same for the reference.
    pub log_px_reference: Option<f64>,
    /// Mean `log p(y | x)` of the samples.
    pub log_py: Option<f64>,
    /// `std(A(x) − y)` over samples and observed values: about the noise std when the samples
    /// explain the observations (docs/method.md §8).
    pub residual_std: Option<f64>,
    /// The rms noise std of the observations, to read `residual_std` against.
    pub noise_std: Option<f64>,
    /// `rms((A(x) − y) / σ_y)` over samples and observed values, each residual divided by its
    /// own noise std: about 1 when the samples explain the observations as well as their noise
    /// allows (per-row stds of a table differ, so this reads better than `residual_std`).
    pub residual_z: Option<f64>,
    /// The share of observed values outside the central 95 % interval of the samples'
    /// predictive distribution `A(x) + N(0, σ_y²)` (about 0.05 when calibrated; see
    /// [`predictive_outside`]).
    pub residual_outside: Option<f64>,
    /// RMSE of the posterior mean to the truth.
    pub rmse: Option<f64>,
    /// Ensemble spread (√ mean variance).
    pub spread: Option<f64>,
    /// Mean CRPS against the truth.
    pub crps: Option<f64>,
    /// Rank histogram of the truth among the samples (counts over all values).
    pub rank_histogram: Option<Vec<usize>>,
    /// The share of the truth's values inside the samples' central 50 % interval.
    pub coverage_50: Option<f64>,
    /// The share of the truth's values inside the samples' central 90 % interval.
    pub coverage_90: Option<f64>,
    /// Spread over the RMSE of the mean: about 1 for calibrated samples (`√(N/(N+1))` for N
    /// of them), below 1 when they are over-confident, above when under-confident.
    pub spread_error: Option<f64>,
}

/// What `rms((A(x) − y)/σ_y)` says about the samples, in words.
pub fn residual_verdict(z: f64) -> &'static str {
    if !z.is_finite() {
        "not finite: the samples do not explain the observations at all"
    } else if z > 2.0 {
        "the observations pull less than they should"
    } else if z < 0.5 {
        "over-fitted to the noise"
    } else {
        "consistent with the noise (calibrated ≈ 1)"
    }
}

/// A warning line where `rms z` or the share of observations outside the predictive 95 %
/// interval is far from what calibrated samples give (`rms z` in [0.5, 2], the share below
/// 0.2, four times the 0.05 expected).
pub fn calibration_warning(z: f64, outside: f64) -> Option<String> {
    let z_off = !(0.5..=2.0).contains(&z);
    let share_off = outside > 0.2 || outside.is_nan();
    let z = if z.abs() >= 1e3 {
        format!("{z:.2e}")
    } else {
        format!("{z:.2}")
    };
    (z_off || share_off).then(|| {
        format!(
            "warning: the samples are not calibrated to the observations (rms z {z}, {:.0} % \
             outside their 95 % interval; calibrated: ≈ 1 and ≈ 5 %): check the likelihood \
             settings (--likelihood, --gamma auto, --steps) and the prior's training",
            100.0 * outside
        )
    })
}

/// Splits `(N, L, *shape)` samples into finite ones (as f64) and a failure count.
pub fn finite_samples(x: &Array) -> (Vec<f64>, usize) {
    finite_samples_at(x, None)
}

/// [`finite_samples`], where a sample fails only for a non-finite value at a position that
/// `keep` (one flag per value of a trajectory) keeps; values left out may be NaN (a fixed mask).
pub fn finite_samples_at(x: &Array, keep: Option<&[bool]>) -> (Vec<f64>, usize) {
    let per = x.data.len() / x.shape[0].max(1);
    let mut out = Vec::with_capacity(x.data.len());
    let mut failed = 0;
    for s in x.data.chunks(per.max(1)) {
        let ok = match keep {
            Some(k) => s.iter().zip(k).all(|(v, &k)| !k || v.is_finite()),
            None => s.iter().all(|v| v.is_finite()),
        };
        if ok {
            out.extend(s.iter().map(|&v| v as f64));
        } else {
            failed += 1;
        }
    }
    (out, failed)
}

/// The values of each trajectory (`per` values each) at the positions `keep` keeps.
fn compact(v: &[f64], per: usize, keep: &[bool]) -> Vec<f64> {
    v.chunks(per)
        .flat_map(|s| s.iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| *v))
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    let f: Vec<f64> = v.iter().copied().filter(|v| v.is_finite()).collect();
    (!f.is_empty()).then(|| f.iter().sum::<f64>() / f.len() as f64)
}

/// Evaluates `samples` against an optional reference, truth (`(1, L, *state)` or `(L,
/// *state)`), chain and observation.
pub fn evaluate(
    samples: &Array,
    reference: Option<&Array>,
    truth: Option<&Array>,
    chain: Option<&dyn MarkovChain>,
    observed: Option<(&Observed, &[usize])>,
) -> Result<Evaluation> {
    evaluate_at(samples, reference, truth, chain, observed, None)
}

/// [`evaluate`] on the values of a trajectory that `keep` keeps (one flag per value, `L · F`;
/// e.g. those not observed, or not masked): the scores against the truth and the reference
/// count only those values, and `log p(x)` (which needs whole trajectories) is left out.
pub fn evaluate_at(
    samples: &Array,
    reference: Option<&Array>,
    truth: Option<&Array>,
    chain: Option<&dyn MarkovChain>,
    observed: Option<(&Observed, &[usize])>,
    keep: Option<&[bool]>,
) -> Result<Evaluation> {
    let (l, dim) = check_samples(samples, keep)?;
    let (x, failed) = finite_samples_at(samples, keep);
    let n = x.len() / dim;
    let reference = reference_values(samples, reference, keep)?;
    let truth = truth_values(samples, truth, keep)?;
    let ok = n > 0;
    let log_px = |v: &[f64]| {
        chain
            .filter(|_| keep.is_none())
            .and_then(|c| c.log_prob_trajectories(v, l))
            .and_then(|lp| mean(&lp))
    };
    let good: Array = Array::new(
        std::iter::once(n)
            .chain(samples.shape[1..].iter().copied())
            .collect(),
        x.iter().map(|&v| v as f32).collect(),
    );
    let fit = match observed {
        Some((o, shape)) if ok => Some(Fit::of(&good, o, shape)?),
        _ => None,
    };
    let log_px_value = if ok { log_px(&x) } else { None };
    let log_px_reference = reference.as_deref().and_then(log_px);
    // The scores count the kept values only.
    let (x, truth, reference, dim) = match keep {
        Some(k) => (
            compact(&x, dim, k),
            truth.map(|t| compact(&t, dim, k)),
            reference.map(|r| compact(&r, dim, k)),
            k.iter().filter(|&&k| k).count(),
        ),
        None => (x, truth, reference, dim),
    };
    Ok(Evaluation {
        samples: samples.shape[0],
        failed,
        w1: reference
            .as_ref()
            .filter(|_| ok)
            .map(|r| wasserstein1(&x, r, dim)),
        mmd: reference
            .as_ref()
            .filter(|_| ok)
            .map(|r| mmd(&x, r, dim, None)),
        log_px: log_px_value,
        log_px_reference,
        log_py: fit.as_ref().and_then(|f| mean(&f.log_likelihood)),
        residual_std: fit.as_ref().map(|f| f.residual_std),
        noise_std: fit.as_ref().map(|f| f.noise_std),
        residual_z: fit.as_ref().map(|f| f.rms_z),
        residual_outside: fit.as_ref().map(|f| f.outside),
        rmse: truth
            .as_ref()
            .filter(|_| ok)
            .map(|t| rmse(&ensemble_mean(&x, n), t)),
        spread: (n > 1).then(|| ensemble_spread(&x, n)),
        crps: truth.as_ref().filter(|_| ok).map(|t| crps(&x, n, t)),
        rank_histogram: truth
            .as_ref()
            .filter(|_| ok)
            .map(|t| rank_histogram(&x, n, t)),
        coverage_50: truth
            .as_ref()
            .filter(|_| ok)
            .map(|t| coverage(&x, n, t, 0.5)),
        coverage_90: truth
            .as_ref()
            .filter(|_| ok)
            .map(|t| coverage(&x, n, t, 0.9)),
        spread_error: truth
            .as_ref()
            .filter(|_| n > 1)
            .map(|t| ensemble_spread(&x, n) / rmse(&ensemble_mean(&x, n), t)),
    })
}

/// Refuses `a` (named `what`) unless it holds trajectories of the samples' shape.
fn same_shape(samples: &Array, what: &str, a: &Array) -> Result<()> {
    if a.shape[1..] != samples.shape[1..] || a.shape[0] == 0 {
        return Err(Error::Shape {
            what: what.into(),
            expected: format!(
                "(N, {}) like the samples",
                crate::data::shape_text(&samples.shape[1..])
            ),
            got: a.shape.clone(),
        });
    }
    Ok(())
}

/// Checks the samples `(N ≥ 1, L, D)` and the flags `keep` (one per value of a trajectory, at
/// least one kept): `(L, values per trajectory)`.
fn check_samples(samples: &Array, keep: Option<&[bool]>) -> Result<(usize, usize)> {
    if samples.shape.len() < 3 || samples.shape[0] == 0 {
        return Err(Error::Shape {
            what: "--samples".into(),
            expected: "(N ≥ 1, L, D)".into(),
            got: samples.shape.clone(),
        });
    }
    let l = samples.shape[1];
    let dim = samples.data.len() / samples.shape[0];
    if let Some(k) = keep {
        if k.len() != dim {
            return Err(Error::config(
                "mask",
                format!("{} flags for trajectories of {dim} values", k.len()),
            ));
        }
        if !k.iter().any(|&k| k) {
            return Err(Error::config("mask", "leaves no value to score"));
        }
    }
    Ok((l, dim))
}

/// The reference's trajectories as f64, all finite where `keep` keeps.
fn reference_values(
    samples: &Array,
    reference: Option<&Array>,
    keep: Option<&[bool]>,
) -> Result<Option<Vec<f64>>> {
    let reference = match reference {
        Some(r) => {
            same_shape(samples, "--reference", r)?;
            if keep.is_none() {
                r.check_finite("--reference")?;
            }
            let (v, bad) = finite_samples_at(r, keep);
            if bad > 0 {
                return Err(Error::config(
                    "--reference",
                    format!("{bad} trajectories hold NaN or inf"),
                ));
            }
            Some(v)
        }
        None => None,
    };
    Ok(reference)
}

/// The truth's trajectory as f64 (the first of several), finite where `keep` keeps.
fn truth_values(
    samples: &Array,
    truth: Option<&Array>,
    keep: Option<&[bool]>,
) -> Result<Option<Vec<f64>>> {
    let dim = samples.data.len() / samples.shape[0];
    let truth = match truth {
        Some(t) if t.shape[..] == samples.shape[1..] => {
            Some(t.data.iter().map(|&v| v as f64).collect::<Vec<_>>())
        }
        Some(t) => {
            same_shape(samples, "--truth", t)?;
            Some(t.data[..dim].iter().map(|&v| v as f64).collect::<Vec<_>>())
        }
        None => None,
    };
    if let (Some(t), Some(k)) = (&truth, keep)
        && let Some(i) = (0..dim).find(|&i| k[i] && !t[i].is_finite())
    {
        return Err(Error::config(
            "--truth",
            format!("value {i} of the trajectory is not finite"),
        ));
    }
    Ok(truth)
}

/// How well the physics keeps a field sample (docs/method.md §8, the paper's Figure 5): the first
/// state of each sample is re-simulated with the true model over the sample's length, and the
/// two trajectories compared state by state.
#[derive(Clone, Debug, Serialize)]
pub struct Resimulation {
    /// Samples re-simulated.
    pub samples: usize,
    /// Mean over samples of `‖x_i − x̃_i‖ / ‖x_i‖` at each state `i` (`x̃` re-simulated).
    pub relative_error: Vec<f64>,
    /// The same between two samples at the same state (sample `s + 1` against sample `s`),
    /// averaged over states: the spread of the posterior, for scale. Independent flows of equal
    /// energy score about √2.
    pub between_samples: f64,
}

/// Re-simulates the first state of up to `max` finite samples `(N, L, 2, h, w)` with `system`.
pub fn resimulation(system: &Kolmogorov, samples: &Array, max: usize) -> Result<Resimulation> {
    let shape = system.state_shape();
    if samples.shape.len() != 5 || samples.shape[2..] != shape {
        return Err(Error::Shape {
            what: "--samples".into(),
            expected: format!(
                "(N, L, {}) for this system",
                crate::data::shape_text(&shape)
            ),
            got: samples.shape.clone(),
        });
    }
    let l = samples.shape[1];
    let d: usize = shape.iter().product();
    let good: Vec<&[f32]> = samples
        .data
        .chunks(l * d)
        .filter(|s| s.iter().all(|v| v.is_finite()))
        .take(max.max(1))
        .collect();
    if good.is_empty() {
        return Err(Error::config(
            "--samples",
            "no finite sample to re-simulate",
        ));
    }
    let norm = |a: &[f32]| a.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    let dist = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let errors: Vec<Vec<f64>> = good
        .par_iter()
        .map(|s| {
            let r = system.resimulate(&s[..d], l);
            (0..l)
                .map(|i| {
                    let (x, y) = (&s[i * d..(i + 1) * d], &r[i * d..(i + 1) * d]);
                    dist(x, y) / norm(x).max(1e-12)
                })
                .collect()
        })
        .collect();
    let relative_error = (0..l)
        .map(|i| errors.iter().map(|e| e[i]).sum::<f64>() / errors.len() as f64)
        .collect();
    let good = &good;
    let pairs: Vec<f64> = (0..good.len().saturating_sub(1))
        .flat_map(|s| {
            (0..l).map(move |i| {
                let (a, b) = (
                    &good[s][i * d..(i + 1) * d],
                    &good[s + 1][i * d..(i + 1) * d],
                );
                dist(a, b) / norm(a).max(1e-12)
            })
        })
        .collect();
    Ok(Resimulation {
        samples: good.len(),
        relative_error,
        between_samples: mean(&pairs).unwrap_or(f64::NAN),
    })
}

/// DAPPER's time-averaged scores (docs/baselines.md §1, "Scores"): the arithmetic mean over the
/// averaged states of the per-state RMSE of the ensemble mean over components, of the spread
/// (`√ mean_i var_i`, unbiased; 0 for one member) and of the mean CRPS over components.
#[derive(Clone, Debug, Serialize)]
pub struct TimeAveraged {
    /// States averaged over.
    pub states: usize,
    /// Time-mean of `rmse(t) = √(mean_i (x̄_i − x_i)²)`.
    pub rmse: f64,
    /// Time-mean of `spread(t) = √(mean_i var_i)`.
    pub spread: f64,
    /// Time-mean of `crps(t) = mean_i crps_i`.
    pub crps: f64,
    /// The per-state RMSE, for every state of the trajectory (NaN where not averaged).
    pub rmse_series: Vec<f64>,
}

/// [`TimeAveraged`] scores of `(N, L, D)` samples against a `(1, L, D)` or `(L, D)` truth over
/// the states after `skip` (index > skip), and among them only `at` when given (DAPPER's "a"
/// statistics: observed states).
pub fn time_averaged(
    samples: &Array,
    truth: &Array,
    skip: usize,
    at: Option<&[usize]>,
) -> Result<TimeAveraged> {
    if samples.shape.len() != 3 || samples.shape[0] == 0 {
        return Err(Error::Shape {
            what: "samples".into(),
            expected: "(N, L, D)".into(),
            got: samples.shape.clone(),
        });
    }
    let (n, l, d) = (samples.shape[0], samples.shape[1], samples.shape[2]);
    let tshape = &truth.shape;
    if !(tshape[..] == [l, d] || tshape[..] == [1, l, d]) {
        return Err(Error::Shape {
            what: "truth".into(),
            expected: format!("({l}, {d}) or (1, {l}, {d}) like the samples"),
            got: tshape.clone(),
        });
    }
    samples.check_finite("samples")?;
    let mut keep = vec![false; l];
    match at {
        Some(times) => times
            .iter()
            .filter(|&&t| t < l)
            .for_each(|&t| keep[t] = true),
        None => keep.iter_mut().for_each(|k| *k = true),
    }
    keep.iter_mut()
        .take(skip.saturating_add(1).min(l))
        .for_each(|k| *k = false);
    let states: Vec<usize> = (0..l).filter(|&t| keep[t]).collect();
    if states.is_empty() {
        return Err(Error::config(
            "--skip",
            format!("leaves no state to average over (of {l})"),
        ));
    }
    let per: Vec<(usize, f64, f64, f64)> = states
        .par_iter()
        .map(|&t| {
            let mut ens = Vec::with_capacity(n * d);
            for m in 0..n {
                let at = (m * l + t) * d;
                ens.extend(samples.data[at..at + d].iter().map(|&v| v as f64));
            }
            let x: Vec<f64> = truth.data[t * d..(t + 1) * d]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let mean = ensemble_mean(&ens, n);
            let r = rmse(&mean, &x);
            let s = if n >= 2 {
                ensemble_spread(&ens, n)
            } else {
                0.0
            };
            (t, r, s, crps(&ens, n, &x))
        })
        .collect();
    let k = per.len() as f64;
    let mut rmse_series = vec![f64::NAN; l];
    for &(t, r, _, _) in &per {
        rmse_series[t] = r;
    }
    Ok(TimeAveraged {
        states: per.len(),
        rmse: per.iter().map(|p| p.1).sum::<f64>() / k,
        spread: per.iter().map(|p| p.2).sum::<f64>() / k,
        crps: per.iter().map(|p| p.3).sum::<f64>() / k,
        rmse_series,
    })
}
