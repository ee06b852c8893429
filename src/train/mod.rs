//! Denoising score matching on windows of trajectories (docs/method.md §3, §7).
//!
//! An epoch draws one window at a random position of every training chain, in a random
//! order; each sample gets its own `t ~ U(0, 1)` and `ε ~ N(0, I)`, and the loss is
//! `mean((ε_φ(μ x + σ ε, t) − ε)²)`. AdamW with a learning rate that decays per epoch.
//!
//! All randomness of epoch `e` comes from an RNG seeded by `(seed, e)`, and a checkpoint holds
//! the weights and the optimizer state, so a resumed run ends exactly where an uninterrupted one
//! would.

mod ema;
mod stats;

pub use crate::model::{LrSchedule, TrainConfig};
pub use ema::Ema;
pub use stats::{
    EpochStats, LEVELS, convergence_warning, level, levels_line, mean_levels, read_stats,
    write_stats,
};

use std::path::Path;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, features, shape_text};
use crate::error::{Error, Result};
use crate::io::{Array, read_json, read_npy, temp_path, write_json, write_npy};
use crate::mcs::{Layout, chain_rng, splitmix64};
use crate::model::{Model, RunConfig, load_weights, save_weights};
use crate::nn::cpu::Precision;
use crate::nn::cpu_train::{AdamW, CpuTrainer};
use crate::nn::ring;
use crate::nn::tensor;
use crate::score::net::{Architecture, Backbone, ScoreNet, ScoreNetConfig, UNetPreset};
use crate::score::sde::VpSde;
use burn::store::{BurnpackStore, ModuleSnapshot};

/// The body of a score network, as `sda train --network` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// From the data: a U-Net for fields `(C, H, W)`, a ring network for states laid out on
    /// a ring (Lorenz-96, `sda import --layout ring`), an MLP for other vectors.
    #[default]
    Auto,
    /// A residual MLP on flattened windows.
    Mlp,
    /// A residual MLP shared along a periodic 1-D grid, on the `--kernel` positions around
    /// each position (docs/ring.md).
    Ring,
    /// A U-Net on fields.
    Unet,
}

/// Hidden width of ring networks when none is given: every position of every window is a row
/// of the MLP, so it runs `F` times as many rows as an MLP on whole windows.
pub const RING_WIDTH: usize = 128;
/// Positions a ring network sees when no `--kernel` is given.
pub const RING_KERNEL: usize = 9;

/// The network a user asks for, in the terms of `sda train`'s flags; [`NetSpec::config`] makes
/// the [`ScoreNetConfig`] for a data set's state shape (a residual MLP for vector states, the
/// U-Net of docs/method.md §8 for fields `(C, H, W)`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    /// Markov-blanket order k: windows of `2k + 1` states (local networks).
    pub order: usize,
    /// Local (composed windows) or global (whole trajectories of `global_length` states).
    pub architecture: Architecture,
    /// Trajectory length of a global network.
    pub global_length: usize,
    /// The network's body.
    pub network: Network,
    /// Hidden width of the MLP (default: 256, [`RING_WIDTH`] for ring networks).
    pub width: Option<usize>,
    /// Residual blocks of the MLP.
    pub depth: usize,
    /// U-Net size.
    pub preset: UNetPreset,
    /// U-Net hidden channels per level (overrides the preset's).
    pub hidden: Option<Vec<usize>>,
    /// U-Net residual blocks per level (overrides the preset's).
    pub blocks: Option<usize>,
    /// U-Net kernel size (overrides the preset's).
    pub kernel: Option<usize>,
    /// Size of the time embedding (default: the backbone's).
    pub embedding: Option<usize>,
}

impl Default for NetSpec {
    /// The paper's Lorenz-63 network (k = 2, width 256, 5 blocks) and Kolmogorov U-Net.
    fn default() -> Self {
        Self {
            order: 2,
            architecture: Architecture::Local,
            global_length: 65,
            network: Network::Auto,
            width: None,
            depth: 5,
            preset: UNetPreset::Paper,
            hidden: None,
            blocks: None,
            kernel: None,
            embedding: None,
        }
    }
}

