//! Small dense kernels of the ensemble analyses. At the sizes of data-assimilation benchmarks
//! (tens of members, state variables and observations) nalgebra's generic products and
//! column-by-column triangular solves cost more than the arithmetic: the products here go
//! through the `gemm` crate's micro-kernels (AVX-512 where the CPU has it) on any strides, and
//! the Cholesky factorisation and solves run their inner loops over contiguous memory, compiled
//! for AVX-512 where the CPU has it (`simd!`).

use nalgebra::DMatrix;

use crate::kernels::simd;

/// `c ← β op(a) op(b)`, or `c ← c + β op(a) op(b)` when `accumulate`, for column-major
/// matrices, `op` transposing where `ta`/`tb` say.
pub(super) fn mul_to(
    c: &mut DMatrix<f64>,
    a: &DMatrix<f64>,
    ta: bool,
    b: &DMatrix<f64>,
    tb: bool,
    beta: f64,
    accumulate: bool,
) {
    let view = |x: &DMatrix<f64>, t: bool| {
        let (r, cols) = x.shape();
        if t {
            (cols, r, r as isize, 1isize)
        } else {
            (r, cols, 1isize, r as isize)
        }
    };
    let (m, k, rsa, csa) = view(a, ta);
    let (kb, n, rsb, csb) = view(b, tb);
    assert_eq!(k, kb, "inner dimensions");
    assert_eq!(c.shape(), (m, n), "output shape");
    // SAFETY: the strides describe `a`, `b` and `c` within their storage, and `c` is borrowed
    // mutably apart from `a` and `b`.
    unsafe {
        gemm_raw(
            (m, k, n),
            (c.as_mut_ptr(), 1, m as isize),
            (a.as_ptr(), rsa, csa),
            (b.as_ptr(), rsb, csb),
            beta,
            accumulate,
        )
    }
}

/// `op(a) op(b)` as a new matrix.
pub(super) fn mul(a: &DMatrix<f64>, ta: bool, b: &DMatrix<f64>, tb: bool) -> DMatrix<f64> {
    let m = if ta { a.ncols() } else { a.nrows() };
    let n = if tb { b.nrows() } else { b.ncols() };
    let mut c = DMatrix::zeros(m, n);
    mul_to(&mut c, a, ta, b, tb, 1.0, false);
    c
}

