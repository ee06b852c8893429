//! `sda observe`: observations of a known trajectory, for experiments with a ground truth.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sda::assimilate::observe;
use sda::data::read_trajectories;
use sda::io::{Array, write_atomic, write_npy};
use sda::score::operator::Operator;
use sda::score::table::{Design, Table};

use crate::common::noise;

/// Observe one trajectory of a file: writes OUTPUT/y.npy (y = A(x) + noise) and
/// OUTPUT/truth.npy (the trajectory, shape (1, L, D)).
#[derive(clap::Args)]
pub struct Args {
    /// Trajectories, e.g. data/test.npy (shape (N, L, D)).
    #[arg(
        value_name = "TRAJECTORIES",
        required_unless_present = "trajectories_flag",
        conflicts_with = "trajectories_flag"
    )]
    pub trajectories: Option<PathBuf>,
    /// The trajectories' file as `--trajectories FILE`, its spelling before (everywhere else
    /// `--trajectories` is a count).
    #[arg(
        long = "trajectories",
        id = "trajectories_flag",
        value_name = "FILE",
        hide = true
    )]
    pub trajectories_flag: Option<PathBuf>,
    /// Which trajectory.
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Keep the first LENGTH states (default: all).
    #[arg(long)]
    pub length: Option<usize>,
    /// Observation operator, e.g. 'stride:8|select:0' (not with --table).
    #[arg(long, required_unless_present = "table", conflicts_with = "table")]
    pub operator: Option<String>,
    /// Noise standard deviation (physical units): a number or a .npy of per-observation stds;
    /// with --table a number or LO:HI (each row's std drawn uniformly from [LO, HI]).
    #[arg(long, allow_hyphen_values = true)]
    pub noise: String,
    /// Write OUTPUT/obs.csv, a table of scattered measurements (time,index,value,std: --times
    /// random states, --stations random values of each, a different set each time, each row
    /// with its own std), instead of y.npy.
    #[arg(long)]
    pub table: bool,
    /// With --table: how many states are observed (chosen at random) [default: a quarter].
    #[arg(long, requires = "table")]
    pub times: Option<usize>,
    /// With --table: how many values of each observed state (chosen at random each time)
    /// [default: a quarter].
    #[arg(long, requires = "table")]
    pub stations: Option<usize>,
    /// Output folder.
    #[arg(long)]
    pub output: PathBuf,
    /// Random seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write y filled with this value instead of A(x) + noise: a constraint rather than a
    /// measurement (the paper's scenario 5 asks the vorticity on a ring to be 0.6).
    #[arg(long, allow_hyphen_values = true)]
    pub fill: Option<f32>,
}

/// Write a grid mask for the `mask:FILE.npy` operator term: 1 inside a ring
/// `inner < x² + y² < outer` of the [−1, 1]² square sampled on the grid, 0 elsewhere.
#[derive(clap::Args)]
pub struct MaskArgs {
    /// Grid size H (and W, if given as H,W), e.g. 64.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub size: Vec<usize>,
    /// Lower bound of x² + y².
    #[arg(long, default_value_t = 0.4)]
    pub inner: f64,
    /// Upper bound of x² + y².
    #[arg(long, default_value_t = 0.6)]
    pub outer: f64,
    /// Output .npy file (float32, (H, W)).
    #[arg(long)]
    pub output: PathBuf,
}

/// Checks that the output folder can be written (its parent exists, it is not a file).
fn preflight(dir: &std::path::Path) -> Result<()> {
    let folder = sda::output::Folder {
        path: dir,
        flag: "--output",
        what: "observations",
        markers: &[],
        resumable: false,
        bytes: None,
    };
    sda::output::check_folder(&folder, sda::output::Existing::Replace)?;
    Ok(())
}

