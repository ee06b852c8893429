//! The score network and its composition over long trajectories ("how is your blanket?",
//! docs/method.md §4). A network trained on windows of `w = 2k + 1` states estimates the noise of
//! every window of a longer trajectory in one batch; state `i` keeps the centre estimate of
//! window `i − k`, and the `k` states at each end keep those of the first and last window.

mod cpu;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{NoiseEstimator, Vjp, tensor, to_vec};
use crate::nn::cpu::CpuResMlp;
use crate::nn::cpu_train::CpuScoreMlp;
use crate::nn::{ResMlp, ResMlpConfig, TimeEmbedding, TimeEmbeddingConfig};
use crate::nn::{UNet, UNetConfig};

pub use cpu::CpuWindowScore;

/// How the network covers a trajectory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Windows of `2k + 1` states, composed over any length (the paper's SDA).
    Local,
    /// One network over whole trajectories of a fixed length (the paper's baseline).
    Global,
}

/// What maps a window to its noise estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backbone", rename_all = "lowercase")]
pub enum Backbone {
    /// A residual MLP on flattened windows (docs/method.md §7, Lorenz).
    Mlp {
        /// Hidden width.
        width: usize,
        /// Residual blocks at the hidden width.
        depth: usize,
    },
    /// States on a periodic 1-D grid (a ring of `features` positions): the residual MLP run
    /// at every position on the `kernel` positions around it in all the window's states, one
    /// weight set for the whole ring (a circular convolution followed by `1 × 1` ones; see
    /// [`crate::nn::ring`]).
    Ring {
        /// Positions each estimate sees (odd, at most the ring's size).
        kernel: usize,
        /// Hidden width.
        width: usize,
        /// Residual blocks at the hidden width.
        depth: usize,
    },
    /// A U-Net on windows of fields stacked along channels (docs/method.md §8, Kolmogorov).
    Unet {
        /// The shape `(C, H, W)` of one state.
        state: [usize; 3],
        /// Hidden channels per level.
        hidden: Vec<usize>,
        /// Residual blocks per level.
        blocks: usize,
        /// Convolution kernel size.
        kernel: usize,
        /// Wavenumber `k` of the `sin(k y)` forcing given as a constant context channel
        /// (0: none).
        forcing: usize,
        /// Constant context channels `(Cc, H, W)` of imported field data, flattened (given to
        /// the network beside the forcing; empty: none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        context: Vec<f32>,
    },
}

/// U-Net sizes: the paper's, and one that trains on a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UNetPreset {
    /// The paper's: hidden channels (96, 192, 384), 3 blocks per level, 3×3 kernels.
    Paper,
    /// A smaller network that trains on a CPU: hidden channels (24, 48, 96), 1 block per level,
    /// 3×3 kernels (0.57 M parameters against the paper's 22.9 M).
    Reduced,
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
    /// Size E of the time embedding.
    pub embedding: usize,
    /// The network body.
    #[serde(flatten)]
    pub backbone: Backbone,
}

impl ScoreNetConfig {
    /// The hidden width of the fused CPU network when this network's passes run fused
    /// (`fused`: MLP and ring networks on the CPU device; in training, the fused engine), `None`
    /// when they do not or its backbone has no fused twin: what
    /// [`Precision::resolve`](crate::nn::cpu::Precision::resolve) takes.
    pub fn fused_width(&self, fused: bool) -> Option<usize> {
        match self.backbone {
            Backbone::Mlp { width, .. } | Backbone::Ring { width, .. } if fused => Some(width),
            _ => None,
        }
    }

    /// A local MLP network of order `k` with the paper's depth (5) and embedding (32).
    pub fn local(order: usize, features: usize, width: usize) -> Self {
        Self {
            architecture: Architecture::Local,
            window: 2 * order + 1,
            features,
            embedding: 32,
            backbone: Backbone::Mlp { width, depth: 5 },
        }
    }

    /// A local U-Net of order `k` on states of shape `(C, H, W)`, with the forcing `sin(4 y)`
    /// as context (docs/method.md §8).
    pub fn unet(order: usize, state: [usize; 3], preset: UNetPreset) -> Self {
        let c = UNetConfig::for_preset(preset, 1, 1);
        Self {
            architecture: Architecture::Local,
            window: 2 * order + 1,
            features: state.iter().product(),
            embedding: c.embedding,
            backbone: Backbone::Unet {
                state,
                hidden: c.hidden,
                blocks: c.blocks,
                kernel: c.kernel,
                forcing: 4,
                context: Vec::new(),
            },
        }
    }

