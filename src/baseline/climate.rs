//! What the statistical baselines learn from a data folder's training split: its states in
//! time order (an imported record's overlapping windows put back into one record), the mean
//! and standard deviation of every value (by calendar month where the record's time axis
//! allows), and the spatial covariance of the standardised anomalies as leading EOFs plus a
//! diagonal remainder.

use std::collections::BTreeMap;
use std::ops::Range;

use nalgebra::{DMatrix, DVector};

use crate::calendar;
use crate::data::{SystemInfo, features, shape_text};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::{External, System};

/// At most this many training values (states × modelled values) are read.
const MAX_VALUES: usize = 1 << 25;
/// At most this many training states (evenly spaced) enter the EOFs.
const MAX_EOF_STATES: usize = 2000;

/// The training split as the baselines see it.
#[derive(Clone, Debug)]
pub struct Training {
    /// The state's shape.
    pub shape: Vec<usize>,
    /// The flat indices of the modelled values (those the fixed mask keeps), increasing.
    pub active: Vec<usize>,
    /// For each flat index, its place among the modelled values (`None`: masked).
    pub position: Vec<Option<usize>>,
    /// The states, `modelled values × states`, physical units, in time order.
    pub x: DMatrix<f64>,
    /// Runs of columns one time step apart (a record's stretches, or trajectories).
    pub runs: Vec<Range<usize>>,
    /// The season (0..seasons) of each column.
    pub season: Vec<usize>,
    /// 12 (calendar months) or 1.
    pub seasons: usize,
    /// The season of every step of the record (an imported record with seasons).
    pub record_seasons: Option<Vec<usize>>,
    /// The record's steps, and where each window of each split starts (imported records).
    pub record: Option<(usize, [Vec<usize>; 3])>,
    /// What the seasons are, in words (or why there are none).
    pub note: String,
}

impl Training {
    /// The training split `train` `(N, L, *shape)` of a data folder described by `info`, with
    /// its fixed mask (1: data).
    pub fn new(info: &SystemInfo, train: &Array, mask: Option<&Array>) -> Result<Self> {
        let shape = info.state_shape.clone();
        let f = features(&shape);
        if train.shape.len() != 2 + shape.len() || train.shape[2..] != shape[..] {
            return Err(Error::Shape {
                what: "train.npy".into(),
                expected: format!("(N, L, {})", shape_text(&shape)),
                got: train.shape.clone(),
            });
        }
        let (n, l) = (train.shape[0], train.shape[1]);
        let keep: Vec<bool> = match mask {
            Some(m) => m.data.iter().map(|&v| v > 0.5).collect(),
            None => vec![true; f],
        };
        let active: Vec<usize> = (0..f).filter(|&i| keep[i]).collect();
        if active.is_empty() {
            return Err(Error::config("mask.npy", "masks every value of the state"));
        }
        let mut position = vec![None; f];
        for (k, &i) in active.iter().enumerate() {
            position[i] = Some(k);
        }
        let cap = (MAX_VALUES / active.len()).max(l);
        let record = match &info.system {
            System::External(External {
                record: Some(r), ..
            }) => Some(r),
            _ => None,
        };
        // (record step or running index, trajectory, state) of each column, in time order.
        let mut cols: Vec<(usize, usize, usize)> = Vec::new();
        match record {
            Some(r) => {
                let mut by_step = BTreeMap::new();
                for (w, &s) in r.starts[0].iter().enumerate().take(n) {
                    for j in 0..l {
                        by_step.entry(s + j).or_insert((w, j));
                    }
                }
                cols.extend(by_step.into_iter().take(cap).map(|(s, (w, j))| (s, w, j)));
            }
            None => {
                let trajectories = (cap / l).clamp(1, n);
                for w in 0..trajectories {
                    cols.extend((0..l).map(|j| (w * (l + 1) + j, w, j)));
                }
            }
        }
        let mut x = DMatrix::zeros(active.len(), cols.len());
        for (c, &(_, w, j)) in cols.iter().enumerate() {
            let at = (w * l + j) * f;
            for (k, &i) in active.iter().enumerate() {
                x[(k, c)] = train.data[at + i] as f64;
            }
        }
        if let Some((k, c)) = (0..cols.len())
            .flat_map(|c| (0..active.len()).map(move |k| (k, c)))
            .find(|&(k, c)| !x[(k, c)].is_finite())
        {
            return Err(Error::config(
                "train.npy",
                format!("value {} of training state {c} is not finite", active[k]),
            ));
        }
        let mut runs = Vec::new();
        let mut from = 0;
        for c in 1..=cols.len() {
            if c == cols.len() || cols[c].0 != cols[c - 1].0 + 1 {
                runs.push(from..c);
                from = c;
            }
        }
        let mut t = Self {
            shape,
            active,
            position,
            x,
            runs,
            season: vec![0; cols.len()],
            seasons: 1,
            record_seasons: None,
            record: record.map(|r| (r.time.values.len(), r.starts.clone())),
            note: "no time axis: one climatology for every state".into(),
        };
        if let Some(r) = record {
            let steps: Vec<usize> = cols.iter().map(|c| c.0).collect();
            t.seasons_from(&r.time, &steps);
        }
        Ok(t)
    }

