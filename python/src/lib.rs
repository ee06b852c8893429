//! `sda._sda`: the native module of the Python package `sda`.
//!
//! A thin layer over the `sda` library: numpy arrays in and out, keyword arguments with the
//! command line's defaults, library errors as Python exceptions. Every computation is a call of
//! the library function the command line calls, so that both give the same bits. Each call
//! releases the GIL while it computes, polls for Ctrl-C between steps (through the library's
//! progress callbacks) and then unwinds to here, raising `KeyboardInterrupt`; panics become
//! `sda.SdaError`, never a crash of the interpreter.

mod record;

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::prelude::Device;
use indicatif::{ProgressBar, ProgressStyle};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple};

use sda::assimilate::{Observed, SampleConfig, sample};
use sda::coords::Layout;
use sda::data::{Splits, SystemInfo, simulate_splits};
use sda::filter::{FilterConfig, run_particle_filter};
use sda::import::{DEFAULT_SPLIT, ImportSpec, Input, prepare, read_context};
use sda::io::{Array, write_atomic, write_npy};
use sda::mcs::System;
use sda::model::Model as RustModel;
use sda::options::parse;
use sda::score::guidance::Likelihood;
use sda::score::operator::Operator;
use sda::score::preset::{Flags, Preset, Settings};
use sda::score::table::{Design, Table};
use sda::train::{NetSpec, TrainConfig, default_batch_lr, train_with, use_data_context};
use sda::transform::TransformSpec;

create_exception!(
    _sda,
    SdaError,
    PyException,
    "An error of sda that is neither a bad value (ValueError) nor a file problem (OSError)."
);

create_exception!(
    _sda,
    SdaDivergedError,
    SdaError,
    "A sampling run that diverged (NaN or inf, values far outside the training range, an \
     exploding guidance term) and was stopped; guard=False turns the check off."
);

// ---------------------------------------------------------------------------------------------
// Errors

/// The kinds of error, each a subclass of both `sda.SdaError` and the builtin exception, so
/// that `except ValueError` and `except sda.SdaError` both catch what they should.
#[derive(Clone, Copy)]
enum Kind {
    Value,
    Type,
    FileNotFound,
    Permission,
    Os,
}

const KINDS: [(Kind, &str, &str); 5] = [
    (Kind::Value, "SdaValueError", "ValueError"),
    (Kind::Type, "SdaTypeError", "TypeError"),
    (
        Kind::FileNotFound,
        "SdaFileNotFoundError",
        "FileNotFoundError",
    ),
    (Kind::Permission, "SdaPermissionError", "PermissionError"),
    (Kind::Os, "SdaOSError", "OSError"),
];

static ERROR_TYPES: std::sync::OnceLock<Vec<Py<pyo3::types::PyType>>> = std::sync::OnceLock::new();

/// Makes the error classes `class SdaValueError(SdaError, ValueError)`, … and adds them to `m`.
fn add_error_types(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let builtins = py.import("builtins")?;
    let mut types = Vec::new();
    for (_, name, base) in KINDS {
        let dict = PyDict::new(py);
        dict.set_item("__module__", "sda")?;
        dict.set_item("__doc__", format!("A {base} of sda: also a sda.SdaError."))?;
        let bases = pyo3::types::PyTuple::new(
            py,
            [
                py.get_type::<SdaError>().into_any(),
                builtins.getattr(base)?,
            ],
        )?;
        let ty = builtins
            .getattr("type")?
            .call1((name, bases, dict))?
            .cast_into::<pyo3::types::PyType>()?;
        m.add(name, &ty)?;
        types.push(ty.unbind());
    }
    let _ = ERROR_TYPES.set(types);
    Ok(())
}

fn new_err(kind: Kind, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match ERROR_TYPES.get() {
        Some(types) => PyErr::from_type(types[kind as usize].bind(py).clone(), msg),
        None => SdaError::new_err(msg),
    })
}

/// A command-line flag as the Python keyword that stands for it (`--batch-size` → `batch_size`,
/// `--observations` → `y`).
fn keyword(name: &str) -> String {
    let mut out = String::new();
    for (i, word) in name.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.strip_prefix("--") {
            Some("observations") => out.push('y'),
            Some(flag) => out.push_str(&flag.replace('-', "_")),
            None => out.push_str(word),
        }
    }
    out
}

/// The Python exception of a library error, with its one-line message (flags named as the
/// keywords of this package).
fn py_err(e: sda::Error) -> PyErr {
    use sda::Error as E;
    match e {
        E::Io { path, source } => {
            let msg = format!("{}: {source}", path.display());
            match source.kind() {
                std::io::ErrorKind::NotFound => new_err(Kind::FileNotFound, msg),
                std::io::ErrorKind::PermissionDenied => new_err(Kind::Permission, msg),
                _ => new_err(Kind::Os, msg),
            }
        }
        E::Npy { .. } | E::Json { .. } | E::Weights { .. } => new_err(Kind::Os, e.to_string()),
        E::Shape {
            what,
            expected,
            got,
        } => new_err(
            Kind::Value,
            E::Shape {
                what: keyword(&what),
                expected,
                got,
            }
            .to_string(),
        ),
        E::NonFinite { what, count } => new_err(
            Kind::Value,
            E::NonFinite {
                what: keyword(&what),
                count,
            }
            .to_string(),
        ),
        E::Config { name, reason } => new_err(Kind::Value, format!("{}: {reason}", keyword(&name))),
        E::Operator { .. } | E::UnknownSystem(_) => new_err(Kind::Value, e.to_string()),
        E::Diverged {
            step,
            steps,
            t,
            what,
            advice,
        } => SdaDivergedError::new_err(format!(
            "sampling diverged at step {step} of {steps} (noise level t = {t:.3}): {what}; try \
             {} (guard=False turns this check off)",
            keyword(&advice)
        )),
    }
}

fn value_error(msg: impl Into<String>) -> PyErr {
    new_err(Kind::Value, msg.into())
}

/// Marks an unwind started by a Ctrl-C seen in a progress callback.
struct Interrupted;

