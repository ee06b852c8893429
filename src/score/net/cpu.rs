//! The composed local score on the fused CPU network ([`crate::nn::cpu`]), with its analytic
//! input gradient.

use burn::prelude::*;

use super::{Composition, ScoreNet, ScoreNetConfig, covering};
use crate::nn::cpu::{Activations, CpuResMlp, Precision};
use crate::nn::ring;
use crate::score::{NoiseEstimator, Vjp, VjpMut, tensor, to_vec};

/// The composed local score evaluated by the fused CPU network ([`crate::nn::cpu`]): the same
/// function as [`WindowScore`], faster on CPUs, with an analytic input gradient.
pub struct CpuWindowScore<'a> {
    /// The network (for its time embedding).
    pub net: &'a ScoreNet,
    /// Its configuration.
    pub config: &'a ScoreNetConfig,
    /// How window estimates compose.
    pub composition: Composition,
    mlp: CpuResMlp,
}

impl<'a> CpuWindowScore<'a> {
    /// The arithmetic of the network's matrix products (float32 by default).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.mlp.set_precision(precision);
        self
    }

    /// Copies the weights of `net` into the fused CPU form.
    pub fn new(net: &'a ScoreNet, config: &'a ScoreNetConfig) -> Self {
        Self {
            net,
            config,
            composition: Composition::Centre,
            mlp: net
                .mlp_cpu()
                .expect("the fused CPU path is for MLP and ring networks"),
        }
    }

    /// The window whose estimate state `i` keeps in the paper's composition (docs/method.md §4):
    /// the one centred on it, or the first or last at the ends.
    fn centre_window(&self, i: usize, l: usize) -> usize {
        let w = self.config.window;
        i.saturating_sub((w - 1) / 2).min(l - w)
    }

    /// The windows state `i` takes its estimate from, and the weight of each; the element of
    /// window `j` that is state `i` is `i − j`.
    fn sources(&self, i: usize, l: usize) -> (std::ops::RangeInclusive<usize>, f32) {
        match self.composition {
            Composition::Centre => {
                let j = self.centre_window(i, l);
                (j..=j, 1.0)
            }
            Composition::Mean => {
                let js = covering(i, l, self.config.window);
                let c = 1.0 / js.clone().count() as f32;
                (js, c)
            }
        }
    }

    /// Windows `[B·n, w·F]` of trajectories `[B, L, F]`.
    fn unfold(&self, x: &[f32], b: usize, l: usize) -> Vec<f32> {
        let (w, f) = (self.config.window, self.config.features);
        let n = l - w + 1;
        let mut out = Vec::with_capacity(b * n * w * f);
        for s in 0..b {
            for j in 0..n {
                out.extend_from_slice(&x[(s * l + j) * f..(s * l + j + w) * f]);
            }
        }
        out
    }

    /// ε̂ of trajectories `[B, L, F]`, and the activations for [`Self::vjp`].
    fn forward(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Activations) {
        let [b, l, f] = x.dims();
        let (w, n) = (self.config.window, l - self.config.window + 1);
        let device = x.device();
        let windows = self.unfold(&to_vec(x), b, l);
        let (y, act) = match self.net.ring_kernel() {
            Some(k) => {
                let (y, act) = (self.mlp)
                    .forward(&ring::patches(&windows, w, f, k), &self.net.embedding_of(t));
                (ring::positions_to_windows(&y, w, f), act)
            }
            None => self.mlp.forward(&windows, &self.net.embedding_of(t)),
        };
        let mut eps = vec![0.0; b * l * f];
        for s in 0..b {
            for i in 0..l {
                let (js, c) = self.sources(i, l);
                for j in js {
                    let at = ((s * n + j) * w + i - j) * f;
                    for (d, v) in eps[(s * l + i) * f..(s * l + i + 1) * f]
                        .iter_mut()
                        .zip(&y[at..at + f])
                    {
                        *d += c * v;
                    }
                }
            }
        }
        (tensor(eps, [b, l, f], &device), act)
    }

    /// `vᵀ ∂ε̂/∂x`: `v` goes back to the window outputs that composition took, through the
    /// network, then every window adds its input gradient to the states it covers.
    fn vjp(&self, act: &Activations, v: Tensor<3>) -> Tensor<3> {
        let [b, l, f] = v.dims();
        let (w, n) = (self.config.window, l - self.config.window + 1);
        let device = v.device();
        let v = to_vec(v);
        let mut g = vec![0.0; b * n * w * f];
        for s in 0..b {
            for i in 0..l {
                let (js, c) = self.sources(i, l);
                for j in js {
                    let at = ((s * n + j) * w + i - j) * f;
                    for (d, v) in g[at..at + f]
                        .iter_mut()
                        .zip(&v[(s * l + i) * f..(s * l + i + 1) * f])
                    {
                        *d += c * v;
                    }
                }
            }
        }
        let gx = match self.net.ring_kernel() {
            Some(k) => ring::fold_patches(
                &self
                    .mlp
                    .backward(act, &ring::windows_to_positions(&g, w, f)),
                w,
                f,
                k,
            ),
            None => self.mlp.backward(act, &g),
        };
        let mut out = vec![0.0; b * l * f];
        for s in 0..b {
            for j in 0..n {
                let src = &gx[(s * n + j) * w * f..(s * n + j + 1) * w * f];
                for (d, v) in out[(s * l + j) * f..(s * l + j + w) * f]
                    .iter_mut()
                    .zip(src)
                {
                    *d += v;
                }
            }
        }
        tensor(out, [b, l, f], &device)
    }
}

impl NoiseEstimator for CpuWindowScore<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        self.forward(x.without_autodiff(), t).0
    }

    fn eps_vjp(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Vjp<'_>) {
        let (eps, act) = self.forward(x.without_autodiff(), t);
        (eps, Box::new(move |v: Tensor<3>| self.vjp(&act, v)))
    }

    /// One forward pass; every product reuses its activations.
    fn eps_vjps(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, VjpMut<'_>) {
        let (eps, act) = self.forward(x.without_autodiff(), t);
        (eps, Box::new(move |v: Tensor<3>| self.vjp(&act, v)))
    }

    fn keeps_activations(&self) -> bool {
        true
    }
}
