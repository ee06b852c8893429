//! Likelihood scores that turn a prior noise estimate into a posterior one (docs/method.md §5,
//! docs/guidance.md).
//!
//! [`Guided`] wraps any [`NoiseEstimator`] and is itself one, so the unchanged sampler draws from
//! `p(x | y)`. With `x̂ = (x(t) − σ ε̂) / μ` (Tweedie):
//! - SDA (Rozet & Louppe 2023, eq. 12): `log p(y | x(t)) ≈ −½ Σ (y − A(x̂))² / (σ_y² + γ (σ/μ)²)`;
//! - DPS (Chung et al. 2023): `s_y = −ζ ∇‖y − A(x̂)‖² / ‖y − A(x̂)‖`;
//! - MMPS (Rozet et al., NeurIPS 2024; docs/guidance.md §5):
//!   `q(y | x(t)) = N(A(x̂), Σ_y + J_A C_t J_Aᵀ)` with Tweedie's covariance
//!   `C_t = ρ² (I − σ J_ε)`, `ρ = σ/μ`, applied through network VJPs; the system is solved by K
//!   iterations of CG or GMRES, per sample, in f64.
//!
//! The gradient with respect to `x(t)` goes through the network and through `A`; the guided
//! estimate is `ε̂ − σ s_y`.
//!
//! `A` acts on physical units, the network on normalised ones. The reference adds `γ (σ/μ)²`
//! in normalised units; here it is multiplied by the squared scale of each observed value so
//! that both agree (docs/guidance.md §2, "Units").

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::operator::Operator;
use super::sde::VpSde;
use super::{NoiseEstimator, tensor, to_vec};

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
    /// Moment matching: Tweedie's covariance, K Krylov iterations.
    Mmps {
        /// The Krylov solver.
        solver: Solver,
        /// Its iterations K (each one network forward and backward pass, or only a backward
        /// pass where the network keeps its activations).
        iterations: usize,
    },
}

/// The Krylov solver of MMPS's observation-space system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Conjugate gradients (the system is symmetric where the network's Jacobian is).
    #[default]
    Cg,
    /// GMRES (robust to a non-symmetric network Jacobian).
    Gmres,
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

impl Observation {
    /// The observations of states `states` of a `length`-state trajectory, for the window of
    /// `len` states from `start` that holds them (see [`Operator::restrict`]); `None` where
    /// none of those states is observed.
    pub fn window(
        &self,
        length: usize,
        start: usize,
        len: usize,
        states: std::ops::Range<usize>,
    ) -> crate::error::Result<Option<Observation>> {
        let Some((operator, index)) =
            self.operator
                .restrict(length, &self.state_shape, start, len, states)?
        else {
            return Ok(None);
        };
        let device = self.y.device();
        let ids: Vec<i64> = index.iter().map(|&i| i as i64).collect();
        let pick = |v: &Tensor<2>| {
            v.clone()
                .select(1, Tensor::<1, Int>::from_ints(ids.as_slice(), &device))
        };
        Ok(Some(Observation {
            operator,
            state_shape: self.state_shape.clone(),
            y: pick(&self.y),
            variance: pick(&self.variance),
            scale2: pick(&self.scale2),
            mean: self.mean.clone(),
            scale: self.scale.clone(),
        }))
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

/// Known first states of a trajectory (the context of an autoregressive window), as a
/// likelihood: `log p(x_c | x(t)) ≈ −½ Σ (x_c − x̂_c)² / (σ_c² + γ (σ/μ)²)` on the first `c`
/// states, in normalised units (SDA's rule with observations of the states themselves).
pub struct Context {
    /// The known states `x_c`, normalised: `[B, c, F]`.
    pub values: Tensor<3>,
    /// Their variance `σ_c²` (normalised units).
    pub variance: f64,
    /// γ of the rule.
    pub gamma: f64,
}

impl Context {
    /// `∇_x̂ log p(x_c | x̂)`, zero beyond the first `c` states: `[B, L, F]`.
    fn grad(&self, x_hat: &Tensor<3>, rho2: f64) -> Tensor<3> {
        let [b, l, f] = x_hat.dims();
        let c = self.values.dims()[1];
        let r = (self.values.clone() - x_hat.clone().slice([0..b, 0..c, 0..f]))
            .div_scalar(self.variance + self.gamma * rho2);
        if c == l {
            return r;
        }
        Tensor::cat(vec![r, Tensor::zeros([b, l - c, f], &x_hat.device())], 1)
    }

    /// The guided estimate and the score `∇_{x(t)} log p(x_c | x(t))` of `prior` given the
    /// context alone: one network VJP.
    pub fn eps_and_grad(
        &self,
        prior: &dyn NoiseEstimator,
        sde: VpSde,
        x: Tensor<3>,
        t: f64,
    ) -> (Tensor<3>, Tensor<3>) {
        let (mu, sigma) = (sde.mu(t), sde.sigma(t));
        let x = x.without_autodiff();
        let (eps, vjp) = prior.eps_vjp(x.clone(), t);
        let x_hat = (x - eps.clone().mul_scalar(sigma)).div_scalar(mu);
        let g = self.grad(&x_hat, (sigma / mu).powi(2));
        let s = (g.clone() - vjp(g).mul_scalar(sigma)).div_scalar(mu);
        (eps - s.clone().mul_scalar(sigma), s)
    }
}

/// A noise estimator guided by a likelihood, with its likelihood score (what the guard
/// watches).
pub trait Guidance: NoiseEstimator {
    /// The guided estimate `ε̂ − σ s` and the likelihood score `s`.
    fn eps_and_grad(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Tensor<3>);
    /// The schedule.
    fn sde(&self) -> VpSde;
}

impl Guidance for Guided<'_> {
    fn eps_and_grad(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Tensor<3>) {
        Guided::eps_and_grad(self, x, t)
    }
    fn sde(&self) -> VpSde {
        self.sde
    }
}

impl Guided<'_> {
    /// The guided estimate `ε̂ − σ s_y` and the likelihood score `s_y = ∇_{x(t)} log p(y | x(t))`.
    ///
    /// With `x̂ = (x − σ ε̂(x)) / μ`, `∂x̂/∂x = (I − σ J) / μ`, so the chain rule gives
    /// `s_y = (g − σ Jᵀ g) / μ` with `g = ∇_x̂ log p(y | x̂)`: one vector-Jacobian product of the
    /// network.
    pub fn eps_and_grad(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Tensor<3>) {
        self.eps_and_grad_with(x, t, None)
    }

