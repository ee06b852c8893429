//! The exact noise estimate of a Gaussian prior `x ~ N(m, S)` over whole (flattened)
//! trajectories: `x(t) ~ N(μ m, μ² S + σ² I)`, so
//! `ε̂(x(t), t) = −σ ∇ log p(x(t)) = σ (μ² S + σ² I)⁻¹ (x(t) − μ m)`.
//! It stands in for a trained network where the answer must be known (linear-Gaussian systems).

use burn::prelude::*;
use nalgebra::{DMatrix, DVector};

use super::sde::VpSde;
use super::{NoiseEstimator, tensor};

/// An analytic noise estimator for a Gaussian prior.
pub struct GaussianPrior {
    /// Prior mean of the flattened trajectory `[L·F]`.
    pub mean: DVector<f64>,
    /// Prior covariance `[L·F, L·F]`.
    pub cov: DMatrix<f64>,
    /// The schedule.
    pub sde: VpSde,
}

impl NoiseEstimator for GaussianPrior {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        let [b, l, f] = x.dims();
        let n = l * f;
        assert_eq!(
            n,
            self.mean.len(),
            "trajectory size differs from the prior's"
        );
        let (mu, sigma) = (self.sde.mu(t), self.sde.sigma(t));
        let a = (&self.cov * (mu * mu) + DMatrix::identity(n, n) * (sigma * sigma))
            .try_inverse()
            .expect("SPD")
            * sigma;
        let device = x.device();
        // Row vectors: ε = (x − μ m) Aᵀ, and A is symmetric.
        let a = tensor(a.iter().map(|&v| v as f32).collect(), [n, n], &device);
        let m = tensor(
            self.mean.iter().map(|&v| (mu * v) as f32).collect(),
            [1, n],
            &device,
        );
        (x.reshape([b, n]) - m).matmul(a).reshape([b, l, f])
    }
}
