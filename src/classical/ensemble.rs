//! The ensemble Kalman filters (perturbed observations, DEnKF, ETKF, LETKF) and the fixed-lag
//! ensemble Kalman smoother (BASELINES.md §4.1–4.7).

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::{
    Estimate, Method, Problem, Settings, Transform, apply_transform, diverged, finite, forecast,
    initial_ensemble, method_rng, post_process, split, sqrt_transform,
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
    let mut states: Vec<DMatrix<f64>> = Vec::with_capacity(p.length);
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
                    let (y, d) = p.whitened(k, &e);
                    let tr = sqrt_transform(&y, &d, s.finite_size);
                    let start = if k >= s.lag { p.times[k - s.lag] } else { 0 };
                    smooth_back(&mut states[start..t], &tr);
                    e = apply_transform(&e, &tr);
                }
                _ => unreachable!("not an ensemble filter"),
            }
            post_process(&mut e, s, &mut rng);
        }
        if !finite(&e) {
            return Err(diverged(t));
        }
        states.push(e.clone());
        progress(t + 1);
    }
    Ok(Estimate::from_ensembles(&states))
}

/// Applies the current analysis' transform to the lagged ensembles.
fn smooth_back(states: &mut [DMatrix<f64>], tr: &Transform) {
    let one = |e: &mut DMatrix<f64>| *e = apply_transform(e, tr);
    if states.first().map(|e| e.len() * states.len()).unwrap_or(0) >= 1 << 14 {
        states.par_iter_mut().for_each(one);
    } else {
        states.iter_mut().for_each(one);
    }
}

/// Observed anomalies `Y` (unwhitened) and `h(E)` of an ensemble.
fn observed(p: &Problem, e: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
    let he = p.obs.apply_columns(e);
    let (_, y) = split(&he);
    (he, y)
}

/// `A Yᵀ C⁻¹ M` with `C = Y Yᵀ + (N − 1) R`: the gain applied to the columns of `m`.
fn gain_times(
    p: &Problem,
    k: usize,
    a: &DMatrix<f64>,
    y: &DMatrix<f64>,
    m: DMatrix<f64>,
) -> DMatrix<f64> {
    let n1 = (y.ncols() - 1) as f64;
    let mut c = y * y.transpose();
    for i in 0..c.nrows() {
        c[(i, i)] += n1 * p.std[k][i].powi(2);
    }
    let z = match c.clone().cholesky() {
        Some(ch) => ch.solve(&m),
        None => c
            .lu()
            .solve(&m)
            .unwrap_or_else(|| DMatrix::from_element(m.nrows(), m.ncols(), f64::NAN)),
    };
    a * (y.transpose() * z)
}

/// The stochastic EnKF: `E_n ← E_n + K (y − D_n − h(E_n))` with centred perturbations
/// `D ~ N(0, R)` rescaled by `√(N/(N−1))`.
fn perturbed(p: &Problem, k: usize, e: &DMatrix<f64>, rng: &mut StdRng) -> DMatrix<f64> {
    let n = e.ncols();
    let (he, y) = observed(p, e);
    let (_, a) = split(e);
    let pdim = he.nrows();
    let mut pert = DMatrix::from_fn(pdim, n, |i, _| {
        let z: f64 = StandardNormal.sample(rng);
        p.std[k][i] * z
    });
    let mean = pert.column_mean();
    let scale = (n as f64 / (n as f64 - 1.0)).sqrt();
    for mut c in pert.column_iter_mut() {
        c -= &mean;
        c *= scale;
    }
    let mut innov = -he - pert;
    for mut c in innov.column_iter_mut() {
        c += &p.y[k];
    }
    e + gain_times(p, k, &a, &y, innov)
}

/// The deterministic EnKF: the mean gets the Kalman update, the anomalies half of it.
fn denkf(p: &Problem, k: usize, e: &DMatrix<f64>) -> DMatrix<f64> {
    let (he, y) = observed(p, e);
    let (_, a) = split(e);
    let d = &p.y[k] - he.column_mean();
    let mut m = y.clone() * -0.5;
    for mut c in m.column_iter_mut() {
        c += &d;
    }
    e + gain_times(p, k, &a, &y, m)
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
