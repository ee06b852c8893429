//! FFTs down the columns of a 2-D complex array, eight columns at a time.
//!
//! A transform along the slow axis of a row-major array usually means a transpose, a row FFT
//! and a transpose back. Here the eight complex numbers of a row segment (64 bytes, one
//! AVX-512 register, one cache line) are one SIMD lane group, and the FFT runs down the rows
//! on whole segments: every butterfly is lane-wise, every twiddle is the same for the whole
//! segment, and nothing is transposed. The algorithm is Stockham's autosort FFT (natural
//! order in and out, no bit reversal), decimation in frequency, with radix-16, 8, 4 and 2
//! passes done in registers and a plain DFT for any odd factor; a 256-point column takes two
//! passes through a 16 KB buffer that stays in L1.
//!
//! Pass `(len, s, R)` with `m = len / R` maps, for `p < m`, `q < s`, `k < R`,
//! `y[q + s (R p + k)] = w_len^{p k} Σ_j x[q + s (p + j m)] w_R^{j k}`, `w_N = e^{±2πi / N}`;
//! the first pass has `len = n`, `s = 1`, each next `len / R`, `s R` (Van Loan, *Computational
//! Frameworks for the FFT*, 1992, §1.7).

use std::ops::Range;

use rustfft::num_complex::Complex32;

/// Floats per lane group: eight interleaved complex numbers.
const LANES: usize = 16;

/// Eight complex numbers `(re, im)` interleaved.
type V = [f32; LANES];

/// `cos(2π e / 16)`, `sin(2π e / 16)` for `e < 16`.
const COS16: [f32; 16] = [
    1.0,
    0.923_879_5,
    0.707_106_77,
    0.382_683_43,
    0.0,
    -0.382_683_43,
    -0.707_106_77,
    -0.923_879_5,
    -1.0,
    -0.923_879_5,
    -0.707_106_77,
    -0.382_683_43,
    0.0,
    0.382_683_43,
    0.707_106_77,
    0.923_879_5,
];

/// One Stockham pass.
#[derive(Clone, Debug)]
struct Pass {
    radix: usize,
    len: usize,
    stride: usize,
    /// `w_len^{p k}` as `(cos, sin)` for `p < len / radix`, `1 ≤ k < radix` (row `p`).
    twiddles: Vec<[f32; 2]>,
    /// For an odd radix (a plain DFT), `w_radix^e` as `(cos, sin)` for `e < radix`; empty
    /// for the radices done in registers.
    roots: Vec<[f32; 2]>,
}

/// A planned FFT of length `n` down the columns of row-major complex arrays, unnormalised:
/// forward `X_k = Σ_j x_j e^{−2πi jk/n}`, inverse with `+` (rustfft's conventions).
#[derive(Clone, Debug)]
pub struct ColumnFft {
    n: usize,
    /// `e^{+2πi jk/n}` rather than `e^{−2πi jk/n}`.
    inverse: bool,
    passes: Vec<Pass>,
}

impl ColumnFft {
    /// Plans the transform of length `n ≥ 1`.
    pub fn new(n: usize, inverse: bool) -> Self {
        assert!(n >= 1, "an FFT of length 0");
        let sign = if inverse { 1.0 } else { -1.0 };
        let mut radices = Vec::new();
        let mut rest = n;
        for r in [16, 8, 4, 2] {
            while rest.is_multiple_of(r) {
                radices.push(r);
                rest /= r;
            }
        }
        let mut f = 3;
        while rest > 1 {
            while rest.is_multiple_of(f) {
                radices.push(f);
                rest /= f;
            }
            f += 2;
        }
        let (mut len, mut stride) = (n, 1);
        let passes = radices
            .into_iter()
            .map(|radix| {
                let m = len / radix;
                let root = |e: usize, of: usize| {
                    let a = sign * std::f64::consts::TAU * e as f64 / of as f64;
                    [a.cos() as f32, a.sin() as f32]
                };
                let twiddles = (0..m)
                    .flat_map(|p| (1..radix).map(move |k| root(p * k, len)))
                    .collect();
                let roots = match radix % 2 {
                    1 => (0..radix).map(|e| root(e, radix)).collect(),
                    _ => Vec::new(),
                };
                let pass = Pass {
                    radix,
                    len,
                    stride,
                    twiddles,
                    roots,
                };
                len = m;
                stride *= radix;
                pass
            })
            .collect();
        Self { n, inverse, passes }
    }

