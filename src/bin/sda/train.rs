//! `sda train`: denoising score matching on windows of simulated trajectories.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sda::data::Dataset;
use sda::import::read_context;
use sda::model::Model;
use sda::nn::cpu::Precision;
use sda::output::{Existing, Folder, check_folder, remove_outputs};
use sda::score::net::{Architecture, ScoreNetConfig, UNetPreset};
use sda::score::sde::{Schedule, VpSde};
use sda::train::{
    Engine, EpochStats, LrSchedule, NetSpec, Network, TrainConfig, default_batch_lr, is_run_file,
    train_with, use_data_context,
};

use crate::common::{bar, device};

/// Removes the files of a training run from `dir` (what `--force` replaces), keeping the rest.
fn remove_run(dir: &std::path::Path) -> Result<()> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("--output {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_run_file(n))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(remove_outputs(dir, &names)?)
}

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
    /// The network's body: auto (a U-Net for fields, a ring network for states on a ring, as
    /// Lorenz-96 or data imported with --layout ring, an MLP otherwise), mlp, ring or unet.
    #[arg(long, value_enum, default_value_t = Network::Auto)]
    pub network: Network,
    /// Hidden width of the residual MLP [default: 256; 128 for ring networks].
    #[arg(long)]
    pub width: Option<usize>,
    /// Residual blocks of the MLP.
    #[arg(long, default_value_t = 5)]
    pub depth: usize,
    /// U-Net size for field data (Kolmogorov): `paper` (96, 192, 384 channels, 3 blocks) or
    /// `reduced` (fits a 2-core CPU). --hidden, --blocks and --kernel override it (`--preset`
    /// before: that name is the sampler's settings in `assimilate`, `sample` and `study`).
    #[arg(long = "unet", alias = "preset", value_enum, default_value_t = UNetPreset::Paper)]
    pub preset: UNetPreset,
    /// U-Net hidden channels per level, e.g. 32,64,128.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// U-Net residual blocks per level.
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Convolution kernel size (odd): of the U-Net [default: the --unet size's], or the positions a
    /// ring network sees around each position [default: 9].
    #[arg(long)]
    pub kernel: Option<usize>,
    /// Size of the time embedding [default: 32 for the MLP, the --unet size's for the U-Net].
    #[arg(long)]
    pub embedding: Option<usize>,
    /// Epochs; an epoch is one random window per training chain.
    #[arg(long, default_value_t = 4096)]
    pub epochs: usize,
    /// Windows per optimisation step [default: 64 for Lorenz-type data, 32 for fields].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Initial learning rate (AdamW) [default: 1e-3 for Lorenz-type data, 2e-4 for fields].
    #[arg(long)]
    pub lr: Option<f64>,
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
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Replace the run already in --output (without it, an existing run is never overwritten).
    #[arg(long)]
    pub force: bool,
    /// Random seed (initialisation and every draw).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training engine: auto (the fused CPU trainer for MLP networks on the CPU, burn's
    /// autodiff otherwise), burn, or fused. A resumed run keeps the engine it started with.
    #[arg(long, value_enum, default_value_t = Engine::Auto)]
    pub engine: Engine,
    /// Arithmetic of the fused engine's matrix products (weights and optimizer stay float32).
    /// auto is bf16 with the fused engine on CPUs with AVX512-BF16 when --width is a multiple
    /// of 16, f32 otherwise; config.json records what ran. A resumed run keeps the precision
    /// it started with unless one is given.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and
    /// sample with it: model.safetensors holds the average, the checkpoint the raw weights.
    /// The fused engine only.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Learn the residual of the Gaussian denoiser: the noise estimate is c(t) x(t) + the
    /// network's output, c = σ/(μ² + σ²), so that the estimate is right at high noise from the
    /// first epoch and a briefly trained prior does not diverge in a sampler's first steps
    /// (docs/guard.md).
    #[arg(long)]
    pub precondition: bool,
    /// Device: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(a: Args) -> Result<()> {
    // The output first: an existing run or a mistyped path fails now, not after training.
    let existing = Existing::from_flags(a.force, a.resume);
    let holds = check_folder(
        &Folder {
            path: &a.output,
            flag: "--output",
            what: "a trained run",
            markers: &["config.json", "model.safetensors"],
            resumable: true,
            bytes: None,
        },
        existing,
    )?;
    if a.resume && !holds {
        bail!(
            "--resume: {} holds no run to continue (no config.json)",
            a.output.display()
        );
    }
    let dev = device(&a.device)?;
    let data = Dataset::load(&a.data).with_context(|| format!("--data {}", a.data.display()))?;
    let shape = &data.info.state_shape;
    let net = network(&a, &data)?;
    let (batch, lr) = default_batch_lr(shape);
    let config = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size.unwrap_or(batch),
        lr: a.lr.unwrap_or(lr),
        weight_decay: a.weight_decay,
        lr_schedule: a.schedule,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
        precision: a.precision,
        ema: a.ema,
        precondition: a.precondition,
    };
    let sde = VpSde {
        schedule: a.noise_schedule,
        eta: 1e-3,
    };
    if existing == Existing::Replace && holds {
        remove_run(&a.output)?;
    }
    if let Some(o) = &data.observed {
        println!(
            "masked loss: {:.1} % of the training values are observed; the loss counts those only",
            100.0 * o.train_share()
        );
    }
    let pb = bar(a.epochs as u64, "train");
    let t0 = std::time::Instant::now();
    let mut last = None;
    let engine = a.engine;
    let model = train_with(
        &data,
        net,
        sde,
        &config,
        Some(&a.output),
        a.resume,
        &dev,
        engine,
        |s| {
            pb.set_position(s.epoch as u64);
            pb.set_message(format!(
                "loss {:.4} valid {:.4} lr {:.1e}",
                s.train_loss, s.valid_loss, s.lr
            ));
            last = Some(*s);
        },
    )
    .with_context(|| format!("training into {}", a.output.display()))?;
    pb.finish();
    let secs = t0.elapsed().as_secs_f64();
    report(&a, &data, &model, last, secs)
}

