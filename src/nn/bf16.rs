//! Matrix products with bfloat16 operands and float32 accumulation (AVX512-BF16's `vdpbf16ps`,
//! twice the multiply rate of float32 FMAs on CPUs that have it, e.g. AMD Zen 4, Intel
//! Cooper Lake and Sapphire Rapids).
//!
//! `C (+)= A B` with `A` `[m, k]` rounded to bf16 row by row, `B` `[k, n]` packed once (weights)
//! into blocks of 16 columns holding pairs of consecutive `k` per 32-bit lane, and `C` float32.
//! Every product is exact in float32 and the sums are float32, so the only error is the
//! rounding of the operands to 8 significant bits (relative 2⁻⁹ per operand).

/// Whether this CPU multiplies bf16 (AVX512-F and AVX512-BF16).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), as its bits.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// `lo` and `hi` rounded to bf16 in one 32-bit lane, `lo` in the low half (a missing last row
/// of an odd `k` is `hi = 0`, whose bits are 0).
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) as u32 | (to_bf16(hi) as u32) << 16
}

/// The float32 value of bfloat16 bits.
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// A `[k, n]` matrix packed for [`matmul`]: `n` a multiple of 16, `k` padded to even.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedB {
    /// Rows of the matrix.
    pub k: usize,
    /// Columns of the matrix.
    pub n: usize,
    /// Lane `l` of pair `p` of column block `j` at `(j · k/2 + p) · 16 + l`: the bf16 of
    /// `B[2p, 16j + l]` in the low half, of `B[2p + 1, 16j + l]` in the high half.
    data: Vec<u32>,
}

impl PackedB {
    /// Packs `B` `[k, n]`, element `(r, c)` at `b[r · rs + c · cs]`.
    ///
    /// # Panics
    /// If `n` is not a multiple of 16.
    #[inline(always)]
    pub fn new(b: &[f32], k: usize, n: usize, (rs, cs): (usize, usize)) -> Self {
        assert!(
            n.is_multiple_of(16),
            "PackedB: n = {n} is not a multiple of 16"
        );
        let kp = k.div_ceil(2);
        let mut packed = Self {
            k,
            n,
            data: vec![0u32; n / 16 * kp * 16],
        };
        if cs == 1 {
            // Rows of B are contiguous: two rows per pair (vectorises).
            for p in 0..kp {
                let hi = (2 * p + 1 < k).then(|| &b[(2 * p + 1) * rs..][..n]);
                packed.set_k_pair(p, &b[2 * p * rs..][..n], hi);
            }
            return packed;
        }
        for (jb, block) in packed.data.chunks_exact_mut(kp * 16).enumerate() {
            for (p, lanes) in block.chunks_exact_mut(16).enumerate() {
                for (l, v) in lanes.iter_mut().enumerate() {
                    let c = 16 * jb + l;
                    let hi = if 2 * p + 1 < k {
                        b[(2 * p + 1) * rs + c * cs]
                    } else {
                        0.0
                    };
                    *v = pair(b[2 * p * rs + c * cs], hi);
                }
            }
        }
        packed
    }
}

impl PackedB {
    /// Sets rows `2p` and `2p + 1` of `B` (`hi` absent when `k` is odd and `2p + 1 = k`).
    #[inline(always)]
    pub fn set_k_pair(&mut self, p: usize, lo: &[f32], hi: Option<&[f32]>) {
        let kp = self.k.div_ceil(2);
        for (jb, block) in self.data.chunks_exact_mut(kp * 16).enumerate() {
            let lanes = &mut block[p * 16..(p + 1) * 16];
            let r0 = &lo[16 * jb..16 * (jb + 1)];
            match hi {
                Some(hi) => {
                    let r1 = &hi[16 * jb..16 * (jb + 1)];
                    for ((v, &a), &b) in lanes.iter_mut().zip(r0).zip(r1) {
                        *v = pair(a, b);
                    }
                }
                None => {
                    for (v, &a) in lanes.iter_mut().zip(r0) {
                        *v = pair(a, 0.0);
                    }
                }
            }
        }
    }

