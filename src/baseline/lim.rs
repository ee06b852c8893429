//! The linear inverse model (Penland & Sardeshmukh 1995) and its exact linear-Gaussian
//! inference: `p_{t+1} = A p_t + ξ_t`, `ξ_t ~ N(0, Q)`, fitted from consecutive training states
//! in the space of the leading EOFs (`A = C(1) C(0)⁻¹`, `Q = C(0) − A C(0) Aᵀ`), then a Kalman
//! filter, the Rauch–Tung–Striebel smoother and forward-filtering backward-sampling (Carter &
//! Kohn 1994; Frühwirth-Schnatter 1994) of whole trajectories given the observations.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// `p_{t+1} = A p_t + N(0, Q)`, with `p_0 ~ N(0, P0)`.
#[derive(Clone, Debug)]
pub struct LinearChain {
    /// The propagator `A`.
    pub a: DMatrix<f64>,
    /// The noise covariance `Q`.
    pub q: DMatrix<f64>,
    /// The covariance of the first state.
    pub p0: DMatrix<f64>,
}

/// An observation `d = G p_t + N(0, R)` of state `t`.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The observed state.
    pub time: usize,
    /// `m × k`.
    pub g: DMatrix<f64>,
    /// `m × m`, symmetric positive definite.
    pub r: DMatrix<f64>,
    /// The observed values.
    pub d: DVector<f64>,
}

/// What the forward filter and the backward smoother know of every state.
#[derive(Clone, Debug)]
pub struct Smoothed {
    /// Filtered means and covariances.
    pub filtered: Vec<(DVector<f64>, DMatrix<f64>)>,
    /// Predicted (before the observations of their state) means and covariances.
    pub predicted: Vec<(DVector<f64>, DMatrix<f64>)>,
    /// Smoothed means `E[p_t | all observations]`.
    pub mean: Vec<DVector<f64>>,
    /// Smoothed covariances.
    pub cov: Vec<DMatrix<f64>>,
    /// The smoother gains `J_t = P_t^f Aᵀ (P_{t+1}^p)⁻¹`, `t < L − 1`.
    gains: Vec<DMatrix<f64>>,
    /// Factors of the covariances of `p_t | p_{t+1}, observations up to t` (the last state:
    /// of its filtered covariance), for backward sampling.
    factors: Vec<DMatrix<f64>>,
}

/// The fit of a linear inverse model to principal components.
#[derive(Clone, Debug)]
pub struct Fit {
    /// The chain (with `P0 = C(0)`).
    pub chain: LinearChain,
    /// The largest modulus of `A`'s eigenvalues (below 1 for a stable model).
    pub radius: f64,
    /// How many of `C(0) − A C(0) Aᵀ`'s eigenvalues were negative and raised to the floor.
    pub clipped: usize,
    /// Pairs of consecutive states fitted.
    pub pairs: usize,
}

/// `(M + Mᵀ) / 2`.
fn symmetric(m: &DMatrix<f64>) -> DMatrix<f64> {
    (m + m.transpose()) * 0.5
}

/// `A = C(1) C(0)⁻¹` and `Q = C(0) − A C(0) Aᵀ` from the pairs `(c, c + 1)` of the columns of
/// `p` (`k × n`): `C(0) = mean p_c p_cᵀ`, `C(1) = mean p_{c+1} p_cᵀ` over the pairs. `Q`'s
/// negative eigenvalues (sampling noise) are raised to a millionth of its trace.
pub fn fit(p: &DMatrix<f64>, pairs: &[(usize, usize)]) -> Result<Fit> {
    let k = p.nrows();
    if pairs.len() <= k {
        return Err(Error::config(
            "--eofs",
            format!(
                "a linear inverse model of {k} EOFs needs more than {k} pairs of consecutive \
                 training states, the training split has {}",
                pairs.len()
            ),
        ));
    }
    let mut c0 = DMatrix::zeros(k, k);
    let mut c1 = DMatrix::zeros(k, k);
    for &(i, j) in pairs {
        let (a, b) = (p.column(i), p.column(j));
        c0 += a * a.transpose();
        c1 += b * a.transpose();
    }
    let np = pairs.len() as f64;
    c0 /= np;
    c1 /= np;
    let inv = c0.clone().try_inverse().ok_or_else(|| {
        Error::config(
            "--eofs",
            "C(0) of the principal components is singular: fewer EOFs",
        )
    })?;
    let a = &c1 * inv;
    let q = symmetric(&(&c0 - &a * &c0 * a.transpose()));
    let (values, vectors) = crate::classical::symmetric_eigen(q.clone())
        .ok_or_else(|| Error::config("--eofs", "Q's eigenvectors did not converge"))?;
    let floor = 1e-6 * values.iter().map(|v| v.abs()).sum::<f64>().max(1e-300);
    let clipped = values.iter().filter(|&&v| v < floor).count();
    let mut vd = vectors.clone();
    for (mut c, &v) in vd.column_iter_mut().zip(&values) {
        c *= v.max(floor);
    }
    let q = symmetric(&(vd * vectors.transpose()));
    let radius = nalgebra::linalg::Schur::try_new(a.clone(), 1e-12, 10_000)
        .map(|s| {
            s.complex_eigenvalues()
                .iter()
                .map(|z| z.norm())
                .fold(0.0, f64::max)
        })
        .unwrap_or(f64::NAN);
    Ok(Fit {
        chain: LinearChain { a, q, p0: c0 },
        radius,
        clipped,
        pairs: pairs.len(),
    })
}

