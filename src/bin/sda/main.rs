//! `sda`: score-based data assimilation from the command line.
//!
//! Simulate training data, train a score network, assimilate observations, draw from the prior,
//! and benchmark; every subcommand has `--help`.

mod assimilate;
mod baseline;
mod bench;
mod common;
mod demo;
mod evaluate;
mod filter;
mod import;
mod observe;
mod plot;
mod shard;
mod simulate;
mod slurm;
mod study;
mod train;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

/// Score-based data assimilation (Rozet & Louppe, NeurIPS 2023): infer whole trajectories of a
/// dynamical system from sparse, noisy observations with a diffusion model trained on short
/// windows of simulated trajectories.
///
/// A typical session:
///   sda simulate lorenz63 --output data
///   sda train --data data --output run
///   sda observe --trajectories data/test.npy --index 0 --operator 'stride:8|select:0' --noise 0.4 --output obs
///   sda assimilate --model run --observations obs/y.npy --operator 'stride:8|select:0' --noise 0.4 --length 65 --output x.npy
///
/// Your own trajectories ((N, L, D) or (N, L, C, H, W) .npy) and a table of measurements
/// (obs.csv: time,index,value,std):
///   sda import --train X.npy --output data
///   sda train --data data --output run
///   sda assimilate --model run --observations obs.csv --length 64 --output x.npy
///
/// Fields (Kolmogorov flow, 32² for a CPU; the paper's 64² is the default):
///   sda simulate kolmogorov --size 128 --coarsen 4 --trajectories 256 --output kdata
///   sda train --data kdata --output krun --preset reduced
///   sda observe --trajectories kdata/test.npy --length 8 --operator 'stride:4|coarsen:4' --noise 0.1 --output kobs
///   sda assimilate --model krun --observations kobs/y.npy --operator 'stride:4|coarsen:4' --noise 0.1 --length 8 --output kx.npy
///   sda plot vorticity kx.npy --reference kobs/truth.npy --output kx.png
#[derive(Parser)]
#[command(name = "sda", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate trajectories of a system and write train/valid/test splits.
    Simulate(simulate::Args),
    /// Import trajectories of your own system (.npy arrays) as a data folder.
    Import(import::Args),
    /// Train a score network on simulated trajectories.
    Train(train::Args),
    /// Make observations y = A(x) + noise of a trajectory (for experiments with a known truth).
    Observe(observe::Args),
    /// Write a ring mask for the `mask:FILE.npy` operator term.
    Mask(observe::MaskArgs),
    /// Draw trajectories from the posterior p(x | y) given observations.
    Assimilate(assimilate::Args),
    /// Draw trajectories from the trained prior p(x) (no observations).
    Sample(assimilate::SampleArgs),
    /// Draw reference trajectories from p(x | y) with a bootstrap particle filter (no model), or
    /// run a classical method (--method enkf, etkf, letkf, enks, ienks, var3d, var4d, oi, …).
    Filter(filter::Args),
    /// Score samples against a reference (W1, MMD, log-densities) and a truth (RMSE, CRPS, …).
    Evaluate(evaluate::Args),
    /// Run the paper's Lorenz-63 study (Figure 3): models, filters, W1 against C and k; or
    /// `study lorenz96`: the classical methods on DAPPER's Lorenz-96 benchmarks.
    Study(study::Args),
    /// Draw PNG pictures of trajectories and of flow fields (vorticity).
    Plot(plot::Args),
    /// Run a small Lorenz-63 assimilation end to end (simulate, train, observe, assimilate).
    Demo(demo::Args),
    /// Measure training and guided-evaluation speed.
    Bench(bench::Args),
    /// Put the parts of a sharded run (`--shard I/N`, kept in OUTPUT.shards/) together into
    /// its output, the same bits as an unsharded run; refuses missing or foreign parts.
    Merge(MergeArgs),
    /// Run sda commands on a Slurm cluster: `submit` (job arrays of shards and their merge),
    /// `status`, `resubmit`.
    Slurm(slurm::Args),
}

/// `sda merge DIR`.
#[derive(clap::Args)]
struct MergeArgs {
    /// The sharded run's output (or its OUTPUT.shards/ folder).
    dir: PathBuf,
}

/// Re-reads the command line the shards ran and lets its command put the parts together.
fn merge(a: MergeArgs) -> Result<()> {
    let shards = sda::shard::Shards::complete(&a.dir)?;
    shard::enter(&shards)?;
    let args = std::iter::once("sda".to_string()).chain(shards.manifest().args.iter().cloned());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => bail!(
            "{}: the shards' command line does not parse with this build ({})",
            shards.dir().display(),
            e.kind()
        ),
    };
    match cli.command {
        Command::Simulate(a) => simulate::merge(a, shards),
        Command::Assimilate(a) => assimilate::merge(a, shards),
        Command::Sample(a) => assimilate::merge_sample(a, shards),
        Command::Study(a) => study::merge(a, shards),
        _ => bail!("{}: this command is not sharded", shards.dir().display()),
    }
}

/// Keeps freed memory in the process for reuse: the samplers and trainers allocate and free
/// the same multi-megabyte activation buffers at every step, and glibc's defaults return them
/// to the kernel, so that every step pays page faults to get them back zeroed.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Simulate(a) => simulate::run(a),
        Command::Import(a) => import::run(a),
        Command::Train(a) => train::run(a),
        Command::Observe(a) => observe::run(a),
        Command::Mask(a) => observe::run_mask(a),
        Command::Assimilate(a) => assimilate::run(a),
        Command::Sample(a) => assimilate::run_sample(a),
        Command::Filter(a) => filter::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Study(a) => study::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Merge(a) => merge(a),
        Command::Slurm(a) => slurm::run(a),
    };
    if let Err(e) = result {
        // One line: the context chain, outermost first.
        // A cause that its outer message already ends with is said once.
        let mut msg: Vec<String> = Vec::new();
        for c in e.chain().map(|c| c.to_string()) {
            if !msg.last().is_some_and(|m| m.ends_with(&c)) {
                msg.push(c);
            }
        }
        eprintln!("error: {}", msg.join(": "));
        std::process::exit(1);
    }
}
