//! Observations as a table: one row per measurement, `time,index,value,std` (the state's index
//! in the trajectory, the flat index of the value within the state, the measured value and its
//! noise std), with a header line naming the columns (in any order; other columns are ignored).
//! Each time may observe a different set of values, times may be irregular, and two rows may
//! measure the same value (two instruments).
//!
//! The table defines an operator (`table:FILE.csv`: the values of `(time, index)` pairs of the
//! trajectory), `y` and one noise std per row. Rows are kept in the order of their times (the
//! file's order among rows of one time), so that each observed state's rows are contiguous.

use std::path::Path;

use crate::error::{Error, Result};

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// The observed state's index in the trajectory.
    pub time: usize,
    /// The flat index of the value within the state (`c·H·W + i·W + j` for fields).
    pub index: usize,
    /// The measured value (physical units).
    pub value: f32,
    /// Its noise std (physical units, positive).
    pub std: f32,
    /// The line of the file it came from (the header is line 1), for messages.
    pub line: usize,
}

/// A table of observations, sorted by time.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file it came from.
    pub path: String,
    /// The measurements, by time (stable within a time).
    pub rows: Vec<Row>,
}

/// The columns a table must have.
pub const COLUMNS: [&str; 4] = ["time", "index", "value", "std"];

impl Table {
    /// Reads and checks a table: every column present, every cell a number (time and index
    /// non-negative integers), every std positive and finite, every value finite.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// [`Self::read`] from text; `path` names it in messages.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let err = |reason: String| Error::config(path, reason);
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (_, header) = lines
            .next()
            .ok_or_else(|| err("empty table (expected a header time,index,value,std)".into()))?;
        let names: Vec<String> = header
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_lowercase())
            .collect();
        let mut at = [0usize; 4];
        for (k, col) in COLUMNS.iter().enumerate() {
            at[k] = names.iter().position(|n| n == col).ok_or_else(|| {
                err(format!(
                    "no column '{col}' in the header '{header}' (needs time,index,value,std)"
                ))
            })?;
        }
        let mut rows = Vec::new();
        for (line, text) in lines {
            let cells: Vec<&str> = text.split(',').map(str::trim).collect();
            let cell = |k: usize| -> Result<f64> {
                let c = cells.get(at[k]).copied().unwrap_or("");
                c.trim_matches('"')
                    .parse::<f64>()
                    .map_err(|_| err(format!("line {line}: {} '{c}' is not a number", COLUMNS[k])))
            };
            let integer = |k: usize| -> Result<usize> {
                let v = cell(k)?;
                if v < 0.0 || v.fract() != 0.0 || !v.is_finite() {
                    return Err(err(format!(
                        "line {line}: {} {v} is not a non-negative integer",
                        COLUMNS[k]
                    )));
                }
                Ok(v as usize)
            };
            let (time, index, value, std) = (integer(0)?, integer(1)?, cell(2)?, cell(3)?);
            if !value.is_finite() {
                return Err(err(format!("line {line}: value {value} is not finite")));
            }
            if !(std.is_finite() && std > 0.0) {
                return Err(err(format!(
                    "line {line}: std {std} must be positive and finite"
                )));
            }
            rows.push(Row {
                time,
                index,
                value: value as f32,
                std: std as f32,
                line,
            });
        }
        if rows.is_empty() {
            return Err(err("the table has a header but no rows".into()));
        }
        rows.sort_by_key(|r| r.time);
        Ok(Self {
            path: path.into(),
            rows,
        })
    }

    /// The table as CSV text, with its header.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("time,index,value,std\n");
        for r in &self.rows {
            s.push_str(&format!("{},{},{},{}\n", r.time, r.index, r.value, r.std));
        }
        s
    }

    /// The observed states, increasing.
    pub fn times(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self.rows.iter().map(|r| r.time).collect();
        t.dedup();
        t
    }

    /// Checks the times against a trajectory of `length` states and the indices against
    /// `features` values per state, naming the first row out of range.
    pub fn check(&self, length: usize, features: usize) -> Result<()> {
        let err = |reason: String| Error::config(&self.path, reason);
        if let Some(r) = self.rows.iter().find(|r| r.time >= length) {
            return Err(err(format!(
                "line {}: time {} lies outside a trajectory of {length} states (0..{})",
                r.line,
                r.time,
                length - 1
            )));
        }
        if let Some(r) = self.rows.iter().find(|r| r.index >= features) {
            return Err(err(format!(
                "line {}: index {} lies outside a state of {features} values (0..{})",
                r.line,
                r.index,
                features - 1
            )));
        }
        Ok(())
    }

    /// `y`, one value per row (in the table's order).
    pub fn values(&self) -> Vec<f32> {
        self.rows.iter().map(|r| r.value).collect()
    }

    /// The noise stds, one per row.
    pub fn stds(&self) -> Vec<f32> {
        self.rows.iter().map(|r| r.std).collect()
    }
}

/// How [`Table::observe`] places measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Design {
    /// Observed states, chosen at random without repetition (at most the trajectory's length).
    pub times: usize,
    /// Values observed per observed state, a different random set each time (at most the
    /// state's size).
    pub stations: usize,
    /// Each row's noise std is drawn uniformly from `[std.0, std.1]`.
    pub std: (f32, f32),
    /// Seed of every draw.
    pub seed: u64,
}

