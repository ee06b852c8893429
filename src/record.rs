//! One long record cut into windows (`sda import --netcdf … --window L --stride S
//! --split-by-time a,b,c`): the record's time axis is split into a training, a validation and a
//! test period, in that order, and each period is cut into windows of `L` steps that start `S`
//! steps apart and never cross into the next period, so that no validation or test value is
//! ever seen in training. The windows become the trajectories `(N, L, *state)` of a data folder
//! of `system: external`, and `system.json` keeps the record: the file, the variables, the time
//! axis (values, units, calendar), the other coordinates, the periods and where each window
//! starts.
//!
//! Missing values (NaN) are of two kinds. A value missing at every time step of the record
//! (land in an ocean field) is part of a fixed mask: `mask.npy` (the state's shape, 1 where
//! there is data, 0 where not) records it, and the masked values are filled with their mean, 0
//! in normalised units, so that training sees finite data. A value missing at some steps but
//! not all is a gap: by default the windows that hold one are dropped, and the import says how
//! many; `--gaps mask` puts the values with gaps into the fixed mask; `--gaps keep` keeps every
//! window, fills each missing value with its mean (0 in normalised units) and writes beside each
//! split `{split}-observed.npy`, of the trajectories' shape `(N, L, *state)`, float32, 1 where
//! the value was observed and 0 where it is missing (for a loss counted on observed values
//! only).
//!
//! A record's one space axis may be a network of stations ([`Station`]: a name, a latitude and
//! a longitude each); `system.json` then lists them, so that observations can name a station or
//! give a place (see [`crate::locate`]).
//!
//! The normalisation is that of [`crate::import`] (per value for vectors, per channel for
//! fields), fitted on the training period's values that are not missing; a value of a vector
//! with fewer than [`MIN_VALUES`] of them takes its variable's, pooled over the stations.

pub use crate::axis::Axis;
use crate::data::{Splits, shape_text};
use crate::error::{Error, Result};
pub use crate::geo::Station;
use crate::io::Array;
use crate::mcs::System;
pub use crate::record_info::{MaskInfo, ObservedInfo, RecordInfo, VariableInfo, observed_file};
use crate::transform::TransformSpec;

mod arrays;
mod cut;
mod files;
pub use arrays::{RecordArrays, check_stations};
pub use cut::{MIN_VALUES, cut};
pub use files::{MASK_FILE, files, read_files, read_mask, write};

/// A record read from a file: `(T, V, *space)` values in physical units, NaN where missing.
#[derive(Clone, Debug)]
pub struct Record {
    /// The file, as given.
    pub origin: String,
    /// The file's format, in words (`NetCDF-3 classic`).
    pub format: String,
    /// The variables, in the order of the state.
    pub variables: Vec<VariableInfo>,
    /// The time axis (after `--select` on it).
    pub time: Axis,
    /// The other axes of the state, after selection and coarsening, without those of size 1.
    pub space: Vec<Axis>,
    /// Values `(T, V, *space)`, C order; NaN where missing.
    pub values: Vec<f64>,
    /// What `--select` and `--coarsen` did, as given (for the record).
    pub edits: Vec<String>,
    /// The stations of the one space axis, when it is a network of stations.
    pub stations: Option<Vec<Station>>,
}

impl Record {
    /// Time steps T.
    pub fn steps(&self) -> usize {
        self.time.values.len()
    }

    /// The shape of one state: `(V,)` for a scalar series, `(V·D,)` for a network of D
    /// stations, `(V, H, W)` for fields.
    pub fn state_shape(&self) -> Vec<usize> {
        let v = self.variables.len();
        match self.space.as_slice() {
            [] => vec![v],
            [d] => vec![v * d.values.len()],
            [h, w] => vec![v, h.values.len(), w.values.len()],
            _ => unreachable!("checked when read"),
        }
    }
}

/// `--split-by-time a,b,c`: the training, validation and test periods, in this order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SplitByTime {
    /// Fractions of the time axis, summing to 1 (the test's may be 0).
    Fractions([f64; 3]),
    /// Time steps, summing to the record's.
    Counts([usize; 3]),
}

impl SplitByTime {
    /// Reads three numbers: fractions summing to 1 or whole numbers of steps.
    pub fn parse(v: &[f64]) -> Result<Self> {
        let bad = |reason: String| Error::config("--split-by-time", reason);
        let &[a, b, c] = v else {
            return Err(bad(
                "give three numbers train,valid,test: fractions such as 0.8,0.1,0.1 or time \
                 steps such as 100,16,16"
                    .into(),
            ));
        };
        let v = [a, b, c];
        if v.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(bad(format!("{a},{b},{c}: each must be 0 or more")));
        }
        if a == 0.0 || b == 0.0 {
            return Err(bad(format!(
                "{a},{b},{c}: the training and validation periods cannot be empty"
            )));
        }
        let total = a + b + c;
        if (total - 1.0).abs() < 1e-6 {
            return Ok(Self::Fractions(v));
        }
        if v.iter().all(|x| x.fract() == 0.0) {
            return Ok(Self::Counts(v.map(|x| x as usize)));
        }
        Err(bad(format!(
            "{a},{b},{c}: fractions must sum to 1 (these sum to {total}), or give whole numbers \
             of time steps"
        )))
    }

    /// The periods `[start, end)` of `steps` time steps.
    pub fn periods(&self, steps: usize) -> Result<[[usize; 2]; 3]> {
        let (b1, b2) = match *self {
            Self::Fractions([a, b, _]) => {
                let t = steps as f64;
                ((a * t).round() as usize, ((a + b) * t).round() as usize)
            }
            Self::Counts([a, b, c]) => {
                if a + b + c != steps {
                    return Err(Error::config(
                        "--split-by-time",
                        format!(
                            "{a},{b},{c} time steps sum to {}, but the record has {steps}",
                            a + b + c
                        ),
                    ));
                }
                (a, a + b)
            }
        };
        let b2 = b2.min(steps);
        Ok([[0, b1], [b1, b2], [b2, steps]])
    }
}