/// `c ← β a b (+ c when accumulate)` for `(m, k, n)` with (pointer, row stride, column
/// stride) operands, on one thread.
///
/// # Safety
/// Every element the strides address must lie in its allocation, and `c` must not overlap `a`
/// or `b`.
pub(super) unsafe fn gemm_raw(
    (m, k, n): (usize, usize, usize),
    (c, rsc, csc): (*mut f64, isize, isize),
    (a, rsa, csa): (*const f64, isize, isize),
    (b, rsb, csb): (*const f64, isize, isize),
    beta: f64,
    accumulate: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            csc,
            rsc,
            accumulate,
            a,
            csa,
            rsa,
            b,
            csb,
            rsb,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Values per SIMD block: one AVX-512 register of f64.
const LANES: usize = 8;

/// The lower Cholesky factor of the symmetric positive-definite `n × n` matrix `s` (column-major
/// with `ld` values per column, `ld` a multiple of [`LANES`], zeros below row `n`; lower
/// triangle read), in place, left-looking; `false` when `s` is not positive definite. Below the
/// diagonal, blocks of 8 rows are accumulated in registers over the previous columns.
#[inline(always)]
fn cholesky_in(s: &mut [f64], n: usize, ld: usize) -> bool {
    debug_assert_eq!(ld % LANES, 0);
    for j in 0..n {
        let (done, rest) = s.split_at_mut(j * ld);
        let col = &mut rest[..ld];
        let mut d = col[j];
        for k in 0..j {
            d -= done[k * ld + j] * done[k * ld + j];
        }
        if d.is_nan() || d <= 0.0 {
            return false;
        }
        let d = d.sqrt();
        let inv = 1.0 / d;
        col[j] = d;
        let first = (j + 1).next_multiple_of(LANES);
        for r in j + 1..first.min(ld) {
            let mut acc = col[r];
            for k in 0..j {
                acc -= done[k * ld + j] * done[k * ld + r];
            }
            col[r] = acc * inv;
        }
        for r in (first..ld).step_by(LANES) {
            let mut acc = [0.0; LANES];
            acc.copy_from_slice(&col[r..r + LANES]);
            for k in 0..j {
                let (ljk, lk) = (done[k * ld + j], &done[k * ld + r..k * ld + r + LANES]);
                for t in 0..LANES {
                    acc[t] -= ljk * lk[t];
                }
            }
            for t in 0..LANES {
                col[r + t] = acc[t] * inv;
            }
        }
    }
    true
}

/// Solves `L Lᵀ X = B` in place for the factor `l` (`ld` values per column) of [`cholesky_in`]
/// and `b` holding the `n` rows of `B` one after the other, `m` values each with `m` a multiple
/// of [`LANES`]. Blocks of up to 4 × 8 right-hand sides are accumulated in registers down the
/// whole substitution: no load and store of the row per term, every operation one AVX-512
/// instruction, and 4 independent chains so that the latency of each subtraction is hidden.
#[inline(always)]
fn cholesky_solve_rows(l: &[f64], n: usize, ld: usize, b: &mut [f64], m: usize) {
    debug_assert_eq!(m % LANES, 0);
    let inv: Vec<f64> = (0..n).map(|i| 1.0 / l[i * ld + i]).collect();
    let mut c = 0;
    while c < m {
        match (m - c) / LANES {
            1 => substitute::<1>(l, &inv, ld, b, m, c),
            2 => substitute::<2>(l, &inv, ld, b, m, c),
            3 => substitute::<3>(l, &inv, ld, b, m, c),
            _ => substitute::<4>(l, &inv, ld, b, m, c),
        }
        c += 4 * LANES;
    }
}

/// [`cholesky_solve_rows`] for the `G · 8` right-hand sides from column `c`.
#[inline(always)]
fn substitute<const G: usize>(
    l: &[f64],
    inv: &[f64],
    ld: usize,
    b: &mut [f64],
    m: usize,
    c: usize,
) {
    let n = inv.len();
    let w = G * LANES;
    // L z = b, top down; then Lᵀ x = z, bottom up.
    for down in [true, false] {
        for step in 0..n {
            let i = if down { step } else { n - 1 - step };
            let mut acc = [[0.0; LANES]; G];
            for (g, a) in acc.iter_mut().enumerate() {
                a.copy_from_slice(&b[i * m + c + g * LANES..][..LANES]);
            }
            let (lo, hi) = if down { (0, i) } else { (i + 1, n) };
            for j in lo..hi {
                let lij = if down { l[j * ld + i] } else { l[i * ld + j] };
                let z = &b[j * m + c..][..w];
                for (g, a) in acc.iter_mut().enumerate() {
                    for t in 0..LANES {
                        a[t] -= lij * z[g * LANES + t];
                    }
                }
            }
            let row = &mut b[i * m + c..][..w];
            for (g, a) in acc.iter().enumerate() {
                for t in 0..LANES {
                    row[g * LANES + t] = a[t] * inv[i];
                }
            }
        }
    }
}

/// `(S⁻¹ B)ᵀ` from `S` (`n × n`, symmetric positive definite) and `bt = Bᵀ` (`m × n`, whose
/// columns are the rows of `B`), in place of `bt`; `false` (and `bt` unspecified) when `S` is
/// not positive definite.
pub(super) fn spd_solve_t(s: DMatrix<f64>, bt: &mut DMatrix<f64>) -> bool {
    let n = s.nrows();
    let m = bt.nrows();
    assert_eq!(bt.ncols(), n, "right-hand sides");
    if n.is_multiple_of(LANES) && m.is_multiple_of(LANES) {
        // Already whole SIMD blocks: `s` is its own padded factor and the columns of `bt` are
        // the rows of B one after the other, so both are worked in place.
        let mut s = s;
        return factor_and_solve(s.as_mut_slice(), n, n, bt.as_mut_slice(), m);
    }
    // The rows of B padded to whole SIMD blocks (the padding solves zeros).
    let w = m.next_multiple_of(LANES);
    let mut b = vec![0.0; n * w];
    for (row, col) in b.chunks_exact_mut(w).zip(bt.column_iter()) {
        row[..m].copy_from_slice(col.as_slice());
    }
    // S with its columns padded to whole SIMD blocks.
    let ld = n.next_multiple_of(LANES);
    let mut l = vec![0.0; ld * n];
    for (to, col) in l.chunks_exact_mut(ld).zip(s.column_iter()) {
        to[..n].copy_from_slice(col.as_slice());
    }
    let ok = factor_and_solve(&mut l, n, ld, &mut b, w);
    for (row, mut col) in b.chunks_exact(w).zip(bt.column_iter_mut()) {
        col.copy_from_slice(&row[..m]);
    }
    ok
}

/// [`cholesky_in`] of `l` then [`cholesky_solve_rows`] of `b`, compiled for AVX-512 where the
/// CPU has it; `false` (and `b` untouched) when the matrix is not positive definite.
fn factor_and_solve(l: &mut [f64], n: usize, ld: usize, b: &mut [f64], w: usize) -> bool {
    simd!(
        cholesky_in(l, n, ld) && {
            cholesky_solve_rows(l, n, ld, b, w);
            true
        }
    )
}

/// The DEnKF analysis of the ensemble `e` (`D × N`) in ensemble space (`p ≥ N` whitened
/// observed anomalies `ỹ`, innovation `d̃`). With `S = ỸᵀỸ + (N−1) I` and `M̃ = d̃ 1ᵀ − Ỹ / 2`
/// the gain's weights are `X = S⁻¹ỸᵀM̃ = w 1ᵀ − I / 2 + (N−1)/2 · S⁻¹` (`w = S⁻¹Ỹᵀd̃`, as
/// `S⁻¹ỸᵀỸ = I − (N−1) S⁻¹`), so that with `Z = A S⁻¹`
/// `E + A X = x̄ 1ᵀ + A / 2 + (Z Ỹᵀd̃) 1ᵀ + (N−1)/2 · Z`: one product (`ỸᵀỸ`) and one
/// Cholesky solve with the rows of `A` as right-hand sides, against two products and a solve
/// in the general form. NaN where `S` is not positive definite (non-finite input).
pub(super) fn denkf_analysis(
    e: &DMatrix<f64>,
    y: &DMatrix<f64>,
    d: &nalgebra::DVector<f64>,
) -> DMatrix<f64> {
    let (dim, n) = e.shape();
    assert!(y.nrows() >= n, "ensemble space: p ≥ N");
    let n1 = (n - 1) as f64;
    let mut s = mul(y, true, y, false);
    for i in 0..n {
        s[(i, i)] += n1;
    }
    let mean = e.column_mean();
    // Z = A S⁻¹, solved in place from A (the rows of Aᵀ as right-hand sides).
    let mut z = e.clone();
    for mut col in z.column_iter_mut() {
        col -= &mean;
    }
    if !spd_solve_t(s, &mut z) {
        return DMatrix::from_element(dim, n, f64::NAN);
    }
    // A w = A S⁻¹ Ỹᵀd̃ = Z (Ỹᵀd̃).
    let aw = &z * y.tr_mul(d);
    let half = 0.5 * n1;
    DMatrix::from_fn(dim, n, |i, j| {
        mean[i] + 0.5 * (e[(i, j)] - mean[i]) + aw[i] + half * z[(i, j)]
    })
}

/// The Kalman gain's ensemble weights `X = Ỹᵀ (ỸỸᵀ + (N−1) I)⁻¹ M̃ = (ỸᵀỸ + (N−1) I)⁻¹ Ỹᵀ M̃`
/// (`N × K`) for whitened observed anomalies `ỹ` (`p × N`) and whitened columns `m̃` (`p × K`):
/// the analysis is `E + A X`. Formed in the smaller of observation space (`p < N`) and ensemble
/// space; NaN where the system is singular (non-finite input).
pub(super) fn gain_weights(y: &DMatrix<f64>, m: &DMatrix<f64>) -> DMatrix<f64> {
    let (p, n) = y.shape();
    let n1 = (n - 1) as f64;
    let k = m.ncols();
    let ok;
    let x = if p < n {
        let mut c = mul(y, false, y, true);
        for i in 0..p {
            c[(i, i)] += n1;
        }
        let mut zt = m.transpose();
        ok = spd_solve_t(c, &mut zt);
        mul(y, true, &zt, true)
    } else {
        let mut s = mul(y, true, y, false);
        for i in 0..n {
            s[(i, i)] += n1;
        }
        let mut xt = mul(m, true, y, false);
        ok = spd_solve_t(s, &mut xt);
        if xt.is_square() {
            xt.transpose_mut();
            xt
        } else {
            xt.transpose()
        }
    };
    if ok {
        x
    } else {
        DMatrix::from_element(n, k, f64::NAN)
    }
}

/// The eigendecomposition `A = V diag(λ) Vᵀ` of the symmetric `n × n` matrix `a` (lower
/// triangle and diagonal read): eigenvalues in no particular order and the orthonormal
/// eigenvectors as the columns of `V`; `None` when the iteration does not converge (non-finite
/// input). Householder reduction to tridiagonal form, then implicit QR steps with Wilkinson's
/// shift (Golub & Van Loan §8.3). Every inner loop runs down a column, contiguous in the
/// column-major storage, so that it vectorises: at the ensemble sizes of data assimilation
/// (tens of members) several times faster than nalgebra's generic `symmetric_eigen`.
pub(crate) fn symmetric_eigen(a: DMatrix<f64>) -> Option<(Vec<f64>, DMatrix<f64>)> {
    let n = a.nrows();
    assert_eq!(a.ncols(), n, "square matrix");
    if n == 0 {
        return Some((Vec::new(), a));
    }
    let mut a = a;
    let mut z = DMatrix::identity(n, n);
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    let ok = simd!({
        tridiagonalise(a.as_mut_slice(), n, &mut d, &mut e, z.as_mut_slice());
        tridiagonal_qr(&mut d, &mut e[..n - 1], z.as_mut_slice(), n)
    });
    ok.then_some((d, z))
}

/// Householder reduction of the symmetric `a` (`n × n`, column-major, full storage, lower
/// triangle read and the whole overwritten) to `QᵀAQ` with diagonal `d` and sub-diagonal
/// `e[..n − 1]`; `q` (the identity on entry) becomes `Q`.
#[inline(always)]
fn tridiagonalise(a: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64], q: &mut [f64]) {
    // Full symmetric storage from the lower triangle.
    for j in 0..n {
        for i in 0..j {
            a[j * n + i] = a[i * n + j];
        }
    }
    // Householder vectors, v_k in `vs[k]` (length n − k − 1) with its β.
    let mut vs: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n.saturating_sub(2));
    let mut p = vec![0.0; n];
    for k in 0..n.saturating_sub(2) {
        d[k] = a[k * n + k];
        let m = n - k - 1;
        let mut v = a[k * n + k + 1..(k + 1) * n].to_vec();
        let tail: f64 = v[1..].iter().map(|x| x * x).sum();
        if tail == 0.0 {
            e[k] = v[0];
            vs.push((v, 0.0));
            continue;
        }
        let norm = (v[0] * v[0] + tail).sqrt();
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let beta = 2.0 / (v[0] * v[0] + tail);
        e[k] = alpha;
        // p = β A₂₂ v, w = p − (β pᵀv / 2) v, A₂₂ ← A₂₂ − v wᵀ − w vᵀ.
        let p = &mut p[..m];
        p.fill(0.0);
        for (j, &vj) in v.iter().enumerate() {
            let col = &a[(k + 1 + j) * n + k + 1..(k + 2 + j) * n];
            for (pi, &aij) in p.iter_mut().zip(col) {
                *pi += aij * vj;
            }
        }
        let mut pv = 0.0;
        for (pi, &vi) in p.iter_mut().zip(&v) {
            *pi *= beta;
            pv += *pi * vi;
        }
        let half = 0.5 * beta * pv;
        for (pi, &vi) in p.iter_mut().zip(&v) {
            *pi -= half * vi;
        }
        for j in 0..m {
            let (vj, wj) = (v[j], p[j]);
            let col = &mut a[(k + 1 + j) * n + k + 1..(k + 2 + j) * n];
            for ((aij, &vi), &wi) in col.iter_mut().zip(&v).zip(p.iter()) {
                *aij -= vi * wj + wi * vj;
            }
        }
        vs.push((v, beta));
    }
    if n >= 2 {
        d[n - 2] = a[(n - 2) * n + n - 2];
        e[n - 2] = a[(n - 2) * n + n - 1];
    }
    d[n - 1] = a[n * n - 1];
    // Q = H₀ H₁ ⋯ H_{n−3}, accumulated from the last reflection: each touches rows and
    // columns k + 1.. of Q, where earlier ones have not yet filled it.
    for (k, (v, beta)) in vs.iter().enumerate().rev() {
        if *beta == 0.0 {
            continue;
        }
        for j in k + 1..n {
            let col = &mut q[j * n + k + 1..(j + 1) * n];
            let t = beta * col.iter().zip(v).map(|(x, y)| x * y).sum::<f64>();
            for (x, &vi) in col.iter_mut().zip(v) {
                *x -= t * vi;
            }
        }
    }
}

