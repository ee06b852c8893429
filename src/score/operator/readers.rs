//! The data that file-backed terms carry (indices, matrices, masks, a table's rows) and
//! the readers of their files.

use crate::error::{Error, Result};

/// Rows of weighted sums of a state's values.
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    /// The table they came from.
    pub path: String,
    /// Each row's `(flat index, weight)` terms.
    pub rows: Vec<Vec<(usize, f32)>>,
}

/// A list of non-negative integers read from a `.npy` file (or given inline).
#[derive(Clone, Debug, PartialEq)]
pub struct Indices {
    /// Where they came from.
    pub path: String,
    /// The indices.
    pub indices: Vec<usize>,
}

/// A dense matrix read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// The file.
    pub path: String,
    /// Rows M (observed values).
    pub rows: usize,
    /// Columns F (values of a state).
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// One row of a table: the state it observes, its weighted terms and its line.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The observed state's index in the trajectory.
    pub time: usize,
    /// `(flat index within the state, weight)`.
    pub terms: Vec<(usize, f32)>,
    /// Its line in the file.
    pub line: usize,
}

/// The rows of a table, sorted by time.
#[derive(Clone, Debug, PartialEq)]
pub struct Entries {
    /// The table file.
    pub path: String,
    /// The rows, by time.
    pub rows: Vec<Entry>,
}

impl Entries {
    pub(super) fn times(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self.rows.iter().map(|p| p.time).collect();
        t.dedup();
        t
    }

    pub(super) fn of(table: &crate::score::table::Table) -> Self {
        Self {
            path: table.path.clone(),
            rows: table
                .rows
                .iter()
                .map(|r| Entry {
                    time: r.time,
                    terms: r.terms.clone(),
                    line: r.line,
                })
                .collect(),
        }
    }
}

/// The integers of a `.npy` file (any shape, flattened), all non-negative and integral.
pub(super) fn read_indices(spec: &str, path: &str) -> Result<Vec<usize>> {
    let a = crate::io::read_npy(std::path::Path::new(path))?;
    let err = |reason: String| Error::Operator {
        spec: spec.into(),
        reason: format!("{path}: {reason}"),
    };
    if a.data.is_empty() {
        return Err(err("holds no index".into()));
    }
    a.data
        .iter()
        .map(|&v| {
            if v >= 0.0 && v.fract() == 0.0 && v.is_finite() {
                Ok(v as usize)
            } else {
                Err(err(format!("{v} is not a non-negative integer index")))
            }
        })
        .collect()
}

impl Matrix {
    /// Reads a `(M, F)` matrix.
    pub fn read(spec: &str, path: &str) -> Result<Self> {
        let a = crate::io::read_npy(std::path::Path::new(path))?;
        match a.shape[..] {
            [m, f] if m > 0 && f > 0 => {
                a.check_finite(path)?;
                Ok(Self {
                    path: path.into(),
                    rows: m,
                    cols: f,
                    data: a.data,
                })
            }
            _ => Err(Error::Operator {
                spec: spec.into(),
                reason: format!("{path}: expected an (M, F) matrix, got shape {:?}", a.shape),
            }),
        }
    }
}

/// A boolean grid mask read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// The file it came from.
    pub path: String,
    /// Its grid shape `(H, W)`.
    pub shape: [usize; 2],
    /// Row-major indices of its non-zero points.
    pub points: Vec<usize>,
}

impl Mask {
    /// Reads a mask: any `(H, W)` array, non-zero where observed.
    pub fn read(path: &str) -> Result<Self> {
        let a = crate::io::read_npy(std::path::Path::new(path))?;
        if a.shape.len() != 2 {
            return Err(Error::Shape {
                what: path.into(),
                expected: "(H, W) for a mask".into(),
                got: a.shape,
            });
        }
        a.check_finite(path)?;
        let points: Vec<usize> = (0..a.data.len()).filter(|&i| a.data[i] != 0.0).collect();
        if points.is_empty() {
            return Err(Error::Operator {
                spec: format!("mask:{path}"),
                reason: "the mask selects no grid point".into(),
            });
        }
        Ok(Self {
            path: path.into(),
            shape: [a.shape[0], a.shape[1]],
            points,
        })
    }
}
