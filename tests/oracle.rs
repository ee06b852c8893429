//! Oracle tests of the sampler and the likelihood: with the exact score of a linear-Gaussian
//! prior in place of the network, the guided predictor-corrector sampler must reproduce the
//! Kalman/RTS smoother's posterior.

use burn::prelude::*;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sda::kalman::{LinearGaussian, LinearObservation};
use sda::mcs::DampedSpring;
use sda::score::gaussian::GaussianPrior;
use sda::score::guidance::{Guided, Likelihood, Observation};
use sda::score::operator::Operator;
use sda::score::sampler::PcSampler;
use sda::score::sde::VpSde;
use sda::score::{tensor, to_vec};

fn observation(op: &str, y: &[f32], std: f64, device: &Device) -> Observation {
    let m = y.len();
    Observation {
        operator: Operator::parse(op).unwrap(),
        state_shape: vec![2],
        y: tensor(y.to_vec(), [1, m], device),
        variance: Tensor::full([1, m], (std * std) as f32, device),
        scale2: Tensor::ones([1, m], device),
        mean: Tensor::zeros([1, 1, 2], device),
        scale: Tensor::ones([1, 1, 2], device),
    }
}

/// Sample moments per value of `[N, L, 2]` samples.
fn moments(x: &[f32], n: usize, size: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; size];
    let mut var = vec![0.0; size];
    for s in x.chunks(size) {
        for j in 0..size {
            mean[j] += s[j] as f64 / n as f64;
        }
    }
    for s in x.chunks(size) {
        for j in 0..size {
            var[j] += (s[j] as f64 - mean[j]).powi(2) / (n - 1) as f64;
        }
    }
    (mean, var)
}

#[test]
fn oracle_guided_sampler_matches_rts_smoother() {
    let device = Device::flex();
    let spring = DampedSpring::default();
    let (l, std) = (16, 0.1);
    let (m, s) = spring.trajectory_prior(l);
    let sde = VpSde::default();
    let prior = GaussianPrior {
        mean: m,
        cov: s,
        sde,
    };
    // Observe the position at states 0, 5, 10, 15.
    let times = [0usize, 5, 10, 15];
    let y = [0.8f32, -0.5, 0.1, 0.6];
    let obs = observation("stride:5|select:0", &y, std, &device);
    let guided = Guided {
        prior: &prior,
        sde,
        obs: &obs,
        likelihood: Likelihood::Sda { gamma: 1e-2 },
    };
    let sampler = PcSampler {
        sde,
        // SDA's Γ = γI approximation biases the guided score at intermediate t; enough
        // Langevin corrections remove the bias (measured: 22σ at C = 4, < 5σ at C = 32).
        steps: 256,
        corrections: 32,
        tau: 0.25,
    };
    let n = 2048;
    let mut rng = StdRng::seed_from_u64(1);
    let x = to_vec(sampler.sample(&guided, [n, l, 2], &mut rng, &device, |_| {}));

    let lg = LinearGaussian {
        m0: DVector::zeros(2),
        p0: spring.stationary_covariance(),
        f: spring.f_matrix(),
        q: spring.q_matrix(),
    };
    let lobs: Vec<_> = times
        .iter()
        .zip(y)
        .map(|(&time, v)| LinearObservation {
            time,
            h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
            y: DVector::from_element(1, v as f64),
            r: DMatrix::from_element(1, 1, std * std),
        })
        .collect();
    let exact = lg.smooth(l, &lobs);
    let (mean, var) = moments(&x, n, 2 * l);
    let mut worst_mean: f64 = 0.0;
    let mut worst_var: f64 = 0.0;
    for i in 0..l {
        for a in 0..2 {
            let (em, ev) = (exact.mean[i][a], exact.cov[i][(a, a)]);
            // Monte-Carlo standard errors: √(v/N) for the mean, v·√(2/(N−1)) for the variance.
            let z_mean = (mean[2 * i + a] - em) / (ev / n as f64).sqrt();
            let z_var = (var[2 * i + a] - ev) / (ev * (2.0 / (n - 1) as f64).sqrt());
            worst_mean = worst_mean.max(z_mean.abs());
            worst_var = worst_var.max(z_var.abs());
        }
    }
    assert!(
        worst_mean < 5.0,
        "posterior mean off by {worst_mean:.1} standard errors"
    );
    assert!(
        worst_var < 5.0,
        "posterior variance off by {worst_var:.1} standard errors"
    );
}

#[test]
fn oracle_unguided_sampler_draws_the_prior() {
    // With the exact prior score and no observation, the sampler's output is N(0, S): each of
    // the 32 marginal means and variances within 5 Monte-Carlo standard errors.
    let device = Device::flex();
    let spring = DampedSpring::default();
    let l = 16;
    let (m, s) = spring.trajectory_prior(l);
    let sde = VpSde::default();
    let prior = GaussianPrior {
        mean: m,
        cov: s.clone(),
        sde,
    };
    let sampler = PcSampler {
        sde,
        steps: 128,
        corrections: 0,
        tau: 0.25,
    };
    let n = 4096;
    let mut rng = StdRng::seed_from_u64(2);
    let x = to_vec(sampler.sample(&prior, [n, l, 2], &mut rng, &device, |_| {}));
    let (mean, var) = moments(&x, n, 2 * l);
    for j in 0..2 * l {
        let v = s[(j, j)];
        assert!(
            mean[j].abs() / (v / n as f64).sqrt() < 5.0,
            "mean[{j}] = {}",
            mean[j]
        );
        let z = (var[j] - v) / (v * (2.0 / (n - 1) as f64).sqrt());
        assert!(z.abs() < 5.0, "var[{j}] = {} vs {v}", var[j]);
    }
}
