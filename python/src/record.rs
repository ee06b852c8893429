//! `sda.Data.from_record` and `sda.Data.from_xarray`: a long record given as numpy arrays (or
//! an xarray object, converted to them by `sda._from_xarray`) becomes a
//! `sda::record::Record` and is cut into windows by the library, as `sda import --netcdf` does.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sda::record::{Axis, Gaps, Record, RecordArrays, SplitByTime, Station, Windows};

use crate::errors::{py_err, value_error};

/// Values as float64 in C order and their shape (anything `numpy.asarray` takes).
pub fn f64_in(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let np = obj.py().import("numpy")?;
    let a = np
        .call_method1("ascontiguousarray", (obj, "float64"))
        .map_err(|e| value_error(format!("{name}: not numbers ({e})")))?;
    let a = a.cast::<PyArrayDyn<f64>>()?;
    let shape = a.shape().to_vec();
    let data = a.readonly().as_array().iter().copied().collect();
    Ok((data, shape))
}

/// One axis of values: a 1-D array, named `name`, with `units` and `calendar`.
fn axis_in(
    obj: &Bound<'_, PyAny>,
    name: &str,
    units: Option<String>,
    calendar: Option<String>,
) -> PyResult<Axis> {
    let (values, shape) = f64_in(obj, name)?;
    if shape.len() != 1 {
        return Err(value_error(format!(
            "{name}: expected a 1-D array of coordinates, got shape {shape:?}"
        )));
    }
    Ok(Axis {
        name: name.into(),
        values,
        units,
        calendar,
    })
}

/// The time axis: numpy `datetime64` instants, or numbers in `time_units` (`days since …`).
fn time_in(
    obj: &Bound<'_, PyAny>,
    name: &str,
    units: Option<String>,
    calendar: Option<String>,
) -> PyResult<Axis> {
    let np = obj.py().import("numpy")?;
    let a = np.call_method1("asarray", (obj,))?;
    let kind: String = a.getattr("dtype")?.getattr("kind")?.extract()?;
    if kind == "M" {
        if units.is_some() || calendar.is_some() {
            return Err(value_error(
                "time_units/calendar: not with datetime64 times, which say when they are",
            ));
        }
        if a.call_method0("__len__")?.extract::<usize>()? > 0
            && np
                .call_method1("isnat", (&a,))?
                .call_method0("any")?
                .extract::<bool>()?
        {
            return Err(value_error("time: holds NaT (a missing instant)"));
        }
        let secs: Vec<i64> = a
            .call_method1("astype", ("datetime64[s]",))?
            .call_method1("astype", ("int64",))?
            .call_method0("tolist")?
            .extract()?;
        return Ok(sda::calendar::epoch_axis(name, &secs));
    }
    if let Some(u) = &units {
        sda::calendar::TimeUnits::parse(u, calendar.as_deref()).map_err(py_err)?;
    }
    axis_in(&a, name, units, calendar)
}

/// Stations: a dict of `name`, `lat`, `lon` sequences, or a sequence of `(name, lat, lon)`.
fn stations_in(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Station>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
            d.get_item(k)?.ok_or_else(|| {
                value_error(format!(
                    "stations: a dict needs the keys name, lat and lon (missing {k})"
                ))
            })
        };
        let names: Vec<String> = get("name")?
            .try_iter()?
            .map(|n| n.and_then(|n| n.str().map(|s| s.to_string())))
            .collect::<PyResult<_>>()?;
        let (lat, _) = f64_in(&get("lat")?, "stations lat")?;
        let (lon, _) = f64_in(&get("lon")?, "stations lon")?;
        if names.len() != lat.len() || lat.len() != lon.len() {
            return Err(value_error(format!(
                "stations: {} names, {} latitudes and {} longitudes",
                names.len(),
                lat.len(),
                lon.len()
            )));
        }
        return Ok(names
            .into_iter()
            .zip(lat.into_iter().zip(lon))
            .map(|(name, (lat, lon))| Station { name, lat, lon })
            .collect());
    }
    obj.try_iter()?
        .map(|item| {
            let item = item?;
            let (name, lat, lon): (String, f64, f64) = item.extract().map_err(|_| {
                value_error("stations: give a dict of name, lat, lon or (name, lat, lon) tuples")
            })?;
            Ok(Station { name, lat, lon })
        })
        .collect()
}

