//! The residual MLP of the paper's Lorenz experiments (docs/method.md §7): Linear to the width,
//! `depth` blocks `h + Lin(SiLU(Lin(LayerNorm(h))))`, Linear to the output, one block at the
//! output width. LayerNorm has no affine parameters.

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use serde::{Deserialize, Serialize};

use super::cpu::{Block, CpuResMlp, Dense};

/// Layer normalisation over the last axis without learnable scale or shift.
#[derive(Module, Debug)]
pub struct LayerNorm {
    epsilon: f64,
}

impl LayerNorm {
    /// A normalisation with `ε = 1e-5` (PyTorch's default).
    pub fn new() -> Self {
        Self { epsilon: 1e-5 }
    }

    /// `(x − mean(x)) / √(var(x) + ε)` over the last axis (biased variance).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let centred = x.clone() - x.mean_dim(D - 1);
        let var = centred.clone().square().mean_dim(D - 1);
        centred / (var + self.epsilon).sqrt()
    }
}

impl Default for LayerNorm {
    fn default() -> Self {
        Self::new()
    }
}

/// `h + Lin(SiLU(Lin(LayerNorm(h))))`.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm: LayerNorm,
    l1: Linear,
    l2: Linear,
}

impl ResBlock {
    /// A block of width `features`.
    pub fn new(features: usize, device: &Device) -> Self {
        Self {
            norm: LayerNorm::new(),
            l1: LinearConfig::new(features, features).init(device),
            l2: LinearConfig::new(features, features).init(device),
        }
    }

    /// # Shapes
    /// - h: `[B, W]` → `[B, W]`
    pub fn forward(&self, h: Tensor<2>) -> Tensor<2> {
        let r = self
            .l2
            .forward(silu(self.l1.forward(self.norm.forward(h.clone()))));
        h + r
    }
}

/// Configuration of a [`ResMlp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResMlpConfig {
    /// Input features.
    pub input: usize,
    /// Output features.
    pub output: usize,
    /// Hidden width.
    pub width: usize,
    /// Number of residual blocks at the hidden width.
    pub depth: usize,
}

/// A residual MLP.
#[derive(Module, Debug)]
pub struct ResMlp {
    head: Linear,
    blocks: Vec<ResBlock>,
    tail: Linear,
    out_block: ResBlock,
}

impl ResMlpConfig {
    /// Initialises the network on `device`.
    pub fn init(&self, device: &Device) -> ResMlp {
        ResMlp {
            head: LinearConfig::new(self.input, self.width).init(device),
            blocks: (0..self.depth)
                .map(|_| ResBlock::new(self.width, device))
                .collect(),
            tail: LinearConfig::new(self.width, self.output).init(device),
            out_block: ResBlock::new(self.output, device),
        }
    }
}

impl ResMlp {
    /// # Shapes
    /// - x: `[B, input]` → `[B, output]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = self.head.forward(x);
        for block in &self.blocks {
            h = block.forward(h);
        }
        self.out_block.forward(self.tail.forward(h))
    }
}

pub(super) fn dense(l: &Linear) -> Dense {
    let [input, output] = l.weight.val().dims();
    let w = super::to_vec(l.weight.val());
    let b = match &l.bias {
        Some(b) => super::to_vec(b.val()),
        None => vec![0.0; output],
    };
    Dense::new(input, output, w, b)
}

/// Sets `l`'s weights to `d`'s (same shapes), keeping the parameter ids.
pub(super) fn set_dense(l: &mut Linear, d: &Dense) {
    let device = l.weight.val().device();
    assert_eq!(l.weight.val().dims(), [d.input, d.output], "layer shape");
    let w = super::tensor(d.w.clone(), [d.input, d.output], &device);
    l.weight = Param::initialized(l.weight.id, w);
    let b = super::tensor(d.b.clone(), [d.output], &device);
    l.bias = Some(match &l.bias {
        Some(p) => Param::initialized(p.id, b),
        None => Param::from_tensor(b),
    });
}

impl ResBlock {
    fn load_cpu(&mut self, b: &Block) {
        set_dense(&mut self.l1, &b.l1);
        set_dense(&mut self.l2, &b.l2);
    }

    fn to_cpu(&self) -> Block {
        Block {
            l1: dense(&self.l1),
            l2: dense(&self.l2),
            epsilon: self.norm.epsilon as f32,
        }
    }
}

impl ResMlp {
    /// A copy of the weights as a [`CpuResMlp`], the fused CPU twin of this network.
    pub fn to_cpu(&self) -> CpuResMlp {
        CpuResMlp {
            head: dense(&self.head),
            blocks: self.blocks.iter().map(ResBlock::to_cpu).collect(),
            tail: dense(&self.tail),
            out_block: self.out_block.to_cpu(),
        }
    }

    /// Sets the weights to those of `cpu` (the same architecture).
    pub fn load_cpu(&mut self, cpu: &CpuResMlp) {
        assert_eq!(self.blocks.len(), cpu.blocks.len(), "depth");
        set_dense(&mut self.head, &cpu.head);
        for (b, c) in self.blocks.iter_mut().zip(&cpu.blocks) {
            b.load_cpu(c);
        }
        set_dense(&mut self.tail, &cpu.tail);
        self.out_block.load_cpu(&cpu.out_block);
    }
}
