//! `sda.train`: a score network trained on a `sda.Data` or bare trajectories.

use std::path::PathBuf;

use burn::prelude::Device;
use pyo3::prelude::*;

use sda::data::Splits;
use sda::io::Array;
use sda::mcs::System;
use sda::options::parse;
use sda::train::{NetSpec, TrainConfig, default_batch_lr, train_with, use_data_context};

use crate::compute::{bar, compute};
use crate::convert::{array_in, path_in};
use crate::data::Data;
use crate::errors::{py_err, value_error};
use crate::model::Model;

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
pub(crate) fn train(
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
            output.as_deref(),
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
    Ok(Model { model, run: output })
}
