//! `sda plot`: pictures of trajectories.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sda::io::read_npy;
use sda::plot::{Observations, trajectories};
use sda::score::operator::{Operator, Term};

/// Draw PNG pictures.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand)]
pub enum What {
    /// Each coordinate against time: samples as thin semi-transparent lines, a reference set
    /// (e.g. a particle filter's) in another colour, the truth in black, observations as crosses.
    Trajectories(TrajArgs),
}

#[derive(clap::Args)]
pub struct TrajArgs {
    /// Samples, (N, L, D).
    pub samples: PathBuf,
    /// Reference trajectories, (M, L, D).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// True trajectory, (1, L, D).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Observations y (.npy) to draw as crosses (needs --operator).
    #[arg(long, requires = "operator")]
    pub observations: Option<PathBuf>,
    /// The operator of --observations (`stride`, `last` and `select` terms can be drawn).
    #[arg(long)]
    pub operator: Option<String>,
    /// Output PNG (default: the samples' path with .png).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    match a.what {
        What::Trajectories(t) => run_trajectories(t),
    }
}

fn run_trajectories(a: TrajArgs) -> Result<()> {
    let samples = read_npy(&a.samples).with_context(|| "samples")?;
    if samples.shape.len() != 3 {
        bail!(
            "{}: expected (N, L, D), got {:?}",
            a.samples.display(),
            samples.shape
        );
    }
    let (l, d) = (samples.shape[1], samples.shape[2]);
    let load = |p: &Option<PathBuf>, flag: &str| {
        p.as_ref()
            .map(|p| read_npy(p).with_context(|| flag.to_string()))
            .transpose()
    };
    let reference = load(&a.reference, "--reference")?;
    let truth = load(&a.truth, "--truth")?;
    let observations = match (&a.observations, &a.operator) {
        (Some(path), Some(spec)) => {
            let op = Operator::parse(spec).context("--operator")?;
            let values = read_npy(path).with_context(|| "--observations")?;
            let expected = op.output_shape(l, &[d]).context("--operator")?;
            if values.shape != expected {
                bail!(
                    "--observations {}: expected shape {expected:?} for '{spec}' on {l} states, got {:?}",
                    path.display(),
                    values.shape
                );
            }
            let channels = match op.terms().iter().rev().find_map(|t| match t {
                Term::Select(idx) => Some(idx.clone()),
                _ => None,
            }) {
                Some(idx) => idx.into_iter().map(Some).collect(),
                None => (0..d).map(Some).collect(),
            };
            Some(Observations {
                times: op.times(l)?,
                channels,
                values,
            })
        }
        _ => None,
    };
    let out = a.output.unwrap_or_else(|| a.samples.with_extension("png"));
    let labels: Vec<String> = if d == 3 {
        ["x", "y", "z"].map(String::from).to_vec()
    } else {
        (0..d).map(|i| format!("x{i}")).collect()
    };
    trajectories(
        &out,
        &samples,
        reference.as_ref(),
        truth.as_ref(),
        observations.as_ref(),
        &labels,
    )?;
    println!("→ {}", out.display());
    Ok(())
}
