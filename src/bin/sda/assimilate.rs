//! `sda assimilate` and `sda sample`: posterior and prior trajectories from a trained model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sda::assimilate::{Fit, Observed, SampleConfig, fused, sample_counted};
use sda::coords::{Layout, write_netcdf};
use sda::data::features;
use sda::evaluate::{calibration_warning, residual_verdict};
use sda::io::{Array, read_npy, write_npy};
use sda::model::Model;
use sda::nn::cpu::Precision;
use sda::output::{Existing, Parts, check_file, fingerprint};
use sda::score::Evaluations;
use sda::score::autoregressive::{Conditioning, Sampling};
use sda::score::guidance::{Likelihood, Solver};
use sda::score::net::Composition;
use sda::score::operator::Operator;
use sda::score::sampler::{Corrector, Grid, Method};

use crate::common::{bar, device, noise};
use crate::shard::{Opened, ShardArgs, Sharded};
pub use sda::score::preset::LikelihoodKind;
use sda::score::preset::{Flags, Preset, Settings};
use sda::shard::Shards;

/// The title of a NetCDF output of `assimilate`.
const POSTERIOR: &str = "posterior samples p(x | y) of sda assimilate";
/// The title of a NetCDF output of `sample`.
const PRIOR: &str = "prior samples p(x) of sda sample";

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

fn load(a: &SamplerArgs) -> Result<(burn::prelude::Device, Model)> {
    let dev = device(&a.device)?;
    let model =
        Model::load(&a.model, &dev).with_context(|| format!("--model {}", a.model.display()))?;
    Ok((dev, model))
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

/// The sampler settings of the flags, with the precision resolved for `model` on `dev`.
fn config(
    a: &SamplerArgs,
    settings: &Settings,
    model: &Model,
    dev: &burn::prelude::Device,
) -> Result<SampleConfig> {
    let net = &model.config.net;
    Ok(SampleConfig {
        length: a.length,
        samples: a.samples,
        batch: a.batch,
        composition: a.composition,
        precision: a.precision.resolve(net.fused_width(fused(net, dev)))?,
        seed: a.seed,
        guard: !a.no_guard,
        sampling: a.sampling,
        window: a.window,
        context: a.context,
        conditioning: a.conditioning,
        context_std: a.context_std,
        ..Default::default()
    }
    .with(settings))
}

/// Reads observations and noise for `operator`, checking everything against the model.
pub fn observed(
    model: &Model,
    path: &Path,
    operator: &str,
    noise_spec: &str,
    length: usize,
) -> Result<Observed> {
    observed_for(
        &model.config.data.state_shape,
        path,
        operator,
        noise_spec,
        length,
    )
}

/// Reads observations and noise for `operator` on trajectories of `length` states of `shape`.
pub fn observed_for(
    shape: &[usize],
    path: &Path,
    operator: &str,
    noise_spec: &str,
    length: usize,
) -> Result<Observed> {
    let operator = Operator::parse(operator).context("--operator")?;
    let expected = operator.output_shape(length, shape).context("--operator")?;
    let y = read_npy(path).with_context(|| "--observations")?;
    let std = noise(noise_spec, &expected)?;
    let o = Observed {
        operator,
        y,
        noise: std,
    };
    o.check(shape, length, &format!("--observations {}", path.display()))?;
    Ok(o)
}

/// Whether `path` is a table of observations (`.csv`).
pub fn is_table(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The record a table of observations is placed on (by station, place or date) and where
/// the window starts in it (`--start`).
#[derive(Clone, Copy)]
pub struct OnRecord<'a> {
    /// The data the model was trained on.
    pub info: &'a sda::data::SystemInfo,
    /// `--start`.
    pub start: Option<&'a str>,
}

/// Observations from a table (`.csv`, which brings its own operator and noise: `operator` and
/// `noise` must then be `None`; placed on `on`'s record where it names stations, places or
/// dates, with a line that says how) or from a `.npy` of `y` with `operator` and `noise`.
/// Returns them with the record step a table of dates placed the first state at.
pub fn observed_any(
    shape: &[usize],
    path: &Path,
    operator: Option<&str>,
    noise_spec: Option<&str>,
    length: usize,
    on: Option<OnRecord>,
) -> Result<(Observed, Option<usize>)> {
    if is_table(path) {
        if operator.is_some() || noise_spec.is_some() {
            bail!(
                "--operator/--noise: not given with a table of observations ({} defines both)",
                path.display()
            );
        }
        let (o, start) = match on {
            Some(on) => {
                let ctx = sda::locate::Context {
                    info: on.info,
                    length,
                    start: on.start,
                };
                let (o, summary, start) = Observed::from_table_on(path, &ctx)?;
                if !summary.is_empty() {
                    // On stderr: stdout may be JSON (`sda evaluate --json`).
                    eprintln!("{summary}");
                }
                (o, start)
            }
            None => (Observed::from_table(path).context("--observations")?, None),
        };
        o.check(shape, length, &format!("--observations {}", path.display()))
            .context("--observations")?;
        return Ok((o, start));
    }
    match (operator, noise_spec) {
        (Some(op), Some(noise)) => Ok((observed_for(shape, path, op, noise, length)?, None)),
        _ => bail!(
            "--operator and --noise: needed with .npy observations ({}); a .csv table brings its own",
            path.display()
        ),
    }
}

/// Whether `path` is a NetCDF output (`.nc`).
fn is_netcdf(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("nc"))
}

