//! `sda import`: a data folder from trajectories made elsewhere, or from one long record in a
//! NetCDF file cut into windows.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sda::data::shape_text;
use sda::import::import_files;
use sda::mcs::Layout;
use sda::mcs::System;
use sda::netcdf::{ReadSpec, Select, parse_coarsen};
use sda::record::{Gaps, SplitByTime, Windows};
use sda::transform::TransformSpec;

use crate::simulate::check_data_folder;

/// Import trajectories of your own system: writes DIR/{train,valid,test}.npy (float32, physical
/// units) and DIR/system.json (`system: external`, the state shape, the normalisation: per value
/// for vectors, per channel for fields, and where the data came from). `sda train`,
/// `assimilate`, `sample`, `evaluate` and `plot` then work on it; the particle filter and
/// log p(x) need a simulator and are not available.
///
/// Or import one long record: --netcdf FILE --variables U,V --window L cuts the record into
/// windows of L steps in a training, a validation and a test period (--split-by-time), keeps
/// its time axis and coordinates in system.json, masks values missing at every time
/// (mask.npy) and drops the windows with other missing values (docs/real-data.md).
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["train", "netcdf"]))]
pub struct Args {
    /// Trajectories (.npy, float32 or float64): (N, L, D) vectors or (N, L, C, H, W) fields.
    /// Without --valid/--test they are shuffled (--seed) and split by --split.
    #[arg(long, conflicts_with = "netcdf")]
    pub train: Option<PathBuf>,
    /// A record in a NetCDF file (NetCDF-3 or NetCDF-4), cut into windows of --window steps.
    #[arg(long, requires_all = ["variables", "window"], conflicts_with_all = ["split", "context"])]
    pub netcdf: Option<PathBuf>,
    /// The variables of --netcdf that make the state, e.g. UWND,VWND: fields on the same grid
    /// become channels, series of stations are put side by side.
    #[arg(long, value_delimiter = ',', requires = "netcdf")]
    pub variables: Vec<String>,
    /// The time dimension of --netcdf [default: the unlimited dimension, or the one whose
    /// coordinate's units read "… since …", or the one named time].
    #[arg(long, requires = "netcdf")]
    pub time: Option<String>,
    /// Time steps per window L.
    #[arg(long, requires = "netcdf")]
    pub window: Option<usize>,
    /// Time steps between the starts of consecutive windows (windows overlap when it is less
    /// than --window).
    #[arg(long, default_value_t = 1, requires = "netcdf")]
    pub stride: usize,
    /// The training, validation and test periods, in this order: fractions of the time axis
    /// (0.8,0.1,0.1) or time steps (100,16,16); the test's may be 0. No window crosses from one
    /// period into the next [default: 0.8,0.1,0.1].
    #[arg(long, value_delimiter = ',', requires = "netcdf")]
    pub split_by_time: Option<Vec<f64>>,
    /// Keep part of a dimension of --netcdf, by index as in Python: DIM=START:END[:STEP] or
    /// DIM=I (repeat for several).
    #[arg(long, requires = "netcdf")]
    pub select: Vec<Select>,
    /// Average blocks of K cells of a dimension of --netcdf (after --select), missing values
    /// left out: DIM=K (repeat for several).
    #[arg(long, value_parser = parse_coarsen, requires = "netcdf")]
    pub coarsen: Vec<(String, usize)>,
    /// Values of --netcdf missing at some times but not all: drop the windows that hold one,
    /// put those values into the fixed mask (mask.npy) with the values missing at every time,
    /// or keep every window with its missing values filled with 0 in normalised units and
    /// write {train,valid,test}-observed.npy beside the trajectories (their shape, 1 observed,
    /// 0 missing).
    #[arg(long, value_enum, default_value_t = Gaps::Drop, requires = "netcdf")]
    pub gaps: Gaps,
    /// Transforms of positive or bounded variables, learnt in place of the values: one for all
    /// (sqrt, log, log:C for ln(y + C) of quantities with zeros, logit for values in (0, 1)),
    /// or NAME=T for some (UWND=none,SPEED=sqrt), NAME a variable of --netcdf or the index of
    /// a channel (fields) or component (vectors) of --train. Samples are mapped back to
    /// physical units [default: none].
    #[arg(long, value_delimiter = ',')]
    pub transform: Vec<String>,
    /// Validation trajectories: the splits are then kept as given (without --test there is no
    /// test.npy; the test period is yours).
    #[arg(long, conflicts_with_all = ["split", "netcdf"])]
    pub valid: Option<PathBuf>,
    /// Test trajectories (with --valid).
    #[arg(long, requires = "valid")]
    pub test: Option<PathBuf>,
    /// Fractions train,valid,test of --train's trajectories [default: 0.8,0.1,0.1].
    #[arg(long, value_delimiter = ',')]
    pub split: Option<Vec<f64>>,
    /// Constant context channels of field data (.npy, (Cc, H, W)), given to the network beside
    /// every state (as the forcing sin(4y) is for Kolmogorov flow) (`--context` before: that
    /// name is the autoregressive window's context states in `assimilate`).
    #[arg(long = "context-fields", alias = "context")]
    pub context: Option<PathBuf>,
    /// How the values of a vector state sit in space: `vector` (no order) or `ring` (a
    /// periodic 1-D grid, as Lorenz-96: `sda train` then shares one network along the ring).
    #[arg(long, value_enum, default_value_t = Layout::Vector, conflicts_with = "netcdf")]
    pub layout: Layout,
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
    if let Some(file) = &a.netcdf {
        return run_netcdf(&a, file);
    }
    let train = a.train.as_ref().expect("--train or --netcdf");
    let split = match a.split.as_deref() {
        None => None,
        Some(&[t, v, s]) => Some([t, v, s]),
        Some(_) => bail!("--split: give three fractions train,valid,test, e.g. 0.8,0.1,0.1"),
    };
    let valid_test = a.valid.as_deref().map(|v| (v, a.test.as_deref()));
    let transform = TransformSpec::parse(&a.transform)?;
    // An existing data set, a file in the way, an unwritable folder or a full disk fail before
    // anything is read. The float32 copies take at most the inputs' size.
    let inputs = [
        Some(train),
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
    check_data_folder(&a.output, a.force, bytes + 4096)?;
    let info = import_files(
        &a.output,
        train,
        valid_test,
        split,
        a.seed,
        a.context.as_deref(),
        a.layout,
        transform,
    )
    .with_context(|| format!("importing into {}", a.output.display()))?;
    let System::External(e) = &info.system else {
        unreachable!("imports are external")
    };
    let [t, v, s] = e.provenance.trajectories;
    println!(
        "external system: states of shape ({}), {t} + {v} + {s} trajectories (train, valid, \
         test){}{} → {}/{{train,valid,test}}.npy, system.json",
        shape_text(&info.state_shape),
        if e.context_channels > 0 {
            format!(", {} context channel(s)", e.context_channels)
        } else {
            String::new()
        },
        if info.transforms.is_identity() {
            String::new()
        } else {
            format!(", transforms {}", info.transforms.describe())
        },
        a.output.display()
    );
    Ok(())
}

fn run_netcdf(a: &Args, file: &std::path::Path) -> Result<()> {
    let window = a.window.expect("--window is required with --netcdf");
    let split = SplitByTime::parse(a.split_by_time.as_deref().unwrap_or(&[0.8, 0.1, 0.1]))?;
    let transform = TransformSpec::parse(&a.transform)?;
    // The windows hold at most ⌈L/S⌉ copies of each value of the file, as float32.
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let copies = window.div_ceil(a.stride.max(1)) as u64;
    check_data_folder(&a.output, a.force, bytes.saturating_mul(copies) + 4096)?;
    let record = sda::netcdf::read(
        file,
        &ReadSpec {
            variables: a.variables.clone(),
            time: a.time.clone(),
            select: a.select.clone(),
            coarsen: a.coarsen.clone(),
        },
    )?;
    let cut = sda::record::cut(
        &record,
        &Windows {
            window,
            stride: a.stride,
            split,
            gaps: a.gaps,
            transform,
        },
    )?;
    sda::record::write(&a.output, &cut)
        .with_context(|| format!("importing into {}", a.output.display()))?;
    println!("{}", cut.summary());
    println!(
        "→ {}/{{train,valid{}}}.npy{}{}, system.json",
        a.output.display(),
        if cut.splits.test.shape[0] > 0 {
            ",test"
        } else {
            ""
        },
        if cut.mask.is_some() { ", mask.npy" } else { "" },
        if cut.observed.is_some() {
            ", {train,valid,test}-observed.npy"
        } else {
            ""
        }
    );
    Ok(())
}