/// A factor `L` with `L Lᵀ = c` for a symmetric positive semi-definite `c` (Cholesky, or the
/// eigendecomposition with negative rounding errors set to 0).
pub fn factor(c: &DMatrix<f64>) -> DMatrix<f64> {
    if let Some(ch) = symmetric(c).cholesky() {
        return ch.l();
    }
    let (values, vectors) = crate::classical::symmetric_eigen(symmetric(c)).unwrap_or_else(|| {
        let n = c.nrows();
        (vec![f64::NAN; n], DMatrix::from_element(n, n, f64::NAN))
    });
    let mut l = vectors;
    for (mut col, &v) in l.column_iter_mut().zip(&values) {
        col *= v.max(0.0).sqrt();
    }
    l
}

/// `(S⁻¹ b)` for a symmetric positive definite `S` (an error when it is not).
fn solve(s: &DMatrix<f64>, b: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    let ch = symmetric(s).cholesky().ok_or_else(|| {
        Error::config(
            "--observations",
            "the innovation covariance is not positive definite",
        )
    })?;
    Ok(ch.solve(b))
}

impl LinearChain {
    /// The Kalman filter and RTS smoother over `length` states with observations `obs` (in
    /// any order; several may observe one state).
    pub fn smooth(&self, length: usize, obs: &[Observation]) -> Result<Smoothed> {
        let k = self.a.nrows();
        let mut filtered = Vec::with_capacity(length);
        let mut predicted = Vec::with_capacity(length);
        let (mut m, mut p) = (DVector::zeros(k), self.p0.clone());
        for t in 0..length {
            if t > 0 {
                m = &self.a * &m;
                p = symmetric(&(&self.a * &p * self.a.transpose() + &self.q));
            }
            predicted.push((m.clone(), p.clone()));
            for o in obs.iter().filter(|o| o.time == t) {
                let pg = &p * o.g.transpose();
                let s = &o.g * &pg + &o.r;
                // K = P Gᵀ S⁻¹, as (S⁻¹ G P)ᵀ.
                let kt = solve(&s, &pg.transpose())?;
                let gain = kt.transpose();
                m = &m + &gain * (&o.d - &o.g * &m);
                // Joseph's form keeps P symmetric positive semi-definite.
                let ikg = DMatrix::identity(k, k) - &gain * &o.g;
                p = symmetric(&(&ikg * &p * ikg.transpose() + &gain * &o.r * gain.transpose()));
            }
            filtered.push((m.clone(), p.clone()));
        }
        let mut mean: Vec<DVector<f64>> = filtered.iter().map(|f| f.0.clone()).collect();
        let mut cov: Vec<DMatrix<f64>> = filtered.iter().map(|f| f.1.clone()).collect();
        let mut gains = vec![DMatrix::zeros(k, k); length.saturating_sub(1)];
        for t in (0..length.saturating_sub(1)).rev() {
            let (mf, pf) = &filtered[t];
            let (mp, pp) = &predicted[t + 1];
            // J = Pf Aᵀ Pp⁻¹ = (Pp⁻¹ A Pf)ᵀ.
            let j = solve(pp, &(&self.a * pf))
                .map_err(|_| {
                    Error::config(
                        "the linear inverse model",
                        "a predicted covariance is singular",
                    )
                })?
                .transpose();
            mean[t] = mf + &j * (&mean[t + 1] - mp);
            cov[t] = symmetric(&(pf + &j * (&cov[t + 1] - pp) * j.transpose()));
            gains[t] = j;
        }
        let factors = (0..length)
            .map(|t| {
                let pf = &filtered[t].1;
                if t + 1 == length {
                    factor(pf)
                } else {
                    let j = &gains[t];
                    factor(&(pf - j * &predicted[t + 1].1 * j.transpose()))
                }
            })
            .collect();
        Ok(Smoothed {
            filtered,
            predicted,
            mean,
            cov,
            gains,
            factors,
        })
    }
}

impl Smoothed {
    /// One trajectory drawn from `p(p_0, …, p_{L−1} | observations)` (backward sampling).
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Vec<DVector<f64>> {
        let length = self.filtered.len();
        let k = self.filtered[0].0.len();
        let normal = |rng: &mut R| -> DVector<f64> {
            DVector::from_iterator(k, (0..k).map(|_| StandardNormal.sample(rng)))
        };
        let mut out = vec![DVector::zeros(k); length];
        out[length - 1] = &self.filtered[length - 1].0 + &self.factors[length - 1] * normal(rng);
        for t in (0..length - 1).rev() {
            let mf = &self.filtered[t].0;
            let mp = &self.predicted[t + 1].0;
            let mean = mf + &self.gains[t] * (&out[t + 1] - mp);
            out[t] = mean + &self.factors[t] * normal(rng);
        }
        out
    }
}
