//! The ensemble Kalman filters (perturbed observations, DEnKF, ETKF, LETKF) and the fixed-lag
//! ensemble Kalman smoother (docs/baselines.md §2–3).

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rayon::prelude::*;

use super::dense::{denkf_analysis, gain_weights, mul};
use super::normals::Normals;
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
    let mut lagged = LagProducts::new(s.lag);
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
                    // The analysis' transform, and through it the lagged states' products.
                    let (y, d) = p.whitened(k, &e);
                    let g = sqrt_transform(&y, &d, s.finite_size).right_factor();
                    e = mul(&e, false, &g, false);
                    lagged.push(g, &mut out, &p.times);
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
    if method == Method::Enks {
        lagged.finish(&mut out, &p.times);
    }
    Ok(out)
}

/// The fixed-lag smoother's products. A state between analyses `a − 1` and `a` (or before the
/// first) is smoothed by the transforms `G` of the `L` analyses from `a` on (DAPPER's `Lag`):
/// `E^s = E^f W_a` with `W_a = G_a ⋯ G_{a+L−1}`. Instead of multiplying each of the `L` lagged
/// ensembles at every analysis (`L · D N²` per analysis), the window products come from
/// prefix and suffix products over blocks of `L` analyses (`W_a` = suffix of `a`'s block ·
/// prefix of the next), and each state is multiplied once, when its window is complete: three
/// `N × N` products and `D N²` per analysis.
struct LagProducts {
    lag: usize,
    /// Analyses so far.
    count: usize,
    /// The last `lag` transforms.
    recent: std::collections::VecDeque<DMatrix<f64>>,
    /// `G_b ⋯ G_i` from the current block's first analysis `b` to each of its analyses.
    prefix: Vec<DMatrix<f64>>,
    /// `G_i ⋯ G_e` from each analysis of the last complete block to its last `e`.
    suffix: Vec<DMatrix<f64>>,
}

impl LagProducts {
    fn new(lag: usize) -> Self {
        Self {
            lag,
            count: 0,
            recent: std::collections::VecDeque::with_capacity(lag + 1),
            prefix: Vec::with_capacity(lag),
            suffix: Vec::new(),
        }
    }

    /// The states that analysis `a`'s window smooths: from analysis `a − 1`'s state (or the
    /// start) to before analysis `a`'s.
    fn group(a: usize, times: &[usize]) -> std::ops::Range<usize> {
        (if a == 0 { 0 } else { times[a - 1] })..times[a]
    }

    /// Takes analysis `count`'s transform; smooths the states whose window it completes.
    fn push(&mut self, g: DMatrix<f64>, out: &mut Estimate, times: &[usize]) {
        let lag = self.lag;
        if lag == 0 {
            return;
        }
        let i = self.count;
        self.count += 1;
        let pos = i % lag;
        let pre = match self.prefix.last() {
            Some(last) if pos > 0 => mul(last, false, &g, false),
            _ => g.clone(),
        };
        self.prefix.push(pre);
        self.recent.push_back(g);
        if self.recent.len() > lag {
            self.recent.pop_front();
        }
        if i + 1 >= lag {
            let a = i + 1 - lag;
            let w = if a.is_multiple_of(lag) {
                self.prefix.last().expect("pushed").clone()
            } else {
                mul(&self.suffix[a % lag], false, &self.prefix[pos], false)
            };
            out.right_multiply(Self::group(a, times), &w);
        }
        if pos + 1 == lag {
            // The block is complete: its suffix products, from its transforms in `recent`.
            let mut suffix: Vec<DMatrix<f64>> = Vec::with_capacity(lag);
            for g in self.recent.iter().rev() {
                let next = match suffix.last() {
                    Some(s) => mul(g, false, s, false),
                    None => g.clone(),
                };
                suffix.push(next);
            }
            suffix.reverse();
            self.suffix = suffix;
            self.prefix.clear();
        }
    }

