//! Training the MLP score network on plain `f32` buffers: the denoising loss, its gradient
//! with respect to every weight, and AdamW, fused by hand.
//!
//! A training step of the Lorenz network (batch 64, width 256) is a few dozen small matrix
//! products; layer-by-layer autodiff spends more time building graphs and moving tensors than
//! multiplying. Here a step has two parallel phases:
//!
//! 1. the batch is cut into a fixed number of parts (one per 32 rows, at most 8); each part
//!    runs the whole network forward and back to its input on one core (`gemm` micro-kernels),
//!    keeping every layer's input and output gradient;
//! 2. the layers are shared out among the cores; each layer's weight gradient `Σ_parts Xᵀ G`
//!    is formed and AdamW updates that layer at once, while its gradient is still in cache.
//!
//! The parts depend only on the batch size and the sums run in part order, so a run gives the
//! same bits on any number of threads. Tests check the gradients against finite differences
//! and a few steps against burn's autodiff and optimizer.

use rayon::prelude::*;

use super::cpu::{Block, BlockCache, CpuResMlp, Dense, Precision, gemm, sigmoid};
use crate::kernels::simd;

/// The whole MLP score network `ε_φ(x, t)` on CPU buffers: the time embedding
/// `[cos(π k t), sin(π k t)]` → Linear → SiLU → Linear, concatenated after `x`, into the
/// residual MLP.
#[derive(Clone, Debug)]
pub struct CpuScoreMlp {
    /// Frequencies K of the sinusoidal features (2K values).
    pub frequencies: usize,
    /// First embedding layer `[2K, hidden]`.
    pub emb1: Dense,
    /// Second embedding layer `[hidden, E]`.
    pub emb2: Dense,
    /// The residual MLP on `[x, embedding]`.
    pub mlp: CpuResMlp,
}

impl CpuScoreMlp {
    /// The same network with every weight and bias zero (a gradient accumulator).
    pub fn zeros_like(&self) -> Self {
        Self {
            frequencies: self.frequencies,
            emb1: self.emb1.zeros_like(),
            emb2: self.emb2.zeros_like(),
            mlp: self.mlp.zeros_like(),
        }
    }

    /// Every dense layer, in a fixed order: the embedding's two, the head, the blocks' (first
    /// and second of each), the output block's, the tail.
    pub fn layers(&self) -> Vec<&Dense> {
        let m = &self.mlp;
        let mut v = vec![&self.emb1, &self.emb2, &m.head];
        for b in m.blocks.iter().chain([&m.out_block]) {
            v.extend([&b.l1, &b.l2]);
        }
        v.push(&m.tail);
        v
    }

    /// [`layers`](Self::layers), mutable, in the same order.
    pub fn layers_mut(&mut self) -> Vec<&mut Dense> {
        let m = &mut self.mlp;
        let mut v = vec![&mut self.emb1, &mut self.emb2, &mut m.head];
        for b in m.blocks.iter_mut().chain([&mut m.out_block]) {
            v.extend([&mut b.l1, &mut b.l2]);
        }
        v.push(&mut m.tail);
        v
    }

    /// Every weight and bias, layer by layer (weights, then bias).
    pub fn tensors(&self) -> Vec<&Vec<f32>> {
        self.layers()
            .into_iter()
            .flat_map(|l| [&l.w, &l.b])
            .collect()
    }

    /// [`tensors`](Self::tensors), mutable, in the same order.
    pub fn tensors_mut(&mut self) -> Vec<&mut Vec<f32>> {
        self.layers_mut()
            .into_iter()
            .flat_map(|l| [&mut l.w, &mut l.b])
            .collect()
    }

    /// The products' arithmetic of every layer (`Auto`: as [`Precision::resolve`] on the fused
    /// network).
    pub fn set_precision(&mut self, precision: Precision) {
        let precision = precision.for_width(self.mlp.head.output);
        for layer in self.layers_mut() {
            layer.set_precision(precision);
        }
    }

    /// The number of trainable values.
    pub fn parameters(&self) -> usize {
        self.tensors().iter().map(|t| t.len()).sum()
    }

    /// Values per row of the output (and of `ε`).
    pub fn features(&self) -> usize {
        self.mlp.tail.output
    }

