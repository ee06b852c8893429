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
use crate::data::{Normalisation, Splits, SystemInfo, shape_text};
use crate::error::{Error, Result};
pub use crate::geo::Station;
use crate::io::Array;
use crate::mcs::{External, Provenance, Source, System, checksum};
pub use crate::record_info::{MaskInfo, ObservedInfo, RecordInfo, VariableInfo, observed_file};
use crate::transform::{TransformSpec, Transforms};

mod arrays;
mod files;
pub use arrays::{RecordArrays, check_stations};
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

/// Runs `[start, end)` of the positions where `flag` holds.
fn runs(flag: impl Iterator<Item = bool>) -> Vec<[usize; 2]> {
    let mut out: Vec<[usize; 2]> = Vec::new();
    for (j, f) in flag.enumerate() {
        if !f {
            continue;
        }
        match out.last_mut() {
            Some(r) if r[1] == j => r[1] = j + 1,
            _ => out.push([j, j + 1]),
        }
    }
    out
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

/// Mean and std of the finite values of each group of `(steps, F)` data, where `group(j)`
/// names the group of value `j` (its channel for fields, itself for vectors); a group without a
/// finite value gets mean 0, scale 1.
fn fit(
    data: &[f64],
    features: usize,
    groups: usize,
    group: impl Fn(usize) -> usize,
) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
    let mut n = vec![0usize; groups];
    let mut sum = vec![0.0; groups];
    let mut sq = vec![0.0; groups];
    for row in data.chunks(features) {
        for (j, &v) in row.iter().enumerate() {
            if v.is_finite() {
                let g = group(j);
                n[g] += 1;
                sum[g] += v;
                sq[g] += v * v;
            }
        }
    }
    let mut mean = vec![0.0; groups];
    let mut scale = vec![1.0; groups];
    for g in 0..groups {
        if n[g] > 0 {
            mean[g] = sum[g] / n[g] as f64;
            scale[g] = (sq[g] / n[g] as f64 - mean[g] * mean[g]).max(1e-12).sqrt();
        }
    }
    (mean, scale, n)
}

/// Fewer training values than this, and a value of a vector state takes its variable's
/// normalisation (pooled over the stations) rather than its own.
pub const MIN_VALUES: usize = 10;

/// The normalisation of the training period: per channel for fields `(C, H, W)`, per value for
/// vectors of `variables` variables, over the values that are not missing. A value of a vector
/// with fewer than [`MIN_VALUES`] training values (or, in a record of fewer training steps,
/// fewer than the best-seen value), or whose own scale is below a millionth of
/// its variable's, takes its variable's mean and scale (over every station's training values):
/// a station seen a few times in training (or only later) is not scaled by a near-zero std.
fn normalisation(train: &[f64], state: &[usize], variables: usize) -> Normalisation {
    let f: usize = state.iter().product();
    if state.len() == 3 {
        let hw = state[1] * state[2];
        let (m, s, _) = fit(train, f, state[0], |j| j / hw);
        Normalisation {
            mean: (0..f).map(|j| m[j / hw]).collect(),
            scale: (0..f).map(|j| s[j / hw]).collect(),
        }
    } else {
        let (mut mean, mut scale, n) = fit(train, f, f, |j| j);
        let per = f / variables.max(1);
        let (pm, ps, _) = fit(train, f, variables.max(1), |j| j / per);
        // A record shorter than MIN_VALUES steps keeps every value's own statistics where
        // it is complete: only values seen less often than the others are pooled.
        let few = MIN_VALUES.min(n.iter().copied().max().unwrap_or(0));
        for j in 0..f {
            let v = j / per;
            if n[j] < few || scale[j] < 1e-6 * ps[v] {
                mean[j] = pm[v];
                scale[j] = ps[v];
            }
        }
        Normalisation { mean, scale }
    }
}

