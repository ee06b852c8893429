//! Small dense kernels of the ensemble analyses. At the sizes of data-assimilation benchmarks
//! (tens of members, state variables and observations) nalgebra's generic products and
//! column-by-column triangular solves cost more than the arithmetic: the products here go
//! through the `gemm` crate's micro-kernels (AVX-512 where the CPU has it) on any strides, and
//! the Cholesky factorisation and solves run their inner loops over contiguous memory, compiled
//! for AVX-512 where the CPU has it (`simd!`).

use nalgebra::DMatrix;

use crate::nn::cpu::simd;

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
    let ok = simd!(
        cholesky_in(&mut l, n, ld) && {
            cholesky_solve_rows(&l, n, ld, &mut b, w);
            true
        }
    );
    for (row, mut col) in b.chunks_exact(w).zip(bt.column_iter_mut()) {
        col.copy_from_slice(&row[..m]);
    }
    ok
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
        xt.transpose()
    };
    if ok {
        x
    } else {
        DMatrix::from_element(n, k, f64::NAN)
    }
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
        // Gain weights in both spaces against the direct formula.
        for (p, n) in [(3, 6), (6, 4), (5, 5)] {
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
        let mut bt = DMatrix::zeros(1, 2);
        assert!(!spd_solve_t(
            DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]),
            &mut bt
        ));
    }
}