    /// Calendar months as seasons, where the time axis is a calendar one with steps of at most
    /// a month and every month has at least two training states.
    fn seasons_from(&mut self, time: &crate::axis::Axis, steps: &[usize]) {
        let units = time.units.as_deref();
        let months = match calendar::months(&time.values, units, time.calendar.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                self.note = format!("one climatology for every state ({e})");
                return;
            }
        };
        match calendar::step_days(&time.values, units) {
            Some(d) if d <= 31.0 => {}
            Some(d) => {
                self.note = format!(
                    "one climatology for every state (the record's steps are {d:.1} days, \
                     longer than a month)"
                );
                return;
            }
            None => {
                self.note = "one climatology for every state (a time axis of one step)".into();
                return;
            }
        }
        let season: Vec<usize> = steps.iter().map(|&s| months[s]).collect();
        let mut count = [0usize; 12];
        season.iter().for_each(|&m| count[m] += 1);
        let fewest = *count.iter().min().expect("12 months");
        if fewest < 2 {
            self.note = format!(
                "one climatology for every state (a calendar month has {fewest} training \
                 state(s); monthly statistics need 2)"
            );
            return;
        }
        self.season = season;
        self.seasons = 12;
        self.record_seasons = Some(months);
        self.note = format!(
            "a monthly climatology ({} {}; {fewest} to {} training states a month)",
            time.name,
            units.unwrap_or(""),
            count.iter().max().expect("12 months")
        );
    }

    /// Modelled values per state.
    pub fn dim(&self) -> usize {
        self.active.len()
    }

    /// Training states.
    pub fn len(&self) -> usize {
        self.x.ncols()
    }

    /// Whether there is no training state.
    pub fn is_empty(&self) -> bool {
        self.x.ncols() == 0
    }

    /// The pairs of columns `lag` steps apart within a run.
    pub fn pairs(&self, lag: usize) -> Vec<(usize, usize)> {
        self.runs
            .iter()
            .flat_map(|r| (r.start..r.end.saturating_sub(lag)).map(move |c| (c, c + lag)))
            .collect()
    }

    /// The record step of state 0 of an assimilation window: `start` as given (a step of the
    /// record, or `SPLIT:N`, window `N` of a split), checked with the window's `length`.
    pub fn start_step(&self, start: Option<&str>, length: usize) -> Result<Option<usize>> {
        let Some(spec) = start else {
            if self.seasons > 1 {
                return Err(Error::config(
                    "--start",
                    "needed: the climatology is monthly, so the record step of state 0 must be \
                     known (a step, or test:N for window N of the test split)",
                ));
            }
            return Ok(None);
        };
        let Some((steps, starts)) = &self.record else {
            return Err(Error::config(
                "--start",
                "this data folder is not an imported record: its trajectories have no time axis",
            ));
        };
        let step = match spec.split_once(':') {
            Some((split, n)) => {
                let k = ["train", "valid", "test"]
                    .iter()
                    .position(|s| *s == split)
                    .ok_or_else(|| {
                        Error::config("--start", format!("'{split}' is not train, valid or test"))
                    })?;
                let n: usize = n.parse().map_err(|_| {
                    Error::config("--start", format!("'{n}' is not a window index"))
                })?;
                *starts[k].get(n).ok_or_else(|| {
                    Error::config(
                        "--start",
                        format!("the {split} split has {} windows (0..)", starts[k].len()),
                    )
                })?
            }
            None => spec.parse().map_err(|_| {
                Error::config("--start", format!("'{spec}' is not a step or SPLIT:N"))
            })?,
        };
        if step + length > *steps {
            return Err(Error::config(
                "--start",
                format!(
                    "states {step}..{} lie outside the record's {steps} steps (0..{})",
                    step + length - 1,
                    steps - 1
                ),
            ));
        }
        Ok(Some(step))
    }

    /// The season of state `t` of a window that starts at record step `start`.
    pub fn season_at(&self, start: Option<usize>, t: usize) -> usize {
        match (&self.record_seasons, start) {
            (Some(s), Some(start)) => s[start + t],
            _ => 0,
        }
    }
}

