//! Likelihood scores that turn a prior noise estimate into a posterior one (METHOD.md §4).
//!
//! [`Guided`] wraps any [`NoiseEstimator`] and is itself one, so the unchanged sampler draws from
//! `p(x | y)`. With `x̂ = (x(t) − σ ε̂) / μ` (Tweedie):
//! - SDA (Rozet & Louppe 2023, eq. 12): `log p(y | x(t)) ≈ −½ Σ (y − A(x̂))² / (σ_y² + γ (σ/μ)²)`;
//! - DPS (Chung et al. 2023): `s_y = −ζ ∇‖y − A(x̂)‖² / ‖y − A(x̂)‖`.
//!
//! The gradient with respect to `x(t)` goes through the network and through `A`; the guided
//! estimate is `ε̂ − σ s_y`.
//!
//! `A` acts on physical units, the network on normalised ones. The reference adds `γ (σ/μ)²`
//! in normalised units; here it is multiplied by the squared scale of each observed value so
//! that both agree (METHOD.md §4, "Units").

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::NoiseEstimator;
use super::operator::Operator;
use super::sde::VpSde;

/// Which likelihood approximation guides the sampler.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Likelihood {
    /// SDA's Gaussian approximation with `Γ = γ I`.
    Sda {
        /// The variance factor γ.
        gamma: f64,
    },
    /// Diffusion posterior sampling with step ζ.
    Dps {
        /// The guidance strength ζ.
        zeta: f64,
    },
}

/// Observations, their noise and the operator that produced them, in the sampler's terms.
pub struct Observation {
    /// The operator `A`.
    pub operator: Operator,
    /// The shape of one state (e.g. `[3]`).
    pub state_shape: Vec<usize>,
    /// `y`, flattened: `[1, M]`.
    pub y: Tensor<2>,
    /// Noise variances `σ_y²`, flattened: `[1, M]`.
    pub variance: Tensor<2>,
    /// Squared scale of each observed value (for the γ term): `[1, M]`.
    pub scale2: Tensor<2>,
    /// Normalisation mean, per state value: `[1, 1, F]`.
    pub mean: Tensor<3>,
    /// Normalisation scale, per state value: `[1, 1, F]`.
    pub scale: Tensor<3>,
}

impl Observation {
    /// `A(x)` of normalised trajectories, flattened per sample: `[B, L, F]` → `[B, M]`.
    pub fn observe(&self, x: Tensor<3>) -> Tensor<2> {
        let b = x.dims()[0];
        let phys = x * self.scale.clone() + self.mean.clone();
        let y = self
            .operator
            .apply(phys, &self.state_shape)
            .expect("operator validated against the trajectory length");
        let [_, l, f] = y.dims();
        y.reshape([b, l * f])
    }
}

/// A posterior noise estimator: a prior estimator guided by an observation.
pub struct Guided<'a> {
    /// The prior noise estimator (must live on an autodiff device).
    pub prior: &'a dyn NoiseEstimator,
    /// The schedule.
    pub sde: VpSde,
    /// The observation.
    pub obs: &'a Observation,
    /// The likelihood approximation.
    pub likelihood: Likelihood,
}

impl Guided<'_> {
    /// The guided estimate `ε̂ − σ s_y` and the likelihood score `s_y = ∇_{x(t)} log p(y | x(t))`.
    ///
    /// With `x̂ = (x − σ ε̂(x)) / μ`, `∂x̂/∂x = (I − σ J) / μ`, so the chain rule gives
    /// `s_y = (g − σ Jᵀ g) / μ` with `g = ∇_x̂ log p(y | x̂)`: one vector-Jacobian product of the
    /// network.
    pub fn eps_and_grad(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Tensor<3>) {
        let (mu, sigma) = (self.sde.mu(t), self.sde.sigma(t));
        let x = x.without_autodiff();
        let (eps, vjp) = self.prior.eps_vjp(x.clone(), t);
        let x_hat = (x - eps.clone().mul_scalar(sigma))
            .div_scalar(mu)
            .autodiff()
            .require_grad();
        let err = self.obs.y.clone() - self.obs.observe(x_hat.clone()); // [B, M]
        let objective = match self.likelihood {
            Likelihood::Sda { gamma } => {
                let var = self.obs.variance.clone()
                    + self
                        .obs
                        .scale2
                        .clone()
                        .mul_scalar(gamma * (sigma / mu).powi(2));
                // log p(y | x(t)) summed over samples (their gradients do not mix).
                (err.square() / var).sum().mul_scalar(-0.5)
            }
            Likelihood::Dps { zeta } => {
                // −ζ ‖err‖ per sample: its gradient is −ζ ∇‖err‖² / (2‖err‖); DPS's
                // −ζ ∇‖err‖²/‖err‖ is twice that, hence the factor 2.
                err.square().sum_dim(1).sqrt().sum().mul_scalar(-2.0 * zeta)
            }
        };
        let g = x_hat
            .grad(&objective.backward())
            .expect("x̂ requires grad")
            .without_autodiff();
        let s = (g.clone() - vjp(g).mul_scalar(sigma)).div_scalar(mu);
        (eps.clone() - s.clone().mul_scalar(sigma), s)
    }
}

impl NoiseEstimator for Guided<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        self.eps_and_grad(x, t).0
    }
}
