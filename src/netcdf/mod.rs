//! Records from NetCDF files (`sda import --netcdf`): the variables of one file that share a
//! time axis, read in physical units with missing values as NaN, ready to be cut into windows by
//! [`crate::record`].
//!
//! The file is read by the pure-Rust `netcdf-reader` crate: NetCDF-3 (classic, 64-bit offset
//! and CDF-5) and NetCDF-4 (HDF5, with the deflate and shuffle filters), no C library needed.
//! Packed values are unpacked (`scale_factor`, `add_offset`, `_Unsigned`), and `_FillValue`,
//! `missing_value` and values outside `valid_min`/`valid_max`/`valid_range` become NaN, as the
//! CF conventions say (the same as `xarray.open_dataset`'s default decoding).
//!
//! A variable is `(time, …)`: the time dimension comes first (it is the unlimited dimension,
//! the one named by `--time`, or the one whose coordinate has units `… since …`). Its other
//! dimensions, those of size 1 removed, make the state: none (a scalar series), one (a station
//! network: the variables' values side by side) or two (fields, one channel per variable).
//! `--select DIM=A:B[:STEP]` keeps part of a dimension (indices, as in Python) and
//! `--coarsen DIM=K` averages blocks of K cells (ignoring missing values; a block with none is
//! missing) before that.
//!
//! A state of one dimension is a network of stations when the file gives each of its cells a
//! latitude and a longitude: variables of that one dimension whose `units` are `degrees_north`
//! and `degrees_east` (or `standard_name` `latitude`/`longitude`, or named `lat`/`lon`), and a
//! name: a string or char variable of that dimension (the one with `cf_role = timeseries_id`, or
//! else the first), or else the dimension's coordinate values.

use std::path::Path;

use netcdf_reader::{NcFile, NcFormat, NcVariable};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::record_info::VariableInfo;

mod grid;
mod stations;

use grid::Grid;

/// How to read a record.
#[derive(Clone, Debug, Default)]
pub struct ReadSpec {
    /// The variables to read, in this order (at least one).
    pub variables: Vec<String>,
    /// The time dimension, when the file does not make it plain.
    pub time: Option<String>,
    /// Parts of dimensions to keep: `(dimension, start, end, step)`, indices as in Python.
    pub select: Vec<Select>,
    /// Block means: `(dimension, K)`.
    pub coarsen: Vec<(String, usize)>,
}

/// `--select DIM=A:B[:STEP]`: indices `A, A + STEP, …` below `B` of dimension `DIM`.
#[derive(Clone, Debug, PartialEq)]
pub struct Select {
    /// The dimension.
    pub dim: String,
    /// The first index (negative: from the end).
    pub start: Option<i64>,
    /// One past the last index (negative: from the end).
    pub end: Option<i64>,
    /// The step (at least 1).
    pub step: usize,
}

impl std::str::FromStr for Select {
    type Err = String;

    /// Parses `DIM=A:B`, `DIM=A:B:STEP`, `DIM=A:` or `DIM=I` (the one index `I`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (dim, range) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}': give DIM=START:END[:STEP], e.g. lat=0:72"))?;
        let index = |t: &str| -> std::result::Result<Option<i64>, String> {
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse()
                .map(Some)
                .map_err(|_| format!("'{s}': '{t}' is not an index"))
        };
        let parts: Vec<&str> = range.split(':').collect();
        let (start, end, step) = match parts.as_slice() {
            [i] => {
                let i = index(i)?.ok_or_else(|| format!("'{s}': no index"))?;
                (Some(i), Some(if i == -1 { i64::MAX } else { i + 1 }), 1)
            }
            [a, b] => (index(a)?, index(b)?, 1),
            [a, b, c] => {
                let step = match index(c)? {
                    None => 1,
                    Some(k) if k >= 1 => k as usize,
                    Some(k) => return Err(format!("'{s}': the step must be at least 1, got {k}")),
                };
                (index(a)?, index(b)?, step)
            }
            _ => return Err(format!("'{s}': give DIM=START:END[:STEP], e.g. lat=0:72")),
        };
        if dim.trim().is_empty() {
            return Err(format!("'{s}': no dimension name before '='"));
        }
        Ok(Self {
            dim: dim.trim().to_string(),
            start,
            end,
            step,
        })
    }
}

/// Parses `DIM=K` of `--coarsen`.
pub fn parse_coarsen(s: &str) -> std::result::Result<(String, usize), String> {
    let (dim, k) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': give DIM=K, e.g. lon=2"))?;
    match k.trim().parse::<usize>() {
        Ok(k) if k >= 1 && !dim.trim().is_empty() => Ok((dim.trim().to_string(), k)),
        _ => Err(format!(
            "'{s}': give DIM=K with K a whole number of cells, at least 1"
        )),
    }
}