pub fn run_mask(a: MaskArgs) -> Result<()> {
    sda::output::check_file(&a.output, "--output", None)?;
    let (h, w) = match a.size[..] {
        [n] => (n, n),
        [h, w] => (h, w),
        _ => bail!("--size: give H or H,W"),
    };
    if h < 2 || w < 2 {
        bail!("--size: the grid needs at least 2 × 2 points");
    }
    if !(a.inner < a.outer) {
        bail!("--inner {} must be below --outer {}", a.inner, a.outer);
    }
    let coord = |i: usize, n: usize| -1.0 + 2.0 * i as f64 / (n - 1) as f64;
    let data: Vec<f32> = (0..h * w)
        .map(|k| {
            let r2 = coord(k / w, h).powi(2) + coord(k % w, w).powi(2);
            f32::from(u8::from(a.inner < r2 && r2 < a.outer))
        })
        .collect();
    let count = data.iter().filter(|v| **v > 0.0).count();
    if count == 0 {
        bail!("--inner/--outer: the ring holds no grid point");
    }
    write_npy(&a.output, &Array::new(vec![h, w], data))
        .with_context(|| format!("--output {}", a.output.display()))?;
    println!(
        "ring mask {} < r² < {} on a {h} × {w} grid: {count} points → {}",
        a.inner,
        a.outer,
        a.output.display()
    );
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    preflight(&a.output)?;
    let file = crate::common::first_or_flag(&a.trajectories, &a.trajectories_flag);
    let x = sda::io::read_npy(file).with_context(|| file.display().to_string())?;
    if x.shape.len() < 3 {
        bail!(
            "{}: expected trajectories of shape (N, L, D), got {:?}",
            file.display(),
            x.shape
        );
    }
    let state_shape = x.shape[2..].to_vec();
    let x = read_trajectories(file, &state_shape)?;
    let (n, l, f) = (
        x.shape[0],
        x.shape[1],
        state_shape.iter().product::<usize>(),
    );
    if a.index >= n {
        bail!(
            "--index {}: {} holds {n} trajectories",
            a.index,
            file.display()
        );
    }
    let length = a.length.unwrap_or(l);
    if length == 0 || length > l {
        bail!("--length {length}: trajectories have {l} states");
    }
    let truth = x.data[a.index * l * f..(a.index * l + length) * f].to_vec();
    let mut truth_shape = vec![1, length];
    truth_shape.extend(&state_shape);
    if a.table {
        if a.fill.is_some() {
            bail!("--fill: not with --table");
        }
        let std = match a.noise.split_once(':') {
            Some((lo, hi)) => (lo.trim().parse(), hi.trim().parse()),
            None => (a.noise.trim().parse(), a.noise.trim().parse()),
        };
        let (Ok(lo), Ok(hi)) = std else {
            bail!("--noise {}: with --table, a number or LO:HI", a.noise);
        };
        let design = Design::new(length, f, a.times, a.stations, (lo, hi), a.seed);
        let table = Table::observe(&truth, length, f, &design)?;
        let path = a.output.join("obs.csv");
        write_atomic(&path, table.to_csv().as_bytes())?;
        write_npy(&a.output.join("truth.npy"), &Array::new(truth_shape, truth))?;
        println!(
            "observed trajectory {} ({length} states): {} rows at {} states → {}, truth.npy",
            a.index,
            table.rows.len(),
            design.times,
            path.display()
        );
        return Ok(());
    }
    let operator = a.operator.as_deref().unwrap_or_default();
    let op = Operator::parse(operator).context("--operator")?;
    let shape = op
        .output_shape(length, &state_shape)
        .context("--operator")?;
    let std = noise(&a.noise, &shape)?;
    let mut y = observe(&truth, length, &state_shape, &op, &std, a.seed)?;
    if let Some(v) = a.fill {
        if !v.is_finite() {
            bail!("--fill {v}: must be finite");
        }
        y.data.iter_mut().for_each(|y| *y = v);
    }
    write_npy(&a.output.join("y.npy"), &y)?;
    write_npy(&a.output.join("truth.npy"), &Array::new(truth_shape, truth))?;
    println!(
        "observed trajectory {} ({length} states) with '{}': y {:?} → {}/y.npy, truth.npy",
        a.index,
        operator,
        shape,
        a.output.display()
    );
    Ok(())
}
