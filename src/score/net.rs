//! The score network and its composition over long trajectories ("how is your blanket?",
//! METHOD.md §3). A network trained on windows of `w = 2k + 1` states estimates the noise of
//! every window of a longer trajectory in one batch; state `i` keeps the centre estimate of
//! window `i − k`, and the `k` states at each end keep those of the first and last window.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{NoiseEstimator, Vjp, tensor, to_vec};
use crate::nn::cpu::{Activations, CpuResMlp};
use crate::nn::{ResMlp, ResMlpConfig, TimeEmbedding, TimeEmbeddingConfig};

/// How the network covers a trajectory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Windows of `2k + 1` states, composed over any length (the paper's SDA).
    Local,
    /// One network over whole trajectories of a fixed length (the paper's baseline).
    Global,
}

/// The shape of a score network: what `config.json` records beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreNetConfig {
    /// Local (composed windows) or global (whole trajectory).
    pub architecture: Architecture,
    /// States per window: `2k + 1` for local networks, the trajectory length for global ones.
    pub window: usize,
    /// Values per state.
    pub features: usize,
    /// Hidden width of the residual MLP.
    pub width: usize,
    /// Residual blocks at the hidden width.
    pub depth: usize,
    /// Size E of the time embedding.
    pub embedding: usize,
}

impl ScoreNetConfig {
    /// A local network of order `k` with the paper's depth (5) and embedding (32).
    pub fn local(order: usize, features: usize, width: usize) -> Self {
        Self {
            architecture: Architecture::Local,
            window: 2 * order + 1,
            features,
            width,
            depth: 5,
            embedding: 32,
        }
    }

    /// The Markov-blanket order `k` of a local network (`window = 2k + 1`).
    pub fn order(&self) -> usize {
        (self.window - 1) / 2
    }

    /// Initialises the network on `device` from `seed`, reproducibly.
    ///
    /// burn initialises parameters lazily, on first use, from the device's RNG: a forward pass
    /// right after seeding materialises every parameter before anything else draws from it.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> ScoreNet {
        // The device RNG is global: hold a lock so that concurrent initialisations in one
        // process do not interleave their draws.
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        let net = self.init(device);
        let n = self.window * self.features;
        let _ = net.forward(Tensor::zeros([1, n], device), Tensor::zeros([1], device));
        net
    }

    /// Initialises the network on `device`.
    pub fn init(&self, device: &Device) -> ScoreNet {
        let n = self.window * self.features;
        ScoreNet {
            embedding: TimeEmbeddingConfig::new(self.embedding).init(device),
            mlp: ResMlpConfig {
                input: n + self.embedding,
                output: n,
                width: self.width,
                depth: self.depth,
            }
            .init(device),
        }
    }
}

/// `ε_φ(x(t), t)` on windows: concat(x, embedding(t)) → ResMLP.
#[derive(Module, Debug)]
pub struct ScoreNet {
    embedding: TimeEmbedding,
    mlp: ResMlp,
}

impl ScoreNet {
    /// # Shapes
    /// - x: `[N, w·F]` flattened windows, t: `[N]` → `[N, w·F]`
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let emb = self.embedding.forward(t);
        self.mlp.forward(Tensor::cat(vec![x, emb], 1))
    }

    /// The time embedding of one `t`, as plain values.
    pub fn embedding_of(&self, t: f64) -> Vec<f32> {
        let device = self.embedding.devices()[0].clone();
        to_vec(self.embedding.forward(Tensor::full([1], t as f32, &device)))
    }

    /// The fused CPU twin of the MLP (see [`crate::nn::cpu`]).
    pub fn mlp_cpu(&self) -> CpuResMlp {
        self.mlp.to_cpu()
    }
}

/// A trained network with its configuration, as a [`NoiseEstimator`] over trajectories.
pub struct WindowScore<'a> {
    /// The network.
    pub net: &'a ScoreNet,
    /// Its configuration.
    pub config: &'a ScoreNetConfig,
    /// Upper bound on the number of windows per network call (bounds memory).
    pub max_windows: usize,
}