/// The mean and standard deviation of every modelled value, per season.
#[derive(Clone, Debug)]
pub struct Climate {
    /// Means, one vector per season.
    pub mean: Vec<DVector<f64>>,
    /// Standard deviations (unbiased), one vector per season.
    pub std: Vec<DVector<f64>>,
}

impl Climate {
    /// Per-season means and stds of the training states.
    pub fn fit(t: &Training) -> Result<Self> {
        let d = t.dim();
        let mut mean = vec![DVector::zeros(d); t.seasons];
        let mut sq = vec![DVector::zeros(d); t.seasons];
        let mut count = vec![0usize; t.seasons];
        for (c, &s) in t.season.iter().enumerate() {
            mean[s] += t.x.column(c);
            count[s] += 1;
        }
        if let Some(s) = count.iter().position(|&c| c < 2) {
            return Err(Error::config(
                "train.npy",
                format!(
                    "{} training state(s) in season {s}: a std needs 2",
                    count[s]
                ),
            ));
        }
        for s in 0..t.seasons {
            mean[s] /= count[s] as f64;
        }
        for (c, &s) in t.season.iter().enumerate() {
            let a = t.x.column(c) - &mean[s];
            sq[s] += a.component_mul(&a);
        }
        let std = (0..t.seasons)
            .map(|s| {
                (&sq[s] / (count[s] - 1) as f64).map(|v| {
                    let s = v.sqrt();
                    if s > 0.0 { s } else { f64::MIN_POSITIVE.sqrt() }
                })
            })
            .collect();
        Ok(Self { mean, std })
    }

    /// The standardised anomalies `(x − mean) / std` of the training states (same layout).
    pub fn anomalies(&self, t: &Training) -> DMatrix<f64> {
        let mut z = t.x.clone();
        for (c, &s) in t.season.iter().enumerate() {
            let mut col = z.column_mut(c);
            col -= &self.mean[s];
            col.component_div_assign(&self.std[s]);
        }
        z
    }
}

/// A covariance of standardised anomalies as `U Λ Uᵀ + diag(r)`: the leading `k` EOFs (the
/// orthonormal columns of `U`, variances `Λ`) and the variance each value keeps outside them,
/// so that every value's variance is its sample variance.
#[derive(Clone, Debug)]
pub struct Eofs {
    /// `modelled values × k`.
    pub u: DMatrix<f64>,
    /// The EOFs' variances, decreasing.
    pub lambda: Vec<f64>,
    /// The remaining variance of each value (positive).
    pub rest: DVector<f64>,
    /// The share of the total variance the EOFs explain.
    pub explained: f64,
    /// The number of EOFs with non-zero variance (the most that can be asked for).
    pub rank: usize,
}

/// How many EOFs to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Keep {
    /// Exactly this many.
    Count(usize),
    /// The fewest that explain this share of the variance, at most `cap`.
    Share(f64, usize),
}

