//! The exact noise estimate of a Gaussian prior `x ~ N(m, S)` over whole (flattened)
//! trajectories: `x(t) ~ N(μ m, μ² S + σ² I)`, so
//! `ε̂(x(t), t) = −σ ∇ log p(x(t)) = σ (μ² S + σ² I)⁻¹ (x(t) − μ m)`.
//! It stands in for a trained network where the answer must be known (linear-Gaussian systems).

use burn::prelude::*;
use nalgebra::{DMatrix, DVector};

use super::net::{Composition, compose_windows, fold_windows, unfold_windows};
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

/// The composed local score of a stationary Gaussian chain: every window of `w` states gets the
/// exact noise estimate of the window marginal `N(m_w, S_w)`, and windows compose over the
/// trajectory as the network's do ([`Composition`]). It isolates the error of composition
/// itself (the marginals of `x(t)` are not Markov, so even exact window scores do not compose
/// into the exact trajectory score).
pub struct LocalGaussianPrior {
    /// The window's prior (mean and covariance of `w` consecutive states, flattened).
    pub window: GaussianPrior,
    /// States per window `w`.
    pub states: usize,
    /// How window estimates compose.
    pub composition: Composition,
}

impl NoiseEstimator for LocalGaussianPrior {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        let [b, l, f] = x.dims();
        let w = self.states;
        let n = l - w + 1;
        let windows = unfold_windows(x, w).reshape([b * n, w, f]);
        let e = self.window.eps(windows, t).reshape([b * n, w * f]);
        match self.composition {
            Composition::Centre => compose_windows(e.reshape([b, n, w, f]), (w - 1) / 2),
            Composition::Mean => {
                let device = e.device();
                let c: Vec<f32> = (0..l)
                    .map(|i| {
                        let covering = i.min(n - 1) + 1 - i.saturating_sub(w - 1);
                        1.0 / covering as f32
                    })
                    .collect();
                fold_windows(e, b, w, f) * tensor(c, [1, l, 1], &device)
            }
        }
    }
}
