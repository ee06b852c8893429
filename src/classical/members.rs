//! The ensemble's members: the initial draw, the forecast, mean and anomalies, inflation and
//! random rotations, the methods' random streams and the divergence check.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::{Dynamics, Problem, Settings};
use crate::error::Error;
use crate::mcs::{chain_rng, splitmix64};

/// The error of a filter whose ensemble became NaN or infinite at state `t`.
pub(super) fn diverged(t: usize) -> Error {
    Error::config(
        "--method",
        format!("the filter diverged (NaN or inf) at state {t}"),
    )
}

/// Whether every value is finite.
pub(super) fn finite(e: &DMatrix<f64>) -> bool {
    e.iter().all(|v| v.is_finite())
}

/// The initial ensemble `N(x0, s² I)`, `D × N`.
pub(super) fn initial_ensemble(p: &Problem, n: usize, rng: &mut MethodRng) -> DMatrix<f64> {
    let d = p.model.dim();
    DMatrix::from_fn(d, n, |i, _| {
        let z: f64 = StandardNormal.sample(rng);
        p.initial[i] + p.initial_std * z
    })
}

/// Moves every member one transition (with the model's noise, member by member from its own
/// random stream); in parallel when the ensemble is large enough to pay for it.
pub(super) fn forecast(model: &dyn Dynamics, e: &mut DMatrix<f64>, seed: u64, t: usize) {
    let d = e.nrows();
    let noise = model.noise();
    let parallel = e.len() >= 1 << 14;
    if parallel {
        e.as_mut_slice()
            .par_chunks_mut(d * 64)
            .for_each(|c| model.step_all(c));
    } else {
        model.step_all(e.as_mut_slice());
    }
    if noise > 0.0 {
        let one = |(n, x): (usize, &mut [f64])| {
            let mut rng = chain_rng(seed ^ splitmix64(t as u64 + 1), n as u64);
            for v in x.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v += noise * z;
            }
        };
        if parallel {
            e.as_mut_slice().par_chunks_mut(d).enumerate().for_each(one);
        } else {
            e.as_mut_slice().chunks_mut(d).enumerate().for_each(one);
        }
    }
}

/// Mean and anomalies of an ensemble.
pub(super) fn split(e: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let mean = e.column_mean();
    let mut a = e.clone();
    for mut c in a.column_iter_mut() {
        c -= &mean;
    }
    (mean, a)
}

/// `x̄ 1ᵀ + A`.
pub(super) fn join(mean: &DVector<f64>, a: &DMatrix<f64>) -> DMatrix<f64> {
    let mut e = a.clone();
    for mut c in e.column_iter_mut() {
        c += mean;
    }
    e
}

/// A random mean-preserving orthogonal `N × N` matrix `Q` (`Q 1 = 1`, `QᵀQ = I`), Haar
/// distributed on that subgroup: the identity through [`rotate_members`].
pub fn mean_preserving_rotation<R: rand::Rng>(n: usize, rng: &mut R) -> DMatrix<f64> {
    let mut q = DMatrix::identity(n, n);
    rotate_members(&mut q, rng);
    q
}

/// `A ← A Q` for the columns (members) of `a` and a fresh random mean-preserving orthogonal
/// `Q = U blockdiag(1, O) U` (DAPPER's `genOG_1`): `U = I − c u uᵀ` the reflection with
/// `U e₁ = 1/√N`, and `O` Haar on `O(N − 1)`. `O` is drawn as Stewart's (1980) product of
/// Householder reflections `H₁ ⋯ H_{N−2} D` built from independent standard normal vectors
/// of dimensions `N − 1, …, 2` and the signs `D` that make the implied `R` of a QR
/// factorisation positive: the law of the `Q` factor of a Gaussian matrix, without forming
/// the matrix, its factorisation or `Q`. Each reflection is one pass over the columns.
pub fn rotate_members<R: rand::Rng>(a: &mut DMatrix<f64>, rng: &mut R) {
    let n = a.ncols();
    if n < 2 {
        return;
    }
    let rows = a.nrows();
    // The N(N−1)/2 normal draws come from a xoshiro256++ stream seeded by `rng`.
    let mut fast = rand::rngs::SmallRng::from_rng(rng);
    let mut av = vec![0.0; rows];
    // A ← A − β (A v) vᵀ for v supported on columns `from..`.
    let mut reflect = |a: &mut DMatrix<f64>, from: usize, v: &[f64], beta: f64| {
        av.fill(0.0);
        let data = a.as_mut_slice();
        for (j, &vj) in v.iter().enumerate() {
            let col = &data[(from + j) * rows..(from + j + 1) * rows];
            for (x, &c) in av.iter_mut().zip(col) {
                *x += c * vj;
            }
        }
        for (j, &vj) in v.iter().enumerate() {
            let col = &mut data[(from + j) * rows..(from + j + 1) * rows];
            let f = beta * vj;
            for (c, &x) in col.iter_mut().zip(&av) {
                *c -= f * x;
            }
        }
    };
    let mut u = vec![-1.0 / (n as f64).sqrt(); n];
    u[0] += 1.0;
    let cu = 2.0 / u.iter().map(|x| x * x).sum::<f64>();
    reflect(a, 0, &u, cu);
    let m = n - 1;
    let mut signs = vec![1.0; m];
    let mut v = vec![0.0f64; m];
    for k in 0..m {
        let v = &mut v[..m - k];
        for x in v.iter_mut() {
            *x = StandardNormal.sample(&mut fast);
        }
        if k + 1 == m {
            // The last diagonal entry of R: the sign of a normal draw.
            signs[k] = v[0].signum();
            break;
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        // H x = α e₁ with α = −sign(x₀)‖x‖ (R's diagonal entry), v = x − α e₁.
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        signs[k] = alpha.signum();
        v[0] -= alpha;
        let vv = v.iter().map(|x| x * x).sum::<f64>();
        if vv > 0.0 {
            reflect(a, 1 + k, v, 2.0 / vv);
        }
    }
    for (k, &sg) in signs.iter().enumerate() {
        if sg < 0.0 {
            a.column_mut(1 + k).neg_mut();
        }
    }
    reflect(a, 0, &u, cu);
}

/// Inflation and rotation of an ensemble's anomalies (DAPPER's `post_process`), in place.
pub(super) fn post_process(e: &mut DMatrix<f64>, s: &Settings, rng: &mut MethodRng) {
    if s.inflation == 1.0 && !s.rotate {
        return;
    }
    // The arithmetic of x̄ + (x − x̄) · inflation, with the rotation between.
    let mean = e.column_mean();
    let d = e.nrows();
    for c in e.as_mut_slice().chunks_exact_mut(d) {
        for (x, m) in c.iter_mut().zip(mean.as_slice()) {
            *x -= m;
        }
    }
    if s.rotate {
        rotate_members(e, rng);
    }
    for c in e.as_mut_slice().chunks_exact_mut(d) {
        for (x, m) in c.iter_mut().zip(mean.as_slice()) {
            *x = m + *x * s.inflation;
        }
    }
}

/// The generator of a method's draws.
pub(super) type MethodRng = StdRng;

/// A seeded RNG for a method's draws (initial ensemble, perturbations, rotations).
pub(super) fn method_rng(seed: u64) -> MethodRng {
    MethodRng::seed_from_u64(splitmix64(seed ^ 0xC1A5_51CA))
}