/// Diagonalises the symmetric tridiagonal matrix of diagonal `d` and sub-diagonal `e` by
/// implicit QR steps with Wilkinson's shift, deflating from the bottom; the rotations are
/// applied to the columns of `z` (`n × n`, column-major). `d` ends as the eigenvalues, `e` as
/// zeros; `false` when it does not converge in `30 n` steps.
#[inline(always)]
fn tridiagonal_qr(d: &mut [f64], e: &mut [f64], z: &mut [f64], n: usize) -> bool {
    // Couplings below ε‖T‖ are dropped: eigenvalues to an absolute accuracy of ε‖T‖ (a
    // relative test on each pair of diagonal entries can stall for hundreds of steps on the
    // eigenvalues at zero that every ensemble's anomaly matrix has).
    let mut norm = 0.0f64;
    for i in 0..n {
        let below = if i + 1 < n { e[i].abs() } else { 0.0 };
        let above = if i > 0 { e[i - 1].abs() } else { 0.0 };
        norm = norm.max(d[i].abs() + below + above);
    }
    let tol = f64::EPSILON * norm;
    let mut hi = n - 1;
    let mut steps = 0;
    while hi > 0 {
        // Deflate negligible couplings, then find the unreduced block [lo, hi].
        for x in e[..hi].iter_mut() {
            if x.abs() <= tol {
                *x = 0.0;
            }
        }
        if e[hi - 1] == 0.0 {
            hi -= 1;
            continue;
        }
        let mut lo = hi - 1;
        while lo > 0 && e[lo - 1] != 0.0 {
            lo -= 1;
        }
        steps += 1;
        if steps > 30 * n || !d[hi].is_finite() || !e[hi - 1].is_finite() {
            return false;
        }
        // Wilkinson's shift: the eigenvalue of the trailing 2 × 2 block nearer d[hi].
        let (dh, f) = (d[hi], e[hi - 1]);
        let delta = 0.5 * (d[hi - 1] - dh);
        let root = (delta * delta + f * f).sqrt();
        let mu = dh - f * f / (delta + if delta >= 0.0 { root } else { -root });
        let mu = if mu.is_finite() { mu } else { dh };
        // The bulge chase: rotation k in the plane (k, k + 1) zeroes (x, z) below x.
        let mut x = d[lo] - mu;
        let mut bulge = e[lo];
        for k in lo..hi {
            // (Not `hypot`: a libm call per rotation costs more than the rotation.)
            let r = (x * x + bulge * bulge).sqrt();
            let (c, s) = if r == 0.0 {
                (1.0, 0.0)
            } else {
                (x / r, -bulge / r)
            };
            if k > lo {
                e[k - 1] = r;
            }
            let (a, b, f) = (d[k], d[k + 1], e[k]);
            let (cc, ss, cs) = (c * c, s * s, c * s);
            d[k] = cc * a - 2.0 * cs * f + ss * b;
            d[k + 1] = ss * a + 2.0 * cs * f + cc * b;
            e[k] = cs * (a - b) + (cc - ss) * f;
            if k + 1 < hi {
                bulge = -s * e[k + 1];
                e[k + 1] *= c;
            }
            x = e[k];
            let (left, right) = z.split_at_mut((k + 1) * n);
            let zk = &mut left[k * n..];
            let zk1 = &mut right[..n];
            for (p, q) in zk.iter_mut().zip(zk1.iter_mut()) {
                let (u, w) = (*p, *q);
                *p = c * u - s * w;
                *q = s * u + c * w;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_solves_match_nalgebra() {
        let a = DMatrix::from_fn(7, 5, |i, j| ((i * 5 + j) as f64 * 0.37).sin());
        let b = DMatrix::from_fn(7, 3, |i, j| ((i * 3 + j) as f64 * 0.91).cos());
        assert!((mul(&a, true, &b, false) - a.transpose() * &b).amax() < 1e-13);
        let mut c = DMatrix::from_element(3, 5, 1.0);
        mul_to(&mut c, &b, true, &a, false, -2.0, true);
        let want = DMatrix::from_element(3, 5, 1.0) - b.transpose() * &a * 2.0;
        assert!((c - want).amax() < 1e-13);
        // Gain weights in both spaces against the direct formula (16 and 8: the in-place solve).
        for (p, n) in [(3, 6), (6, 4), (5, 5), (16, 8), (8, 16)] {
            let y = DMatrix::from_fn(p, n, |i, j| ((i * n + j) as f64 * 0.53).sin());
            let m = DMatrix::from_fn(p, 2, |i, j| ((i + 7 * j) as f64 * 0.29).cos());
            let mut c = &y * y.transpose();
            for i in 0..p {
                c[(i, i)] += (n - 1) as f64;
            }
            let want = y.transpose() * c.try_inverse().unwrap() * &m;
            let got = gain_weights(&y, &m);
            assert!((got - want).amax() < 1e-12, "p {p}, n {n}");
        }
        // The DEnKF analysis against E + A X with the general weights of M̃ = d̃ 1ᵀ − Ỹ / 2.
        for (p, n) in [(6, 4), (5, 5), (9, 3)] {
            let e = DMatrix::from_fn(4, n, |i, j| ((i * 5 + j * 3) as f64 * 0.41).cos() * 2.0);
            let y = DMatrix::from_fn(p, n, |i, j| ((i * n + j) as f64 * 0.53).sin());
            let d = nalgebra::DVector::from_fn(p, |i, _| (i as f64 * 0.8).cos());
            let mut m = &y * -0.5;
            for mut c in m.column_iter_mut() {
                c += &d;
            }
            let x = gain_weights(&y, &m);
            let mean = e.column_mean();
            let mut a = e.clone();
            for mut c in a.column_iter_mut() {
                c -= &mean;
            }
            let want = &e + &a * x;
            let diff = denkf_analysis(&e, &y, &d) - want;
            assert!(diff.amax() < 1e-12, "DEnKF analysis, p {p}, n {n}");
        }
        let mut bt = DMatrix::zeros(1, 2);
        assert!(!spd_solve_t(
            DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]),
            &mut bt
        ));
    }
    #[test]
    fn symmetric_eigen_diagonalises() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (n, p) in [
            (1, 3),
            (2, 5),
            (3, 2),
            (7, 26),
            (24, 40),
            (24, 10),
            (40, 40),
        ] {
            // An ensemble's Gram matrix ỸᵀỸ: anomalies centred over the N members, so that 1
            // spans its null space (rank min(p, N − 1)); N > p leaves N − p more zeros.
            let mut y: DMatrix<f64> =
                DMatrix::from_fn(p, n, |_, _| StandardNormal.sample(&mut rng));
            for mut r in y.row_iter_mut() {
                let m: f64 = r.mean();
                r.add_scalar_mut(-m);
            }
            let a: DMatrix<f64> = y.transpose() * &y;
            let (l, v) = symmetric_eigen(a.clone()).unwrap();
            let lambda = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(l.clone()));
            let scale = a.amax().max(1.0);
            assert!(
                (&v * lambda * v.transpose() - &a).amax() < 1e-13 * scale * n as f64,
                "n {n}: A = V Λ Vᵀ"
            );
            assert!(
                (v.transpose() * &v - DMatrix::identity(n, n)).amax() < 1e-13 * n as f64,
                "n {n}: VᵀV = I"
            );
            let mut got = l.clone();
            let mut want: Vec<f64> = a
                .clone()
                .symmetric_eigen()
                .eigenvalues
                .iter()
                .copied()
                .collect();
            got.sort_by(f64::total_cmp);
            want.sort_by(f64::total_cmp);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-12 * scale,
                    "n {n}: eigenvalue {g} against {w}"
                );
            }
            let zeros = got.iter().filter(|x| x.abs() < 1e-10 * scale).count();
            assert_eq!(
                zeros,
                n - p.min(n.saturating_sub(1)),
                "n {n}, p {p}: the null space"
            );
        }
        // Already diagonal, and identity.
        let (l, _) = symmetric_eigen(DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![
            3.0, -1.0, 2.0,
        ])))
        .unwrap();
        assert_eq!(l, vec![3.0, -1.0, 2.0]);
        assert!(symmetric_eigen(DMatrix::from_element(3, 3, f64::NAN)).is_none());
    }
}
