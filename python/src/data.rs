//! The `sda.Data` class: a data set of training, validation and test trajectories.

use std::path::PathBuf;

use numpy::{PyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use sda::data::{Splits, SystemInfo};
use sda::import::{DEFAULT_SPLIT, ImportSpec, prepare, read_context};
use sda::io::{Array, write_npy};
use sda::mcs::System;
use sda::options::parse;

use crate::compute::compute;
use crate::convert::{
    array_in, array_out, input_in, json_to_py, opt_array_in, path_in, transform_in,
};
use crate::errors::{SdaError, py_err, value_error};
use crate::record;

/// A data set: training, validation and test trajectories `(N, L, *state)` (float32, physical
/// units, read-only numpy arrays) and the description of the system that made them (what
/// `system.json` holds, normalisation included).
///
/// Make one with `sda.simulate(...)`, `sda.Data.load(dir)` or `sda.Data.from_arrays(...)`;
/// `data.save(dir)` writes the folder `sda train --data` reads.
#[pyclass(module = "sda", name = "Data", frozen)]
pub(crate) struct Data {
    pub(crate) info: SystemInfo,
    pub(crate) train: Py<PyArrayDyn<f32>>,
    pub(crate) valid: Py<PyArrayDyn<f32>>,
    test: Py<PyArrayDyn<f32>>,
    /// Constant context channels `(Cc, H, W)` of imported field data.
    pub(crate) context: Option<Array>,
    /// The data folder it was read from (`Data.load`): training reads its masks of missing
    /// values and records it, as `sda train --data` does.
    pub(crate) dir: Option<PathBuf>,
    /// The files of a record besides the trajectories (`mask.npy`, `train-observed.npy`, …),
    /// as `(file name, array)`.
    pub(crate) files: Vec<(String, Array)>,
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
    pub(crate) fn from_splits(py: Python<'_>, s: Splits, context: Option<Array>) -> PyResult<Self> {
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

    pub(crate) fn to_splits(&self, py: Python<'_>) -> PyResult<Splits> {
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
