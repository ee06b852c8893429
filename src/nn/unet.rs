//! The time-modulated U-Net of the paper's Kolmogorov experiment (docs/method.md §8), after the
//! reference `UNet` (Rozet & Louppe 2023, `sda/nn.py`): circular 3×3 convolutions, stride-2
//! convolutions down, nearest ×2 up-sampling then a convolution up, skips added, channel
//! LayerNorm and SiLU. Each block is `h + Res(h + Lin(emb))` with
//! `Res = Conv(SiLU(Conv(LayerNorm(·))))`, `Lin(emb)` broadcast over the pixels.
//!
//! Level `i` of `L` works at `c_i` channels on a `H / 2^i × W / 2^i` grid:
//!
//! ```text
//! down  0: Conv(in → c0)                        then `blocks` blocks   → skip 0
//!       i: Conv_stride2(c_{i−1} → c_i)          then `blocks` blocks   → skip i
//! up    i: `blocks` blocks, then (i > 0) LayerNorm, Up×2, Conv(c_i → c_{i−1}), + skip i−1
//!       0: `blocks` blocks, then Conv(c0 → out)
//! ```
//!
//! As in the reference, the down-sampling convolution has no activation after it and the last
//! convolution has the full kernel. The input is the fields and the context stacked along the
//! channel axis (`in = channels + context`, `out = channels`).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Configuration of a [`UNet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Field channels: the input's first channels and the whole output.
    pub channels: usize,
    /// Context channels appended to the input (e.g. the forcing), not predicted.
    pub context: usize,
    /// Channels of each level, finest first; the grid halves from one level to the next.
    pub hidden: Vec<usize>,
    /// Modulated residual blocks per level, on the way down and again on the way up.
    pub blocks: usize,
    /// Side of the square convolution kernels (odd).
    pub kernel: usize,
    /// Features E of the time embedding that modulates every block.
    pub embedding: usize,
}

impl UNetConfig {
    /// The paper's network: hidden channels (96, 192, 384), 3 blocks per level, 3×3 kernels,
    /// E = 64 (docs/method.md §8).
    pub fn paper(channels: usize, context: usize) -> Self {
        Self {
            channels,
            context,
            hidden: vec![96, 192, 384],
            blocks: 3,
            kernel: 3,
            embedding: 64,
        }
    }

    /// A network that trains on two CPU cores: hidden channels (24, 48, 96), 1 block per
    /// level, 3×3 kernels, E = 64; 0.57 M parameters against the paper's 22.9 M.
    ///
    /// One AdamW step at batch 32 costs about 0.7 CPU-seconds on 32×32 fields (≈ 0.4 s on two
    /// idle cores with burn's flex backend, so 5000 steps in about 35 minutes) and about
    /// 2.9 CPU-seconds on 64×64 fields (≈ 1.6 s). On 64×64 only narrower nets such as
    /// (16, 32, 64) come near (≈ 0.9 s per step).
    pub fn reduced(channels: usize, context: usize) -> Self {
        Self {
            channels,
            context,
            hidden: vec![24, 48, 96],
            blocks: 1,
            kernel: 3,
            embedding: 64,
        }
    }

    /// Rejects configurations that cannot be built.
    pub fn check(&self) -> Result<()> {
        if self.channels == 0 {
            return Err(Error::config("channels", "must be at least 1"));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::config(
                "hidden",
                "needs at least one level, each with at least 1 channel",
            ));
        }
        if self.kernel.is_multiple_of(2) {
            return Err(Error::config(
                "kernel",
                format!(
                    "must be odd for 'same' circular padding, got {}",
                    self.kernel
                ),
            ));
        }
        if self.embedding == 0 {
            return Err(Error::config("embedding", "must be at least 1"));
        }
        Ok(())
    }

    /// Initialises the network on `device`.
    ///
    /// # Panics
    /// If [`check`](Self::check) fails.
    pub fn init(&self, device: &Device) -> UNet {
        if let Err(e) = self.check() {
            panic!("invalid U-Net configuration: {e}");
        }
        let k = self.kernel;
        let conv = |i: usize, o: usize, stride: usize| CircularConv::new(i, o, k, stride, device);
        let blocks = |c: usize| -> Vec<ModBlock> {
            (0..self.blocks)
                .map(|_| ModBlock::new(c, self.embedding, k, device))
                .collect()
        };
        let h = &self.hidden;
        let heads = (0..h.len())
            .map(|i| match i {
                0 => conv(self.channels + self.context, h[0], 1),
                _ => conv(h[i - 1], h[i], 2),
            })
            .collect();
        let tails = (0..h.len())
            .map(|i| match i {
                0 => conv(h[0], self.channels, 1),
                _ => conv(h[i], h[i - 1], 1),
            })
            .collect();
        UNet {
            heads,
            down: h.iter().map(|&c| blocks(c)).collect(),
            up: h.iter().map(|&c| blocks(c)).collect(),
            tails,
            norm: ChannelNorm::new(),
            channels: self.channels,
            context: self.context,
        }
    }
}

/// Pads the last two axes of `x` by `p` cells on each side with periodic wrap-around:
/// `out[.., i, j] = x[.., (i − p) mod H, (j − p) mod W]`.
///
/// # Shapes
/// - x: `[N, C, H, W]` → `[N, C, H + 2p, W + 2p]`
///
/// # Panics
/// If `p > H` or `p > W`.
pub fn circular_pad(x: Tensor<4>, p: usize) -> Tensor<4> {
    if p == 0 {
        return x;
    }
    let [_, _, h, w] = x.dims();
    assert!(
        p <= h && p <= w,
        "circular padding of {p} exceeds the {h}×{w} grid"
    );
    let x = Tensor::cat(
        vec![x.clone().narrow(2, h - p, p), x.clone(), x.narrow(2, 0, p)],
        2,
    );
    Tensor::cat(
        vec![x.clone().narrow(3, w - p, p), x.clone(), x.narrow(3, 0, p)],
        3,
    )
}

