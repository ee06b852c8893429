//! The ensemble-space square-root analysis: the spectrum of the whitened anomalies, EnKF-N's
//! hyper-prior, and the transforms that the ETKF, LETKF, EnKS and iEnKS apply.

use nalgebra::{DMatrix, DVector};

use super::dense;

/// EnKF-N's hyper-prior coefficients `(eN, cL)` for singular values² `s2` (padded to N) and
/// boost `xn` (Bocquet 2011, 2015; docs/baselines.md §2, "EnKF-N").
pub(super) fn hyperprior(s2: &[f64], n: usize, xn: f64) -> (f64, f64) {
    let n1 = (n - 1) as f64;
    let mut en = (n as f64 + 1.0) / n as f64;
    let mut cl = n as f64 / n1;
    let h = s2.iter().map(|s| n1 / (s + n1)).sum::<f64>() / s2.len() as f64;
    let mc = (en / cl).powf(h).sqrt();
    en /= mc;
    cl *= mc;
    (en * xn, cl * xn)
}

/// The spectrum of `ỸᵀỸ` (`N × N`) for whitened anomalies `Ỹ` (`p × N`): eigenvectors `V_r`
/// (`N × r`) of its non-zero eigenvalues `s²` — through the `p × p` matrix `ỸỸᵀ` when `p < N`,
/// so that huge ensembles cost `O(p² N)`, not `O(N³)`.
pub(super) struct Spectrum {
    v: DMatrix<f64>,
    s2: Vec<f64>,
    n: usize,
}

impl Spectrum {
    pub(super) fn of(y: &DMatrix<f64>) -> Self {
        let (p, n) = y.shape();
        if p >= n {
            let (values, v) = eigen(dense::mul(y, true, y, false));
            let s2 = values.iter().map(|s| s.max(0.0)).collect();
            return Self { v, s2, n };
        }
        let (values, vectors) = eigen(dense::mul(y, false, y, true));
        let top = values.iter().fold(0.0f64, |m, &s| m.max(s));
        let keep: Vec<usize> = (0..p)
            .filter(|&i| values[i] > 1e-12 * top && values[i] > 0.0)
            .collect();
        let mut v = DMatrix::zeros(n, keep.len());
        let mut s2 = Vec::with_capacity(keep.len());
        for (c, &i) in keep.iter().enumerate() {
            let s = values[i];
            let col = y.transpose() * vectors.column(i) / s.sqrt();
            v.column_mut(c).copy_from(&col);
            s2.push(s);
        }
        Self { v, s2, n }
    }

    /// The `N` eigenvalues of `ỸᵀỸ`, zeros included.
    pub(super) fn padded(&self) -> Vec<f64> {
        let mut s = self.s2.clone();
        s.resize(self.n, 0.0);
        s
    }

    /// `f(ỸᵀỸ + ζ I)` as an `N × N` matrix.
    pub(super) fn function(&self, zeta: f64, f: impl Fn(f64) -> f64) -> DMatrix<f64> {
        let f0 = f(zeta);
        // V diag(f(s² + ζ) − f(ζ)) Vᵀ: the columns of V scaled, then one product.
        let mut vd = self.v.clone();
        for (mut c, &s) in vd.column_iter_mut().zip(&self.s2) {
            c *= f(s + zeta) - f0;
        }
        let mut out = dense::mul(&vd, false, &self.v, true);
        for i in 0..self.n {
            out[(i, i)] += f0;
        }
        out
    }

    /// `f(ỸᵀỸ + ζ I) x`.
    pub(super) fn apply(
        &self,
        zeta: f64,
        f: impl Fn(f64) -> f64,
        x: &DVector<f64>,
    ) -> DVector<f64> {
        let f0 = f(zeta);
        let c = self.v.transpose() * x;
        let d = DVector::from_iterator(
            c.len(),
            (0..c.len()).map(|i| (f(self.s2[i] + zeta) - f0) * c[i]),
        );
        &self.v * d + x * f0
    }
}

