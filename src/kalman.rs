//! Exact posteriors of linear-Gaussian systems: the Kalman filter and Rauch–Tung–Striebel
//! smoother (Särkkä, "Bayesian Filtering and Smoothing", 2013, §4.3 and §8.2). The oracle
//! that the sampler and the particle filter are tested against.

use nalgebra::{DMatrix, DVector};

/// A linear-Gaussian chain `x_1 ~ N(m0, P0)`, `x_{i+1} = F x_i + N(0, Q)`, observed as
/// `y_i = H x_i + N(0, R)` at some states.
pub struct LinearGaussian {
    /// Prior mean of `x_1`.
    pub m0: DVector<f64>,
    /// Prior covariance of `x_1`.
    pub p0: DMatrix<f64>,
    /// Transition matrix.
    pub f: DMatrix<f64>,
    /// Transition noise covariance.
    pub q: DMatrix<f64>,
}

/// An observation of state `time`: `y = H x_time + N(0, R)`.
pub struct LinearObservation {
    /// Which state is observed.
    pub time: usize,
    /// The observation matrix.
    pub h: DMatrix<f64>,
    /// The observed values.
    pub y: DVector<f64>,
    /// The noise covariance.
    pub r: DMatrix<f64>,
}

/// Smoothed marginals `p(x_i | y)` for `i = 0..L`: means and covariances.
pub struct Smoothed {
    /// Posterior means.
    pub mean: Vec<DVector<f64>>,
    /// Posterior covariances.
    pub cov: Vec<DMatrix<f64>>,
}

impl LinearGaussian {
    /// The RTS smoother over `length` states.
    pub fn smooth(&self, length: usize, obs: &[LinearObservation]) -> Smoothed {
        let mut mf = Vec::with_capacity(length);
        let mut pf = Vec::with_capacity(length);
        let mut mp = Vec::with_capacity(length);
        let mut pp = Vec::with_capacity(length);
        let (mut m, mut p) = (self.m0.clone(), self.p0.clone());
        for i in 0..length {
            if i > 0 {
                m = &self.f * &m;
                p = &self.f * &p * self.f.transpose() + &self.q;
            }
            mp.push(m.clone());
            pp.push(p.clone());
            // Update with every observation of state i.
            for o in obs.iter().filter(|o| o.time == i) {
                let s = &o.h * &p * o.h.transpose() + &o.r;
                let k = &p * o.h.transpose() * s.try_inverse().expect("SPD innovation");
                m = &m + &k * (&o.y - &o.h * &m);
                p = &p - &k * &o.h * &p;
            }
            mf.push(m.clone());
            pf.push(p.clone());
        }
        let mut mean = mf.clone();
        let mut cov = pf.clone();
        for i in (0..length.saturating_sub(1)).rev() {
            let g = &pf[i] * self.f.transpose() * pp[i + 1].clone().try_inverse().expect("SPD");
            mean[i] = &mf[i] + &g * (&mean[i + 1] - &mp[i + 1]);
            cov[i] = &pf[i] + &g * (&cov[i + 1] - &pp[i + 1]) * g.transpose();
        }
        Smoothed { mean, cov }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcs::DampedSpring;

    #[test]
    fn smoother_equals_dense_gaussian_conditioning() {
        // Posterior of the whole trajectory by conditioning the joint Gaussian:
        // mean = S Hᵀ (H S Hᵀ + R)⁻¹ y, cov = S − S Hᵀ (H S Hᵀ + R)⁻¹ H S.
        let s = DampedSpring::default();
        let l = 9;
        let (_, joint) = s.trajectory_prior(l);
        let times = [0usize, 4, 8];
        let ys = [0.5, -0.3, 0.2];
        let r = 0.05f64.powi(2);
        let mut h = DMatrix::zeros(times.len(), 2 * l);
        for (row, &t) in times.iter().enumerate() {
            h[(row, 2 * t)] = 1.0;
        }
        let y = DVector::from_column_slice(&ys);
        let gain = &joint
            * h.transpose()
            * (&h * &joint * h.transpose() + DMatrix::identity(3, 3) * r)
                .try_inverse()
                .unwrap();
        let mean = &gain * &y;
        let cov = &joint - &gain * &h * &joint;

        let lg = LinearGaussian {
            m0: DVector::zeros(2),
            p0: s.stationary_covariance(),
            f: s.f_matrix(),
            q: s.q_matrix(),
        };
        let obs: Vec<_> = times
            .iter()
            .zip(ys)
            .map(|(&time, v)| LinearObservation {
                time,
                h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
                y: DVector::from_element(1, v),
                r: DMatrix::from_element(1, 1, r),
            })
            .collect();
        let sm = lg.smooth(l, &obs);
        for i in 0..l {
            for a in 0..2 {
                assert!((sm.mean[i][a] - mean[2 * i + a]).abs() < 1e-9);
                assert!((sm.cov[i][(a, a)] - cov[(2 * i + a, 2 * i + a)]).abs() < 1e-9);
            }
        }
    }
}