    /// Values per row of the input `x` (the features for an MLP, a patch for a ring network).
    pub fn inputs(&self) -> usize {
        self.mlp.head.input - self.emb2.output
    }

    /// The sum over `rows` rows of `|ε_φ(x, t) − ε|²`; with `keep`, also back-propagates
    /// `scale ×` that sum to the input, keeping in `w` every layer's input and output gradient
    /// (see [`Work::layer`]).
    ///
    /// # Shapes
    /// - x, eps: `[rows, F]`; t: `[rows]`
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn part(
        &self,
        x: &[f32],
        t: &[f32],
        eps: &[f32],
        wts: Option<&[f32]>,
        scale: f32,
        keep: bool,
        w: &mut Work,
    ) -> f64 {
        let rows = t.len();
        w.rows = rows;
        let (kf, hidden, e) = (self.frequencies, self.emb1.output, self.emb2.output);
        let (nx, width, out) = (self.inputs(), self.mlp.head.output, self.mlp.tail.output);
        let ni = nx + e;
        // Time embedding: φ = [cos(π k t), sin(π k t)], a = φ W₁ + b₁, e = SiLU(a) W₂ + b₂.
        w.feat.resize(rows * 2 * kf, 0.0);
        for (f, &t) in w.feat.chunks_exact_mut(2 * kf).zip(t) {
            for k in 0..kf {
                let phase = t * ((k + 1) as f32 * std::f32::consts::PI);
                f[k] = phase.cos();
                f[kf + k] = phase.sin();
            }
        }
        w.ae.resize(rows * hidden, 0.0);
        w.sig.resize(rows * hidden, 0.0);
        w.se.resize(rows * hidden, 0.0);
        self.emb1.forward(&w.feat, rows, &mut w.ae);
        for ((s, g), a) in w.se.iter_mut().zip(w.sig.iter_mut()).zip(&w.ae) {
            *g = sigmoid(*a);
            *s = a * *g;
        }
        w.e.resize(rows * e, 0.0);
        self.emb2.forward(&w.se, rows, &mut w.e);
        // The MLP's input [x, e].
        w.inp.resize(rows * ni, 0.0);
        for ((row, xr), er) in w
            .inp
            .chunks_exact_mut(ni)
            .zip(x.chunks_exact(nx))
            .zip(w.e.chunks_exact(e))
        {
            row[..nx].copy_from_slice(xr);
            row[nx..].copy_from_slice(er);
        }
        let m = &self.mlp;
        w.h.resize(rows * width, 0.0);
        m.head.forward(&w.inp, rows, &mut w.h);
        w.blocks.resize_with(m.blocks.len(), BlockCache::default);
        for (block, cache) in m.blocks.iter().zip(w.blocks.iter_mut()) {
            if keep {
                block.forward_keep(&mut w.h, rows, cache);
            } else {
                block.forward(&mut w.h, rows, cache, &mut w.scratch);
            }
        }
        w.y.resize(rows * out, 0.0);
        m.tail.forward(&w.h, rows, &mut w.y);
        if keep {
            m.out_block.forward_keep(&mut w.y, rows, &mut w.out_cache);
        } else {
            m.out_block
                .forward(&mut w.y, rows, &mut w.out_cache, &mut w.scratch);
        }
        // Loss, and its gradient in place of the output.
        let mut sum = 0.0f64;
        match wts {
            None => {
                for (y, eps) in w.y.iter_mut().zip(eps) {
                    let d = *y - eps;
                    sum += (d * d) as f64;
                    *y = 2.0 * scale * d;
                }
            }
            Some(wts) => {
                for ((y, eps), &k) in w.y.iter_mut().zip(eps).zip(wts) {
                    let d = *y - eps;
                    sum += (k * d * d) as f64;
                    *y = 2.0 * scale * k * d;
                }
            }
        }
        if !keep {
            return sum;
        }
        // Back to the input; `y` becomes the tail's output gradient, `gh` the head's.
        m.out_block
            .backward_keep(&mut w.y, rows, &mut w.out_cache, &mut w.gn);
        w.gh.resize(rows * width, 0.0);
        m.tail.backward_input(&w.y, rows, &mut w.gh, false);
        for (block, cache) in m.blocks.iter().zip(w.blocks.iter_mut()).rev() {
            block.backward_keep(&mut w.gh, rows, cache, &mut w.gn);
        }
        // The embedding's part of the head's input gradient: g_e = g_h W_h[nx..]ᵀ.
        w.ge.resize(rows * e, 0.0);
        gemm(
            rows,
            width,
            e,
            &w.gh,
            (width as isize, 1),
            &m.head.w[nx * width..],
            (1, width as isize),
            &mut w.ge,
            false,
        );
        w.gae.resize(rows * hidden, 0.0);
        self.emb2.backward_input(&w.ge, rows, &mut w.gae, false);
        for ((g, a), s) in w.gae.iter_mut().zip(&w.ae).zip(&w.sig) {
            *g *= s * (1.0 + a * (1.0 - s));
        }
        sum
    }
}