/// Layer normalisation over the channel axis at each pixel, without scale or shift:
/// `(x − mean_c x) / √(var_c x + ε)` (biased variance, `ε = 1e-5`, as [`super::LayerNorm`]).
#[derive(Module, Debug)]
pub struct ChannelNorm {
    epsilon: f64,
}

impl ChannelNorm {
    /// A normalisation with `ε = 1e-5`.
    pub fn new() -> Self {
        Self { epsilon: 1e-5 }
    }

    /// # Shapes
    /// - x: `[N, C, H, W]` → `[N, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let centred = x.clone() - x.mean_dim(1); // [N, C, H, W] − [N, 1, H, W]
        let var = centred.clone().square().mean_dim(1);
        centred / (var + self.epsilon).sqrt()
    }
}

impl Default for ChannelNorm {
    fn default() -> Self {
        Self::new()
    }
}

/// A convolution whose output keeps the grid (stride 1) or halves it (stride 2) on a periodic
/// domain: circular padding of `kernel / 2`, then a valid convolution.
#[derive(Module, Debug)]
pub struct CircularConv {
    conv: Conv2d,
    pad: usize,
}

impl CircularConv {
    fn new(input: usize, output: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([input, output], [kernel, kernel])
                .with_stride([stride, stride])
                .init(device),
            pad: kernel / 2,
        }
    }

    /// # Shapes
    /// - x: `[N, Cin, H, W]` → `[N, Cout, H / stride, W / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(circular_pad(x, self.pad))
    }
}

/// `h + Conv(SiLU(Conv(LayerNorm(h + Lin(emb)))))`, the reference's `ModResidualBlock`.
#[derive(Module, Debug)]
pub struct ModBlock {
    project: Linear,
    norm: ChannelNorm,
    c1: CircularConv,
    c2: CircularConv,
}

impl ModBlock {
    fn new(channels: usize, embedding: usize, kernel: usize, device: &Device) -> Self {
        Self {
            project: LinearConfig::new(embedding, channels).init(device),
            norm: ChannelNorm::new(),
            c1: CircularConv::new(channels, channels, kernel, 1, device),
            c2: CircularConv::new(channels, channels, kernel, 1, device),
        }
    }

    /// # Shapes
    /// - h: `[N, C, H, W]`, emb: `[N, E]` → `[N, C, H, W]`
    pub fn forward(&self, h: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let [n, c] = [h.dims()[0], h.dims()[1]];
        let m = self.project.forward(emb).reshape([n, c, 1, 1]); // [N, C, 1, 1]
        let r = self.norm.forward(h.clone() + m);
        let r = self.c2.forward(silu(self.c1.forward(r)));
        h + r
    }
}

/// A U-Net whose residual blocks are modulated by a time embedding; see the module docs.
#[derive(Module, Debug)]
pub struct UNet {
    heads: Vec<CircularConv>,
    down: Vec<Vec<ModBlock>>,
    up: Vec<Vec<ModBlock>>,
    tails: Vec<CircularConv>,
    norm: ChannelNorm,
    channels: usize,
    context: usize,
}

impl UNet {
    /// The noise estimate of a batch of fields, given their context and time embedding.
    ///
    /// # Shapes
    /// - x: `[N, C, H, W]`, context: `[N, Cc, H, W]`, emb: `[N, E]` → `[N, C, H, W]`
    ///
    /// # Panics
    /// If `H` or `W` is not divisible by `2^(levels − 1)` (the grid halves at each level and
    /// the skips must match), or if the channel counts differ from the configuration.
    pub fn forward(&self, x: Tensor<4>, context: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let levels = self.heads.len();
        let factor = 1usize << (levels - 1);
        assert!(
            h % factor == 0 && w % factor == 0,
            "U-Net with {levels} levels needs H and W divisible by {factor}, got {h}×{w}"
        );
        assert_eq!(
            c, self.channels,
            "U-Net expects {} field channels",
            self.channels
        );
        assert_eq!(
            context.dims(),
            [n, self.context, h, w],
            "U-Net context must be [N, {}, H, W] like x",
            self.context
        );
        let x = match self.context {
            0 => x,
            _ => Tensor::cat(vec![x, context], 1), // [N, C + Cc, H, W]
        };

        // Descent
        let mut skips = Vec::with_capacity(levels);
        let mut x = x;
        for (head, blocks) in self.heads.iter().zip(&self.down) {
            x = head.forward(x);
            for block in blocks {
                x = block.forward(x, emb.clone());
            }
            skips.push(x.clone());
        }
        skips.pop();

        // Ascent
        for i in (0..levels).rev() {
            for block in &self.up[i] {
                x = block.forward(x, emb.clone());
            }
            x = match skips.pop() {
                Some(skip) => {
                    let [_, _, hi, wi] = x.dims();
                    let up = interpolate(
                        self.norm.forward(x),
                        InterpolateOptions::new(InterpolateMode::Nearest)
                            .with_output_size([2 * hi, 2 * wi]),
                    );
                    self.tails[i].forward(up) + skip
                }
                None => self.tails[i].forward(x),
            };
        }
        x
    }
}
