//! `sda demo`: a small Lorenz-63 assimilation end to end, in a few minutes on 2 cores.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sda::assimilate::{
    Observed, SampleConfig, fused, log_likelihood, observe, residual_std, sample,
};
use sda::data::{Dataset, SystemInfo, read_trajectories, simulate};
use sda::filter::{FilterConfig, particle_filter};
use sda::io::{Array, write_npy};
use sda::mcs::System;
use sda::metrics::{ensemble_mean, ensemble_spread, rmse, wasserstein1};
use sda::model::Model;
use sda::nn::cpu::Precision;
use sda::plot::{self, Observations};
use sda::score::net::{Composition, ScoreNetConfig};
use sda::score::operator::Operator;
use sda::score::preset::{Flags, Preset};
use sda::score::sde::VpSde;
use sda::train::{TrainConfig, train};

use crate::assimilate::observed;
use crate::common::bar;

/// Simulate a small Lorenz-63 data set, train a k = 2 score network briefly, observe a held-out
/// trajectory (every 8th state, first coordinate, noise std 0.4), assimilate it, and check the
/// posterior against a particle filter. Writes everything under --output and prints what it did.
#[derive(clap::Args)]
pub struct Args {
    /// Folder for the data, the run and the posterior samples.
    #[arg(long, default_value = "sda-demo")]
    pub output: PathBuf,
    /// Training epochs (the paper trains 4096; the demo trains briefly).
    #[arg(long, default_value_t = 256)]
    pub epochs: usize,
    /// Posterior samples.
    #[arg(long, default_value_t = 64)]
    pub samples: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let folder = sda::output::Folder {
        path: &a.output,
        flag: "--output",
        what: "a demo",
        markers: &[],
        resumable: false,
        bytes: None,
    };
    sda::output::check_folder(&folder, sda::output::Existing::Replace)?;
    let dev = burn::prelude::Device::flex();
    let data_dir = a.output.join("data");
    let run_dir = a.output.join("run");
    let obs_dir = a.output.join("obs");

    // 1. Simulate.
    let info = simulate(
        &data_dir,
        System::from_name("lorenz63")?,
        1024,
        1024,
        1024,
        a.seed,
    )?;
    println!(
        "1. simulated 1024 Lorenz-63 chains of 1024 states → {}",
        data_dir.display()
    );

    // 2. Train.
    let model = train_model(&a, &data_dir, &run_dir, &dev)?;

    // 3. Observe a held-out trajectory.
    let (op, noise, length) = ("stride:8|select:0", "0.4", 65);
    let test = read_trajectories(&data_dir.join("test.npy"), &info.state_shape)?;
    let truth = test.data[..length * 3].to_vec();
    write_npy(
        &obs_dir.join("truth.npy"),
        &Array::new(vec![1, length, 3], truth.clone()),
    )?;
    let operator = sda::score::operator::Operator::parse(op)?;
    let y = observe(
        &truth,
        length,
        &info.state_shape,
        &operator,
        &[0.4; 9],
        a.seed,
    )?;
    write_npy(&obs_dir.join("y.npy"), &y)?;
    println!(
        "3. observed test trajectory 0 ({length} states) with '{op}', noise std {noise} → {}",
        obs_dir.display()
    );

    // 4. Assimilate.
    let (observed, x) = assimilate(&a, &model, &obs_dir, (op, noise, length), &dev)?;

    // 5. Check against the truth.
    let xs = against_truth(&a, &info, &x, &observed, &truth, length)?;

    // 6. Ground truth: a bootstrap particle filter, twice (reference and floor).
    against_filter(&a, &info, &operator, &obs_dir, &x, &xs, truth, length)
}

/// Step 2: a k = 2 local score network trained briefly on the data.
fn train_model(
    a: &Args,
    data_dir: &Path,
    run_dir: &Path,
    dev: &burn::prelude::Device,
) -> Result<Model> {
    let data = Dataset::load(data_dir)?;
    let net = ScoreNetConfig::local(2, 3, 256);
    let config = TrainConfig {
        epochs: a.epochs,
        seed: a.seed,
        ..TrainConfig::default()
    };
    let pb = bar(a.epochs as u64, "train");
    let t0 = std::time::Instant::now();
    let mut last = None;
    let model = train(
        &data,
        net,
        VpSde::default(),
        &config,
        run_dir,
        false,
        dev,
        |s| {
            pb.set_position(s.epoch as u64);
            pb.set_message(format!(
                "loss {:.4} valid {:.4}",
                s.train_loss, s.valid_loss
            ));
            last = Some(*s);
        },
    )?;
    pb.finish_and_clear();
    let s = last.context("no epoch ran")?;
    println!(
        "2. trained a k = {} local score network (precision {}) for {} epochs in {:.0} s: train loss {:.4}, valid loss {:.4} → {}",
        model.config.net.order(),
        model.config.train.precision,
        s.epoch,
        t0.elapsed().as_secs_f64(),
        s.train_loss,
        s.valid_loss,
        run_dir.display()
    );
    Ok(model)
}

