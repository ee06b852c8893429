//! A CPU twin of [`ResMlp`](super::ResMlp) behind the time embedding, hand-fused for small
//! widths: forward passes and input vector-Jacobian products on plain `f32` buffers.
//!
//! The guided sampler spends its time evaluating one network on thousands of windows at the same
//! `t`, then back-propagating to the inputs. Layer-by-layer tensor kernels stream every
//! activation through memory; here rows are processed in cache-sized chunks, each running the
//! whole network forward and backward on one core (`gemm` micro-kernels, AVX-512 where the CPU has it), with the
//! chunks spread over all cores. The time embedding, identical for all rows, is folded into the
//! first layer's bias. Tests check it against the burn network.

use rayon::prelude::*;

use super::bf16;
use crate::error::{Error, Result};
use crate::kernels::simd;

/// A dense layer `y = x W + b`, `W` row-major `[input, output]`.
#[derive(Clone, Debug)]
pub struct Dense {
    /// Input features.
    pub input: usize,
    /// Output features.
    pub output: usize,
    /// Weights, row-major `[input, output]`.
    pub w: Vec<f32>,
    /// Bias `[output]`.
    pub b: Vec<f32>,
    /// bf16 copies of `w` for [`Precision::Bf16`] products (kept in step with `w` by
    /// [`Dense::pack_bf16`]); `None`: float32 products.
    pub packed: Option<Box<Packed>>,
}

/// The arithmetic of the fused CPU network's matrix products.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 on the fused CPU network where it runs (CPUs with AVX512-BF16, hidden width a
    /// multiple of 16), f32 elsewhere.
    #[default]
    Auto,
    /// float32 operands (exact to float32 rounding).
    F32,
    /// bfloat16 operands, float32 products and sums (AVX512-BF16 CPUs, twice the multiply
    /// rate); everything else stays float32.
    Bf16,
}

impl std::fmt::Display for Precision {
    /// The precision's name on the command line (and in `config.json`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::flag_value(self))
    }
}

impl Precision {
    /// `Ok` when this CPU has the arithmetic.
    pub fn check(self) -> Result<()> {
        if self == Precision::Bf16 && !bf16::available() {
            return Err(Error::config(
                "--precision bf16",
                "needs a CPU with AVX512-BF16 (AMD Zen 4 or later, Intel Cooper Lake or later)",
            ));
        }
        Ok(())
    }

    /// The arithmetic this stands for on a network whose passes run as the fused CPU network
    /// of hidden width `fused_width` (MLP and ring networks on the CPU device; in training, the
    /// fused engine), `None` when they do not.
    ///
    /// `Auto` is `Bf16` on the fused network when this CPU multiplies bf16 and the hidden width
    /// is a multiple of 16 (the bf16 products work on blocks of 16 columns), `F32` otherwise.
    /// `Bf16` is refused where it cannot run; `F32` stands for itself.
    pub fn resolve(self, fused_width: Option<usize>) -> Result<Precision> {
        match fused_width {
            Some(width) => {
                self.check()?;
                Ok(self.for_width(width))
            }
            None if self == Precision::Bf16 => Err(Error::config(
                "--precision bf16",
                "bf16 products run on the fused CPU network only (MLP and ring networks on the \
                 CPU device; in training, the fused engine)",
            )),
            None => Ok(Precision::F32),
        }
    }

    /// [`resolve`](Self::resolve) on the fused network of hidden width `width`, on this CPU.
    pub(super) fn for_width(self, width: usize) -> Precision {
        match self {
            Precision::Auto if bf16::available() && width.is_multiple_of(16) => Precision::Bf16,
            Precision::Auto => Precision::F32,
            p => p,
        }
    }
}

/// A layer's weights as packed bf16 matrices: `W` for the forward product (when the output
/// width is a multiple of 16) and `Wᵀ` for the input gradient (when the input width is).
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    w: Option<bf16::PackedB>,
    wt: Option<bf16::PackedB>,
}

