//! Diffusion: the noise schedule, the composed local score, guidance by observations and the
//! predictor-corrector sampler (docs/method.md §2–§6).
//!
//! Everything here speaks through [`NoiseEstimator`]: the trained network, an analytic score and
//! the guided posterior score all implement it, so the sampler never knows which it is given.

pub mod autoregressive;
pub mod gaussian;
pub mod guard;
pub mod guidance;
pub mod net;
pub mod operator;
pub mod precondition;
pub mod preset;
pub mod sampler;
pub mod sde;
pub mod table;

use burn::prelude::*;

pub use crate::nn::{tensor, to_vec};

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

    /// `ε̂(x, t)` and a vector-Jacobian product that can be called many times at the same
    /// `x` (MMPS's Krylov iterations).
    ///
    /// The default keeps the first product's graph and reruns the forward pass with a tape for
    /// every later one (burn 0.22 cannot backpropagate twice through one graph); estimators
    /// that keep their activations override it and say so with
    /// [`keeps_activations`](Self::keeps_activations).
    fn eps_vjps(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, VjpMut<'_>) {
        rerun_vjps(self, x, t)
    }

    /// Whether [`eps_vjps`](Self::eps_vjps) runs the forward pass once for all its products.
    fn keeps_activations(&self) -> bool {
        false
    }
}

/// A vector-Jacobian product `v ↦ vᵀ J` that can be called many times.
pub type VjpMut<'a> = Box<dyn FnMut(Tensor<3>) -> Tensor<3> + 'a>;

/// [`NoiseEstimator::eps_vjps`] by recomputation: the first product uses the graph of the
/// forward pass that gave `ε̂`, every later one a fresh forward pass with a tape.
pub fn rerun_vjps<'a, E: NoiseEstimator + ?Sized>(
    est: &'a E,
    x: Tensor<3>,
    t: f64,
) -> (Tensor<3>, VjpMut<'a>) {
    let (eps, first) = est.eps_vjp(x.clone(), t);
    let mut first = Some(first);
    let vjp = move |v: Tensor<3>| match first.take() {
        Some(f) => f(v),
        None => est.eps_vjp(x.clone(), t).1(v),
    };
    (eps, Box::new(vjp))
}

/// Network evaluations of a batch: forward and backward (input-gradient) passes counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evaluations {
    /// Forward passes.
    pub forward: usize,
    /// Backward passes (vector-Jacobian products).
    pub backward: usize,
}

impl std::ops::Add for Evaluations {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            forward: self.forward + o.forward,
            backward: self.backward + o.backward,
        }
    }
}

impl std::fmt::Display for Evaluations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} forward + {} backward", self.forward, self.backward)
    }
}

/// A noise estimator that counts the network passes made through it. Each call evaluates every
/// sample of its batch once, so the counts are per sample.
pub struct Counted<'a> {
    /// The estimator counted.
    pub inner: &'a dyn NoiseEstimator,
    counts: std::cell::Cell<Evaluations>,
}

impl<'a> Counted<'a> {
    /// Counts the passes through `inner`, from zero.
    pub fn new(inner: &'a dyn NoiseEstimator) -> Self {
        Self {
            inner,
            counts: Default::default(),
        }
    }

    /// The passes so far.
    pub fn evaluations(&self) -> Evaluations {
        self.counts.get()
    }

    fn add(&self, forward: usize, backward: usize) {
        self.counts
            .set(self.counts.get() + Evaluations { forward, backward });
    }
}

impl NoiseEstimator for Counted<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        self.add(1, 0);
        self.inner.eps(x, t)
    }

    fn eps_vjp(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Vjp<'_>) {
        self.add(1, 0);
        let (eps, vjp) = self.inner.eps_vjp(x, t);
        let counted = move |v| {
            self.add(0, 1);
            vjp(v)
        };
        (eps, Box::new(counted))
    }

    fn eps_vjps(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, VjpMut<'_>) {
        if !self.inner.keeps_activations() {
            return rerun_vjps(self, x, t);
        }
        self.add(1, 0);
        let (eps, mut vjp) = self.inner.eps_vjps(x, t);
        let counted = move |v| {
            self.add(0, 1);
            vjp(v)
        };
        (eps, Box::new(counted))
    }

    fn keeps_activations(&self) -> bool {
        self.inner.keeps_activations()
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
