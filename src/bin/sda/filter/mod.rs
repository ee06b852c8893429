//! `sda filter`: reference posterior trajectories from a bootstrap particle filter, the ground
//! truth that `sda assimilate`'s samples are compared with (docs/method.md §7), and the classical
//! data-assimilation methods (`--method`: EnKF family, LETKF, EnSF, EnKS, iEnKS, 3D/4D-Var, OI,
//! climatology), and the statistical baselines of a data folder (climatology, persistence, OI and
//! a linear inverse model fitted on its training split; `crate::baseline`).

use std::path::{Path, PathBuf};

mod classical;

use anyhow::{Context, Result, bail};
use sda::data::{SystemInfo, read_info};
use sda::filter::{FilterConfig, run_particle_filter};
use sda::io::{read_json, write_npy};
use sda::mcs::System;

use self::classical::run_classical;
use crate::assimilate::observed_any;
use crate::common::bar;

/// Draw reference trajectories from p(x | y) with a bootstrap particle filter (Gordon et al.
/// 1993): particles follow the system's true transition and are weighted by the likelihood of
/// each observation, then resampled as whole paths. Needs no trained model, only the system;
/// with enough particles its output is the exact posterior, which `sda assimilate` approximates.
///
/// With --method, a classical method instead (DAPPER's conventions, docs/classical.md): enkf
/// (perturbed observations), denkf, etkf (symmetric square root), letkf, ensf (ensemble score
/// filter, --ensf-*), enks (fixed lag), ienks (iterative, Gauss–Newton), var3d, var4d (strong
/// constraint), oi, climatology. The
/// output holds what the method knows at every state: analyses at observed states and
/// forecasts between them for filters, smoothed states for enks, ienks and var4d; one member
/// for var3d, var4d, oi and climatology. E.g. DAPPER's sakov2008 ETKF on `sda simulate
/// lorenz96 --size 40 --forcing 8 --noise 0` data, observed every step after the first:
///   sda filter --system data --method etkf --members 24 --inflation 1.02 --rotate
///     --operator stride:1@1 --noise 1 --observations y.npy --length 2401 --output x.npy
///
/// Statistical baselines, for any data folder and imported records in particular (no model
/// needed; docs/real-data.md): climatology, persistence, oi (without --climatology) and lim,
/// fitted on the folder's training split, draw --samples trajectories (S, L, *state) as `sda
/// assimilate` does, with --mean for their exact mean. A monthly climatology needs --start,
/// the record step of state 0 (or test:N, the start of test window N):
///   sda filter --system winds --method oi --observations obs.csv --length 8 --start test:0
///     --samples 64 --output oi.npy
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// bpf (the particle filter, default) or a classical method.
    #[arg(long, default_value = "bpf")]
    pub method: MethodArg,
    /// Ensemble members (ensemble methods).
    #[arg(long, default_value_t = 20)]
    pub members: usize,
    /// Multiplicative inflation of the analysis anomalies (a factor on the spread, ≥ 1).
    #[arg(long, default_value_t = 1.0)]
    pub inflation: f64,
    /// A random mean-preserving rotation of the anomalies after each analysis.
    #[arg(long)]
    pub rotate: bool,
    /// EnKF-N's adaptive inflation with this hyper-prior boost xN (etkf, letkf, ienks; DAPPER's
    /// xN, e.g. 1 or 2).
    #[arg(long)]
    pub finite_size: Option<f64>,
    /// Localisation radius in grid points on the periodic ring (letkf) [default: none].
    #[arg(long)]
    pub radius: Option<f64>,
    /// Localisation taper (letkf): gc (Gaspari–Cohn, half-support 1.82 × radius) or step.
    #[arg(long, default_value = "gc")]
    pub taper: sda::classical::Taper,
    /// Consecutive state variables analysed together by the letkf, a block (DAPPER's
    /// sakov2008: 2). Formerly --batch, which is still accepted and will be removed in the
    /// next release (--batch elsewhere means trajectories per sampler batch).
    #[arg(long, alias = "batch", default_value_t = 1)]
    pub block: usize,
    /// Smoother lag in observation cycles (enks, ienks, var4d; DAPPER's Lag).
    #[arg(long, default_value_t = 1)]
    pub lag: usize,
    /// Gauss–Newton iterations per window (ienks, var4d) (`--iterations` before: that name is
    /// MMPS's Krylov iterations in `assimilate`).
    #[arg(long = "newton-iterations", alias = "iterations", default_value_t = 10)]
    pub iterations: usize,
    /// Background covariance B = scale · I (var4d; var3d: scale · climatological covariance
    /// when --climatology is given).
    #[arg(long, default_value_t = 1.0)]
    pub background_scale: f64,
    /// ensf: Euler–Maruyama steps of the reverse SDE per analysis.
    #[arg(long, default_value_t = 500)]
    pub ensf_steps: usize,
    /// ensf: α at pseudo-time 1 (ε_α in α_t = 1 − (1 − ε_α) t), in (0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub ensf_eps_alpha: f64,
    /// ensf: the floor β_0² of the per-member noise variance (β_t² = ε_β + (1 − ε_β) t), in
    /// [0, 1).
    #[arg(long, default_value_t = 0.025)]
    pub ensf_eps_beta: f64,
    /// ensf: the forecast's score: paired (each trajectory its own member), mixture (the
    /// Gaussian mixture of all members) or mixture:J (a random mini-batch of J each step).
    #[arg(long, default_value = "paired")]
    pub ensf_score: sda::classical::EnsfScore,
    /// ensf: element-wise bound on the posterior score (inf: none).
    #[arg(long, default_value_t = 1000.0)]
    pub ensf_clip: f64,
    /// ensf: weight h(t) of the likelihood's score: linear (1 − t) or none (1).
    #[arg(long, default_value = "linear")]
    pub ensf_damping: sda::classical::Damping,
    /// Mean of the initial ensemble (or background) at state 0: a .npy of D values [default:
    /// the climatological mean, else zeros].
    #[arg(long)]
    pub initial: Option<PathBuf>,
    /// Std of the initial ensemble around --initial.
    #[arg(long, default_value_t = 1.0)]
    pub initial_std: f64,
    /// Trajectories of the system (.npy, (N, L, D) or (L, D)) whose mean and covariance are the
    /// climatology (oi, climatology; var3d's background covariance).
    #[arg(long)]
    pub climatology: Option<PathBuf>,
    /// The system: a name (lorenz63, lorenz96, linear; default parameters), or a data folder
    /// written by `sda simulate` (or its system.json), whose parameters are then used.
    #[arg(long)]
    pub system: String,
    /// Observations y (.npy) of the shape the operator produces, e.g. (9, 1) for
    /// 'stride:8|select:0' on 65 states; `sda observe` writes one. Or a table (.csv,
    /// time,index,value,std; `sda observe --table` writes one), which brings its own operator
    /// and noise.
    #[arg(long)]
    pub observations: PathBuf,
    /// Observation operator, applied left to right in physical units: stride:K[@O], last,
    /// select:I[,J] joined by '|', e.g. 'stride:8|select:0'. State 0 is the first state of
    /// the trajectory, the one after the burn-in.
    #[arg(long)]
    pub operator: Option<String>,
    /// Observation noise std (physical units): a number, or a .npy of per-observation stds.
    #[arg(long, allow_hyphen_values = true)]
    pub noise: Option<String>,
    /// States per trajectory.
    #[arg(long, default_value_t = 65)]
    pub length: usize,
    /// bpf: number of particles (more: closer to the exact posterior, slower).
    #[arg(long, default_value_t = 16384)]
    pub particles: usize,
    /// bpf: trajectories written, drawn from the final particles (at most --particles).
    #[arg(long, default_value_t = 1024)]
    pub keep: usize,
    /// bpf: prior transitions before the first state, so that it starts on the attractor.
    #[arg(long, default_value_t = 64)]
    pub burn_in: usize,
    /// Random seed (the output does not depend on the number of threads).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Baselines: trajectories drawn.
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    /// Baselines (oi, lim, climatology): EOFs of the covariance [default: the fewest that
    /// explain 90 % of the standardised variance, at most a fifth of the training states (lim:
    /// of the pairs of consecutive training states)].
    #[arg(long)]
    pub eofs: Option<usize>,
    /// Baselines on an imported record: the record step of state 0, or SPLIT:N for the start
    /// of window N of a split (test:0); needed when the climatology is monthly.
    #[arg(long)]
    pub start: Option<String>,
    /// Baselines: also write the exact mean, (1, length, *state), to this .npy.
    #[arg(long)]
    pub mean: Option<PathBuf>,
    /// Output .npy: float32, shape (keep, members or samples, length, *state), physical units.
    #[arg(long)]
    pub output: PathBuf,
}

