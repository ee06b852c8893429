//! Statistical baselines for data folders, imported records in particular: what a
//! geoscientist tries before a learned prior, fitted on the training split alone and given the
//! same observations as `sda assimilate` (docs/real-data.md, "Statistical baselines").
//!
//! | method | what it gives at each state |
//! |---|---|
//! | [`Method::Climatology`] | the training mean (by calendar month where the time axis allows) and its covariance; the observations are not used |
//! | [`Method::Persistence`] | the last observed value carried forward (the first carried backward before it), climatology where a value is never observed |
//! | [`Method::Oi`] | optimal interpolation: the climatological Gaussian conditioned on the state's own observations, exactly |
//! | [`Method::Lim`] | a linear inverse model in EOF space with a Kalman filter and RTS smoother over the window |
//!
//! Every method draws trajectories `(S, L, *state)` in physical units and gives their exact
//! mean; values the fixed mask leaves out are not modelled and are NaN.

pub mod climate;
mod gaussian;
pub mod lim;
mod persistence;
pub mod points;
#[cfg(test)]
mod tests;

use nalgebra::DVector;

use crate::assimilate::Observed;
use crate::data::{SystemInfo, features};
use crate::error::{Error, Result};
use crate::io::Array;
use climate::{Climate, Keep, Training};

/// The statistical baselines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Method {
    /// The training climatology (monthly where possible); ignores the observations.
    Climatology,
    /// The last observed value carried forward, climatology elsewhere.
    Persistence,
    /// Optimal interpolation with the climatological mean and covariance.
    Oi,
    /// A linear inverse model with a Kalman filter and RTS smoother.
    Lim,
}

/// What every baseline is told besides its data and observations.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Trajectories drawn.
    pub samples: usize,
    /// Seed of every draw (the output does not depend on the number of threads).
    pub seed: u64,
    /// EOFs of the covariance (`None`: the fewest that explain 90 % of the variance, at most a
    /// fifth of the training states; for the LIM, of the pairs of consecutive training states).
    pub eofs: Option<usize>,
    /// The record step of state 0 (a number, or `SPLIT:N` for window `N` of a split).
    pub start: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            samples: 64,
            seed: 0,
            eofs: None,
            start: None,
        }
    }
}

/// The observations of one state on the modelled values.
#[derive(Clone, Debug)]
struct Group {
    /// The state.
    time: usize,
    /// The modelled value each observation measures (its place among them).
    at: Vec<usize>,
    /// The measurements.
    value: Vec<f64>,
    /// Their noise stds.
    std: Vec<f64>,
}

/// Everything a method needs.
struct Problem<'a> {
    training: &'a Training,
    climate: Climate,
    start: Option<usize>,
    length: usize,
    groups: Vec<Group>,
}

impl Problem<'_> {
    /// The season of state `t`.
    fn season(&self, t: usize) -> usize {
        self.training.season_at(self.start, t)
    }

    /// The observations of state `t`, if any.
    fn group(&self, t: usize) -> Option<&Group> {
        self.groups.iter().find(|g| g.time == t)
    }
}

/// Draws and mean on the modelled values: `samples × length × values` and `length × values`.
struct Drawn {
    samples: Vec<f64>,
    mean: Vec<f64>,
}

/// What a baseline gives.
#[derive(Clone, Debug)]
pub struct Output {
    /// `(S, L, *state)`, physical units, NaN where masked.
    pub samples: Array,
    /// The exact mean, `(1, L, *state)`.
    pub mean: Array,
    /// What was fitted, in lines of text.
    pub report: Vec<String>,
}

