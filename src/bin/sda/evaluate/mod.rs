//! `sda evaluate`: metrics of posterior samples against a reference and a truth.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sda::data::read_info;
use sda::evaluate::{TimeAveraged, evaluate_at, resimulation};
use sda::io::read_npy;
use sda::mcs::System;

use crate::assimilate::observed_any;

mod report;
use report::{print_extras, print_scores};

/// Score samples (e.g. from `sda assimilate`) against a reference set (e.g. from `sda filter`)
/// and a true trajectory: exact Wasserstein-1, MMD, mean log p(x_2:L | x_1) under the true
/// transition, mean log p(y | x), RMSE of the posterior mean, spread, CRPS and rank histogram.
#[derive(clap::Args)]
pub struct Args {
    /// Samples, (N, L, D): a file of `sda assimilate`, `sample` or `filter`.
    #[arg(
        value_name = "SAMPLES",
        required_unless_present = "samples_flag",
        conflicts_with = "samples_flag"
    )]
    pub samples: Option<PathBuf>,
    /// The samples' file as `--samples FILE`, its spelling before (everywhere else
    /// `--samples` is a count).
    #[arg(
        long = "samples",
        id = "samples_flag",
        value_name = "FILE",
        hide = true
    )]
    pub samples_flag: Option<PathBuf>,
    /// Reference samples, (M, L, D) (e.g. a particle filter's).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// The true trajectory, (1, L, *state) or (L, *state).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// The system (a name, or a data folder with system.json) for log p(x_2:L | x_1).
    #[arg(long)]
    pub system: Option<String>,
    /// Observations y (.npy, with --operator and --noise) or a table of observations (.csv,
    /// time,index,value,std), for log p(y | x) and std(A(x) − y).
    #[arg(long)]
    pub observations: Option<PathBuf>,
    /// Where the trajectory starts in the record of --system (a data folder), for a table of
    /// dates: a step of the record or a date. [default: the table's earliest date]
    #[arg(long, requires = "system")]
    pub start: Option<String>,
    /// Observation operator of --observations.
    #[arg(long)]
    pub operator: Option<String>,
    /// Observation noise std (number or .npy).
    #[arg(long, allow_hyphen_values = true)]
    pub noise: Option<String>,
    /// Field samples (Kolmogorov, with --system DATA_DIR): re-simulate the first state of this
    /// many samples with the simulator and report how far the physics drifts from each sample.
    #[arg(long, default_value_t = 4)]
    pub resimulate: usize,
    /// DAPPER's time-averaged scores (needs --truth): average the per-state RMSE of the mean,
    /// spread and CRPS over the states after this one (index > K; e.g. 400 for t > 20 at
    /// dt = 0.05).
    #[arg(long)]
    pub skip: Option<usize>,
    /// With --skip: average over the states this operator observes only (its stride/last
    /// terms), e.g. stride:4@4 for DAPPER's analysis ("a") statistics at dko = 4.
    #[arg(long)]
    pub at: Option<String>,
    /// Score only the values that were not observed (the held-out values of --observations,
    /// a table or an operator that picks values): RMSE, CRPS, spread and coverage there
    /// (`--hidden` before: that name is the U-Net's channels in `train`).
    #[arg(long = "unobserved", alias = "hidden", requires = "observations")]
    pub hidden: bool,
    /// Score only the values where this .npy is non-zero: of the state's shape (every state)
    /// or (L, *state). With --unobserved, the values both keep.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A system from a name or a data folder.
pub fn system(spec: &str) -> Result<System> {
    let path = std::path::Path::new(spec);
    if path.is_dir() {
        Ok(read_info(path)
            .with_context(|| format!("--system {spec}"))?
            .system)
    } else {
        Ok(System::from_name(spec).context("--system")?)
    }
}

impl Args {
    /// The samples' file, however it was given.
    fn samples(&self) -> &Path {
        crate::common::first_or_flag(&self.samples, &self.samples_flag)
    }
}

