//! `sda study lorenz63`: the paper's Lorenz-63 evaluation (Figure 3, docs/method.md §7) in one
//! command. Every expensive piece (data, models, filters, rows) is cached in the output folder,
//! so an interrupted study resumes where it stopped and a larger study reuses a smaller one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sda::assimilate::{Observed, SampleConfig, fused, observe, sample_counted};
use sda::data::{Dataset, read_trajectories, simulate};
use sda::evaluate::{evaluate, finite_samples};
use sda::filter::{FilterConfig, particle_filter};
use sda::flag_value;
use sda::io::{Array, read_npy, write_atomic, write_npy};
use sda::mcs::System;
use sda::metrics::wasserstein1;
use sda::model::Model;
use sda::nn::cpu::Precision;
use sda::output::{Existing, Folder, check_folder, remove_outputs};
use sda::plot::{Panel, Series, panels, trajectories};
use sda::score::autoregressive::Sampling;
use sda::score::guidance::{Likelihood, Solver};
use sda::score::net::{Composition, ScoreNetConfig};
use sda::score::operator::Operator;
use sda::score::sampler::{Corrector, Grid, Method};
use sda::score::sde::VpSde;
use sda::train::Network;
use sda::train::{TrainConfig, train};

use crate::common::{bar, device};
use crate::shard::{Opened, ShardArgs, Sharded};
use sda::score::preset::{Flags, LikelihoodKind, Preset, Settings, likelihood_name};
use sda::shard::{Shards, locked};

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
    /// Scenarios: lo and/or hi.
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

/// How a study runs: whole, as one shard of its assimilations, or merging the shards' rows.
pub enum Mode {
    Whole,
    Shard(Sharded),
    Merge(Shards),
}

/// What a study writes in its folder (`data` only when it simulates its own).
pub const STUDY_FILES: [&str; 8] = [
    "rows.csv",
    "summary.csv",
    "figure3.png",
    "trajectories.png",
    "samples",
    "obs",
    "models",
    "data",
];

/// A scenario: operator and noise std in physical units.
fn scenario(case: &str) -> Result<(&'static str, f32)> {
    match case {
        "lo" => Ok(("stride:8|select:0", 0.05 * 8.0)),
        "hi" => Ok(("stride:1|select:0", 0.25 * 8.0)),
        other => bail!("--cases: unknown scenario '{other}' (lo, hi)"),
    }
}

/// One line of rows.csv.
struct Row {
    k: usize,
    case: String,
    m: usize,
    c: usize,
    w1: f64,
    floor: f64,
    log_px: f64,
    log_px_filter: f64,
    log_py: f64,
    failed: usize,
    seconds: f64,
    composition: String,
    precision: String,
    /// What sampled: see [`Combo::key`].
    method: String,
    forward: usize,
    backward: usize,
}

const HEADER: &str = "k,case,trajectory,corrections,w1,w1_floor,log_px,log_px_filter,log_py,failed,seconds,composition,precision,method,forward,backward";

/// The key of the paper's settings (rows written before other settings were offered).
const PAPER_KEY: &str = "sda0.03/pc/t/sda0.25/T256";

/// One setting of the sampler and likelihood that the study runs, for every C.
#[derive(Clone)]
struct Combo {
    settings: Settings,
    sampling: Sampling,
}

