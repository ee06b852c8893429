//! `sda.plot.trajectories` (the native `plot_trajectories`): a PNG of trajectories.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::compute::compute;
use crate::convert::{array_in, opt_array_in, path_in};
use crate::errors::{py_err, value_error};
use crate::observed::operator_in;

/// `sda plot trajectories`: each coordinate against time, samples `(N, L, D)` as thin blue
/// lines, a reference set in orange, the truth in black, observations `y` (with `operator`) as
/// crosses. Writes the PNG to `output` and returns its path, or returns the PNG's bytes when
/// `output` is None.
#[pyfunction]
#[pyo3(signature = (samples, reference=None, truth=None, *, y=None, operator=None, output=None))]
pub(crate) fn plot_trajectories<'py>(
    py: Python<'py>,
    samples: &Bound<'py, PyAny>,
    reference: Option<&Bound<'py, PyAny>>,
    truth: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    operator: Option<&str>,
    output: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let samples = array_in(samples, "samples")?;
    if samples.shape.len() != 3 {
        return Err(value_error(format!(
            "samples: expected (N, L, D), got shape {:?}",
            samples.shape
        )));
    }
    let (l, d) = (samples.shape[1], samples.shape[2]);
    let reference = opt_array_in(reference, "reference")?;
    let truth = opt_array_in(truth, "truth")?;
    let observations = match (opt_array_in(y, "y")?, operator) {
        (Some(values), Some(op)) => Some(
            sda::plot::Observations::for_operator(&operator_in(op)?, values, l, d)
                .map_err(|e| py_err(rename_observations(e)))?,
        ),
        (Some(_), None) => return Err(value_error("y: needs operator too")),
        _ => None,
    };
    let output = output.filter(|o| !o.is_none()).map(path_in).transpose()?;
    let labels = sda::plot::coordinate_labels(d);
    let (reference, truth, observations) =
        (reference.as_ref(), truth.as_ref(), observations.as_ref());
    match output {
        Some(path) => {
            compute(py, |_| {
                sda::plot::trajectories(&path, &samples, reference, truth, observations, &labels)
            })?;
            Ok(path.into_pyobject(py)?.into_any())
        }
        None => {
            let bytes = compute(py, |_| {
                sda::plot::trajectories_png(&samples, reference, truth, observations, &labels)
            })?;
            Ok(PyBytes::new(py, &bytes).into_any())
        }
    }
}

fn rename_observations(e: sda::Error) -> sda::Error {
    match e {
        sda::Error::Shape {
            what,
            expected,
            got,
        } if what == "observations" => sda::Error::Shape {
            what: "y".into(),
            expected,
            got,
        },
        e => e,
    }
}
