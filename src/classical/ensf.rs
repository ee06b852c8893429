//! The Ensemble Score Filter (EnSF; Bao, Zhang & Zhang, "An ensemble score filter for tracking
//! high-dimensional nonlinear dynamical systems", CMAME 432, 2024): a training-free score-based
//! analysis. Between observations the members follow the true model; at an observed state the
//! analysis ensemble is drawn by a reverse-time SDE in a pseudo-time `t ∈ [0, 1]` whose drift
//! uses the forecast ensemble's Monte-Carlo score and the likelihood's score, damped by
//! `h(t) = 1 − t`.
//!
//! Forward process: `Z_t | Z_0 ~ N(α_t Z_0, β_t² I)` with `α_t = 1 − (1 − ε_α) t` and
//! `β_t² = ε_β + (1 − ε_β) t`, so `dZ = b Z dt + σ dW` with `b = d log α / dt = −(1 − ε_α)/α_t`
//! and `σ² = dβ²/dt − 2 b β² = (1 − ε_β) − 2 b β_t²`.
//!
//! Scores of the forecast `{x_j}`:
//! - paired: trajectory `i` sees only its own member, `−(z − α_t x_i)/β_t²`;
//! - mixture: the score of the Gaussian mixture `Σ_j N(α_t x_j, β_t² I) / J` over `J` members
//!   (all, or a fresh random mini-batch each step), with log-sum-exp weights.
//!
//! Posterior score: `S = S_prior + h(t) J_h(z)ᵀ R⁻¹ (y − h(z))`, the likelihood's gradient taken
//! at the current noisy `z`, clipped element-wise to `±clip`. Euler–Maruyama on the grid
//! `t_n = 1 − n/N_t`, `n = 0 … N_t − 1` (never at `t = 0`), from `z ~ N(0, I)` standardised
//! per component over the ensemble:
//! `z ← z − Δ (b z − σ² S) + √Δ σ ξ`. The state at the end is the analysis ensemble.
//!
//! In the linear-Gaussian case every score is affine in `z`, so each step maps a Gaussian law
//! to a Gaussian law; the tests follow the exact mean and covariance of that recursion (EnSF is
//! biased there, by design: the damped sum of scores is not the score of the diffused posterior).

use nalgebra::DMatrix;
use rand::Rng;
use rand::seq::index::sample;
use rayon::prelude::*;

use super::normals::Normals;
use super::{
    Estimate, MethodRng, Problem, Settings, diverged, finite, forecast, initial_ensemble,
    method_rng, post_process,
};
use crate::error::{Error, Result};

/// How EnSF estimates the forecast's score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum EnsfScore {
    /// Each reverse trajectory uses its own forecast member (`J = 1`, no weights).
    Paired,
    /// The Gaussian-mixture score over a mini-batch of this many members (`None`: all).
    Mixture(Option<usize>),
}

impl std::str::FromStr for EnsfScore {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "--ensf-score",
                format!("'{s}': expected paired, mixture or mixture:J with J ≥ 1"),
            )
        };
        match s.trim() {
            "paired" => Ok(EnsfScore::Paired),
            "mixture" => Ok(EnsfScore::Mixture(None)),
            other => match other.strip_prefix("mixture:") {
                Some(j) => match j.trim().parse::<usize>() {
                    Ok(j) if j >= 1 => Ok(EnsfScore::Mixture(Some(j))),
                    _ => Err(bad()),
                },
                None => Err(bad()),
            },
        }
    }
}

impl std::fmt::Display for EnsfScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnsfScore::Paired => f.write_str("paired"),
            EnsfScore::Mixture(None) => f.write_str("mixture"),
            EnsfScore::Mixture(Some(j)) => write!(f, "mixture:{j}"),
        }
    }
}

/// The weight of the likelihood's score along pseudo-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Damping {
    /// `h(t) = 1 − t`: no likelihood at the pure-noise end, all of it at the data end.
    Linear,
    /// `h(t) = 1`: the undamped likelihood score at every pseudo-time.
    None,
}

impl Damping {
    /// `h(t)`.
    pub fn at(self, t: f64) -> f64 {
        match self {
            Damping::Linear => 1.0 - t,
            Damping::None => 1.0,
        }
    }
}