/// Step 4: posterior samples given the observations, with `sda assimilate`'s settings.
fn assimilate(
    a: &Args,
    model: &Model,
    obs_dir: &Path,
    (op, noise, length): (&str, &str, usize),
    dev: &burn::prelude::Device,
) -> Result<(Observed, Array)> {
    let observed = observed(model, &obs_dir.join("y.npy"), op, noise, length)?;
    // The settings of `sda assimilate` without flags.
    let settings = Preset::default().resolve(&Flags::default())?;
    let cfg = SampleConfig {
        length,
        samples: a.samples,
        batch: 64,
        composition: Composition::default(),
        precision: Precision::Auto
            .resolve(model.config.net.fused_width(fused(&model.config.net, dev)))?,
        seed: a.seed,
        ..SampleConfig::default().with(&settings)
    };
    let pb = bar((a.samples.div_ceil(64) * 256) as u64, "assimilate");
    let t0 = std::time::Instant::now();
    let x = sample(model, Some(&observed), &cfg, dev, |i| {
        pb.set_position(i as u64)
    })?;
    pb.finish_and_clear();
    let out = a.output.join("posterior.npy");
    write_npy(&out, &x)?;
    println!(
        "4. drew {} posterior trajectories ({}; precision {}) in {:.1} s → {}",
        a.samples,
        settings.describe(),
        cfg.precision,
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok((observed, x))
}

/// Step 5: the posterior against the true trajectory; returns the samples in f64.
fn against_truth(
    a: &Args,
    info: &SystemInfo,
    x: &Array,
    observed: &Observed,
    truth: &[f32],
    length: usize,
) -> Result<Vec<f64>> {
    let xs: Vec<f64> = x.data.iter().map(|&v| v as f64).collect();
    let truth64: Vec<f64> = truth.iter().map(|&v| v as f64).collect();
    let mean = ensemble_mean(&xs, a.samples);
    let lp = info
        .system
        .chain()?
        .log_prob_trajectories(&xs, length)
        .unwrap_or_default();
    let ll = log_likelihood(x, observed, &info.state_shape)?;
    let (res, nstd) = residual_std(x, observed, &info.state_shape)?;
    println!("5. posterior against the true trajectory:");
    println!(
        "   RMSE of the posterior mean: {:.2}, ensemble spread: {:.2}",
        rmse(&mean, &truth64),
        ensemble_spread(&xs, a.samples)
    );
    println!(
        "   mean log p(x_2:L | x_1): {:.1} (truth: {:.1})",
        lp.iter().sum::<f64>() / lp.len() as f64,
        info.system
            .chain()?
            .log_prob_trajectories(&truth64, length)
            .unwrap_or_default()[0]
    );
    println!(
        "   mean log p(y | x): {:.1}; std(A(x) − y) = {res:.3} (noise std {nstd:.3})",
        ll.iter().sum::<f64>() / ll.len() as f64
    );
    Ok(xs)
}

/// Step 6: the posterior against a bootstrap particle filter run twice (reference and floor),
/// and the figure.
#[allow(clippy::too_many_arguments)]
fn against_filter(
    a: &Args,
    info: &SystemInfo,
    operator: &Operator,
    obs_dir: &Path,
    x: &Array,
    xs: &[f64],
    truth: Vec<f32>,
    length: usize,
) -> Result<()> {
    let t0 = std::time::Instant::now();
    let y = sda::io::read_npy(&obs_dir.join("y.npy"))?;
    let filter = |seed: u64| {
        let cfg = FilterConfig {
            seed,
            ..FilterConfig::default()
        };
        particle_filter(
            info.system.chain()?,
            operator,
            &y,
            &[0.4; 9],
            &info.state_shape,
            length,
            &cfg,
        )
    };
    let (fa, fb) = (filter(a.seed + 1)?, filter(a.seed + 2)?);
    write_npy(&a.output.join("filter.npy"), &fa)?;
    let fav: Vec<f64> = fa.data.iter().map(|&v| v as f64).collect();
    let nb = a.samples.min(fb.shape[0]);
    let fbv: Vec<f64> = fb.data[..nb * length * 3]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let w1 = wasserstein1(xs, &fav, length * 3);
    let floor = wasserstein1(&fbv, &fav, length * 3);
    let png = a.output.join("posterior.png");
    let obs = Observations {
        times: operator.times(length)?,
        channels: vec![Some(0)],
        values: y,
    };
    let labels = ["x", "y", "z"].map(String::from);
    let truth = Array::new(vec![1, length, 3], truth);
    plot::trajectories(&png, x, Some(&fa), Some(&truth), Some(&obs), &labels)?;
    println!(
        "6. against a particle filter (16384 particles, {:.1} s): W1 = {w1:.1} (filter-vs-filter floor {floor:.1}) → {}, {}",
        t0.elapsed().as_secs_f64(),
        a.output.join("filter.npy").display(),
        png.display()
    );
    Ok(())
}
