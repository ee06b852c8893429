//! The variables' common grid: its coordinates, its values, and the `--select` and
//! `--coarsen` edits.

use netcdf_reader::{NcFile, NcVariable};

use super::stations::stations;
use super::{Select, dim_names, text_attribute};
use crate::axis::Axis;
use crate::error::{Error, Result};
use crate::geo::Station;

/// The variables' values on their common grid, as `--select` and `--coarsen` edit it.
pub(super) struct Grid {
    /// The dimensions' names, time first.
    pub(super) dims: Vec<String>,
    pub(super) shape: Vec<usize>,
    /// The coordinate of each dimension.
    pub(super) axes: Vec<Axis>,
    /// The values of each variable, C order over `shape`.
    pub(super) values: Vec<Vec<f64>>,
    /// What `--select` and `--coarsen` did.
    pub(super) edits: Vec<String>,
    /// The indices of the file's cells kept along each dimension (`None`: all; coarsened
    /// dimensions lose their station list).
    pub(super) kept: Vec<Option<Vec<usize>>>,
    pub(super) coarsened: Vec<bool>,
}

impl Grid {
    /// The grid of `vars` (whose first dimension is `time`): the coordinates, the time axis
    /// checked, and the values unpacked, missing values NaN.
    pub(super) fn read(
        file: &NcFile,
        vars: &[&NcVariable],
        time: &str,
        origin: &str,
    ) -> Result<Self> {
        let first = vars[0];
        let dims = dim_names(first);
        let shape: Vec<usize> = first.shape().iter().map(|&n| n as usize).collect();
        let axes: Vec<Axis> = dims
            .iter()
            .zip(&shape)
            .map(|(d, &n)| coordinate(file, origin, d, n))
            .collect::<Result<_>>()?;
        if let Some(bad) = (1..axes[0].values.len()).find(|&i| {
            let (a, b) = (axes[0].values[i - 1], axes[0].values[i]);
            b.partial_cmp(&a) != Some(std::cmp::Ordering::Greater)
        }) {
            let t = &axes[0].values;
            return Err(Error::config(
                origin,
                format!(
                    "time axis {time} is not strictly increasing: step {} is {} after {}",
                    bad,
                    t[bad],
                    t[bad - 1]
                ),
            ));
        }
        if let Some(v) = axes[0].values.iter().find(|v| !v.is_finite()) {
            return Err(Error::config(origin, format!("time axis {time} holds {v}")));
        }
        let mut values: Vec<Vec<f64>> = Vec::with_capacity(vars.len());
        for v in vars {
            let a = file
                .read_variable_unpacked_masked(v.name())
                .map_err(|e| Error::config(origin, format!("reading {}: {e}", v.name())))?;
            values.push(a.iter().copied().collect());
        }
        Ok(Self {
            kept: vec![None; dims.len()],
            coarsened: vec![false; dims.len()],
            dims,
            shape,
            axes,
            values,
            edits: Vec::new(),
        })
    }

    /// Keeps the indices `s` of one dimension (`--select`); `first` and `origin` name the
    /// variable and the file in errors.
    pub(super) fn select(&mut self, s: &Select, first: &NcVariable, origin: &str) -> Result<()> {
        let axis = self.dims.iter().position(|d| d == &s.dim).ok_or_else(|| {
            Error::config(
                "--select",
                format!(
                    "no dimension '{}' in {} of {origin} (its dimensions: {})",
                    s.dim,
                    first.name(),
                    self.dims.join(", ")
                ),
            )
        })?;
        let keep = s.indices(self.shape[axis]).map_err(|reason| {
            Error::config(
                "--select",
                format!("{}: {reason} of dimension {}", s.dim, s.dim),
            )
        })?;
        for v in &mut self.values {
            *v = take_axis(v, &self.shape, axis, &keep);
        }
        self.axes[axis].values = keep.iter().map(|&k| self.axes[axis].values[k]).collect();
        self.shape[axis] = keep.len();
        self.kept[axis] = Some(match &self.kept[axis] {
            None => keep.clone(),
            Some(before) => keep.iter().map(|&k| before[k]).collect(),
        });
        self.edits.push(format!(
            "select {}={}:{}:{} ({} kept)",
            s.dim,
            s.start.map_or(String::new(), |v| v.to_string()),
            s.end
                .filter(|&e| e != i64::MAX)
                .map_or(String::new(), |v| v.to_string()),
            s.step,
            keep.len()
        ));
        Ok(())
    }

    /// Averages blocks of `k` cells of dimension `dim` (`--coarsen`).
    pub(super) fn coarsen(
        &mut self,
        dim: &str,
        k: &usize,
        first: &NcVariable,
        origin: &str,
    ) -> Result<()> {
        let axis = self.dims.iter().position(|d| d == dim).ok_or_else(|| {
            Error::config(
                "--coarsen",
                format!(
                    "no dimension '{dim}' in {} of {origin} (its dimensions: {})",
                    first.name(),
                    self.dims.join(", ")
                ),
            )
        })?;
        if axis == 0 {
            return Err(Error::config(
                "--coarsen",
                format!("{dim} is the time dimension; coarsen only the others"),
            ));
        }
        if !self.shape[axis].is_multiple_of(*k) {
            return Err(Error::config(
                "--coarsen",
                format!(
                    "{dim} has {} cells, not a multiple of {k}; keep a multiple first, e.g. \
                     --select {dim}=0:{}",
                    self.shape[axis],
                    self.shape[axis] / k * k
                ),
            ));
        }
        for v in &mut self.values {
            *v = coarsen_axis(v, &self.shape, axis, *k);
        }
        let c = &self.axes[axis].values;
        self.axes[axis].values = c
            .chunks(*k)
            .map(|b| b.iter().sum::<f64>() / *k as f64)
            .collect();
        self.shape[axis] /= k;
        self.coarsened[axis] = true;
        self.edits.push(format!("coarsen {dim}={k}"));
        Ok(())
    }