    /// Sets the columns `16 j .. 16 j + 16` of `B` from `cols`, those columns as 16 rows of
    /// `k` values (`[16, k]`, row-major): one contiguous pass over block `j`, with the reads
    /// (16 rows) in L1, where setting one column at a time writes a lane of every pair.
    #[inline(always)]
    pub fn set_column_block(&mut self, j: usize, cols: &[f32]) {
        let (k, kp) = (self.k, self.k.div_ceil(2));
        assert_eq!(cols.len(), 16 * k, "16 columns of {k} values");
        let block = &mut self.data[j * kp * 16..(j + 1) * kp * 16];
        for (p, lanes) in block.chunks_exact_mut(16).enumerate() {
            for (l, v) in lanes.iter_mut().enumerate() {
                let col = &cols[l * k..(l + 1) * k];
                let hi = if 2 * p + 1 < k { col[2 * p + 1] } else { 0.0 };
                *v = pair(col[2 * p], hi);
            }
        }
    }
}

/// Rounds the `m` rows of `a` (`[m, k]`, row-major) to bf16 rows of even length `2 ⌈k/2⌉`
/// (zero-padded) in `out`.
pub fn round_rows(a: &[f32], m: usize, k: usize, out: &mut Vec<u16>) {
    let kp2 = 2 * k.div_ceil(2);
    out.clear();
    out.resize(m * kp2, 0);
    for (o, r) in out.chunks_exact_mut(kp2).zip(a.chunks_exact(k)) {
        for (o, &x) in o.iter_mut().zip(r) {
            *o = to_bf16(x);
        }
    }
}

