//! `sda observe`: observations of a known trajectory, for experiments with a ground truth.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sda::assimilate::observe;
use sda::data::read_trajectories;
use sda::io::{Array, write_npy};
use sda::score::operator::Operator;

use crate::common::noise;

/// Observe one trajectory of a file: writes OUTPUT/y.npy (y = A(x) + noise) and
/// OUTPUT/truth.npy (the trajectory, shape (1, L, D)).
#[derive(clap::Args)]
pub struct Args {
    /// Trajectories, e.g. data/test.npy (shape (N, L, D)).
    #[arg(long)]
    pub trajectories: PathBuf,
    /// Which trajectory.
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Keep the first LENGTH states (default: all).
    #[arg(long)]
    pub length: Option<usize>,
    /// Observation operator, e.g. 'stride:8|select:0'.
    #[arg(long)]
    pub operator: String,
    /// Noise standard deviation (physical units): a number or a .npy of per-observation stds.
    #[arg(long, allow_hyphen_values = true)]
    pub noise: String,
    /// Output folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Random seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let x = sda::io::read_npy(&a.trajectories).with_context(|| "--trajectories")?;
    if x.shape.len() < 3 {
        bail!(
            "--trajectories {}: expected shape (N, L, D), got {:?}",
            a.trajectories.display(),
            x.shape
        );
    }
    let state_shape = x.shape[2..].to_vec();
    let x = read_trajectories(&a.trajectories, &state_shape)?;
    let (n, l, f) = (
        x.shape[0],
        x.shape[1],
        state_shape.iter().product::<usize>(),
    );
    if a.index >= n {
        bail!(
            "--index {}: {} holds {n} trajectories",
            a.index,
            a.trajectories.display()
        );
    }
    let length = a.length.unwrap_or(l);
    if length == 0 || length > l {
        bail!("--length {length}: trajectories have {l} states");
    }
    let op = Operator::parse(&a.operator).context("--operator")?;
    let shape = op
        .output_shape(length, &state_shape)
        .context("--operator")?;
    let std = noise(&a.noise, &shape)?;
    let truth = x.data[a.index * l * f..(a.index * l + length) * f].to_vec();
    let y = observe(&truth, length, &state_shape, &op, &std, a.seed)?;
    let mut truth_shape = vec![1, length];
    truth_shape.extend(&state_shape);
    write_npy(&a.output.join("y.npy"), &y)?;
    write_npy(&a.output.join("truth.npy"), &Array::new(truth_shape, truth))?;
    println!(
        "observed trajectory {} ({length} states) with '{}': y {:?} → {}/y.npy, truth.npy",
        a.index,
        a.operator,
        shape,
        a.output.display()
    );
    Ok(())
}