thread_local! {
    /// The bf16 rows of the left operand of the product being formed on this thread.
    static ROWS: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `c = a · b (+ c if accumulate)`, with `a` `[m, k]` and `b` `[k, n]` given by strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    c: &mut [f32],
    accumulate: bool,
) {
    debug_assert!(c.len() >= m * n);
    // SAFETY: the strides describe `a` ([m, k]), `b` ([k, n]) and `c` ([m, n], row-major)
    // within the bounds of the slices, which the callers size accordingly; gemm computes
    // c = α c + β a b and reads `c` only when `accumulate`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

impl Dense {
    /// A float32 layer.
    pub fn new(input: usize, output: usize, w: Vec<f32>, b: Vec<f32>) -> Self {
        assert_eq!(w.len(), input * output, "weights of shape [input, output]");
        assert_eq!(b.len(), output, "bias of shape [output]");
        Self {
            input,
            output,
            w,
            b,
            packed: None,
        }
    }

    /// Packs (or repacks, after `w` changed) the bf16 copies of the weights.
    #[inline(always)]
    pub fn pack_bf16(&mut self) {
        let (i, o) = (self.input, self.output);
        let wt = i.is_multiple_of(16).then(|| {
            // Wᵀ made contiguous first, so that packing reads whole rows.
            let mut t = vec![0.0; i * o];
            transpose::transpose(&self.w, &mut t, o, i);
            bf16::PackedB::new(&t, o, i, (i, 1))
        });
        self.packed = Some(Box::new(Packed {
            w: o.is_multiple_of(16)
                .then(|| bf16::PackedB::new(&self.w, i, o, (o, 1))),
            wt,
        }));
    }

    /// Applies `f(r, row)` to every row `r` of `w`, in order, keeping the bf16 copies (if
    /// any) in step as it goes, without a second pass over the weights.
    #[inline(always)]
    pub(super) fn update_rows(&mut self, mut f: impl FnMut(usize, &mut [f32])) {
        let o = self.output;
        let Some(packed) = self.packed.as_deref_mut() else {
            for (r, row) in self.w.chunks_exact_mut(o).enumerate() {
                f(r, row);
            }
            return;
        };
        // Sixteen rows at a time: the pairs of rows for `W`'s copy as they come, then the
        // block of 16 columns of `Wᵀ`'s copy they make (`Wᵀ` is packed only when the input
        // width is a multiple of 16).
        for (jb, rows) in self.w.chunks_mut(16 * o).enumerate() {
            for (q, pair) in rows.chunks_mut(2 * o).enumerate() {
                let p = 8 * jb + q;
                let (r0, r1) = pair.split_at_mut(o);
                f(2 * p, r0);
                let hi = (!r1.is_empty()).then(|| {
                    f(2 * p + 1, r1);
                    &*r1
                });
                if let Some(pw) = &mut packed.w {
                    pw.set_k_pair(p, r0, hi);
                }
            }
            if let Some(pt) = &mut packed.wt {
                pt.set_column_block(jb, rows);
            }
        }
    }

    /// The products' arithmetic with `precision` (`Auto`: bf16 where this CPU multiplies it).
    pub fn set_precision(&mut self, precision: Precision) {
        match precision {
            Precision::Bf16 => self.pack_bf16(),
            Precision::Auto if bf16::available() => self.pack_bf16(),
            Precision::F32 | Precision::Auto => self.packed = None,
        }
    }

    /// `y = x W + b` for `rows` rows of `x`.
    #[inline(always)]
    pub(super) fn forward(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        for r in 0..rows {
            y[r * self.output..(r + 1) * self.output].copy_from_slice(&self.b);
        }
        self.accumulate(x, rows, y);
    }

    /// `y += x W` for `rows` rows of `x` (no bias).
    #[inline(always)]
    pub(super) fn accumulate(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        if let Some(w) = self.packed.as_ref().and_then(|p| p.w.as_ref()) {
            ROWS.with_borrow_mut(|a| {
                bf16::round_rows(x, rows, self.input, a);
                bf16::matmul(a, rows, w, y, self.output, true);
            });
            return;
        }
        let (i, o) = (self.input as isize, self.output as isize);
        gemm(
            rows,
            self.input,
            self.output,
            x,
            (i, 1),
            &self.w,
            (o, 1),
            y,
            true,
        );
    }

    /// `gx = gy Wᵀ` (accumulated into `gx` when `accumulate`).
    #[inline(always)]
    pub(super) fn backward_input(&self, gy: &[f32], rows: usize, gx: &mut [f32], accumulate: bool) {
        if let Some(wt) = self.packed.as_ref().and_then(|p| p.wt.as_ref()) {
            ROWS.with_borrow_mut(|a| {
                bf16::round_rows(gy, rows, self.output, a);
                bf16::matmul(a, rows, wt, gx, self.input, accumulate);
            });
            return;
        }
        let o = self.output as isize;
        // Wᵀ as a [output, input] matrix: element (r, c) = W[c, r] at c·output + r.
        gemm(
            rows,
            self.output,
            self.input,
            gy,
            (o, 1),
            &self.w,
            (1, o),
            gx,
            accumulate,
        );
    }

    /// The weight gradients of `y = x W + b` for `rows` rows: `gw = xᵀ gy`, `gb = Σ_rows gy`,
    /// with bf16 operands when the layer is packed for them and its output width allows.
    #[inline(always)]
    pub(super) fn weight_gradients(
        &self,
        x: &[f32],
        gy: &[f32],
        rows: usize,
        gw: &mut [f32],
        gb: &mut [f32],
    ) {
        let (i, o) = (self.input, self.output);
        if self.packed.is_some() && o.is_multiple_of(16) {
            // Xᵀ [i, rows] as the rounded left operand, G [rows, o] packed.
            let mut xt = vec![0.0; i * rows];
            transpose::transpose(&x[..rows * i], &mut xt, i, rows);
            let g = bf16::PackedB::new(gy, rows, o, (o, 1));
            ROWS.with_borrow_mut(|a| {
                bf16::round_rows(&xt, i, rows, a);
                bf16::matmul(a, i, &g, gw, o, false);
            });
        } else {
            gemm(
                i,
                rows,
                o,
                x,
                (1, i as isize),
                gy,
                (o as isize, 1),
                gw,
                false,
            );
        }
        gb.fill(0.0);
        for row in gy[..rows * o].chunks_exact(o) {
            for (gb, g) in gb.iter_mut().zip(row) {
                *gb += g;
            }
        }
    }

    /// The same layer with every weight and bias zero (a gradient accumulator).
    pub fn zeros_like(&self) -> Dense {
        Dense::new(
            self.input,
            self.output,
            vec![0.0; self.w.len()],
            vec![0.0; self.b.len()],
        )
    }
}

/// `h + W₂ SiLU(W₁ LayerNorm(h))` with LayerNorm without affine parameters.
#[derive(Clone, Debug)]
pub struct Block {
    /// First layer.
    pub l1: Dense,
    /// Second layer.
    pub l2: Dense,
    /// LayerNorm ε.
    pub epsilon: f32,
}

/// Activations a block keeps for its backward pass.
#[derive(Default)]
pub(super) struct BlockCache {
    /// The normalised input (the first layer's input).
    pub(super) n: Vec<f32>,
    rstd: Vec<f32>,
    a: Vec<f32>,
    sig: Vec<f32>,
    /// Training only: `SiLU(a)` (the second layer's input), the gradient at the block's
    /// output (the second layer's output gradient) and at `a` (the first layer's).
    pub(super) s: Vec<f32>,
    pub(super) g2: Vec<f32>,
    pub(super) g1: Vec<f32>,
}

/// `eˣ` to a relative error below 1e-5 for |x| < 87, branch-free so that loops over it vectorise:
/// `eˣ = 2ⁿ · 2ᶠ` with `n = round(x log₂ e)` and a degree-6 polynomial for `2ᶠ`, `|f| ≤ ½`.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 87.0);
    let t = x * std::f32::consts::LOG2_E;
    let n = t.round_ties_even();
    let f = t - n;
    // Taylor coefficients of 2ᶠ = e^(f ln 2).
    let p = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11
                    + f * (0.009_618_129 + f * (0.001_333_355 + f * 0.000_154_035_3)))));
    f32::from_bits(((n as i32 + 127) << 23) as u32) * p
}