/// Cuts `record` into windows, checks everything, and builds the data set, writing nothing.
///
/// # Errors
/// One line naming the flag: a window of no step or longer than a period, a stride of 0,
/// periods that do not fit the record, a split or a record left without a window once those
/// with gaps are dropped, a record with no value at all.
pub fn cut(record: &Record, windows: &Windows) -> Result<Cut> {
    let steps = record.steps();
    let state = record.state_shape();
    let f: usize = state.iter().product();
    assert_eq!(record.values.len(), steps * f, "record values (T, *state)");
    let (l, s) = (windows.window, windows.stride);
    if l == 0 {
        return Err(Error::config("--window", "must be at least 1 time step"));
    }
    if s == 0 {
        return Err(Error::config("--stride", "must be at least 1 time step"));
    }
    let periods = windows.split.periods(steps)?;
    let transforms = transforms_of(record, &windows.transform)?;
    let names = ["training", "validation", "test"];
    for (k, p) in periods.iter().enumerate() {
        let n = p[1] - p[0];
        if (k < 2 || n > 0) && n < l {
            return Err(Error::config(
                "--window",
                format!(
                    "{l} time steps do not fit in the {} period of {n} step(s) (of the record's \
                     {steps}); shorten --window or lengthen the period with --split-by-time",
                    names[k]
                ),
            ));
        }
    }
    // The fixed mask: values missing at every time (and, with `Gaps::Mask`, those missing at
    // some times).
    let mut seen = vec![false; f];
    let mut missing = vec![0usize; f];
    for row in record.values.chunks(f) {
        for (j, v) in row.iter().enumerate() {
            seen[j] |= v.is_finite();
            missing[j] += usize::from(!v.is_finite());
        }
    }
    for (j, m) in missing.iter_mut().enumerate() {
        if !seen[j] {
            *m = 0;
        }
    }
    // Where the gaps are, for the messages: values with some missing steps, the first of them
    // and at how many steps it is missing.
    let gappy = missing.iter().filter(|m| **m > 0).count();
    let gaps = match missing.iter().position(|m| *m > 0) {
        None => String::new(),
        Some(j) => format!(
            "{gappy} of {f} values of a state are missing at some times but not all, the first at \
             [{}] at {} of {steps} steps",
            shape_text(&unravel(&state, j)),
            missing[j]
        ),
    };
    let gaps_masked = if windows.gaps == Gaps::Mask { gappy } else { 0 };
    if windows.gaps == Gaps::Mask {
        for (j, m) in missing.iter_mut().enumerate() {
            if *m > 0 {
                seen[j] = false;
                *m = 0;
            }
        }
    }
    let masked = seen.iter().filter(|s| !**s).count();
    if masked == f {
        return Err(Error::config(
            &record.origin,
            if gaps_masked > 0 {
                "every value of the record is missing at some time (--gaps mask masks them all)"
            } else {
                "every value of the record is missing"
            },
        ));
    }
    // Gaps: missing values outside the mask, by time step.
    let gap_at: Vec<bool> = record
        .values
        .chunks(f)
        .map(|row| row.iter().zip(&seen).any(|(v, s)| *s && !v.is_finite()))
        .collect();
    let per = transforms.per_value(f);
    let train_values: Vec<f64> = record.values[periods[0][0] * f..periods[0][1] * f]
        .chunks(f)
        .flat_map(|row| row.iter().zip(&per).map(|(&v, t)| t.forward(v)))
        .collect();
    let norm = normalisation(&train_values, &state, record.variables.len());
    // Masked values are filled with the physical value at the normalisation's mean, 0 in the
    // networks' units.
    let fill: Vec<f64> = norm
        .mean
        .iter()
        .zip(&per)
        .map(|(m, t)| t.inverse(*m))
        .collect();
    let keep = windows.gaps == Gaps::Keep;
    let mut starts: [Vec<usize>; 3] = Default::default();
    let mut dropped = [0usize; 3];
    let mut arrays: Vec<Array> = Vec::with_capacity(3);
    let mut observed: Vec<Array> = Vec::with_capacity(3);
    for (k, p) in periods.iter().enumerate() {
        let mut data = Vec::new();
        let mut obs = Vec::new();
        let mut at = p[0];
        while p[1] >= l && at + l <= p[1] {
            if !keep && gap_at[at..at + l].iter().any(|g| *g) {
                dropped[k] += 1;
            } else {
                starts[k].push(at);
                for row in record.values[at * f..(at + l) * f].chunks(f) {
                    data.extend(row.iter().enumerate().map(|(j, &v)| {
                        if seen[j] && v.is_finite() {
                            v as f32
                        } else {
                            fill[j] as f32
                        }
                    }));
                    if keep {
                        obs.extend(row.iter().map(|v| f32::from(u8::from(v.is_finite()))));
                    }
                }
            }
            at += s;
        }
        if starts[k].is_empty() && (k < 2 || p[1] > p[0]) {
            return Err(Error::config(
                "--window",
                format!(
                    "no {} window of {l} steps is left: all {} hold missing values ({gaps}; --gaps \
                     keep keeps them, with masks of the observed values)",
                    names[k], dropped[k]
                ),
            ));
        }
        let mut shape = vec![starts[k].len(), l];
        shape.extend_from_slice(&state);
        if keep {
            observed.push(Array::new(shape.clone(), obs));
        }
        arrays.push(Array::new(shape, data));
    }
    let test = arrays.pop().expect("three");
    let valid = arrays.pop().expect("three");
    let train = arrays.pop().expect("three");
    let mask = (masked > 0).then(|| {
        Array::new(
            state.clone(),
            seen.iter().map(|&s| if s { 1.0 } else { 0.0 }).collect(),
        )
    });
    let counts = [train.shape[0], valid.shape[0], test.shape[0]];
    let file = std::fs::canonicalize(&record.origin)
        .map_or_else(|_| record.origin.clone(), |p| p.display().to_string());
    let sources = record
        .variables
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // This variable's values as read, float32, NaN where missing.
            let per = f / record.variables.len();
            let mine: Vec<f32> = record
                .values
                .chunks(f)
                .flat_map(|row| row[i * per..(i + 1) * per].iter().map(|&x| x as f32))
                .collect();
            Source {
                role: "record".into(),
                origin: format!("{file}:{}", v.name),
                dtype: v.dtype.clone(),
                shape: v.shape.clone(),
                checksum: checksum(&mine),
            }
        })
        .collect();
    let info = RecordInfo {
        file,
        format: record.format.clone(),
        variables: record.variables.clone(),
        time: record.time.clone(),
        space: record.space.clone(),
        edits: record.edits.clone(),
        stations: record.stations.clone(),
        window: l,
        stride: s,
        periods,
        starts,
        dropped,
        mask: mask.as_ref().map(|_| MaskInfo {
            file: MASK_FILE.into(),
            masked,
            values: f,
            gaps: gaps_masked,
            runs: runs(seen.iter().map(|s| !s)),
        }),
        observed: keep.then(|| ObservedInfo {
            files: ["train", "valid", "test"].map(observed_file),
            missing: [0, 1, 2].map(|k| observed[k].data.iter().filter(|v| **v == 0.0).count()),
            values: [0, 1, 2].map(|k| observed[k].data.len()),
        }),
    };
    let system = System::External(External {
        state_shape: state.clone(),
        context_channels: 0,
        provenance: Provenance {
            sources,
            split: None,
            seed: 0,
            trajectories: counts,
        },
        record: Some(info),
        layout: crate::mcs::Layout::Vector,
    });
    let splits = Splits {
        info: SystemInfo {
            system,
            state_shape: state,
            normalisation: norm,
            trajectories: counts.iter().sum(),
            length: l,
            burn_in: 0,
            seed: 0,
            transforms,
        },
        train,
        valid,
        test,
    };
    let observed = match <[Array; 3]>::try_from(observed) {
        Ok(o) => Some(o),
        Err(v) => {
            debug_assert!(v.is_empty());
            None
        }
    };
    Ok(Cut {
        splits,
        mask,
        gaps,
        observed,
    })
}

/// The transforms of `spec` for the record's variables, every value of the record checked
/// against them.
fn transforms_of(record: &Record, spec: &TransformSpec) -> Result<Transforms> {
    let names: Vec<String> = record.variables.iter().map(|v| v.name.clone()).collect();
    let transforms = spec.resolve(&names)?;
    let state = record.state_shape();
    let f: usize = state.iter().product();
    transforms.check(&record.values, f, &record.origin, |k| {
        let t = k / f;
        format!(
            "time step {t} ({} {}), state index [{}]",
            record.time.name,
            fmt_value(record.time.values[t]),
            shape_text(&unravel(&state, k % f))
        )
    })?;
    Ok(transforms)
}

/// `[c, i, j]` of flat position `at` in a state of `shape`.
fn unravel(shape: &[usize], mut at: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = at % n.max(1);
        at /= n.max(1);
    }
    idx
}
