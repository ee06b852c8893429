//! Observations from Python: `y` with its operator and noise, or a `.csv` table.

use std::path::PathBuf;

use numpy::PyUntypedArray;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

use sda::assimilate::Observed;
use sda::data::SystemInfo;
use sda::score::operator::Operator;

use crate::convert::array_in;
use crate::errors::{py_err, value_error};

/// Noise stds: a positive number for every value of `y`, or an array of `y`'s shape.
pub(crate) fn noise_in(obj: &Bound<'_, PyAny>, shape: &[usize]) -> PyResult<Vec<f32>> {
    let m: usize = shape.iter().product();
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        let v: f64 = obj.extract()?;
        let v = v as f32;
        if !(v.is_finite() && v > 0.0) {
            return Err(value_error(format!(
                "noise: standard deviations must be positive and finite (found {v})"
            )));
        }
        return Ok(vec![v; m]);
    }
    let a = array_in(obj, "noise")?;
    if a.shape != shape {
        return Err(value_error(format!(
            "noise: shape {:?} differs from the observations' {shape:?}",
            a.shape
        )));
    }
    if let Some(bad) = a.data.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(value_error(format!(
            "noise: standard deviations must be positive and finite (found {bad})"
        )));
    }
    Ok(a.data)
}

pub(crate) fn operator_in(spec: &str) -> PyResult<Operator> {
    Operator::parse(spec).map_err(py_err)
}

/// Whether `y` names a table of observations (a `str` or path-like ending in `.csv`) rather
/// than holding values.
pub(crate) fn table_path(y: &Bound<'_, PyAny>) -> Option<PathBuf> {
    if y.cast::<PyUntypedArray>().is_ok() {
        return None;
    }
    let p: PathBuf = y.extract().ok()?;
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        .then_some(p)
}

/// Observations for trajectories of `length` states of `shape`: `y` of `operator` with
/// `noise`, or a table of `time,index,value,std` rows (`y` a `.csv` path), which brings its
/// own operator and per-row noise (as `--observations obs.csv` on the command line).
/// Returns them with the record step a table of dates placed the first state at.
pub(crate) fn observed_in(
    y: &Bound<'_, PyAny>,
    operator: Option<&str>,
    noise: Option<&Bound<'_, PyAny>>,
    shape: &[usize],
    length: usize,
    on: Option<(&SystemInfo, Option<&str>)>,
) -> PyResult<(Observed, Option<usize>)> {
    let noise = noise.filter(|n| !n.is_none());
    if let Some(path) = table_path(y) {
        if operator.is_some() || noise.is_some() {
            return Err(value_error(format!(
                "operator/noise: not given with a table of observations ({} defines both)",
                path.display()
            )));
        }
        let (o, placed) = match on {
            Some((info, start)) => {
                let ctx = sda::locate::Context {
                    info,
                    length,
                    start,
                };
                let (o, _, placed) = Observed::from_table_on(&path, &ctx).map_err(py_err)?;
                (o, placed)
            }
            None => (Observed::from_table(&path).map_err(py_err)?, None),
        };
        o.check(shape, length, &format!("y {}", path.display()))
            .map_err(py_err)?;
        return Ok((o, placed));
    }
    let (Some(operator), Some(noise)) = (operator, noise) else {
        return Err(value_error(
            "operator and noise: needed with an array y; a .csv table of observations brings its own",
        ));
    };
    let operator = operator_in(operator)?;
    let expected = operator.output_shape(length, shape).map_err(py_err)?;
    let y = array_in(y, "y")?;
    let noise = noise_in(noise, &expected)?;
    let o = Observed { operator, y, noise };
    o.check(shape, length, "y").map_err(py_err)?;
    Ok((o, None))
}