/// Lanes of the sums below: independent accumulators, so that the loops vectorise.
const LANES: usize = 16;

/// `Σ f(v)` over `v`, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn lanes_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a b` over two slices of one length, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn lanes_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The logistic sigmoid `1 / (1 + e⁻ᵃ)`.
#[inline(always)]
pub(super) fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-a))
}

impl Block {
    #[inline(always)]
    pub(super) fn forward(
        &self,
        h: &mut [f32],
        rows: usize,
        cache: &mut BlockCache,
        scratch: &mut Vec<f32>,
    ) {
        let w = self.l1.input;
        cache.n.resize(rows * w, 0.0);
        cache.rstd.resize(rows, 0.0);
        cache.a.resize(rows * w, 0.0);
        for r in 0..rows {
            let row = &h[r * w..(r + 1) * w];
            let mean = lanes_sum(row, |v| v) / w as f32;
            let var = lanes_sum(row, |v| (v - mean) * (v - mean)) / w as f32;
            let rstd = 1.0 / (var + self.epsilon).sqrt();
            cache.rstd[r] = rstd;
            for (n, v) in cache.n[r * w..(r + 1) * w].iter_mut().zip(row) {
                *n = (v - mean) * rstd;
            }
        }
        self.l1.forward(&cache.n, rows, &mut cache.a);
        scratch.resize(rows * w, 0.0);
        cache.sig.resize(rows * w, 0.0);
        for ((s, g), a) in scratch.iter_mut().zip(cache.sig.iter_mut()).zip(&cache.a) {
            *g = sigmoid(*a);
            *s = a * *g;
        }
        // h += s W₂ + b₂
        for r in 0..rows {
            for (hv, b) in h[r * w..(r + 1) * w].iter_mut().zip(&self.l2.b) {
                *hv += b;
            }
        }
        self.l2.accumulate(scratch, rows, h);
    }

