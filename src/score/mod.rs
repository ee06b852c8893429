//! Diffusion: the noise schedule, the composed local score, guidance by observations and the
//! predictor-corrector sampler (METHOD.md §2–§5).
//!
//! Everything here speaks through [`NoiseEstimator`]: the trained network, an analytic score and
//! the guided posterior score all implement it, so the sampler never knows which it is given.

pub mod gaussian;
pub mod guidance;
pub mod net;
pub mod operator;
pub mod sampler;
pub mod sde;
pub mod table;

use burn::prelude::*;

/// A noise estimate `ε̂(x(t), t) ≈ −σ(t) ∇ log p(x(t))` for batches of trajectories.
pub trait NoiseEstimator {
    /// # Shapes
    /// - x: `[B, L, F]` (normalised states, `F` values per state) → `[B, L, F]`
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3>;

    /// `ε̂(x, t)` and its vector-Jacobian product `v ↦ vᵀ ∂ε̂/∂x`, for guidance.
    ///
    /// The default differentiates [`eps`](Self::eps) with burn's autodiff; estimators with a
    /// faster route override it.
    fn eps_vjp(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Vjp<'_>) {
        autodiff_vjp(|x| self.eps(x, t), x)
    }
}

/// `f(x)` and `v ↦ vᵀ ∂f/∂x` through burn's autodiff (the graph is kept until the product).
pub fn autodiff_vjp<'a, const D: usize>(
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
    x: Tensor<D>,
) -> (Tensor<D>, Box<dyn FnOnce(Tensor<D>) -> Tensor<D> + 'a>) {
    let x = x.detach().autodiff().require_grad();
    let y = f(x.clone());
    let value = y.clone().detach().without_autodiff();
    let vjp = move |v: Tensor<D>| {
        let grads = (y * v).sum().backward();
        x.grad(&grads).expect("x requires grad").without_autodiff()
    };
    (value, Box::new(vjp))
}

/// A vector-Jacobian product: `v ↦ vᵀ J`, callable once.
pub type Vjp<'a> = Box<dyn FnOnce(Tensor<3>) -> Tensor<3> + 'a>;

/// A tensor from a flat `f32` buffer.
pub fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(burn::tensor::TensorData::new(data, shape), device)
}

/// The values of a tensor as `f32`, row-major.
pub fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 tensor")
}
