//! The training windows: one per chain with its noise level and noise, drawn from an epoch's
//! random stream, and the denoising loss on a batch of them.

use burn::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Dataset;
use crate::io::Array;
use crate::nn::tensor;
use crate::score::net::ScoreNet;
use crate::score::sde::VpSde;

/// Draws one window per chain (in a random order) with its `t` and `ε`, normalised:
/// returns `(x(t), t, ε)` batches as flat vectors of `n` windows, with the windows' loss
/// weights where `observed` gives them (1 = observed, 0 = missing; [`crate::data::observed`]).
#[derive(Default)]
pub(super) struct Windows {
    pub(super) x: Vec<f32>,
    pub(super) t: Vec<f32>,
    pub(super) eps: Vec<f32>,
    /// The weight of each value of `eps` in the loss; empty: all 1.
    pub(super) wts: Vec<f32>,
}

impl Windows {
    /// The weights of the windows `range` of `size` values each, if any.
    pub(super) fn weights(&self, range: std::ops::Range<usize>, size: usize) -> Option<&[f32]> {
        (!self.wts.is_empty()).then(|| &self.wts[range.start * size..range.end * size])
    }

    /// All the weights, if any.
    pub(super) fn all_weights(&self) -> Option<&[f32]> {
        (!self.wts.is_empty()).then_some(self.wts.as_slice())
    }
}

/// `precondition`: the target is the residual `ε − c(t) x(t)` that a preconditioned network
/// learns (see [`crate::score::precondition`]).
pub(super) fn draw_windows(
    data: &[f32],
    observed: Option<&[f32]>,
    shape: &[usize],
    w: usize,
    sde: &VpSde,
    precondition: bool,
    rng: &mut StdRng,
) -> Windows {
    let (n, l, f) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let size = w * f;
    let mut x = Vec::with_capacity(n * size);
    let mut eps = Vec::with_capacity(n * size);
    let mut t = Vec::with_capacity(n);
    let mut wts = Vec::new();
    for &chain in &order {
        let start = rng.random_range(0..=l - w);
        let tt: f64 = rng.random();
        let (mu, sigma) = (sde.mu(tt), sde.sigma(tt));
        let c = if precondition {
            crate::score::precondition::skip(sde, tt) as f32
        } else {
            0.0
        };
        let span = (chain * l + start) * f..(chain * l + start + w) * f;
        for &v in &data[span.clone()] {
            let e: f32 = StandardNormal.sample(rng);
            let xt = mu as f32 * v + sigma as f32 * e;
            x.push(xt);
            eps.push(e - c * xt);
        }
        if let Some(o) = observed {
            wts.extend_from_slice(&o[span]);
        }
        t.push(tt as f32);
    }
    Windows { x, t, eps, wts }
}

/// The batch's denoising loss: the mean of `(ε_φ(x(t), t) − ε)²`, over the observed values
/// only (`Σ w d² / Σ w`) where the windows have weights.
pub(super) fn loss(
    net: &ScoreNet,
    w: &Windows,
    range: std::ops::Range<usize>,
    size: usize,
    device: &Device,
) -> Tensor<1> {
    let b = range.len();
    let x = tensor(
        w.x[range.start * size..range.end * size].to_vec(),
        [b, size],
        device,
    );
    let eps = tensor(
        w.eps[range.start * size..range.end * size].to_vec(),
        [b, size],
        device,
    );
    let sq = (net.forward(x, tensor(w.t[range.clone()].to_vec(), [b], device)) - eps).square();
    match w.weights(range, size) {
        None => sq.mean(),
        Some(wts) => {
            let total = wts.iter().map(|&v| v as f64).sum::<f64>().max(1.0);
            (sq * tensor(wts.to_vec(), [b, size], device)).sum() / total as f32
        }
    }
}

pub(super) fn normalised(a: &Array, data: &Dataset) -> Vec<f32> {
    let mut x = a.data.clone();
    data.info.to_model(&mut x);
    x
}