    /// A rough count of the activations one window keeps for its backward pass, to size
    /// batches of windows: every level of a U-Net holds about `12·blocks + 8` tensors of its
    /// channels and grid; an MLP about `6·depth + 4` vectors of its width.
    pub fn activation_floats(&self) -> usize {
        match &self.backbone {
            Backbone::Mlp { width, depth } => (6 * depth + 4) * width,
            Backbone::Ring { width, depth, .. } => (6 * depth + 4) * width * self.features,
            Backbone::Unet {
                state,
                hidden,
                blocks,
                ..
            } => hidden
                .iter()
                .enumerate()
                .map(|(i, c)| c * ((state[1] * state[2]) >> (2 * i)) * (12 * blocks + 8))
                .sum::<usize>()
                .max(1),
        }
    }

    /// The Markov-blanket order `k` of a local network (`window = 2k + 1`).
    pub fn order(&self) -> usize {
        (self.window - 1) / 2
    }

    /// One line for messages: `MLP 256 × 5` or `U-Net (32, 64, 128) × 2`.
    pub fn describe(&self) -> String {
        match &self.backbone {
            Backbone::Mlp { width, depth } => format!("MLP width {width}, depth {depth}"),
            Backbone::Ring {
                kernel,
                width,
                depth,
            } => format!("ring network kernel {kernel}, width {width}, depth {depth}"),
            Backbone::Unet { hidden, blocks, .. } => {
                format!("U-Net {hidden:?}, {blocks} blocks per level")
            }
        }
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
        let embedding = TimeEmbeddingConfig::new(self.embedding).init(device);
        match &self.backbone {
            Backbone::Mlp { width, depth } => ScoreNet {
                embedding,
                mlp: Some(
                    ResMlpConfig {
                        input: n + self.embedding,
                        output: n,
                        width: *width,
                        depth: *depth,
                    }
                    .init(device),
                ),
                unet: None,
                window: self.window,
                state: [self.features, 1, 1],
                ring: 0,
                forcing: 0,
                context: Vec::new(),
            },
            Backbone::Ring {
                kernel,
                width,
                depth,
            } => ScoreNet {
                embedding,
                mlp: Some(
                    ResMlpConfig {
                        input: self.window * kernel + self.embedding,
                        output: self.window,
                        width: *width,
                        depth: *depth,
                    }
                    .init(device),
                ),
                unet: None,
                window: self.window,
                state: [self.features, 1, 1],
                ring: *kernel,
                forcing: 0,
                context: Vec::new(),
            },
            Backbone::Unet {
                state,
                hidden,
                blocks,
                kernel,
                forcing,
                context,
            } => ScoreNet {
                embedding,
                mlp: None,
                unet: Some(
                    UNetConfig {
                        channels: self.window * state[0],
                        context: usize::from(*forcing > 0)
                            + context.len() / (state[1] * state[2]).max(1),
                        hidden: hidden.clone(),
                        blocks: *blocks,
                        kernel: *kernel,
                        embedding: self.embedding,
                    }
                    .init(device),
                ),
                window: self.window,
                state: *state,
                ring: 0,
                forcing: *forcing,
                context: context.clone(),
            },
        }
    }
}

impl UNetConfig {
    fn for_preset(preset: UNetPreset, channels: usize, context: usize) -> Self {
        match preset {
            UNetPreset::Paper => UNetConfig::paper(channels, context),
            UNetPreset::Reduced => UNetConfig::reduced(channels, context),
        }
    }
}

/// `ε_φ(x(t), t)` on windows: concat(x, embedding(t)) → ResMLP, or the window's fields stacked
/// along channels (with the forcing as context) → U-Net modulated by the embedding.
#[derive(Module, Debug)]
pub struct ScoreNet {
    embedding: TimeEmbedding,
    mlp: Option<ResMlp>,
    unet: Option<UNet>,
    window: usize,
    state: [usize; 3],
    /// Kernel of a ring network (0: not one).
    ring: usize,
    forcing: usize,
    context: Vec<f32>,
}