impl NetSpec {
    /// The body `Auto` stands for on states of `shape` laid out as `layout`.
    pub fn network_for(&self, shape: &[usize], layout: Layout) -> Network {
        match (self.network, shape.len(), layout) {
            (Network::Auto, 3, _) => Network::Unet,
            (Network::Auto, _, Layout::Ring) if self.architecture == Architecture::Local => {
                Network::Ring
            }
            (Network::Auto, _, _) => Network::Mlp,
            (n, _, _) => n,
        }
    }

    /// The network for states of `shape` laid out as `layout`, checked (flags named in
    /// errors).
    pub fn config(&self, shape: &[usize], layout: Layout) -> Result<ScoreNetConfig> {
        let window = match self.architecture {
            Architecture::Local => 2 * self.order + 1,
            Architecture::Global => self.global_length,
        };
        if window == 0 {
            return Err(Error::config("--global-length", "must be at least 1"));
        }
        let network = self.network_for(shape, layout);
        if self.architecture == Architecture::Global && network != Network::Mlp {
            return Err(Error::config(
                "--architecture global",
                "only MLP networks can be global (add --network mlp for vector data)",
            ));
        }
        let width = |default: usize| match self.width.unwrap_or(default) {
            0 => Err(Error::config("--width", "must be at least 1")),
            w => Ok(w),
        };
        let mut net = match (network, shape) {
            (Network::Unet, &[c, h, w]) => ScoreNetConfig::unet(self.order, [c, h, w], self.preset),
            (Network::Unet, _) => {
                return Err(Error::config(
                    "--network unet",
                    format!("needs field states (C, H, W), not ({})", shape_text(shape)),
                ));
            }
            (_, [_, _, _]) => {
                return Err(Error::config(
                    format!("--network {}", crate::flag_value(&network)),
                    "field states (C, H, W) take a U-Net (--network unet)",
                ));
            }
            (Network::Ring, &[f]) => {
                let widest = if f.is_multiple_of(2) { f - 1 } else { f };
                let kernel = self.kernel.unwrap_or(RING_KERNEL.min(widest));
                if kernel.is_multiple_of(2) || kernel > f {
                    return Err(Error::config(
                        "--kernel",
                        format!(
                            "a ring network's kernel must be odd and at most the ring's {f} positions (got {kernel})"
                        ),
                    ));
                }
                let width = width(RING_WIDTH)?;
                let mut net = ScoreNetConfig::local(self.order, f, width);
                net.backbone = Backbone::Ring {
                    kernel,
                    width,
                    depth: self.depth,
                };
                net
            }
            (Network::Ring, _) => {
                return Err(Error::config(
                    "--network ring",
                    format!(
                        "needs states of one axis (a periodic 1-D grid), not ({})",
                        shape_text(shape)
                    ),
                ));
            }
            _ => {
                let width = width(256)?;
                let mut net = ScoreNetConfig::local(self.order, features(shape), width);
                net.backbone = Backbone::Mlp {
                    width,
                    depth: self.depth,
                };
                net
            }
        };
        net.architecture = self.architecture;
        net.window = window;
        if let Some(e) = self.embedding {
            net.embedding = e;
        }
        if let Backbone::Unet {
            state,
            hidden,
            blocks,
            kernel,
            ..
        } = &mut net.backbone
        {
            if let Some(h) = &self.hidden {
                *hidden = h.clone();
            }
            *blocks = self.blocks.unwrap_or(*blocks);
            *kernel = self.kernel.unwrap_or(*kernel);
            let levels = hidden.len();
            if hidden.is_empty() || hidden.contains(&0) {
                return Err(Error::config(
                    "--hidden",
                    "needs at least one level of non-zero channels",
                ));
            }
            if *kernel % 2 == 0 {
                return Err(Error::config(
                    "--kernel",
                    format!("must be odd (got {kernel})"),
                ));
            }
            let div = 1 << (levels - 1);
            if state[1] % div != 0 || state[2] % div != 0 {
                return Err(Error::config(
                    "--hidden",
                    format!(
                        "{levels} levels halve the grid {} times, but {} × {} does not divide by {div}",
                        levels - 1,
                        state[1],
                        state[2]
                    ),
                ));
            }
        }
        Ok(net)
    }
}