impl<'a> WindowScore<'a> {
    /// Wraps a network.
    pub fn new(net: &'a ScoreNet, config: &'a ScoreNetConfig) -> Self {
        Self {
            net,
            config,
            max_windows: 1 << 16,
        }
    }
}

/// Cuts `[B, L, F]` into its `L − w + 1` windows of `w` states: `[B·(L−w+1), w·F]`.
pub fn unfold_windows(x: Tensor<3>, w: usize) -> Tensor<2> {
    let [b, l, f] = x.dims();
    let n = l - w + 1;
    let windows: Tensor<4> = x.unfold(1, w, 1); // [B, n, F, w]
    windows.swap_dims(2, 3).reshape([b * n, w * f])
}

/// Composes per-window estimates `[B, n, w, F]` (`n = L − 2k` windows) into `[B, L, F]`:
/// first `k` states from window 0, centres in between, last `k` states from window `n − 1`.
pub fn compose_windows(e: Tensor<4>, k: usize) -> Tensor<3> {
    let [b, n, w, f] = e.dims();
    let first = e.clone().slice([0..b, 0..1, 0..k, 0..f]).reshape([b, k, f]);
    let centre = e
        .clone()
        .slice([0..b, 0..n, k..k + 1, 0..f])
        .reshape([b, n, f]);
    let last = e
        .slice([0..b, n - 1..n, k + 1..w, 0..f])
        .reshape([b, w - k - 1, f]);
    Tensor::cat(vec![first, centre, last], 1)
}

impl NoiseEstimator for WindowScore<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        let [b, l, f] = x.dims();
        let w = self.config.window;
        assert!(
            l >= w,
            "trajectory of {l} states is shorter than the window {w}"
        );
        let n = l - w + 1;
        let device = x.device();
        // All windows of all trajectories as one batch, split only to bound memory.
        let per_call = (self.max_windows / n).max(1);
        let mut outs = Vec::new();
        for start in (0..b).step_by(per_call) {
            let end = (start + per_call).min(b);
            let xb = x.clone().slice([start..end, 0..l, 0..f]);
            let windows = unfold_windows(xb, w); // [B'·n, w·F]
            let rows = windows.dims()[0];
            let tt = Tensor::<1>::full([rows], t as f32, &device);
            let e = self
                .net
                .forward(windows, tt)
                .reshape([end - start, n, w, f]);
            outs.push(compose_windows(e, (w - 1) / 2));
        }
        Tensor::cat(outs, 0)
    }
}

/// The composed local score evaluated by the fused CPU network ([`crate::nn::cpu`]): the same
/// function as [`WindowScore`], faster on CPUs, with an analytic input gradient.
pub struct CpuWindowScore<'a> {
    /// The network (for its time embedding).
    pub net: &'a ScoreNet,
    /// Its configuration.
    pub config: &'a ScoreNetConfig,
    mlp: CpuResMlp,
}

impl<'a> CpuWindowScore<'a> {
    /// Copies the weights of `net` into the fused CPU form.
    pub fn new(net: &'a ScoreNet, config: &'a ScoreNetConfig) -> Self {
        Self {
            net,
            config,
            mlp: net.mlp_cpu(),
        }
    }

    /// Which window and element each state takes its estimate from (METHOD.md §3).
    fn source(&self, i: usize, l: usize) -> (usize, usize) {
        let w = self.config.window;
        let k = (w - 1) / 2;
        let n = l - w + 1;
        if i < k {
            (0, i)
        } else if i >= k + n {
            (n - 1, i - (n - 1))
        } else {
            (i - k, k)
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
        let (y, act) = self.mlp.forward(&windows, &self.net.embedding_of(t));
        let mut eps = vec![0.0; b * l * f];
        for s in 0..b {
            for i in 0..l {
                let (j, e) = self.source(i, l);
                let at = ((s * n + j) * w + e) * f;
                eps[(s * l + i) * f..(s * l + i + 1) * f].copy_from_slice(&y[at..at + f]);
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
                let (j, e) = self.source(i, l);
                let at = ((s * n + j) * w + e) * f;
                g[at..at + f].copy_from_slice(&v[(s * l + i) * f..(s * l + i + 1) * f]);
            }
        }
        let gx = self.mlp.backward(act, &g);
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
}
