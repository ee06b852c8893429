//! `sda plot`: pictures of trajectories and of 2-D flow fields.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use sda::io::read_npy;
use sda::plot::{Observations, coordinate_labels, trajectories};
use sda::score::operator::Operator;

mod vorticity;
use vorticity::{VortArgs, run_vorticity};

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
    /// Vorticity of 2-D velocity fields (e.g. the Kolmogorov flow) in the paper's "icefire"
    /// colours: a grid of samples (rows, the truth first) by states (columns), optionally with
    /// the unobserved cells faded, and an animated GIF of the first sample.
    Vorticity(VortArgs),
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
        What::Vorticity(v) => run_vorticity(v),
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
            Some(
                Observations::for_operator(&op, values, l, d)
                    .with_context(|| format!("--observations {}", path.display()))?,
            )
        }
        _ => None,
    };
    let out = a.output.unwrap_or_else(|| a.samples.with_extension("png"));
    let labels = coordinate_labels(d);
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
