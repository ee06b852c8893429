//! A damped spring: a linear-Gaussian Markov chain `x_{i+1} = F x_i + w`, `w ~ N(0, q² I)`,
//! whose exact posterior a Kalman/RTS smoother gives (docs/method.md §9). It is the oracle that the
//! sampler and the particle filter are checked against.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{MarkovChain, add_noise, log_normal};

/// A unit-mass spring (position, velocity) integrated by semi-implicit Euler steps.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DampedSpring {
    /// Angular frequency ω.
    pub omega: f64,
    /// Damping ratio ζ.
    pub zeta: f64,
    /// Physical time per transition.
    pub dt: f64,
    /// Standard deviation of the transition noise.
    pub noise: f64,
}

impl Default for DampedSpring {
    fn default() -> Self {
        Self {
            omega: 1.0,
            zeta: 0.1,
            dt: 0.2,
            noise: 0.1,
        }
    }
}

impl DampedSpring {
    /// The transition matrix: `v' = v − dt (ω² x + 2ζω v)`, `x' = x + dt v'`.
    pub fn f_matrix(&self) -> DMatrix<f64> {
        let (w2, c, h) = (
            self.omega * self.omega,
            2.0 * self.zeta * self.omega,
            self.dt,
        );
        let v_row = [-h * w2, 1.0 - h * c];
        DMatrix::from_row_slice(
            2,
            2,
            &[1.0 + h * v_row[0], h * v_row[1], v_row[0], v_row[1]],
        )
    }

    /// The transition noise covariance `q² I`.
    pub fn q_matrix(&self) -> DMatrix<f64> {
        DMatrix::identity(2, 2) * self.noise.powi(2)
    }

    /// The stationary covariance `P = F P Fᵀ + Q`, the prior of `x_1` (zero mean).
    pub fn stationary_covariance(&self) -> DMatrix<f64> {
        let (f, q) = (self.f_matrix(), self.q_matrix());
        let mut p = q.clone();
        for _ in 0..100_000 {
            let next = &f * &p * f.transpose() + &q;
            if (&next - &p).abs().max() < 1e-14 {
                return next;
            }
            p = next;
        }
        p
    }

    /// The exact Gaussian prior of a whole trajectory of `length` states, flattened
    /// state-major: mean and covariance of `(x_1, …, x_L)`.
    pub fn trajectory_prior(&self, length: usize) -> (DVector<f64>, DMatrix<f64>) {
        let (f, p) = (self.f_matrix(), self.stationary_covariance());
        let n = 2 * length;
        let mut cov = DMatrix::zeros(n, n);
        // Stationary: Cov(x_i, x_j) = F^{j−i} P for j ≥ i.
        let mut fk = DMatrix::identity(2, 2);
        for lag in 0..length {
            let block = &fk * &p;
            for i in 0..length - lag {
                let j = i + lag;
                cov.view_mut((2 * j, 2 * i), (2, 2)).copy_from(&block);
                cov.view_mut((2 * i, 2 * j), (2, 2))
                    .copy_from(&block.transpose());
            }
            fk = &f * fk;
        }
        (DVector::zeros(n), cov)
    }
}

impl MarkovChain for DampedSpring {
    fn dim(&self) -> usize {
        2
    }

    fn prior(&self, rng: &mut StdRng) -> Vec<f64> {
        let l = self.stationary_covariance().cholesky().expect("SPD").l();
        let z = DVector::from_fn(2, |_, _| StandardNormal.sample(rng));
        (l * z).iter().copied().collect()
    }

    fn transition(&self, x: &mut [f64], rng: &mut StdRng) {
        let next = self.f_matrix() * DVector::from_column_slice(x);
        x.copy_from_slice(next.as_slice());
        add_noise(x, self.noise, rng);
    }

    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64> {
        let mean = self.f_matrix() * DVector::from_column_slice(x);
        Some(log_normal(x_next, mean.as_slice(), self.noise))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_variance_matches_the_stationary_covariance() {
        // Empirical Var(x) over 4096 chains at a fixed time ≈ P₁₁ within ~3·√(2/4096) ≈ 7%.
        let s = DampedSpring::default();
        let p = s.stationary_covariance();
        let x = s.trajectories(4096, 1, 0, 3);
        let var = x.chunks(2).map(|v| v[0] * v[0]).sum::<f64>() / 4096.0;
        assert!(
            (var / p[(0, 0)] - 1.0).abs() < 0.07,
            "{var} vs {}",
            p[(0, 0)]
        );
    }
}