/// The coordinates of a `.nc` --output (`None` for `.npy`), checked before sampling.
///
/// `table`: the observations are a table, which `--start` also places; `placed`: the record
/// step a table of dates placed the first state at, which dates the samples without `--start`.
fn layout_of(
    a: &SamplerArgs,
    model: &Model,
    title: &str,
    table: bool,
    placed: Option<usize>,
) -> Result<Option<Layout>> {
    if !is_netcdf(&a.output) {
        if a.start.is_some() && !table {
            bail!(
                "--start: places a table of dates (.csv observations) or dates the samples of a \
                 NetCDF --output (.nc); {} is neither",
                a.output.display()
            );
        }
        return Ok(None);
    }
    let start = a.start.clone().or(placed.map(|k| k.to_string()));
    Ok(Some(Layout::of(
        &model.config.data,
        a.samples,
        a.length,
        start.as_deref(),
        title,
    )?))
}

/// Writes the samples to --output: .npy, or .nc with `layout`.
fn write_output(a: &SamplerArgs, x: &Array, layout: Option<&Layout>) -> Result<()> {
    match layout {
        Some(l) => write_netcdf(&a.output, x, l),
        None => write_npy(&a.output, x),
    }
    .with_context(|| format!("--output {}", a.output.display()))
}

/// Checks that --output can take the samples (and the batches kept meanwhile) before sampling.
fn check_output(a: &SamplerArgs, model: &Model) -> Result<()> {
    let values = (a.samples * a.length * features(&model.config.data.state_shape)) as u64;
    let kept = if a.samples > a.batch { 2 } else { 1 };
    Ok(check_file(
        &a.output,
        "--output",
        Some(kept * 4 * values + 4096),
    )?)
}

/// What the samples depend on besides the flags: the model's files and the observations.
fn fingerprint_of(a: &SamplerArgs, cfg: &SampleConfig, obs: Option<&Observed>) -> Result<String> {
    let file = |name: &str| -> Result<String> {
        let p = a.model.join(name);
        let bytes = std::fs::read(&p).with_context(|| format!("--model {}", p.display()))?;
        Ok(fingerprint(&bytes))
    };
    let obs = obs.map(|o| {
        let bytes: Vec<u8> =
            o.y.data
                .iter()
                .chain(&o.noise)
                .flat_map(|v| v.to_le_bytes())
                .collect();
        format!("{} {}", o.operator, fingerprint(&bytes))
    });
    // The guard stops a run but never changes its samples.
    let cfg = SampleConfig {
        guard: true,
        ..cfg.clone()
    };
    Ok(serde_json::json!({
        "sampler": format!("{cfg:?}"),
        "config": file("config.json")?,
        "weights": file("model.safetensors")?,
        "observations": obs,
    })
    .to_string())
}

