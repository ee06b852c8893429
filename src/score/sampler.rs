//! Samplers of the reverse diffusion (docs/method.md §6, docs/guidance.md §4): the paper's
//! predictor-corrector and the low-step methods of the DDIM/DPM-Solver family, on a uniform-t
//! or a log-SNR grid.
//!
//! With `ρ = σ/μ`, every predictor integrates the probability-flow ODE `d(x/μ) = ε̂ dρ` from `t`
//! down to `s < t` (`x̂ = (x − σ ε̂)/μ` is the denoiser):
//! - `pc` and `ddim` with η = 0 (Euler in ρ, DDIM's exponential integrator):
//!   `x_s = (μ_s/μ_t) x_t + (σ_s − μ_s ρ_t) ε̂(x_t, t)`;
//! - `ddim` with η > 0: `x_s = μ_s x̂ + σ_s √(1 − τ') ε̂ + σ_s √τ' z`,
//!   `τ' = η (1 − (μ_t σ_s / (μ_s σ_t))²)` (η = 1 is DDPM's ancestral step);
//! - `heun`: the Euler step, then the Euler step again with the mean of `ε̂` at both ends
//!   (order 2, two evaluations per step);
//! - `eab2`: the second-order exponential Adams–Bashforth method in `u = log ρ` (DPM-Solver-2M
//!   in noise form): `ε̂` interpolated linearly in `u` through this step's and the previous
//!   step's estimates, one evaluation per step (Euler on the first step).
//!
//! Corrector (after each step, `C` times, at the new time `s`): the Langevin step
//! `x ← x − σ_s (δ ε̂ + √(2δ) z)` with `δ = τ / mean(ε̂²)` per sample (`sda`, the paper's) or a
//! fixed `δ` (`fixed`, Appa's). Grids run from `t = 1` to `t = 0`, uniform in `t` or in
//! `λ = log(μ/σ)`.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::sde::VpSde;
use super::{NoiseEstimator, tensor};

/// The predictor of each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Euler (DDIM, η = 0) predictor and Langevin corrector: the paper's.
    #[default]
    Pc,
    /// DDIM with stochasticity η (0: deterministic, 1: DDPM's ancestral step).
    Ddim,
    /// Heun's second-order method: two evaluations per step.
    Heun,
    /// Second-order exponential Adams–Bashforth in log ρ: one evaluation per step.
    Eab2,
}

/// Where the steps fall in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Grid {
    /// Uniform in t (the paper's).
    #[default]
    T,
    /// Uniform in the log signal-to-noise ratio λ = log(μ/σ).
    Logsnr,
}

/// The Langevin corrector's step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Corrector {
    /// `δ = τ / mean(ε̂²)` per sample (the paper's).
    #[default]
    Sda,
    /// A fixed `δ` (Appa's, δ = 0.1).
    Fixed,
}

/// Settings of a sampler. Carries no weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    /// The noise schedule the estimator was trained with.
    pub sde: VpSde,
    /// The predictor.
    pub method: Method,
    /// Discretisation steps T.
    pub steps: usize,
    /// The time grid.
    pub grid: Grid,
    /// DDIM's η in [0, 1].
    pub eta: f64,
    /// Langevin corrections C per step.
    pub corrections: usize,
    /// How the corrector chooses its step.
    pub corrector: Corrector,
    /// τ of the `sda` corrector.
    pub tau: f64,
    /// δ of the `fixed` corrector.
    pub delta: f64,
}

impl Default for Sampler {
    /// The paper's: PC, 256 steps uniform in t, C = 1, τ = 0.25.
    fn default() -> Self {
        Self {
            sde: VpSde::default(),
            method: Method::Pc,
            steps: 256,
            grid: Grid::T,
            eta: 0.0,
            corrections: 1,
            corrector: Corrector::Sda,
            tau: 0.25,
            delta: 0.1,
        }
    }
}

/// Settings of the paper's predictor-corrector sampler (see [`Sampler`] for the others).
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
        progress: impl FnMut(usize),
    ) -> Tensor<3> {
        Sampler {
            sde: self.sde,
            steps: self.steps,
            corrections: self.corrections,
            tau: self.tau,
            ..Sampler::default()
        }
        .sample(eps, shape, rng, device, progress)
    }
}