impl Eofs {
    /// The EOFs of anomalies `z` (`values × states`).
    pub fn fit(z: &DMatrix<f64>, keep: Keep) -> Result<Self> {
        let (d, n) = z.shape();
        if n < 2 {
            return Err(Error::config(
                "train.npy",
                "EOFs need at least 2 training states",
            ));
        }
        // Evenly spaced states, at most MAX_EOF_STATES of them.
        let used: Vec<usize> = if n > MAX_EOF_STATES {
            (0..MAX_EOF_STATES)
                .map(|i| i * n / MAX_EOF_STATES)
                .collect()
        } else {
            (0..n).collect()
        };
        let zs = z.select_columns(&used);
        let m = used.len();
        let denom = (m - 1) as f64;
        let var: DVector<f64> = DVector::from_iterator(
            d,
            z.row_iter()
                .map(|r| r.iter().map(|v| v * v).sum::<f64>() / (n - 1) as f64),
        );
        let (values, vectors) = if d <= m {
            let c = &zs * zs.transpose() / denom;
            eigen(c)?
        } else {
            let g = zs.transpose() * &zs / denom;
            let (values, v) = eigen(g)?;
            let mut u = &zs * v;
            for (mut col, &l) in u.column_iter_mut().zip(&values) {
                let norm = (l * denom).max(0.0).sqrt();
                if norm > 0.0 {
                    col /= norm;
                }
            }
            (values, u)
        };
        let top = values.first().copied().unwrap_or(0.0).max(0.0);
        let rank = values.iter().take_while(|&&l| l > 1e-10 * top).count();
        let total: f64 = var.iter().sum();
        let k = match keep {
            Keep::Count(k) if k == 0 || k > rank => {
                return Err(Error::config(
                    "--eofs",
                    format!(
                        "between 1 and the {rank} EOFs of non-zero variance of {n} training \
                         states, got {k}"
                    ),
                ));
            }
            Keep::Count(k) => k,
            Keep::Share(share, cap) => {
                let mut acc = 0.0;
                let mut k = 0;
                while k < rank && acc < share * total {
                    acc += values[k];
                    k += 1;
                }
                k.clamp(1, cap.clamp(1, rank.max(1)))
            }
        };
        let u = vectors.columns(0, k).into_owned();
        let lambda: Vec<f64> = values[..k].to_vec();
        let mut rest = var.clone();
        for (j, &l) in lambda.iter().enumerate() {
            for i in 0..d {
                rest[i] -= l * u[(i, j)].powi(2);
            }
        }
        // A remainder of at least a millionth of each value's variance keeps the covariance
        // positive definite.
        for i in 0..d {
            rest[i] = rest[i].max(1e-6 * var[i]).max(1e-12);
        }
        Ok(Self {
            u,
            explained: lambda.iter().sum::<f64>() / total.max(f64::MIN_POSITIVE),
            lambda,
            rest,
            rank,
        })
    }

    /// The EOFs kept.
    pub fn k(&self) -> usize {
        self.lambda.len()
    }

    /// The dense covariance `U Λ Uᵀ + diag(r)` (small problems and tests).
    pub fn dense(&self) -> DMatrix<f64> {
        let mut ul = self.u.clone();
        for (mut c, &l) in ul.column_iter_mut().zip(&self.lambda) {
            c *= l;
        }
        let mut c = ul * self.u.transpose();
        for i in 0..c.nrows() {
            c[(i, i)] += self.rest[i];
        }
        c
    }
}

/// Eigenvalues (decreasing) and eigenvectors of a symmetric matrix.
fn eigen(m: DMatrix<f64>) -> Result<(Vec<f64>, DMatrix<f64>)> {
    let (values, vectors) = crate::classical::symmetric_eigen(m).ok_or_else(|| {
        Error::config(
            "train.npy",
            "the covariance's eigenvectors did not converge",
        )
    })?;
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let sorted = order.iter().map(|&i| values[i]).collect();
    Ok((sorted, vectors.select_columns(&order)))
}