/// The context channel `sin(k y)` at cell centres, `y` along the second grid axis: `[1, 1, H, W]`.
pub fn forcing_channel(k: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
    let row: Vec<f32> = (0..w)
        .map(|j| {
            let y = 2.0 * std::f64::consts::PI * (j as f64 + 0.5) / w as f64;
            (k as f64 * y).sin() as f32
        })
        .collect();
    let data: Vec<f32> = (0..h).flat_map(|_| row.iter().copied()).collect();
    tensor(data, [1, 1, h, w], device)
}

impl ScoreNet {
    /// # Shapes
    /// - x: `[N, w·F]` flattened windows, t: `[N]` → `[N, w·F]`
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let emb = self.embedding.forward(t);
        match (&self.mlp, &self.unet) {
            (Some(mlp), _) if self.ring > 0 => self.ring_forward(mlp, x, emb),
            (Some(mlp), _) => mlp.forward(Tensor::cat(vec![x, emb], 1)),
            (None, Some(unet)) => {
                let [n, wf] = x.dims();
                let [c, h, w] = self.state;
                let fields = x.reshape([n, self.window * c, h, w]);
                let device = fields.device();
                let mut parts = Vec::new();
                if self.forcing > 0 {
                    parts.push(forcing_channel(self.forcing, h, w, &device).expand([n, 1, h, w]));
                }
                if !self.context.is_empty() {
                    let cc = self.context.len() / (h * w);
                    let t = tensor(self.context.clone(), [1, cc, h, w], &device);
                    parts.push(t.expand([n, cc, h, w]));
                }
                let context = match parts.len() {
                    0 => Tensor::zeros([n, 0, h, w], &device),
                    1 => parts.pop().expect("one part"),
                    _ => Tensor::cat(parts, 1),
                };
                unet.forward(fields, context, emb).reshape([n, wf])
            }
            (None, None) => unreachable!("a score network has a body"),
        }
    }

    /// A ring network on windows `[N, w·F]` (see [`crate::nn::ring`]): the patches of every
    /// position as rows, the MLP on each row with the window's embedding, the rows' outputs
    /// back in place.
    fn ring_forward(&self, mlp: &ResMlp, x: Tensor<2>, emb: Tensor<2>) -> Tensor<2> {
        let [n, wf] = x.dims();
        let (w, k) = (self.window, self.ring);
        let f = wf / w;
        let x = x.reshape([n, w, f]);
        // Rolled copies: copy o holds position p − r + o at position p.
        let r = k / 2;
        let rolled: Vec<Tensor<4>> = (0..k)
            .map(|o| {
                let s = (f + o % f - r % f) % f; // p − r + o ≡ p + s (mod F)
                let x = if s == 0 {
                    x.clone()
                } else {
                    Tensor::cat(
                        vec![x.clone().narrow(2, s, f - s), x.clone().narrow(2, 0, s)],
                        2,
                    )
                };
                x.unsqueeze_dim::<4>(3)
            })
            .collect();
        let patches = Tensor::cat(rolled, 3) // [N, w, F, K]
            .swap_dims(1, 2)
            .reshape([n * f, w * k]);
        let [_, e] = emb.dims();
        let emb = emb
            .unsqueeze_dim::<3>(1)
            .expand([n, f, e])
            .reshape([n * f, e]);
        mlp.forward(Tensor::cat(vec![patches, emb], 1))
            .reshape([n, f, w])
            .swap_dims(1, 2)
            .reshape([n, wf])
    }

    /// The kernel of a ring network, `None` for other networks.
    pub fn ring_kernel(&self) -> Option<usize> {
        (self.ring > 0).then_some(self.ring)
    }

    /// The time embedding of one `t`, as plain values.
    pub fn embedding_of(&self, t: f64) -> Vec<f32> {
        let device = self.embedding.devices()[0].clone();
        to_vec(self.embedding.forward(Tensor::full([1], t as f32, &device)))
    }

    /// The fused CPU twin of the MLP (see [`crate::nn::cpu`]), for MLP networks.
    pub fn mlp_cpu(&self) -> Option<CpuResMlp> {
        self.mlp.as_ref().map(ResMlp::to_cpu)
    }

    /// The whole network (embedding and MLP) as CPU buffers for fused training (see
    /// [`crate::nn::cpu_train`]), for MLP networks.
    pub fn score_cpu(&self) -> Option<CpuScoreMlp> {
        let (frequencies, emb1, emb2) = self.embedding.to_cpu();
        Some(CpuScoreMlp {
            frequencies,
            emb1,
            emb2,
            mlp: self.mlp.as_ref()?.to_cpu(),
        })
    }

    /// Sets the weights to those of `cpu`, a network of the same MLP configuration.
    ///
    /// # Panics
    /// On a U-Net, or on shapes that differ.
    pub fn load_score_cpu(&mut self, cpu: &CpuScoreMlp) {
        self.embedding.load_cpu(&cpu.emb1, &cpu.emb2);
        self.mlp
            .as_mut()
            .expect("an MLP network")
            .load_cpu(&cpu.mlp);
    }
}