impl CpuResMlp {
    /// The same network with every weight and bias zero (a gradient accumulator).
    pub fn zeros_like(&self) -> Self {
        Self {
            head: self.head.zeros_like(),
            blocks: self.blocks.iter().map(Block::zeros_like).collect(),
            tail: self.tail.zeros_like(),
            out_block: self.out_block.zeros_like(),
        }
    }
}

/// The buffers of one part's forward and backward passes, kept between steps.
#[derive(Default)]
struct Work {
    rows: usize,
    feat: Vec<f32>,
    ae: Vec<f32>,
    sig: Vec<f32>,
    se: Vec<f32>,
    e: Vec<f32>,
    inp: Vec<f32>,
    h: Vec<f32>,
    blocks: Vec<BlockCache>,
    y: Vec<f32>,
    out_cache: BlockCache,
    scratch: Vec<f32>,
    gn: Vec<f32>,
    gh: Vec<f32>,
    ge: Vec<f32>,
    gae: Vec<f32>,
}

impl Work {
    /// The input `X` and output gradient `G` of layer `i` (in [`CpuScoreMlp::layers`] order)
    /// from the last [`CpuScoreMlp::part`] with `keep`: its weight gradient is `Xᵀ G`.
    fn layer(&self, i: usize) -> (&[f32], &[f32]) {
        let n = self.blocks.len();
        match i {
            0 => (&self.feat, &self.gae),
            1 => (&self.se, &self.ge),
            2 => (&self.inp, &self.gh),
            i if i < 3 + 2 * (n + 1) => {
                let b = (i - 3) / 2;
                let c = if b < n {
                    &self.blocks[b]
                } else {
                    &self.out_cache
                };
                if (i - 3) % 2 == 0 {
                    (&c.n, &c.g1)
                } else {
                    (&c.s, &c.g2)
                }
            }
            _ => (&self.h, &self.y),
        }
    }
}

/// Rows per part of a batch; a batch has `ceil(B / PART_ROWS)` parts, at most [`MAX_PARTS`].
const PART_ROWS: usize = 32;
/// The most parts a batch is cut into (each holds a copy of the gradients).
const MAX_PARTS: usize = 8;
/// Rows a part runs through the network at once when only the loss is asked for.
const PASS_ROWS: usize = 256;

/// AdamW's settings (burn's `AdamWConfig` semantics: decoupled decay `w ← w (1 − lr λ)`,
/// bias-corrected moments, `ε` added to `√v̂`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment decay β₂.
    pub beta2: f32,
    /// ε added to `√v̂`.
    pub epsilon: f32,
    /// Decoupled weight decay λ.
    pub weight_decay: f32,
}

impl AdamW {
    /// β = (0.9, 0.999), ε = 1e-8 and the given weight decay.
    pub fn new(weight_decay: f32) -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay,
        }
    }
}

/// Fused denoising-score-matching training of a [`CpuScoreMlp`] with AdamW.
pub struct CpuTrainer {
    /// The network being trained.
    pub net: CpuScoreMlp,
    /// The optimizer's settings.
    pub adamw: AdamW,
    /// First moments, all tensors flat in [`CpuScoreMlp::tensors`] order.
    pub moment1: Vec<f32>,
    /// Second moments, same layout.
    pub moment2: Vec<f32>,
    /// Steps taken (the bias corrections' exponent).
    pub steps: u64,
    parts: Vec<Work>,
}