    /// Adds to `g` (the gradient w.r.t. the block's output, in place) the path through the
    /// residual branch, giving the gradient w.r.t. the block's input. Leaves the gradient at
    /// the first layer's output in `scratch`.
    #[inline(always)]
    pub(super) fn backward(
        &self,
        g: &mut [f32],
        rows: usize,
        cache: &BlockCache,
        scratch: &mut Vec<f32>,
        gn: &mut Vec<f32>,
    ) {
        let w = self.l1.input;
        scratch.resize(rows * w, 0.0);
        gn.resize(rows * w, 0.0);
        // g_s = g W₂ᵀ, g_a = g_s ⊙ SiLU'(a), g_n = g_a W₁ᵀ.
        self.l2.backward_input(g, rows, scratch, false);
        // SiLU'(a) = σ(a) (1 + a (1 − σ(a))).
        for ((s, a), g) in scratch.iter_mut().zip(&cache.a).zip(&cache.sig) {
            *s *= g * (1.0 + a * (1.0 - g));
        }
        self.l1.backward_input(scratch, rows, gn, false);
        // LayerNorm: g_h += rstd (g_n − mean(g_n) − n · mean(g_n ⊙ n)).
        for r in 0..rows {
            let (gnr, nr) = (&gn[r * w..(r + 1) * w], &cache.n[r * w..(r + 1) * w]);
            let m1 = lanes_sum(gnr, |v| v) / w as f32;
            let m2 = lanes_dot(gnr, nr) / w as f32;
            let rstd = cache.rstd[r];
            for ((gv, a), b) in g[r * w..(r + 1) * w].iter_mut().zip(gnr).zip(nr) {
                *gv += rstd * (a - m1 - b * m2);
            }
        }
    }

