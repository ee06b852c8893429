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
