//! Lorenz-96: `dx_j/dt = (x_{j+1} − x_{j−2}) x_{j−1} − x_j + F`, periodic in j, RK4 steps, with
//! additive Gaussian noise after each transition (METHOD.md §8).

use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{MarkovChain, add_noise, log_normal, rk4};

/// The Lorenz-96 system.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lorenz96 {
    /// Number of variables.
    pub n: usize,
    /// Forcing.
    pub forcing: f64,
    /// Physical time per transition.
    pub dt: f64,
    /// Standard deviation of the transition noise.
    pub noise: f64,
}

impl Default for Lorenz96 {
    fn default() -> Self {
        Self {
            n: 32,
            forcing: 16.0,
            dt: 0.05,
            noise: 0.05f64.sqrt(),
        }
    }
}

impl Lorenz96 {
    /// The vector field.
    pub fn f(&self, x: &[f64], dx: &mut [f64]) {
        let n = self.n;
        for j in 0..n {
            let (p1, m1, m2) = (x[(j + 1) % n], x[(j + n - 1) % n], x[(j + n - 2) % n]);
            dx[j] = (p1 - m2) * m1 - x[j] + self.forcing;
        }
    }

    fn step(&self, x: &mut [f64]) {
        rk4(|x, dx| self.f(x, dx), x, self.dt);
    }
}

impl MarkovChain for Lorenz96 {
    fn dim(&self) -> usize {
        self.n
    }

    /// `x_1 ~ N(0, I)`; the burn-in carries it to the attractor.
    fn prior(&self, rng: &mut StdRng) -> Vec<f64> {
        (0..self.n).map(|_| StandardNormal.sample(rng)).collect()
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
    fn uniform_state_is_a_fixed_point() {
        // x_j = F for all j: (F − F)·F − F + F = 0.
        let s = Lorenz96::default();
        let x = vec![s.forcing; s.n];
        let mut dx = vec![1.0; s.n];
        s.f(&x, &mut dx);
        assert!(dx.iter().all(|v| v.abs() < 1e-12));
    }
}