thread_local! {
    /// Where and why the last panic of this thread happened (the hook keeps it quiet).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f` without the GIL. `f` gets a `poll` function to call between steps: every 50 ms it
/// takes the GIL for a moment and checks for signals; a Ctrl-C unwinds out of `f` (nothing is
/// half-written: the library writes files atomically) and raises `KeyboardInterrupt` here.
fn compute<T: Send>(
    py: Python<'_>,
    f: impl FnOnce(&mut dyn FnMut()) -> sda::Result<T> + Send,
) -> PyResult<T> {
    let (result, interrupt) = py.detach(|| {
        let mut interrupt: Option<PyErr> = None;
        let mut last = Instant::now();
        let mut poll = || {
            if last.elapsed() < Duration::from_millis(50) {
                return;
            }
            last = Instant::now();
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                interrupt = Some(e);
                resume_unwind(Box::new(Interrupted));
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut poll)));
        (result, interrupt)
    });
    match result {
        Ok(r) => r.map_err(py_err),
        Err(payload) if payload.is::<Interrupted>() => Err(interrupt
            .unwrap_or_else(|| pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted"))),
        Err(payload) => Err(SdaError::new_err(format!(
            "internal error: {}",
            panic_message(payload)
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Arrays

/// A numpy array as the library's row-major float32 array. float32 is copied once (one
/// `memcpy` when C-contiguous), float64 converted, non-contiguous arrays read in C order;
/// anything else is a `TypeError` naming the argument.
fn array_in(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Array> {
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

fn opt_array_in(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Array>> {
    obj.filter(|o| !o.is_none())
        .map(|o| array_in(o, name))
        .transpose()
}

/// An array to import: its values, its dtype as given and where it came from (Python, for
/// the record of the import and its messages).
fn input_in(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Input> {
    let array = array_in(obj, name)?;
    let dtype = obj.cast::<PyUntypedArray>()?.dtype().to_string();
    Ok(Input {
        array,
        origin: format!("{name} (numpy array from Python)"),
        dtype,
    })
}

/// The library's array as a new numpy float32 array (its buffer moved, not copied).
fn array_out(py: Python<'_>, a: Array) -> PyResult<Bound<'_, PyArrayDyn<f32>>> {
    let nd = ArrayD::from_shape_vec(IxDyn(&a.shape), a.data)
        .map_err(|e| SdaError::new_err(e.to_string()))?;
    Ok(nd.into_pyarray(py))
}

/// Noise stds: a positive number for every value of `y`, or an array of `y`'s shape.
fn noise_in(obj: &Bound<'_, PyAny>, shape: &[usize]) -> PyResult<Vec<f32>> {
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

fn operator_in(spec: &str) -> PyResult<Operator> {
    Operator::parse(spec).map_err(py_err)
}

/// Whether `y` names a table of observations (a `str` or path-like ending in `.csv`) rather
/// than holding values.
fn table_path(y: &Bound<'_, PyAny>) -> Option<PathBuf> {
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
fn observed_in(
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

fn json_to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| SdaError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

fn bar(len: u64, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}",
        )
        .expect("valid template"),
    );
    pb.set_prefix(what.to_string());
    pb
}

fn path_in(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    obj.extract::<PathBuf>()
}

// ---------------------------------------------------------------------------------------------
// Data

/// `transform=`: `None`, one transform for all (`"log"`), or a dict of channel (fields) or
/// component (vectors) index to transform (`{1: "sqrt"}`), as `sda import --transform`.
fn transform_in(obj: Option<&Bound<'_, PyAny>>) -> PyResult<TransformSpec> {
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

/// A data set: training, validation and test trajectories `(N, L, *state)` (float32, physical
/// units, read-only numpy arrays) and the description of the system that made them (what
/// `system.json` holds, normalisation included).
///
/// Make one with `sda.simulate(...)`, `sda.Data.load(dir)` or `sda.Data.from_arrays(...)`;
/// `data.save(dir)` writes the folder `sda train --data` reads.
#[pyclass(module = "sda", name = "Data", frozen)]
struct Data {
    info: SystemInfo,
    train: Py<PyArrayDyn<f32>>,
    valid: Py<PyArrayDyn<f32>>,
    test: Py<PyArrayDyn<f32>>,
    /// Constant context channels `(Cc, H, W)` of imported field data.
    context: Option<Array>,
    /// The data folder it was read from (`Data.load`): training reads its masks of missing
    /// values and records it, as `sda train --data` does.
    dir: Option<PathBuf>,
    /// The files of a record besides the trajectories (`mask.npy`, `train-observed.npy`, …),
    /// as `(file name, array)`.
    files: Vec<(String, Array)>,
    /// What was imported from a record, in words (as `sda import` prints it).
    summary: Option<String>,
}

fn read_only(a: &Bound<'_, PyArrayDyn<f32>>) -> PyResult<()> {
    let kwargs = PyDict::new(a.py());
    kwargs.set_item("write", false)?;
    a.call_method("setflags", (), Some(&kwargs))?;
    Ok(())
}

impl Data {
    fn from_splits(py: Python<'_>, s: Splits, context: Option<Array>) -> PyResult<Self> {
        let out = |a: Array| -> PyResult<Py<PyArrayDyn<f32>>> {
            let a = array_out(py, a)?;
            read_only(&a)?;
            Ok(a.unbind())
        };
        Ok(Self {
            info: s.info,
            train: out(s.train)?,
            valid: out(s.valid)?,
            test: out(s.test)?,
            context,
            dir: None,
            files: Vec::new(),
            summary: None,
        })
    }

    /// The data set of a record cut into windows, with its mask files.
    fn from_cut(py: Python<'_>, cut: sda::record::Cut) -> PyResult<Self> {
        let files = sda::record::files(&cut);
        let summary = Some(cut.summary());
        let data = Self::from_splits(py, cut.splits, None)?;
        Ok(Self {
            files,
            summary,
            ..data
        })
    }

    /// The array of one of the record's files, if it has that file.
    fn file(&self, name: &str) -> Option<&Array> {
        self.files.iter().find(|f| f.0 == name).map(|f| &f.1)
    }

    fn to_splits(&self, py: Python<'_>) -> PyResult<Splits> {
        Ok(Splits {
            info: self.info.clone(),
            train: array_in(self.train.bind(py).as_any(), "train")?,
            valid: array_in(self.valid.bind(py).as_any(), "valid")?,
            test: array_in(self.test.bind(py).as_any(), "test")?,
        })
    }
}

#[pymethods]
impl Data {
    /// Reads a data folder (`system.json`, `train.npy`, `valid.npy`, `test.npy`) written by
    /// `sda simulate` or `Data.save`.
    #[staticmethod]
    fn load(py: Python<'_>, dir: &Bound<'_, PyAny>) -> PyResult<Self> {
        let dir = path_in(dir)?;
        let (s, context, files) = compute(py, |_| {
            let s = Splits::load(&dir)?;
            let context = read_context(&dir, &s.info)?;
            let files = sda::record::read_files(&dir, &s.info)?;
            Ok((s, context, files))
        })?;
        let data = Self::from_splits(py, s, context)?;
        Ok(Self {
            files,
            dir: Some(std::fs::canonicalize(&dir).unwrap_or(dir)),
            ..data
        })
    }

    /// A data set from one long record given as numpy arrays, cut into windows as `sda import
    /// --netcdf` cuts a file's.
    ///
    /// values: a dict of `(T, *space)` arrays by variable name, or one `(T, V, *space)` array
    /// with `variables` naming the V (default `x0`, `x1`, …); NaN where missing. time: the T
    /// instants, numpy `datetime64`, or numbers in `time_units` (`"days since 1998-01-01"`)
    /// and `calendar` (`standard`, `noleap`, `360_day`, …). coords: the space axes in order, a
    /// dict of 1-D arrays by name (for fields: latitudes and longitudes, with `units`
    /// `degrees_north`/`degrees_east` or named `lat`/`lon`); default their indices.
    /// stations: for a network (`values` of `(T, D)` per variable), the D stations as a dict
    /// of `name`, `lat`, `lon` sequences or `(name, lat, lon)` tuples. units: a dict of units
    /// by variable or coordinate name. window, stride, split_by_time (three fractions or step
    /// counts; default 0.8, 0.1, 0.1), gaps (`"drop"`, `"mask"` or `"keep"`): as `sda import
    /// --window --stride --split-by-time --gaps`, transform as `--transform` (a transform for
    /// every variable, or a dict by variable name); `data.summary` then says what was imported,
    /// as `sda import` does. With `gaps="keep"`, `data.observed` holds the masks of observed
    /// values and `data.save` writes them as `{train,valid,test}-observed.npy`.
    #[staticmethod]
    #[pyo3(signature = (values, *, time, window, variables=None, coords=None, stations=None, time_name="time", time_units=None, calendar=None, units=None, stride=1, split_by_time=None, gaps="drop", transform=None, origin="numpy arrays"))]
    #[allow(clippy::too_many_arguments)]
    fn from_record(
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        time: &Bound<'_, PyAny>,
        window: usize,
        variables: Option<Vec<String>>,
        coords: Option<&Bound<'_, PyAny>>,
        stations: Option<&Bound<'_, PyAny>>,
        time_name: &str,
        time_units: Option<String>,
        calendar: Option<String>,
        units: Option<&Bound<'_, PyDict>>,
        stride: usize,
        split_by_time: Option<Vec<f64>>,
        gaps: &str,
        transform: Option<&Bound<'_, PyAny>>,
        origin: &str,
    ) -> PyResult<Self> {
        let windows = record::windows_in(
            window,
            stride,
            split_by_time,
            gaps,
            transform_in(transform)?,
        )?;
        let rec = record::record_in(record::RecordArgs {
            values,
            time,
            variables,
            coords,
            stations: stations.filter(|s| !s.is_none()),
            time_name: time_name.into(),
            time_units,
            calendar,
            units,
            origin: origin.into(),
        })?;
        let cut = compute(py, |_| sda::record::cut(&rec, &windows))?;
        Self::from_cut(py, cut)
    }

    /// A data set from an `xarray.Dataset` or `DataArray` holding one long record (xarray must
    /// be installed; it is imported only here). variables: the data variables of the state
    /// (default: every one with the time dimension); time: the time dimension (default: the
    /// one of datetime64 values, or named `time`). A network's stations are read from
    /// coordinates of its one space dimension: latitudes and longitudes (`lat`/`latitude`,
    /// `lon`/`longitude`) and names (a string coordinate, else the dimension's values).
    /// The other keywords are those of `from_record`.
    #[staticmethod]
    #[pyo3(signature = (obj, *, window, variables=None, time=None, stride=1, split_by_time=None, gaps="drop", transform=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_xarray(
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        window: usize,
        variables: Option<Vec<String>>,
        time: Option<String>,
        stride: usize,
        split_by_time: Option<Vec<f64>>,
        gaps: &str,
        transform: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let args = py
            .import("sda._from_xarray")?
            .call_method1("record_arguments", (obj, variables, time))?;
        let args = args.cast::<PyDict>()?;
        let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
            args.get_item(k)?
                .ok_or_else(|| SdaError::new_err(format!("sda._from_xarray gave no {k}")))
        };
        let opt = |k: &str| -> PyResult<Option<String>> { get(k)?.extract::<Option<String>>() };
        let windows = record::windows_in(
            window,
            stride,
            split_by_time,
            gaps,
            transform_in(transform)?,
        )?;
        let (values, time_values, coords, stations, units) = (
            get("values")?,
            get("time")?,
            get("coords")?,
            get("stations")?,
            get("units")?,
        );
        let rec = record::record_in(record::RecordArgs {
            values: &values,
            time: &time_values,
            variables: None,
            coords: Some(&coords),
            stations: Some(&stations).filter(|s| !s.is_none()),
            time_name: get("time_name")?.extract()?,
            time_units: opt("time_units")?,
            calendar: opt("calendar")?,
            units: Some(units.cast::<PyDict>()?),
            origin: get("origin")?.extract()?,
        })?;
        let cut = compute(py, |_| sda::record::cut(&rec, &windows))?;
        Self::from_cut(py, cut)
    }

    /// The masks of observed values of a record imported with `gaps="keep"`: `(train, valid,
    /// test)` float32 arrays of the trajectories' shapes, 1 observed, 0 missing (test `None`
    /// when it has no window); `None` otherwise.
    #[getter]
    fn observed<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let names = ["train", "valid", "test"].map(sda::record::observed_file);
        if self.file(&names[0]).is_none() {
            return Ok(None);
        }
        let arrays = names
            .iter()
            .map(|n| {
                self.file(n)
                    .cloned()
                    .map(|a| array_out(py, a).map(|a| a.into_any()))
                    .unwrap_or_else(|| Ok(py.None().into_bound(py)))
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyTuple::new(py, arrays)?))
    }

    /// What was imported from a record (`from_record`, `from_xarray`), in the words of `sda
    /// import`; `None` for other data.
    #[getter]
    fn summary(&self) -> Option<String> {
        self.summary.clone()
    }

    /// The fixed mask of a record (the state's shape, 1 where there is data), or `None`.
    #[getter]
    fn mask<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.file(sda::record::MASK_FILE)
            .cloned()
            .map(|a| array_out(py, a))
            .transpose()
    }

    /// A data set from trajectories of your own system (`system="external"`, the default: what
    /// `sda import` does) or of a built-in one.
    ///
    /// External: `(N, L, D)` vectors or `(N, L, C, H, W)` fields, float32 or float64, physical
    /// units. Without `valid` and `test`, the trajectories of `train` are shuffled (`seed`) and
    /// split by `split` (fractions train, valid, test; default 0.8, 0.1, 0.1). The
    /// normalisation is per value for vectors and per channel for fields; `context` gives
    /// constant channels `(Cc, H, W)` of field data to the network beside every state. The
    /// description records each array's dtype, shape and checksum. transform: `"sqrt"`,
    /// `"log"`, `"log:C"` or `"logit"` for every channel (fields) or component (vectors), or a
    /// dict `{index: transform}`, as `sda import --transform`: the model learns the
    /// transformed values, and its samples come back in physical units.
    ///
    /// Built-in (`lorenz63`, `lorenz96`, `linear`, `kolmogorov`): `(N, L, *state)` of that
    /// system; without `valid`, the chains of `train` are split 80/10/10 in order as `sda
    /// simulate` splits them; the normalisation is the system's own (Lorenz-63) or the mean
    /// and std of each value over the training split.
    #[staticmethod]
    #[pyo3(signature = (train, valid=None, test=None, *, system="external", split=None, seed=0, context=None, layout="vector", transform=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_arrays(
        py: Python<'_>,
        train: &Bound<'_, PyAny>,
        valid: Option<&Bound<'_, PyAny>>,
        test: Option<&Bound<'_, PyAny>>,
        system: &str,
        split: Option<(f64, f64, f64)>,
        seed: u64,
        context: Option<&Bound<'_, PyAny>>,
        layout: &str,
        transform: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let layout: sda::mcs::Layout = parse("layout", layout).map_err(py_err)?;
        let transform = transform.filter(|t| !t.is_none());
        let valid = valid.filter(|v| !v.is_none());
        let test = test.filter(|t| !t.is_none());
        let context = context.filter(|c| !c.is_none());
        if system != "external" {
            if split.is_some() || seed != 0 || context.is_some() || transform.is_some() {
                return Err(value_error(format!(
                    "split/seed/context/transform: only for system=\"external\", not {system}"
                )));
            }
            let system = System::from_name(system).map_err(py_err)?;
            let train = array_in(train, "train")?;
            let valid = opt_array_in(valid, "valid")?;
            let test = opt_array_in(test, "test")?;
            let s = compute(py, |_| Splits::from_arrays(system, train, valid, test))?;
            return Self::from_splits(py, s, None);
        }
        let valid_test = match (valid, test) {
            (Some(v), t) => {
                if split.is_some() {
                    return Err(value_error(
                        "split: not with valid (the splits are then kept as given)",
                    ));
                }
                let t = t.map(|t| input_in(t, "test")).transpose()?;
                Some((input_in(v, "valid")?, t))
            }
            (None, None) => None,
            (None, Some(_)) => {
                return Err(value_error(
                    "test: needs valid (the splits as they are), or neither (train is split)",
                ));
            }
        };
        let spec = ImportSpec {
            train: input_in(train, "train")?,
            valid_test,
            split: split.map_or(DEFAULT_SPLIT, |(a, b, c)| [a, b, c]),
            seed,
            context: context.map(|c| input_in(c, "context")).transpose()?,
            layout,
            transform: transform_in(transform)?,
        };
        let imported = compute(py, |_| prepare(&spec))?;
        let s = Splits {
            info: imported.info,
            train: imported.train,
            valid: imported.valid,
            test: imported.test,
        };
        Self::from_splits(py, s, imported.context)
    }

    /// Writes the data folder `dir` (created if needed; each file written atomically).
    fn save(&self, py: Python<'_>, dir: &Bound<'_, PyAny>) -> PyResult<()> {
        let dir = path_in(dir)?;
        let s = self.to_splits(py)?;
        let context = self.context.clone();
        let files = self.files.clone();
        compute(py, |_| {
            // Before system.json, which `save` writes last: a folder is a data set only once
            // all of it is there.
            if let Some(c) = &context {
                write_npy(&dir.join("context.npy"), c)?;
            }
            for (name, a) in &files {
                write_npy(&dir.join(name), a)?;
            }
            s.save(&dir)
        })
    }

    /// Training trajectories, `(N_train, L, *state)`.
    #[getter]
    fn train(&self, py: Python<'_>) -> Py<PyArrayDyn<f32>> {
        self.train.clone_ref(py)
    }

    /// Validation trajectories, `(N_valid, L, *state)`.
    #[getter]
    fn valid(&self, py: Python<'_>) -> Py<PyArrayDyn<f32>> {
        self.valid.clone_ref(py)
    }

    /// Test trajectories, `(N_test, L, *state)` (possibly no trajectory).
    #[getter]
    fn test(&self, py: Python<'_>) -> Py<PyArrayDyn<f32>> {
        self.test.clone_ref(py)
    }

    /// The constant context channels `(Cc, H, W)` of imported field data, or None.
    #[getter]
    fn context<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        self.context.clone().map(|c| array_out(py, c)).transpose()
    }

    /// The system's name (`lorenz63`, `lorenz96`, `linear`, `kolmogorov`, or `external` for
    /// imported data).
    #[getter]
    fn system(&self) -> &'static str {
        self.info.system.name()
    }

    /// The shape of one state, e.g. `(3,)`.
    #[getter]
    fn state_shape(&self) -> Vec<usize> {
        self.info.state_shape.clone()
    }

    /// What `system.json` holds: the system and its parameters, the state shape, the
    /// normalisation (`mean`, `scale` per value), chains, length, burn-in and seed.
    #[getter]
    fn description<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.info)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let n = |a: &Py<PyArrayDyn<f32>>| a.bind(py).shape().first().copied().unwrap_or(0);
        format!(
            "sda.Data({}, state {:?}, {} states per chain: train {}, valid {}, test {})",
            self.info.system.name(),
            self.info.state_shape,
            self.info.length,
            n(&self.train),
            n(&self.valid),
            n(&self.test)
        )
    }
}

/// `sda simulate`: independent chains of a system, split 80/10/10 by chain.
///
/// system: `lorenz63`, `lorenz96`, `linear` (a damped spring, whose exact posterior is a
/// Kalman smoother's) or `kolmogorov` (2-D Navier–Stokes; states `(2, size/coarsen,
/// size/coarsen)`). trajectories: number of chains. length: states kept per chain (default
/// 1024; kolmogorov 64). burn_in: transitions dropped before the first kept state (default
/// 1024; kolmogorov 64). size, coarsen: the Kolmogorov grid and block-averaging (default 256, 4).
/// Returns a `Data` with float32 `(N, L, *state)` arrays in physical units.
#[pyfunction]
#[pyo3(signature = (system, *, trajectories=1024, length=None, burn_in=None, seed=0, size=None, coarsen=None, progress=true))]
#[allow(clippy::too_many_arguments)]
fn simulate(
    py: Python<'_>,
    system: &str,
    trajectories: usize,
    length: Option<usize>,
    burn_in: Option<usize>,
    seed: u64,
    size: Option<usize>,
    coarsen: Option<usize>,
    progress: bool,
) -> PyResult<Data> {
    let mut system = System::from_name(system).map_err(py_err)?;
    let (length, burn_in) = match &mut system {
        System::Kolmogorov(k) => {
            k.size = size.unwrap_or(k.size);
            k.coarsen = coarsen.unwrap_or(k.coarsen);
            k.check().map_err(py_err)?;
            (length.unwrap_or(64), burn_in.unwrap_or(64))
        }
        _ => {
            if size.is_some() || coarsen.is_some() {
                return Err(value_error(format!(
                    "size/coarsen: only for kolmogorov, not {}",
                    system.name()
                )));
            }
            (length.unwrap_or(1024), burn_in.unwrap_or(1024))
        }
    };
    let pb = bar(trajectories as u64, "simulate", progress);
    let s = compute(py, |_| {
        simulate_splits(system, trajectories, length, burn_in, seed, &|_| pb.inc(1))
    })?;
    pb.finish_and_clear();
    Data::from_splits(py, s, None)
}

// ---------------------------------------------------------------------------------------------
// Models

/// A trained score network with its configuration (`config.json`): `sda.train(...)` makes one,
/// `sda.Model.load(dir)` reads a run folder of `sda train`, `model.save(dir)` writes one.
/// `model.assimilate(y, ...)` draws posterior trajectories, `model.sample(...)` prior ones.
#[pyclass(module = "sda", name = "Model", frozen)]
struct Model {
    model: RustModel,
    /// The run folder it was read from or trained into (where `gamma="auto"` caches).
    run: Option<PathBuf>,
}

/// The sampler and likelihood settings of `preset`, overridden by every setting given (the
/// command line's `--preset` and flags, with the same names and the same refusals).
#[allow(clippy::too_many_arguments)]
fn settings(
    preset: &str,
    sampler: Option<&str>,
    steps: Option<usize>,
    grid: Option<&str>,
    eta: Option<f64>,
    corrections: Option<usize>,
    corrector: Option<&str>,
    tau: Option<f64>,
    delta: Option<f64>,
    likelihood: Option<&str>,
    solver: Option<&str>,
    iterations: Option<usize>,
    gamma: Option<f64>,
    zeta: Option<f64>,
) -> PyResult<Settings> {
    let preset: Preset = parse("--preset", preset).map_err(py_err)?;
    let flags = Flags {
        sampler: sampler
            .map(|v| parse("--sampler", v))
            .transpose()
            .map_err(py_err)?,
        steps,
        grid: grid
            .map(|v| parse("--grid", v))
            .transpose()
            .map_err(py_err)?,
        eta,
        corrections,
        corrector: corrector
            .map(|v| parse("--corrector", v))
            .transpose()
            .map_err(py_err)?,
        tau,
        delta,
        likelihood: likelihood
            .map(|v| parse("--likelihood", v))
            .transpose()
            .map_err(py_err)?,
        solver: solver
            .map(|v| parse("--solver", v))
            .transpose()
            .map_err(py_err)?,
        iterations,
        gamma,
        zeta,
    };
    preset.resolve(&flags).map_err(py_err)
}

/// How trajectories are drawn (`sampling`, `window`, `context`, `conditioning`), as
/// `sda assimilate --sampling`.
struct Drawing<'a> {
    sampling: &'a str,
    window: Option<usize>,
    context: Option<usize>,
    conditioning: &'a str,
    context_std: f64,
}

#[allow(clippy::too_many_arguments)]
fn sample_config(
    length: usize,
    samples: usize,
    batch: usize,
    settings: &Settings,
    composition: &str,
    precision: &str,
    seed: u64,
    guard: bool,
    drawing: Drawing<'_>,
) -> PyResult<SampleConfig> {
    Ok(SampleConfig {
        length,
        samples,
        batch,
        composition: parse("--composition", composition).map_err(py_err)?,
        precision: parse("--precision", precision).map_err(py_err)?,
        seed,
        guard,
        sampling: parse("--sampling", drawing.sampling).map_err(py_err)?,
        window: drawing.window,
        context: drawing.context,
        conditioning: parse("--conditioning", drawing.conditioning).map_err(py_err)?,
        context_std: drawing.context_std,
        ..Default::default()
    }
    .with(settings))
}

/// The title of an `xarray.Dataset` of `assimilate`.
const POSTERIOR: &str = "posterior samples p(x | y) of sda assimilate";
/// The title of an `xarray.Dataset` of `sample`.
const PRIOR: &str = "prior samples p(x) of sda sample";

/// Samples as a numpy array, or as an `xarray.Dataset` of `layout` (`sda._xarray.dataset`).
fn out_with<'py>(py: Python<'py>, x: Array, layout: Option<Layout>) -> PyResult<Bound<'py, PyAny>> {
    let array = array_out(py, x)?.into_any();
    match layout {
        None => Ok(array),
        Some(l) => {
            let l = json_to_py(py, &l)?;
            py.import("sda._xarray")?
                .call_method1("dataset", (array, l))
        }
    }
}