    /// The axes of the state: the dimensions besides time, those of size 1 left out.
    pub(super) fn space(&self, first: &NcVariable, origin: &str) -> Result<Vec<Axis>> {
        let space: Vec<Axis> = self.axes[1..]
            .iter()
            .zip(&self.shape[1..])
            .filter(|(_, n)| **n != 1)
            .map(|(a, _)| a.clone())
            .collect();
        if space.len() > 2 {
            return Err(Error::config(
                origin,
                format!(
                    "{} has {} dimensions besides time ({}): a state is a series, a network or a \
                     2-D field; keep one index of the others with --select DIM=I",
                    first.name(),
                    space.len(),
                    space
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(space)
    }

    /// The stations of a state of one dimension (`space` dimensions), of the cells kept.
    pub(super) fn stations(
        &self,
        file: &NcFile,
        origin: &str,
        space: usize,
    ) -> Result<Option<Vec<Station>>> {
        let stations = match (1..self.dims.len()).find(|&a| self.shape[a] != 1) {
            Some(a) if space == 1 && !self.coarsened[a] => {
                let all = stations(file, origin, &self.dims[a], &self.axes[a])?;
                all.map(|st| match &self.kept[a] {
                    None => st,
                    Some(k) => k.iter().map(|&i| st[i].clone()).collect(),
                })
            }
            _ => None,
        };
        Ok(stations)
    }

    /// The values as `(T, V, S)`, from the variables' `(V, T, S)`.
    pub(super) fn interleaved(&self) -> Vec<f64> {
        let t = self.shape[0];
        let per: usize = self.shape[1..].iter().product();
        let mut out = Vec::with_capacity(t * self.values.len() * per);
        for step in 0..t {
            for v in &self.values {
                out.extend_from_slice(&v[step * per..(step + 1) * per]);
            }
        }
        out
    }
}

/// The coordinate values of dimension `dim` (size `n`): its coordinate variable, unpacked, or
/// the indices.
fn coordinate(file: &NcFile, origin: &str, dim: &str, n: usize) -> Result<Axis> {
    match file.variable(dim) {
        Ok(c) if c.is_coordinate_variable() => {
            let values = file
                .read_variable_unpacked(dim)
                .map_err(|e| Error::config(origin, format!("reading coordinate {dim}: {e}")))?
                .iter()
                .copied()
                .collect::<Vec<f64>>();
            Ok(Axis {
                name: dim.into(),
                values,
                units: text_attribute(c, "units"),
                calendar: text_attribute(c, "calendar"),
            })
        }
        _ => Ok(Axis {
            name: dim.into(),
            values: (0..n).map(|i| i as f64).collect(),
            units: None,
            calendar: None,
        }),
    }
}

/// The values of `shape` (C order) at the indices `keep` of `axis`.
fn take_axis(values: &[f64], shape: &[usize], axis: usize, keep: &[usize]) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in keep {
            let at = (o * n + k) * inner;
            out.extend_from_slice(&values[at..at + inner]);
        }
    }
    out
}

/// Block means of `k` cells along `axis` (`shape[axis]` a multiple of `k`), over the finite
/// values of each block; NaN where a block has none.
fn coarsen_axis(values: &[f64], shape: &[usize], axis: usize, k: usize) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let m = n / k;
    let mut out = Vec::with_capacity(outer * m * inner);
    let mut sum = vec![0.0; inner];
    let mut count = vec![0usize; inner];
    for o in 0..outer {
        for b in 0..m {
            sum.fill(0.0);
            count.fill(0);
            for j in 0..k {
                let at = (o * n + b * k + j) * inner;
                for (i, v) in values[at..at + inner].iter().enumerate() {
                    if v.is_finite() {
                        sum[i] += v;
                        count[i] += 1;
                    }
                }
            }
            out.extend(sum.iter().zip(&count).map(
                |(s, &c)| {
                    if c == 0 { f64::NAN } else { s / c as f64 }
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_means_skip_missing_values() {
        // Shape (2, 4): rows [1, 3, NaN, NaN] and [0, 2, 4, NaN], blocks of 2 along axis 1.
        let n = f64::NAN;
        let v = vec![1.0, 3.0, n, n, 0.0, 2.0, 4.0, n];
        let c = coarsen_axis(&v, &[2, 4], 1, 2);
        assert_eq!(c[0], 2.0);
        assert!(c[1].is_nan());
        assert_eq!(&c[2..], &[1.0, 4.0]);
        assert_eq!(take_axis(&v[4..], &[1, 4], 1, &[3, 0])[1], 0.0);
    }
}
