//! How samples fit their observations: likelihoods, residuals and the predictive share outside
//! 95 %.

use burn::prelude::*;

use super::Observed;
use crate::data::features;
use crate::error::Result;
use crate::io::Array;
use crate::nn::{tensor, to_vec};

/// `A(x)` of trajectories `(N, L, *shape)` in physical units, flattened per sample.
fn observe_samples(x: &Array, observed: &Observed, shape: &[usize]) -> Result<Vec<f32>> {
    let (n, l) = (x.shape[0], x.shape[1]);
    let x = tensor(x.data.clone(), [n, l, features(shape)], &Device::flex());
    Ok(to_vec(observed.operator.apply(x, shape)?))
}

/// How samples fit their observations, from one application of the operator to them.
#[derive(Clone, Debug)]
pub struct Fit {
    /// Per-sample `log p(y | x) = Σ log N(y; A(x), σ_y²)`.
    pub log_likelihood: Vec<f64>,
    /// `std(A(x) − y)` over all samples and observed values.
    pub residual_std: f64,
    /// The rms noise std, to read `residual_std` against.
    pub noise_std: f64,
    /// `rms((A(x) − y) / σ_y)` over samples and observed values (≈ 1 when calibrated).
    pub rms_z: f64,
    /// The share of observed values outside the samples' predictive 95 % interval (see
    /// [`crate::metrics::predictive_outside`]).
    pub outside: f64,
}

impl Fit {
    /// The fit of trajectories `x` `(N, L, *shape)` to `observed`.
    pub fn of(x: &Array, observed: &Observed, shape: &[usize]) -> Result<Fit> {
        let ax = observe_samples(x, observed, shape)?;
        let (residual_std, noise_std) = residual_std_of(&ax, observed);
        let y: Vec<f64> = observed.y.data.iter().map(|&v| v as f64).collect();
        let std: Vec<f64> = observed.noise.iter().map(|&v| v as f64).collect();
        let a: Vec<f64> = ax.iter().map(|&v| v as f64).collect();
        Ok(Fit {
            log_likelihood: log_likelihood_of(&ax, observed),
            residual_std,
            noise_std,
            rms_z: rms_z_of(&ax, observed),
            outside: crate::metrics::predictive_outside(&a, x.shape[0], &y, &std),
        })
    }
}

/// Per-sample `log p(y | x) = Σ log N(y; A(x), σ_y²)` of trajectories `(N, L, *shape)`.
pub fn log_likelihood(x: &Array, observed: &Observed, shape: &[usize]) -> Result<Vec<f64>> {
    Ok(log_likelihood_of(
        &observe_samples(x, observed, shape)?,
        observed,
    ))
}

/// `std(A(x) − y)` over all samples and observed values, and its ratio to the rms noise std.
pub fn residual_std(x: &Array, observed: &Observed, shape: &[usize]) -> Result<(f64, f64)> {
    Ok(residual_std_of(
        &observe_samples(x, observed, shape)?,
        observed,
    ))
}

fn log_likelihood_of(ax: &[f32], observed: &Observed) -> Vec<f64> {
    let m = observed.y.data.len();
    let c = 0.5 * (2.0 * std::f64::consts::PI).ln();
    ax.chunks(m)
        .map(|a| {
            a.iter()
                .zip(&observed.y.data)
                .zip(&observed.noise)
                .map(|((a, y), s)| {
                    let s = *s as f64;
                    -0.5 * ((*a as f64 - *y as f64) / s).powi(2) - s.ln() - c
                })
                .sum()
        })
        .collect()
}

fn residual_std_of(ax: &[f32], observed: &Observed) -> (f64, f64) {
    let m = observed.y.data.len();
    let r: Vec<f64> = ax
        .chunks(m)
        .flat_map(|a| {
            a.iter()
                .zip(&observed.y.data)
                .map(|(a, y)| (*a - *y) as f64)
        })
        .collect();
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let std = (r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / r.len() as f64).sqrt();
    let noise = (observed
        .noise
        .iter()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        / m as f64)
        .sqrt();
    (std, noise)
}

fn rms_z_of(ax: &[f32], observed: &Observed) -> f64 {
    let m = observed.y.data.len();
    let sq: f64 = ax
        .chunks(m)
        .flat_map(|a| {
            a.iter()
                .zip(&observed.y.data)
                .zip(&observed.noise)
                .map(|((a, y), s)| ((*a as f64 - *y as f64) / *s as f64).powi(2))
        })
        .sum();
    (sq / ax.len() as f64).sqrt()
}
