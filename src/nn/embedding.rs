//! Time embedding (docs/method.md §3): `[cos(π k t), sin(π k t)]`, `k = 1..16` → Linear(32, 256) →
//! SiLU → Linear(256, E).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::cpu::Dense;
use super::mlp::{dense, set_dense};

/// Configuration of a [`TimeEmbedding`].
#[derive(Config, Debug)]
pub struct TimeEmbeddingConfig {
    /// Output features E.
    pub features: usize,
    /// Number of frequencies k = 1..K (the sinusoidal part has 2K values).
    #[config(default = 16)]
    pub frequencies: usize,
    /// Hidden width of the embedding MLP.
    #[config(default = 256)]
    pub hidden: usize,
}

/// Sinusoidal features of `t ∈ [0, 1]` followed by a small MLP.
#[derive(Module, Debug)]
pub struct TimeEmbedding {
    l1: Linear,
    l2: Linear,
    frequencies: usize,
}

impl TimeEmbeddingConfig {
    /// Initialises the embedding on `device`.
    pub fn init(&self, device: &Device) -> TimeEmbedding {
        TimeEmbedding {
            l1: LinearConfig::new(2 * self.frequencies, self.hidden).init(device),
            l2: LinearConfig::new(self.hidden, self.features).init(device),
            frequencies: self.frequencies,
        }
    }
}

impl TimeEmbedding {
    /// The sinusoidal features `[cos(π k t)…, sin(π k t)…]` of a batch of times.
    ///
    /// # Shapes
    /// - t: `[B]` → `[B, 2K]`
    pub fn features(&self, t: Tensor<1>) -> Tensor<2> {
        let device = t.device();
        let k: Vec<f32> = (1..=self.frequencies)
            .map(|k| k as f32 * std::f32::consts::PI)
            .collect();
        let freq = Tensor::<1>::from_floats(k.as_slice(), &device).unsqueeze_dim::<2>(0); // [1, K]
        let phase = t.unsqueeze_dim::<2>(1) * freq; // [B, K]
        Tensor::cat(vec![phase.clone().cos(), phase.sin()], 1)
    }

    /// # Shapes
    /// - t: `[B]` → `[B, E]`
    pub fn forward(&self, t: Tensor<1>) -> Tensor<2> {
        let h = self.l1.forward(self.features(t));
        self.l2.forward(silu(h))
    }
}

impl TimeEmbedding {
    /// The sinusoidal frequencies K and the two layers, as CPU buffers.
    pub fn to_cpu(&self) -> (usize, Dense, Dense) {
        (self.frequencies, dense(&self.l1), dense(&self.l2))
    }

    /// Sets the two layers' weights (the same shapes).
    pub fn load_cpu(&mut self, l1: &Dense, l2: &Dense) {
        set_dense(&mut self.l1, l1);
        set_dense(&mut self.l2, l2);
    }
}
