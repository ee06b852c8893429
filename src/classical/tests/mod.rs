//! Oracles: the exact Kalman filter and RTS smoother on a linear-Gaussian system, the
//! Gaspari–Cohn table of docs/baselines.md §2, ETKF = LETKF without localisation, rotation
//! invariants.
//!
//! The shared fixtures: a linear-Gaussian problem with its exact marginals, the comparison of
//! an ensemble with them, and a Lorenz-96 problem; the tests are grouped by method family.

use nalgebra::{DMatrix, DVector};
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::io::Array;
use crate::kalman::{LinearGaussian, LinearObservation};
use crate::mcs::{DampedSpring, Lorenz96};
use crate::score::operator::Operator;

mod checks;
mod enkf;
mod ensf;
mod operators;
mod var;

/// A linear-Gaussian problem: the spring observed in position at `times` with std `sigma`.
struct Linear {
    spring: DampedSpring,
    op: Operator,
    y: Array,
    noise: Vec<f32>,
    length: usize,
    x0: Vec<f64>,
    s0: f64,
}

impl Linear {
    fn new(noise: f64, operator: &str, length: usize) -> Self {
        let spring = DampedSpring {
            noise,
            ..Default::default()
        };
        let op = Operator::parse(operator).unwrap();
        let times = op.times(length).unwrap();
        // Observations of a fixed made-up truth path (any values are valid data).
        let data: Vec<f32> = times
            .iter()
            .map(|&t| (0.8 * (0.3 * t as f64).cos()) as f32)
            .collect();
        Self {
            spring,
            y: Array::new(vec![times.len(), 1], data),
            noise: vec![0.3; times.len()],
            op,
            length,
            x0: vec![1.0, 0.0],
            s0: 0.5,
        }
    }

    fn problem(&self) -> Problem<'_> {
        Problem::new(
            &self.spring,
            &self.op,
            &self.y,
            &self.noise,
            self.length,
            Some(self.x0.clone()),
            self.s0,
            None,
        )
        .unwrap()
    }

    fn kalman(&self) -> LinearGaussian {
        LinearGaussian {
            m0: DVector::from_vec(self.x0.clone()),
            p0: DMatrix::identity(2, 2) * self.s0.powi(2),
            f: self.spring.f_matrix(),
            q: self.spring.q_matrix(),
        }
    }

    fn observations(&self) -> Vec<LinearObservation> {
        let times = self.op.times(self.length).unwrap();
        times
            .iter()
            .enumerate()
            .map(|(k, &time)| LinearObservation {
                time,
                h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
                y: DVector::from_element(1, self.y.data[k] as f64),
                r: DMatrix::from_element(1, 1, (self.noise[k] as f64).powi(2)),
            })
            .collect()
    }

    /// Exact filtered marginals: the smoother's last state on each prefix.
    fn filtered(&self) -> (Vec<DVector<f64>>, Vec<DMatrix<f64>>) {
        let obs = self.observations();
        let lg = self.kalman();
        (1..=self.length)
            .map(|l| {
                let s = lg.smooth(l, &obs);
                (s.mean[l - 1].clone(), s.cov[l - 1].clone())
            })
            .unzip()
    }

    /// Exact fixed-lag smoothed marginals: state `t` given the observations up to `lag` cycles
    /// after the last observation at or before `t` (all of them before the first).
    fn lagged(&self, lag: usize) -> (Vec<DVector<f64>>, Vec<DMatrix<f64>>) {
        let obs = self.observations();
        let times = self.op.times(self.length).unwrap();
        let lg = self.kalman();
        (0..self.length)
            .map(|t| {
                let seen = times.iter().filter(|&&k| k <= t).count();
                let used = (seen + lag).min(times.len());
                let s = lg.smooth(self.length, &obs[..used]);
                (s.mean[t].clone(), s.cov[t].clone())
            })
            .unzip()
    }

    fn smoothed(&self) -> (Vec<DVector<f64>>, Vec<DMatrix<f64>>) {
        let s = self.kalman().smooth(self.length, &self.observations());
        (s.mean, s.cov)
    }
}

/// Asserts that an ensemble's means (and covariances, unless `mean_only`) match the exact
/// marginals within `tol_mean` posterior stds and a relative covariance error `tol_cov`.
fn assert_close(
    what: &str,
    est: &Estimate,
    exact: &(Vec<DVector<f64>>, Vec<DMatrix<f64>>),
    tol_mean: f64,
    tol_cov: Option<f64>,
) {
    let mut worst_m = 0.0f64;
    let mut worst_c = 0.0f64;
    for t in 0..est.length {
        let (m, c) = (&exact.0[t], &exact.1[t]);
        let em = est.mean(t);
        for i in 0..2 {
            worst_m = worst_m.max((em[i] - m[i]).abs() / c[(i, i)].sqrt());
        }
        if tol_cov.is_some() {
            let ec = est.cov(t);
            for i in 0..2 {
                worst_c = worst_c.max((ec[(i, i)] / c[(i, i)] - 1.0).abs());
            }
        }
    }
    eprintln!(
        "{what}: mean off by {worst_m:.3} stds, variance by {:.1} %",
        100.0 * worst_c
    );
    assert!(worst_m < tol_mean, "{what}: mean off by {worst_m:.3} stds");
    if let Some(tc) = tol_cov {
        assert!(
            worst_c < tc,
            "{what}: variance off by {:.1} %",
            100.0 * worst_c
        );
    }
}

fn settings(members: usize) -> Settings {
    Settings {
        members,
        seed: 3,
        ..Default::default()
    }
}

fn l96_problem(model: &Lorenz96, length: usize) -> (Operator, Array, Vec<f32>) {
    let op = Operator::parse("stride:1@1").unwrap();
    let mut x: Vec<f64> = (0..40).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
    let mut y = Vec::new();
    for t in 0..length {
        if t > 0 {
            model.step(&mut x);
            y.extend(
                x.iter()
                    .enumerate()
                    .map(|(i, v)| (v + 0.3 * ((i * t) as f64).sin()) as f32),
            );
        }
    }
    (
        op,
        Array::new(vec![length - 1, 40], y),
        vec![1.0; (length - 1) * 40],
    )
}