impl Model {
    /// The validation trajectories `gamma="auto"` calibrates on: those of `data` (a
    /// `sda.Data`, or a data folder's path), or of the folder the model was trained on.
    fn calibration_trajectories(
        &self,
        py: Python<'_>,
        data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Array> {
        if let Some(d) = data.and_then(|d| d.cast::<Data>().ok()) {
            return array_in(d.get().valid.bind(py).as_any(), "calibration_data.valid");
        }
        let dir = data.map(path_in).transpose()?;
        if dir.is_none() && (self.run.is_none() || self.model.config.data_dir.is_none()) {
            return Err(value_error(
                "gamma=\"auto\": this model names no data folder to calibrate on; pass \
                 calibration_data= (a sda.Data or a data folder with valid.npy)",
            ));
        }
        let run = self.run.clone().unwrap_or_default();
        let path =
            sda::calibrate::validation_file(&self.model, &run, dir.as_deref()).map_err(py_err)?;
        sda::data::read_trajectories(&path, &self.model.config.data.state_shape).map_err(py_err)
    }

    /// The coordinates of an `as_xarray=True` result (checked before sampling), or `None`.
    /// `table`: the observations are a table, which `start` also places.
    #[allow(clippy::too_many_arguments)]
    fn layout(
        &self,
        start: Option<&str>,
        as_xarray: bool,
        samples: usize,
        length: usize,
        title: &str,
        table: bool,
    ) -> PyResult<Option<Layout>> {
        if !as_xarray {
            if start.is_some() && !table {
                return Err(value_error(
                    "start: places a table of dates (a .csv path as y) or dates an \
                     as_xarray=True result; neither is asked for",
                ));
            }
            return Ok(None);
        }
        Layout::of(&self.model.config.data, samples, length, start, title)
            .map(Some)
            .map_err(py_err)
    }

    fn draw(
        &self,
        py: Python<'_>,
        observed: Option<Observed>,
        cfg: SampleConfig,
        progress: bool,
    ) -> PyResult<Array> {
        let pb = bar(
            (cfg.samples.div_ceil(cfg.batch.max(1)) * cfg.steps_per_batch(&self.model.config.net))
                as u64,
            "sample",
            progress,
        );
        let model = &self.model;
        let x = compute(py, |poll| {
            sample(model, observed.as_ref(), &cfg, &Device::flex(), |i| {
                pb.set_position(i as u64);
                poll()
            })
        })?;
        pb.finish_and_clear();
        Ok(x)
    }
}

#[pymethods]
impl Model {
    /// Reads a run folder (`config.json`, `model.safetensors`) written by `sda train` or
    /// `Model.save`.
    #[staticmethod]
    fn load(py: Python<'_>, dir: &Bound<'_, PyAny>) -> PyResult<Self> {
        let dir = path_in(dir)?;
        let model = compute(py, |_| RustModel::load(&dir, &Device::flex()))?;
        Ok(Self {
            model,
            run: Some(dir),
        })
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (created if needed).
    fn save(&self, py: Python<'_>, dir: &Bound<'_, PyAny>) -> PyResult<()> {
        let dir = path_in(dir)?;
        compute(py, |_| self.model.save(&dir))
    }

    /// What `config.json` holds: data (system, state shape, normalisation), network, noise
    /// schedule and training settings.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.model.config)
    }

