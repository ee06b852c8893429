//! Noisy Lorenz-63 (docs/method.md §7): σ = 10, ρ = 28, β = 8/3, one RK4 step of dt = 0.025 per
//! transition, then `N(0, dt)` noise on every coordinate.

use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{MarkovChain, add_noise, log_normal, rk4_fixed};

/// The Lorenz-63 system with additive transition noise.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lorenz63 {
    /// Prandtl number σ.
    pub sigma: f64,
    /// Rayleigh number ρ.
    pub rho: f64,
    /// Geometric factor β.
    pub beta: f64,
    /// Physical time per transition.
    pub dt: f64,
    /// Standard deviation of the transition noise (√dt in the paper).
    pub noise: f64,
}

impl Default for Lorenz63 {
    fn default() -> Self {
        let dt = 0.025;
        Self {
            sigma: 10.0,
            rho: 28.0,
            beta: 8.0 / 3.0,
            dt,
            noise: f64::sqrt(dt),
        }
    }
}

impl Lorenz63 {
    /// The vector field `dx/dt`.
    pub fn f(&self, x: &[f64], dx: &mut [f64]) {
        dx[0] = self.sigma * (x[1] - x[0]);
        dx[1] = x[0] * (self.rho - x[2]) - x[1];
        dx[2] = x[0] * x[1] - self.beta * x[2];
    }

    /// The deterministic part of a transition: one RK4 step.
    pub fn step(&self, x: &mut [f64]) {
        let mut s = [x[0], x[1], x[2]];
        rk4_fixed(|x, dx| self.f(x, dx), &mut s, self.dt);
        x.copy_from_slice(&s);
    }
}

impl MarkovChain for Lorenz63 {
    fn dim(&self) -> usize {
        3
    }

    /// `x_1 ~ N((0, 0, 25), [[64, 50, 0], [50, 81, 0], [0, 0, 75]])`.
    fn prior(&self, rng: &mut StdRng) -> Vec<f64> {
        let z: [f64; 3] = std::array::from_fn(|_| StandardNormal.sample(rng));
        // Cholesky factor of the covariance: l11 = 8, l21 = 50/8, l22 = √(81 − l21²), l33 = √75.
        let l21 = 50.0 / 8.0;
        let l22 = (81.0f64 - l21 * l21).sqrt();
        vec![
            8.0 * z[0],
            l21 * z[0] + l22 * z[1],
            25.0 + 75f64.sqrt() * z[2],
        ]
    }

    fn transition(&self, x: &mut [f64], rng: &mut StdRng) {
        self.step(x);
        add_noise(x, self.noise, rng);
    }

    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        let mut mean = x.to_vec();
        self.step(&mut mean);
        Some(log_normal(x_next, &mean, self.noise))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rk4_matches_a_fine_reference_integration() {
        // Reference: 1000 RK4 sub-steps of dt/1000 from the same state agree with one step of
        // dt to RK4's local error O(dt⁵) ≈ 1e-8 · |f⁽⁵⁾|, far below 1e-3 here.
        let s = Lorenz63::default();
        let x0 = [1.0, 2.0, 20.0];
        let mut coarse = x0;
        s.step(&mut coarse);
        let mut fine = x0;
        for _ in 0..1000 {
            crate::mcs::rk4(|x, dx| s.f(x, dx), &mut fine, s.dt / 1000.0);
        }
        for j in 0..3 {
            assert!((coarse[j] - fine[j]).abs() < 1e-3, "{coarse:?} vs {fine:?}");
        }
        // A hand-checked first component: f(x0) = (10, 1·8 − 2, 2 − 8/3·20) so x moves by
        // ≈ dt·10 = 0.25 to first order.
        assert!((coarse[0] - x0[0] - 0.25).abs() < 0.05);
    }

    #[test]
    fn log_transition_is_the_gaussian_density() {
        let s = Lorenz63::default();
        let x = [1.0, 2.0, 20.0];
        let mut mean = x;
        s.step(&mut mean);
        // At the mean: −3 (ln σ + ½ ln 2π).
        let at_mean = s.log_transition(&x, &mean).unwrap();
        let expected = -3.0 * (s.noise.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln());
        assert!((at_mean - expected).abs() < 1e-12);
    }

    #[test]
    fn stationary_statistics_are_those_of_the_attractor() {
        // Long-run mean of z on the Lorenz attractor is ≈ 23.5 (ρ − 1 minus a bit); x, y ≈ 0.
        let s = Lorenz63::default();
        let x = s.trajectories(16, 1024, 1024, 1);
        let mean_z = x.chunks(3).map(|v| v[2]).sum::<f64>() / (x.len() / 3) as f64;
        assert!((mean_z - 23.5).abs() < 1.5, "mean z = {mean_z}");
    }
}
