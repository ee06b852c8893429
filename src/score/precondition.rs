//! A preconditioned noise estimate: the network learns the residual of the Gaussian denoiser.
//!
//! For data of zero mean and unit variance per value (what the normalisation makes of every
//! data set) under the VP SDE `x(t) = μ x + σ z`, the best estimate of `z` that is linear in
//! `x(t)` is `E[z x(t)ᵀ] E[x(t) x(t)ᵀ]⁻¹ x(t) = c(t) x(t)` with `c = σ / (μ² + σ²)` when the
//! values are uncorrelated; it is the exact posterior mean of `z` for standard normal data.
//! A preconditioned network estimates `ε̂ = c(t) x(t) + F_φ(x(t), t)` and is trained on the
//! target `ε − c(t) x(t)` (the same denoising loss, written for `F_φ`), as the skip connection
//! of Karras et al. (2022) does for its parameterisation. At high noise, where `μ → 0`, the
//! data hardly show through `x(t)` and `c x(t)` is already the right answer, so a prior that is
//! still learning does not drive the first steps of a sampler away; at low noise `c → σ → 0`
//! and the network does all the work, as before.

use burn::prelude::*;

use super::sde::VpSde;
use super::{NoiseEstimator, Vjp, VjpMut};

/// `c(t) = σ(t) / (μ(t)² + σ(t)²)`, the coefficient of `x(t)` in the Gaussian denoiser.
pub fn skip(sde: &VpSde, t: f64) -> f64 {
    let (mu, sigma) = (sde.mu(t), sde.sigma(t));
    sigma / (mu * mu + sigma * sigma)
}

/// `inner`'s estimate plus `c(t) x(t)`: the noise estimate of a preconditioned network, with
/// the vector-Jacobian products of both parts.
pub struct Preconditioned<'a> {
    /// The network's residual `F_φ`.
    pub inner: &'a dyn NoiseEstimator,
    /// The SDE the network was trained under.
    pub sde: VpSde,
}

impl NoiseEstimator for Preconditioned<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        let c = skip(&self.sde, t) as f32;
        self.inner.eps(x.clone(), t) + x.mul_scalar(c)
    }

    fn eps_vjp(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Vjp<'_>) {
        let c = skip(&self.sde, t) as f32;
        let (eps, vjp) = self.inner.eps_vjp(x.clone(), t);
        let eps = eps + x.without_autodiff().mul_scalar(c);
        (
            eps,
            Box::new(move |v: Tensor<3>| vjp(v.clone()) + v.mul_scalar(c)),
        )
    }

    fn eps_vjps(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, VjpMut<'_>) {
        let c = skip(&self.sde, t) as f32;
        let (eps, mut vjp) = self.inner.eps_vjps(x.clone(), t);
        let eps = eps + x.without_autodiff().mul_scalar(c);
        (
            eps,
            Box::new(move |v: Tensor<3>| vjp(v.clone()) + v.mul_scalar(c)),
        )
    }

    fn keeps_activations(&self) -> bool {
        self.inner.keeps_activations()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::gaussian::GaussianPrior;
    use crate::score::{tensor, to_vec};
    use burn::prelude::Device;
    use nalgebra::{DMatrix, DVector};

    /// An untrained residual: `F ≡ 0`.
    struct Zero;

    impl NoiseEstimator for Zero {
        fn eps(&self, x: Tensor<3>, _t: f64) -> Tensor<3> {
            x.mul_scalar(0.0)
        }
    }

    #[test]
    fn with_no_residual_it_is_the_exact_denoiser_of_standard_normal_data() {
        let sde = VpSde::default();
        let device = Device::flex();
        // Standard normal states of 3 values, trajectories of 2 states.
        let exact = GaussianPrior {
            mean: DVector::zeros(6),
            cov: DMatrix::identity(6, 6),
            sde,
        };
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin() * 1.5).collect();
        let p = Preconditioned { inner: &Zero, sde };
        for t in [0.05, 0.3, 0.7, 0.99] {
            let got = to_vec(p.eps(tensor(x.clone(), [2, 2, 3], &device), t));
            let want = to_vec(exact.eps(tensor(x.clone(), [2, 2, 3], &device), t));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "t = {t}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn its_products_add_c_times_v_to_the_residuals() {
        let sde = VpSde::default();
        let device = Device::flex();
        let inner = GaussianPrior {
            mean: DVector::from_element(6, 0.5),
            cov: DMatrix::identity(6, 6) * 2.0,
            sde,
        };
        let p = Preconditioned { inner: &inner, sde };
        let x: Vec<f32> = (0..6).map(|i| i as f32 * 0.2 - 0.4).collect();
        let v: Vec<f32> = (0..6).map(|i| 1.0 - i as f32 * 0.3).collect();
        let t = 0.6;
        let c = skip(&sde, t) as f32;
        let (_, inner_vjp) = inner.eps_vjp(tensor(x.clone(), [1, 2, 3], &device), t);
        let want = to_vec(inner_vjp(tensor(v.clone(), [1, 2, 3], &device)));
        let (eps, vjp) = p.eps_vjp(tensor(x.clone(), [1, 2, 3], &device), t);
        let got = to_vec(vjp(tensor(v.clone(), [1, 2, 3], &device)));
        for ((g, w), vi) in got.iter().zip(&want).zip(&v) {
            assert!((g - (w + c * vi)).abs() < 1e-5);
        }
        let (eps2, mut vjps) = p.eps_vjps(tensor(x.clone(), [1, 2, 3], &device), t);
        assert_eq!(to_vec(eps), to_vec(eps2));
        let again = to_vec(vjps(tensor(v.clone(), [1, 2, 3], &device)));
        for (a, g) in again.iter().zip(&got) {
            assert!((a - g).abs() < 1e-5);
        }
    }
}