impl Table {
    /// Measures a known trajectory `x` (`length` states of `features` values, flat): rows at
    /// random times and indices, each `value = x + std · z` with its own std (for experiments
    /// with a ground truth).
    pub fn observe(x: &[f32], length: usize, features: usize, design: &Design) -> Result<Self> {
        use rand::SeedableRng;
        use rand::seq::index::sample;
        use rand_distr::{Distribution, StandardNormal};
        let (lo, hi) = design.std;
        if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
            return Err(Error::config(
                "--noise",
                format!("stds must be positive and LO ≤ HI (got {lo}:{hi})"),
            ));
        }
        if design.times == 0 || design.times > length {
            return Err(Error::config(
                "--times",
                format!("between 1 and the {length} states of the trajectory"),
            ));
        }
        if design.stations == 0 || design.stations > features {
            return Err(Error::config(
                "--stations",
                format!("between 1 and the {features} values of a state"),
            ));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(design.seed);
        let mut times = sample(&mut rng, length, design.times).into_vec();
        times.sort_unstable();
        let mut rows = Vec::new();
        for t in times {
            let mut idx = sample(&mut rng, features, design.stations).into_vec();
            idx.sort_unstable();
            for i in idx {
                let std = lo + (hi - lo) * rand::Rng::random::<f32>(&mut rng);
                let z: f32 = StandardNormal.sample(&mut rng);
                rows.push(Row {
                    time: t,
                    index: i,
                    value: x[t * features + i] + std * z,
                    std,
                    line: rows.len() + 2,
                });
            }
        }
        Ok(Self {
            path: "table".into(),
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_any_column_order_and_sorted_by_time() {
        let t = Table::parse(
            "station,std,time,value,index\nA,0.5,4,1.25,7\nB,1,0,-2,3\nC,2,4,1.5,7\n\n",
            "obs.csv",
        )
        .unwrap();
        let got: Vec<(usize, usize, f32, f32, usize)> = t
            .rows
            .iter()
            .map(|r| (r.time, r.index, r.value, r.std, r.line))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 3, -2.0, 1.0, 3),
                (4, 7, 1.25, 0.5, 2),
                (4, 7, 1.5, 2.0, 4)
            ]
        );
        assert_eq!(t.times(), vec![0, 4]);
        let again = Table::parse(&t.to_csv(), "x").unwrap();
        assert_eq!(again.values(), t.values());
        assert_eq!(again.stds(), t.stds());
    }

    #[test]
    fn bad_tables_are_refused_with_the_line() {
        for (text, needle) in [
            ("time,index,value\n0,1,2\n", "no column 'std'"),
            (
                "time,index,value,std\n0,1,2,1\n3,x,2,1\n",
                "line 3: index 'x' is not a number",
            ),
            (
                "time,index,value,std\n0,1,2,1\n1,1,2\n",
                "line 3: std '' is not a number",
            ),
            (
                "time,index,value,std\n0,1,2,0\n",
                "line 2: std 0 must be positive",
            ),
            (
                "time,index,value,std\n0,1,2,-1\n",
                "line 2: std -1 must be positive",
            ),
            (
                "time,index,value,std\n-1,1,2,1\n",
                "line 2: time -1 is not a non-negative",
            ),
            ("time,index,value,std\n1.5,1,2,1\n", "time 1.5 is not"),
            ("time,index,value,std\n1,1,nan,1\n", "not finite"),
            ("time,index,value,std\n", "no rows"),
            ("", "empty table"),
        ] {
            let e = Table::parse(text, "obs.csv").unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.starts_with("obs.csv"),
                "{text:?}: {e}"
            );
        }
        let t = Table::parse("time,index,value,std\n0,1,2,1\n9,2,2,1\n", "obs.csv").unwrap();
        let e = t.check(9, 3).unwrap_err().to_string();
        assert!(e.contains("line 3: time 9 lies outside"), "{e}");
        let e = t.check(10, 2).unwrap_err().to_string();
        assert!(
            e.contains("line 3: index 2 lies outside a state of 2"),
            "{e}"
        );
        t.check(10, 3).unwrap();
    }

    #[test]
    fn observe_measures_the_truth_with_each_rows_noise() {
        // x[t, i] = 10 t + i; 5 of 20 states, 3 of 4 values each, stds in [0.1, 0.2].
        let x: Vec<f32> = (0..20 * 4).map(|k| (10 * (k / 4) + k % 4) as f32).collect();
        let d = Design {
            times: 5,
            stations: 3,
            std: (0.1, 0.2),
            seed: 7,
        };
        let t = Table::observe(&x, 20, 4, &d).unwrap();
        assert_eq!(t.rows.len(), 15);
        assert_eq!(t.times().len(), 5);
        for r in &t.rows {
            let truth = (10 * r.time + r.index) as f32;
            assert!((0.1..=0.2).contains(&r.std));
            assert!((r.value - truth).abs() < 5.0 * r.std, "{r:?}");
        }
        assert_eq!(Table::observe(&x, 20, 4, &d).unwrap(), t);
        let e = Table::observe(&x, 20, 4, &Design { stations: 5, ..d }).unwrap_err();
        assert!(e.to_string().contains("--stations"));
    }
}
