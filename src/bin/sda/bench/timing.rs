//! What the benchmarks measure with: timed training steps (burn's autodiff and the fused CPU
//! trainer), timed evaluations, and the guided score of a prior.

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution as _, StandardNormal};
use sda::nn::cpu::Precision;
use sda::nn::cpu_train::{AdamW, CpuTrainer};
use sda::nn::ring;
use sda::score::NoiseEstimator;
use sda::score::guidance::{Guided, Likelihood, Observation};
use sda::score::net::{ScoreNet, ScoreNetConfig};
use sda::score::sde::VpSde;
use serde_json::{Value, json};

/// The SDA-guided posterior estimate of `prior` (docs/method.md §5) with the default schedule.
pub fn guided<'a>(
    prior: &'a dyn NoiseEstimator,
    obs: &'a Observation,
    likelihood: Likelihood,
) -> Guided<'a> {
    Guided {
        prior,
        sde: VpSde::default(),
        obs,
        likelihood,
    }
}

/// The median of `repeats` timings in milliseconds of `f` (its output read back, so that the
/// device has finished), after `warmup` untimed calls.
pub fn time_ms(warmup: usize, repeats: usize, f: impl Fn() -> Tensor<3>) -> f64 {
    for _ in 0..warmup {
        let _ = f().into_data();
    }
    let mut v: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t0 = Instant::now();
            let _ = f().into_data();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// AdamW steps per second of the denoising loss `mean((ε_φ(μ x + σ ε, t) − ε)²)` on batches of
/// `b` random windows (noise drawn on the device), after `warmup` steps. Returns the trained
/// network (for the evaluations) and the rate.
pub fn train_rate(
    cfg: &ScoreNetConfig,
    b: usize,
    lr: f64,
    warmup: usize,
    steps: usize,
    dev: &Device,
) -> (ScoreNet, f64) {
    let sde = VpSde::default();
    let n = cfg.window * cfg.features;
    let ad = dev.clone().autodiff();
    let mut net = cfg.init_seeded(&ad, 0);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(1e-3)
        .with_epsilon(1e-8)
        .init();
    let mut step = |net: ScoreNet| {
        let x = Tensor::<2>::random([b, n], Distribution::Normal(0.0, 1.0), &ad);
        let eps = Tensor::<2>::random([b, n], Distribution::Normal(0.0, 1.0), &ad);
        let t = Tensor::<1>::random([b], Distribution::Uniform(0.0, 1.0), &ad);
        // μ and σ at t = 0.5 for every sample: the schedule's cost is negligible.
        let xt = x.mul_scalar(sde.mu(0.5)) + eps.clone().mul_scalar(sde.sigma(0.5));
        let loss = (net.forward(xt, t) - eps).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        optim.step(lr, net, grads)
    };
    for _ in 0..warmup {
        net = step(net);
    }
    let _ = dev.sync();
    let t0 = Instant::now();
    for _ in 0..steps {
        net = step(net);
    }
    let _ = dev.sync();
    (net.valid(), steps as f64 / t0.elapsed().as_secs_f64())
}

/// [`train_rate`] with the fused CPU trainer (MLP and ring networks of `cfg`): the same
/// loss, batch and AdamW. A ring network's rows are the positions of the windows: the batch's
/// windows are cut into them at every step, as `sda train` does.
pub fn fused_train_rate(
    net: &ScoreNet,
    cfg: &ScoreNetConfig,
    b: usize,
    lr: f64,
    warmup: usize,
    steps: usize,
    precision: Precision,
) -> f64 {
    let sde = VpSde::default();
    let mut trainer = CpuTrainer::new(net.score_cpu().expect("an MLP network"), AdamW::new(1e-3))
        .with_precision(precision);
    let (w, f) = (cfg.window, cfg.features);
    let mut rng = StdRng::seed_from_u64(1);
    let (mu, sigma) = (sde.mu(0.5) as f32, sde.sigma(0.5) as f32);
    let mut step = |rng: &mut StdRng| {
        let eps: Vec<f32> = (0..b * w * f).map(|_| StandardNormal.sample(rng)).collect();
        let x: Vec<f32> = eps
            .iter()
            .map(|e| {
                let x: f32 = StandardNormal.sample(rng);
                mu * x + sigma * e
            })
            .collect();
        let t: Vec<f32> = (0..b).map(|_| rng.random()).collect();
        match net.ring_kernel() {
            Some(k) => {
                let (x, t, eps) = ring::training_rows(&x, &t, &eps, w, f, k);
                trainer.step(&x, &t, &eps, lr);
            }
            None => {
                trainer.step(&x, &t, &eps, lr);
            }
        }
    };
    for _ in 0..warmup {
        step(&mut rng);
    }
    let t0 = Instant::now();
    for _ in 0..steps {
        step(&mut rng);
    }
    steps as f64 / t0.elapsed().as_secs_f64()
}

/// Training steps/s of `cfg` with the fused trainer in float32 and (where the CPU has it)
/// bf16 products, as table lines and JSON keys.
pub fn fused_lines(
    cfg: &ScoreNetConfig,
    b: usize,
    warmup: usize,
    steps: usize,
    dev: &Device,
    lines: &mut Vec<(String, f64)>,
    json: &mut Value,
) {
    let init = cfg.init_seeded(dev, 0);
    let variants = [
        (Precision::F32, "", "fused"),
        (Precision::Bf16, ", bf16 products", "fused_bf16"),
    ];
    for (precision, label, key) in variants {
        if precision == Precision::Bf16 && Precision::Bf16.check().is_err() {
            continue;
        }
        let r = fused_train_rate(&init, cfg, b, 1e-3, warmup, steps, precision);
        lines.push((
            format!("training steps/s, fused CPU trainer{label} (batch {b})"),
            r,
        ));
        json[format!("{key}_train_steps_per_s")] = json!(r);
    }
}
