//! The flags of `sda assimilate` and `sda sample`.

use std::path::PathBuf;

use sda::nn::cpu::Precision;
use sda::score::autoregressive::{Conditioning, Sampling};
use sda::score::guidance::Solver;
use sda::score::net::Composition;
use sda::score::sampler::{Corrector, Grid, Method};

use crate::shard::ShardArgs;
pub use sda::score::preset::LikelihoodKind;
use sda::score::preset::{Flags, Preset};

/// Sampler flags shared by `assimilate` and `sample`.
#[derive(clap::Args)]
pub struct SamplerArgs {
    /// Run folder of a trained model (config.json, model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// States per trajectory (any length ≥ the model's window for local models).
    #[arg(long, default_value_t = 65)]
    pub length: usize,
    /// Number of trajectories to draw.
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    /// Trajectories per batch: bounds memory for any --samples and --length.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Named settings of the sampler and the likelihood: stable (the paper's sampler, PC with
    /// 256 steps and C = 1, with the MMPS likelihood: on the grid of docs/guard.md it
    /// diverged only where the prior's own steps did), paper (the same sampler with SDA's likelihood, γ = 0.03), fast (paper's
    /// with 64 steps and C = 2) or accurate (paper's with C = 4), the last two as measured on
    /// Lorenz-63 (docs/mmps.md). Any flag below given explicitly wins over the preset; --gamma,
    /// --zeta or --iterations alone choose their likelihood.
    #[arg(long, value_enum, default_value_t = Preset::default())]
    pub preset: Preset,
    /// Sampler: pc (Euler predictor and Langevin corrector, the paper's), ddim (η), heun
    /// (second order, two evaluations per step), eab2 (second-order exponential multistep, one
    /// evaluation per step). [default pc]
    #[arg(long, value_enum)]
    pub sampler: Option<Method>,
    /// Sampler steps T. [default 256; preset fast: 64]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Time grid: t (uniform in t, the paper's) or logsnr (uniform in log(μ/σ)). [default
    /// t]
    #[arg(long, value_enum)]
    pub grid: Option<Grid>,
    /// DDIM's stochasticity η in [0, 1] (0: deterministic, 1: DDPM); --sampler ddim only.
    /// [default 0]
    #[arg(long)]
    pub eta: Option<f64>,
    /// Langevin corrections C per step. [default 1; preset fast: 2, accurate: 4]
    #[arg(long)]
    pub corrections: Option<usize>,
    /// Corrector step: sda (δ = τ / mean(ε²), the paper's) or fixed (δ = --delta, Appa's).
    /// [default sda]
    #[arg(long, value_enum)]
    pub corrector: Option<Corrector>,
    /// Langevin step scale τ of the sda corrector. [default 0.25]
    #[arg(long)]
    pub tau: Option<f64>,
    /// Step δ of the fixed corrector, > 0. [default 0.1]
    #[arg(long)]
    pub delta: Option<f64>,
    /// How the window scores compose over the trajectory: `mean` averages every window that
    /// covers a state, `centre` keeps the centre of one window (the paper's).
    #[arg(long, value_enum, default_value_t = Composition::default())]
    pub composition: Composition,
    /// Arithmetic of the network's matrix products on the CPU (bf16: about twice the multiply
    /// rate on CPUs with AVX512-BF16). auto is bf16 for MLP models on the CPU device of CPUs
    /// with AVX512-BF16 when the model's width is a multiple of 16, f32 otherwise.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output: .npy (float32, shape (samples, length, *state), physical units) or .nc (NetCDF-3:
    /// the samples with the data's coordinates, variable names, units and long names, values
    /// of the record's fixed mask as _FillValue).
    #[arg(long)]
    pub output: PathBuf,
    /// Where the first state lies in the model's record: a time step N, SPLIT:N (the first
    /// step of window N of train, valid or test, e.g. test:0) or a date (2005-05-14). It places
    /// a table of dates (default: the table's earliest date) and dates the time coordinate of
    /// a .nc --output (default: where a table of dates placed the window, else the state
    /// indices 0 … L − 1).
    #[arg(long)]
    pub start: Option<String>,
    /// Device: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Finish a killed run: batches it completed (kept in OUTPUT.parts/ until the output is
    /// written) are reused, and the result is the one an uninterrupted run gives. Needs the
    /// same flags, model and observations.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Discard the completed batches of a killed run (OUTPUT.parts/) and start over.
    #[arg(long)]
    pub force: bool,
    /// Do not stop a run whose iterates diverge (NaN or inf, values far outside the training
    /// range, an exploding guidance term): for experiments only.
    #[arg(long)]
    pub no_guard: bool,
    /// How trajectories are drawn: joint (all states at once, the paper's) or autoregressive
    /// (window after window, each given the last --context states already drawn and guided by
    /// the observations of its new states; docs/guidance.md §8).
    #[arg(long, value_enum, default_value_t = Sampling::Joint)]
    pub sampling: Sampling,
    /// States per autoregressive window, at least the model's window. [default: the model's
    /// window, 2k + 1]
    #[arg(long)]
    pub window: Option<usize>,
    /// Context states of each autoregressive window (1 .. window − 1): the window advances by
    /// window − context states. [default: k]
    #[arg(long)]
    pub context: Option<usize>,
    /// How an autoregressive window is conditioned on its context: both (a Gaussian likelihood
    /// of std 0.01 normalised units, with the likelihood's γ, and replacement by the context's
    /// perturbation at every step), guidance (the likelihood alone) or replacement
    /// (inpainting alone).
    #[arg(long, value_enum, default_value_t = Conditioning::Both)]
    pub conditioning: Conditioning,
    /// The std of the context's likelihood (--conditioning both or guidance), in training
    /// standard deviations.
    #[arg(long, default_value_t = sda::score::autoregressive::CONTEXT_STD)]
    pub context_std: f64,
    /// (With --shard, the unit of work is the batch: shards take contiguous runs of
    /// batches, so use at least as many batches, --samples / --batch, as shards.)
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// Draw N posterior trajectories of L states given observations y = A(x) + noise, with the
/// predictor-corrector sampler and the SDA likelihood (or DPS).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Observations: y (.npy) of the shape the operator produces, e.g. (9, 1) for
    /// 'stride:8|select:0' on 65 states; or a table (.csv) with a header and one row per
    /// measurement, columns time,index,value,std (state index, flat index within the state,
    /// value, noise std), which defines the operator and the noise itself. A table may give a
    /// date of the model's record instead of time, and a station, or a place lat,lon, with a
    /// variable where the state has several, instead of index (docs/real-data.md).
    #[arg(long)]
    pub observations: PathBuf,
    /// Observation operator (with .npy observations), applied left to right in physical units,
    /// terms joined by '|', e.g. 'stride:8|select:0' (see the README for every term).
    #[arg(long)]
    pub operator: Option<String>,
    /// Observation noise std (with .npy observations, physical units): a number, or a .npy of
    /// per-observation stds.
    #[arg(long, allow_hyphen_values = true)]
    pub noise: Option<String>,
    /// Likelihood approximation: sda (the paper's), dps, or mmps (moment matching, Tweedie's
    /// covariance). [default: the preset's; mmps for stable, sda for the others]
    #[arg(long, value_enum)]
    pub likelihood: Option<LikelihoodKind>,
    /// Krylov solver of MMPS: cg or gmres (for networks whose Jacobian is far from symmetric).
    /// [default cg]
    #[arg(long, value_enum)]
    pub solver: Option<Solver>,
    /// Krylov iterations K of MMPS, ≥ 1: each costs one network backward pass (and one forward
    /// pass, except on the fused CPU network). [default 1]
    #[arg(long)]
    pub iterations: Option<usize>,
    /// γ of the SDA likelihood: a number > 0, or auto (chosen on the data folder's validation
    /// trajectories, observed with this run's operator and noise: the γ whose residuals are
    /// closest to calibrated; cached in the run folder). [default 0.03, the paper's Lorenz
    /// evaluation]
    #[arg(long, allow_hyphen_values = true, value_parser = parse_gamma)]
    pub gamma: Option<Gamma>,
    /// With --gamma auto: validation windows assimilated per candidate γ (4 samples each).
    #[arg(long, default_value_t = 4)]
    pub calibration: usize,
    /// With --gamma auto: the data folder whose valid.npy it calibrates on. [default: the one
    /// the model was trained on, as its config.json records]
    #[arg(long)]
    pub calibration_data: Option<PathBuf>,
    /// ζ of the DPS likelihood. [default 1]
    #[arg(long)]
    pub zeta: Option<f64>,
}

/// Draw trajectories from the trained prior p(x), without observations.
#[derive(clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub sampler: SamplerArgs,
}

/// `--gamma`: a value, or chosen by calibration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gamma {
    /// This γ.
    Value(f64),
    /// Chosen on the validation trajectories ([`sda::calibrate`]).
    Auto,
}

fn parse_gamma(s: &str) -> std::result::Result<Gamma, String> {
    if s == "auto" {
        return Ok(Gamma::Auto);
    }
    s.parse::<f64>()
        .map(Gamma::Value)
        .map_err(|_| format!("`{s}` is neither a number nor auto"))
}

impl SamplerArgs {
    /// The sampler flags given (likelihood flags are added by `assimilate`).
    pub fn flags(&self) -> Flags {
        Flags {
            sampler: self.sampler,
            steps: self.steps,
            grid: self.grid,
            eta: self.eta,
            corrections: self.corrections,
            corrector: self.corrector,
            tau: self.tau,
            delta: self.delta,
            ..Flags::default()
        }
    }
}