/// The network of the flags for the data's states (with the data folder's context).
fn network(a: &Args, data: &Dataset) -> Result<ScoreNetConfig> {
    let shape = &data.info.state_shape;
    let mut net = NetSpec {
        order: a.order,
        architecture: a.architecture,
        global_length: a.global_length,
        network: a.network,
        width: a.width,
        depth: a.depth,
        preset: a.preset,
        hidden: a.hidden.clone(),
        blocks: a.blocks,
        kernel: a.kernel,
        embedding: a.embedding,
    }
    .config(shape, data.info.system.layout())?;
    let context = read_context(&a.data, &data.info)
        .with_context(|| format!("--data {}", a.data.display()))?;
    use_data_context(&mut net, &data.info.system, context);
    Ok(net)
}

/// What the training did: its last epoch and the whole run's final losses, or that the run
/// was already done.
fn report(
    a: &Args,
    data: &Dataset,
    model: &Model,
    last: Option<EpochStats>,
    secs: f64,
) -> Result<()> {
    if let Some(s) = last {
        println!(
            "trained {} (k = {}, {}, precision {}) for {} epochs in {:.1} s: train loss {:.4}, valid loss {:.4} → {}",
            data.info.system.name(),
            model.config.net.order(),
            model.config.net.describe(),
            model.config.train.precision,
            s.epoch,
            secs,
            s.train_loss,
            s.valid_loss,
            a.output.display()
        );
        // The whole run's losses, epochs of earlier (resumed) sessions included.
        let all = sda::train::read_stats(&a.output.join("stats.csv"))?;
        let tail = (all.len() / 10).max(1);
        println!(
            "{} (mean of the last {})",
            sda::train::levels_line(&sda::train::mean_levels(&all, tail)),
            if tail == 1 {
                "epoch".to_string()
            } else {
                format!("{tail} epochs")
            }
        );
        if let Some(w) = sda::train::convergence_warning(&all) {
            println!("{w}");
        }
    } else {
        println!(
            "nothing to do: {} already finished its {} epochs",
            a.output.display(),
            a.epochs
        );
    }
    Ok(())
}