    /// The shape of one state, e.g. `(3,)`.
    #[getter]
    fn state_shape(&self) -> Vec<usize> {
        self.model.config.data.state_shape.clone()
    }

    /// States per window (`2k + 1` for a local model of order k).
    #[getter]
    fn window(&self) -> usize {
        self.model.config.net.window
    }

    fn __repr__(&self) -> String {
        format!(
            "sda.Model({}, k = {}, {})",
            self.model.config.data.system.name(),
            self.model.config.net.order(),
            self.model.config.net.describe()
        )
    }

    /// `sda assimilate`: draws `samples` trajectories of `length` states from p(x | y).
    ///
    /// y: observations `A(x) + noise` of the shape the operator produces on `length` states,
    /// e.g. `(9, 1)` for `"stride:8|select:0"` on 65 states (physical units). operator: the
    /// observation operator in the command line's language (`stride:K[@O]`, `at:I,J`, `last`,
    /// `select:I[,J]`, `points:FILE.npy`, `linear:FILE.npy`, `coarsen:R`, `crop:…`,
    /// `space-stride:K`, `vorticity`, `saturate`, `mask:FILE.npy`, joined by `|`). noise: the
    /// observation noise std, a number or an array of `y`'s shape. Or y: the path of a `.csv`
    /// table of `time,index,value,std` rows (scattered measurements, each with its std), which
    /// brings its own operator and noise (then not given), as `--observations obs.csv`; its
    /// rows may give a `date` of the model's record instead of `time` and a `station`, or a
    /// place `lat,lon`, with a `variable`, instead of `index`; start: where the trajectory
    /// starts in the record (a step, as a string of digits, or a date; default: the table's
    /// earliest date), as `--start`.
    ///
    /// preset: `"stable"` (the default: the paper's sampler with the MMPS likelihood, K = 1),
    /// `"paper"` (the paper's settings, SDA's likelihood with γ = 0.03), `"fast"` or
    /// `"accurate"`; any setting given explicitly wins over the preset (`gamma`, `zeta` or
    /// `iterations` alone choose their likelihood), and one that means nothing for what runs
    /// is refused (as on the command line). sampler: `"pc"`, `"ddim"` (with `eta`), `"heun"`
    /// or `"eab2"`; steps: sampler steps T; grid: `"t"` or `"logsnr"`; corrections: C per
    /// step; corrector: `"sda"` (step scale `tau`) or `"fixed"` (step `delta`); likelihood:
    /// `"sda"` (with `gamma`), `"dps"` (with `zeta`) or `"mmps"` (with `solver` `"cg"` or
    /// `"gmres"` and `iterations` K); composition: `"mean"` or `"centre"`; precision:
    /// `"auto"`, `"f32"` or `"bf16"`; batch: trajectories per sampler batch (bounds memory).
    /// guard: stop a run whose iterates diverge (NaN or inf, values far outside the training
    /// range, an exploding guidance term) with `sda.SdaDivergedError` (`guard=False`: for
    /// experiments only). sampling: `"joint"` (all states at once) or `"autoregressive"`
    /// (window after window; `window` states each, `context` of them already drawn,
    /// `conditioning` `"both"`, `"guidance"` or `"replacement"`, the context's likelihood std
    /// `context_std`), as `sda assimilate --sampling`. gamma: a number, or `"auto"` (as
    /// `--gamma auto`: chosen on `calibration` validation windows of `calibration_data`, a
    /// `sda.Data` or a data folder, by default the folder the model was trained on; cached in
    /// the model's run folder when it has one).
    /// Returns float32 `(samples, length, *state)` in physical units: the same bits as
    /// `sda assimilate` with the same settings and seed. With `as_xarray=True` (xarray
    /// installed), an `xarray.Dataset` instead: one variable per variable of the data's record
    /// (`x` for other data) over `sample`, time and the record's space axes, with their
    /// coordinates and attributes, decoded as `xarray.open_dataset` decodes the `.nc` output
    /// of `sda assimilate` (the same Dataset); masked values NaN. start: where the first state lies
    /// in the record, as `--start`: a time step, `"test:0"` (window 0 of the test split) or
    /// a date; it places a table of dates and dates an `as_xarray=True` result.
    #[pyo3(signature = (y, *, operator=None, noise=None, length=65, samples=64, batch=64, preset="stable", sampler=None, steps=None, grid=None, eta=None, corrections=None, corrector=None, tau=None, delta=None, likelihood=None, solver=None, iterations=None, gamma=None, zeta=None, composition="mean", precision="auto", seed=0, guard=true, sampling="joint", window=None, context=None, conditioning="both", context_std=0.1, calibration=4, calibration_data=None, progress=true, start=None, as_xarray=false))]
    #[allow(clippy::too_many_arguments)]
    fn assimilate<'py>(
        &self,
        py: Python<'py>,
        y: &Bound<'py, PyAny>,
        operator: Option<&str>,
        noise: Option<&Bound<'py, PyAny>>,
        length: usize,
        samples: usize,
        batch: usize,
        preset: &str,
        sampler: Option<&str>,
        steps: Option<usize>,
        grid: Option<&str>,
        eta: Option<f64>,
        corrections: Option<usize>,
        corrector: Option<&str>,
        tau: Option<f64>,
        delta: Option<f64>,
        likelihood: Option<&str>,
        solver: Option<&str>,
        iterations: Option<usize>,
        gamma: Option<&Bound<'py, PyAny>>,
        zeta: Option<f64>,
        composition: &str,
        precision: &str,
        seed: u64,
        guard: bool,
        sampling: &str,
        window: Option<usize>,
        context: Option<usize>,
        conditioning: &str,
        context_std: f64,
        calibration: usize,
        calibration_data: Option<&Bound<'py, PyAny>>,
        progress: bool,
        start: Option<&str>,
        as_xarray: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // gamma: a number, or "auto" (chosen on validation trajectories, as --gamma auto).
        let auto = match gamma {
            Some(g) if g.extract::<String>().is_ok_and(|v| v == "auto") => true,
            Some(g) if g.extract::<f64>().is_err() => {
                return Err(value_error("gamma: a number > 0, or \"auto\""));
            }
            _ => false,
        };
        if !auto && (calibration != 4 || calibration_data.is_some()) {
            return Err(value_error(
                "calibration and calibration_data go with gamma=\"auto\" only",
            ));
        }
        if auto && calibration == 0 {
            return Err(value_error(
                "calibration=0: the calibration needs at least 1 validation window",
            ));
        }
        let gamma = match gamma {
            Some(_) if auto => Some(0.03),
            Some(g) => Some(g.extract::<f64>()?),
            None => None,
        };
        let settings = settings(
            preset,
            sampler,
            steps,
            grid,
            eta,
            corrections,
            corrector,
            tau,
            delta,
            likelihood,
            solver,
            iterations,
            gamma,
            zeta,
        )?;
        let shape = &self.model.config.data.state_shape;
        let (observed, placed) = observed_in(
            y,
            operator,
            noise,
            shape,
            length,
            Some((&self.model.config.data, start)),
        )?;
        // As `sda assimilate`: a table of dates places the window, and so dates the result.
        let placed = placed.map(|k| k.to_string());
        let layout = self.layout(
            start.or(placed.as_deref()),
            as_xarray,
            samples,
            length,
            POSTERIOR,
            table_path(y).is_some(),
        )?;
        let cfg = sample_config(
            length,
            samples,
            batch,
            &settings,
            composition,
            precision,
            seed,
            guard,
            Drawing {
                sampling,
                window,
                context,
                conditioning,
                context_std,
            },
        )?;
        let mut cfg = cfg;
        if auto {
            let valid = self.calibration_trajectories(py, calibration_data)?;
            let budget = sda::calibrate::Budget {
                windows: calibration,
                ..Default::default()
            };
            let run = self.run.clone();
            let model = &self.model;
            let c = compute(py, |poll| {
                sda::calibrate::gamma(
                    model,
                    &observed,
                    &cfg,
                    &valid,
                    &budget,
                    run.as_deref(),
                    &Device::flex(),
                    |_, _| poll(),
                )
            })?;
            if progress {
                eprintln!("gamma=\"auto\":\n{}", c.report());
            }
            cfg.likelihood = Likelihood::Sda { gamma: c.gamma };
        }
        let x = self.draw(py, Some(observed), cfg, progress)?;
        out_with(py, x, layout)
    }

