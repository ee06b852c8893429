//! `sda train`: denoising score matching on windows of simulated trajectories.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sda::data::{Dataset, features};
use sda::score::net::{Architecture, ScoreNetConfig};
use sda::score::sde::{Schedule, VpSde};
use sda::train::{LrSchedule, TrainConfig, train};

use crate::common::{bar, device};

/// Train a score network on the trajectories of a data folder (made by `sda simulate`) and
/// write the run folder: config.json, model.safetensors, stats.csv (epoch, train loss, valid
/// loss, lr) and checkpoints. The defaults are the paper's Lorenz-63 settings.
#[derive(clap::Args)]
pub struct Args {
    /// Data folder with system.json, train.npy and valid.npy.
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Markov-blanket order k: the network sees windows of 2k+1 states (local architecture).
    #[arg(long, default_value_t = 2)]
    pub order: usize,
    /// `local` (windows, composed over any length) or `global` (whole trajectories of
    /// --global-length states: the paper's baseline).
    #[arg(long, value_enum, default_value_t = Architecture::Local)]
    pub architecture: Architecture,
    /// Trajectory length of a global network.
    #[arg(long, default_value_t = 65)]
    pub global_length: usize,
    /// Hidden width of the residual MLP.
    #[arg(long, default_value_t = 256)]
    pub width: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 5)]
    pub depth: usize,
    /// Size of the time embedding.
    #[arg(long, default_value_t = 32)]
    pub embedding: usize,
    /// Epochs; an epoch is one random window per training chain.
    #[arg(long, default_value_t = 4096)]
    pub epochs: usize,
    /// Windows per optimisation step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Initial learning rate (AdamW).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-3)]
    pub weight_decay: f64,
    /// Learning-rate decay over the epochs.
    #[arg(long, value_enum, default_value_t = LrSchedule::Linear)]
    pub schedule: LrSchedule,
    /// Noise schedule of the diffusion.
    #[arg(long, value_enum, default_value_t = Schedule::Cos)]
    pub noise_schedule: Schedule,
    /// Epochs between checkpoints.
    #[arg(long, default_value_t = 64)]
    pub checkpoint_every: usize,
    /// Continue a killed run from its last checkpoint (same flags as the first run).
    #[arg(long)]
    pub resume: bool,
    /// Random seed (initialisation and every draw).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: Args) -> Result<()> {
    let dev = device(&a.device)?;
    let data = Dataset::load(&a.data).with_context(|| format!("--data {}", a.data.display()))?;
    let window = match a.architecture {
        Architecture::Local => 2 * a.order + 1,
        Architecture::Global => a.global_length,
    };
    let net = ScoreNetConfig {
        architecture: a.architecture,
        window,
        features: features(&data.info.state_shape),
        width: a.width,
        depth: a.depth,
        embedding: a.embedding,
    };
    let config = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        weight_decay: a.weight_decay,
        lr_schedule: a.schedule,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
    };
    let sde = VpSde {
        schedule: a.noise_schedule,
        eta: 1e-3,
    };
    let pb = bar(a.epochs as u64, "train");
    let t0 = std::time::Instant::now();
    let mut last = None;
    let model = train(&data, net, sde, &config, &a.output, a.resume, &dev, |s| {
        pb.set_position(s.epoch as u64);
        pb.set_message(format!(
            "loss {:.4} valid {:.4} lr {:.1e}",
            s.train_loss, s.valid_loss, s.lr
        ));
        last = Some(*s);
    })
    .with_context(|| format!("training into {}", a.output.display()))?;
    pb.finish();
    let secs = t0.elapsed().as_secs_f64();
    if let Some(s) = last {
        println!(
            "trained {} (k = {}, width {}, depth {}) for {} epochs in {:.1} s: train loss {:.4}, valid loss {:.4} → {}",
            data.info.system.name(),
            model.config.net.order(),
            a.width,
            a.depth,
            s.epoch,
            secs,
            s.train_loss,
            s.valid_loss,
            a.output.display()
        );
    } else {
        println!(
            "nothing to do: {} already finished its {} epochs",
            a.output.display(),
            a.epochs
        );
    }
    Ok(())
}
