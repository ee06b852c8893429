//! Observations as a table: one row per measurement, `time,index,value,std` (the state's index
//! in the trajectory, the flat index of the value within the state, the measured value and its
//! noise std), with a header line naming the columns (in any order; other columns are ignored).
//! Each time may observe a different set of values, times may be irregular, and two rows may
//! measure the same value (two instruments).
//!
//! Rows may instead give a `date` of the record's time axis (for `time`), and a `station` of its
//! network or a place `lat,lon` (for `index`), with a `variable` where a state has several: those
//! are placed on the record by [`crate::locate`]. Where a header has several of these, `time`
//! wins over `date`, and `index` over `station` over `lat,lon`.
//!
//! The table defines an operator (`table:FILE.csv`: the values of `(time, index)` pairs of the
//! trajectory), `y` and one noise std per row. Rows are kept in the order of their times (the
//! file's order among rows of one time), so that each observed state's rows are contiguous.

use std::path::Path;

use crate::error::{Error, Result};

/// One measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The observed state's index in the trajectory.
    pub time: usize,
    /// The values of that state it measures, each with its weight: the row measures
    /// `Σ weight · x[index]` (one term of weight 1 for a row by `index` or by station; up to
    /// four for a place on a grid, its bilinear interpolation).
    pub terms: Vec<(usize, f32)>,
    /// The measured value (physical units).
    pub value: f32,
    /// Its noise std (physical units, positive).
    pub std: f32,
    /// The line of the file it came from (the header is line 1), for messages.
    pub line: usize,
}

impl Row {
    /// Whether the row measures one value with weight 1.
    pub fn is_plain(&self) -> bool {
        matches!(self.terms[..], [(_, w)] if w == 1.0)
    }
}

/// A table of observations, sorted by time.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file it came from.
    pub path: String,
    /// The measurements, by time (stable within a time).
    pub rows: Vec<Row>,
}

/// The columns a table by state and index must have.
pub const COLUMNS: [&str; 4] = ["time", "index", "value", "std"];

/// When a row was measured, as written: a state of the trajectory (`time`) or a `date` of the
/// record's time axis (a date, or a number in the axis' units).
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    /// `time`: the state's index in the trajectory.
    Step(usize),
    /// `date`: the cell as written.
    Date(String),
}

/// Where a row was measured, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Where {
    /// `index`: the flat index within the state.
    Index(usize),
    /// `station`: a name in the record's station list.
    Station(String),
    /// `lat,lon`: a place, degrees north and east.
    Place {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
    },
}

/// A row as written, before it is placed on the record.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    /// When.
    pub when: When,
    /// Where.
    pub at: Where,
    /// The `variable` cell, if the table has that column and the cell is not empty.
    pub variable: Option<String>,
    /// The measured value.
    pub value: f32,
    /// Its noise std.
    pub std: f32,
    /// Its line in the file.
    pub line: usize,
}

/// A table as written: `time` or `date`; `index`, `station` or `lat,lon`; optionally
/// `variable`; `value` and `std`.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTable {
    /// The file.
    pub path: String,
    /// The rows, in the file's order.
    pub rows: Vec<RawRow>,
}