/// How window estimates become the estimate of a trajectory (docs/method.md §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Composition {
    /// State `i` keeps the centre estimate of the window centred on it; the `k` states at each
    /// end keep those of the first and last window (the paper's).
    Centre,
    /// State `i` averages the estimates of every window that covers it (up to `2k + 1`): each
    /// window estimates the same score with its own error, and their mean has less (on
    /// Lorenz-63, k = 2: prior log p(x) −4993 against −7930, and a lower W1 to the particle
    /// filter on every test trajectory). The default.
    #[default]
    Mean,
}

/// The number of windows of `w` states covering each of `l` states.
fn coverage(l: usize, w: usize) -> Vec<usize> {
    (0..l).map(|i| covering(i, l, w).count()).collect()
}

/// The windows (by first state) of `w` states that cover state `i` of `l`.
pub(super) fn covering(i: usize, l: usize, w: usize) -> std::ops::RangeInclusive<usize> {
    i.saturating_sub(w - 1)..=i.min(l - w)
}

/// `[1, L, 1]`: one over the number of windows covering each state.
fn inverse_coverage(l: usize, w: usize, device: &Device) -> Tensor<3> {
    let c: Vec<f32> = coverage(l, w).iter().map(|&c| 1.0 / c as f32).collect();
    tensor(c, [1, l, 1], device)
}

/// A trained network with its configuration, as a [`NoiseEstimator`] over trajectories.
pub struct WindowScore<'a> {
    /// The network.
    pub net: &'a ScoreNet,
    /// Its configuration.
    pub config: &'a ScoreNetConfig,
    /// Upper bound on the number of windows per network call (bounds memory).
    pub max_windows: usize,
    /// How window estimates compose.
    pub composition: Composition,
}

impl<'a> WindowScore<'a> {
    /// Wraps a network, with `max_windows` sized so that one autodiff graph of windows stays
    /// within about 8 GB of activations (see [`ScoreNetConfig::activation_floats`]).
    pub fn new(net: &'a ScoreNet, config: &'a ScoreNetConfig) -> Self {
        const BUDGET_FLOATS: usize = 2 << 30; // 8 GB of f32
        Self {
            net,
            config,
            max_windows: (BUDGET_FLOATS / config.activation_floats()).clamp(1, 1 << 16),
            composition: Composition::Centre,
        }
    }

    /// Composes per-window estimates `[B·n, w·F]` into `[B, L, F]`.
    fn compose(&self, e: Tensor<2>, b: usize) -> Tensor<3> {
        let (w, rows) = (self.config.window, e.dims()[0]);
        let f = e.dims()[1] / w;
        match self.composition {
            Composition::Centre => compose_windows(e.reshape([b, rows / b, w, f]), (w - 1) / 2),
            Composition::Mean => {
                let l = rows / b + w - 1;
                let device = e.device();
                fold_windows(e, b, w, f) * inverse_coverage(l, w, &device)
            }
        }
    }