    /// [`forward`](Self::forward) keeping `SiLU(a)` in the cache, for weight gradients.
    #[inline(always)]
    pub(super) fn forward_keep(&self, h: &mut [f32], rows: usize, cache: &mut BlockCache) {
        let mut s = std::mem::take(&mut cache.s);
        self.forward(h, rows, cache, &mut s);
        cache.s = s;
    }

    /// [`backward`](Self::backward) keeping the gradients at both layers' outputs in the
    /// cache, for weight gradients.
    #[inline(always)]
    pub(super) fn backward_keep(
        &self,
        g: &mut [f32],
        rows: usize,
        cache: &mut BlockCache,
        gn: &mut Vec<f32>,
    ) {
        let w = self.l1.input;
        cache.g2.clear();
        cache.g2.extend_from_slice(&g[..rows * w]);
        let mut g1 = std::mem::take(&mut cache.g1);
        self.backward(g, rows, cache, &mut g1, gn);
        cache.g1 = g1;
    }

    /// The same block with every weight and bias zero (a gradient accumulator).
    pub fn zeros_like(&self) -> Block {
        Block {
            l1: self.l1.zeros_like(),
            l2: self.l2.zeros_like(),
            epsilon: self.epsilon,
        }
    }
}

/// The residual MLP on CPU buffers: head, blocks, tail, output block.
#[derive(Clone, Debug)]
pub struct CpuResMlp {
    /// First layer, on the concatenation `[x, embedding]`.
    pub head: Dense,
    /// Blocks at the hidden width.
    pub blocks: Vec<Block>,
    /// Projection to the output width.
    pub tail: Dense,
    /// The block at the output width.
    pub out_block: Block,
}

/// Rows per chunk: activations of a chunk stay in cache.
const CHUNK: usize = 256;

impl CpuResMlp {
    /// The head with a constant suffix of the input (the time embedding) folded into its bias:
    /// `[x, e] W + b = x W_x + (e W_e + b)`.
    fn head_for(&self, suffix: &[f32]) -> Dense {
        let (o, nx) = (self.head.output, self.head.input - suffix.len());
        let mut b = self.head.b.clone();
        for (j, e) in suffix.iter().enumerate() {
            for (bv, w) in b
                .iter_mut()
                .zip(&self.head.w[(nx + j) * o..(nx + j + 1) * o])
            {
                *bv += e * w;
            }
        }
        let mut head = Dense::new(nx, o, self.head.w[..nx * o].to_vec(), b);
        if self.head.packed.is_some() {
            head.pack_bf16();
        }
        head
    }

    /// The products' arithmetic of every layer (`Auto`: as [`Precision::resolve`] on the fused
    /// network).
    pub fn set_precision(&mut self, precision: Precision) {
        let precision = precision.for_width(self.head.output);
        self.head.set_precision(precision);
        for b in self.blocks.iter_mut().chain([&mut self.out_block]) {
            b.l1.set_precision(precision);
            b.l2.set_precision(precision);
        }
        self.tail.set_precision(precision);
    }