/// Draws the samples batch by batch (a shard: its batches only); with more than one batch,
/// each completed batch is kept in OUTPUT.parts/ so that `--resume` finishes a killed run with
/// the same samples. The output (a shard's part) is written before returning.
fn draw(
    model: &Model,
    obs: Option<&Observed>,
    cfg: &SampleConfig,
    dev: &burn::prelude::Device,
    a: &SamplerArgs,
    sharded: Option<&Sharded>,
    layout: Option<&Layout>,
) -> Result<(Array, f64, Evaluations)> {
    cfg.check(model)?;
    let all = cfg.samples.div_ceil(cfg.batch);
    let mine = sharded.map_or(0..all, |s| s.shard.range(all));
    let batches = mine.len();
    let per_batch = cfg.steps_per_batch(&model.config.net);
    let pb = bar((batches * per_batch) as u64, "sample");
    let t0 = std::time::Instant::now();
    let existing = Existing::from_flags(a.force, a.resume);
    let parts = if batches > 1 && sharded.is_none() {
        Some(Parts::open(
            &a.output,
            &fingerprint_of(a, cfg, obs)?,
            existing,
        )?)
    } else {
        None
    };
    let mut data = Vec::new();
    let mut evals = Evaluations::default();
    let mut shape = Vec::new();
    for (done, i) in mine.clone().enumerate() {
        let b = cfg.batch.min(cfg.samples - i * cfg.batch);
        let kept = parts.as_ref().map(|p| p.get(i)).transpose()?.flatten();
        let x = match kept {
            Some(x) => x,
            None => {
                let piece = SampleConfig {
                    samples: b,
                    first_batch: i,
                    ..cfg.clone()
                };
                let offset = done * per_batch;
                let (x, e) = match sample_counted(model, obs, &piece, dev, |s| {
                    pb.set_position((offset + s) as u64)
                }) {
                    Ok(v) => v,
                    Err(err) => {
                        pb.finish_and_clear();
                        // Nothing to resume: no folder of parts is left behind either.
                        if let Some(p) = parts {
                            p.discard_if_empty()?;
                        }
                        return Err(anyhow::Error::from(err).context(not_written(&a.output, i)));
                    }
                };
                // Every batch makes the same passes per sample.
                evals = e;
                if let Some(p) = &parts {
                    p.put(i, &x)?;
                }
                x
            }
        };
        pb.set_position(((done + 1) * per_batch) as u64);
        shape = x.shape.clone();
        data.extend(x.data);
    }
    pb.finish_and_clear();
    if shape.is_empty() {
        // A shard without batches (more shards than batches).
        shape = vec![0, cfg.length];
        shape.extend(&model.config.data.state_shape);
    }
    shape[0] = data.len() / shape[1..].iter().product::<usize>().max(1);
    let x = Array::new(shape, data);
    if sharded.is_none() {
        write_output(a, &x, layout)?;
    }
    if let Some(p) = parts {
        p.finish()?;
    }
    Ok((x, t0.elapsed().as_secs_f64(), evals))
}

/// `--gamma auto`: γ from the validation trajectories (or the run folder's cache), reported.
fn calibrate(
    a: &Args,
    model: &Model,
    obs: &Observed,
    cfg: &SampleConfig,
    dev: &burn::prelude::Device,
) -> Result<f64> {
    let run = &a.sampler.model;
    let path = sda::calibrate::validation_file(model, run, a.calibration_data.as_deref())?;
    let valid = sda::data::read_trajectories(&path, &model.config.data.state_shape)
        .context("--gamma auto")?;
    let budget = sda::calibrate::Budget {
        windows: a.calibration,
        ..Default::default()
    };
    let pb = bar(0, "calibrate γ");
    let c = sda::calibrate::gamma(model, obs, cfg, &valid, &budget, Some(run), dev, |d, n| {
        pb.set_length(n as u64);
        pb.set_position(d as u64);
    })?;
    pb.finish_and_clear();
    let cached = sda::calibrate::cache_file(run, &c.key);
    println!(
        "--gamma auto on {} ({}):",
        path.display(),
        if c.fresh {
            format!("ran now, cached in {}", cached.display())
        } else {
            format!("read from {}", cached.display())
        }
    );
    println!("{}", c.report());
    Ok(c.gamma)
}

/// What a run stopped in batch `i` leaves: no output, and the batches done in OUTPUT.parts/.
fn not_written(output: &Path, i: usize) -> String {
    match i {
        0 => format!("--output {} not written", output.display()),
        _ => format!(
            "--output {} not written ({i} completed batches kept for --resume)",
            output.display()
        ),
    }
}

/// The prior's final losses (its run folder's stats.csv), so that a weak prior is seen where
/// its posterior is used; and the warning of `sda train` where the training was not done.
fn report_training(run: &Path) {
    let Ok(stats) = sda::train::read_stats(&run.join("stats.csv")) else {
        return;
    };
    if let Some(s) = stats.last() {
        println!(
            "  prior: {} epochs, final train loss {:.4}, valid loss {:.4}",
            s.epoch, s.train_loss, s.valid_loss
        );
    }
    if let Some(w) = sda::train::convergence_warning(&stats) {
        println!("  prior's {w}");
    }
}

