//! The `sda.Model` class: a trained score network, its `assimilate` and `sample`.

use std::path::PathBuf;

use burn::prelude::Device;
use pyo3::prelude::*;

use sda::assimilate::{Observed, SampleConfig, sample};
use sda::coords::Layout;
use sda::io::Array;
use sda::model::Model as RustModel;
use sda::score::guidance::Likelihood;
use sda::score::preset::Settings;

use crate::compute::{bar, compute};
use crate::convert::{array_in, array_out, json_to_py, path_in};
use crate::data::Data;
use crate::errors::{py_err, value_error};
use crate::observed::{observed_in, table_path};
use crate::settings::{Drawing, gamma_in, sample_config, settings};

/// A trained score network with its configuration (`config.json`): `sda.train(...)` makes one,
/// `sda.Model.load(dir)` reads a run folder of `sda train`, `model.save(dir)` writes one.
/// `model.assimilate(y, ...)` draws posterior trajectories, `model.sample(...)` prior ones.
#[pyclass(module = "sda", name = "Model", frozen)]
pub(crate) struct Model {
    pub(crate) model: RustModel,
    /// The run folder it was read from or trained into (where `gamma="auto"` caches).
    pub(crate) run: Option<PathBuf>,
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

    /// `gamma="auto"`: the likelihood with the γ chosen on `calibration` validation windows of
    /// `calibration_data` (as `--gamma auto`), its report printed when `progress`.
    fn calibrated(
        &self,
        py: Python<'_>,
        observed: &Observed,
        cfg: &SampleConfig,
        calibration: usize,
        calibration_data: Option<&Bound<'_, PyAny>>,
        progress: bool,
    ) -> PyResult<Likelihood> {
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
                observed,
                cfg,
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
        Ok(Likelihood::Sda { gamma: c.gamma })
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
        let (auto, gamma) = gamma_in(gamma, calibration, calibration_data)?;
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
            cfg.likelihood =
                self.calibrated(py, &observed, &cfg, calibration, calibration_data, progress)?;
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
