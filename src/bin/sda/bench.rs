//! `sda bench`: speed of the Lorenz score network (training step and guided evaluation).
//! `benches/pytorch_lorenz.py` measures the same network and loss in PyTorch.

use std::time::Instant;

use anyhow::Result;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sda::score::guidance::{Guided, Likelihood, Observation};
use sda::score::net::{CpuWindowScore, ScoreNetConfig, WindowScore};
use sda::score::operator::Operator;
use sda::score::sampler::normal;
use sda::score::sde::VpSde;
use sda::score::{NoiseEstimator, tensor};

use crate::common::device;

/// Measure training steps per second (batch of windows, k = 2, width 256, depth 5) and the
/// time of one guided evaluation (forward + input gradient) for B trajectories of L states.
#[derive(clap::Args)]
pub struct Args {
    /// Training steps to time (after 20 warm-up steps).
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Windows per training step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Trajectories per guided evaluation.
    #[arg(long, default_value_t = 64)]
    pub trajectories: usize,
    /// States per trajectory.
    #[arg(long, default_value_t = 65)]
    pub length: usize,
    /// Guided evaluations to time (median reported).
    #[arg(long, default_value_t = 30)]
    pub repeats: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn run(a: Args) -> Result<()> {
    let dev = device(&a.device)?;
    let cfg = ScoreNetConfig::local(2, 3, 256);
    let sde = VpSde::default();
    let mut rng = StdRng::seed_from_u64(0);

    // Training steps.
    let ad = dev.clone().autodiff();
    let mut net = cfg.init(&ad);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(1e-3)
        .with_epsilon(1e-8)
        .init();
    let b = a.batch_size;
    let mut step = |net: ScoreNet| {
        let x = normal([b, 15], &mut rng, &ad);
        let eps = normal([b, 15], &mut rng, &ad);
        let t = Tensor::<1>::random([b], burn::tensor::Distribution::Uniform(0.0, 1.0), &ad);
        let mu = t.clone().mul_scalar(0.0).add_scalar(sde.mu(0.5)); // schedule cost is negligible
        let xt = x * mu.clone().unsqueeze_dim(1) + eps.clone().mul_scalar(sde.sigma(0.5));
        let loss = (net.forward(xt, t) - eps).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        optim.step(1e-3, net, grads)
    };
    for _ in 0..20 {
        net = step(net);
    }
    let _ = dev.sync();
    let t0 = Instant::now();
    for _ in 0..a.steps {
        net = step(net);
    }
    let _ = dev.sync();
    let train_sps = a.steps as f64 / t0.elapsed().as_secs_f64();

    // Guided evaluation.
    let net = net.valid();
    let score = WindowScore::new(&net, &cfg);
    let (n, l) = (a.trajectories, a.length);
    let op = Operator::parse("stride:8|select:0")?;
    let m = op.output_shape(l, &[3])?.iter().product::<usize>();
    let obs = Observation {
        operator: op,
        state_shape: vec![3],
        y: tensor(vec![0.5; m], [1, m], &dev),
        variance: Tensor::full([1, m], 0.16, &dev),
        scale2: Tensor::full([1, m], 64.0, &dev),
        mean: tensor(vec![0.0, 0.0, 25.0], [1, 1, 3], &dev),
        scale: tensor(vec![8.0, 9.0, 8.6], [1, 1, 3], &dev),
    };
    let guided = Guided {
        prior: &score,
        sde,
        obs: &obs,
        likelihood: Likelihood::Sda { gamma: 0.03 },
    };
    let x = normal([n, l, 3], &mut rng, &dev);
    let time = |f: &dyn Fn() -> Tensor<3>| -> f64 {
        for _ in 0..3 {
            let _ = f().into_data();
        }
        median(
            (0..a.repeats)
                .map(|_| {
                    let t0 = Instant::now();
                    let _ = f().into_data();
                    t0.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    let guided_ms = time(&|| guided.eps(x.clone(), 0.5));
    let forward_ms = time(&|| score.eps(x.clone(), 0.5));
    let cpu_score = CpuWindowScore::new(&net, &cfg);
    let fused = Guided {
        prior: &cpu_score,
        ..guided
    };
    let fused_ms = time(&|| fused.eps(x.clone(), 0.5));
    let fused_forward_ms = time(&|| cpu_score.eps(x.clone(), 0.5));
    let threads = rayon::current_num_threads();
    if a.json {
        println!(
            "{{\"device\": \"{}\", \"threads\": {threads}, \"train_steps_per_s\": {train_sps:.1}, \"guided_eval_ms\": {guided_ms:.2}, \"forward_ms\": {forward_ms:.2}, \"fused_guided_eval_ms\": {fused_ms:.2}, \"fused_forward_ms\": {fused_forward_ms:.2}}}",
            a.device
        );
    } else {
        println!(
            "sda bench — Lorenz-63 local score, k = 2, width 256, depth 5 ({}, {threads} threads)",
            a.device
        );
        println!("  training steps/s (batch {b}):                 {train_sps:.1}");
        println!("  guided evaluation ({n} × {l} states), ms:    {guided_ms:.2}");
        println!("  forward only (no gradient), ms:              {forward_ms:.2}");
        println!("  guided evaluation, fused CPU network, ms:    {fused_ms:.2}");
        println!("  forward only, fused CPU network, ms:         {fused_forward_ms:.2}");
    }
    Ok(())
}

use sda::score::net::ScoreNet;
