//! `sda.observe`: observations of one trajectory, as an array or a `.csv` table.

use pyo3::prelude::*;

use sda::io::write_atomic;
use sda::score::table::{Design, Table};

use crate::compute::compute;
use crate::convert::{array_in, array_out, path_in};
use crate::errors::{py_err, value_error};
use crate::observed::{noise_in, operator_in};

/// `sda observe`: observations `y = A(x) + noise` of one trajectory `x` of shape
/// `(L, *state)` (physical units), with `noise` a std (number or array of `y`'s shape) and
/// the noise drawn from `seed`. `fill` writes that constant instead (a constraint rather than
/// a measurement). Returns float32 `y` of the shape the operator produces.
///
/// table=True (without `operator`): scattered measurements instead, written as a table of
/// `time,index,value,std` rows to `output` (a `.csv` path, returned): `times` states chosen at
/// random (default a quarter), `stations` values of each chosen at random each time (default
/// a quarter), each row's std `noise` (a number) or drawn uniformly from `noise=(lo, hi)`.
/// `model.assimilate(output, ...)` and `sda.evaluate(..., y=output)` read it.
#[pyfunction]
#[pyo3(signature = (x, *, operator=None, noise, seed=0, fill=None, table=false, times=None, stations=None, output=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn observe<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    operator: Option<&str>,
    noise: &Bound<'py, PyAny>,
    seed: u64,
    fill: Option<f32>,
    table: bool,
    times: Option<usize>,
    stations: Option<usize>,
    output: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let x = array_in(x, "x")?;
    if x.shape.len() < 2 || x.shape[0] == 0 {
        return Err(value_error(format!(
            "x: expected one trajectory (L, *state), got shape {:?}",
            x.shape
        )));
    }
    x.check_finite("x").map_err(py_err)?;
    if table {
        if operator.is_some() || fill.is_some() {
            return Err(value_error(
                "operator/fill: not with table=True (a table defines its own operator)",
            ));
        }
        let Some(output) = output.filter(|o| !o.is_none()) else {
            return Err(value_error(
                "output: table=True writes a .csv file; give its path",
            ));
        };
        let path = path_in(output)?;
        let (lo, hi) = match noise.extract::<(f32, f32)>() {
            Ok(range) => range,
            Err(_) => {
                let v: f32 = noise.extract().map_err(|_| {
                    value_error("noise: with table=True, a number or a pair (lo, hi)")
                })?;
                (v, v)
            }
        };
        let (length, f) = (x.shape[0], x.shape[1..].iter().product::<usize>());
        let design = Design::new(length, f, times, stations, (lo, hi), seed);
        compute(py, |_| {
            let t = Table::observe(&x.data, length, f, &design)?;
            write_atomic(&path, t.to_csv().as_bytes())
        })?;
        return Ok(path.into_pyobject(py)?.into_any());
    }
    if times.is_some() || stations.is_some() || output.is_some_and(|o| !o.is_none()) {
        return Err(value_error("times/stations/output: only with table=True"));
    }
    let Some(operator) = operator else {
        return Err(value_error(
            "operator: needed (or table=True for a table of scattered measurements)",
        ));
    };
    let op = operator_in(operator)?;
    let (length, shape) = (x.shape[0], x.shape[1..].to_vec());
    let expected = op.output_shape(length, &shape).map_err(py_err)?;
    let std = noise_in(noise, &expected)?;
    let mut y = compute(py, |_| {
        sda::assimilate::observe(&x.data, length, &shape, &op, &std, seed)
    })?;
    if let Some(v) = fill {
        if !v.is_finite() {
            return Err(value_error(format!("fill: must be finite (got {v})")));
        }
        y.data.iter_mut().for_each(|y| *y = v);
    }
    Ok(array_out(py, y)?.into_any())
}
