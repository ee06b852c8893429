//! Denoising score matching on windows of trajectories (docs/method.md §3, §7).
//!
//! An epoch draws one window at a random position of every training chain, in a random
//! order; each sample gets its own `t ~ U(0, 1)` and `ε ~ N(0, I)`, and the loss is
//! `mean((ε_φ(μ x + σ ε, t) − ε)²)`. AdamW with a learning rate that decays per epoch.
//!
//! All randomness of epoch `e` comes from an RNG seeded by `(seed, e)`, and a checkpoint holds
//! the weights and the optimizer state, so a resumed run ends exactly where an uninterrupted one
//! would.

mod checkpoint;
mod ema;
mod engine;
mod network;
mod stats;
mod windows;

pub use crate::model::{LrSchedule, TrainConfig};
pub use checkpoint::is_run_file;
pub use ema::Ema;
pub use engine::Engine;
pub use network::{NetSpec, Network, RING_KERNEL, RING_WIDTH, default_batch_lr, use_data_context};
pub use stats::{
    EpochStats, LEVELS, convergence_warning, level, levels_line, mean_levels, read_stats,
    write_stats,
};

use std::path::Path;

use burn::optim::AdamWConfig;
use burn::prelude::*;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::{read_json, write_json};
use crate::mcs::{chain_rng, splitmix64};
use crate::model::{Model, RunConfig};
use crate::nn::cpu::Precision;
use crate::score::net::{Architecture, ScoreNetConfig};
use crate::score::sde::VpSde;
use checkpoint::Checkpoint;
use engine::Stepper;
use windows::{draw_windows, normalised};

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
        Some(dir),
        resume,
        device,
        Engine::Auto,
        progress,
    )
}

/// [`train`] with the given engine, writing the run folder `dir`, or nothing when `dir` is
/// `None` (the network is trained in memory: no checkpoint, no `stats.csv`; `resume` then has
/// nothing to resume and is refused). Both engines draw the same windows and apply the same
/// AdamW; they differ in floating-point rounding only. A run resumes with the engine that
/// wrote its checkpoint, and with the precision it started with when `config.precision` is
/// `Auto`.
#[allow(clippy::too_many_arguments)]
pub fn train_with(
    data: &Dataset,
    net: ScoreNetConfig,
    sde: VpSde,
    config: &TrainConfig,
    dir: Option<&Path>,
    resume: bool,
    device: &Device,
    engine: Engine,
    mut progress: impl FnMut(&EpochStats),
) -> Result<Model> {
    config.check()?;
    let engine = engine.resolve(&net, device)?;
    // What a resumed run started with: its settings, and its checkpoint once it has one.
    let (saved, ckpt) = read_resumed(dir, resume, engine)?;
    let precision = check_run(data, &net, config, engine, saved.as_ref())?;
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
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let adamw = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_epsilon(1e-8);
    let mut stepper = Stepper::new(engine, &net, config, precision, device, &adamw);
    let (start, mut stats) = match (saved, dir) {
        (Some(saved), Some(dir)) => {
            resume_from(&run, saved, ckpt, &mut stepper, dir, &adamw, precision)?
        }
        _ => {
            if let Some(dir) = dir {
                write_json(&dir.join("config.json"), &run)?;
            }
            (0, Vec::new())
        }
    };
    let epochs = Epochs::new(data, &net);
    for epoch in start..config.epochs {
        let row = epochs.run(&mut stepper, config, &sde, epoch, device);
        stats.push(row);
        progress(&row);
        if let Some(dir) = dir
            && ((epoch + 1) % config.checkpoint_every == 0 || epoch + 1 == config.epochs)
        {
            checkpoint::save(&stepper, &stats, epoch + 1, engine, dir)?;
        }
    }
    Ok(Model {
        config: run,
        net: stepper.network(),
    })
}

