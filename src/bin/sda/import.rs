//! `sda import`: a data folder from trajectories made elsewhere.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sda::data::shape_text;
use sda::import::import_files;
use sda::mcs::System;
use sda::output::{Existing, Folder, check_folder};

use crate::simulate::DATA_FILES;

/// Import trajectories of your own system: writes DIR/{train,valid,test}.npy (float32, physical
/// units) and DIR/system.json (`system: external`, the state shape, the normalisation: per value
/// for vectors, per channel for fields, and where the data came from). `sda train`,
/// `assimilate`, `sample`, `evaluate` and `plot` then work on it; the particle filter and
/// log p(x) need a simulator and are not available.
#[derive(clap::Args)]
pub struct Args {
    /// Trajectories (.npy, float32 or float64): (N, L, D) vectors or (N, L, C, H, W) fields.
    /// Without --valid/--test they are shuffled (--seed) and split by --split.
    #[arg(long)]
    pub train: PathBuf,
    /// Validation trajectories (with --test): the splits are then kept as given.
    #[arg(long, requires = "test", conflicts_with = "split")]
    pub valid: Option<PathBuf>,
    /// Test trajectories (with --valid).
    #[arg(long, requires = "valid")]
    pub test: Option<PathBuf>,
    /// Fractions train,valid,test of --train's trajectories [default: 0.8,0.1,0.1].
    #[arg(long, value_delimiter = ',')]
    pub split: Option<Vec<f64>>,
    /// Constant context channels of field data (.npy, (Cc, H, W)), given to the network beside
    /// every state (as the forcing sin(4y) is for Kolmogorov flow).
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// Seed of the shuffle before splitting.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output data folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Replace the data set already in --output (without it, one is never overwritten).
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<()> {
    let split = match a.split.as_deref() {
        None => None,
        Some(&[t, v, s]) => Some([t, v, s]),
        Some(_) => bail!("--split: give three fractions train,valid,test, e.g. 0.8,0.1,0.1"),
    };
    let valid_test = a.valid.as_deref().zip(a.test.as_deref());
    // An existing data set, a file in the way, an unwritable folder or a full disk fail before
    // anything is read. The float32 copies take at most the inputs' size.
    let inputs = [
        Some(&a.train),
        a.valid.as_ref(),
        a.test.as_ref(),
        a.context.as_ref(),
    ];
    let bytes = inputs
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum::<u64>();
    check_folder(
        &Folder {
            path: &a.output,
            flag: "--output",
            what: "a data set",
            markers: &DATA_FILES,
            resumable: false,
            bytes: Some(bytes + 4096),
        },
        Existing::from_flags(a.force, false),
    )?;
    let info = import_files(
        &a.output,
        &a.train,
        valid_test,
        split,
        a.seed,
        a.context.as_deref(),
    )
    .with_context(|| format!("importing into {}", a.output.display()))?;
    let System::External(e) = &info.system else {
        unreachable!("imports are external")
    };
    let [t, v, s] = e.provenance.trajectories;
    println!(
        "external system: states of shape ({}), {t} + {v} + {s} trajectories (train, valid, \
         test){} → {}/{{train,valid,test}}.npy, system.json",
        shape_text(&info.state_shape),
        if e.context_channels > 0 {
            format!(", {} context channel(s)", e.context_channels)
        } else {
            String::new()
        },
        a.output.display()
    );
    Ok(())
}
