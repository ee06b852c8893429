//! The predictor-corrector sampler (METHOD.md §5; Song et al. 2021, with the exponential
//! integrator of DDIM as predictor and Langevin Monte Carlo as corrector).
//!
//! Time grid `t_j = 1 − j/T`. For each `t` from 1 down to `Δ = 1/T`:
//! - predictor: `r = μ(t−Δ)/μ(t)`, `x ← r x + (σ(t−Δ) − r σ(t)) ε̂(x, t)`;
//! - corrector, `C` times: `e = ε̂(x, t−Δ)`, `δ = τ / mean(e²)` per sample,
//!   `x ← x − (δ e + √(2δ) z) σ(t−Δ)`, `z ~ N(0, I)`.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::sde::VpSde;
use super::{NoiseEstimator, tensor};

/// Settings of the predictor-corrector sampler. Carries no weights.
#[derive(Clone, Copy, Debug)]
pub struct PcSampler {
    /// The noise schedule the estimator was trained with.
    pub sde: VpSde,
    /// Discretisation steps T.
    pub steps: usize,
    /// Langevin corrections C per step.
    pub corrections: usize,
    /// Langevin step scale τ.
    pub tau: f64,
}

/// Standard normal noise of a given shape, drawn from a seeded RNG (reproducible on any device).
pub fn normal<const D: usize>(shape: [usize; D], rng: &mut StdRng, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    tensor(data, shape, device)
}

impl PcSampler {
    /// Draws from the distribution whose noise estimate is `eps`, starting from `x ~ N(0, I)`
    /// of shape `[B, L, F]`. `progress` is called after each of the `T` steps.
    pub fn sample(
        &self,
        eps: &dyn NoiseEstimator,
        shape: [usize; 3],
        rng: &mut StdRng,
        device: &Device,
        mut progress: impl FnMut(usize),
    ) -> Tensor<3> {
        let sde = self.sde;
        let mut x = normal(shape, rng, device);
        let dt = 1.0 / self.steps as f64;
        for j in 0..self.steps {
            let t = 1.0 - j as f64 * dt;
            let s = t - dt;

            // Predictor
            let r = sde.mu(s) / sde.mu(t);
            let e = eps.eps(x.clone(), t);
            x = x.mul_scalar(r) + e.mul_scalar(sde.sigma(s) - r * sde.sigma(t));

            // Corrector
            for _ in 0..self.corrections {
                let z = normal(shape, rng, device);
                let e = eps.eps(x.clone(), s);
                let delta = mean_square(e.clone()).recip().mul_scalar(self.tau); // [B, 1, 1]
                let step = e * delta.clone() + z * delta.mul_scalar(2.0).sqrt();
                x = x - step.mul_scalar(sde.sigma(s));
            }
            progress(j + 1);
        }
        x
    }
}

/// The mean of `e²` over each sample's whole trajectory: `[B, L, F]` → `[B, 1, 1]`.
fn mean_square(e: Tensor<3>) -> Tensor<3> {
    let [b, l, f] = e.dims();
    e.square()
        .reshape([b, l * f])
        .mean_dim(1)
        .reshape([b, 1, 1])
}
