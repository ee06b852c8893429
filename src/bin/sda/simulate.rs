//! `sda simulate`: trajectories of a system, split 80/10/10 by chain.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sda::data::{Splits, features, simulate_chains, simulate_with};
use sda::io::npy_bytes;
use sda::mcs::System;
use sda::output::{Existing, Folder, check_folder};
use sda::shard::Shards;

use crate::common::bar;
use crate::shard::{Opened, ShardArgs};

/// Simulate trajectories of a system and write DIR/{train,valid,test}.npy (float32, shape
/// (N, L, *state), physical units, split 80/10/10 by chain) and DIR/system.json.
#[derive(clap::Args)]
pub struct Args {
    /// The system: lorenz63, lorenz96, linear (a damped spring with an exact Kalman answer)
    /// or kolmogorov (2-D Navier–Stokes, states (u, v) of shape (2, size/coarsen, size/coarsen)).
    pub system: String,
    /// Output folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Number of independent chains.
    #[arg(long, default_value_t = 1024)]
    pub trajectories: usize,
    /// States kept per chain [default: 1024; kolmogorov: 64].
    #[arg(long)]
    pub length: Option<usize>,
    /// Transitions simulated and dropped before the first kept state [default: 1024;
    /// kolmogorov: 64].
    #[arg(long)]
    pub burn_in: Option<usize>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Kolmogorov: simulation grid points per axis [default: 256]; lorenz96: number of
    /// variables on the ring [default: 32; the benchmark's 40].
    #[arg(long)]
    pub size: Option<usize>,
    /// Lorenz-96 only: forcing F [default: 16; the benchmark's 8].
    #[arg(long, allow_hyphen_values = true)]
    pub forcing: Option<f64>,
    /// Lorenz-96 only: physical time per transition (one RK4 step) [default: 0.05].
    #[arg(long)]
    pub dt: Option<f64>,
    /// Lorenz-96 only: std of the additive noise after each transition [default: √0.05];
    /// 0 gives the deterministic model of the data-assimilation benchmarks (which has no
    /// transition density, so no particle filter and no log p(x)). `--noise` before: that name is
    /// the observation noise in every other command.
    #[arg(long = "process-noise", alias = "noise")]
    pub noise: Option<f64>,
    /// Kolmogorov only: block-averaging factor of the saved states [default: 4].
    #[arg(long)]
    pub coarsen: Option<usize>,
    /// Replace the data set already in --output (without it, one is never overwritten).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// The files of a data folder.
pub const DATA_FILES: [&str; 4] = ["system.json", "train.npy", "valid.npy", "test.npy"];

/// Checks a data folder's `--output` before its data set is made (`bytes` to be written):
/// refuses one that holds a data set unless `force`; returns whether it holds one.
pub fn check_data_folder(output: &Path, force: bool, bytes: u64) -> Result<bool> {
    Ok(check_folder(
        &Folder {
            path: output,
            flag: "--output",
            what: "a data set",
            markers: &DATA_FILES,
            resumable: false,
            bytes: Some(bytes),
        },
        Existing::from_flags(force, false),
    )?)
}

/// The system with the flags applied, the states kept per chain and the burn-in.
fn resolve(a: &Args) -> Result<(System, usize, usize)> {
    let mut system = System::from_name(&a.system)?;
    match &mut system {
        System::Kolmogorov(k) => {
            k.size = a.size.unwrap_or(k.size);
            k.coarsen = a.coarsen.unwrap_or(k.coarsen);
            k.check()?;
        }
        System::Lorenz96(l) => {
            if a.coarsen.is_some() {
                bail!("--coarsen: only for kolmogorov, not lorenz96");
            }
            l.n = a.size.unwrap_or(l.n);
            l.forcing = a.forcing.unwrap_or(l.forcing);
            l.dt = a.dt.unwrap_or(l.dt);
            l.noise = a.noise.unwrap_or(l.noise);
            if l.n < 4 {
                bail!("--size {}: Lorenz-96 needs at least 4 variables", l.n);
            }
            if !(l.dt.is_finite() && l.dt > 0.0) {
                bail!("--dt {}: must be positive", l.dt);
            }
            if !(l.noise.is_finite() && l.noise >= 0.0) {
                bail!("--process-noise {}: must be a non-negative number", l.noise);
            }
            if !l.forcing.is_finite() {
                bail!("--forcing {}: must be finite", l.forcing);
            }
        }
        _ => {
            if a.size.is_some() || a.coarsen.is_some() {
                bail!(
                    "--size/--coarsen: only for kolmogorov and lorenz96, not {}",
                    a.system
                );
            }
            if a.forcing.is_some() || a.dt.is_some() || a.noise.is_some() {
                bail!(
                    "--forcing/--dt/--process-noise: only for lorenz96, not {}",
                    a.system
                );
            }
        }
    }
    let n = system.default_length();
    Ok((system, a.length.unwrap_or(n), a.burn_in.unwrap_or(n)))
}

/// Checks --output before the simulation; returns whether it holds a data set.
fn preflight(a: &Args, system: &System, length: usize) -> Result<bool> {
    // Everything about the output is checked before the simulation: an existing data set, a
    // missing parent folder, and room for the float32 arrays.
    let values = a.trajectories as u64 * length as u64 * features(&system.state_shape()) as u64;
    check_data_folder(&a.output, a.force, 4 * values + 4096)
}

pub fn run(a: Args) -> Result<()> {
    let (system, length, burn_in) = resolve(&a)?;
    if a.trajectories < 3 {
        bail!(
            "--trajectories {}: needs at least 3 chains to split 80/10/10",
            a.trajectories
        );
    }
    preflight(&a, &system, length)?;
    let sharded = match crate::shard::open(&a.shard, &a.output)? {
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Some(s),
        Opened::Whole => None,
    };
    if let Some(sharded) = sharded {
        let chains = sharded.shard.range(a.trajectories);
        let pb = bar(chains.len() as u64, "simulate");
        let x = simulate_chains(&system, chains.clone(), length, burn_in, a.seed, &|_| {
            pb.inc(1)
        })
        .with_context(|| format!("simulating chains {chains:?}"))?;
        pb.finish_and_clear();
        let what = format!(
            "chains {}..{} of {}",
            chains.start, chains.end, a.trajectories
        );
        return sharded.finish("npy", &npy_bytes(&x), &what);
    }
    let pb = bar(a.trajectories as u64, "simulate");
    let busy = Mutex::new(Duration::ZERO);
    let done = |t: Duration| {
        *busy.lock().expect("no panic while holding the lock") += t;
        pb.inc(1);
    };
    let t0 = std::time::Instant::now();
    let info = simulate_with(
        &a.output,
        system,
        a.trajectories,
        length,
        burn_in,
        a.seed,
        &done,
    )
    .with_context(|| format!("simulating into {}", a.output.display()))?;
    pb.finish_and_clear();
    println!(
        "{}: {} chains × {} states (burn-in {}) in {:.1} s → {}/{{train,valid,test}}.npy, system.json",
        info.system.name(),
        a.trajectories,
        length,
        burn_in,
        t0.elapsed().as_secs_f64(),
        a.output.display()
    );
    if let System::Kolmogorov(k) = &info.system {
        let busy = busy.into_inner().expect("no panic while holding the lock");
        let states = a.trajectories * (length + burn_in);
        println!(
            "{:.4} s of CPU time per simulated state ({}² grid, {} threads)",
            busy.as_secs_f64() / states as f64,
            k.size,
            rayon::current_num_threads()
        );
        let train = sda::io::read_npy(&a.output.join("train.npy"))?;
        let [_, h, w] = k.state_shape();
        println!(
            "training set {}",
            k.statistics(&train.data, train.shape[0], length, h, w)
        );
    }
    Ok(())
}

/// `sda merge` of a sharded simulation: the chains of every part, in order, split and written
/// as one data set.
pub fn merge(a: Args, shards: Shards) -> Result<()> {
    let (system, length, burn_in) = resolve(&a)?;
    let holds = preflight(&a, &system, length)?;
    let chains = shards.concatenated()?;
    if chains.shape[0] != a.trajectories {
        bail!(
            "{}: the parts hold {} chains, not the {} of the command line",
            shards.dir().display(),
            chains.shape[0],
            a.trajectories
        );
    }
    let splits = Splits::from_chains(system, chains, burn_in, a.seed)?;
    if holds {
        sda::output::remove_outputs(&a.output, &DATA_FILES)?;
    }
    splits.save(&a.output)?;
    shards.remove()?;
    println!(
        "{}: {} chains × {length} states (burn-in {burn_in}) merged → {}/{{train,valid,test}}.npy, system.json",
        splits.info.system.name(),
        a.trajectories,
        a.output.display()
    );
    Ok(())
}