impl Sampler {
    /// The times `t_0 = 1 > t_1 > … > t_T = 0`.
    pub fn times(&self) -> Vec<f64> {
        let n = self.steps;
        match self.grid {
            Grid::T => (0..=n).map(|j| 1.0 - j as f64 / n as f64).collect(),
            Grid::Logsnr => {
                let lambda = |t: f64| (self.sde.mu(t) / self.sde.sigma(t)).ln();
                let (lo, hi) = (lambda(1.0), lambda(0.0));
                (0..=n)
                    .map(|j| match j {
                        0 => 1.0,
                        j if j == n => 0.0,
                        j => {
                            // λ decreases in t: bisect for λ(t) = target.
                            let target = lo + (hi - lo) * j as f64 / n as f64;
                            let (mut a, mut b) = (0.0, 1.0);
                            for _ in 0..60 {
                                let m = 0.5 * (a + b);
                                if lambda(m) > target {
                                    a = m;
                                } else {
                                    b = m;
                                }
                            }
                            0.5 * (a + b)
                        }
                    })
                    .collect()
            }
        }
    }

    /// Network evaluations per sample that one run makes with a plain (unguided) estimator.
    pub fn evaluations(&self) -> usize {
        let per_step = match self.method {
            Method::Heun => 2,
            _ => 1,
        };
        self.steps * (per_step + self.corrections)
    }

    /// Draws from the distribution whose noise estimate is `eps`, starting from `x ~ N(0, I)`
    /// of shape `[B, L, F]`. `progress` is called after each of the `T` steps.
    pub fn sample(
        &self,
        eps: &dyn NoiseEstimator,
        shape: [usize; 3],
        rng: &mut StdRng,
        device: &Device,
        progress: impl FnMut(usize),
    ) -> Tensor<3> {
        let x = normal(shape, rng, device);
        self.sample_from(eps, x, rng, progress)
    }

    /// Runs the sampler from a given `x(1)` of shape `[B, L, F]` (deterministic samplers are
    /// then a fixed map of it).
    pub fn sample_from(
        &self,
        eps: &dyn NoiseEstimator,
        x: Tensor<3>,
        rng: &mut StdRng,
        mut progress: impl FnMut(usize),
    ) -> Tensor<3> {
        let run = self.try_sample_from(eps, x, rng, |step| {
            progress(step.index);
            Ok::<(), std::convert::Infallible>(())
        });
        match run {
            Ok(x) => x,
            Err(never) => match never {},
        }
    }

