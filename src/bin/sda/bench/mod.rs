//! `sda bench`: speed of the score networks on any device: training steps per second and the
//! time of one guided evaluation (forward + input gradient through the network, the SDA
//! likelihood, docs/method.md §5), for the Lorenz-63 MLP (§7) and the Kolmogorov U-Net (§8).
//! `benches/pytorch_lorenz.py` and `benches/pytorch_unet.py` measure the same networks, losses
//! and guided evaluations in PyTorch.
//!
//! The code is the same on every device (the CPU twin of a GPU figure is the same call on
//! `--device cpu`); only the fused CPU MLP is CPU-only and is reported on the CPU alone.

mod networks;
mod timing;

use anyhow::{Result, bail};
use burn::tensor::FloatDType;
use sda::score::net::UNetPreset;
use serde_json::{Value, json};

use self::networks::{lorenz, ring, unet};
use crate::common::{device, device_name};

/// Which network to measure.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// The Lorenz-63 local score: k = 2, MLP width 256, depth 5 (the paper's, docs/method.md §7).
    Lorenz,
    /// The Kolmogorov local score: k = 2, U-Net on 5 states of (u, v) + the forcing (the paper's,
    /// docs/method.md §8).
    Unet,
    /// The Lorenz-96 ring score: k = 2, 40 positions, kernel 9, width 128, depth 5 (what
    /// `sda train` picks for Lorenz-96): training only, burn and fused.
    Ring,
    /// Lorenz and U-Net, one after the other.
    All,
}

/// The device's default float type for every tensor of the run.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    /// 32-bit floats (matrix products may still use TF32 tensor cores where the backend's
    /// autotuner finds them faster and the device has them).
    F32,
    /// Half precision everywhere: weights, optimiser state, activations and the sampler state.
    /// A speed probe only: not safe for training or sampling.
    F16,
    /// bfloat16 everywhere (same caveat; Vulkan devices usually lack bf16 arithmetic).
    Bf16,
}

/// Measure training steps per second and the time of one guided evaluation (forward + input
/// gradient) of the Lorenz-63 MLP (B trajectories of L states) and/or the Kolmogorov U-Net
/// (one trajectory of each of --lengths, scenario 1 observations `stride:4|coarsen:8`), and the
/// wall time of a whole U-Net assimilation (T steps, C corrections). Figures are medians after
/// warm-up, each reported with the device's name.
#[derive(clap::Args)]
pub struct Args {
    /// Network(s) to measure.
    #[arg(long, value_enum, default_value_t = Network::Lorenz)]
    pub network: Network,
    /// Training steps to time [default: 200 for Lorenz, 50 for the U-Net] (`--steps` before).
    #[arg(long = "train-steps", alias = "steps")]
    pub steps: Option<usize>,
    /// Untimed training steps and evaluations first (kernel compilation on GPUs)
    /// [default: 20 for Lorenz, 5 for the U-Net].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Windows per training step [default: 64 for Lorenz, 32 for the U-Net].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Lorenz: trajectories per guided evaluation, one figure each [default: 64 on the CPU,
    /// 64,1024 on GPUs].
    #[arg(long, value_delimiter = ',')]
    pub trajectories: Option<Vec<usize>>,
    /// Lorenz: states per trajectory.
    #[arg(long, default_value_t = 65)]
    pub length: usize,
    /// Guided evaluations to time (median reported) [default: 30 for Lorenz, 10 for the U-Net].
    #[arg(long)]
    pub repeats: Option<usize>,
    /// U-Net size: `paper` (96, 192, 384 channels, 3 blocks) or `reduced` (CPU-sized), as
    /// `sda train --unet` (`--preset` before).
    #[arg(long = "unet", alias = "preset", value_enum, default_value_t = UNetPreset::Paper)]
    pub preset: UNetPreset,
    /// U-Net: side of the square grid of (u, v) fields (a multiple of 8).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// U-Net: lengths (states) of the one trajectory of each guided evaluation, one figure
    /// each (`--states` before).
    #[arg(
        long = "lengths",
        alias = "states",
        value_delimiter = ',',
        default_value = "8,64"
    )]
    pub states: Vec<usize>,
    /// U-Net: states of the timed assimilation (0: skip it).
    #[arg(long, default_value_t = 8)]
    pub assimilation_states: usize,
    /// U-Net: sampler steps T of the timed assimilation.
    #[arg(long, default_value_t = 256)]
    pub sampler_steps: usize,
    /// U-Net: Langevin corrections C of the timed assimilation.
    #[arg(long, default_value_t = 1)]
    pub corrections: usize,
    /// Float type of every tensor (f16/bf16: speed probes, see `--help`; `--precision`
    /// before: that name is the matrix products' arithmetic in every other command).
    #[arg(long = "dtype", alias = "precision", value_enum, default_value_t = Dtype::F32)]
    pub precision: Dtype,
    /// Print one JSON object per network (one per line) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// One network's figures: table lines and the JSON object.
struct Report {
    title: String,
    lines: Vec<(String, f64)>,
    json: Value,
}

pub fn run(a: Args) -> Result<()> {
    let mut dev = device(&a.device)?;
    let precision = match a.precision {
        Dtype::F32 => "f32",
        Dtype::F16 => "f16",
        Dtype::Bf16 => "bf16",
    };
    let dtype = match a.precision {
        Dtype::F32 => None,
        Dtype::F16 => Some(FloatDType::F16),
        Dtype::Bf16 => Some(FloatDType::BF16),
    };
    if let Some(dtype) = dtype {
        if !dev.supports_dtype(dtype) {
            bail!(
                "--dtype {precision}: {} has no {precision} arithmetic",
                a.device
            );
        }
        dev.configure(dtype)
            .map_err(|e| anyhow::anyhow!("--dtype {precision}: {e:?}"))?;
    }
    let name = device_name(&a.device, &dev);
    let mut reports = Vec::new();
    if matches!(a.network, Network::Lorenz | Network::All) {
        reports.push(lorenz(&a, &dev)?);
    }
    if matches!(a.network, Network::Unet | Network::All) {
        reports.push(unet(&a, &dev)?);
    }
    if a.network == Network::Ring {
        reports.push(ring(&a, &dev)?);
    }
    for mut r in reports {
        if a.json {
            r.json["device"] = json!(a.device);
            r.json["device_name"] = json!(name);
            r.json["precision"] = json!(precision);
            r.json["threads"] = json!(rayon::current_num_threads());
            println!("{}", rounded(r.json));
        } else {
            println!(
                "sda bench — {} on {name} ({}, {precision})",
                r.title, a.device
            );
            for (what, value) in &r.lines {
                println!("  {what:<52} {value:>10.2}");
            }
        }
    }
    Ok(())
}

/// `v` with every non-integer number rounded to 4 decimals, for reading.
fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().expect("f64");
            json!((x * 1e4).round() / 1e4)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}