    /// `sda sample`: draws `samples` trajectories of `length` states from the trained prior
    /// p(x), with the sampler settings of `assimilate` (no likelihood), guarded as
    /// `assimilate` is. Returns float32 `(samples, length, *state)` in physical units, or with
    /// `as_xarray=True` an `xarray.Dataset` (and `start`) as `assimilate` does.
    #[pyo3(signature = (*, length=65, samples=64, batch=64, preset="stable", sampler=None, steps=None, grid=None, eta=None, corrections=None, corrector=None, tau=None, delta=None, composition="mean", precision="auto", seed=0, guard=true, sampling="joint", window=None, context=None, conditioning="both", context_std=0.1, progress=true, start=None, as_xarray=false))]
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        length: usize,
        samples: usize,
        batch: usize,
        preset: &str,
        sampler: Option<&str>,
        steps: Option<usize>,
        grid: Option<&str>,
        eta: Option<f64>,
        corrections: Option<usize>,
        corrector: Option<&str>,
        tau: Option<f64>,
        delta: Option<f64>,
        composition: &str,
        precision: &str,
        seed: u64,
        guard: bool,
        sampling: &str,
        window: Option<usize>,
        context: Option<usize>,
        conditioning: &str,
        context_std: f64,
        progress: bool,
        start: Option<&str>,
        as_xarray: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let layout = self.layout(start, as_xarray, samples, length, PRIOR, false)?;
        let settings = Settings {
            likelihood: Likelihood::Sda { gamma: 0.0 },
            ..settings(
                preset,
                sampler,
                steps,
                grid,
                eta,
                corrections,
                corrector,
                tau,
                delta,
                None,
                None,
                None,
                None,
                None,
            )?
        };
        let cfg = sample_config(
            length,
            samples,
            batch,
            &settings,
            composition,
            precision,
            seed,
            guard,
            Drawing {
                sampling,
                window,
                context,
                conditioning,
                context_std,
            },
        )?;
        let x = self.draw(py, None, cfg, progress)?;
        out_with(py, x, layout)
    }
}