/// The variables and values: a dict of `(T, *space)` arrays by name, or one `(T, V, *space)`
/// array with `variables` naming its V.
fn values_in(
    values: &Bound<'_, PyAny>,
    variables: Option<Vec<String>>,
) -> PyResult<(Vec<String>, Vec<f64>, Vec<usize>)> {
    if let Ok(d) = values.cast::<PyDict>() {
        if variables.is_some() {
            return Err(value_error(
                "variables: not with a dict of values (its keys name them)",
            ));
        }
        let mut names = Vec::new();
        let mut arrays = Vec::new();
        let mut shape: Option<Vec<usize>> = None;
        for (k, v) in d.iter() {
            let name = k.str()?.to_string();
            let (data, s) = f64_in(&v, &name)?;
            if let Some(first) = &shape
                && first != &s
            {
                return Err(value_error(format!(
                    "values: {name} has shape {s:?}, {} has {first:?}",
                    names[0]
                )));
            }
            shape = Some(s);
            names.push(name);
            arrays.push(data);
        }
        let shape = shape.ok_or_else(|| value_error("values: an empty dict"))?;
        if shape.is_empty() {
            return Err(value_error("values: each needs a time axis first"));
        }
        // (V, T, S) → (T, V, S).
        let (t, per) = (shape[0], shape[1..].iter().product::<usize>());
        let mut out = Vec::with_capacity(t * per * arrays.len());
        for step in 0..t {
            for a in &arrays {
                out.extend_from_slice(&a[step * per..(step + 1) * per]);
            }
        }
        let mut full = vec![t, arrays.len()];
        full.extend_from_slice(&shape[1..]);
        return Ok((names, out, full));
    }
    let (data, shape) = f64_in(values, "values")?;
    if shape.len() < 2 {
        return Err(value_error(format!(
            "values: expected (T, V, *space) with variables naming the V, or a dict of (T, \
             *space) arrays by name; got shape {shape:?}"
        )));
    }
    let names = variables.unwrap_or_else(|| (0..shape[1]).map(|v| format!("x{v}")).collect());
    if names.len() != shape[1] {
        return Err(value_error(format!(
            "variables: {} names for the {} variables of values {shape:?}",
            names.len(),
            shape[1]
        )));
    }
    Ok((names, data, shape))
}

/// What `from_record` takes besides the windows.
pub struct RecordArgs<'a, 'py> {
    pub values: &'a Bound<'py, PyAny>,
    pub time: &'a Bound<'py, PyAny>,
    pub variables: Option<Vec<String>>,
    pub coords: Option<&'a Bound<'py, PyAny>>,
    pub stations: Option<&'a Bound<'py, PyAny>>,
    pub time_name: String,
    pub time_units: Option<String>,
    pub calendar: Option<String>,
    pub units: Option<&'a Bound<'py, PyDict>>,
    pub origin: String,
}

/// The record of `from_record`'s arguments.
pub fn record_in(a: RecordArgs<'_, '_>) -> PyResult<Record> {
    let units_of = |k: &str| -> PyResult<Option<String>> {
        match a.units {
            None => Ok(None),
            Some(d) => d.get_item(k)?.map(|u| u.extract::<String>()).transpose(),
        }
    };
    let (names, values, shape) = values_in(a.values, a.variables.clone())?;
    let time = time_in(
        a.time,
        &a.time_name,
        a.time_units.clone(),
        a.calendar.clone(),
    )?;
    let mut space = Vec::new();
    if let Some(c) = a.coords.filter(|c| !c.is_none()) {
        let items: Vec<(String, Bound<'_, PyAny>)> = match c.cast::<PyDict>() {
            Ok(d) => d
                .iter()
                .map(|(k, v)| Ok((k.str()?.to_string(), v)))
                .collect::<PyResult<_>>()?,
            Err(_) => c
                .try_iter()?
                .map(|i| i?.extract::<(String, Bound<'_, PyAny>)>())
                .collect::<PyResult<_>>()?,
        };
        for (name, v) in items {
            let u = units_of(&name)?;
            space.push(axis_in(&v, &name, u, None)?);
        }
    } else {
        // The indices, named after their position (a network's axis is `station`).
        for (k, &n) in shape[2..].iter().enumerate() {
            let name = if a.stations.is_some() && shape.len() == 3 {
                "station".to_string()
            } else {
                format!("dim{k}")
            };
            space.push(Axis {
                name,
                values: (0..n).map(|i| i as f64).collect(),
                units: None,
                calendar: None,
            });
        }
    }
    let stations = a
        .stations
        .filter(|s| !s.is_none())
        .map(stations_in)
        .transpose()?;
    let variables = names
        .iter()
        .map(|n| Ok((n.clone(), units_of(n)?, None)))
        .collect::<PyResult<_>>()?;
    Record::from_arrays(RecordArrays {
        origin: a.origin,
        variables,
        values,
        time,
        space,
        stations,
    })
    .map_err(py_err)
}

/// The windows of `from_record`'s arguments.
pub fn windows_in(
    window: usize,
    stride: usize,
    split_by_time: Option<Vec<f64>>,
    gaps: &str,
    transform: sda::transform::TransformSpec,
) -> PyResult<Windows> {
    let split = split_by_time.unwrap_or_else(|| vec![0.8, 0.1, 0.1]);
    Ok(Windows {
        window,
        stride,
        split: SplitByTime::parse(&split).map_err(py_err)?,
        gaps: sda::options::parse::<Gaps>("gaps", gaps).map_err(py_err)?,
        transform,
    })
}