pub fn run(a: Args) -> Result<()> {
    let samples = read_npy(a.samples()).with_context(|| a.samples().display().to_string())?;
    if samples.shape.len() < 3 || samples.shape[0] == 0 {
        bail!(
            "{}: expected a non-empty (N, L, D) array of samples, got {:?}",
            a.samples().display(),
            samples.shape
        );
    }
    let reference = a
        .reference
        .as_ref()
        .map(|p| read_npy(p).with_context(|| "--reference"))
        .transpose()?;
    let truth = a
        .truth
        .as_ref()
        .map(|p| read_npy(p).with_context(|| "--truth"))
        .transpose()?;
    let system = a.system.as_deref().map(system).transpose()?;
    let shape = samples.shape[2..].to_vec();
    let observed = observations(&a, &shape, samples.shape[1])?;
    if let Some(System::External(_)) = &system {
        let note = "log p(x_2:L | x_1): not available (an imported system has no simulator, so \
                    no transition density)";
        // Beside --json's object, the note goes to stderr so that stdout stays JSON.
        if a.json {
            eprintln!("{note}");
        } else {
            println!("{note}");
        }
    }
    let averaged = averaged(&a, &samples, truth.as_ref())?;
    if let Some(s) = &system
        && s.deterministic()
        && !matches!(s, System::External(_))
        && a.system.is_some()
    {
        eprintln!(
            "note: this {} system is deterministic (noise 0): no transition density, so no log p(x)",
            s.name()
        );
    }
    let (keep, scored) = scored(&a, &samples.shape[1..], observed.as_ref())?;
    if let Some(what) = &scored {
        if a.json {
            eprintln!("{what}");
        } else {
            println!("{what}");
        }
    }
    let e = evaluate_at(
        &samples,
        reference.as_ref(),
        truth.as_ref(),
        system.as_ref().and_then(|s| s.chain().ok()),
        observed.as_ref().map(|o| (o, shape.as_slice())),
        keep.as_deref(),
    )?;
    let resim = match &system {
        Some(System::Kolmogorov(k)) if a.resimulate > 0 => Some(
            resimulation(k, &samples, a.resimulate)
                .with_context(|| format!("--system {}", a.system.as_deref().unwrap_or("")))?,
        ),
        _ => None,
    };
    if a.json {
        let mut v = serde_json::to_value(&e)?;
        if let Some(r) = &resim {
            v["resimulation"] = serde_json::to_value(r)?;
        }
        if let Some(t) = &averaged {
            v["time_averaged"] = serde_json::json!({
                "states": t.states, "rmse": t.rmse, "spread": t.spread, "crps": t.crps
            });
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_scores(&a, &e, keep.is_none());
    print_extras(&e, averaged.as_ref(), resim.as_ref());
    Ok(())
}

/// The observations of the flags, if any, for trajectories of `length` states of `shape`.
fn observations(
    a: &Args,
    shape: &[usize],
    length: usize,
) -> Result<Option<sda::assimilate::Observed>> {
    // A data folder's description places tables by station, place or date on its record.
    let info = match a.system.as_deref().map(std::path::Path::new) {
        Some(p) if p.is_dir() => {
            Some(read_info(p).with_context(|| format!("--system {}", p.display()))?)
        }
        _ => None,
    };
    Ok(match &a.observations {
        Some(path) => Some(
            observed_any(
                shape,
                path,
                a.operator.as_deref(),
                a.noise.as_deref(),
                length,
                info.as_ref().map(|info| crate::assimilate::OnRecord {
                    info,
                    start: a.start.as_deref(),
                }),
            )?
            .0,
        ),
        None => None,
    })
}

/// DAPPER's time-averaged scores against the truth, with --skip or --at.
fn averaged(
    a: &Args,
    samples: &sda::io::Array,
    truth: Option<&sda::io::Array>,
) -> Result<Option<TimeAveraged>> {
    Ok(match (a.skip.or(a.at.as_ref().map(|_| 0)), truth) {
        (Some(skip), Some(t)) => {
            let times = match &a.at {
                Some(spec) => Some(
                    sda::score::operator::Operator::parse(spec)
                        .and_then(|o| o.times(samples.shape[1]))
                        .context("--at")?,
                ),
                None => None,
            };
            Some(
                sda::evaluate::time_averaged(samples, t, skip, times.as_deref())
                    .context("--skip")?,
            )
        }
        (Some(_), None) => bail!("--skip/--at: the time-averaged scores need --truth"),
        _ => None,
    })
}

/// The values of a trajectory `(L, *state)` to score, and a line saying which: those the data
/// folder of `--system` models (its fixed mask), those `--mask` keeps, and with `--unobserved`
/// those `--observations` did not observe. `None` when every value is scored.
fn scored(
    a: &Args,
    trajectory: &[usize],
    observed: Option<&sda::assimilate::Observed>,
) -> Result<(Option<Vec<bool>>, Option<String>)> {
    let mut fixed = None;
    if let Some(spec) = &a.system {
        let dir = std::path::Path::new(spec);
        if dir.is_dir() {
            let info = read_info(dir).with_context(|| format!("--system {spec}"))?;
            fixed =
                sda::record::read_mask(dir, &info).with_context(|| format!("--system {spec}"))?;
        }
    }
    let mask = match &a.mask {
        Some(path) => Some(read_npy(path).with_context(|| format!("--mask {}", path.display()))?),
        None => None,
    };
    let system = a.system.as_ref().map(|s| format!("--system {s}"));
    let mask_name = a.mask.as_ref().map(|p| format!("--mask {}", p.display()));
    let unobserved = a.hidden.then(|| {
        let o = observed.expect("--unobserved requires --observations");
        (&o.operator, "--unobserved")
    });
    let scored = sda::baseline::points::scored_values(
        trajectory,
        fixed.as_ref().zip(system.as_deref()),
        mask.as_ref().zip(mask_name.as_deref()),
        unobserved,
    )?;
    Ok(match scored {
        Some((keep, line)) => (Some(keep), Some(line)),
        None => (None, None),
    })
}