/// Removes a scratch folder when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "sda-{what}-{}-{nanos}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// What training reads of a `Data` besides its splits.
#[derive(Default)]
struct Extras {
    /// Constant context channels of imported field data.
    context: Option<Array>,
    /// The folder it was read from.
    dir: Option<PathBuf>,
    /// The record's mask files.
    files: Vec<(String, Array)>,
}

/// A `Data` (with its context channels, the folder it was read from and its masks, if any),
/// or trajectories `(N, L, *state)` of `system` split 80/10/10.
fn data_in(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    system: Option<&str>,
) -> PyResult<(Splits, Extras)> {
    if let Ok(d) = data.cast::<Data>() {
        let d = d.get();
        let extras = Extras {
            context: d.context.clone(),
            dir: d.dir.clone(),
            files: d.files.clone(),
        };
        return Ok((d.to_splits(py)?, extras));
    }
    let Some(system) = system else {
        return Err(value_error(
            "system: name the system of bare trajectories (e.g. system=\"lorenz63\"), or pass a sda.Data",
        ));
    };
    let system = System::from_name(system).map_err(py_err)?;
    let train = array_in(data, "data")?;
    let s = compute(py, |_| Splits::from_arrays(system, train, None, None))?;
    Ok((s, Extras::default()))
}