    /// Floats of scratch that [`Self::process`] needs.
    pub fn scratch_len(&self) -> usize {
        2 * self.n * LANES + LANES
    }

    /// Transforms, in place, the columns `c..c + 8` of the first `n` rows of `data` (rows
    /// `stride` apart) for every `c` in `blocks`; the rows in `zero` are read as zeros (their
    /// values are ignored and overwritten).
    ///
    /// # Panics
    /// If a block reaches past `data` or `scratch` is shorter than [`Self::scratch_len`].
    #[inline(always)]
    pub fn process(
        &self,
        data: &mut [Complex32],
        stride: usize,
        blocks: &[usize],
        zero: Range<usize>,
        scratch: &mut [f32],
    ) {
        let n = self.n;
        if self.passes.is_empty() {
            return; // n = 1
        }
        assert!(scratch.len() >= self.scratch_len(), "column FFT scratch");
        for &c in blocks {
            assert!(
                (n - 1) * stride + c + 8 <= data.len(),
                "column block {c} of {n} rows {stride} apart outside {} values",
                data.len()
            );
        }
        // Lane groups at 64-byte boundaries (whole cache lines).
        let at = scratch.as_ptr().align_offset(64).min(LANES);
        let (fs, scratch) = (2 * stride, scratch[at..].as_mut_ptr());
        let base = data.as_mut_ptr() as *mut f32;
        // SAFETY: `data` holds rows `0..n` of every block (asserted above; `Complex32` is two
        // `f32`s, `repr(C)`), `scratch` two buffers of `n` lane groups.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::avx512() {
                return match self.inverse {
                    true => self.process_avx512::<true>(base, fs, blocks, &zero, scratch),
                    false => self.process_avx512::<false>(base, fs, blocks, &zero, scratch),
                };
            }
            match self.inverse {
                true => self.blocks::<Portable, true>(base, fs, blocks, &zero, scratch),
                false => self.blocks::<Portable, false>(base, fs, blocks, &zero, scratch),
            }
        }
    }

    /// [`Self::blocks`] in AVX-512 registers.
    ///
    /// # Safety
    /// As [`Self::blocks`], and the CPU must have AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn process_avx512<const INVERSE: bool>(
        &self,
        base: *mut f32,
        fs: usize,
        blocks: &[usize],
        zero: &Range<usize>,
        scratch: *mut f32,
    ) {
        // SAFETY: by the contract.
        unsafe { self.blocks::<Avx512, INVERSE>(base, fs, blocks, zero, scratch) }
    }

    /// The passes on every block, ping-ponging between the two scratch buffers; the first pass
    /// reads the block, the last writes it.
    ///
    /// # Safety
    /// Rows `0..n` of every block (`fs` floats apart from `base`) and `2 n` lane groups of
    /// `scratch` must be in bounds. A pass reads all of its source before writing to it only
    /// where it has one group (`len = R`: the single-pass case, in place on the block).
    /// `INVERSE` is `self.inverse`, as a constant that the butterflies fold.
    #[inline(always)]
    unsafe fn blocks<L: Lanes, const INVERSE: bool>(
        &self,
        base: *mut f32,
        fs: usize,
        blocks: &[usize],
        zero: &Range<usize>,
        scratch: *mut f32,
    ) {
        let n = self.n;
        let last = self.passes.len() - 1;
        let none = 0..0;
        for &c in blocks {
            // SAFETY: by the contract.
            unsafe {
                let block = base.add(2 * c);
                for (i, pass) in self.passes.iter().enumerate() {
                    let (src, ss) = if i == 0 {
                        (block as *const f32, fs)
                    } else {
                        (scratch.add(((i + 1) % 2) * n * LANES) as *const f32, LANES)
                    };
                    let (dst, ds) = if i == last {
                        (block, fs)
                    } else {
                        (scratch.add((i % 2) * n * LANES), LANES)
                    };
                    let zero = if i == 0 { zero } else { &none };
                    let sign = if INVERSE { 1.0 } else { -1.0 };
                    match pass.radix {
                        16 => run_pass::<L, 16>(pass, sign, src, ss, dst, ds, zero),
                        8 => run_pass::<L, 8>(pass, sign, src, ss, dst, ds, zero),
                        4 => run_pass::<L, 4>(pass, sign, src, ss, dst, ds, zero),
                        2 => run_pass::<L, 2>(pass, sign, src, ss, dst, ds, zero),
                        _ => odd_pass::<L>(pass, src, ss, dst, ds, zero),
                    }
                }
            }
        }
    }
}