/// What the run in `dir` started with, if `resume`: its settings, and its checkpoint once it
/// has one, which must have been written by `engine`.
fn read_resumed(
    dir: Option<&Path>,
    resume: bool,
    engine: Engine,
) -> Result<(Option<RunConfig>, Option<Checkpoint>)> {
    let Some(dir) = dir else {
        if resume {
            return Err(Error::config(
                "--resume",
                "a run trained in memory has no folder to resume from",
            ));
        }
        return Ok((None, None));
    };
    let ckpt_path = dir.join("checkpoint.json");
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
    Ok((saved, ckpt))
}

/// Checks the settings against the engine and the data; returns the run's precision.
fn check_run(
    data: &Dataset,
    net: &ScoreNetConfig,
    config: &TrainConfig,
    engine: Engine,
    saved: Option<&RunConfig>,
) -> Result<Precision> {
    // A resumed run keeps the precision it started with unless another is asked for.
    let precision = match (saved, config.precision) {
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
    Ok(precision)
}

/// Checks that the settings of a resumed run, `saved`, are those of `run`, then loads its
/// checkpoint, if it has one, into `stepper`: returns the epochs done and their statistics.
fn resume_from(
    run: &RunConfig,
    saved: RunConfig,
    ckpt: Option<Checkpoint>,
    stepper: &mut Stepper,
    dir: &Path,
    adamw: &AdamWConfig,
    precision: Precision,
) -> Result<(usize, Vec<EpochStats>)> {
    // The data folder may have moved since: its contents are what must agree.
    let moved = RunConfig {
        data_dir: run.data_dir.clone(),
        ..saved
    };
    if moved != *run {
        return Err(Error::config(
            "--resume",
            format!(
                "{} was made with other settings or data",
                dir.join("config.json").display()
            ),
        ));
    }
    let Some(ckpt) = ckpt else {
        return Ok((0, Vec::new()));
    };
    checkpoint::load(stepper, &ckpt, dir, adamw, precision)?;
    let start = ckpt.epochs_done;
    let mut stats = read_stats(&dir.join("stats.csv"))?;
    stats.truncate(start);
    Ok((start, stats))
}

/// The normalised training and validation data that the epochs draw their windows from.
struct Epochs<'a> {
    data: &'a Dataset,
    train_x: Vec<f32>,
    valid_x: Vec<f32>,
    /// States per window.
    w: usize,
    /// Values per window.
    size: usize,
}

impl<'a> Epochs<'a> {
    fn new(data: &'a Dataset, net: &ScoreNetConfig) -> Self {
        let w = net.window;
        Self {
            data,
            train_x: normalised(&data.train, data),
            valid_x: normalised(&data.valid, data),
            w,
            size: w * data.info.state_shape.iter().product::<usize>(),
        }
    }

    /// Epoch `epoch` (from 0): a step per batch of its training windows, then the validation
    /// losses; returns its statistics.
    fn run(
        &self,
        stepper: &mut Stepper,
        config: &TrainConfig,
        sde: &VpSde,
        epoch: usize,
        device: &Device,
    ) -> EpochStats {
        let (data, w, size) = (self.data, self.w, self.size);
        let train_w = data.observed.as_ref().map(|o| o.train.as_slice());
        let valid_w = data.observed.as_ref().map(|o| o.valid.as_slice());
        let n_train = data.train.shape[0];
        let lr = config.lr_at(epoch);
        let mut rng = chain_rng(config.seed, epoch as u64);
        let windows = draw_windows(
            &self.train_x,
            train_w,
            &data.train.shape,
            w,
            sde,
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
            &self.valid_x,
            valid_w,
            &data.valid.shape,
            w,
            sde,
            config.precondition,
            &mut vrng,
        );
        let (valid_loss, valid_levels) = stepper.level_losses(&vw, size, device);
        EpochStats {
            epoch: epoch + 1,
            train_loss: total / n_train as f64,
            valid_loss,
            lr,
            valid_levels,
        }
    }
}