    /// Forward of `x` (`[rows, nx]`) with the constant input suffix `suffix` (the time
    /// embedding): returns `[rows, out]` and the activations a backward pass needs.
    pub fn forward(&self, x: &[f32], suffix: &[f32]) -> (Vec<f32>, Activations) {
        let head = self.head_for(suffix);
        let (nx, out) = (head.input, self.tail.output);
        let rows = x.len() / nx;
        let mut y = vec![0.0; rows * out];
        let chunks = y
            .par_chunks_mut(CHUNK * out)
            .enumerate()
            .map(|(c, yc)| {
                let rows = yc.len() / out;
                let xc = &x[c * CHUNK * nx..(c * CHUNK + rows) * nx];
                simd!(self.forward_chunk(&head, xc, rows, yc))
            })
            .collect();
        (y, Activations { head, chunks })
    }

    /// The input gradient `gᵀ ∂y/∂x` (`[rows, nx]`) of the forward pass that gave `act`, for
    /// `g` of the output's shape.
    pub fn backward(&self, act: &Activations, g: &[f32]) -> Vec<f32> {
        let (nx, out) = (act.head.input, self.tail.output);
        let rows = g.len() / out;
        let mut gx = vec![0.0; rows * nx];
        gx.par_chunks_mut(CHUNK * nx)
            .zip(&act.chunks)
            .enumerate()
            .for_each(|(c, (gxc, cache))| {
                let rows = gxc.len() / nx;
                let gc = &g[c * CHUNK * out..(c * CHUNK + rows) * out];
                simd!(self.backward_chunk(&act.head, cache, gc, rows, gxc))
            });
        gx
    }
}

impl CpuResMlp {
    /// The forward pass of one chunk of `rows` rows `xc` into `yc`.
    #[inline(always)]
    fn forward_chunk(&self, head: &Dense, xc: &[f32], rows: usize, yc: &mut [f32]) -> ChunkCache {
        let width = head.output;
        let mut h = vec![0.0; rows * width];
        head.forward(xc, rows, &mut h);
        let mut blocks: Vec<BlockCache> = (0..self.blocks.len())
            .map(|_| BlockCache::default())
            .collect();
        let mut scratch = Vec::new();
        for (block, cache) in self.blocks.iter().zip(blocks.iter_mut()) {
            block.forward(&mut h, rows, cache, &mut scratch);
        }
        self.tail.forward(&h, rows, yc);
        let mut out_block = BlockCache::default();
        self.out_block
            .forward(yc, rows, &mut out_block, &mut scratch);
        ChunkCache { blocks, out_block }
    }

    /// The input gradient of one chunk: `gc` at the output → `gxc` at the input.
    #[inline(always)]
    fn backward_chunk(
        &self,
        head: &Dense,
        cache: &ChunkCache,
        gc: &[f32],
        rows: usize,
        gxc: &mut [f32],
    ) {
        let mut g_o = gc.to_vec();
        let (mut scratch, mut gn) = (Vec::new(), Vec::new());
        self.out_block
            .backward(&mut g_o, rows, &cache.out_block, &mut scratch, &mut gn);
        let mut g_h = vec![0.0; rows * head.output];
        self.tail.backward_input(&g_o, rows, &mut g_h, false);
        for (block, bc) in self.blocks.iter().zip(&cache.blocks).rev() {
            block.backward(&mut g_h, rows, bc, &mut scratch, &mut gn);
        }
        head.backward_input(&g_h, rows, gxc, false);
    }
}

/// What one chunk of rows keeps from the forward pass.
struct ChunkCache {
    blocks: Vec<BlockCache>,
    out_block: BlockCache,
}

/// The activations of a forward pass, for [`CpuResMlp::backward`].
pub struct Activations {
    head: Dense,
    chunks: Vec<ChunkCache>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_to_float_precision() {
        // Relative error against f64's exp over the range the sigmoid sees.
        let worst = (-8000..=8000)
            .map(|i| i as f32 * 0.01)
            .map(|x| ((fast_exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs())
            .fold(0.0, f64::max);
        // The degree-6 Taylor polynomial bounds the error near 4e-6 at |f| = ½.
        assert!(worst < 1e-5, "relative error {worst}");
    }
}