    /// [`eps_and_grad`](Self::eps_and_grad) with the likelihood of known first states added
    /// (`s = s_y + s_c`): in the same network VJP for SDA and DPS, one more for MMPS.
    pub fn eps_and_grad_with(
        &self,
        x: Tensor<3>,
        t: f64,
        context: Option<&Context>,
    ) -> (Tensor<3>, Tensor<3>) {
        if let Likelihood::Mmps { solver, iterations } = self.likelihood {
            return self.mmps(x, t, solver, iterations, context);
        }
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
            Likelihood::Mmps { .. } => unreachable!("handled above"),
            Likelihood::Dps { zeta } => {
                // −ζ ‖err‖ per sample: its gradient is −ζ ∇‖err‖² / (2‖err‖); DPS's
                // −ζ ∇‖err‖²/‖err‖ is twice that, hence the factor 2.
                err.square().sum_dim(1).sqrt().sum().mul_scalar(-2.0 * zeta)
            }
        };
        let mut g = x_hat
            .grad(&objective.backward())
            .expect("x̂ requires grad")
            .without_autodiff();
        if let Some(c) = context {
            g = g + c.grad(&x_hat.without_autodiff(), (sigma / mu).powi(2));
        }
        let s = (g.clone() - vjp(g).mul_scalar(sigma)).div_scalar(mu);
        (eps.clone() - s.clone().mul_scalar(sigma), s)
    }
}

/// Guard of the solvers' denominators (azula's: f64 machine epsilon).
const GUARD: f64 = f64::EPSILON;

/// Per-sample dot products of `[B, n]` row-major vectors.
fn dots(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    a.chunks(n)
        .zip(b.chunks(n))
        .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a * b).sum())
        .collect()
}

fn f64s<const D: usize>(x: Tensor<D>) -> Vec<f64> {
    to_vec(x).into_iter().map(f64::from).collect()
}

