//! Cutting a record into windows: the checks, the fixed mask and the gaps, the training
//! period's normalisation, and the data set that keeps the record in its `system.json`.

use super::{Cut, Gaps, MASK_FILE, Record, Windows, fmt_value};
use crate::data::{Normalisation, Splits, SystemInfo, shape_text};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::{External, Provenance, Source, System, checksum};
use crate::record_info::{MaskInfo, ObservedInfo, RecordInfo, observed_file};
use crate::transform::{TransformSpec, Transforms};

/// The periods, as messages name them.
const NAMES: [&str; 3] = ["training", "validation", "test"];

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
    check_periods(&periods, l, steps)?;
    let fixed = Mask::of(record, windows.gaps)?;
    // Gaps: missing values outside the mask, by time step.
    let gap_at: Vec<bool> = record
        .values
        .chunks(f)
        .map(|row| {
            row.iter()
                .zip(&fixed.seen)
                .any(|(v, s)| *s && !v.is_finite())
        })
        .collect();
    let (norm, fill) = normalisation_of(record, &transforms, &periods);
    let pieces = Pieces::cut(record, windows, &periods, &fixed, &gap_at, &fill)?;
    let cut = assemble(record, windows, periods, transforms, norm, fixed, pieces);
    Ok(cut)
}

/// Checks that a window of `l` steps fits in the training and validation periods, and in the
/// test period unless it is empty.
fn check_periods(periods: &[[usize; 2]; 3], l: usize, steps: usize) -> Result<()> {
    for (k, p) in periods.iter().enumerate() {
        let n = p[1] - p[0];
        if (k < 2 || n > 0) && n < l {
            return Err(Error::config(
                "--window",
                format!(
                    "{l} time steps do not fit in the {} period of {n} step(s) (of the record's \
                     {steps}); shorten --window or lengthen the period with --split-by-time",
                    NAMES[k]
                ),
            ));
        }
    }
    Ok(())
}

/// The fixed mask of a record, and where its gaps are.
struct Mask {
    /// Whether each value of a state is outside the mask.
    seen: Vec<bool>,
    /// Values in the mask.
    masked: usize,
    /// Where the gaps are, for the messages (empty without gaps).
    gaps: String,
    /// Values with gaps that `--gaps mask` put into the mask.
    gaps_masked: usize,
}

impl Mask {
    /// The mask of `record`'s values missing at every time and, with `--gaps mask` (`mode`),
    /// at some times.
    fn of(record: &Record, mode: Gaps) -> Result<Self> {
        let steps = record.steps();
        let state = record.state_shape();
        let f: usize = state.iter().product();
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
                "{gappy} of {f} values of a state are missing at some times but not all, the \
                 first at [{}] at {} of {steps} steps",
                shape_text(&unravel(&state, j)),
                missing[j]
            ),
        };
        let gaps_masked = if mode == Gaps::Mask { gappy } else { 0 };
        if mode == Gaps::Mask {
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
        Ok(Self {
            seen,
            masked,
            gaps,
            gaps_masked,
        })
    }
}

/// The training period's normalisation of `record`'s values (in the units of `transforms`),
/// and the physical values that masked values are filled with.
fn normalisation_of(
    record: &Record,
    transforms: &Transforms,
    periods: &[[usize; 2]; 3],
) -> (Normalisation, Vec<f64>) {
    let state = record.state_shape();
    let f: usize = state.iter().product();
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
    (norm, fill)
}

/// The windows of the three periods: their starts, the arrays of those kept (with their
/// observed-value masks for `--gaps keep`), and how many were dropped for their gaps.
struct Pieces {
    starts: [Vec<usize>; 3],
    dropped: [usize; 3],
    arrays: Vec<Array>,
    observed: Vec<Array>,
}

impl Pieces {
    /// Cuts each period of `record` into windows, dropping those with gaps (`gap_at`, by
    /// time step) unless `--gaps keep`, filling missing values with `fill`.
    fn cut(
        record: &Record,
        windows: &Windows,
        periods: &[[usize; 2]; 3],
        fixed: &Mask,
        gap_at: &[bool],
        fill: &[f64],
    ) -> Result<Self> {
        let (l, s) = (windows.window, windows.stride);
        let state = record.state_shape();
        let f: usize = state.iter().product();
        let (seen, gaps) = (&fixed.seen, &fixed.gaps);
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
                        "no {} window of {l} steps is left: all {} hold missing values ({gaps}; \
                         --gaps keep keeps them, with masks of the observed values)",
                        NAMES[k], dropped[k]
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
        Ok(Self {
            starts,
            dropped,
            arrays,
            observed,
        })
    }
}

/// The data set of the windows of `record`, with the record in its `system.json`.
fn assemble(
    record: &Record,
    windows: &Windows,
    periods: [[usize; 2]; 3],
    transforms: Transforms,
    norm: Normalisation,
    fixed: Mask,
    pieces: Pieces,
) -> Cut {
    let state = record.state_shape();
    let f: usize = state.iter().product();
    let (l, s) = (windows.window, windows.stride);
    let keep = windows.gaps == Gaps::Keep;
    let Pieces {
        starts,
        dropped,
        mut arrays,
        observed,
    } = pieces;
    let Mask {
        seen,
        masked,
        gaps,
        gaps_masked,
    } = fixed;
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
    let sources = sources(record, &file);
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
    Cut {
        splits,
        mask,
        gaps,
        observed,
    }
}

/// The sources of a record: each variable's values as read, with their checksum; `file` is
/// the record's file.
fn sources(record: &Record, file: &str) -> Vec<Source> {
    let f: usize = record.state_shape().iter().product();
    record
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
        .collect()
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