impl RawTable {
    /// Reads a table as written, checking each cell's form (numbers where numbers go, a
    /// positive finite std, a finite value) but not its meaning.
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
            .map(
                |c| match c.trim().trim_matches('"').to_lowercase().as_str() {
                    "latitude" => "lat".to_string(),
                    "longitude" => "lon".to_string(),
                    other => other.to_string(),
                },
            )
            .collect();
        let in_header = |reason: String| {
            err(format!(
                "{reason} in the header '{header}' (needs time or date; index, station or \
                 lat,lon; value; std)"
            ))
        };
        // `time` before `date`, and `index` before `station` before `lat,lon`: the columns
        // that come later are then read as others are, not at all.
        let has = |c: &str| names.iter().position(|n| n == c);
        let time_col = has("time")
            .or_else(|| has("date"))
            .ok_or_else(|| in_header("no column 'time'".into()))?;
        let place_cols = match (has("lat"), has("lon")) {
            (Some(a), Some(b)) => Some((a, b)),
            (None, None) => None,
            _ => return Err(in_header("lat without lon or lon without lat".into())),
        };
        let where_col = has("index").or_else(|| has("station"));
        let place_cols = place_cols.filter(|_| where_col.is_none());
        if where_col.is_none() && place_cols.is_none() {
            return Err(in_header("no column 'index'".into()));
        }
        let where_col = where_col.unwrap_or(usize::MAX);
        let value_col = has("value").ok_or_else(|| in_header("no column 'value'".into()))?;
        let std_col = has("std").ok_or_else(|| in_header("no column 'std'".into()))?;
        let variable_col = has("variable");
        let mut rows = Vec::new();
        for (line, text) in lines {
            let cells: Vec<&str> = text
                .split(',')
                .map(|c| c.trim().trim_matches('"'))
                .collect();
            let at = |k: usize| cells.get(k).copied().unwrap_or("");
            let number = |k: usize| -> Result<f64> {
                at(k).parse::<f64>().map_err(|_| {
                    err(format!(
                        "line {line}: {} '{}' is not a number",
                        names[k],
                        at(k)
                    ))
                })
            };
            let integer = |k: usize| -> Result<usize> {
                let v = number(k)?;
                if v < 0.0 || v.fract() != 0.0 || !v.is_finite() {
                    return Err(err(format!(
                        "line {line}: {} {v} is not a non-negative integer",
                        names[k]
                    )));
                }
                Ok(v as usize)
            };
            let text_cell = |k: usize| -> Result<String> {
                match at(k) {
                    "" => Err(err(format!("line {line}: no {}", names[k]))),
                    t => Ok(t.to_string()),
                }
            };
            let when = match names[time_col].as_str() {
                "time" => When::Step(integer(time_col)?),
                _ => When::Date(text_cell(time_col)?),
            };
            let place = match place_cols {
                Some((a, b)) => Some((number(a)?, number(b)?)),
                None => None,
            };
            let at_cell = match place {
                Some((lat, lon)) => Where::Place { lat, lon },
                None if names[where_col] == "index" => Where::Index(integer(where_col)?),
                None => Where::Station(text_cell(where_col)?),
            };
            let (value, std) = (number(value_col)?, number(std_col)?);
            if !value.is_finite() {
                return Err(err(format!("line {line}: value {value} is not finite")));
            }
            if !(std.is_finite() && std > 0.0) {
                return Err(err(format!(
                    "line {line}: std {std} must be positive and finite"
                )));
            }
            rows.push(RawRow {
                when,
                at: at_cell,
                variable: variable_col
                    .map(|k| at(k).to_string())
                    .filter(|v| !v.is_empty()),
                value: value as f32,
                std: std as f32,
                line,
            });
        }
        if rows.is_empty() {
            return Err(err("the table has a header but no rows".into()));
        }
        Ok(Self {
            path: path.into(),
            rows,
        })
    }

    /// Whether every row gives a state and an index (no record needed to read it).
    pub fn is_plain(&self) -> bool {
        self.rows
            .iter()
            .all(|r| matches!((&r.when, &r.at), (When::Step(_), Where::Index(_))))
    }
}

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

    /// [`Self::read`] from text; `path` names it in messages. A table by station, place or
    /// date needs a record to be read: see [`crate::locate`].
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        Self::parse_raw(&RawTable::parse(text, path)?)
    }

    /// The table of a raw table by state and index.
    pub fn parse_raw(raw: &RawTable) -> Result<Self> {
        let path = raw.path.as_str();
        let Some(r) = raw
            .rows
            .iter()
            .find(|r| !matches!((&r.when, &r.at), (When::Step(_), Where::Index(_))))
        else {
            let rows = raw
                .rows
                .iter()
                .map(|r| {
                    let (When::Step(time), Where::Index(index)) = (&r.when, &r.at) else {
                        unreachable!("checked plain")
                    };
                    let (time, index) = (*time, *index);
                    Row {
                        time,
                        terms: vec![(index, 1.0)],
                        value: r.value,
                        std: r.std,
                        line: r.line,
                    }
                })
                .collect();
            return Ok(Self::sorted(path, rows));
        };
        Err(Error::config(
            path,
            format!(
                "line {}: a row by {} needs the record of the data it observes (a data folder \
                 made by sda import --netcdf or sda.Data.from_record)",
                r.line,
                match (&r.when, &r.at) {
                    (_, Where::Station(_)) => "station",
                    (_, Where::Place { .. }) => "lat,lon",
                    _ => "date",
                }
            ),
        ))
    }

    /// A table of `rows`, sorted by time (stable within a time).
    pub fn sorted(path: &str, mut rows: Vec<Row>) -> Self {
        rows.sort_by_key(|r| r.time);
        Self {
            path: path.into(),
            rows,
        }
    }

    /// The table as CSV text, with its header (rows of one value of weight 1 only: those of
    /// [`Self::observe`]).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("time,index,value,std\n");
        for r in &self.rows {
            assert!(r.is_plain(), "a weighted row has no time,index form");
            s.push_str(&format!(
                "{},{},{},{}\n",
                r.time, r.terms[0].0, r.value, r.std
            ));
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
        for r in &self.rows {
            if let Some((i, _)) = r.terms.iter().find(|t| t.0 >= features) {
                return Err(err(format!(
                    "line {}: index {i} lies outside a state of {features} values (0..{})",
                    r.line,
                    features - 1
                )));
            }
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

impl Design {
    /// A design for `length` states of `features` values: `times` observed states and
    /// `stations` values of each, a quarter of each (rounded up) when not given.
    pub fn new(
        length: usize,
        features: usize,
        times: Option<usize>,
        stations: Option<usize>,
        std: (f32, f32),
        seed: u64,
    ) -> Self {
        Design {
            times: times.unwrap_or(length.div_ceil(4)),
            stations: stations.unwrap_or(features.div_ceil(4)),
            std,
            seed,
        }
    }
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
                    terms: vec![(i, 1.0)],
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
            .map(|r| (r.time, r.terms[0].0, r.value, r.std, r.line))
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
            let truth = (10 * r.time + r.terms[0].0) as f32;
            assert!((0.1..=0.2).contains(&r.std));
            assert!((r.value - truth).abs() < 5.0 * r.std, "{r:?}");
        }
        assert_eq!(Table::observe(&x, 20, 4, &d).unwrap(), t);
        let e = Table::observe(&x, 20, 4, &Design { stations: 5, ..d }).unwrap_err();
        assert!(e.to_string().contains("--stations"));
    }
}
