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

use netcdf_reader::{NcFile, NcFormat, NcType, NcVariable};

use crate::axis::Axis;
use crate::error::{Error, Result};
use crate::geo::Station;
use crate::record::Record;
use crate::record_info::VariableInfo;

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
    let file = NcFile::open(path).map_err(|e| match e {
        netcdf_reader::Error::Io(io) => Error::Io {
            path: path.to_path_buf(),
            source: io,
        },
        e => Error::config(&origin, format!("not a NetCDF file this reader knows: {e}")),
    })?;
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
                    &origin,
                    format!(
                        "no variable '{name}' (--variables); the file has: {}",
                        names_in_file()
                    ),
                ));
            }
        }
    }
    let first = vars[0];
    let dim_names =
        |v: &NcVariable| -> Vec<String> { v.dimensions().iter().map(|d| d.name.clone()).collect() };
    let time = match &spec.time {
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
        None => guess_time(&file, first).ok_or_else(|| {
            Error::config(
                &origin,
                format!(
                    "cannot tell which dimension of {} is time; name it with --time (its \
                     dimensions: {})",
                    first.name(),
                    dim_names(first).join(", ")
                ),
            )
        })?,
    };
    for v in &vars {
        let dims = dim_names(v);
        if dims.first() != Some(&time) {
            return Err(Error::config(
                &origin,
                format!(
                    "variable {} has dimensions ({}): its first must be the time dimension {time}",
                    v.name(),
                    dims.join(", ")
                ),
            ));
        }
        if v.dimensions() != first.dimensions() {
            return Err(Error::config(
                &origin,
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
    let dims = dim_names(first);
    let mut shape: Vec<usize> = first.shape().iter().map(|&n| n as usize).collect();
    let mut axes: Vec<Axis> = dims
        .iter()
        .zip(&shape)
        .map(|(d, &n)| coordinate(&file, &origin, d, n))
        .collect::<Result<_>>()?;
    if let Some(bad) = (1..axes[0].values.len()).find(|&i| {
        let (a, b) = (axes[0].values[i - 1], axes[0].values[i]);
        b.partial_cmp(&a) != Some(std::cmp::Ordering::Greater)
    }) {
        let t = &axes[0].values;
        return Err(Error::config(
            &origin,
            format!(
                "time axis {time} is not strictly increasing: step {} is {} after {}",
                bad,
                t[bad],
                t[bad - 1]
            ),
        ));
    }
    if let Some(v) = axes[0].values.iter().find(|v| !v.is_finite()) {
        return Err(Error::config(
            &origin,
            format!("time axis {time} holds {v}"),
        ));
    }
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(vars.len());
    for v in &vars {
        let a = file
            .read_variable_unpacked_masked(v.name())
            .map_err(|e| Error::config(&origin, format!("reading {}: {e}", v.name())))?;
        values.push(a.iter().copied().collect());
    }
    let mut edits = Vec::new();
    // The indices of the file's cells kept along each dimension (`None`: all; coarsened
    // dimensions lose their station list).
    let mut kept: Vec<Option<Vec<usize>>> = vec![None; dims.len()];
    let mut coarsened = vec![false; dims.len()];
    for s in &spec.select {
        let axis = dims.iter().position(|d| d == &s.dim).ok_or_else(|| {
            Error::config(
                "--select",
                format!(
                    "no dimension '{}' in {} of {origin} (its dimensions: {})",
                    s.dim,
                    first.name(),
                    dims.join(", ")
                ),
            )
        })?;
        let keep = s.indices(shape[axis]).map_err(|reason| {
            Error::config(
                "--select",
                format!("{}: {reason} of dimension {}", s.dim, s.dim),
            )
        })?;
        for v in &mut values {
            *v = take_axis(v, &shape, axis, &keep);
        }
        axes[axis].values = keep.iter().map(|&k| axes[axis].values[k]).collect();
        shape[axis] = keep.len();
        kept[axis] = Some(match &kept[axis] {
            None => keep.clone(),
            Some(before) => keep.iter().map(|&k| before[k]).collect(),
        });
        edits.push(format!(
            "select {}={}:{}:{} ({} kept)",
            s.dim,
            s.start.map_or(String::new(), |v| v.to_string()),
            s.end
                .filter(|&e| e != i64::MAX)
                .map_or(String::new(), |v| v.to_string()),
            s.step,
            keep.len()
        ));
    }
    for (dim, k) in &spec.coarsen {
        let axis = dims.iter().position(|d| d == dim).ok_or_else(|| {
            Error::config(
                "--coarsen",
                format!(
                    "no dimension '{dim}' in {} of {origin} (its dimensions: {})",
                    first.name(),
                    dims.join(", ")
                ),
            )
        })?;
        if axis == 0 {
            return Err(Error::config(
                "--coarsen",
                format!("{dim} is the time dimension; coarsen only the others"),
            ));
        }
        if !shape[axis].is_multiple_of(*k) {
            return Err(Error::config(
                "--coarsen",
                format!(
                    "{dim} has {} cells, not a multiple of {k}; keep a multiple first, e.g. \
                     --select {dim}=0:{}",
                    shape[axis],
                    shape[axis] / k * k
                ),
            ));
        }
        for v in &mut values {
            *v = coarsen_axis(v, &shape, axis, *k);
        }
        let c = &axes[axis].values;
        axes[axis].values = c
            .chunks(*k)
            .map(|b| b.iter().sum::<f64>() / *k as f64)
            .collect();
        shape[axis] /= k;
        coarsened[axis] = true;
        edits.push(format!("coarsen {dim}={k}"));
    }
    let space: Vec<Axis> = axes[1..]
        .iter()
        .zip(&shape[1..])
        .filter(|(_, n)| **n != 1)
        .map(|(a, _)| a.clone())
        .collect();
    if space.len() > 2 {
        return Err(Error::config(
            &origin,
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
    let stations = match (1..dims.len()).find(|&a| shape[a] != 1) {
        Some(a) if space.len() == 1 && !coarsened[a] => {
            let all = stations(&file, &origin, &dims[a], &axes[a])?;
            all.map(|st| match &kept[a] {
                None => st,
                Some(k) => k.iter().map(|&i| st[i].clone()).collect(),
            })
        }
        _ => None,
    };
    // (V, T, S) → (T, V, S).
    let t = shape[0];
    let per: usize = shape[1..].iter().product();
    let mut out = Vec::with_capacity(t * vars.len() * per);
    for step in 0..t {
        for v in &values {
            out.extend_from_slice(&v[step * per..(step + 1) * per]);
        }
    }
    let variables = vars
        .iter()
        .map(|v| VariableInfo {
            name: v.name().into(),
            dtype: format!("{:?}", v.dtype()).to_lowercase(),
            dims: dim_names(v),
            shape: v.shape().iter().map(|&n| n as usize).collect(),
            units: text_attribute(v, "units"),
            long_name: text_attribute(v, "long_name"),
        })
        .collect();
    Ok(Record {
        origin,
        format: format_name(file.format()).into(),
        variables,
        time: axes[0].clone(),
        space,
        values: out,
        edits,
        stations,
    })
}

/// The stations of dimension `dim` (in the file's order, before `--select`), when variables of
/// that dimension alone give each cell a latitude and a longitude. `axis` is the dimension's
/// coordinate as read (names of last resort).
fn stations(file: &NcFile, origin: &str, dim: &str, axis: &Axis) -> Result<Option<Vec<Station>>> {
    let Ok(vars) = file.variables() else {
        return Ok(None);
    };
    let on_dim = |v: &&NcVariable| {
        let d = v.dimensions();
        d.first().is_some_and(|d| d.name == dim) && (d.len() == 1 || v.dtype() == &NcType::Char)
    };
    let is = |v: &NcVariable, units: &str, standard: &str, names: &[&str]| {
        let u = text_attribute(v, "units")
            .unwrap_or_default()
            .to_lowercase();
        let sn = text_attribute(v, "standard_name")
            .unwrap_or_default()
            .to_lowercase();
        v.dimensions().len() == 1
            && (u == units
                || u == units.replace("degrees", "degree")
                || sn == standard
                || names.contains(&v.name().to_lowercase().as_str()))
    };
    let mine: Vec<&NcVariable> = vars.iter().filter(on_dim).collect();
    let lat = mine
        .iter()
        .find(|v| is(v, "degrees_north", "latitude", &["lat", "latitude"]));
    let lon = mine
        .iter()
        .find(|v| is(v, "degrees_east", "longitude", &["lon", "longitude"]));
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Ok(None);
    };
    let read = |v: &NcVariable| -> Result<Vec<f64>> {
        Ok(file
            .read_variable_unpacked_masked(v.name())
            .map_err(|e| Error::config(origin, format!("reading {}: {e}", v.name())))?
            .iter()
            .copied()
            .collect())
    };
    let (lats, lons) = (read(lat)?, read(lon)?);
    let texts: Vec<&&NcVariable> = mine
        .iter()
        .filter(|v| matches!(v.dtype(), NcType::Char | NcType::String))
        .collect();
    let named = texts
        .iter()
        .find(|v| text_attribute(v, "cf_role").is_some_and(|r| r == "timeseries_id"))
        .or(texts.first());
    let names: Vec<String> = match named {
        Some(v) => file
            .read_variable_as_strings(v.name())
            .map_err(|e| Error::config(origin, format!("reading {}: {e}", v.name())))?
            .into_iter()
            .map(|s| s.trim_end_matches('\0').trim().to_string())
            .collect(),
        None => axis.values.iter().map(|v| format!("{v}")).collect(),
    };
    if names.len() != lats.len() || lats.len() != lons.len() {
        return Err(Error::config(
            origin,
            format!(
                "the stations of {dim}: {} names, {} latitudes ({}) and {} longitudes ({})",
                names.len(),
                lats.len(),
                lat.name(),
                lons.len(),
                lon.name()
            ),
        ));
    }
    let st: Vec<Station> = names
        .into_iter()
        .zip(lats.into_iter().zip(lons))
        .map(|(name, (lat, lon))| Station { name, lat, lon })
        .collect();
    crate::record::check_stations(&st)
        .map_err(|reason| Error::config(origin, format!("the stations of {dim}: {reason}")))?;
    Ok(Some(st))
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
