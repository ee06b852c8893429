//! The flags of `sda study` (both systems').

use std::path::PathBuf;

use sda::nn::cpu::Precision;
use sda::score::autoregressive::Sampling;
use sda::score::guidance::Solver;
use sda::score::net::Composition;
use sda::score::preset::{LikelihoodKind, Preset};
use sda::score::sampler::{Corrector, Grid, Method};
use sda::train::Network;

use crate::shard::ShardArgs;

/// `sda study lorenz96` instead runs the classical data-assimilation benchmark (DAPPER's
/// sakov2008 at dko 1 and 4, spantini2019, and EnSF's arctan case; --cases, --truth-seeds,
/// --cycles; see docs/classical.md) and SDA on the same observations (a prior trained once per
/// grid under DIR/models, the --sda-* flags; the sampler from --preset, --steps, --corrections,
/// --tau, --gamma, each list giving rows; --no-sda skips it), and writes DIR/lorenz96.{csv,md}
/// and figures.
///
/// Run the paper's Lorenz-63 study: for each Markov order k (training the models if missing,
/// with the paper's widths), each observation scenario ("lo": every 8th state, first coordinate,
/// std 0.05 normalised = 0.4; "hi": every state, std 0.25 = 2.0) and each number of Langevin
/// corrections C, assimilate M test trajectories and compare with a bootstrap particle filter
/// (W1, log p(x_2:L | x_1), log p(y | x)). Likelihoods, samplers, step counts and MMPS
/// iterations can be compared too: every combination of the lists given runs, and each row
/// records its network evaluations per sample and wall time. Writes DIR/rows.csv (every row),
/// DIR/summary.csv, a summary table on stdout, DIR/figure3.png (W1, log p(x), log p(y|x) against
/// C, and W1 against network evaluations per sample) and DIR/trajectories.png. Rerunning with the
/// same DIR and --resume reuses everything already computed.
#[derive(clap::Args)]
pub struct Args {
    /// The system (only lorenz63 has a study).
    pub system: String,
    /// Study folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Markov orders k of the local models.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    pub orders: Vec<usize>,
    /// Langevin corrections C. [preset paper or stable: 0,1,2,4,8,16 (the paper's Figure 3);
    /// fast and accurate: the preset's]
    #[arg(long, value_delimiter = ',')]
    pub corrections: Vec<usize>,
    /// Named sampler and likelihood settings, as `sda assimilate --preset`; the flags below
    /// override them. [default paper: the study reproduces the paper's, whose likelihood is
    /// SDA's; `--preset stable` runs it with `sda assimilate`'s default]
    #[arg(long, value_enum, default_value_t = Preset::Paper)]
    pub preset: Preset,
    /// Likelihoods to compare: sda, dps, mmps. [default: the preset's]
    #[arg(long, value_delimiter = ',', value_enum)]
    pub likelihoods: Vec<LikelihoodKind>,
    /// Samplers to compare: pc, ddim, heun, eab2. [default: the preset's]
    #[arg(long, value_delimiter = ',', value_enum)]
    pub samplers: Vec<Method>,
    /// How trajectories are drawn, to compare: joint (all states at once) and/or
    /// autoregressive (window after window, the model's window with k context states; see
    /// `sda assimilate --sampling`). Also for lorenz96's SDA rows.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "joint")]
    pub sampling: Vec<Sampling>,
    /// MMPS Krylov iterations K to compare (mmps rows only). [default: the preset's]
    #[arg(long, value_delimiter = ',')]
    pub iterations: Vec<usize>,
    /// MMPS solver: cg or gmres. [default cg]
    #[arg(long, value_enum)]
    pub solver: Option<Solver>,
    /// Time grid: t or logsnr. [default: the preset's]
    #[arg(long, value_enum)]
    pub grid: Option<Grid>,
    /// DDIM's η in [0, 1] (--samplers ddim). [default 0]
    #[arg(long)]
    pub eta: Option<f64>,
    /// Corrector step: sda (τ) or fixed (δ). [default: the preset's]
    #[arg(long, value_enum)]
    pub corrector: Option<Corrector>,
    /// δ of the fixed corrector. [default 0.1]
    #[arg(long)]
    pub delta: Option<f64>,
    /// Scenarios, the system's: lorenz63 lo and/or hi (x every 8th state, std 0.4; every state,
    /// std 2); lorenz96 sakov2008, sakov2008-dko4 and/or spantini2019 (all three by default).
    #[arg(long, value_delimiter = ',', default_value = "lo,hi")]
    pub cases: Vec<String>,
    /// Test trajectories M.
    #[arg(long, default_value_t = 64)]
    pub trajectories: usize,
    /// States per trajectory.
    #[arg(long, default_value_t = 65)]
    pub length: usize,
    /// Posterior samples per assimilation.
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    /// Sampler steps T to compare. [default: the preset's]
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// Langevin step scale τ of the sda corrector. [default 0.25]
    #[arg(long)]
    pub tau: Option<f64>,
    /// γ of the SDA likelihood. [default 0.03]
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Do not stop a sampling run whose iterates diverge (NaN or inf, values far outside the
    /// training range, an exploding guidance term): for experiments only.
    #[arg(long)]
    pub no_guard: bool,
    /// How window scores compose over a trajectory: `mean` (every covering window) or
    /// `centre` (the paper's). Rows of each are kept apart in rows.csv.
    #[arg(long, value_enum, default_value_t = Composition::default())]
    pub composition: Composition,
    /// Arithmetic of the network's matrix products in the assimilations. auto is bf16 on the
    /// CPU device of CPUs with AVX512-BF16, f32 otherwise. rows.csv records what ran, so rows
    /// of both can share a folder. Models the study trains use sda train's default (auto).
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
    /// Particles of the ground-truth filter.
    #[arg(long, default_value_t = 16384)]
    pub particles: usize,
    /// Filter trajectories kept.
    #[arg(long, default_value_t = 1024)]
    pub keep: usize,
    /// Training epochs of missing models.
    #[arg(long, default_value_t = 4096)]
    pub epochs: usize,
    /// Use this data folder (made by `sda simulate lorenz63`) instead of DIR/data.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device for training and sampling: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Continue or extend the study in --output: reuse its data, models, filters and rows, and
    /// run only what is missing (more k, C, scenarios or trajectories).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Discard the study in --output (rows, samples, observations, filters, models, its data
    /// folder) and start over.
    #[arg(long)]
    pub force: bool,
    /// lorenz96: truth seeds (one truth and observation record per seed and case).
    #[arg(long, value_delimiter = ',', default_value = "3000")]
    pub truth_seeds: Vec<u64>,
    /// lorenz96: observation cycles per truth [default: 2400 for sakov2008, 1000 at dko = 4,
    /// 500 for spantini2019].
    #[arg(long)]
    pub cycles: Option<usize>,
    /// lorenz96: run the classical methods only (no SDA prior is trained or sampled).
    #[arg(long)]
    pub no_sda: bool,
    /// lorenz96: Markov orders k of the SDA priors (one row per order; each model is trained
    /// once under DIR/models and reused).
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub sda_orders: Vec<usize>,
    /// lorenz96: the SDA priors' networks, one row each: `ring` (one MLP shared along the
    /// ring, on --sda-kernel positions around each) and/or `mlp` (one MLP on whole windows).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ring")]
    pub sda_networks: Vec<Network>,
    /// lorenz96: hidden width of the SDA priors' residual MLP [default: 256 for mlp, 128 for
    /// ring].
    #[arg(long)]
    pub sda_width: Option<usize>,
    /// lorenz96: positions a ring prior sees around each position (odd).
    #[arg(long, default_value_t = 9)]
    pub sda_kernel: usize,
    /// lorenz96: decay of the SDA priors' weight average (`sda train --ema`); none by default.
    #[arg(long)]
    pub sda_ema: Option<f64>,
    /// lorenz96: training epochs of the SDA priors (one window per training chain each).
    #[arg(long, default_value_t = 8000)]
    pub sda_epochs: usize,
    /// lorenz96: simulated chains the SDA priors train on (80 % train, 10 % valid).
    #[arg(long, default_value_t = 2048)]
    pub sda_chains: usize,
    /// lorenz96: states per simulated training chain.
    #[arg(long, default_value_t = 64)]
    pub sda_length: usize,
    /// lorenz96: posterior samples of each SDA assimilation (its ensemble).
    #[arg(long, default_value_t = 16)]
    pub sda_samples: usize,
    /// (lorenz63: the assimilations, every order × scenario × trajectory × setting, are cut
    /// into N contiguous runs; lorenz96: the (case, truth seed) pairs. The data and models are
    /// made once, by the first shard that needs them, the others waiting for it.)
    #[command(flatten)]
    pub shard: ShardArgs,
}
