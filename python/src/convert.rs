//! Arguments from Python and results back: numpy arrays, paths, transforms, JSON values.

use std::path::PathBuf;

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use sda::import::Input;
use sda::io::Array;
use sda::transform::TransformSpec;

use crate::errors::{Kind, SdaError, new_err, py_err, value_error};

/// A numpy array as the library's row-major float32 array. float32 is copied once (one
/// `memcpy` when C-contiguous), float64 converted, non-contiguous arrays read in C order;
/// anything else is a `TypeError` naming the argument.
pub(crate) fn array_in(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Array> {
    let Ok(untyped) = obj.cast::<PyUntypedArray>() else {
        return Err(new_err(
            Kind::Type,
            format!(
                "{name}: expected a numpy array of float32 or float64, got {} (use np.asarray)",
                obj.get_type().name()?
            ),
        ));
    };
    let shape = untyped.shape().to_vec();
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        let r = a.readonly();
        // `as_slice` also accepts Fortran order, whose memory order is not C's.
        let data = match r.as_slice() {
            Ok(s) if a.is_c_contiguous() => s.to_vec(),
            _ => r.as_array().iter().copied().collect(),
        };
        return Ok(Array::new(shape, data));
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        let r = a.readonly();
        let data = r.as_array().iter().map(|&v| v as f32).collect();
        return Ok(Array::new(shape, data));
    }
    Err(new_err(
        Kind::Type,
        format!(
            "{name}: expected a numpy array of float32 or float64, got dtype {}",
            untyped.dtype()
        ),
    ))
}

pub(crate) fn opt_array_in(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Array>> {
    obj.filter(|o| !o.is_none())
        .map(|o| array_in(o, name))
        .transpose()
}

/// An array to import: its values, its dtype as given and where it came from (Python, for
/// the record of the import and its messages).
pub(crate) fn input_in(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Input> {
    let array = array_in(obj, name)?;
    let dtype = obj.cast::<PyUntypedArray>()?.dtype().to_string();
    Ok(Input {
        array,
        origin: format!("{name} (numpy array from Python)"),
        dtype,
    })
}

/// The library's array as a new numpy float32 array (its buffer moved, not copied).
pub(crate) fn array_out(py: Python<'_>, a: Array) -> PyResult<Bound<'_, PyArrayDyn<f32>>> {
    let nd = ArrayD::from_shape_vec(IxDyn(&a.shape), a.data)
        .map_err(|e| SdaError::new_err(e.to_string()))?;
    Ok(nd.into_pyarray(py))
}

pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| SdaError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

pub(crate) fn path_in(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    obj.extract::<PathBuf>()
}

/// `transform=`: `None`, one transform for all (`"log"`), or a dict of channel (fields) or
/// component (vectors) index to transform (`{1: "sqrt"}`), as `sda import --transform`.
pub(crate) fn transform_in(obj: Option<&Bound<'_, PyAny>>) -> PyResult<TransformSpec> {
    let items: Vec<String> = match obj {
        None => Vec::new(),
        Some(o) => {
            if let Ok(s) = o.extract::<String>() {
                vec![s]
            } else if let Ok(d) = o.cast::<PyDict>() {
                d.iter()
                    .map(|(k, v)| Ok(format!("{}={}", k.str()?, v.str()?)))
                    .collect::<PyResult<_>>()?
            } else {
                return Err(value_error(
                    "transform: a transform for all (\"log\") or a dict {index: transform}",
                ));
            }
        }
    };
    TransformSpec::parse(&items).map_err(py_err)
}