/// Runs `method` on `length` states given `observed`, fitted on the training split `train`
/// of a data folder described by `info` with its fixed mask.
pub fn run(
    method: Method,
    info: &SystemInfo,
    train: &Array,
    mask: Option<&Array>,
    observed: &Observed,
    length: usize,
    settings: &Settings,
) -> Result<Output> {
    if settings.samples == 0 {
        return Err(Error::config("--samples", "must be at least 1"));
    }
    if length == 0 {
        return Err(Error::config("--length", "must be at least 1"));
    }
    let shape = info.state_shape.clone();
    observed.check(&shape, length, "--observations")?;
    let training = Training::new(info, train, mask)?;
    let start = training.start_step(settings.start.as_deref(), length)?;
    let groups = groups(observed, length, &shape, &training)?;
    let climate = Climate::fit(&training)?;
    let mut report = vec![format!(
        "fitted on {} training states of {} modelled values; {}{}",
        training.len(),
        training.dim(),
        training.note,
        match start {
            Some(s) => format!("; state 0 is record step {s}"),
            None => String::new(),
        }
    )];
    let p = Problem {
        training: &training,
        climate,
        start,
        length,
        groups,
    };
    let drawn = match method {
        Method::Persistence => persistence::run(&p, settings, &mut report),
        Method::Climatology | Method::Oi | Method::Lim => {
            let z = p.climate.anomalies(&training);
            let keep = match (settings.eofs, method) {
                (Some(k), _) => Keep::Count(k),
                (None, Method::Lim) => Keep::Share(0.9, training.pairs(1).len() / 5),
                (None, _) => Keep::Share(0.9, training.len() / 5),
            };
            let eofs = climate::Eofs::fit(&z, keep)?;
            report.push(format!(
                "covariance: {} EOFs ({:.1} % of the standardised variance) plus the diagonal \
                 remainder",
                eofs.k(),
                100.0 * eofs.explained
            ));
            match method {
                Method::Climatology => gaussian::climatology(&p, &eofs, settings),
                Method::Oi => gaussian::oi(&p, &eofs, settings)?,
                _ => gaussian::lim(&p, &eofs, &z, settings, &mut report)?,
            }
        }
    };
    Ok(expand(
        &training,
        &shape,
        length,
        settings.samples,
        drawn,
        report,
    ))
}

/// The observations of `observed` by state, on the modelled values; an error for one that
/// measures a masked value.
fn groups(
    observed: &Observed,
    length: usize,
    shape: &[usize],
    training: &Training,
) -> Result<Vec<Group>> {
    let pts = points::points(observed, length, shape)?;
    let mut groups: Vec<Group> = Vec::new();
    for p in pts {
        let at = training.position[p.index].ok_or_else(|| {
            Error::config(
                "--observations",
                format!(
                    "value {} of state {} is masked (mask.npy: the record has no data there)",
                    p.index, p.time
                ),
            )
        })?;
        match groups.iter_mut().find(|g| g.time == p.time) {
            Some(g) => {
                g.at.push(at);
                g.value.push(p.value);
                g.std.push(p.std);
            }
            None => groups.push(Group {
                time: p.time,
                at: vec![at],
                value: vec![p.value],
                std: vec![p.std],
            }),
        }
    }
    groups.sort_by_key(|g| g.time);
    Ok(groups)
}

/// The modelled values put back into whole states, NaN where masked.
fn expand(
    training: &Training,
    shape: &[usize],
    length: usize,
    samples: usize,
    drawn: Drawn,
    report: Vec<String>,
) -> Output {
    let (f, d) = (features(shape), training.dim());
    let place = |values: &[f64], states: usize| -> Vec<f32> {
        let mut out = vec![f32::NAN; states * f];
        for (s, chunk) in values.chunks(d).enumerate() {
            for (k, &i) in training.active.iter().enumerate() {
                out[s * f + i] = chunk[k] as f32;
            }
        }
        out
    };
    let with = |n: usize| -> Vec<usize> { [n, length].iter().chain(shape).copied().collect() };
    Output {
        samples: Array::new(with(samples), place(&drawn.samples, samples * length)),
        mean: Array::new(with(1), place(&drawn.mean, length)),
        report,
    }
}

/// `mean + std ⊙ z`, appended to `out`.
fn physical(out: &mut Vec<f64>, mean: &DVector<f64>, std: &DVector<f64>, z: &DVector<f64>) {
    out.extend(
        z.iter()
            .zip(mean.iter().zip(std.iter()))
            .map(|(z, (m, s))| m + s * z),
    );
}