impl Combo {
    /// `likelihood/sampler/grid/corrector/Tsteps`, e.g. `mmps-cg1/eab2/logsnr/fixed0.1/T32`:
    /// what rows.csv and the sample files are keyed by (C is a column of its own).
    fn key(&self) -> String {
        let s = &self.settings;
        let lik = match s.likelihood {
            Likelihood::Sda { gamma } => format!("sda{gamma}"),
            Likelihood::Dps { zeta } => format!("dps{zeta}"),
            Likelihood::Mmps { solver, iterations } => {
                format!("mmps-{}{iterations}", flag_value(&solver))
            }
        };
        let sampler = match s.sampler {
            Method::Ddim => format!("ddim{}", s.eta),
            m => flag_value(&m),
        };
        let corrector = match s.corrector {
            Corrector::Sda => format!("sda{}", s.tau),
            Corrector::Fixed => format!("fixed{}", s.delta),
        };
        // Joint rows keep the key they had before autoregressive sampling was offered.
        let sampling = match self.sampling {
            Sampling::Joint => "",
            Sampling::Autoregressive => "/ar",
        };
        format!(
            "{lik}/{sampler}/{}/{corrector}/T{}{sampling}",
            flag_value(&s.grid),
            s.steps
        )
    }

    /// The legend and table name: `MMPS (CG, K = 1), eab2, logsnr grid`.
    fn label(&self) -> String {
        let s = &self.settings;
        let sampling = match self.sampling {
            Sampling::Joint => "",
            Sampling::Autoregressive => ", autoregressive",
        };
        format!(
            "{}, {} {}{sampling}",
            likelihood_name(&s.likelihood),
            flag_value(&s.sampler),
            flag_value(&s.grid)
        )
    }
}

/// Every combination of the lists given (the preset filling what is not), per C.
fn combos(a: &Args) -> Result<(Vec<Combo>, Vec<usize>)> {
    let base = a.preset.resolve(&Flags {
        grid: a.grid,
        corrector: a.corrector,
        tau: a.tau,
        delta: a.delta,
        ..Flags::default()
    })?;
    let or = |v: &Vec<usize>, d: usize| if v.is_empty() { vec![d] } else { v.clone() };
    let likelihoods = if a.likelihoods.is_empty() {
        vec![match base.likelihood {
            Likelihood::Sda { .. } => LikelihoodKind::Sda,
            Likelihood::Dps { .. } => LikelihoodKind::Dps,
            Likelihood::Mmps { .. } => LikelihoodKind::Mmps,
        }]
    } else {
        a.likelihoods.clone()
    };
    let samplers = if a.samplers.is_empty() {
        vec![base.sampler]
    } else {
        a.samplers.clone()
    };
    let preset_iterations = match base.likelihood {
        Likelihood::Mmps { iterations, .. } => iterations,
        _ => 1,
    };
    let mut out = Vec::new();
    for &likelihood in &likelihoods {
        let iterations = match likelihood {
            LikelihoodKind::Mmps => or(&a.iterations, preset_iterations),
            _ => vec![0],
        };
        for &sampler in &samplers {
            for &steps in &or(&a.steps, base.steps) {
                for &k in &iterations {
                    let mmps = likelihood == LikelihoodKind::Mmps;
                    let settings = a.preset.resolve(&Flags {
                        sampler: Some(sampler),
                        steps: Some(steps),
                        grid: a.grid,
                        eta: a.eta.filter(|_| sampler == Method::Ddim),
                        corrector: a.corrector,
                        tau: a.tau,
                        delta: a.delta,
                        likelihood: Some(likelihood),
                        solver: a.solver.filter(|_| mmps),
                        iterations: mmps.then_some(k),
                        gamma: a.gamma.filter(|_| likelihood == LikelihoodKind::Sda),
                        ..Flags::default()
                    })?;
                    for &sampling in &a.sampling {
                        out.push(Combo { settings, sampling });
                    }
                }
            }
        }
    }
    let corrections = match (a.corrections.is_empty(), a.preset) {
        (false, _) => a.corrections.clone(),
        (true, Preset::Paper | Preset::Stable) => vec![0, 1, 2, 4, 8, 16],
        (true, _) => vec![base.corrections],
    };
    Ok((out, corrections))
}