/// Gives the U-Net of imported field data (`system: external`) the data's own constant
/// channels, if any, instead of the Kolmogorov forcing `sin(4y)`, which only Kolmogorov flow
/// has. Other systems and MLP networks are left as they are.
pub fn use_data_context(
    net: &mut ScoreNetConfig,
    system: &crate::mcs::System,
    context: Option<Array>,
) {
    if let crate::mcs::System::External(_) = system
        && let Backbone::Unet {
            forcing,
            context: c,
            ..
        } = &mut net.backbone
    {
        *forcing = 0;
        *c = context.map(|a| a.data).unwrap_or_default();
    }
}

/// The default batch size and learning rate for states of `shape`: the paper's (64, 1e-3) for
/// vector states, (32, 2e-4) for fields.
pub fn default_batch_lr(shape: &[usize]) -> (usize, f64) {
    if shape.len() == 3 {
        (32, 2e-4)
    } else {
        (64, 1e-3)
    }
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    epochs_done: usize,
    /// The engine that wrote it (absent: burn, before the fused trainer existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine: Option<Engine>,
    /// Optimisation steps taken (the fused engine's AdamW counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps: Option<u64>,
    /// Whether the checkpoint's files carry its epoch in their names (`checkpoint-000064.bpk`):
    /// a run killed while writing checkpoint 128 then still resumes from the complete files of
    /// checkpoint 64 that this file names (absent: untagged names, from older runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    tagged: bool,
}

impl Checkpoint {
    /// The suffix of this checkpoint's file names.
    fn suffix(&self) -> String {
        if self.tagged {
            tag(self.epochs_done)
        } else {
            String::new()
        }
    }
}

/// The suffix of the file names of the checkpoint after `epochs` epochs.
fn tag(epochs: usize) -> String {
    format!("-{epochs:06}")
}

/// What a training run writes in its folder: config.json and model.safetensors (the model),
/// stats.csv, and the checkpoint (checkpoint.json naming the files of the last checkpoint,
/// `checkpoint-E.*` and `optimizer-E.*`).
pub fn is_run_file(name: &str) -> bool {
    matches!(
        name,
        "config.json"
            | "model.safetensors"
            | "stats.csv"
            | "checkpoint.json"
            | "checkpoint.bpk"
            | "optimizer.bpk"
            | "optimizer.npy"
    ) || checkpoint_file(name)
}

/// A file of a tagged checkpoint (`checkpoint-000064.bpk`, `optimizer-000064.npy`, …).
fn checkpoint_file(name: &str) -> bool {
    (name.starts_with("checkpoint-") || name.starts_with("optimizer-") || name.starts_with("ema-"))
        && [".bpk", ".npy", ".safetensors"]
            .iter()
            .any(|e| name.ends_with(e))
}

/// Whether `name` is a write in progress of another process (`.NAME.tmpPID`,
/// [`crate::io::temp_path`], and the scratch files that the weight stores build beside such a
/// path, `.NAME.tmpPID.PID-N.tmp…`): in a run folder, one that a killed run left behind.
fn foreign_temp(name: &str) -> bool {
    name.starts_with('.')
        && name
            .split_once(".tmp")
            .map(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or("")
            })
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| pid != std::process::id())
}