/// Eigenvalues and eigenvectors of a symmetric matrix ([`dense::symmetric_eigen`]); NaN where
/// that does not converge (non-finite input), so that the NaN reaches the ensemble and the
/// divergence check.
pub(super) fn eigen(m: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    match dense::symmetric_eigen(m.clone()) {
        Some(e) => e,
        None => {
            let n = m.nrows();
            (vec![f64::NAN; n], DMatrix::from_element(n, n, f64::NAN))
        }
    }
}

/// An ensemble-space analysis: mean weights and transform.
pub(super) struct Transform {
    /// Mean weights `w`.
    w: DVector<f64>,
    /// The symmetric square-root transform `T`.
    t: DMatrix<f64>,
}

/// The ETKF's weights for whitened anomalies `y` (`p × N`) and innovation `d`: with `ζ = N − 1`,
/// or EnKF-N's `ζ` when `finite_size` is set. `E^a = x̄ 1ᵀ + A (w 1ᵀ + T)`, `w = (ỸᵀỸ + ζ)⁻¹ Ỹᵀ d̃`,
/// `T = √(N−1) (ỸᵀỸ + ζ)^{-1/2}`.
pub(super) fn sqrt_transform(
    y: &DMatrix<f64>,
    d: &DVector<f64>,
    finite_size: Option<f64>,
) -> Transform {
    let n = y.ncols();
    let n1 = (n - 1) as f64;
    let sp = Spectrum::of(y);
    let yd = y.transpose() * d;
    let zeta = match finite_size {
        None => n1,
        Some(xn) => {
            let (en, cl) = hyperprior(&sp.padded(), n, xn);
            // Newton on J(w) = −wᵀỸᵀd̃ + ½ wᵀỸᵀỸw + ½ N1 cL log(eN + wᵀw) with the Hessian
            // approximated by ỸᵀỸ + ζ(w) I (docs/baselines.md §2, "EnKF-N").
            let zeta_of = |u: &DVector<f64>| n1 * cl / (en + u.norm_squared());
            let mut u = DVector::zeros(n);
            for _ in 0..100 {
                let z = zeta_of(&u);
                let grad = sp.apply(z, |g| g, &u) - &yd;
                let step = sp.apply(z, |g| 1.0 / g, &grad);
                u -= &step;
                if grad.norm() < 1e-7 || step.norm() < 1e-4 {
                    break;
                }
            }
            zeta_of(&u)
        }
    };
    let w = sp.apply(zeta, |g| 1.0 / g, &yd);
    let t = sp.function(zeta, |g| n1.sqrt() / g.sqrt());
    Transform { w, t }
}

impl Transform {
    /// `G` with `E G = x̄ 1ᵀ + A (w 1ᵀ + T)` for every ensemble `E` (mean `x̄`, anomalies `A`).
    pub(super) fn right_factor(&self) -> DMatrix<f64> {
        let mut g = self.t.clone();
        for mut c in g.column_iter_mut() {
            c += &self.w;
        }
        anomaly_factor(g)
    }
}

/// `G = 1 1ᵀ / N + Π W` (`Π = I − 1 1ᵀ / N`) from `N × N` anomaly weights `W`:
/// `E G = x̄ 1ᵀ + A W`, in one product with the ensemble.
pub(super) fn anomaly_factor(mut w: DMatrix<f64>) -> DMatrix<f64> {
    let n = w.nrows();
    for c in w.as_mut_slice().chunks_exact_mut(n) {
        let shift = 1.0 / n as f64 - c.iter().sum::<f64>() / n as f64;
        c.iter_mut().for_each(|x| *x += shift);
    }
    w
}

/// `x̄ 1ᵀ + A (w 1ᵀ + T)` for an ensemble `e`.
pub(super) fn apply_transform(e: &DMatrix<f64>, tr: &Transform) -> DMatrix<f64> {
    dense::mul(e, false, &tr.right_factor(), false)
}
