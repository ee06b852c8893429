//! PLACEHOLDER (not committed): the API helper B is building.
use burn::prelude::*;
use serde::{Deserialize, Serialize};
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    pub channels: usize,
    pub context: usize,
    pub hidden: Vec<usize>,
    pub blocks: usize,
    pub kernel: usize,
    pub embedding: usize,
}
impl UNetConfig {
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
    pub fn reduced(channels: usize, context: usize) -> Self {
        Self {
            channels,
            context,
            hidden: vec![32, 64, 128],
            blocks: 2,
            kernel: 3,
            embedding: 64,
        }
    }
    pub fn init(&self, device: &Device) -> UNet {
        UNet {
            conv: burn::nn::conv::Conv2dConfig::new(
                [self.channels + self.context, self.channels],
                [1, 1],
            )
            .init(device),
        }
    }
}
#[derive(Module, Debug)]
pub struct UNet {
    conv: burn::nn::conv::Conv2d,
}
impl UNet {
    pub fn forward(&self, x: Tensor<4>, context: Tensor<4>, _emb: Tensor<2>) -> Tensor<4> {
        self.conv.forward(Tensor::cat(vec![x, context], 1))
    }
}