/// The system and its state shape from a name, a data folder or a `system.json`.
pub fn system(spec: &str) -> Result<(System, Vec<usize>)> {
    let path = Path::new(spec);
    let info: Option<SystemInfo> = if path.is_dir() {
        Some(read_info(path).with_context(|| format!("--system {spec}"))?)
    } else if path.is_file() {
        Some(read_json(path).with_context(|| format!("--system {spec}"))?)
    } else {
        None
    };
    Ok(match info {
        Some(info) => (info.system, info.state_shape),
        None if spec.contains(std::path::MAIN_SEPARATOR) || spec.ends_with(".json") => {
            bail!("--system {spec}: no such data folder or file")
        }
        None => {
            let system = System::from_name(spec).context("--system")?;
            let dim = system.chain()?.dim();
            (system, vec![dim])
        }
    })
}

/// `--method`: the particle filter or a classical method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodArg {
    /// The bootstrap particle filter.
    Bpf,
    /// A classical method.
    Classical(sda::classical::Method),
    /// A statistical baseline of a data folder (persistence and lim; climatology and oi are
    /// the classical ones with --climatology, these without).
    Baseline(sda::baseline::Method),
}

impl clap::ValueEnum for MethodArg {
    fn value_variants<'a>() -> &'a [Self] {
        use sda::classical::Method::*;
        &[
            MethodArg::Bpf,
            MethodArg::Classical(Enkf),
            MethodArg::Classical(Denkf),
            MethodArg::Classical(Etkf),
            MethodArg::Classical(Letkf),
            MethodArg::Classical(Ensf),
            MethodArg::Classical(Enks),
            MethodArg::Classical(Ienks),
            MethodArg::Classical(Var3d),
            MethodArg::Classical(Var4d),
            MethodArg::Classical(Oi),
            MethodArg::Classical(Climatology),
            MethodArg::Baseline(sda::baseline::Method::Persistence),
            MethodArg::Baseline(sda::baseline::Method::Lim),
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            MethodArg::Bpf => Some(
                clap::builder::PossibleValue::new("bpf")
                    .help("Bootstrap particle filter (needs a transition density)"),
            ),
            MethodArg::Classical(m) => m.to_possible_value(),
            MethodArg::Baseline(m) => m.to_possible_value(),
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    sda::output::check_file(&a.output, "--output", None)?;
    use sda::classical::Method as C;
    match a.method {
        MethodArg::Baseline(m) => return crate::baseline::run(&a, m),
        // Without --climatology, the climatology and OI of a data folder's training split.
        MethodArg::Classical(C::Oi | C::Climatology) if a.climatology.is_none() => {
            let m = match a.method {
                MethodArg::Classical(C::Oi) => sda::baseline::Method::Oi,
                _ => sda::baseline::Method::Climatology,
            };
            return crate::baseline::run(&a, m);
        }
        MethodArg::Classical(method) => return run_classical(a, method),
        MethodArg::Bpf => {}
    }
    let (system, shape) = system(&a.system)?;
    if let System::External(_) = system {
        bail!(
            "--system {}: an external (imported) system has no transition density, which the \
             particle filter needs (evaluate samples against the truth instead)",
            a.system
        );
    }
    if system.deterministic() {
        bail!(
            "--method bpf: the particle filter needs a transition density, and this {} system is \
             deterministic (noise 0); use a classical --method",
            system.name()
        );
    }
    let observed = observations(&a, &shape)?;
    let (operator, y, std) = (observed.operator, observed.y, observed.noise);
    let config = FilterConfig {
        particles: a.particles,
        keep: a.keep,
        burn_in: a.burn_in,
        seed: a.seed,
    };

    let pb = bar((a.burn_in + a.length - 1) as u64, "filter");
    let t0 = std::time::Instant::now();
    let out = run_particle_filter(
        system.chain()?,
        &operator,
        &y,
        &std,
        &shape,
        a.length,
        &config,
        |done| pb.set_position(done as u64),
    )?;
    let secs = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    write_npy(&a.output, &out.samples)
        .with_context(|| format!("--output {}", a.output.display()))?;

    let last = out.ess.last().copied().unwrap_or(a.particles as f64);
    println!(
        "{} trajectories of {} states kept from {} particles in {secs:.2} s, effective sample \
         size {last:.0} at the last observation, log p(y) ≈ {:.1} → {}",
        a.keep,
        a.length,
        a.particles,
        out.log_evidence,
        a.output.display()
    );
    // A weighting that leaves few effective particles makes every later path descend from them.
    let times = operator.times(a.length)?;
    if let Some((r, worst)) = out
        .ess
        .iter()
        .enumerate()
        .min_by(|x, y| x.1.total_cmp(y.1))
        .filter(|(_, e)| **e < 100.0)
    {
        println!(
            "  warning: only {worst:.0} effective particles at state {} (observation {r}); the \
             trajectories share few ancestors there: use more --particles",
            times[r]
        );
    }
    Ok(())
}

/// The observations of the flags (a table, or `.npy` with `--operator` and `--noise`), checked
/// against `length` states of `shape`.
pub fn observations(a: &Args, shape: &[usize]) -> Result<sda::assimilate::Observed> {
    if a.length == 0 {
        bail!("--length: must be at least 1");
    }
    observed_any(
        shape,
        &a.observations,
        a.operator.as_deref(),
        a.noise.as_deref(),
        a.length,
        None,
    )
    .map(|(o, _)| o)
}