impl CpuTrainer {
    /// A trainer at step 0 (zero moments).
    pub fn new(net: CpuScoreMlp, adamw: AdamW) -> Self {
        let p = net.parameters();
        Self {
            net,
            adamw,
            moment1: vec![0.0; p],
            moment2: vec![0.0; p],
            steps: 0,
            parts: Vec::new(),
        }
    }

    /// The arithmetic of the matrix products of the passes through the network (the weight
    /// gradients and AdamW stay float32; float32 master weights are rounded to bf16 after
    /// every update).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.net.set_precision(precision);
        self
    }

    /// The mean over rows and features of `(ε_φ(x, t) − ε)²`, without gradients.
    ///
    /// # Shapes
    /// - x, eps: `[B, F]`; t: `[B]`
    pub fn loss(&mut self, x: &[f32], t: &[f32], eps: &[f32]) -> f64 {
        self.run(x, t, eps, None, false)
    }

    /// [`Self::loss`] over the values whose weight is 1 only: `Σ w (ε_φ − ε)² / Σ w` (`None`:
    /// every weight 1). The masked loss of [`crate::data::observed`].
    ///
    /// # Shapes
    /// - x: `[B, inputs]`; eps, wts: `[B, F]`; t: `[B]`
    pub fn loss_weighted(&mut self, x: &[f32], t: &[f32], eps: &[f32], wts: Option<&[f32]>) -> f64 {
        self.run(x, t, eps, wts, false)
    }

    /// One AdamW step at learning rate `lr` on the batch's mean loss; returns that loss.
    ///
    /// # Shapes
    /// - x, eps: `[B, F]`; t: `[B]`
    pub fn step(&mut self, x: &[f32], t: &[f32], eps: &[f32], lr: f64) -> f64 {
        self.step_weighted(x, t, eps, None, lr)
    }

    /// [`Self::step`] on the weighted loss of [`Self::loss_weighted`].
    pub fn step_weighted(
        &mut self,
        x: &[f32],
        t: &[f32],
        eps: &[f32],
        wts: Option<&[f32]>,
        lr: f64,
    ) -> f64 {
        let loss = self.run(x, t, eps, wts, true);
        self.steps += 1;
        self.apply(lr);
        loss
    }

    /// The gradient of the batch's mean loss with respect to every weight, in a network of
    /// the same shape (the optimizer is untouched).
    pub fn gradients(&mut self, x: &[f32], t: &[f32], eps: &[f32]) -> CpuScoreMlp {
        self.gradients_weighted(x, t, eps, None)
    }

    /// [`Self::gradients`] of the weighted loss of [`Self::loss_weighted`].
    pub fn gradients_weighted(
        &mut self,
        x: &[f32],
        t: &[f32],
        eps: &[f32],
        wts: Option<&[f32]>,
    ) -> CpuScoreMlp {
        self.run(x, t, eps, wts, true);
        let mut grad = self.net.zeros_like();
        let layers = self.net.layers();
        for (i, g) in grad.layers_mut().into_iter().enumerate() {
            layer_gradient(layers[i], i, &self.parts, &mut g.w, &mut g.b);
        }
        grad
    }

    /// The batch's mean loss; with `keep`, phase 1 of a step (the parts' passes).
    fn run(&mut self, x: &[f32], t: &[f32], eps: &[f32], wts: Option<&[f32]>, keep: bool) -> f64 {
        let (b, f, fi) = (t.len(), self.net.features(), self.net.inputs());
        assert!(b > 0, "an empty batch");
        assert_eq!(x.len(), b * fi, "x of shape [B, inputs]");
        assert_eq!(eps.len(), b * f, "eps of shape [B, F]");
        let n = b.div_ceil(PART_ROWS).min(MAX_PARTS);
        self.parts.resize_with(n, Work::default);
        // The values the mean runs over: all of them, or the weights' sum (at least 1, so
        // that a batch with nothing observed has loss and gradient 0).
        let count = match wts {
            None => (b * f) as f64,
            Some(wts) => {
                assert_eq!(wts.len(), b * f, "wts of shape [B, F]");
                wts.iter().map(|&v| v as f64).sum::<f64>().max(1.0)
            }
        };
        let scale = (1.0 / count) as f32;
        let net = &self.net;
        let sums: Vec<f64> = self
            .parts
            .par_iter_mut()
            .enumerate()
            .map(|(p, work)| {
                let rows = p * b / n..(p + 1) * b / n;
                let pass = if keep { rows.len() } else { PASS_ROWS };
                let mut sum = 0.0;
                for r0 in rows.clone().step_by(pass) {
                    let r = r0..(r0 + pass).min(rows.end);
                    let (xr, er) = (&x[r.start * fi..r.end * fi], &eps[r.start * f..r.end * f]);
                    let wr = wts.map(|v| &v[r.start * f..r.end * f]);
                    sum += simd!(net.part(xr, &t[r.clone()], er, wr, scale, keep, work));
                }
                sum
            })
            .collect();
        sums.into_iter().sum::<f64>() / count
    }

    /// Phase 2 of a step: each layer's gradient from the parts, then its AdamW update.
    fn apply(&mut self, lr: f64) {
        let AdamW {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } = self.adamw;
        let time = self.steps.min(i32::MAX as u64) as i32;
        let (c1, c2) = (1.0 - beta1.powi(time), 1.0 - beta2.powi(time));
        let decay = (1.0 - lr * weight_decay as f64) as f32;
        let lr = lr as f32;
        let parts = &self.parts;
        let layers = self.net.layers_mut();
        let mut jobs = Vec::with_capacity(layers.len());
        let (mut r1, mut r2) = (&mut self.moment1[..], &mut self.moment2[..]);
        for (i, layer) in layers.into_iter().enumerate() {
            let len = layer.w.len() + layer.b.len();
            let (m1, tail) = std::mem::take(&mut r1).split_at_mut(len);
            r1 = tail;
            let (m2, tail) = std::mem::take(&mut r2).split_at_mut(len);
            r2 = tail;
            jobs.push((i, layer, m1, m2));
        }
        // Largest layers first, so that the cores finish together.
        jobs.sort_by_key(|(_, l, _, _)| std::cmp::Reverse(l.w.len()));
        jobs.into_par_iter()
            .with_max_len(1)
            .for_each(|(i, layer, m1, m2)| {
                thread_local! {
                    static GRAD: std::cell::RefCell<Vec<f32>> = Default::default();
                }
                let mut g = GRAD.take();
                g.resize(layer.w.len() + layer.b.len(), 0.0);
                let (gw, gb) = g.split_at_mut(layer.w.len());
                simd!(layer_gradient(layer, i, parts, gw, gb));
                let (m1w, m1b) = m1.split_at_mut(gw.len());
                let (m2w, m2b) = m2.split_at_mut(gw.len());
                let update = |p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32]| {
                    for (((p, g), m1), m2) in p.iter_mut().zip(g).zip(m1).zip(m2) {
                        *m1 = beta1 * *m1 + (1.0 - beta1) * g;
                        *m2 = beta2 * *m2 + (1.0 - beta2) * g * g;
                        let step = (*m1 / c1) / ((*m2 / c2).sqrt() + epsilon);
                        *p = *p * decay - step * lr;
                    }
                };
                let o = layer.output;
                simd!({
                    layer.update_rows(|r, row| {
                        let at = r * o..(r + 1) * o;
                        update(row, &gw[at.clone()], &mut m1w[at.clone()], &mut m2w[at]);
                    });
                    update(&mut layer.b, gb, m1b, m2b);
                });
                GRAD.set(g);
            });
    }
}

