//! Lorenz-96: `dx_j/dt = (x_{j+1} − x_{j−2}) x_{j−1} − x_j + F`, periodic in j, RK4 steps, with
//! additive Gaussian noise after each transition (docs/method.md §9).
//!
//! The size, forcing, time step and noise are settings: `n = 40`, `F = 8`, `dt = 0.05` and no
//! noise is the deterministic model of the data-assimilation benchmarks (DAPPER's `sakov2008`,
//! one RK4 step per `dt`); a noiseless system has no transition density.

use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{MarkovChain, add_noise, log_normal, rk4, rk4_in};

/// The Lorenz-96 system.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lorenz96 {
    /// Number of variables.
    pub n: usize,
    /// Forcing.
    pub forcing: f64,
    /// Physical time per transition.
    pub dt: f64,
    /// Standard deviation of the transition noise (0: deterministic, no transition density).
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
        let at = |j: usize| {
            let (p1, m1, m2) = (x[(j + 1) % n], x[(j + n - 1) % n], x[(j + n - 2) % n]);
            (p1 - m2) * m1 - x[j] + self.forcing
        };
        // The ring's ends wrap; the interior indexes directly (no modulo in the hot loop).
        for j in [0, 1, n - 1] {
            dx[j] = at(j);
        }
        for j in 2..n - 1 {
            dx[j] = (x[j + 1] - x[j - 2]) * x[j - 1] - x[j] + self.forcing;
        }
    }

    /// [`f`](Self::f) of `m` states stored variable-major (`x[j·m + i]` is variable `j` of
    /// state `i`).
    #[inline(always)]
    fn f_batch(&self, x: &[f64], dx: &mut [f64], m: usize) {
        let n = self.n;
        for j in 0..n {
            let row = |k: usize| &x[k * m..(k + 1) * m];
            let (p1, m1, m2, x0) = (
                row((j + 1) % n),
                row((j + n - 1) % n),
                row((j + n - 2) % n),
                row(j),
            );
            for (i, d) in dx[j * m..(j + 1) * m].iter_mut().enumerate() {
                *d = (p1[i] - m2[i]) * m1[i] - x0[i] + self.forcing;
            }
        }
    }

    /// [`step`](Self::step) of `m` states at once, stored variable-major (`x[j·m + i]` is
    /// variable `j` of state `i`), with `scratch` of `5 · n · m` values. Every loop runs over
    /// the states, contiguous, so that it vectorises (the callers compile it for wide SIMD);
    /// each state gets exactly the arithmetic of `step`, to the bit.
    #[inline(always)]
    pub fn step_batch(&self, x: &mut [f64], m: usize, scratch: &mut [f64]) {
        let len = self.n * m;
        let (k1, rest) = scratch[..5 * len].split_at_mut(len);
        let (k2, rest) = rest.split_at_mut(len);
        let (k3, rest) = rest.split_at_mut(len);
        let (k4, tmp) = rest.split_at_mut(len);
        let dt = self.dt;
        self.f_batch(x, k1, m);
        for j in 0..len {
            tmp[j] = x[j] + 0.5 * dt * k1[j];
        }
        self.f_batch(tmp, k2, m);
        for j in 0..len {
            tmp[j] = x[j] + 0.5 * dt * k2[j];
        }
        self.f_batch(tmp, k3, m);
        for j in 0..len {
            tmp[j] = x[j] + dt * k3[j];
        }
        self.f_batch(tmp, k4, m);
        for j in 0..len {
            x[j] += dt / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
        }
    }

    /// The deterministic part of a transition: one RK4 step of `dt`.
    pub fn step(&self, x: &mut [f64]) {
        // Scratch on the stack for rings up to 128 variables (no allocation per step).
        const MAX: usize = 128;
        if self.n <= MAX {
            let mut scratch = [0.0; 5 * MAX];
            rk4_in(
                |x, dx| self.f(x, dx),
                x,
                self.dt,
                &mut scratch[..5 * self.n],
            );
        } else {
            rk4(|x, dx| self.f(x, dx), x, self.dt);
        }
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
        if self.noise > 0.0 {
            add_noise(x, self.noise, rng);
        }
    }

    /// `None` for the noiseless model: a deterministic map has no transition density.
    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        if self.noise <= 0.0 {
            return None;
        }
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

    #[test]
    fn noiseless_model_is_deterministic_and_has_no_density() {
        let s = Lorenz96 {
            n: 40,
            forcing: 8.0,
            dt: 0.05,
            noise: 0.0,
        };
        assert_eq!(
            s.trajectories(2, 4, 3, 1)[..40],
            s.trajectories(2, 4, 3, 1)[..40]
        );
        let x = vec![1.0; 40];
        let mut y = x.clone();
        s.step(&mut y);
        assert!(s.log_transition(&x, &y).is_none());
        // DAPPER's convention by hand: dx_0/dt = (x_1 − x_38)·x_39 − x_0 + F.
        let mut e = vec![0.0; 40];
        e[1] = 2.0;
        e[39] = 3.0;
        let mut dx = vec![0.0; 40];
        s.f(&e, &mut dx);
        assert!((dx[0] - (2.0 * 3.0 + 8.0)).abs() < 1e-12);
    }
}
