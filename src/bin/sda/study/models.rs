//! The models the studies train once and then reuse: the Lorenz-63 study's local models of
//! each order k and the Lorenz-96 benchmark's SDA priors (with their simulated data).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use sda::assimilate::fused;
use sda::data::{Dataset, Splits};
use sda::io::Array;
use sda::mcs::{Layout, Lorenz96, System};
use sda::model::Model;
use sda::nn::cpu::Precision;
use sda::score::net::Backbone;
use sda::score::sde::VpSde;
use sda::study::lorenz63::{network, width};
use sda::study::lorenz96::Case;
use sda::train::{NetSpec, Network, TrainConfig, train};

use super::Args;
use crate::common::{bar, device};

/// Whether the run in `dir` is trained to `epochs` (or is a finished run of its own).
fn trained(dir: &Path, epochs: usize) -> bool {
    dir.join("model.safetensors").exists() && !dir.join("checkpoint.json").exists()
        || sda::io::read_json::<serde_json::Value>(&dir.join("checkpoint.json"))
            .ok()
            .and_then(|c| c["epochs_done"].as_u64())
            == Some(epochs as u64)
}

/// The arithmetic the assimilations of each order run with (`--precision` resolved).
pub fn precisions(a: &Args) -> Result<BTreeMap<usize, Precision>> {
    let dev = device(&a.device)?;
    a.orders
        .iter()
        .map(|&k| {
            let net = network(k);
            Ok((k, a.precision.resolve(net.fused_width(fused(&net, &dev)))?))
        })
        .collect()
}

/// Loads the model of order k, training (or resuming) it if needed.
pub fn model(a: &Args, data: &Dataset, k: usize, dir: &Path) -> Result<Model> {
    let device = device(&a.device)?;
    if trained(dir, a.epochs) {
        return Model::load(dir, &device).with_context(|| format!("loading {}", dir.display()));
    }
    let net = network(k);
    let config = TrainConfig {
        epochs: a.epochs,
        seed: a.seed + k as u64,
        ..TrainConfig::default()
    };
    let pb = bar(a.epochs as u64, &format!("train k={k}"));
    let resume = dir.join("config.json").exists();
    let m = train(
        data,
        net,
        VpSde::default(),
        &config,
        dir,
        resume,
        &device,
        |s| {
            pb.set_position(s.epoch as u64);
            pb.set_message(format!(
                "loss {:.4} valid {:.4}",
                s.train_loss, s.valid_loss
            ));
        },
    )
    .with_context(|| format!("training {}", dir.display()))?;
    pb.finish_and_clear();
    println!("trained k = {k} (width {}) → {}", width(k), dir.display());
    Ok(m)
}

/// Simulated L96-40 chains on the grid SDA models: `--sda-chains` chains from random states,
/// 1024 model steps of burn-in, then `--sda-length` states `thin` model steps apart.
fn training_data(a: &Args, c: &Case) -> Result<Splits> {
    let model = c.model();
    let (n, len, thin) = (a.sda_chains, a.sda_length, c.thin);
    if n < 3 || len < 2 {
        bail!("--sda-chains/--sda-length: need at least 3 chains of 2 states");
    }
    let steps = (len - 1) * thin + 1;
    let x = System::Lorenz96(model.clone())
        .chain()?
        .trajectories(n, steps, 1024, a.seed);
    let mut kept = Vec::with_capacity(n * len * 40);
    for chain in x.chunks(steps * 40) {
        for t in (0..steps).step_by(thin) {
            kept.extend(chain[t * 40..(t + 1) * 40].iter().map(|&v| v as f32));
        }
    }
    let system = System::Lorenz96(Lorenz96 {
        dt: c.dt * thin as f64,
        ..model
    });
    let mut splits = Splits::from_arrays(system, Array::new(vec![n, len, 40], kept), None, None)?;
    splits.info.burn_in = 1024;
    splits.info.seed = a.seed;
    Ok(splits)
}

/// The SDA prior of order k for a case's grid: loaded from DIR/models when trained with the
/// same settings, else trained (or resumed) there. Its data set is kept beside it.
pub fn prior(a: &Args, c: &Case, network: Network, k: usize) -> Result<Model> {
    let dt = c.dt * c.thin as f64;
    let root = a.output.join("models");
    let data_dir = root.join(format!(
        "l96-dt{dt}-data-n{}-l{}",
        a.sda_chains, a.sda_length
    ));
    let spec = NetSpec {
        order: k,
        network,
        width: a.sda_width,
        kernel: Some(a.sda_kernel),
        ..NetSpec::default()
    };
    let net = spec.config(&[40], Layout::Ring)?;
    let width = match net.backbone {
        Backbone::Mlp { width, .. } | Backbone::Ring { width, .. } => width,
        Backbone::Unet { .. } => unreachable!("vector states"),
    };
    // The MLP priors keep the folder names they had before ring priors existed.
    let body = match network {
        Network::Ring => format!("-ring{}", a.sda_kernel),
        _ => String::new(),
    };
    let ema = a.sda_ema.map_or(String::new(), |d| format!("-ema{d}"));
    let dir = root.join(format!(
        "l96-dt{dt}-n{}-l{}-k{k}{body}-w{width}-e{}{ema}",
        a.sda_chains, a.sda_length, a.sda_epochs
    ));
    let dev = device(&a.device)?;
    if trained(&dir, a.sda_epochs) {
        return Model::load(&dir, &dev).with_context(|| format!("loading {}", dir.display()));
    }
    let data = if data_dir.join("system.json").exists() {
        Dataset::load(&data_dir).with_context(|| format!("loading {}", data_dir.display()))?
    } else {
        let splits = training_data(a, c)?;
        splits.save(&data_dir)?;
        splits.dataset()
    };
    let config = TrainConfig {
        epochs: a.sda_epochs,
        seed: a.seed + k as u64,
        ema: a.sda_ema,
        ..TrainConfig::default()
    };
    let pb = bar(a.sda_epochs as u64, &format!("train dt={dt} k={k}"));
    let t0 = std::time::Instant::now();
    let resume = dir.join("config.json").exists();
    let mut last = (f64::NAN, f64::NAN);
    let m = train(
        &data,
        net,
        VpSde::default(),
        &config,
        &dir,
        resume,
        &dev,
        |s| {
            pb.set_position(s.epoch as u64);
            last = (s.train_loss, s.valid_loss);
            pb.set_message(format!(
                "loss {:.4} valid {:.4}",
                s.train_loss, s.valid_loss
            ));
        },
    )
    .with_context(|| format!("training {}", dir.display()))?;
    pb.finish_and_clear();
    println!(
        "trained the L96-40 prior dt = {dt}, k = {k}, {} ({} epochs, {:.0} s; loss {:.4}, valid {:.4}) → {}",
        m.config.net.describe(),
        a.sda_epochs,
        t0.elapsed().as_secs_f64(),
        last.0,
        last.1,
        dir.display()
    );
    Ok(m)
}