    /// Smooths the states whose windows the run ended inside: `W_a = G_a ⋯ G_last`.
    fn finish(&mut self, out: &mut Estimate, times: &[usize]) {
        let mut w: Option<DMatrix<f64>> = None;
        for (back, g) in self.recent.iter().rev().enumerate() {
            let a = self.count - 1 - back;
            if a + self.lag <= self.count {
                break;
            }
            let next = match &w {
                Some(w) => mul(g, false, w, false),
                None => g.clone(),
            };
            out.right_multiply(Self::group(a, times), &next);
            w = Some(next);
        }
    }
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
/// `D ~ N(0, R)` rescaled by `√(N/(N−1))`, in whitened form (`R^{-1/2}`): the whitened
/// perturbations are centred standard normal draws.
fn perturbed(p: &Problem, k: usize, e: &DMatrix<f64>, rng: &mut super::MethodRng) -> DMatrix<f64> {
    let n = e.ncols();
    let (y, d) = p.whitened(k, e);
    // The N·p draws of each analysis in bulk (`Normals`), seeded by the method's generator.
    let mut m = DMatrix::zeros(y.nrows(), n);
    Normals::new(rng.random()).fill(m.as_mut_slice());
    let mean = m.column_mean();
    let scale = (n as f64 / (n as f64 - 1.0)).sqrt();
    // M̃ = R^{-1/2} (y 1ᵀ − D − h(E)) = d̃ 1ᵀ − R^{-1/2} D − Ỹ.
    let rows = y.nrows().max(1);
    let cols = m.as_mut_slice().chunks_exact_mut(rows);
    for (c, yc) in cols.zip(y.as_slice().chunks_exact(rows)) {
        for i in 0..c.len() {
            c[i] = d[i] - (c[i] - mean[i]) * scale - yc[i];
        }
    }
    gain_update(e, gain_weights(&y, &m))
}

/// The deterministic EnKF: the mean gets the Kalman update, the anomalies half of it.
fn denkf(p: &Problem, k: usize, e: &DMatrix<f64>) -> DMatrix<f64> {
    let (y, d) = p.whitened(k, e);
    if y.nrows() >= y.ncols() {
        return denkf_analysis(e, &y, &d);
    }
    // M̃ = d̃ 1ᵀ − Ỹ / 2.
    let mut m = &y * -0.5;
    for mut c in m.column_iter_mut() {
        c += &d;
    }
    gain_update(e, gain_weights(&y, &m))
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
    let blocks: Vec<std::ops::Range<usize>> = (0..dim)
        .step_by(s.block)
        .map(|i| i..(i + s.block).min(dim))
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
    let results: Vec<Option<DMatrix<f64>>> = if e.len() * blocks.len() >= 1 << 14 {
        blocks.par_iter().map(local).collect()
    } else {
        blocks.iter().map(local).collect()
    };
    let mut out = e.clone();
    for (b, r) in blocks.iter().zip(results) {
        if let Some(r) = r {
            out.rows_mut(b.start, b.len()).copy_from(&r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window products against multiplying every lagged state at every analysis, on
    /// irregular analysis times, for lags shorter and longer than the run.
    #[test]
    fn lag_products_equal_the_direct_smoother() {
        let (members, length, dim) = (5, 23, 3);
        let times = [0, 2, 3, 7, 8, 9, 13, 17, 18, 21];
        let gs: Vec<DMatrix<f64>> = (0..times.len())
            .map(|k| {
                DMatrix::from_fn(members, members, |i, j| {
                    ((k * 31 + i * 7 + j * 3) as f64 * 0.37).sin() + if i == j { 1.0 } else { 0.0 }
                })
            })
            .collect();
        let start = Estimate {
            members,
            length,
            dim,
            data: (0..members * length * dim)
                .map(|v| (v as f64 * 0.11).cos())
                .collect(),
        };
        for lag in [1, 2, 3, 4, 9, 10, 15] {
            let mut direct = start.clone();
            let mut fast = start.clone();
            let mut lagged = LagProducts::new(lag);
            for (k, g) in gs.iter().enumerate() {
                let from = if k >= lag { times[k - lag] } else { 0 };
                direct.right_multiply(from..times[k], g);
                lagged.push(g.clone(), &mut fast, &times);
            }
            lagged.finish(&mut fast, &times);
            let err = direct
                .data
                .iter()
                .zip(&fast.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-9, "lag {lag}: {err}");
            assert_ne!(direct.data, start.data);
        }
    }
}