impl Guided<'_> {
    /// MMPS (docs/guidance.md §5): `ε̂_post = ε̂ − σ g` with
    /// `g = (1/μ) (I − σ J_εᵀ) J_Aᵀ u` and `u ≈ M⁻¹ (y − A(x̂))`,
    /// `M = Σ_y + J_A C_t J_Aᵀ`, `C_t = ρ² (I − σ J_εᵀ)`.
    ///
    /// Each product `M p` is one VJP through `A` (a = J_Aᵀ p), one network VJP
    /// (`c = ρ² (a − σ J_εᵀ a)`) and one JVP of `A` (`M p = Σ_y p + J_A c`). `u` is a combination
    /// of the vectors `p` the products were taken of, so `C_t J_Aᵀ u` is the same combination
    /// of the `c`: the score costs no further product. Solver vectors and scalars are f64 and
    /// per sample; denominators are clipped below at f64's epsilon.
    fn mmps(
        &self,
        x: Tensor<3>,
        t: f64,
        solver: Solver,
        iterations: usize,
        context: Option<&Context>,
    ) -> (Tensor<3>, Tensor<3>) {
        let (mu, sigma) = (self.sde.mu(t), self.sde.sigma(t));
        let rho2 = (sigma / mu).powi(2);
        let x = x.without_autodiff();
        let [b, l, f] = x.dims();
        let n = l * f;
        let device = x.device();
        let (eps, mut vjp) = self.prior.eps_vjps(x.clone(), t);
        let x_hat = (x - eps.clone().mul_scalar(sigma)).div_scalar(mu);
        let obs = self.obs;
        let phys = x_hat.clone() * obs.scale.clone() + obs.mean.clone();
        let ax = obs.observe(x_hat.clone());
        let m = ax.dims()[1];
        let r = f64s(obs.y.clone() - ax);
        let var = f64s(obs.variance.clone());
        // a = J_Aᵀ p (through a small tape of A at x̂), c = ρ² (a − σ J_εᵀ a),
        // M p = Σ_y p + J_A c (the operator's JVP at x̂).
        let mut product = |p: &[f64]| -> (Vec<f64>, Vec<f64>) {
            let pt = tensor(p.iter().map(|&v| v as f32).collect(), [b, m], &device);
            let xa = x_hat.clone().autodiff().require_grad();
            let objective = (obs.observe(xa.clone()) * pt.autodiff()).sum();
            let a = xa
                .grad(&objective.backward())
                .expect("x̂ requires grad")
                .without_autodiff();
            let q = f64s(vjp(a.clone()));
            let a = f64s(a);
            let mut c: Vec<f64> = a
                .iter()
                .zip(&q)
                .map(|(a, q)| rho2 * (a - sigma * q))
                .collect();
            guard_directions(&mut c, &a, n, rho2);
            let ct = tensor(c.iter().map(|&v| v as f32).collect(), [b, l, f], &device);
            let (_, jc) = obs
                .operator
                .jvp(phys.clone(), ct * obs.scale.clone(), &obs.state_shape)
                .expect("operator validated against the trajectory length");
            let jc = to_vec(jc);
            let mp = p
                .iter()
                .zip(&jc)
                .enumerate()
                .map(|(i, (p, jc))| var[i % m] * p + f64::from(*jc))
                .collect();
            (mp, c)
        };
        // C_t J_Aᵀ u, accumulated per sample.
        let mut cu = vec![0.0f64; b * n];
        let mut accumulate = |c: &[f64], coef: &[f64]| {
            for (s, (cu, c)) in cu.chunks_mut(n).zip(c.chunks(n)).enumerate() {
                for (d, v) in cu.iter_mut().zip(c) {
                    *d += coef[s] * v;
                }
            }
        };
        match solver {
            Solver::Cg => cg(r, m, iterations, &mut product, &mut accumulate),
            Solver::Gmres => gmres(r, b, m, iterations, &mut product, &mut accumulate),
        }
        // g = (1/μ)(I − σJ_εᵀ) J_Aᵀ u = C_t J_Aᵀ u / (μ ρ²).
        let g: Vec<f32> = cu.iter().map(|v| (v / (mu * rho2)) as f32).collect();
        let mut g = tensor(g, [b, l, f], &device);
        if let Some(c) = context {
            let gc = c.grad(&x_hat, rho2);
            g = g + (gc.clone() - vjp(gc).mul_scalar(sigma)).div_scalar(mu);
        }
        (eps - g.clone().mul_scalar(sigma), g)
    }
}

/// A product `M p` of MMPS: `(M p, c)` with `c = C_t J_Aᵀ p`, per sample.
type Product<'a> = dyn FnMut(&[f64]) -> (Vec<f64>, Vec<f64>) + 'a;

/// The guard of a product's `c = ρ² D a`, per sample of `n` values.
///
/// Guard: for any Gaussian prior D = I − σJ_ε = I − σ²K⁻¹ has eigenvalues in
/// [0, 1], so along a, κ = a·Da / a·a ∈ [0, 1] and ‖Da‖² ≤ a·Da (D² ≼ D). A network
/// misses both where σJ_ε ≈ I (high noise, ρ² up to 1e6): there its error can make M
/// indefinite, or dominate Da, and the solve diverge. Where either fails, the
/// direction gets D = clamp(κ, 0, 1) I.
fn guard_directions(c: &mut [f64], a: &[f64], n: usize, rho2: f64) {
    for (cs, as_) in c.chunks_mut(n).zip(a.chunks(n)) {
        let aa: f64 = as_.iter().map(|v| v * v).sum();
        let ad = as_.iter().zip(cs.iter()).map(|(a, c)| a * c).sum::<f64>() / rho2;
        let dd = cs.iter().map(|c| c * c).sum::<f64>() / (rho2 * rho2);
        let kappa = ad / aa.max(GUARD);
        if !(0.0..=1.0).contains(&kappa) || dd > ad * (1.0 + 1e-6) {
            let k = kappa.clamp(0.0, 1.0);
            for (c, a) in cs.iter_mut().zip(as_) {
                *c = rho2 * k * a;
            }
        }
    }
}