/// `C = A B` (`C += A B` when `accumulate`) for `A` given as [`round_rows`] of `m` rows, `B`
/// packed, `C` `[m, n]` row-major with row stride `ldc`.
///
/// # Panics
/// Without AVX512-BF16 (see [`available`]), or on sizes that do not match.
pub fn matmul(a: &[u16], m: usize, b: &PackedB, c: &mut [f32], ldc: usize, accumulate: bool) {
    let kp = b.k.div_ceil(2);
    assert!(
        a.len() >= m * 2 * kp,
        "A has {} values, not {m} rows of {}",
        a.len(),
        2 * kp
    );
    assert!(
        ldc >= b.n && (m == 0 || c.len() >= (m - 1) * ldc + b.n),
        "C too small"
    );
    assert!(available(), "bf16 products need AVX512-BF16");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX512-F and AVX512-BF16 (checked above); the kernels read `MR`
    // rows of `kp` pairs of `a` and `kp` lanes of 16 from each column block of `b`, and write
    // `MR` rows of up to 32 columns of `c`, all within the sizes asserted above.
    unsafe {
        x86::matmul(a, m, kp, b, c, ldc, accumulate)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::PackedB;
    use std::arch::x86_64::*;

    /// Rows per micro-kernel call.
    const MR: usize = 8;

    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn matmul(
        a: &[u16],
        m: usize,
        kp: usize,
        b: &PackedB,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let a = a.as_ptr() as *const u32;
        let bp = b.data.as_ptr();
        let cp = c.as_mut_ptr();
        let blocks = b.n / 16;
        let mut jb = 0;
        while jb < blocks {
            let two = jb + 1 < blocks;
            let bj = unsafe { bp.add(jb * kp * 16) };
            let mut i = 0;
            while i + MR <= m {
                unsafe {
                    let (ai, ci) = (a.add(i * kp), cp.add(i * ldc + jb * 16));
                    if two {
                        kernel::<MR, 2>(kp, ai, bj, ci, ldc, accumulate);
                    } else {
                        kernel::<MR, 1>(kp, ai, bj, ci, ldc, accumulate);
                    }
                }
                i += MR;
            }
            while i < m {
                unsafe {
                    let (ai, ci) = (a.add(i * kp), cp.add(i * ldc + jb * 16));
                    if two {
                        kernel::<1, 2>(kp, ai, bj, ci, ldc, accumulate);
                    } else {
                        kernel::<1, 1>(kp, ai, bj, ci, ldc, accumulate);
                    }
                }
                i += 1;
            }
            jb += if two { 2 } else { 1 };
        }
    }

    /// `R` rows × `16 NB` columns of `C`, over all `kp` pairs.
    #[inline(always)]
    unsafe fn kernel<const R: usize, const NB: usize>(
        kp: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NB]; R];
            for p in 0..kp {
                let mut bv = [_mm512_setzero_si512(); NB];
                for (j, v) in bv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(b.add(j * kp * 16 + p * 16) as *const _);
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*a.add(r * kp + p) as i32));
                    for (acc, bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_dpbf16_ps(
                            *acc,
                            av,
                            std::mem::transmute::<__m512i, __m512bh>(*bv),
                        );
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (j, acc) in acc.iter().enumerate() {
                    let cp = c.add(r * ldc + j * 16);
                    let v = if accumulate {
                        _mm512_add_ps(_mm512_loadu_ps(cp), *acc)
                    } else {
                        *acc
                    };
                    _mm512_storeu_ps(cp, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn rounding_is_to_nearest_even_bfloat16() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even (1).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        let x = 0.123_456_79f32;
        assert!((from_bf16(to_bf16(x)) - x).abs() <= x * 2f32.powi(-9));
    }

    #[test]
    fn the_build_and_the_run_agree_on_whether_this_cpu_has_avx512_bf16() {
        // The tests below are ignored or run by the build's answer (build.rs); a target folder
        // carried to another CPU would run the wrong ones.
        assert_eq!(cfg!(bf16_cpu), available());
    }

    #[test]
    #[cfg_attr(not(bf16_cpu), ignore = "this CPU has no AVX512-BF16")]
    fn products_match_float32_to_bfloat16_rounding() {
        let mut rng = StdRng::seed_from_u64(0);
        // Odd k (padding), a row remainder (m % 8), one and two column blocks.
        for &(m, k, n) in &[(19, 47, 48), (8, 256, 256), (3, 15, 16), (33, 64, 32)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut rows = Vec::new();
            round_rows(&a, m, k, &mut rows);
            // B given transposed through its strides: element (r, c) at b[c·k + r].
            let packed = PackedB::new(&b, k, n, (1, k));
            // The contiguous-row path packs the same matrix given row-major.
            let mut rm = vec![0.0; k * n];
            for r in 0..k {
                for c in 0..n {
                    rm[r * n + c] = b[c * k + r];
                }
            }
            assert_eq!(PackedB::new(&rm, k, n, (n, 1)), packed);
            for accumulate in [false, true] {
                let mut c = c0.clone();
                matmul(&rows, m, &packed, &mut c, n, accumulate);
                for i in 0..m {
                    for j in 0..n {
                        let (mut exact, mut rounded, mut size) = (0.0f64, 0.0f64, 0.0f64);
                        for l in 0..k {
                            let (x, y) = (a[i * k + l], b[j * k + l]);
                            exact += x as f64 * y as f64;
                            let (xr, yr) = (from_bf16(to_bf16(x)), from_bf16(to_bf16(y)));
                            rounded += xr as f64 * yr as f64;
                            size += (x as f64 * y as f64).abs();
                        }
                        let base = if accumulate {
                            c0[i * n + j] as f64
                        } else {
                            0.0
                        };
                        let got = c[i * n + j] as f64 - base;
                        // The operands' rounding only: float32 sums of exact products.
                        assert!((got - rounded).abs() <= 1e-5 * size + 1e-6, "({i},{j})");
                        assert!(
                            (got - exact).abs() <= 2f64.powi(-8) * size + 1e-6,
                            "({i},{j})"
                        );
                    }
                }
            }
        }
    }
}
