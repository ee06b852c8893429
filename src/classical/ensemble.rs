//! The ensemble Kalman filters (perturbed observations, DEnKF, ETKF, LETKF) and the fixed-lag
//! ensemble Kalman smoother (BASELINES.md §4.1–4.7).

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::dense::{denkf_weights, gain_weights, mul};
use super::{
    Estimate, Method, Problem, Settings, anomaly_factor, apply_transform, diverged, finite,
    forecast, initial_ensemble, method_rng, post_process, sqrt_transform,
};
use crate::error::Result;

/// Runs one of the ensemble filters, or the EnKS.
pub(super) fn run(
    method: Method,
    s: &Settings,
    p: &Problem,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Estimate> {
    let mut rng = method_rng(s.seed);
    let obs_at = p.obs_index();
    let mut e = initial_ensemble(p, s.members, &mut rng);
    let mut out = Estimate::zeros(s.members, p.length, p.model.dim());
    for t in 0..p.length {
        if t > 0 {
            forecast(p.model, &mut e, s.seed, t);
        }
        if let Some(k) = obs_at[t] {
            match method {
                Method::Enkf => e = perturbed(p, k, &e, &mut rng),
                Method::Denkf => e = denkf(p, k, &e),
                Method::Etkf => {
                    let (y, d) = p.whitened(k, &e);
                    e = apply_transform(&e, &sqrt_transform(&y, &d, s.finite_size));
                }
                Method::Letkf => e = letkf(p, s, k, &e),
                Method::Enks => {
                    // The analysis' transform, applied to the lagged states too.
                    let (y, d) = p.whitened(k, &e);
                    let g = sqrt_transform(&y, &d, s.finite_size).right_factor();
                    let start = if k >= s.lag { p.times[k - s.lag] } else { 0 };
                    out.right_multiply(start..t, &g);
                    e = mul(&e, false, &g, false);
                }
                _ => unreachable!("not an ensemble filter"),
            }
            post_process(&mut e, s, &mut rng);
        }
        if !finite(&e) {
            return Err(diverged(t));
        }
        out.set(t, &e);
        progress(t + 1);
    }
    Ok(out)
}

/// `E + A X` (`A` the anomalies of `E`) for the gain's weights `X` of [`gain_weights`]: the
/// analysis `E + K M` with `K = A Yᵀ (Y Yᵀ + (N − 1) R)⁻¹` and `M = R^{1/2} M̃`.
fn gain_update(e: &DMatrix<f64>, x: DMatrix<f64>) -> DMatrix<f64> {
    let mut w = x;
    for i in 0..w.nrows() {
        w[(i, i)] += 1.0;
    }
    mul(e, false, &anomaly_factor(w), false)
}

/// The stochastic EnKF: `E_n ← E_n + K (y − D_n − h(E_n))` with centred perturbations
/// `D ~ N(0, R)` rescaled by `√(N/(N−1))`, in whitened form (`R^{-1/2}`).
fn perturbed(p: &Problem, k: usize, e: &DMatrix<f64>, rng: &mut super::MethodRng) -> DMatrix<f64> {
    let n = e.ncols();
    let (y, d) = p.whitened(k, e);
    let std = &p.std[k];
    // The N·p normal draws of each analysis come from a xoshiro256++ stream seeded by the
    // method's generator: several times faster than drawing them all from its ChaCha, which
    // cost a third of the filter's time.
    let mut fast = SmallRng::from_rng(rng);
    let pert = DMatrix::from_fn(y.nrows(), n, |i, _| {
        let z: f64 = StandardNormal.sample(&mut fast);
        std[i] * z
    });
    let mean = pert.column_mean();
    let scale = (n as f64 / (n as f64 - 1.0)).sqrt();
    // M̃ = R^{-1/2} (y 1ᵀ − D − h(E)) = d̃ 1ᵀ − R^{-1/2} D − Ỹ.
    let mut m = pert;
    let rows = y.nrows().max(1);
    let cols = m.as_mut_slice().chunks_exact_mut(rows);
    for (c, yc) in cols.zip(y.as_slice().chunks_exact(rows)) {
        for i in 0..c.len() {
            c[i] = d[i] - (c[i] - mean[i]) * scale / std[i] - yc[i];
        }
    }
    gain_update(e, gain_weights(&y, &m))
}

/// The deterministic EnKF: the mean gets the Kalman update, the anomalies half of it.
fn denkf(p: &Problem, k: usize, e: &DMatrix<f64>) -> DMatrix<f64> {
    let (y, d) = p.whitened(k, e);
    // M̃ = d̃ 1ᵀ − Ỹ / 2.
    gain_update(e, denkf_weights(&y, &d))
}

/// The periodic distance between grid points `i` and `j` on a ring of `n`.
fn ring(i: usize, j: usize, n: usize) -> f64 {
    let d = i.abs_diff(j);
    d.min(n - d) as f64
}

/// The LETKF: a square-root analysis per batch of consecutive state variables with the
/// observations' whitened anomalies and innovations tapered by `√ρ` of their mean distance
/// (R-localisation; observations with `ρ ≤ 10⁻³` left out).
fn letkf(p: &Problem, s: &Settings, k: usize, e: &DMatrix<f64>) -> DMatrix<f64> {
    let dim = e.nrows();
    let (y, d) = p.whitened(k, e);
    let batches: Vec<std::ops::Range<usize>> = (0..dim)
        .step_by(s.batch)
        .map(|i| i..(i + s.batch).min(dim))
        .collect();
    let local = |b: &std::ops::Range<usize>| -> Option<DMatrix<f64>> {
        let mut rows = Vec::new();
        let mut weights = Vec::new();
        for (j, &loc) in p.obs.locations.iter().enumerate() {
            let dist = b.clone().map(|i| ring(i, loc, dim)).sum::<f64>() / b.len() as f64;
            let rho = s.taper.weight(dist, s.radius);
            if rho > 1e-3 {
                rows.push(j);
                weights.push(rho.sqrt());
            }
        }
        if rows.is_empty() {
            return None;
        }
        let yl = DMatrix::from_fn(rows.len(), y.ncols(), |r, c| y[(rows[r], c)] * weights[r]);
        let dl = DVector::from_fn(rows.len(), |r, _| d[rows[r]] * weights[r]);
        let tr = sqrt_transform(&yl, &dl, s.finite_size);
        let eb = e.rows(b.start, b.len()).into_owned();
        Some(apply_transform(&eb, &tr))
    };
    let results: Vec<Option<DMatrix<f64>>> = if e.len() * batches.len() >= 1 << 14 {
        batches.par_iter().map(local).collect()
    } else {
        batches.iter().map(local).collect()
    };
    let mut out = e.clone();
    for (b, r) in batches.iter().zip(results) {
        if let Some(r) = r {
            out.rows_mut(b.start, b.len()).copy_from(&r);
        }
    }
    out
}
