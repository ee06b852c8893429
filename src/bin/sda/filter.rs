//! `sda filter`: reference posterior trajectories from a bootstrap particle filter, the ground
//! truth that `sda assimilate`'s samples are compared with (METHOD.md §6).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sda::data::{SystemInfo, read_info};
use sda::filter::{FilterConfig, run_particle_filter};
use sda::io::{read_json, write_npy};
use sda::mcs::System;

use crate::assimilate::observed_any;
use crate::common::bar;

/// Draw reference trajectories from p(x | y) with a bootstrap particle filter (Gordon et al.
/// 1993): particles follow the system's true transition and are weighted by the likelihood of
/// each observation, then resampled as whole paths. Needs no trained model, only the system;
/// with enough particles its output is the exact posterior, which `sda assimilate` approximates.
#[derive(clap::Args)]
pub struct Args {
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
    /// Number of particles (more: closer to the exact posterior, slower).
    #[arg(long, default_value_t = 16384)]
    pub particles: usize,
    /// Trajectories written, drawn from the final particles (at most --particles).
    #[arg(long, default_value_t = 1024)]
    pub keep: usize,
    /// Prior transitions before the first state, so that it starts on the attractor.
    #[arg(long, default_value_t = 64)]
    pub burn_in: usize,
    /// Random seed (the output does not depend on the number of threads).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output .npy: float32, shape (keep, length, D), physical units.
    #[arg(long)]
    pub output: PathBuf,
}

/// The system and its state shape from a name, a data folder or a `system.json`.
fn system(spec: &str) -> Result<(System, Vec<usize>)> {
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

pub fn run(a: Args) -> Result<()> {
    sda::output::check_file(&a.output, "--output", None)?;
    let (system, shape) = system(&a.system)?;
    if a.length == 0 {
        bail!("--length: must be at least 1");
    }
    let observed = observed_any(
        &shape,
        &a.observations,
        a.operator.as_deref(),
        a.noise.as_deref(),
        a.length,
    )?;
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