/// EnSF's settings (the defaults are the authors' Lorenz-96 configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Ensf {
    /// Euler–Maruyama steps of the reverse SDE per analysis (`N_t`).
    pub steps: usize,
    /// `ε_α = α_1`, the signal factor at pseudo-time 1 (in (0, 1]).
    pub eps_alpha: f64,
    /// `ε_β = β_0²`, the floor of the per-member noise variance at pseudo-time 0 (in [0, 1)).
    pub eps_beta: f64,
    /// The forecast's score.
    pub score: EnsfScore,
    /// Element-wise bound on the posterior score (infinite: none).
    pub clip: f64,
    /// The likelihood's damping `h(t)`.
    pub damping: Damping,
}

impl Default for Ensf {
    fn default() -> Self {
        Self {
            steps: 500,
            eps_alpha: 0.5,
            eps_beta: 0.025,
            score: EnsfScore::Paired,
            clip: 1000.0,
            damping: Damping::Linear,
        }
    }
}

/// The coefficients of the forward process at pseudo-time `t`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Coefficients {
    pub alpha: f64,
    pub beta2: f64,
    /// Drift factor `b(t)`.
    pub b: f64,
    /// Diffusion `σ²(t)`.
    pub sigma2: f64,
}

impl Ensf {
    /// `(α, β², b, σ²)` at pseudo-time `t`.
    pub(super) fn at(&self, t: f64) -> Coefficients {
        let alpha = 1.0 - (1.0 - self.eps_alpha) * t;
        let beta2 = self.eps_beta + (1.0 - self.eps_beta) * t;
        let b = -(1.0 - self.eps_alpha) / alpha;
        Coefficients {
            alpha,
            beta2,
            b,
            sigma2: (1.0 - self.eps_beta) - 2.0 * b * beta2,
        }
    }

    /// The settings' errors, one flag at a time.
    pub(super) fn check(&self, members: usize) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::config("--ensf-steps", "must be at least 1"));
        }
        if !(self.eps_alpha > 0.0 && self.eps_alpha <= 1.0) {
            return Err(Error::config(
                "--ensf-eps-alpha",
                format!("must be in (0, 1], got {}", self.eps_alpha),
            ));
        }
        if !(self.eps_beta >= 0.0 && self.eps_beta < 1.0) {
            return Err(Error::config(
                "--ensf-eps-beta",
                format!("must be in [0, 1), got {}", self.eps_beta),
            ));
        }
        if self.clip.is_nan() || self.clip <= 0.0 {
            return Err(Error::config(
                "--ensf-clip",
                format!("must be positive, got {}", self.clip),
            ));
        }
        if let EnsfScore::Mixture(Some(j)) = self.score
            && (j == 0 || j > members)
        {
            return Err(Error::config(
                "--ensf-score",
                format!("a mini-batch of {j} members from an ensemble of {members}"),
            ));
        }
        Ok(())
    }
}

