//! Observations from the command line: a `.npy` of y with `--operator` and `--noise`, or a
//! table (`.csv`) that brings its own, placed on the model's record where it names stations,
//! places or dates.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sda::assimilate::Observed;
use sda::io::read_npy;
use sda::model::Model;
use sda::score::operator::Operator;

use crate::common::noise;

/// Reads observations and noise for `operator`, checking everything against the model.
pub fn observed(
    model: &Model,
    path: &Path,
    operator: &str,
    noise_spec: &str,
    length: usize,
) -> Result<Observed> {
    observed_for(
        &model.config.data.state_shape,
        path,
        operator,
        noise_spec,
        length,
    )
}

/// Reads observations and noise for `operator` on trajectories of `length` states of `shape`.
pub fn observed_for(
    shape: &[usize],
    path: &Path,
    operator: &str,
    noise_spec: &str,
    length: usize,
) -> Result<Observed> {
    let operator = Operator::parse(operator).context("--operator")?;
    let expected = operator.output_shape(length, shape).context("--operator")?;
    let y = read_npy(path).with_context(|| "--observations")?;
    let std = noise(noise_spec, &expected)?;
    let o = Observed {
        operator,
        y,
        noise: std,
    };
    o.check(shape, length, &format!("--observations {}", path.display()))?;
    Ok(o)
}

/// Whether `path` is a table of observations (`.csv`).
pub fn is_table(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The record a table of observations is placed on (by station, place or date) and where
/// the window starts in it (`--start`).
#[derive(Clone, Copy)]
pub struct OnRecord<'a> {
    /// The data the model was trained on.
    pub info: &'a sda::data::SystemInfo,
    /// `--start`.
    pub start: Option<&'a str>,
}

/// Observations from a table (`.csv`, which brings its own operator and noise: `operator` and
/// `noise` must then be `None`; placed on `on`'s record where it names stations, places or
/// dates, with a line that says how) or from a `.npy` of `y` with `operator` and `noise`.
/// Returns them with the record step a table of dates placed the first state at.
pub fn observed_any(
    shape: &[usize],
    path: &Path,
    operator: Option<&str>,
    noise_spec: Option<&str>,
    length: usize,
    on: Option<OnRecord>,
) -> Result<(Observed, Option<usize>)> {
    if is_table(path) {
        if operator.is_some() || noise_spec.is_some() {
            bail!(
                "--operator/--noise: not given with a table of observations ({} defines both)",
                path.display()
            );
        }
        let (o, start) = match on {
            Some(on) => {
                let ctx = sda::locate::Context {
                    info: on.info,
                    length,
                    start: on.start,
                };
                let (o, summary, start) = Observed::from_table_on(path, &ctx)?;
                if !summary.is_empty() {
                    // On stderr: stdout may be JSON (`sda evaluate --json`).
                    eprintln!("{summary}");
                }
                (o, start)
            }
            None => (Observed::from_table(path).context("--observations")?, None),
        };
        o.check(shape, length, &format!("--observations {}", path.display()))
            .context("--observations")?;
        return Ok((o, start));
    }
    match (operator, noise_spec) {
        (Some(op), Some(noise)) => Ok((observed_for(shape, path, op, noise, length)?, None)),
        _ => bail!(
            "--operator and --noise: needed with .npy observations ({}); a .csv table brings its own",
            path.display()
        ),
    }
}