/// Layer `i`'s gradients `gw = Xᵀ G`, `gb = Σ_rows G`, with the parts' rows gathered into one
/// product (one pass over `gw` instead of one per part).
#[inline(always)]
fn layer_gradient(layer: &Dense, i: usize, parts: &[Work], gw: &mut [f32], gb: &mut [f32]) {
    if let [work] = parts {
        let (x, g) = work.layer(i);
        layer.weight_gradients(x, g, work.rows, gw, gb);
        return;
    }
    thread_local! {
        static GATHER: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = Default::default();
    }
    GATHER.with_borrow_mut(|(xs, gs)| {
        xs.clear();
        gs.clear();
        let mut rows = 0;
        for work in parts {
            let (x, g) = work.layer(i);
            xs.extend_from_slice(&x[..work.rows * layer.input]);
            gs.extend_from_slice(&g[..work.rows * layer.output]);
            rows += work.rows;
        }
        layer.weight_gradients(xs, gs, rows, gw, gb);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn dense(i: usize, o: usize, rng: &mut StdRng) -> Dense {
        let s = 1.0 / (i as f32).sqrt();
        Dense::new(
            i,
            o,
            (0..i * o).map(|_| rng.random_range(-s..s)).collect(),
            (0..o).map(|_| rng.random_range(-s..s)).collect(),
        )
    }

    fn block(n: usize, rng: &mut StdRng) -> Block {
        Block {
            l1: dense(n, n, rng),
            l2: dense(n, n, rng),
            epsilon: 1e-5,
        }
    }

    /// `b` windows of 6 values `x`, noise `ε` in ±1.5 and times `t` in [0, 1).
    fn batch(b: usize, rng: &mut StdRng) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.5..1.5)).collect() };
        let (x, eps) = (values(b * 6), values(b * 6));
        let t = (0..b).map(|_| rng.random()).collect();
        (x, eps, t)
    }

    fn small(rng: &mut StdRng) -> CpuScoreMlp {
        let (f, e, width) = (6, 4, 16);
        CpuScoreMlp {
            frequencies: 3,
            emb1: dense(6, 12, rng),
            emb2: dense(12, e, rng),
            mlp: CpuResMlp {
                head: dense(f + e, width, rng),
                blocks: (0..2).map(|_| block(width, rng)).collect(),
                tail: dense(width, f, rng),
                out_block: block(f, rng),
            },
        }
    }

    /// Checks the analytic gradient of the (weighted) loss against central differences.
    fn check_gradients(wts: Option<&[f32]>, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let net = small(&mut rng);
        let b = 40;
        let (x, eps, t) = batch(b, &mut rng);
        let grad =
            CpuTrainer::new(net.clone(), AdamW::new(0.0)).gradients_weighted(&x, &t, &eps, wts);
        let loss = |n: &CpuScoreMlp| {
            CpuTrainer::new(n.clone(), AdamW::new(0.0)).loss_weighted(&x, &t, &eps, wts)
        };
        // Every tensor, a few entries each, central differences in f32 (tolerance to match).
        let h = 1e-2f32;
        // A batch of more than one part, so that the parts' sums are checked too.
        assert!(b > PART_ROWS);
        let analytic = grad.tensors();
        let count = analytic.len();
        let mut checked = 0;
        for ti in 0..count {
            let len = analytic[ti].len();
            for i in [0, len / 2, len - 1] {
                let mut plus = net.clone();
                plus.tensors_mut()[ti][i] += h;
                let mut minus = net.clone();
                minus.tensors_mut()[ti][i] -= h;
                let fd = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
                let a = analytic[ti][i] as f64;
                assert!(
                    (fd - a).abs() <= 2e-2 * fd.abs().max(a.abs()) + 2e-5,
                    "tensor {ti} entry {i}: analytic {a}, finite difference {fd}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * count);
    }

    #[test]
    fn weight_gradients_match_finite_differences() {
        check_gradients(None, 1);
    }

    #[test]
    fn the_masked_loss_counts_the_observed_values_only() {
        // Its gradient, with about a third of the values missing.
        let mut rng = StdRng::seed_from_u64(11);
        let wts: Vec<f32> = (0..40 * 6)
            .map(|_| if rng.random::<f32>() < 0.35 { 0.0 } else { 1.0 })
            .collect();
        check_gradients(Some(&wts), 1);
        // Weights that drop whole rows give the plain loss of the rows kept (rows are
        // independent), and weights of 1 the plain loss of all of them.
        let net = small(&mut rng);
        let (x, eps, t) = batch(40, &mut rng);
        let mut trainer = CpuTrainer::new(net, AdamW::new(0.0));
        let keep = 25;
        let rows: Vec<f32> = (0..40 * 6)
            .map(|i| if i / 6 < keep { 1.0 } else { 0.0 })
            .collect();
        let kept = trainer.loss(&x[..keep * 6], &t[..keep], &eps[..keep * 6]);
        let masked = trainer.loss_weighted(&x, &t, &eps, Some(&rows));
        assert!((kept - masked).abs() <= 1e-6 * kept, "{kept} vs {masked}");
        let ones = vec![1.0; 40 * 6];
        let all = trainer.loss(&x, &t, &eps);
        assert_eq!(trainer.loss_weighted(&x, &t, &eps, Some(&ones)), all);
        // Nothing observed: loss 0, and a step that moves nothing but AdamW's decay.
        assert_eq!(
            trainer.loss_weighted(&x, &t, &eps, Some(&vec![0.0; 40 * 6])),
            0.0
        );
    }

    #[test]
    fn a_step_is_the_same_for_any_number_of_threads() {
        let mut rng = StdRng::seed_from_u64(2);
        let net = small(&mut rng);
        let b = 100;
        let (x, eps, t) = batch(b, &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let mut tr = CpuTrainer::new(net.clone(), AdamW::new(1e-3));
                for _ in 0..3 {
                    tr.step(&x, &t, &eps, 1e-2);
                }
                tr.net
                    .tensors()
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect::<Vec<f32>>()
            })
        };
        let (one, three) = (run(1), run(3));
        assert_eq!(one, three);
        assert!(
            one.iter()
                .zip(net.tensors().into_iter().flatten())
                .any(|(a, b)| a != b)
        );
    }

    #[test]
    #[cfg_attr(not(bf16_cpu), ignore = "this CPU has no AVX512-BF16")]
    fn bf16_products_keep_the_weight_gradients_to_bfloat16_accuracy() {
        let mut rng = StdRng::seed_from_u64(4);
        // Widths that are multiples of 16, so that the bf16 products run.
        let mut net = small(&mut rng);
        net.mlp = CpuResMlp {
            head: dense(6 + 4, 32, &mut rng),
            blocks: (0..2).map(|_| block(32, &mut rng)).collect(),
            tail: dense(32, 6, &mut rng),
            out_block: block(6, &mut rng),
        };
        let b = 48;
        let (x, eps, t) = batch(b, &mut rng);
        let exact = CpuTrainer::new(net.clone(), AdamW::new(0.0)).gradients(&x, &t, &eps);
        let rounded = CpuTrainer::new(net, AdamW::new(0.0))
            .with_precision(Precision::Bf16)
            .gradients(&x, &t, &eps);
        let (e, r) = (exact.tensors(), rounded.tensors());
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (e, r) in e.iter().zip(&r) {
            for (a, b) in e.iter().zip(r.iter()) {
                num += ((a - b) as f64).powi(2);
                den += (*a as f64).powi(2);
            }
        }
        let rel = (num / den).sqrt();
        assert!(rel < 2e-2 && rel > 1e-6, "relative RMS difference {rel}");
    }

    #[test]
    #[cfg_attr(not(bf16_cpu), ignore = "this CPU has no AVX512-BF16")]
    fn bf16_copies_follow_every_update() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut net = small(&mut rng);
        // An odd input width (a lone last row) and widths that pack both ways.
        net.emb2 = dense(12, 5, &mut rng);
        net.mlp.head = dense(6 + 5, 32, &mut rng);
        net.mlp.blocks = (0..2).map(|_| block(32, &mut rng)).collect();
        net.mlp.tail = dense(32, 6, &mut rng);
        let b = 40;
        let (x, eps, t) = batch(b, &mut rng);
        let mut tr = CpuTrainer::new(net, AdamW::new(1e-3)).with_precision(Precision::Bf16);
        for _ in 0..3 {
            tr.step(&x, &t, &eps, 1e-2);
        }
        let mut fresh = tr.net.clone();
        fresh.set_precision(Precision::Bf16);
        for (a, b) in tr.net.layers().into_iter().zip(fresh.layers()) {
            assert!(a.packed.is_some());
            assert_eq!(a.packed, b.packed, "layer {}×{}", a.input, a.output);
        }
    }

    #[test]
    fn training_lowers_the_loss_of_a_fixed_batch() {
        let mut rng = StdRng::seed_from_u64(3);
        let net = small(&mut rng);
        let b = 64;
        let x: Vec<f32> = (0..b * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let eps: Vec<f32> = x.iter().map(|v| 0.5 * v).collect();
        let t: Vec<f32> = (0..b).map(|_| rng.random()).collect();
        let mut tr = CpuTrainer::new(net, AdamW::new(0.0));
        let first = tr.loss(&x, &t, &eps);
        for _ in 0..200 {
            tr.step(&x, &t, &eps, 3e-3);
        }
        let last = tr.loss(&x, &t, &eps);
        assert!(last < 0.05 * first, "loss {first} → {last}");
    }
}