impl Select {
    /// The indices kept of a dimension of `n` cells, or why none are.
    fn indices(&self, n: usize) -> std::result::Result<Vec<usize>, String> {
        let n_i = n as i64;
        let resolve = |v: Option<i64>, default: i64| -> i64 {
            match v {
                None => default,
                Some(i64::MAX) => n_i,
                Some(i) if i < 0 => (n_i + i).max(0),
                Some(i) => i.min(n_i),
            }
        };
        let (a, b) = (resolve(self.start, 0), resolve(self.end, n_i));
        if let Some(s) = self.start
            && (s >= n_i || s < -n_i)
        {
            return Err(format!("index {s} is outside 0..{n}"));
        }
        let kept: Vec<usize> = (a..b).step_by(self.step).map(|i| i as usize).collect();
        if kept.is_empty() {
            return Err(format!("keeps no index of the {n}"));
        }
        Ok(kept)
    }
}

fn format_name(f: NcFormat) -> &'static str {
    match f {
        NcFormat::Classic => "NetCDF-3 classic",
        NcFormat::Offset64 => "NetCDF-3 64-bit offset",
        NcFormat::Cdf5 => "NetCDF-3 CDF-5 (64-bit data)",
        NcFormat::Nc4 => "NetCDF-4",
        NcFormat::Nc4Classic => "NetCDF-4 classic model",
    }
}