fn report_prior(model: &Model, x: &Array) {
    let failed = x
        .data
        .chunks(x.data.len() / x.shape[0])
        .filter(|s| s.iter().any(|v| !v.is_finite()))
        .count();
    if failed > 0 {
        println!("  {failed} of {} samples contain NaN or inf", x.shape[0]);
    }
    let system = &model.config.data.system;
    if let sda::mcs::System::External(_) = system {
        println!(
            "  log p(x_2:L | x_1): not available (an imported system has no simulator, so no \
             transition density)"
        );
    }
    let chain = system.chain().ok();
    let xs: Vec<f64> = x.data.iter().map(|&v| v as f64).collect();
    if let Some(lp) = chain.and_then(|c| c.log_prob_trajectories(&xs, x.shape[1])) {
        let finite: Vec<f64> = lp.into_iter().filter(|v| v.is_finite()).collect();
        if !finite.is_empty() {
            println!(
                "  mean log p(x_2:L | x_1) under the true transition: {:.1}",
                finite.iter().sum::<f64>() / finite.len() as f64
            );
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    // Bad or meaningless flags fail before the model loads.
    let settings = a.sampler.preset.resolve(&Flags {
        likelihood: a.likelihood,
        solver: a.solver,
        iterations: a.iterations,
        gamma: a.gamma.map(|g| match g {
            Gamma::Value(v) => v,
            // A placeholder that resolves like any γ; calibration replaces it below.
            Gamma::Auto => 0.03,
        }),
        zeta: a.zeta,
        ..a.sampler.flags()
    })?;
    let auto = a.gamma == Some(Gamma::Auto);
    if !auto && (a.calibration != 4 || a.calibration_data.is_some()) {
        bail!("--calibration and --calibration-data go with --gamma auto only");
    }
    if auto && a.calibration == 0 {
        bail!("--calibration 0: the calibration needs at least 1 validation window");
    }
    let (dev, model) = load(&a.sampler)?;
    let (obs, placed) = observations_of(&a, &model)?;
    let mut cfg = config(&a.sampler, &settings, &model, &dev)?;
    let layout = layout_of(
        &a.sampler,
        &model,
        POSTERIOR,
        is_table(&a.observations),
        placed,
    )?;
    check_output(&a.sampler, &model)?;
    let mut settings = settings;
    if auto {
        let gamma = calibrate(&a, &model, &obs, &cfg, &dev)?;
        settings.likelihood = Likelihood::Sda { gamma };
        cfg.likelihood = settings.likelihood;
    }
    let sharded = match crate::shard::open(&a.sampler.shard, &a.sampler.output)? {
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Some(s),
        Opened::Whole => None,
    };
    let (x, secs, evals) = draw(
        &model,
        Some(&obs),
        &cfg,
        &dev,
        &a.sampler,
        sharded.as_ref(),
        layout.as_ref(),
    )?;
    if let Some(s) = sharded {
        return finish_shard(s, &x, &cfg);
    }
    println!(
        "{} posterior trajectories of {} states (preset {}: {}; precision {}; {}) in {:.1} s, \
         {evals} network passes per sample → {}",
        cfg.samples,
        cfg.length,
        sda::flag_value(&a.sampler.preset),
        settings.describe(),
        cfg.precision,
        cfg.describe_sampling(&model.config.net),
        secs,
        a.sampler.output.display()
    );
    report_posterior(&a.sampler.model, &model, &x, &obs)
}

/// What `assimilate` says of its samples (and of the prior, from its run folder).
fn report_posterior(run: &Path, model: &Model, x: &Array, obs: &Observed) -> Result<()> {
    report_training(run);
    report_prior(model, x);
    let fit = Fit::of(x, obs, &model.config.data.state_shape)?;
    let ll = &fit.log_likelihood;
    let (res, noise, z, share) = (fit.residual_std, fit.noise_std, fit.rms_z, fit.outside);
    println!(
        "  mean log p(y | x): {:.1}",
        ll.iter().sum::<f64>() / ll.len() as f64
    );
    println!("  std(A(x) − y): {res:.3} (noise std {noise:.3})");
    println!(
        "  rms((A(x) − y) / σ_y): {z:.3} ({}); {:.1} % of y outside the samples' 95 % interval \
         (≈ 5 % when calibrated)",
        residual_verdict(z),
        100.0 * share
    );
    if let Some(w) = calibration_warning(z, share) {
        println!("{w}");
    }
    Ok(())
}

pub fn run_sample(a: SampleArgs) -> Result<()> {
    let settings = Settings {
        likelihood: Likelihood::Sda { gamma: 0.0 },
        ..a.sampler.preset.resolve(&a.sampler.flags())?
    };
    let (dev, model) = load(&a.sampler)?;
    let cfg = config(&a.sampler, &settings, &model, &dev)?;
    let layout = layout_of(&a.sampler, &model, PRIOR, false, None)?;
    check_output(&a.sampler, &model)?;
    let sharded = match crate::shard::open(&a.sampler.shard, &a.sampler.output)? {
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Some(s),
        Opened::Whole => None,
    };
    let (x, secs, evals) = draw(
        &model,
        None,
        &cfg,
        &dev,
        &a.sampler,
        sharded.as_ref(),
        layout.as_ref(),
    )?;
    if let Some(s) = sharded {
        return finish_shard(s, &x, &cfg);
    }
    println!(
        "{} prior trajectories of {} states ({} steps of {}, C = {}; precision {}; {}) in {:.1} \
         s, {evals} network passes per sample → {}",
        cfg.samples,
        cfg.length,
        cfg.steps,
        sda::flag_value(&cfg.method),
        cfg.corrections,
        cfg.precision,
        cfg.describe_sampling(&model.config.net),
        secs,
        a.sampler.output.display()
    );
    report_prior(&model, &x);
    Ok(())
}

/// Keeps a shard's samples as its part.
fn finish_shard(s: Sharded, x: &Array, cfg: &SampleConfig) -> Result<()> {
    let all = cfg.samples.div_ceil(cfg.batch);
    let r = s.shard.range(all);
    let what = format!(
        "{} trajectories (batches {}..{} of {all})",
        x.shape[0], r.start, r.end
    );
    s.finish("npy", &sda::io::npy_bytes(x), &what)
}

/// The samples of every part, in order, written to --output (after the same checks as a run).
fn merge_parts(
    a: &SamplerArgs,
    model: &Model,
    shards: Shards,
    title: &str,
    placed: Option<usize>,
) -> Result<Array> {
    let layout = layout_of(a, model, title, true, placed)?;
    check_output(a, model)?;
    let x = shards.concatenated()?;
    if x.shape[0] != a.samples {
        bail!(
            "{}: the parts hold {} trajectories, not the {} of --samples",
            shards.dir().display(),
            x.shape[0],
            a.samples
        );
    }
    write_output(a, &x, layout.as_ref())?;
    let n = shards.manifest().count;
    shards.remove()?;
    println!(
        "{} trajectories of {} states merged from {n} shards → {}",
        a.samples,
        a.length,
        a.output.display()
    );
    Ok(x)
}

/// The observations of `assimilate`'s flags, checked against the model, and where a table of
/// dates placed the first state in the record (which dates a .nc output without `--start`).
fn observations_of(a: &Args, model: &Model) -> Result<(Observed, Option<usize>)> {
    let (o, start) = observed_any(
        &model.config.data.state_shape,
        &a.observations,
        a.operator.as_deref(),
        a.noise.as_deref(),
        a.sampler.length,
        Some(OnRecord {
            info: &model.config.data,
            start: a.sampler.start.as_deref(),
        }),
    )?;
    // Observations the model's transforms refuse fail now, before anything is drawn.
    o.transformed(&model.config.data, a.sampler.length)?;
    Ok((o, start))
}

/// `sda merge` of a sharded `assimilate`.
pub fn merge(a: Args, shards: Shards) -> Result<()> {
    let (_, model) = load(&a.sampler)?;
    let (obs, placed) = observations_of(&a, &model)?;
    let x = merge_parts(&a.sampler, &model, shards, POSTERIOR, placed)?;
    report_posterior(&a.sampler.model, &model, &x, &obs)
}

/// `sda merge` of a sharded `sample`.
pub fn merge_sample(a: SampleArgs, shards: Shards) -> Result<()> {
    let (_, model) = load(&a.sampler)?;
    let x = merge_parts(&a.sampler, &model, shards, PRIOR, None)?;
    report_prior(&model, &x);
    Ok(())
}