/// `sda train`: denoising score matching on windows of `2 * order + 1` states.
///
/// data: a `sda.Data`, or trajectories `(N, L, *state)` of `system` (split 80/10/10). An epoch
/// is one random window per training chain. The defaults are the paper's Lorenz-63 settings
/// (width 256, depth 5, 4096 epochs, batch 64, lr 1e-3, linear decay); field data
/// (Kolmogorov) gets the U-Net of `preset` ("paper" or "reduced"; `hidden`, `blocks`,
/// `kernel` override it) with batch 32 and lr 2e-4. architecture: "local" or "global"
/// (trajectories of `global_length`). schedule: "linear", "cosine", "exponential",
/// "constant"; noise_schedule: the diffusion's ("cos", …); engine: "auto", "burn", "fused";
/// precision: "auto", "f32", "bf16"; precondition: learn the residual of the Gaussian denoiser
/// (as `--precondition`). output: a run folder to write (config.json,
/// model.safetensors, stats.csv, checkpoints; `resume=True` continues a killed run), or None
/// to keep the model in memory only. Returns the trained `sda.Model`.
#[pyfunction]
#[pyo3(signature = (data, *, order=2, epochs=4096, seed=0, output=None, progress=true, system=None, architecture="local", global_length=65, network="auto", width=None, depth=5, preset="paper", hidden=None, blocks=None, kernel=None, embedding=None, batch_size=None, lr=None, weight_decay=1e-3, schedule="linear", noise_schedule="cos", checkpoint_every=64, resume=false, engine="auto", precision="auto", ema=None, precondition=false))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    order: usize,
    epochs: usize,
    seed: u64,
    output: Option<&Bound<'_, PyAny>>,
    progress: bool,
    system: Option<&str>,
    architecture: &str,
    global_length: usize,
    network: &str,
    width: Option<usize>,
    depth: usize,
    preset: &str,
    hidden: Option<Vec<usize>>,
    blocks: Option<usize>,
    kernel: Option<usize>,
    embedding: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    weight_decay: f64,
    schedule: &str,
    noise_schedule: &str,
    checkpoint_every: usize,
    resume: bool,
    engine: &str,
    precision: &str,
    ema: Option<f64>,
    precondition: bool,
) -> PyResult<Model> {
    let (splits, extras) = data_in(py, data, system)?;
    let context = extras.context.clone();
    let shape = splits.info.state_shape.clone();
    let mut net = NetSpec {
        order,
        architecture: parse("--architecture", architecture).map_err(py_err)?,
        global_length,
        network: parse("--network", network).map_err(py_err)?,
        width,
        depth,
        preset: parse("--preset", preset).map_err(py_err)?,
        hidden,
        blocks,
        kernel,
        embedding,
    }
    .config(&shape, splits.info.system.layout())
    .map_err(py_err)?;
    use_data_context(&mut net, &splits.info.system, context);
    let (batch, rate) = default_batch_lr(&shape);
    let config = TrainConfig {
        epochs,
        batch_size: batch_size.unwrap_or(batch),
        lr: lr.unwrap_or(rate),
        weight_decay,
        lr_schedule: parse("--schedule", schedule).map_err(py_err)?,
        seed,
        checkpoint_every,
        precision: parse("--precision", precision).map_err(py_err)?,
        ema,
        precondition,
    };
    let sde = sda::score::sde::VpSde {
        schedule: parse("--noise-schedule", noise_schedule).map_err(py_err)?,
        eta: 1e-3,
    };
    let engine = parse("--engine", engine).map_err(py_err)?;
    let output = output.map(path_in).transpose()?;
    if resume && output.is_none() {
        return Err(value_error("resume: needs the output folder of the run"));
    }
    let (dir, _scratch) = match output {
        Some(dir) => (dir, None),
        None => {
            let dir = scratch_dir("train");
            (dir.clone(), Some(Scratch(dir)))
        }
    };
    let pb = bar(epochs as u64, "train", progress);
    let model = compute(py, |poll| {
        // As `sda train --data DIR`: the record's masks weight the loss.
        let mut dataset = splits.dataset();
        let file = |name: String| {
            let f = extras.files.iter().find(|f| f.0 == name);
            f.map(|f| (&f.1, f.0.as_str()))
        };
        let masks = sda::data::observed::Masks {
            fixed: file(sda::record::MASK_FILE.to_string()),
            train: file(sda::record::observed_file("train")),
            valid: file(sda::record::observed_file("valid")),
        };
        dataset.observed =
            sda::data::observed::weights(&shape, &dataset.train, &dataset.valid, masks)?;
        dataset.dir = extras.dir.clone();
        train_with(
            &dataset,
            net,
            sde,
            &config,
            &dir,
            resume,
            &Device::flex(),
            engine,
            |s| {
                pb.set_position(s.epoch as u64);
                pb.set_message(format!(
                    "loss {:.4} valid {:.4} lr {:.1e}",
                    s.train_loss, s.valid_loss, s.lr
                ));
                poll()
            },
        )
    })?;
    pb.finish_and_clear();
    Ok(Model {
        model,
        run: _scratch.is_none().then_some(dir),
    })
}

// ---------------------------------------------------------------------------------------------
// Observations, filter, evaluation, plots

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
fn observe<'py>(
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
        let design = Design {
            times: times.unwrap_or(length.div_ceil(4)),
            stations: stations.unwrap_or(f.div_ceil(4)),
            std: (lo, hi),
            seed,
        };
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

/// A system and state shape from a name, a data folder or a `sda.Data`.
fn system_in(obj: &Bound<'_, PyAny>) -> PyResult<(System, Vec<usize>)> {
    if let Ok(d) = obj.cast::<Data>() {
        let info = &d.get().info;
        return Ok((info.system.clone(), info.state_shape.clone()));
    }
    if obj.is_instance_of::<PyString>() {
        let s: String = obj.extract()?;
        return sda::options::system(&s).map_err(py_err);
    }
    let p = path_in(obj)?;
    sda::options::system(&p.to_string_lossy()).map_err(py_err)
}

/// `sda filter`: reference trajectories from p(x | y) with a bootstrap particle filter, or a
/// statistical baseline of a data folder.
///
/// system: a name (`lorenz63`, `lorenz96`, `linear`), a data folder or a `sda.Data` (its
/// parameters). y, operator, noise: as in `Model.assimilate`. length: states per trajectory;
/// particles: the number of particles; keep: trajectories returned; burn_in: prior
/// transitions before the first state. Returns float32 `(keep, length, *state)`: the same
/// bits as `sda filter` with the same seed, whatever the number of threads.
///
/// method: `bpf` (the particle filter), or a baseline fitted on the training split of
/// `system` (a data folder, or a `sda.Data`): `climatology`, `persistence`, `oi`, `lim`, as
/// `sda filter --method` (docs/real-data.md, "Statistical baselines"), with samples (trajectories
/// drawn), eofs, start (a record step or `"test:N"`) and seed. Returns `(samples, length,
/// *state)`, NaN at masked values; with mean=True the pair `(samples, exact mean (1, length,
/// *state))`.
#[pyfunction]
#[pyo3(signature = (y, *, system, operator=None, noise=None, length=65, particles=16384, keep=1024, burn_in=64, seed=0, progress=true, method="bpf", samples=64, eofs=None, start=None, mean=false))]
#[allow(clippy::too_many_arguments)]
fn filter<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
    system: &Bound<'py, PyAny>,
    operator: Option<&str>,
    noise: Option<&Bound<'py, PyAny>>,
    length: usize,
    particles: usize,
    keep: usize,
    burn_in: usize,
    seed: u64,
    progress: bool,
    method: &str,
    samples: usize,
    eofs: Option<usize>,
    start: Option<String>,
    mean: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if method != "bpf" {
        let m: sda::baseline::Method = parse("method", method).map_err(|_| {
            value_error(format!(
                "method: bpf, climatology, persistence, oi or lim, not {method} (the classical \
                 methods run from the command line, `sda filter --method`)"
            ))
        })?;
        let (info, train, mask) = baseline_data(py, system)?;
        if length == 0 {
            return Err(value_error("length: must be at least 1"));
        }
        let (o, _) = observed_in(y, operator, noise, &info.state_shape, length, None)?;
        let settings = sda::baseline::Settings {
            samples,
            seed,
            eofs,
            start,
        };
        let out = compute(py, |_| {
            sda::baseline::run(m, &info, &train, mask.as_ref(), &o, length, &settings)
        })?;
        let x = array_out(py, out.samples)?.into_any();
        if mean {
            let m = array_out(py, out.mean)?.into_any();
            return Ok(pyo3::types::PyTuple::new(py, [x, m])?.into_any());
        }
        return Ok(x);
    }
    if mean {
        return Err(value_error("mean: only with a baseline method"));
    }
    let (system, shape) = system_in(system)?;
    if length == 0 {
        return Err(value_error("length: must be at least 1"));
    }
    let (o, _) = observed_in(y, operator, noise, &shape, length, None)?;
    let config = FilterConfig {
        particles,
        keep,
        burn_in,
        seed,
    };
    let pb = bar((burn_in + length - 1) as u64, "filter", progress);
    let out = compute(py, |poll| {
        run_particle_filter(
            system.chain()?,
            &o.operator,
            &o.y,
            &o.noise,
            &shape,
            length,
            &config,
            |done| {
                pb.set_position(done as u64);
                poll()
            },
        )
    })?;
    pb.finish_and_clear();
    Ok(array_out(py, out.samples)?.into_any())
}