fn text_attribute(v: &NcVariable, name: &str) -> Option<String> {
    v.attribute(name)
        .and_then(|a| a.value.as_string())
        .map(|s| s.trim_end_matches('\0').trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Picks the time dimension of `var` when `--time` is not given: the unlimited dimension, then
/// one whose coordinate variable's units read `… since …`, then one named `time` or `t` (any
/// case).
fn guess_time(file: &NcFile, var: &NcVariable) -> Option<String> {
    let dims = var.dimensions();
    if let Some(d) = dims.iter().find(|d| d.is_unlimited) {
        return Some(d.name.clone());
    }
    for d in dims {
        if let Ok(c) = file.variable(&d.name)
            && c.is_coordinate_variable()
            && text_attribute(c, "units").is_some_and(|u| u.to_lowercase().contains(" since "))
        {
            return Some(d.name.clone());
        }
    }
    dims.iter()
        .find(|d| matches!(d.name.to_lowercase().as_str(), "time" | "t"))
        .map(|d| d.name.clone())
}

/// Reads the variables of `spec` from `path` as one record.
///
/// # Errors
/// One line naming the file, the variable or the flag: a file that is not NetCDF, a variable
/// that is not in it (with the names that are), a time dimension that cannot be told or is not
/// the variables' first, variables on different grids, a time axis that is not strictly
/// increasing, a `--select`/`--coarsen` of a dimension the variables lack or outside it, a
/// state of more than two dimensions besides time.
pub fn read(path: &Path, spec: &ReadSpec) -> Result<Record> {
    let origin = path.display().to_string();
    let file = open(path, &origin)?;
    let vars = wanted_variables(&file, spec, &origin)?;
    let first = vars[0];
    let time = time_dimension(&file, first, spec, &origin)?;
    check_grids(&vars, &time, &origin)?;
    let mut grid = Grid::read(&file, &vars, &time, &origin)?;
    for s in &spec.select {
        grid.select(s, first, &origin)?;
    }
    for (dim, k) in &spec.coarsen {
        grid.coarsen(dim, k, first, &origin)?;
    }
    let space = grid.space(first, &origin)?;
    let stations = grid.stations(&file, &origin, space.len())?;
    let out = grid.interleaved();
    let variables = vars.iter().map(|v| variable_info(v)).collect();
    Ok(Record {
        origin,
        format: format_name(file.format()).into(),
        variables,
        time: grid.axes[0].clone(),
        space,
        values: out,
        edits: grid.edits,
        stations,
    })
}

/// Opens `path`, named `origin` in errors.
fn open(path: &Path, origin: &str) -> Result<NcFile> {
    NcFile::open(path).map_err(|e| match e {
        netcdf_reader::Error::Io(io) => Error::Io {
            path: path.to_path_buf(),
            source: io,
        },
        e => Error::config(origin, format!("not a NetCDF file this reader knows: {e}")),
    })
}

/// The variables that `spec` names (`--variables`), in its order.
fn wanted_variables<'f>(
    file: &'f NcFile,
    spec: &ReadSpec,
    origin: &str,
) -> Result<Vec<&'f NcVariable>> {
    let wanted: Vec<&str> = spec
        .variables
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(Error::config(
            "--variables",
            "name at least one variable of the file",
        ));
    }
    let names_in_file = || -> String {
        file.variables()
            .map(|vs| {
                vs.iter()
                    .filter(|v| !v.is_coordinate_variable())
                    .map(|v| v.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut vars = Vec::new();
    for name in wanted {
        match file.variable(name) {
            Ok(v) => vars.push(v),
            Err(_) => {
                return Err(Error::config(
                    origin,
                    format!(
                        "no variable '{name}' (--variables); the file has: {}",
                        names_in_file()
                    ),
                ));
            }
        }
    }
    Ok(vars)
}

/// The names of the dimensions of `v`.
fn dim_names(v: &NcVariable) -> Vec<String> {
    v.dimensions().iter().map(|d| d.name.clone()).collect()
}

/// The time dimension of `first`: the one `--time` names, or else [`guess_time`]'s.
fn time_dimension(
    file: &NcFile,
    first: &NcVariable,
    spec: &ReadSpec,
    origin: &str,
) -> Result<String> {
    Ok(match &spec.time {
        Some(t) => {
            if !first.dimensions().iter().any(|d| &d.name == t) {
                return Err(Error::config(
                    "--time",
                    format!(
                        "'{t}' is not a dimension of {} in {origin} (its dimensions: {})",
                        first.name(),
                        dim_names(first).join(", ")
                    ),
                ));
            }
            t.clone()
        }
        None => guess_time(file, first).ok_or_else(|| {
            Error::config(
                origin,
                format!(
                    "cannot tell which dimension of {} is time; name it with --time (its \
                     dimensions: {})",
                    first.name(),
                    dim_names(first).join(", ")
                ),
            )
        })?,
    })
}

/// Checks that every variable has the time dimension first and the grid of the first.
fn check_grids(vars: &[&NcVariable], time: &str, origin: &str) -> Result<()> {
    let first = vars[0];
    for v in vars {
        let dims = dim_names(v);
        if dims.first().map(String::as_str) != Some(time) {
            return Err(Error::config(
                origin,
                format!(
                    "variable {} has dimensions ({}): its first must be the time dimension {time}",
                    v.name(),
                    dims.join(", ")
                ),
            ));
        }
        if v.dimensions() != first.dimensions() {
            return Err(Error::config(
                origin,
                format!(
                    "variables {} ({}) and {} ({}) are not on the same grid",
                    first.name(),
                    describe_dims(first),
                    v.name(),
                    describe_dims(v)
                ),
            ));
        }
    }
    Ok(())
}

/// What the record says of variable `v`.
fn variable_info(v: &NcVariable) -> VariableInfo {
    VariableInfo {
        name: v.name().into(),
        dtype: format!("{:?}", v.dtype()).to_lowercase(),
        dims: dim_names(v),
        shape: v.shape().iter().map(|&n| n as usize).collect(),
        units: text_attribute(v, "units"),
        long_name: text_attribute(v, "long_name"),
    }
}

fn describe_dims(v: &NcVariable) -> String {
    v.dimensions()
        .iter()
        .map(|d| format!("{}={}", d.name, d.size))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_parse_as_python_slices() {
        let s: Select = "lat=0:72".parse().unwrap();
        assert_eq!(s.indices(73).unwrap(), (0..72).collect::<Vec<_>>());
        let s: Select = "lon=::2".parse().unwrap();
        assert_eq!(s.indices(6).unwrap(), vec![0, 2, 4]);
        let s: Select = "lev=3".parse().unwrap();
        assert_eq!(s.indices(5).unwrap(), vec![3]);
        let s: Select = "lev=-1".parse().unwrap();
        assert_eq!(s.indices(5).unwrap(), vec![4]);
        let s: Select = "x=-2:".parse().unwrap();
        assert_eq!(s.indices(5).unwrap(), vec![3, 4]);
        assert!("lat".parse::<Select>().is_err());
        assert!("lat=0:4:0".parse::<Select>().is_err());
        assert!("lat=a:4".parse::<Select>().is_err());
        let s: Select = "lev=7".parse().unwrap();
        assert!(s.indices(5).unwrap_err().contains("outside"));
        assert_eq!(parse_coarsen("lon=2").unwrap(), ("lon".to_string(), 2));
        assert!(parse_coarsen("lon=0").is_err());
    }
}