    /// The transpose of [`Self::compose`]: `[B, L, F]` → `[B·n, w·F]`.
    fn spread(&self, v: Tensor<3>) -> Tensor<2> {
        let [b, l, f] = v.dims();
        let w = self.config.window;
        match self.composition {
            Composition::Centre => spread_to_windows(v, w).reshape([b * (l - w + 1), w * f]),
            Composition::Mean => {
                let device = v.device();
                unfold_windows(v * inverse_coverage(l, w, &device), w)
            }
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

/// The transpose of [`compose_windows`]: spreads `v` `[B, L, F]` over the window outputs that
/// composition took, `[B, n, w, F]` (zeros elsewhere).
pub fn spread_to_windows(v: Tensor<3>, w: usize) -> Tensor<4> {
    let [b, l, f] = v.dims();
    let (k, n) = ((w - 1) / 2, l - w + 1);
    let device = v.device();
    let zeros = |m: usize| Tensor::<3>::zeros([b, m, f], &device);
    let columns = (0..w)
        .map(|e| {
            let col = if e == k {
                v.clone().narrow(1, k, n)
            } else if n == 1 {
                v.clone().narrow(1, e, 1)
            } else if e < k {
                Tensor::cat(vec![v.clone().narrow(1, e, 1), zeros(n - 1)], 1)
            } else {
                Tensor::cat(vec![zeros(n - 1), v.clone().narrow(1, n - 1 + e, 1)], 1)
            };
            col.unsqueeze_dim::<4>(2)
        })
        .collect();
    Tensor::cat(columns, 2)
}

/// The transpose of [`unfold_windows`]: sums per-window values `[B·n, w·F]` back onto the
/// `L = n + w − 1` states they cover: `[B, L, F]`.
pub fn fold_windows(g: Tensor<2>, b: usize, w: usize, f: usize) -> Tensor<3> {
    let n = g.dims()[0] / b;
    let device = g.device();
    let g = g.reshape([b, n, w, f]);
    let mut out = Tensor::<3>::zeros([b, n + w - 1, f], &device);
    for e in 0..w {
        let part = g.clone().narrow(2, e, 1).reshape([b, n, f]);
        let range = [0..b, e..e + n, 0..f];
        let sum = out.clone().slice(range.clone()) + part;
        out = out.slice_assign(range, sum);
    }
    out
}

impl WindowScore<'_> {
    fn windows_and_time(&self, x: Tensor<3>, t: f64) -> (Tensor<2>, Tensor<1>) {
        let windows = unfold_windows(x, self.config.window);
        let rows = windows.dims()[0];
        let tt = Tensor::<1>::full([rows], t as f32, &windows.device());
        (windows, tt)
    }
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
        // All windows of all trajectories as one batch, split only to bound memory.
        let per_call = (self.max_windows / n).max(1);
        let mut outs = Vec::new();
        for start in (0..b).step_by(per_call) {
            let end = (start + per_call).min(b);
            let (windows, tt) = self.windows_and_time(x.clone().slice([start..end, 0..l, 0..f]), t);
            outs.push(self.compose(self.net.forward(windows, tt), end - start));
        }
        Tensor::cat(outs, 0)
    }

    /// Within `max_windows` windows, one autodiff graph kept until the product; beyond, the
    /// forward pass is recomputed chunk by chunk of windows inside the product, so memory stays
    /// bounded for any batch and length.
    fn eps_vjp(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Vjp<'_>) {
        let [b, l, f] = x.dims();
        let w = self.config.window;
        let n = l - w + 1;
        if b * n <= self.max_windows {
            return super::autodiff_vjp(|x| self.eps(x, t), x);
        }
        let x = x.without_autodiff();
        let eps = self.eps(x.clone(), t);
        let vjp = move |v: Tensor<3>| {
            let (windows, tt) = self.windows_and_time(x, t);
            let g = self.spread(v.without_autodiff());
            let rows = b * n;
            let mut grads = Vec::new();
            for start in (0..rows).step_by(self.max_windows) {
                let end = (start + self.max_windows).min(rows);
                let xc = windows
                    .clone()
                    .slice([start..end, 0..w * f])
                    .autodiff()
                    .require_grad();
                // One range: the rows of this chunk of the 1-D tensor of times.
                #[allow(clippy::single_range_in_vec_init)]
                let times = tt.clone().slice([start..end]);
                let out = self.net.forward(xc.clone(), times.autodiff());
                let gc = g.clone().slice([start..end, 0..w * f]).autodiff();
                let grad = (out * gc).sum().backward();
                grads.push(xc.grad(&grad).expect("x requires grad").without_autodiff());
            }
            fold_windows(Tensor::cat(grads, 0), b, w, f)
        };
        (eps, Box::new(vjp))
    }
}