    /// [`sample_from`](Self::sample_from), calling `step` after each of the `T` steps (with
    /// its predictor and corrector) with the iterate reached; an error from `step` stops the
    /// run and is returned.
    pub fn try_sample_from<E>(
        &self,
        eps: &dyn NoiseEstimator,
        x: Tensor<3>,
        rng: &mut StdRng,
        step: impl FnMut(Step<'_>) -> Result<(), E>,
    ) -> Result<Tensor<3>, E> {
        self.run(eps, x, None, rng, step)
    }

    /// [`try_sample_from`](Self::try_sample_from) with the first states known (inpainting by
    /// replacement, as RePaint): `known` `[B, c, F]` replaces the first `c` states of the
    /// iterate by a fresh draw of their perturbation `μ(t) x + σ(t) z` at the start and after
    /// every step (predictor and corrector), so that the other states are drawn given them.
    /// The result holds `known` itself in its first `c` states.
    pub fn try_sample_inpainting<E>(
        &self,
        eps: &dyn NoiseEstimator,
        x: Tensor<3>,
        known: &Tensor<3>,
        rng: &mut StdRng,
        step: impl FnMut(Step<'_>) -> Result<(), E>,
    ) -> Result<Tensor<3>, E> {
        let x = self.run(eps, x, Some(known), rng, step)?;
        Ok(replace(x, known.clone()))
    }

    fn run<E>(
        &self,
        eps: &dyn NoiseEstimator,
        mut x: Tensor<3>,
        known: Option<&Tensor<3>>,
        rng: &mut StdRng,
        mut step: impl FnMut(Step<'_>) -> Result<(), E>,
    ) -> Result<Tensor<3>, E> {
        let sde = self.sde;
        let shape = x.dims();
        let device = x.device();
        let times = self.times();
        // The known states' perturbation at time t, in place of theirs in x.
        let pin = |x: Tensor<3>, t: f64, rng: &mut StdRng| match known {
            None => x,
            Some(k) => {
                let z = normal(k.dims(), rng, &device);
                replace(
                    x,
                    k.clone().mul_scalar(sde.mu(t)) + z.mul_scalar(sde.sigma(t)),
                )
            }
        };
        x = pin(x, times[0], rng);
        let rho = |t: f64| sde.sigma(t) / sde.mu(t);
        // The previous step's (log ρ, ε̂), for eab2.
        let mut previous: Option<(f64, Tensor<3>)> = None;
        for j in 0..self.steps {
            let (t, s) = (times[j], times[j + 1]);
            let (mu_t, mu_s, sig_t, sig_s) = (sde.mu(t), sde.mu(s), sde.sigma(t), sde.sigma(s));
            let r = mu_s / mu_t;
            let e = eps.eps(x.clone(), t);
            let euler =
                |x: Tensor<3>, e: Tensor<3>| x.mul_scalar(r) + e.mul_scalar(sig_s - r * sig_t);
            x = match self.method {
                Method::Pc => euler(x, e),
                Method::Ddim => {
                    let tau = 1.0 - (mu_t * sig_s / (mu_s * sig_t)).powi(2);
                    let tau = (self.eta * tau).clamp(0.0, 1.0);
                    let x_hat = (x - e.clone().mul_scalar(sig_t)).div_scalar(mu_t);
                    let mut next =
                        x_hat.mul_scalar(mu_s) + e.mul_scalar(sig_s * (1.0 - tau).sqrt());
                    if tau > 0.0 {
                        next = next + normal(shape, rng, &device).mul_scalar(sig_s * tau.sqrt());
                    }
                    next
                }
                Method::Heun => {
                    let xs = euler(x.clone(), e.clone());
                    let es = eps.eps(xs, s);
                    euler(x, (e + es).mul_scalar(0.5))
                }
                Method::Eab2 => {
                    let (u_c, u_s) = (rho(t).ln(), rho(s).ln());
                    let next = match previous.take() {
                        None => euler(x, e.clone()),
                        Some((u_p, e_p)) => {
                            let (h, d) = (u_s - u_c, u_c - u_p);
                            let i0 = rho(s) - rho(t);
                            let i1 = rho(s) * (h - 1.0) + rho(t);
                            x.mul_scalar(r) + e.clone().mul_scalar(mu_s * (i0 + i1 / d))
                                - e_p.mul_scalar(mu_s * i1 / d)
                        }
                    };
                    previous = Some((u_c, e));
                    next
                }
            };
            for _ in 0..self.corrections {
                let z = normal(shape, rng, &device);
                let e = eps.eps(x.clone(), s);
                let delta = match self.corrector {
                    Corrector::Sda => mean_square(e.clone()).recip().mul_scalar(self.tau),
                    Corrector::Fixed => Tensor::full([shape[0], 1, 1], self.delta, &device),
                }; // [B, 1, 1]
                let step = e * delta.clone() + z * delta.mul_scalar(2.0).sqrt();
                x = x - step.mul_scalar(sig_s);
            }
            x = pin(x, s, rng);
            step(Step {
                index: j + 1,
                t,
                s,
                x: &x,
            })?;
        }
        Ok(x)
    }
}

/// One finished step of a run, as [`Sampler::try_sample_from`] reports it.
pub struct Step<'a> {
    /// Steps done, 1 to T.
    pub index: usize,
    /// The time the step started from.
    pub t: f64,
    /// The time it reached.
    pub s: f64,
    /// The iterate `x(s)`: `[B, L, F]`.
    pub x: &'a Tensor<3>,
}

/// `x` `[B, L, F]` with its first `c` states replaced by `head` `[B, c, F]`.
fn replace(x: Tensor<3>, head: Tensor<3>) -> Tensor<3> {
    let [b, l, f] = x.dims();
    let c = head.dims()[1];
    if c == l {
        return head;
    }
    Tensor::cat(vec![head, x.slice([0..b, c..l, 0..f])], 1)
}

/// The mean of `e²` over each sample's whole trajectory: `[B, L, F]` → `[B, 1, 1]`.
fn mean_square(e: Tensor<3>) -> Tensor<3> {
    let [b, l, f] = e.dims();
    e.square()
        .reshape([b, l * f])
        .mean_dim(1)
        .reshape([b, 1, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_run_from_one_to_zero_and_the_logsnr_grid_is_uniform_in_lambda() {
        let sde = VpSde::default();
        for grid in [Grid::T, Grid::Logsnr] {
            let s = Sampler {
                grid,
                steps: 16,
                ..Sampler::default()
            };
            let t = s.times();
            assert_eq!((t.len(), t[0], t[16]), (17, 1.0, 0.0));
            assert!(t.windows(2).all(|w| w[1] < w[0]), "{grid:?}: {t:?}");
        }
        let t = Sampler {
            grid: Grid::Logsnr,
            steps: 16,
            ..Sampler::default()
        }
        .times();
        let lambda: Vec<f64> = t.iter().map(|&t| (sde.mu(t) / sde.sigma(t)).ln()).collect();
        let step = (lambda[16] - lambda[0]) / 16.0;
        for w in lambda.windows(2) {
            assert!((w[1] - w[0] - step).abs() < 1e-9, "{lambda:?}");
        }
    }
}