/// Conjugate gradients on `M u = r` from `u = 0`, `iterations` products: each step hands
/// `accumulate` the `c` of its direction and that direction's coefficient in `u`, per sample.
fn cg(
    r: Vec<f64>,
    m: usize,
    iterations: usize,
    product: &mut Product<'_>,
    accumulate: &mut dyn FnMut(&[f64], &[f64]),
) {
    let (mut res, mut p) = (r.clone(), r);
    let mut rr = dots(&res, &res, m);
    for _ in 0..iterations {
        let (mp, c) = product(&p);
        let pmp = dots(&p, &mp, m);
        let alpha: Vec<f64> = rr.iter().zip(&pmp).map(|(a, b)| a / b.max(GUARD)).collect();
        accumulate(&c, &alpha);
        for (i, (r, mp)) in res.iter_mut().zip(&mp).enumerate() {
            *r -= alpha[i / m] * mp;
        }
        let rr_new = dots(&res, &res, m);
        for (i, (p, r)) in p.iter_mut().zip(&res).enumerate() {
            *p = r + rr_new[i / m] / rr[i / m].max(GUARD) * *p;
        }
        rr = rr_new;
    }
}

/// GMRES on `M u = r` from `u = 0` with a Krylov basis of `iterations` vectors: `accumulate`
/// gets the `c` of each basis vector and its coefficient in `u`, per sample.
fn gmres(
    r: Vec<f64>,
    b: usize,
    m: usize,
    iterations: usize,
    product: &mut Product<'_>,
    accumulate: &mut dyn FnMut(&[f64], &[f64]),
) {
    let k = iterations;
    let beta: Vec<f64> = dots(&r, &r, m).iter().map(|v| v.sqrt()).collect();
    let mut v: Vec<f64> = r
        .iter()
        .enumerate()
        .map(|(i, r)| r / beta[i / m].max(GUARD))
        .collect();
    // Hessenberg matrices per sample, (K + 1) × K, and the c of each basis vector.
    let mut h = vec![nalgebra::DMatrix::<f64>::zeros(k + 1, k); b];
    let mut basis = Vec::with_capacity(k + 1);
    let mut cs = Vec::with_capacity(k);
    for j in 0..k {
        let (mut w, c) = product(&v);
        cs.push(c);
        basis.push(std::mem::take(&mut v));
        // Modified Gram–Schmidt against the basis so far.
        for (i, vi) in basis.iter().enumerate() {
            let hij = dots(&w, vi, m);
            for (e, (w, vi)) in w.iter_mut().zip(vi).enumerate() {
                *w -= hij[e / m] * vi;
            }
            for s in 0..b {
                h[s][(i, j)] = hij[s];
            }
        }
        let norm: Vec<f64> = dots(&w, &w, m).iter().map(|v| v.sqrt()).collect();
        for s in 0..b {
            h[s][(j + 1, j)] = norm[s];
        }
        v = w
            .iter()
            .enumerate()
            .map(|(i, w)| w / norm[i / m].max(GUARD))
            .collect();
    }
    // Per sample: y = argmin ‖β e₁ − H y‖ by QR, ε added to R's diagonal.
    let coefs: Vec<Vec<f64>> = (0..b)
        .map(|s| {
            let qr = h[s].clone().qr();
            let mut rhs = nalgebra::DVector::zeros(k + 1);
            rhs[0] = beta[s];
            let qtb = qr.q().transpose() * rhs;
            let rm = qr.r();
            let mut y = vec![0.0; k];
            for i in (0..k).rev() {
                let sum: f64 = (i + 1..k).map(|j| rm[(i, j)] * y[j]).sum();
                let d = rm[(i, i)];
                let d = if d >= 0.0 { d + GUARD } else { d - GUARD };
                y[i] = (qtb[i] - sum) / d;
            }
            y
        })
        .collect();
    for (j, c) in cs.iter().enumerate() {
        let coef: Vec<f64> = coefs.iter().map(|y| y[j]).collect();
        accumulate(c, &coef);
    }
}

impl NoiseEstimator for Guided<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        self.eps_and_grad(x, t).0
    }
}