/// Removes the files of checkpoints other than the one with `suffix`, and the temporary files
/// of killed runs (best effort: a file left over costs only disk space, and the next
/// checkpoint tries again).
fn remove_stale_checkpoints(dir: &Path, suffix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
        let stale_tagged = checkpoint_file(&name) && !stem.ends_with(suffix);
        let untagged = matches!(
            name.as_str(),
            "checkpoint.bpk" | "optimizer.bpk" | "optimizer.npy"
        );
        if stale_tagged || untagged || foreign_temp(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Draws one window per chain (in a random order) with its `t` and `ε`, normalised:
/// returns `(x(t), t, ε)` batches as flat vectors of `n` windows, with the windows' loss
/// weights where `observed` gives them (1 = observed, 0 = missing; [`crate::data::observed`]).
#[derive(Default)]
struct Windows {
    x: Vec<f32>,
    t: Vec<f32>,
    eps: Vec<f32>,
    /// The weight of each value of `eps` in the loss; empty: all 1.
    wts: Vec<f32>,
}

impl Windows {
    /// The weights of the windows `range` of `size` values each, if any.
    fn weights(&self, range: std::ops::Range<usize>, size: usize) -> Option<&[f32]> {
        (!self.wts.is_empty()).then(|| &self.wts[range.start * size..range.end * size])
    }

    /// All the weights, if any.
    fn all_weights(&self) -> Option<&[f32]> {
        (!self.wts.is_empty()).then_some(self.wts.as_slice())
    }
}

/// `precondition`: the target is the residual `ε − c(t) x(t)` that a preconditioned network
/// learns (see [`crate::score::precondition`]).
fn draw_windows(
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
fn loss(
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

fn normalised(a: &Array, data: &Dataset) -> Vec<f32> {
    let mut x = a.data.clone();
    data.info.to_model(&mut x);
    x
}

/// Which implementation runs the optimisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The fused trainer for MLP networks on the CPU device, burn's autodiff otherwise.
    #[default]
    Auto,
    /// burn's autodiff and AdamW, on any device and network.
    Burn,
    /// The fused CPU trainer (hand-written gradients, every core): MLP networks on the CPU only.
    Fused,
}

impl std::fmt::Display for Engine {
    /// The engine's name on the command line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::flag_value(self))
    }
}

impl Engine {
    /// The engine `Auto` stands for with `net` on `device`.
    pub fn resolve(self, net: &ScoreNetConfig, device: &Device) -> Result<Engine> {
        let mlp = matches!(net.backbone, Backbone::Mlp { .. } | Backbone::Ring { .. });
        let cpu = *device == Device::flex();
        match self {
            Engine::Auto if mlp && cpu => Ok(Engine::Fused),
            Engine::Auto => Ok(Engine::Burn),
            Engine::Fused if !mlp => Err(Error::config(
                "--engine fused",
                "trains MLP and ring networks only; U-Nets train with --engine burn",
            )),
            Engine::Fused if !cpu => Err(Error::config(
                "--engine fused",
                "runs on the CPU device only",
            )),
            e => Ok(e),
        }
    }
}

/// The optimisation state of one of the two engines.
enum Stepper {
    Burn {
        /// Always `Some` between steps (taken by the optimizer during one).
        model: Option<ScoreNet>,
        optim: burn::optim::ModuleOptimizer,
    },
    Fused {
        trainer: Box<CpuTrainer>,
        /// A network of the run's configuration on the plain device, to load weights into.
        template: ScoreNet,
        /// `(w, F, K)` of a ring network, whose rows are positions rather than windows.
        ring: Option<(usize, usize, usize)>,
        /// The average of the weights, when asked for.
        ema: Option<Box<Ema>>,
        /// The products' arithmetic.
        precision: Precision,
    },
}

/// The rows a ring network of windows of `w` states on `f` positions and kernel `k` trains
/// on: every position of every window, with its window's time, its own noise and weights.
fn ring_rows(
    x: &[f32],
    t: &[f32],
    eps: &[f32],
    wts: Option<&[f32]>,
    (w, f, k): (usize, usize, usize),
) -> Windows {
    let (x, t, eps) = ring::training_rows(x, t, eps, w, f, k);
    let wts = wts.map_or_else(Vec::new, |v| ring::windows_to_positions(v, w, f));
    Windows { x, t, eps, wts }
}

impl Stepper {
    /// One optimisation step on the windows `range` of `w`; returns the batch's mean loss.
    fn step(&mut self, w: &Windows, range: std::ops::Range<usize>, size: usize, lr: f64) -> f64 {
        match self {
            Stepper::Burn { model, optim } => {
                let m = model.take().expect("a model between steps");
                let device = m.devices()[0].clone();
                let l = loss(&m, w, range, size, &device);
                let value = l.clone().into_scalar::<f32>() as f64;
                let grads = GradientsParams::from_grads(l.backward(), &m);
                *model = Some(optim.step(lr, m, grads));
                value
            }
            Stepper::Fused {
                trainer, ring, ema, ..
            } => {
                let (x, t, eps, wts) = (
                    &w.x[range.start * size..range.end * size],
                    &w.t[range.clone()],
                    &w.eps[range.start * size..range.end * size],
                    w.weights(range.clone(), size),
                );
                let loss = match ring {
                    Some(shape) => {
                        let r = ring_rows(x, t, eps, wts, *shape);
                        trainer.step_weighted(&r.x, &r.t, &r.eps, r.all_weights(), lr)
                    }
                    None => trainer.step_weighted(x, t, eps, wts, lr),
                };
                if let Some(ema) = ema {
                    ema.update(&trainer.net, trainer.steps);
                }
                loss
            }
        }
    }

    /// The mean loss of each of `parts`, without gradients, by the network sampling uses (the
    /// weight average where one is kept), made ready once for all of them.
    fn losses(&mut self, parts: &[&Windows], size: usize, device: &Device) -> Vec<f64> {
        match self {
            Stepper::Burn { model, .. } => {
                let valid = model.as_ref().expect("a model").valid();
                parts
                    .iter()
                    .map(|w| {
                        loss(&valid, w, 0..w.t.len(), size, device).into_scalar::<f32>() as f64
                    })
                    .collect()
            }
            Stepper::Fused {
                trainer,
                ring,
                ema,
                precision,
                ..
            } => {
                let mut averaged = ema.as_ref().map(|e| {
                    CpuTrainer::new(e.net.clone(), trainer.adamw).with_precision(*precision)
                });
                let trainer = averaged.as_mut().unwrap_or(trainer);
                parts
                    .iter()
                    .map(|w| {
                        let wts = w.weights(0..w.t.len(), size);
                        match ring {
                            Some(shape) => {
                                let r = ring_rows(&w.x, &w.t, &w.eps, wts, *shape);
                                trainer.loss_weighted(&r.x, &r.t, &r.eps, r.all_weights())
                            }
                            None => trainer.loss_weighted(&w.x, &w.t, &w.eps, wts),
                        }
                    })
                    .collect()
            }
        }
    }

    /// The network sampling uses (the average of the weights, if kept), on the plain device.
    fn network(&self) -> ScoreNet {
        match self {
            Stepper::Fused {
                template,
                ema: Some(ema),
                ..
            } => {
                let mut net = template.clone();
                net.load_score_cpu(&ema.net);
                net
            }
            _ => self.raw_network(),
        }
    }

    /// The network the optimizer moves, on the plain device.
    fn raw_network(&self) -> ScoreNet {
        match self {
            Stepper::Burn { model, .. } => model.as_ref().expect("a model").valid(),
            Stepper::Fused {
                trainer, template, ..
            } => {
                let mut net = template.clone();
                net.load_score_cpu(&trainer.net);
                net
            }
        }
    }

    /// The losses of the windows of `w` at each noise level, and their mean over all windows.
    fn level_losses(&mut self, w: &Windows, size: usize, device: &Device) -> (f64, [f64; LEVELS]) {
        let mut parts: [Windows; LEVELS] = std::array::from_fn(|_| Windows::default());
        for (i, &t) in w.t.iter().enumerate() {
            let p = &mut parts[level(t)];
            p.x.extend_from_slice(&w.x[i * size..(i + 1) * size]);
            p.eps.extend_from_slice(&w.eps[i * size..(i + 1) * size]);
            if let Some(v) = w.weights(i..i + 1, size) {
                p.wts.extend_from_slice(v);
            }
            p.t.push(t);
        }
        let held: Vec<usize> = (0..LEVELS).filter(|&j| !parts[j].t.is_empty()).collect();
        let losses = self.losses(
            &held.iter().map(|&j| &parts[j]).collect::<Vec<_>>(),
            size,
            device,
        );
        let mut levels = [f64::NAN; LEVELS];
        let mut sum = 0.0;
        for (&j, l) in held.iter().zip(losses) {
            levels[j] = l;
            sum += l * parts[j].t.len() as f64;
        }
        (sum / w.t.len() as f64, levels)
    }
}

/// Trains a score network on `data` and writes the run folder `dir` (`config.json`,
/// `model.safetensors`, `stats.csv`, and checkpoints). With `resume`, continues from the last
/// checkpoint in `dir`. `progress` sees every epoch. The engine is chosen by
/// [`Engine::Auto`]; see [`train_with`].
#[allow(clippy::too_many_arguments)]
pub fn train(
    data: &Dataset,
    net: ScoreNetConfig,
    sde: VpSde,
    config: &TrainConfig,
    dir: &Path,
    resume: bool,
    device: &Device,
    progress: impl FnMut(&EpochStats),
) -> Result<Model> {
    train_with(
        data,
        net,
        sde,
        config,
        dir,
        resume,
        device,
        Engine::Auto,
        progress,
    )
}

/// [`train`] with the given engine. Both engines draw the same windows and apply the same
/// AdamW; they differ in floating-point rounding only. A run resumes with the engine that
/// wrote its checkpoint, and with the precision it started with when `config.precision` is
/// `Auto`.
#[allow(clippy::too_many_arguments)]
pub fn train_with(
    data: &Dataset,
    net: ScoreNetConfig,
    sde: VpSde,
    config: &TrainConfig,
    dir: &Path,
    resume: bool,
    device: &Device,
    engine: Engine,
    mut progress: impl FnMut(&EpochStats),
) -> Result<Model> {
    config.check()?;
    let engine = engine.resolve(&net, device)?;
    let ckpt_path = dir.join("checkpoint.json");
    // What a resumed run started with: its settings, and its checkpoint once it has one.
    let (saved, ckpt) = if resume {
        let saved = RunConfig::read(&dir.join("config.json"))?;
        let ckpt: Option<Checkpoint> = ckpt_path
            .exists()
            .then(|| read_json(&ckpt_path))
            .transpose()?;
        (Some(saved), ckpt)
    } else {
        (None, None)
    };
    if let Some(written) = ckpt.as_ref().map(|c| c.engine.unwrap_or(Engine::Burn))
        && written != engine
    {
        return Err(Error::config(
            "--resume",
            format!(
                "{} was written by the {} engine; resume with --engine {}",
                ckpt_path.display(),
                written,
                written
            ),
        ));
    }
    // A resumed run keeps the precision it started with unless another is asked for.
    let precision = match (&saved, config.precision) {
        (Some(saved), Precision::Auto) => saved.train.precision,
        (_, requested) => requested,
    }
    .resolve(net.fused_width(engine == Engine::Fused))?;
    if config.ema.is_some() && engine != Engine::Fused {
        return Err(Error::config(
            "--ema",
            "averages the weights of the fused engine only (MLP and ring networks on the CPU)",
        ));
    }
    let length = data.train.shape[1];
    if net.window > length && net.architecture == Architecture::Global {
        return Err(Error::config(
            "--global-length",
            format!(
                "{} states is longer than the {length}-state trajectories",
                net.window
            ),
        ));
    }
    if net.window > length {
        return Err(Error::config(
            "--order",
            format!(
                "window of {} states (k = {}) is longer than the {length}-state trajectories: \
                 give a smaller --order (at most {})",
                net.window,
                net.order(),
                (length.max(1) - 1) / 2
            ),
        ));
    }
    let run = RunConfig {
        data: data.info.clone(),
        net: net.clone(),
        sde,
        train: TrainConfig {
            precision,
            ..config.clone()
        },
        data_dir: data.dir.clone(),
    };
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let ad = device.clone().autodiff();
    let model = net.init_seeded(&ad, config.seed);
    let adamw = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_epsilon(1e-8);
    let mut stepper = match engine {
        Engine::Fused => {
            let template = model.valid();
            let cpu = template.score_cpu().expect("an MLP network");
            let ring = template
                .ring_kernel()
                .map(|k| (net.window, net.features, k));
            let ema = config.ema.map(|d| Box::new(Ema::new(d, &cpu)));
            Stepper::Fused {
                trainer: Box::new(
                    CpuTrainer::new(cpu, AdamW::new(config.weight_decay as f32))
                        .with_precision(precision),
                ),
                template,
                ring,
                ema,
                precision,
            }
        }
        _ => Stepper::Burn {
            model: Some(model),
            optim: adamw.init(),
        },
    };
    let mut stats = Vec::new();
    let mut start = 0;
    // The files of the checkpoint with file-name suffix `sfx`.
    let optim_path = |sfx: &str| dir.join(format!("optimizer{sfx}.bpk"));
    let moments_path = |sfx: &str| dir.join(format!("optimizer{sfx}.npy"));
    let bpk_path = |sfx: &str| dir.join(format!("checkpoint{sfx}.bpk"));
    if let Some(saved) = saved {
        // The data folder may have moved since: its contents are what must agree.
        let moved = RunConfig {
            data_dir: run.data_dir.clone(),
            ..saved
        };
        if moved != run {
            return Err(Error::config(
                "--resume",
                format!(
                    "{} was made with other settings or data",
                    dir.join("config.json").display()
                ),
            ));
        }
        if let Some(ckpt) = ckpt {
            let sfx = ckpt.suffix();
            let (optim_path, moments_path) = (optim_path(&sfx), moments_path(&sfx));
            match &mut stepper {
                Stepper::Burn { model, optim } => {
                    // The burnpack checkpoint keeps parameter ids, which key the optimizer state.
                    let path = bpk_path(&sfx);
                    let mut store = BurnpackStore::from_file(&path).auto_extension(false);
                    let model = model.as_mut().expect("a model");
                    model.load_from(&mut store).map_err(|e| Error::Weights {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                    let o = std::mem::replace(optim, adamw.init());
                    *optim = o.load(&optim_path).map_err(|e| Error::Weights {
                        path: optim_path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                Stepper::Fused {
                    trainer,
                    template,
                    ema,
                    ..
                } => {
                    let mut net = template.clone();
                    let weights = if ckpt.tagged {
                        dir.join(format!("checkpoint{sfx}.safetensors"))
                    } else {
                        dir.join("model.safetensors")
                    };
                    load_weights(&mut net, &weights)?;
                    trainer.net = net.score_cpu().expect("an MLP network");
                    trainer.net.set_precision(precision);
                    if let Some(ema) = ema {
                        load_weights(&mut net, &dir.join(format!("ema{sfx}.safetensors")))?;
                        ema.net = net.score_cpu().expect("an MLP network");
                    }
                    let m = read_npy(&moments_path)?;
                    let p = trainer.net.parameters();
                    if m.shape != [2, p] {
                        return Err(Error::config(
                            moments_path.display().to_string(),
                            format!(
                                "expected AdamW moments of shape [2, {p}], found {:?}",
                                m.shape
                            ),
                        ));
                    }
                    trainer.moment1 = m.data[..p].to_vec();
                    trainer.moment2 = m.data[p..].to_vec();
                    trainer.steps = ckpt.steps.unwrap_or(0);
                }
            }
            start = ckpt.epochs_done;
            stats = read_stats(&dir.join("stats.csv"))?;
            stats.truncate(start);
        }
    } else {
        write_json(&dir.join("config.json"), &run)?;
    }

    let train_x = normalised(&data.train, data);
    let valid_x = normalised(&data.valid, data);
    let train_w = data.observed.as_ref().map(|o| o.train.as_slice());
    let valid_w = data.observed.as_ref().map(|o| o.valid.as_slice());
    let w = net.window;
    let size = w * data.info.state_shape.iter().product::<usize>();
    let n_train = data.train.shape[0];
    // A checkpoint writes its files under names tagged with its epoch, each atomically, then
    // checkpoint.json naming them (the commit), then removes the previous checkpoint's files: a
    // kill at any moment leaves checkpoint.json naming complete files.
    let checkpoint = |stepper: &Stepper, stats: &[EpochStats], done: usize| -> Result<()> {
        let network = stepper.network();
        save_weights(&network, &dir.join("model.safetensors"))?;
        let mut ckpt = Checkpoint {
            epochs_done: done,
            engine: Some(engine),
            steps: None,
            tagged: true,
        };
        let sfx = ckpt.suffix();
        let (optim_path, moments_path) = (optim_path(&sfx), moments_path(&sfx));
        match stepper {
            Stepper::Burn { model, optim } => {
                let bpk = bpk_path(&sfx);
                let tmp = temp_path(&bpk);
                let mut store = BurnpackStore::from_file(&tmp)
                    .auto_extension(false)
                    .overwrite(true);
                let model = model.as_ref().expect("a model");
                model.save_into(&mut store).map_err(|e| Error::Weights {
                    path: bpk.clone(),
                    reason: e.to_string(),
                })?;
                std::fs::rename(&tmp, &bpk).map_err(io)?;
                let tmp = temp_path(&optim_path);
                optim.save(&tmp).map_err(|e| Error::Weights {
                    path: optim_path.clone(),
                    reason: e.to_string(),
                })?;
                std::fs::rename(&tmp, &optim_path).map_err(io)?;
            }
            Stepper::Fused { trainer, ema, .. } => {
                let p = trainer.net.parameters();
                let mut m = trainer.moment1.clone();
                m.extend_from_slice(&trainer.moment2);
                write_npy(&moments_path, &Array::new(vec![2, p], m))?;
                let raw = dir.join(format!("checkpoint{sfx}.safetensors"));
                if ema.is_some() {
                    save_weights(&network, &dir.join(format!("ema{sfx}.safetensors")))?;
                    save_weights(&stepper.raw_network(), &raw)?;
                } else {
                    save_weights(&network, &raw)?;
                }
                ckpt.steps = Some(trainer.steps);
            }
        }
        write_stats(&dir.join("stats.csv"), stats)?;
        write_json(&ckpt_path, &ckpt)?;
        remove_stale_checkpoints(dir, &sfx);
        Ok(())
    };

    for epoch in start..config.epochs {
        let lr = config.lr_at(epoch);
        let mut rng = chain_rng(config.seed, epoch as u64);
        let windows = draw_windows(
            &train_x,
            train_w,
            &data.train.shape,
            w,
            &sde,
            config.precondition,
            &mut rng,
        );
        let mut total = 0.0;
        for b0 in (0..n_train).step_by(config.batch_size) {
            let range = b0..(b0 + config.batch_size).min(n_train);
            total += stepper.step(&windows, range.clone(), size, lr) * range.len() as f64;
        }
        // Validation: one window per validation chain, its own stream of draws.
        let mut vrng = chain_rng(splitmix64(config.seed ^ 0x5EED), epoch as u64);
        let vw = draw_windows(
            &valid_x,
            valid_w,
            &data.valid.shape,
            w,
            &sde,
            config.precondition,
            &mut vrng,
        );
        let (valid_loss, valid_levels) = stepper.level_losses(&vw, size, device);
        let row = EpochStats {
            epoch: epoch + 1,
            train_loss: total / n_train as f64,
            valid_loss,
            lr,
            valid_levels,
        };
        stats.push(row);
        progress(&row);
        if (epoch + 1) % config.checkpoint_every == 0 || epoch + 1 == config.epochs {
            checkpoint(&stepper, &stats, epoch + 1)?;
        }
    }
    Ok(Model {
        config: run,
        net: stepper.network(),
    })
}

#[cfg(test)]
mod tests {
    use super::foreign_temp;

    #[test]
    fn the_temporary_files_of_other_processes_are_foreign() {
        let me = std::process::id();
        let other = me.wrapping_add(1);
        assert!(foreign_temp(&format!(".model.safetensors.tmp{other}")));
        // The scratch file a weight store builds beside our temporary path, killed mid-save.
        assert!(foreign_temp(&format!(
            ".model.safetensors.tmp{other}.{other}-20.tmpAbc12.safetensors"
        )));
        assert!(!foreign_temp(&format!(".model.safetensors.tmp{me}")));
        assert!(!foreign_temp(&format!(
            ".model.safetensors.tmp{me}.{me}-3.tmp"
        )));
        assert!(!foreign_temp("model.safetensors"));
        assert!(!foreign_temp(".hidden.tmpnotes"));
    }
}
