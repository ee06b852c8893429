//! Network architectures, and nothing else: they know tensors, not diffusion.

pub mod cpu;
mod embedding;
mod mlp;
pub mod unet;

pub use embedding::{TimeEmbedding, TimeEmbeddingConfig};
pub use mlp::{LayerNorm, ResBlock, ResMlp, ResMlpConfig};