/// Eight complex numbers `(re, im)` interleaved in one SIMD register, and the lane-wise
/// arithmetic the butterflies need.
trait Lanes: Copy {
    fn zero() -> Self;
    /// # Safety
    /// `p..p + 16` must be readable.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p..p + 16` must be writable.
    unsafe fn store(self, p: *mut f32);
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn neg(self) -> Self;
    /// `self (c + i s)`.
    fn cmul(self, c: f32, s: f32) -> Self;
    /// `self × (sign i)`, `sign = ±1`.
    fn mul_i(self, sign: f32) -> Self;
    /// `(self + i o, self − i o)`.
    #[inline(always)]
    fn add_sub_i(self, o: Self) -> (Self, Self) {
        let t = o.mul_i(1.0);
        (self.add(t), self.sub(t))
    }
}

/// [`Lanes`] in plain Rust (any CPU).
#[derive(Clone, Copy)]
struct Portable(V);

impl Lanes for Portable {
    #[inline(always)]
    fn zero() -> Self {
        Self([0.0; LANES])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: by the contract.
        Self(unsafe { (p as *const V).read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: by the contract.
        unsafe { (p as *mut V).write_unaligned(self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] + o.0[l]))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(std::array::from_fn(|l| self.0[l] - o.0[l]))
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(self.0.map(|x| -x))
    }
    #[inline(always)]
    fn cmul(self, c: f32, s: f32) -> Self {
        let v = self.0;
        Self(std::array::from_fn(|l| {
            if l % 2 == 0 {
                v[l] * c - v[l + 1] * s
            } else {
                v[l] * c + v[l - 1] * s
            }
        }))
    }
    #[inline(always)]
    fn mul_i(self, sign: f32) -> Self {
        let v = self.0;
        Self(std::array::from_fn(|l| {
            if l % 2 == 0 {
                -sign * v[l + 1]
            } else {
                sign * v[l - 1]
            }
        }))
    }
}

/// [`Lanes`] in one AVX-512 register (used only where the CPU has AVX-512F).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx512(std::arch::x86_64::__m512);

// SAFETY (every method): the intrinsics need AVX-512F, which the only caller,
// `process_avx512`, is compiled for and checks at run time; the helpers are always inlined
// into it.
#[cfg(target_arch = "x86_64")]
impl Lanes for Avx512 {
    #[inline(always)]
    fn zero() -> Self {
        use std::arch::x86_64::*;
        Self(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        use std::arch::x86_64::*;
        Self(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        use std::arch::x86_64::*;
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        use std::arch::x86_64::*;
        Self(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        use std::arch::x86_64::*;
        Self(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        use std::arch::x86_64::*;
        Self(unsafe { _mm512_sub_ps(_mm512_setzero_ps(), self.0) })
    }
    #[inline(always)]
    fn cmul(self, c: f32, s: f32) -> Self {
        use std::arch::x86_64::*;
        // (re c − im s, im c + re s): fmaddsub subtracts in the even lanes, adds in the odd.
        unsafe {
            let swapped = _mm512_permute_ps::<0xB1>(self.0);
            Self(_mm512_fmaddsub_ps(
                self.0,
                _mm512_set1_ps(c),
                _mm512_mul_ps(swapped, _mm512_set1_ps(s)),
            ))
        }
    }
    #[inline(always)]
    fn mul_i(self, sign: f32) -> Self {
        use std::arch::x86_64::*;
        // (−sign im, sign re)
        unsafe {
            let swapped = _mm512_permute_ps::<0xB1>(self.0);
            let pattern = _mm512_setr_ps(
                -sign, sign, -sign, sign, -sign, sign, -sign, sign, -sign, sign, -sign, sign,
                -sign, sign, -sign, sign,
            );
            Self(_mm512_mul_ps(swapped, pattern))
        }
    }
}

/// `v e^{sign 2πi e / 16}` (`e` a constant after inlining: the trivial cases cost nothing).
#[inline(always)]
fn rot16<L: Lanes>(v: L, e: usize, sign: f32) -> L {
    let e = e % 16;
    match e {
        0 => v,
        4 => v.mul_i(sign),
        8 => v.neg(),
        12 => v.mul_i(-sign),
        _ => v.cmul(COS16[e], sign * COS16[(e + 12) % 16]),
    }
}

#[inline(always)]
fn dft4<L: Lanes>(x: [L; 4], sign: f32) -> [L; 4] {
    let (s02, d02) = (x[0].add(x[2]), x[0].sub(x[2]));
    let (s13, d13) = (x[1].add(x[3]), x[1].sub(x[3]));
    // d02 ± sign i d13
    let (plus, minus) = d02.add_sub_i(d13);
    let (b1, b3) = if sign > 0.0 {
        (plus, minus)
    } else {
        (minus, plus)
    };
    [s02.add(s13), b1, s02.sub(s13), b3]
}

/// The DFT of `R` lane groups in place, `R ∈ {2, 4, 8, 16}`: radix-4 (or 2) steps of the same
/// Stockham scheme, in registers.
#[inline(always)]
fn dft<L: Lanes, const R: usize>(x: &mut [L; R], sign: f32) {
    match R {
        2 => {
            let (a, b) = (x[0], x[1]);
            x[0] = a.add(b);
            x[1] = a.sub(b);
        }
        4 => {
            let y = dft4([x[0], x[1], x[2], x[3]], sign);
            x.copy_from_slice(&y);
        }
        8 => {
            // Radix 2 (len 8, s 1), then radix 4 (len 4, s 2).
            let mut t = [L::zero(); 8];
            for p in 0..4 {
                let (a, b) = (x[p], x[p + 4]);
                t[2 * p] = a.add(b);
                t[2 * p + 1] = rot16(a.sub(b), 2 * p, sign);
            }
            for q in 0..2 {
                let y = dft4([t[q], t[q + 2], t[q + 4], t[q + 6]], sign);
                for k in 0..4 {
                    x[q + 2 * k] = y[k];
                }
            }
        }
        16 => {
            // Radix 4 (len 16, s 1), then radix 4 (len 4, s 4).
            let mut t = [L::zero(); 16];
            for p in 0..4 {
                let y = dft4([x[p], x[p + 4], x[p + 8], x[p + 12]], sign);
                for k in 0..4 {
                    t[4 * p + k] = rot16(y[k], p * k, sign);
                }
            }
            for q in 0..4 {
                let y = dft4([t[q], t[q + 4], t[q + 8], t[q + 12]], sign);
                for k in 0..4 {
                    x[q + 4 * k] = y[k];
                }
            }
        }
        _ => unreachable!("radix {R}"),
    }
}

/// One radix-`R` pass from `src` (lane groups `ss` floats apart) to `dst` (`ds` apart), the
/// source's elements in `zero` read as zeros.
///
/// # Safety
/// Elements `0..pass.len × pass.stride` of both must be in bounds, and `dst` may alias `src`
/// only where the pass has a single group.
#[inline(always)]
unsafe fn run_pass<L: Lanes, const R: usize>(
    pass: &Pass,
    sign: f32,
    src: *const f32,
    ss: usize,
    dst: *mut f32,
    ds: usize,
    zero: &Range<usize>,
) {
    let m = pass.len / R;
    for p in 0..m {
        for q in 0..pass.stride {
            let mut x = [L::zero(); R];
            // SAFETY: by the contract.
            unsafe {
                load_group(&mut x, pass, p, q, src, ss, zero);
                dft(&mut x, sign);
                store_group(&x, pass, p, q, dst, ds);
            }
        }
    }
}

/// The inputs `x[j] = src[q + s (p + j m)]` of group `(p, q)` (zeros in `zero`).
///
/// # Safety
/// As [`run_pass`].
#[inline(always)]
unsafe fn load_group<L: Lanes>(
    x: &mut [L],
    pass: &Pass,
    p: usize,
    q: usize,
    src: *const f32,
    ss: usize,
    zero: &Range<usize>,
) {
    let (s, m) = (pass.stride, pass.len / pass.radix);
    for (j, x) in x.iter_mut().enumerate() {
        let e = q + s * (p + j * m);
        *x = if zero.contains(&e) {
            L::zero()
        } else {
            // SAFETY: `e < len × stride`, by the contract.
            unsafe { L::load(src.add(e * ss)) }
        };
    }
}

/// Stores the transformed group `y`, times the twiddles `w_len^{p k}`, at
/// `dst[q + s (R p + k)]`.
///
/// # Safety
/// As [`run_pass`].
#[inline(always)]
unsafe fn store_group<L: Lanes>(
    y: &[L],
    pass: &Pass,
    p: usize,
    q: usize,
    dst: *mut f32,
    ds: usize,
) {
    let (r, s) = (pass.radix, pass.stride);
    for (k, &y) in y.iter().enumerate() {
        let y = if k == 0 || p == 0 {
            y
        } else {
            let [c, sn] = pass.twiddles[p * (r - 1) + k - 1];
            y.cmul(c, sn)
        };
        // SAFETY: `q + s (R p + k) < len × stride`, by the contract.
        unsafe { y.store(dst.add((q + s * (r * p + k)) * ds)) };
    }
}

/// [`run_pass`] for an odd radix: a plain DFT per group, with the pass's planned roots.
///
/// # Safety
/// As [`run_pass`].
#[inline(always)]
unsafe fn odd_pass<L: Lanes>(
    pass: &Pass,
    src: *const f32,
    ss: usize,
    dst: *mut f32,
    ds: usize,
    zero: &Range<usize>,
) {
    let (r, s) = (pass.radix, pass.stride);
    let m = pass.len / r;
    let (mut x, mut y) = (vec![L::zero(); r], vec![L::zero(); r]);
    for p in 0..m {
        for q in 0..s {
            // SAFETY: by the contract.
            unsafe { load_group(&mut x, pass, p, q, src, ss, zero) };
            for (k, y) in y.iter_mut().enumerate() {
                *y = L::zero();
                for (j, x) in x.iter().enumerate() {
                    let [c, sn] = pass.roots[(j * k) % r];
                    *y = y.add(x.cmul(c, sn));
                }
            }
            // SAFETY: by the contract.
            unsafe { store_group(&y, pass, p, q, dst, ds) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rustfft::FftPlanner;

    /// Every length's transform against rustfft's, column by column, on blocks that leave
    /// other columns and the padding alone, with and without rows read as zeros.
    #[test]
    fn columns_match_rustfft_for_every_radix() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut planner = FftPlanner::<f32>::new();
        for n in [
            1, 2, 3, 4, 6, 8, 12, 16, 24, 30, 32, 48, 64, 96, 128, 160, 256, 512,
        ] {
            for inverse in [false, true] {
                let plan = ColumnFft::new(n, inverse);
                let reference = if inverse {
                    planner.plan_fft_inverse(n)
                } else {
                    planner.plan_fft_forward(n)
                };
                let stride = 37;
                let blocks = [0, 17];
                let zero = n / 3..n / 3 + n / 4;
                let data: Vec<Complex32> = (0..n * stride)
                    .map(|_| {
                        Complex32::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0))
                    })
                    .collect();
                let mut out = data.clone();
                let mut scratch = vec![0.0; plan.scratch_len()];
                plan.process(&mut out, stride, &blocks, zero.clone(), &mut scratch);
                for c in 0..stride {
                    let mut col: Vec<Complex32> = (0..n).map(|r| data[r * stride + c]).collect();
                    let transformed = blocks.iter().any(|&b| (b..b + 8).contains(&c));
                    if transformed {
                        for r in zero.clone() {
                            col[r] = Complex32::ZERO;
                        }
                        reference.process(&mut col);
                    }
                    let scale = (n as f32).sqrt().max(1.0);
                    for r in 0..n {
                        let (got, want) = (out[r * stride + c], col[r]);
                        assert!(
                            (got - want).norm() <= 1e-5 * scale * 4.0,
                            "n {n} inverse {inverse} column {c} row {r}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