impl Row {
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{:.4},{:.4},{:.2},{:.2},{:.3},{},{:.1},{},{},{},{},{}",
            self.k,
            self.case,
            self.m,
            self.c,
            self.w1,
            self.floor,
            self.log_px,
            self.log_px_filter,
            self.log_py,
            self.failed,
            self.seconds,
            self.composition,
            self.precision,
            self.method,
            self.forward,
            self.backward
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i)?.parse::<f64>().ok();
        Some(Row {
            k: f.first()?.parse().ok()?,
            case: f.get(1)?.to_string(),
            m: f.get(2)?.parse().ok()?,
            c: f.get(3)?.parse().ok()?,
            w1: num(4)?,
            floor: num(5)?,
            log_px: num(6)?,
            log_px_filter: num(7)?,
            log_py: num(8)?,
            failed: f.get(9)?.parse().ok()?,
            seconds: num(10)?,
            // Rows written before compositions were offered are the paper's.
            composition: f.get(11).unwrap_or(&"centre").to_string(),
            // Rows written before bf16 products were offered are float32.
            precision: f.get(12).unwrap_or(&"f32").to_string(),
            // Rows written before other samplers were offered are the paper's.
            method: f.get(13).unwrap_or(&PAPER_KEY).to_string(),
            forward: f.get(14).and_then(|v| v.parse().ok()).unwrap_or(0),
            backward: f.get(15).and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

/// The samples file of one assimilation (bf16 runs apart from float32 ones, settings other
/// than the paper's apart from its).
fn sample_name(
    k: usize,
    case: &str,
    m: usize,
    c: usize,
    precision: Precision,
    key: &str,
) -> String {
    let settings = if key == PAPER_KEY {
        String::new()
    } else {
        format!("-{}", key.replace('/', "-"))
    };
    match precision {
        Precision::F32 => format!("k{k}-{case}-{m}-C{c}{settings}.npy"),
        p => format!("k{k}-{case}-{m}-C{c}-{p}{settings}.npy"),
    }
}

fn width(k: usize) -> usize {
    if k == 1 { 128 } else { 256 }
}

/// The network of order k.
fn network(k: usize) -> ScoreNetConfig {
    ScoreNetConfig::local(k, 3, width(k))
}

/// The arithmetic the assimilations of each order run with (`--precision` resolved).
fn precisions(a: &Args) -> Result<BTreeMap<usize, Precision>> {
    let dev = device(&a.device)?;
    a.orders
        .iter()
        .map(|&k| {
            let net = network(k);
            Ok((k, a.precision.resolve(net.fused_width(fused(&net, &dev)))?))
        })
        .collect()
}

/// Loads the model of order k, training (or resuming) it if needed.
fn model(a: &Args, data: &Dataset, k: usize, dir: &Path) -> Result<Model> {
    let device = device(&a.device)?;
    let done = dir.join("model.safetensors").exists() && !dir.join("checkpoint.json").exists()
        || sda::io::read_json::<serde_json::Value>(&dir.join("checkpoint.json"))
            .ok()
            .and_then(|c| c["epochs_done"].as_u64())
            == Some(a.epochs as u64);
    if done {
        return Model::load(dir, &device).with_context(|| format!("loading {}", dir.display()));
    }
    let net = network(k);
    let config = TrainConfig {
        epochs: a.epochs,
        seed: a.seed + k as u64,
        ..TrainConfig::default()
    };
    let pb = bar(a.epochs as u64, &format!("train k={k}"));
    let resume = dir.join("config.json").exists();
    let m = train(
        data,
        net,
        VpSde::default(),
        &config,
        dir,
        resume,
        &device,
        |s| {
            pb.set_position(s.epoch as u64);
            pb.set_message(format!(
                "loss {:.4} valid {:.4}",
                s.train_loss, s.valid_loss
            ));
        },
    )
    .with_context(|| format!("training {}", dir.display()))?;
    pb.finish_and_clear();
    println!("trained k = {k} (width {}) → {}", width(k), dir.display());
    Ok(m)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.system != "lorenz96" {
        check_system(&a)?;
    }
    if a.shard.shard.is_some() && a.force {
        bail!(
            "--force with --shard: shards never remove a study; remove {} first (or `sda slurm submit --force`)",
            a.output.display()
        );
    }
    let mode = match crate::shard::open(&a.shard, &a.output)? {
        Opened::Whole => Mode::Whole,
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Mode::Shard(s),
    };
    if a.system == "lorenz96" {
        return crate::study96::run_study(&a, mode);
    }
    run_mode(a, mode)
}

/// `sda merge` of a sharded study: the shards' rows join rows.csv, then the summary and the
/// figures are made as a whole run makes them.
pub fn merge(a: Args, shards: Shards) -> Result<()> {
    if a.system == "lorenz96" {
        return crate::study96::run_study(&a, Mode::Merge(shards));
    }
    check_system(&a)?;
    run_mode(a, Mode::Merge(shards))
}

fn check_system(a: &Args) -> Result<()> {
    if a.system != "lorenz63" {
        bail!(
            "unknown study system '{}': lorenz63 and lorenz96 have studies",
            a.system
        );
    }
    Ok(())
}

fn run_mode(a: Args, mode: Mode) -> Result<()> {
    // Bad --device, --cases or --precision fail now, not after the filters.
    let precision = precisions(&a)?;
    let (combos, corrections) = combos(&a)?;
    for case in &a.cases {
        scenario(case)?;
    }
    let dir = &a.output;
    // Shards share the folder: each continues what the others made.
    let existing = match mode {
        Mode::Whole => Existing::from_flags(a.force, a.resume),
        _ => Existing::Resume,
    };
    let own = if a.data.is_some() {
        &STUDY_FILES[..7]
    } else {
        &STUDY_FILES[..]
    };
    let holds = check_folder(
        &Folder {
            path: dir,
            flag: "--output",
            what: "a study",
            markers: &own[..7],
            resumable: true,
            bytes: None,
        },
        existing,
    )?;
    if holds && existing == Existing::Replace {
        remove_outputs(dir, own)?;
    }
    let data_dir = a.data.clone().unwrap_or_else(|| dir.join("data"));
    locked(&dir.join(".lock-data"), || -> Result<()> {
        if !data_dir.join("system.json").exists() {
            simulate(
                &data_dir,
                System::from_name("lorenz63")?,
                1024,
                1024,
                1024,
                a.seed,
            )?;
            println!("simulated 1024 Lorenz-63 chains → {}", data_dir.display());
        }
        Ok(())
    })?;
    let data =
        Dataset::load(&data_dir).with_context(|| format!("--data {}", data_dir.display()))?;
    let shape = data.info.state_shape.clone();
    let chain = data.info.system.chain()?;
    let test = read_trajectories(&data_dir.join("test.npy"), &shape)?;
    let (n_test, l_test) = (test.shape[0], test.shape[1]);
    if a.trajectories > n_test || a.length > l_test {
        bail!("--trajectories/--length: the test set has {n_test} trajectories of {l_test} states");
    }
    let l = a.length;
    let runs: Vec<(usize, &Combo)> = corrections
        .iter()
        .flat_map(|&c| combos.iter().map(move |combo| (c, combo)))
        .collect();
    // Every assimilation, in the order a whole study runs them; a shard takes a contiguous
    // run of them (and the trajectories they need).
    let mut items = Vec::new();
    for &k in &a.orders {
        for case in &a.cases {
            for m in 0..a.trajectories {
                for r in 0..runs.len() {
                    items.push((k, case.clone(), m, r));
                }
            }
        }
    }
    let mine = match &mode {
        Mode::Shard(s) => items[s.shard.range(items.len())].to_vec(),
        _ => items.clone(),
    };
    let needed: std::collections::BTreeSet<(String, usize)> = mine
        .iter()
        .map(|(_, case, m, _)| (case.clone(), *m))
        .collect();

    // Observations and the two filter runs (reference and floor) of every trajectory.
    let mut truths = BTreeMap::new();
    let pb = bar(needed.len() as u64, "filter");
    for case in &a.cases {
        let (spec, std) = scenario(case)?;
        let op = Operator::parse(spec)?;
        for m in 0..a.trajectories {
            if !needed.contains(&(case.clone(), m)) {
                continue;
            }
            let obs_dir = dir.join("obs").join(format!("{case}-{m}"));
            let truth = test.data[m * l_test * 3..(m * l_test + l) * 3].to_vec();
            let y_path = obs_dir.join("y.npy");
            if !y_path.exists() {
                let m_out = op.output_shape(l, &shape)?.iter().product();
                let y = observe(
                    &truth,
                    l,
                    &shape,
                    &op,
                    &vec![std; m_out],
                    a.seed ^ (m as u64 * 7919),
                )?;
                write_npy(
                    &obs_dir.join("truth.npy"),
                    &Array::new(vec![1, l, 3], truth.clone()),
                )?;
                write_npy(&y_path, &y)?;
            }
            let y = read_npy(&y_path)?;
            for (run, seed) in [("a", 1u64), ("b", 2u64)] {
                let path = obs_dir.join(format!("filter-{run}.npy"));
                if !path.exists() {
                    let cfg = FilterConfig {
                        particles: a.particles,
                        keep: a.keep,
                        burn_in: 64,
                        seed: a.seed * 1000 + seed * 100 + m as u64,
                    };
                    let noise = vec![std; y.data.len()];
                    let x = particle_filter(chain, &op, &y, &noise, &shape, l, &cfg)?;
                    write_npy(&path, &x)?;
                }
            }
            truths.insert((case.clone(), m), Array::new(vec![1, l, 3], truth));
            pb.inc(1);
        }
    }
    pb.finish_and_clear();

    // Rows already computed.
    let rows_path = dir.join("rows.csv");
    let mut rows: Vec<Row> = std::fs::read_to_string(&rows_path)
        .map(|t| t.lines().skip(1).filter_map(Row::parse).collect())
        .unwrap_or_default();
    let composition = flag_value(&a.composition);
    let have = |rows: &[Row], k, case: &str, m, c, key: &str| {
        rows.iter().any(|r| {
            r.k == k
                && r.case == case
                && r.m == m
                && r.c == c
                && r.composition == composition
                && r.precision == precision[&k].to_string()
                && r.method == key
        })
    };
    let save = |rows: &[Row]| -> Result<()> {
        let mut text = String::from(HEADER);
        text.push('\n');
        for r in rows {
            text.push_str(&r.csv());
            text.push('\n');
        }
        Ok(write_atomic(&rows_path, text.as_bytes())?)
    };

    if let Mode::Merge(shards) = &mode {
        let before = rows.len();
        for i in 0..shards.manifest().count {
            let text = String::from_utf8(shards.read(i, "csv")?)
                .with_context(|| format!("{}", shards.part(i, "csv").display()))?;
            for r in text.lines().filter_map(Row::parse) {
                if !have(&rows, r.k, &r.case, r.m, r.c, &r.method) {
                    rows.push(r);
                }
            }
        }
        save(&rows)?;
        println!(
            "merged {} rows from {} shards",
            rows.len() - before,
            shards.manifest().count
        );
    }
    let total = mine.len();
    let todo = mine
        .iter()
        .filter(|(k, case, m, r)| {
            let (c, combo) = runs[*r];
            !have(&rows, *k, case, *m, c, &combo.key())
        })
        .count();
    let mut shard_rows: Vec<Row> = Vec::new();
    let arithmetic: Vec<String> = precision
        .iter()
        .map(|(k, p)| format!("k = {k}: {p}"))
        .collect();
    println!(
        "study: {total} assimilations, {todo} to run (composition {composition}, precision {})",
        arithmetic.join(", ")
    );
    let pb = bar(todo as u64, "assimilate");
    let mut loaded: Option<(usize, Model)> = None;
    for (k, case, m, r) in &mine {
        let (k, m, (c, combo)) = (*k, *m, runs[*r]);
        let model_dir = dir.join("models").join(format!("k{k}"));
        let (spec, std) = scenario(case)?;
        let key = combo.key();
        if have(&rows, k, case, m, c, &key) {
            continue;
        }
        if loaded.as_ref().is_none_or(|(lk, _)| *lk != k) {
            let lock = dir.join("models").join(format!(".lock-k{k}"));
            let mdl = pb.suspend(|| locked(&lock, || model(&a, &data, k, &model_dir)))?;
            loaded = Some((k, mdl));
        }
        let mdl = &loaded.as_ref().expect("loaded above").1;
        let obs_dir = dir.join("obs").join(format!("{case}-{m}"));
        let y = read_npy(&obs_dir.join("y.npy"))?;
        let observed = Observed {
            operator: Operator::parse(spec)?,
            noise: vec![std; y.data.len()],
            y,
        };
        let st = &combo.settings;
        let cfg = SampleConfig {
            length: l,
            samples: a.samples,
            batch: a.samples,
            steps: st.steps,
            corrections: c,
            tau: st.tau,
            method: st.sampler,
            grid: st.grid,
            eta: st.eta,
            corrector: st.corrector,
            delta: st.delta,
            likelihood: st.likelihood,
            composition: a.composition,
            precision: precision[&k],
            seed: a.seed ^ ((k * 1_000_003 + m * 1009 + c) as u64),
            guard: !a.no_guard,
            sampling: combo.sampling,
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let (x, evals) = sample_counted(mdl, Some(&observed), &cfg, &device(&a.device)?, |_| {})?;
        let seconds = t0.elapsed().as_secs_f64();
        write_npy(
            &dir.join("samples")
                .join(sample_name(k, case, m, c, precision[&k], &key)),
            &x,
        )?;
        let fa = read_npy(&obs_dir.join("filter-a.npy"))?;
        let fb = read_npy(&obs_dir.join("filter-b.npy"))?;
        let e = evaluate(&x, Some(&fa), None, Some(chain), Some((&observed, &shape)))?;
        // The floor: as many samples of an independent filter run, against the reference.
        let nb = a.samples.min(fb.shape[0]);
        let fbv: Vec<f64> = fb.data[..nb * l * 3].iter().map(|&v| v as f64).collect();
        let (fav, _) = finite_samples(&fa);
        let floor = wasserstein1(&fbv, &fav, l * 3);
        let row = Row {
            k,
            case: case.clone(),
            m,
            c,
            w1: e.w1.unwrap_or(f64::NAN),
            floor,
            log_px: e.log_px.unwrap_or(f64::NAN),
            log_px_filter: e.log_px_reference.unwrap_or(f64::NAN),
            log_py: e.log_py.unwrap_or(f64::NAN),
            failed: e.failed,
            seconds,
            composition: composition.clone(),
            precision: precision[&k].to_string(),
            method: key.clone(),
            forward: evals.forward,
            backward: evals.backward,
        };
        if matches!(mode, Mode::Whole) {
            rows.push(row);
            save(&rows)?;
        } else {
            shard_rows.push(row);
        }
        pb.inc(1);
        pb.set_message(format!(
            "k={k} {case} #{m} C={c} {key}: W1 {:.1} (floor {floor:.1})",
            e.w1.unwrap_or(f64::NAN)
        ));
    }
    pb.finish_and_clear();
    match mode {
        Mode::Shard(s) => {
            let mut text = String::from(HEADER);
            text.push('\n');
            for r in &shard_rows {
                text.push_str(&r.csv());
                text.push('\n');
            }
            let what = format!("{} assimilations", shard_rows.len());
            s.finish("csv", text.as_bytes(), &what)
        }
        Mode::Whole => {
            // The summary is a function of rows.csv alone (as written, to its decimals), so that
            // a whole run, a resumed one and a merge of shards give the same summary.csv.
            let rows: Vec<Row> = rows.iter().filter_map(|r| Row::parse(&r.csv())).collect();
            report(&a, &rows, dir, &truths, &precision, &combos, &corrections)
        }
        Mode::Merge(shards) => {
            report(&a, &rows, dir, &truths, &precision, &combos, &corrections)?;
            Ok(shards.remove()?)
        }
    }
}

/// Summary table, summary.csv and the figures, from the rows of this study's settings.
fn report(
    a: &Args,
    rows: &[Row],
    dir: &Path,
    truths: &BTreeMap<(String, usize), Array>,
    precision: &BTreeMap<usize, Precision>,
    combos: &[Combo],
    corrections: &[usize],
) -> Result<()> {
    let composition = flag_value(&a.composition);
    let keys: Vec<String> = combos.iter().map(Combo::key).collect();
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            a.orders.contains(&r.k)
                && a.cases.contains(&r.case)
                && r.m < a.trajectories
                && corrections.contains(&r.c)
                && r.composition == composition
                && r.precision == precision[&r.k].to_string()
                && keys.contains(&r.method)
        })
        .collect();
    let mut table = String::new();
    let mut csv = String::from(
        "case,k,corrections,method,median_w1,median_w1_floor,mean_log_px,mean_log_px_filter,mean_log_py,forward,backward,mean_seconds,trajectories\n",
    );
    writeln!(
        table,
        "{:<4} {:>2} {:>3} {:<36} {:>9} {:>7} {:>10} {:>9} {:>10} {:>6} {:>6} {:>8}",
        "case",
        "k",
        "C",
        "method / grid / corrector / steps",
        "W1 (med)",
        "floor",
        "log p(x)",
        "filter",
        "log p(y|x)",
        "fwd",
        "bwd",
        "seconds"
    )?;
    let mut figure = Vec::new();
    for case in &a.cases {
        let (mut w1_series, mut px_series, mut py_series) = (Vec::new(), Vec::new(), Vec::new());
        // W1 against evaluations: one line per method (likelihood, sampler, grid) and k.
        let mut cost: BTreeMap<String, (usize, Vec<(f64, f64)>)> = BTreeMap::new();
        let of_case: Vec<&&Row> = rows.iter().filter(|r| &r.case == case).collect();
        let mut line = 0;
        for &k in &a.orders {
            for combo in combos {
                let key = combo.key();
                let (mut w, mut px, mut py) = (Vec::new(), Vec::new(), Vec::new());
                for &c in corrections {
                    let sel: Vec<&&&Row> = of_case
                        .iter()
                        .filter(|r| r.k == k && r.c == c && r.method == key)
                        .collect();
                    if sel.is_empty() {
                        continue;
                    }
                    let mw = median(sel.iter().map(|r| r.w1).collect());
                    let mf = median(sel.iter().map(|r| r.floor).collect());
                    let mean = |f: &dyn Fn(&Row) -> f64| {
                        sel.iter().map(|r| f(r)).sum::<f64>() / sel.len() as f64
                    };
                    let (lpx, lpf, lpy, secs) = (
                        mean(&|r| r.log_px),
                        mean(&|r| r.log_px_filter),
                        mean(&|r| r.log_py),
                        mean(&|r| r.seconds),
                    );
                    let (fwd, bwd) = (sel[0].forward, sel[0].backward);
                    writeln!(
                        table,
                        "{case:<4} {k:>2} {c:>3} {key:<36} {mw:>9.2} {mf:>7.2} {lpx:>10.1} {lpf:>9.1} {lpy:>10.2} {fwd:>6} {bwd:>6} {secs:>8.1}"
                    )?;
                    writeln!(
                        csv,
                        "{case},{k},{c},{key},{mw:.4},{mf:.4},{lpx:.2},{lpf:.2},{lpy:.3},{fwd},{bwd},{secs:.2},{}",
                        sel.len()
                    )?;
                    w.push((c as f64, mw));
                    px.push((c as f64, lpx));
                    py.push((c as f64, lpy));
                    let name = if a.orders.len() > 1 {
                        format!("k = {k}, {}", combo.label())
                    } else {
                        combo.label()
                    };
                    let n = cost.len();
                    cost.entry(name)
                        .or_insert((n, Vec::new()))
                        .1
                        .push(((fwd + bwd) as f64, mw));
                }
                let mut label = format!("k = {k}");
                if combos.len() > 1 {
                    label = format!("{label}, {}, T = {}", combo.label(), combo.settings.steps);
                }
                for (series, points) in [
                    (&mut w1_series, w),
                    (&mut px_series, px),
                    (&mut py_series, py),
                ] {
                    series.push(Series {
                        label: label.clone(),
                        points,
                        dashed: false,
                        color: line,
                    });
                }
                line += 1;
            }
        }
        let filt = |f: &dyn Fn(&Row) -> f64| -> f64 {
            let v: Vec<f64> = of_case.iter().map(|r| f(r)).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let floor = median(of_case.iter().map(|r| r.floor).collect());
        let dashed = |label: &str, v: f64| Series {
            label: label.into(),
            points: vec![(0.0, v)],
            dashed: true,
            color: 9,
        };
        w1_series.push(dashed("filter vs filter", floor));
        px_series.push(dashed("filter", filt(&|r| r.log_px_filter)));
        let mut cost_series: Vec<Series> = cost
            .into_iter()
            .map(|(label, (color, mut points))| {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    label,
                    points,
                    dashed: false,
                    color,
                }
            })
            .collect();
        // On a log axis the reference level needs a positive x.
        cost_series.push(Series {
            points: vec![(1.0, floor)],
            ..dashed("filter vs filter", floor)
        });
        let panel = |title: &str, x: &str, y: &str, series, log_x| Panel {
            title: format!("{case}: {title}"),
            x_label: x.into(),
            y_label: y.into(),
            series,
            log_x,
            log_y: false,
        };
        let c = "corrections C";
        figure.push(panel(
            "W1 to the filter (median)",
            c,
            "W1",
            w1_series,
            false,
        ));
        figure.push(panel("log p(x_2:L | x_1)", c, "log p(x)", px_series, false));
        figure.push(panel("log p(y | x)", c, "log p(y|x)", py_series, false));
        figure.push(panel(
            "W1 against cost",
            "network passes per sample (forward + backward)",
            "W1 (median)",
            cost_series,
            true,
        ));
    }
    print!("{table}");
    write_atomic(&dir.join("summary.csv"), csv.as_bytes())?;
    panels(&dir.join("figure3.png"), a.cases.len(), 4, &figure)?;
    // Samples of the largest k and C of the last setting against the filter, first trajectory
    // of the first case.
    if let (Some(&k), Some(&c), Some(case), Some(combo)) = (
        a.orders.iter().max(),
        corrections.iter().max(),
        a.cases.first(),
        combos.last(),
    ) {
        let x = read_npy(&dir.join("samples").join(sample_name(
            k,
            case,
            0,
            c,
            precision[&k],
            &combo.key(),
        )))?;
        let f = read_npy(
            &dir.join("obs")
                .join(format!("{case}-0"))
                .join("filter-a.npy"),
        )?;
        let y = read_npy(&dir.join("obs").join(format!("{case}-0")).join("y.npy"))?;
        let (spec, _) = scenario(case)?;
        let obs = sda::plot::Observations {
            times: Operator::parse(spec)?.times(a.length)?,
            channels: vec![Some(0)],
            values: y,
        };
        let labels = ["x", "y", "z"].map(String::from);
        trajectories(
            &dir.join("trajectories.png"),
            &x,
            Some(&f),
            truths.get(&(case.clone(), 0)),
            Some(&obs),
            &labels,
        )?;
    }
    println!(
        "→ {}/rows.csv, summary.csv, figure3.png, trajectories.png",
        dir.display()
    );
    Ok(())
}