/// Runs the EnSF on `p`.
pub(super) fn run(
    s: &Settings,
    p: &Problem,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Estimate> {
    run_signed(s, p, progress, 1.0)
}

/// [`run`] with the likelihood's score multiplied by `sign` (−1: a deliberately wrong filter,
/// for the tests).
pub(super) fn run_signed(
    s: &Settings,
    p: &Problem,
    progress: &(dyn Fn(usize) + Sync),
    sign: f64,
) -> Result<Estimate> {
    let mut rng = method_rng(s.seed);
    let obs_at = p.obs_index();
    let mut e = initial_ensemble(p, s.members, &mut rng);
    let mut out = Estimate::zeros(s.members, p.length, p.model.dim());
    for (t, &at) in obs_at.iter().enumerate() {
        if t > 0 {
            forecast(p.model, &mut e, s.seed, t);
        }
        if let Some(k) = at {
            if !finite(&e) {
                return Err(diverged(t));
            }
            e = analysis(p, k, &e, &s.ensf, &mut rng, sign);
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

/// The analysis ensemble (`D × N`) of observation `k` from the forecast ensemble `x0`.
pub(super) fn analysis(
    p: &Problem,
    k: usize,
    x0: &DMatrix<f64>,
    s: &Ensf,
    rng: &mut MethodRng,
    sign: f64,
) -> DMatrix<f64> {
    let (d, n) = x0.shape();
    let mut normals = Normals::new(rng.random());
    let mut z = DMatrix::zeros(d, n);
    normals.fill(z.as_mut_slice());
    standardise(&mut z);
    let y = p.y[k].as_slice();
    let precision: Vec<f64> = p.std[k].iter().map(|s| 1.0 / (s * s)).collect();
    let dt = 1.0 / s.steps as f64;
    let mut score = DMatrix::zeros(d, n);
    let mut xi = vec![0.0; d * n];
    for step in 0..s.steps {
        let t = 1.0 - step as f64 * dt;
        let c = s.at(t);
        match s.score {
            EnsfScore::Paired => {
                for ((sv, zv), xv) in score
                    .as_mut_slice()
                    .iter_mut()
                    .zip(z.as_slice())
                    .zip(x0.as_slice())
                {
                    *sv = -(zv - c.alpha * xv) / c.beta2;
                }
            }
            EnsfScore::Mixture(batch) => {
                let members: Vec<usize> = match batch {
                    Some(j) if j < n => sample(rng, n, j).into_vec(),
                    _ => (0..n).collect(),
                };
                mixture_score(&z, x0, &members, c, &mut score);
            }
        }
        let h = sign * s.damping.at(t);
        if h != 0.0 {
            for (zc, mut sc) in z.column_iter().zip(score.column_iter_mut()) {
                let g = p.obs.pullback(zc.as_slice(), |v| {
                    v.iter()
                        .zip(y)
                        .zip(&precision)
                        .map(|((v, y), r)| (y - v) * r)
                        .collect()
                });
                for (sv, gv) in sc.iter_mut().zip(&g) {
                    *sv += h * gv;
                }
            }
        }
        normals.fill(&mut xi);
        let noise = (dt * c.sigma2).sqrt();
        for ((zv, sv), xv) in z.as_mut_slice().iter_mut().zip(score.as_slice()).zip(&xi) {
            let sv = sv.clamp(-s.clip, s.clip);
            *zv -= dt * (c.b * *zv - c.sigma2 * sv);
            *zv += noise * xv;
        }
    }
    z
}

/// Each row (component) of `z` shifted and scaled to mean 0 and unbiased variance 1 over the
/// members (left as drawn for a single member).
fn standardise(z: &mut DMatrix<f64>) {
    let n = z.ncols();
    if n < 2 {
        return;
    }
    for mut row in z.row_iter_mut() {
        let mean = row.sum() / n as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let scale = if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 };
        row.apply(|v| *v = (*v - mean) * scale);
    }
}

/// The score of `Σ_{j ∈ members} N(α x_j, β² I)` at every column of `z`, into `out`:
/// `−(z − α Σ_j w_j x_j)/β²` with `w ∝ exp(−‖z − α x_j‖²/(2β²))` (log-sum-exp).
fn mixture_score(
    z: &DMatrix<f64>,
    x0: &DMatrix<f64>,
    members: &[usize],
    c: Coefficients,
    out: &mut DMatrix<f64>,
) {
    let d = z.nrows();
    let one = |(i, o): (usize, &mut [f64])| {
        let zi = z.column(i);
        let logw: Vec<f64> = members
            .iter()
            .map(|&j| {
                let xj = x0.column(j);
                let d2: f64 = zi
                    .iter()
                    .zip(xj.iter())
                    .map(|(a, b)| (a - c.alpha * b).powi(2))
                    .sum();
                -d2 / (2.0 * c.beta2)
            })
            .collect();
        let top = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logw.iter().map(|l| (l - top).exp()).collect();
        let total: f64 = w.iter().sum();
        o.fill(0.0);
        for (&j, wj) in members.iter().zip(&w) {
            for (ov, xv) in o.iter_mut().zip(x0.column(j).iter()) {
                *ov += wj / total * xv;
            }
        }
        for (ov, zv) in o.iter_mut().zip(zi.iter()) {
            *ov = -(zv - c.alpha * *ov) / c.beta2;
        }
    };
    let parallel = z.ncols() * members.len() * d >= 1 << 16;
    let cols = out.as_mut_slice();
    if parallel {
        cols.par_chunks_mut(d.max(1)).enumerate().for_each(one);
    } else {
        cols.chunks_mut(d.max(1)).enumerate().for_each(one);
    }
}
