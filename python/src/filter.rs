//! `sda.filter`: the bootstrap particle filter and the statistical baselines.

use pyo3::prelude::*;
use pyo3::types::PyString;

use sda::data::SystemInfo;
use sda::filter::{FilterConfig, run_particle_filter};
use sda::io::Array;
use sda::mcs::System;
use sda::options::parse;

use crate::compute::{bar, compute};
use crate::convert::{array_in, array_out, path_in};
use crate::data::Data;
use crate::errors::{py_err, value_error};
use crate::observed::observed_in;

/// A system and state shape from a name, a data folder or a `sda.Data`.
pub(crate) fn system_in(obj: &Bound<'_, PyAny>) -> PyResult<(System, Vec<usize>)> {
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
pub(crate) fn filter<'py>(
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