/// The description, training split and fixed mask of a data folder (a path or a `sda.Data`).
fn baseline_data(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
) -> PyResult<(SystemInfo, Array, Option<Array>)> {
    if let Ok(d) = obj.cast::<Data>() {
        let d = d.get();
        if let System::External(sda::mcs::External {
            record: Some(sda::record::RecordInfo { mask: Some(_), .. }),
            ..
        }) = &d.info.system
        {
            return Err(value_error(
                "system: this data set has a fixed mask; give its folder's path so that \
                 mask.npy is read",
            ));
        }
        let train = array_in(d.train.bind(py).as_any(), "train")?;
        return Ok((d.info.clone(), train, None));
    }
    let dir = path_in(obj)?;
    if !dir.is_dir() {
        return Err(value_error(format!(
            "system: {} is not a data folder (the baselines are fitted on its training split)",
            dir.display()
        )));
    }
    let info = sda::data::read_info(&dir).map_err(py_err)?;
    let train =
        sda::data::read_trajectories(&dir.join("train.npy"), &info.state_shape).map_err(py_err)?;
    let mask = sda::record::read_mask(&dir, &info).map_err(py_err)?;
    Ok((info, train, mask))
}

/// `sda evaluate`: scores of samples `(N, L, *state)` against a reference `(M, L, *state)`
/// (e.g. the particle filter's) and a truth `(1, L, *state)`.
///
/// Returns a dict: `samples`, `failed` (samples with NaN or inf, left out), `w1` (exact
/// Wasserstein-1 to the reference), `mmd`, `log_px` and `log_px_reference` (mean
/// log p(x_2:L | x_1) under the true transition of `system`), `log_py`, `residual_std` and
/// `noise_std` (with `y`, `operator`, `noise`, or `y` a `.csv` table of observations), `rmse`, `spread`, `crps`, `rank_histogram`
/// (with `truth`); a metric whose inputs are missing is None.
///
/// hidden=True scores only the values `y` did not observe (as `sda evaluate --hidden`); mask (an
/// array of the state's or the trajectory's shape, non-zero: scored) chooses the values; a
/// data folder's fixed mask (system given as its path) is left out as well. truth may be
/// `(L, *state)`.
#[pyfunction]
#[pyo3(signature = (samples, reference=None, truth=None, *, system=None, y=None, operator=None, noise=None, hidden=false, mask=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate<'py>(
    py: Python<'py>,
    samples: &Bound<'py, PyAny>,
    reference: Option<&Bound<'py, PyAny>>,
    truth: Option<&Bound<'py, PyAny>>,
    system: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    operator: Option<&str>,
    noise: Option<&Bound<'py, PyAny>>,
    hidden: bool,
    mask: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let samples = array_in(samples, "samples")?;
    if samples.shape.len() < 3 || samples.shape[0] == 0 {
        return Err(value_error(format!(
            "samples: expected a non-empty (N, L, *state) array, got shape {:?}",
            samples.shape
        )));
    }
    let reference = opt_array_in(reference, "reference")?;
    let truth = opt_array_in(truth, "truth")?;
    let system_obj = system;
    let system = system
        .filter(|s| !s.is_none())
        .map(system_in)
        .transpose()?
        .map(|s| s.0);
    let shape = samples.shape[2..].to_vec();
    let observed = match y.filter(|o| !o.is_none()) {
        Some(y) => Some(observed_in(y, operator, noise, &shape, samples.shape[1], None)?.0),
        None => None,
    };
    let keep = scored_in(
        py,
        system_obj,
        &samples.shape[1..],
        observed.as_ref(),
        hidden,
        mask,
    )?;
    let e = compute(py, |_| {
        sda::evaluate::evaluate_at(
            &samples,
            reference.as_ref(),
            truth.as_ref(),
            system.as_ref().and_then(|s| s.chain().ok()),
            observed.as_ref().map(|o| (o, shape.as_slice())),
            keep.as_deref(),
        )
    })?;
    json_to_py(py, &e)
}

/// The values `evaluate` scores: the data folder's fixed mask (system given as a path),
/// `mask`, and with `hidden` the values `observed` did not observe.
fn scored_in(
    _py: Python<'_>,
    system: Option<&Bound<'_, PyAny>>,
    trajectory: &[usize],
    observed: Option<&sda::assimilate::Observed>,
    hidden: bool,
    mask: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Vec<bool>>> {
    let (l, state) = (trajectory[0], &trajectory[1..]);
    let f: usize = state.iter().product();
    let mut keep = vec![true; l * f];
    let mut any = false;
    let mut per_state = |keep: &mut Vec<bool>, flags: &[bool]| {
        any = true;
        for (i, k) in keep.iter_mut().enumerate() {
            *k &= flags[i % f];
        }
    };
    if let Some(obj) = system.filter(|s| !s.is_none() && s.cast::<Data>().is_err())
        && let Ok(dir) = path_in(obj)
        && dir.is_dir()
    {
        let info = sda::data::read_info(&dir).map_err(py_err)?;
        if let Some(m) = sda::record::read_mask(&dir, &info).map_err(py_err)? {
            let flags: Vec<bool> = m.data.iter().map(|&v| v > 0.5).collect();
            per_state(&mut keep, &flags);
        }
    }
    if let Some(m) = opt_array_in(mask.filter(|m| !m.is_none()), "mask")? {
        let flags: Vec<bool> = m.data.iter().map(|&v| v != 0.0).collect();
        if m.shape == state {
            per_state(&mut keep, &flags);
        } else if m.shape == trajectory {
            any = true;
            keep.iter_mut().zip(&flags).for_each(|(k, &m)| *k &= m);
        } else {
            return Err(value_error(format!(
                "mask: of shape {:?}, not a state's {state:?} or a trajectory's {trajectory:?}",
                m.shape
            )));
        }
    }
    if hidden {
        let o = observed.ok_or_else(|| value_error("hidden: needs the observations y"))?;
        let seen = sda::baseline::points::observed_mask(&o.operator, l, state).map_err(py_err)?;
        keep.iter_mut().zip(&seen).for_each(|(k, &s)| *k &= !s);
        any = true;
    }
    Ok(any.then_some(keep))
}

/// `sda plot trajectories`: each coordinate against time, samples `(N, L, D)` as thin blue
/// lines, a reference set in orange, the truth in black, observations `y` (with `operator`) as
/// crosses. Writes the PNG to `output` and returns its path, or returns the PNG's bytes when
/// `output` is None.
#[pyfunction]
#[pyo3(signature = (samples, reference=None, truth=None, *, y=None, operator=None, output=None))]
fn plot_trajectories<'py>(
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
    let (path, _scratch) = match &output {
        Some(p) => (p.clone(), None),
        None => {
            let dir = scratch_dir("plot");
            std::fs::create_dir_all(&dir)
                .map_err(|e| new_err(Kind::Os, format!("{}: {e}", dir.display())))?;
            (dir.join("trajectories.png"), Some(Scratch(dir)))
        }
    };
    let labels = sda::plot::coordinate_labels(d);
    compute(py, |_| {
        sda::plot::trajectories(
            &path,
            &samples,
            reference.as_ref(),
            truth.as_ref(),
            observations.as_ref(),
            &labels,
        )
    })?;
    match output {
        Some(p) => Ok(p.into_pyobject(py)?.into_any()),
        None => {
            let bytes = std::fs::read(&path)
                .map_err(|e| new_err(Kind::Os, format!("{}: {e}", path.display())))?;
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

/// The version of the Rust library (the package's version).
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Keeps freed memory in the process for reuse, as the `sda` binary does at start: the samplers
/// and trainers allocate and free the same multi-megabyte buffers at every step, and glibc's
/// defaults return them to the kernel, so that every step pays page faults to get them back
/// (about 1 s of system time in a one-minute assimilation).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, under glibc's arena lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[pymodule]
fn _sda(m: &Bound<'_, PyModule>) -> PyResult<()> {
    install_panic_hook();
    keep_freed_memory();
    m.add("__version__", version())?;
    m.add("SdaError", m.py().get_type::<SdaError>())?;
    m.add("SdaDivergedError", m.py().get_type::<SdaDivergedError>())?;
    add_error_types(m)?;
    m.add_class::<Data>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(observe, m)?)?;
    m.add_function(wrap_pyfunction!(filter, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(plot_trajectories, m)?)?;
    Ok(())
}