/// How to cut a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    /// Steps per window L.
    pub window: usize,
    /// Steps between the starts of consecutive windows S.
    pub stride: usize,
    /// The periods.
    pub split: SplitByTime,
    /// What to do with values missing at some times but not all.
    pub gaps: Gaps,
    /// The transforms of the variables (`--transform`).
    pub transform: TransformSpec,
}

/// `--gaps`: what becomes of a value missing at some times but not all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Gaps {
    /// Drop every window that holds a missing value.
    #[default]
    Drop,
    /// Put every value with a missing step into the fixed mask, keeping every window.
    Mask,
    /// Keep every window and every value: missing values are filled with their mean (0 in
    /// normalised units) and `{split}-observed.npy` says which are observed.
    Keep,
}

/// A record cut into windows, checked and ready to be written.
#[derive(Clone, Debug)]
pub struct Cut {
    /// The data set (its `system.json` holds the record).
    pub splits: Splits,
    /// The fixed mask, `state_shape` with 1 where there is data, when some value is missing at
    /// every time.
    pub mask: Option<Array>,
    /// Where the gaps are, in words (empty without gaps).
    pub gaps: String,
    /// With `--gaps keep`: the observed-value masks of `train`, `valid` and `test`, of the
    /// trajectories' shapes (1 observed, 0 missing).
    pub observed: Option<[Array; 3]>,
}

impl Cut {
    /// What was imported, for `sda import` to print.
    pub fn summary(&self) -> String {
        let info = &self.splits.info;
        let System::External(e) = &info.system else {
            unreachable!("records are external")
        };
        let r = e.record.as_ref().expect("a record");
        let [t, v, s] = e.provenance.trajectories;
        let names: Vec<&str> = r.variables.iter().map(|v| v.name.as_str()).collect();
        let units =
            r.time.units.as_deref().and_then(|u| {
                crate::calendar::TimeUnits::parse(u, r.time.calendar.as_deref()).ok()
            });
        let when = |v: f64| match &units {
            Some(u) => u.format(v),
            None => fmt_value(v),
        };
        let period = |p: [usize; 2]| -> String {
            if p[0] == p[1] {
                "none".into()
            } else {
                format!(
                    "{}..{}",
                    when(r.time.values[p[0]]),
                    when(r.time.values[p[1] - 1])
                )
            }
        };
        let mut out = format!(
            "record {} ({}; {}): {} time steps{}, states of shape ({}); windows of {} steps, \
             stride {}: {t} + {v} + {s} (train, valid, test; {} {}, {} and {})",
            r.file,
            names.join(", "),
            r.format,
            r.time.values.len(),
            r.time
                .units
                .as_ref()
                .map_or(String::new(), |u| format!(" ({} {u})", r.time.name)),
            shape_text(&info.state_shape)
                + &r.stations.as_ref().map_or(String::new(), |s| {
                    format!(
                        ": {} variable(s) at {} stations",
                        r.variables.len(),
                        s.len()
                    )
                }),
            r.window,
            r.stride,
            r.time.name,
            period(r.periods[0]),
            period(r.periods[1]),
            period(r.periods[2]),
        );
        if !info.transforms.is_identity() {
            out += &format!(
                "\ntransforms {} (the networks learn the transformed values; samples come back \
                 in physical units)",
                info.transforms.describe()
            );
        }
        let dropped: usize = r.dropped.iter().sum();
        if dropped > 0 {
            let [a, b, c] = r.dropped;
            out += &format!(
                "\ndropped {dropped} window(s) with missing values ({a} train, {b} valid, {c} \
                 test): {}",
                self.gaps
            );
        }
        if let Some(o) = &r.observed {
            let share = |k: usize| 100.0 * o.missing[k] as f64 / o.values[k].max(1) as f64;
            let all: usize = o.values.iter().sum();
            out += &format!(
                "\nkept every window with its missing values: {:.1} % of the values missing \
                 (train {:.1} %, valid {:.1} %, test {:.1} %), filled with 0 in normalised units \
                 → {{train,valid,test}}-observed.npy (1 observed, 0 missing)",
                100.0 * o.missing.iter().sum::<usize>() as f64 / all.max(1) as f64,
                share(0),
                share(1),
                share(2)
            );
        }
        if let Some(m) = &r.mask {
            out += &format!(
                "\nfixed mask: {} of {} values missing at every time{} → {} (filled with 0 in \
                 normalised units)",
                m.masked - m.gaps,
                m.values,
                if m.gaps > 0 {
                    format!(" and {} with gaps ({})", m.gaps, self.gaps)
                } else {
                    String::new()
                },
                m.file
            );
        }
        out
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
