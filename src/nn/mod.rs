//! Network architectures, and nothing else: they know tensors, not diffusion.

pub mod bf16;
pub mod cpu;
pub mod cpu_train;
mod embedding;
mod mlp;
pub mod ring;
mod unet;

pub use embedding::{TimeEmbedding, TimeEmbeddingConfig};
pub use mlp::{LayerNorm, ResBlock, ResMlp, ResMlpConfig};
pub use unet::{ChannelNorm, UNet, UNetConfig, circular_pad};

use burn::prelude::*;

/// A tensor from a flat `f32` buffer.
pub fn tensor<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(burn::tensor::TensorData::new(data, shape), device)
}

/// The values of a tensor as `f32`, row-major.
pub fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 tensor")
}
