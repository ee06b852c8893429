//! `sda simulate`: trajectories of a system, split 80/10/10 by chain.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sda::data::simulate;
use sda::mcs::System;

/// Simulate trajectories of a system and write DIR/{train,valid,test}.npy (float32, shape
/// (N, L, D), physical units, split 80/10/10 by chain) and DIR/system.json.
#[derive(clap::Args)]
pub struct Args {
    /// The system: lorenz63, lorenz96 or linear (a damped spring with an exact Kalman answer).
    pub system: String,
    /// Output folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Number of independent chains.
    #[arg(long, default_value_t = 1024)]
    pub trajectories: usize,
    /// States kept per chain.
    #[arg(long, default_value_t = 1024)]
    pub length: usize,
    /// Transitions simulated and dropped before the first kept state.
    #[arg(long, default_value_t = 1024)]
    pub burn_in: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let system = System::from_name(&a.system)?;
    let t0 = std::time::Instant::now();
    let info = simulate(
        &a.output,
        system,
        a.trajectories,
        a.length,
        a.burn_in,
        a.seed,
    )
    .with_context(|| format!("simulating into {}", a.output.display()))?;
    println!(
        "{}: {} chains × {} states (burn-in {}) in {:.1} s → {}/{{train,valid,test}}.npy, system.json",
        info.system.name(),
        a.trajectories,
        a.length,
        a.burn_in,
        t0.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}
