//! `sda bench`: speed of the score networks on any device: training steps per second and the
//! time of one guided evaluation (forward + input gradient through the network, the SDA
//! likelihood, docs/method.md §5), for the Lorenz-63 MLP (§7) and the Kolmogorov U-Net (§8).
//! `benches/pytorch_lorenz.py` and `benches/pytorch_unet.py` measure the same networks, losses
//! and guided evaluations in PyTorch.
//!
//! The code is the same on every device (the CPU twin of a GPU figure is the same call on
//! `--device cpu`); only the fused CPU MLP is CPU-only and is reported on the CPU alone.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::{Distribution, FloatDType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution as _, StandardNormal};
use sda::nn::cpu::Precision as CpuPrecision;
use sda::nn::cpu_train::{AdamW, CpuTrainer};
use sda::nn::ring;
use sda::score::guidance::{Guided, Likelihood, Observation};
use sda::score::net::{CpuWindowScore, ScoreNet, ScoreNetConfig, UNetPreset, WindowScore};
use sda::score::operator::Operator;
use sda::score::sampler::{PcSampler, normal};
use sda::score::sde::VpSde;
use sda::score::{NoiseEstimator, tensor};
use serde_json::{Value, json};

use crate::common::{device, device_name};

/// Which network to measure.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// The Lorenz-63 local score: k = 2, MLP width 256, depth 5 (the paper's, docs/method.md §7).
    Lorenz,
    /// The Kolmogorov local score: k = 2, U-Net on 5 states of (u, v) + the forcing (the paper's,
    /// docs/method.md §8).
    Unet,
    /// The Lorenz-96 ring score: k = 2, 40 positions, kernel 9, width 128, depth 5 (what
    /// `sda train` picks for Lorenz-96): training only, burn and fused.
    Ring,
    /// Lorenz and U-Net, one after the other.
    All,
}

/// The device's default float type for every tensor of the run.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// 32-bit floats (matrix products may still use TF32 tensor cores where the backend's
    /// autotuner finds them faster and the device has them).
    F32,
    /// Half precision everywhere: weights, optimiser state, activations and the sampler state.
    /// A speed probe only: not safe for training or sampling.
    F16,
    /// bfloat16 everywhere (same caveat; Vulkan devices usually lack bf16 arithmetic).
    Bf16,
}

/// Measure training steps per second and the time of one guided evaluation (forward + input
/// gradient) of the Lorenz-63 MLP (B trajectories of L states) and/or the Kolmogorov U-Net
/// (one trajectory of each of --states, scenario 1 observations `stride:4|coarsen:8`), and the
/// wall time of a whole U-Net assimilation (T steps, C corrections). Figures are medians after
/// warm-up, each reported with the device's name.
#[derive(clap::Args)]
pub struct Args {
    /// Network(s) to measure.
    #[arg(long, value_enum, default_value_t = Network::Lorenz)]
    pub network: Network,
    /// Training steps to time [default: 200 for Lorenz, 50 for the U-Net].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Untimed training steps and evaluations first (kernel compilation on GPUs)
    /// [default: 20 for Lorenz, 5 for the U-Net].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Windows per training step [default: 64 for Lorenz, 32 for the U-Net].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Lorenz: trajectories per guided evaluation, one figure each [default: 64 on the CPU,
    /// 64,1024 on GPUs].
    #[arg(long, value_delimiter = ',')]
    pub trajectories: Option<Vec<usize>>,
    /// Lorenz: states per trajectory.
    #[arg(long, default_value_t = 65)]
    pub length: usize,
    /// Guided evaluations to time (median reported) [default: 30 for Lorenz, 10 for the U-Net].
    #[arg(long)]
    pub repeats: Option<usize>,
    /// U-Net size: `paper` (96, 192, 384 channels, 3 blocks) or `reduced` (CPU-sized).
    #[arg(long, value_enum, default_value_t = UNetPreset::Paper)]
    pub preset: UNetPreset,
    /// U-Net: side of the square grid of (u, v) fields (a multiple of 8).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// U-Net: states of the one trajectory of each guided evaluation, one figure each.
    #[arg(long, value_delimiter = ',', default_value = "8,64")]
    pub states: Vec<usize>,
    /// U-Net: states of the timed assimilation (0: skip it).
    #[arg(long, default_value_t = 8)]
    pub assimilation_states: usize,
    /// U-Net: sampler steps T of the timed assimilation.
    #[arg(long, default_value_t = 256)]
    pub sampler_steps: usize,
    /// U-Net: Langevin corrections C of the timed assimilation.
    #[arg(long, default_value_t = 1)]
    pub corrections: usize,
    /// Float type of every tensor (f16/bf16: speed probes, see `--help`).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Print one JSON object per network (one per line) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device: cpu, vulkan[:N] or cuda[:N] (GPU builds only).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// One network's figures: table lines and the JSON object.
struct Report {
    title: String,
    lines: Vec<(String, f64)>,
    json: Value,
}

pub fn run(a: Args) -> Result<()> {
    let mut dev = device(&a.device)?;
    let precision = match a.precision {
        Precision::F32 => "f32",
        Precision::F16 => "f16",
        Precision::Bf16 => "bf16",
    };
    let dtype = match a.precision {
        Precision::F32 => None,
        Precision::F16 => Some(FloatDType::F16),
        Precision::Bf16 => Some(FloatDType::BF16),
    };
    if let Some(dtype) = dtype {
        if !dev.supports_dtype(dtype) {
            bail!(
                "--precision {precision}: {} has no {precision} arithmetic",
                a.device
            );
        }
        dev.configure(dtype)
            .map_err(|e| anyhow::anyhow!("--precision {precision}: {e:?}"))?;
    }
    let name = device_name(&a.device, &dev);
    let mut reports = Vec::new();
    if matches!(a.network, Network::Lorenz | Network::All) {
        reports.push(lorenz(&a, &dev)?);
    }
    if matches!(a.network, Network::Unet | Network::All) {
        reports.push(unet(&a, &dev)?);
    }
    if a.network == Network::Ring {
        reports.push(ring(&a, &dev)?);
    }
    for mut r in reports {
        if a.json {
            r.json["device"] = json!(a.device);
            r.json["device_name"] = json!(name);
            r.json["precision"] = json!(precision);
            r.json["threads"] = json!(rayon::current_num_threads());
            println!("{}", rounded(r.json));
        } else {
            println!(
                "sda bench — {} on {name} ({}, {precision})",
                r.title, a.device
            );
            for (what, value) in &r.lines {
                println!("  {what:<52} {value:>10.2}");
            }
        }
    }
    Ok(())
}

/// `v` with every non-integer number rounded to 4 decimals, for reading.
fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().expect("f64");
            json!((x * 1e4).round() / 1e4)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

/// The SDA-guided posterior estimate of `prior` (docs/method.md §5) with the default schedule.
fn guided<'a>(
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
fn time_ms(warmup: usize, repeats: usize, f: impl Fn() -> Tensor<3>) -> f64 {
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
fn train_rate(
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
fn fused_train_rate(
    net: &ScoreNet,
    cfg: &ScoreNetConfig,
    b: usize,
    lr: f64,
    warmup: usize,
    steps: usize,
    precision: CpuPrecision,
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
fn fused_lines(
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
        (CpuPrecision::F32, "", "fused"),
        (CpuPrecision::Bf16, ", bf16 products", "fused_bf16"),
    ];
    for (precision, label, key) in variants {
        if precision == CpuPrecision::Bf16 && CpuPrecision::Bf16.check().is_err() {
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

/// The Lorenz-96 ring network `sda train` picks (k = 2, 40 positions, kernel 9, width 128,
/// depth 5): training steps/s with burn's autodiff and the fused trainer.
fn ring(a: &Args, dev: &Device) -> Result<Report> {
    let mut cfg = ScoreNetConfig::local(2, 40, 128);
    cfg.backbone = sda::score::net::Backbone::Ring {
        kernel: 9,
        width: 128,
        depth: 5,
    };
    let (b, warmup) = (a.batch_size.unwrap_or(64), a.warmup.unwrap_or(5));
    let steps = a.steps.unwrap_or(50);
    let (_, burn_sps) = train_rate(&cfg, b, 1e-3, warmup, steps, dev);
    let mut lines = vec![(
        format!("training steps/s, burn autodiff (batch {b})"),
        burn_sps,
    )];
    let mut json = json!({"network": "ring", "train_steps_per_s": burn_sps});
    if *dev == Device::flex() {
        fused_lines(&cfg, b, warmup, steps, dev, &mut lines, &mut json);
    }
    Ok(Report {
        title: "Lorenz-96 ring network (k = 2, 40 positions, kernel 9, width 128, depth 5)".into(),
        lines,
        json,
    })
}

/// The Lorenz-63 local score (k = 2, width 256, depth 5): training, and the guided evaluation
/// with `stride:8|select:0` observations (std 0.4, γ = 0.03) for each B of --trajectories.
fn lorenz(a: &Args, dev: &Device) -> Result<Report> {
    let cfg = ScoreNetConfig::local(2, 3, 256);
    let (b, warmup) = (a.batch_size.unwrap_or(64), a.warmup.unwrap_or(20));
    let repeats = a.repeats.unwrap_or(30);
    let (net, train_sps) = train_rate(&cfg, b, 1e-3, warmup, a.steps.unwrap_or(200), dev);
    let score = WindowScore::new(&net, &cfg);
    let cpu = *dev == Device::flex();
    let fused = cpu.then(|| CpuWindowScore::new(&net, &cfg));
    let l = a.length;
    let op = Operator::parse("stride:8|select:0")?;
    let m = op.output_shape(l, &[3])?.iter().product::<usize>();
    let obs = Observation {
        operator: op,
        state_shape: vec![3],
        y: tensor(vec![0.5; m], [1, m], dev),
        variance: Tensor::full([1, m], 0.16, dev),
        scale2: Tensor::full([1, m], 64.0, dev),
        mean: tensor(vec![0.0, 0.0, 25.0], [1, 1, 3], dev),
        scale: tensor(vec![8.0, 9.0, 8.6], [1, 1, 3], dev),
    };
    let lik = Likelihood::Sda { gamma: 0.03 };
    let mut rng = StdRng::seed_from_u64(0);
    let mut lines = vec![(format!("training steps/s (batch {b})"), train_sps)];
    let mut json = json!({"network": "lorenz", "train_steps_per_s": train_sps, "guided": []});
    let bf16 = cpu && CpuPrecision::Bf16.check().is_ok();
    if cpu {
        let steps = a.steps.unwrap_or(200);
        fused_lines(&cfg, b, warmup, steps, dev, &mut lines, &mut json);
    }
    let fused_bf16 =
        bf16.then(|| CpuWindowScore::new(&net, &cfg).with_precision(CpuPrecision::Bf16));
    let sizes = a
        .trajectories
        .clone()
        .unwrap_or(if cpu { vec![64] } else { vec![64, 1024] });
    for (i, &n) in sizes.iter().enumerate() {
        let x = normal([n, l, 3], &mut rng, dev);
        let g = time_ms(3, repeats, || guided(&score, &obs, lik).eps(x.clone(), 0.5));
        let f = time_ms(3, repeats, || score.eps(x.clone(), 0.5));
        lines.push((format!("guided evaluation ({n} × {l} states), ms"), g));
        lines.push((format!("forward only ({n} × {l} states), ms"), f));
        let mut row = json!({"trajectories": n, "length": l, "guided_eval_ms": g, "forward_ms": f});
        let variants = [(&fused, "", "fused"), (&fused_bf16, ", bf16", "fused_bf16")];
        for (score, label, key) in variants {
            let Some(fused) = score else { continue };
            let fg = time_ms(3, repeats, || guided(fused, &obs, lik).eps(x.clone(), 0.5));
            let ff = time_ms(3, repeats, || fused.eps(x.clone(), 0.5));
            lines.push((
                format!("guided evaluation, fused CPU MLP{label} ({n} × {l}), ms"),
                fg,
            ));
            lines.push((
                format!("forward only, fused CPU MLP{label} ({n} × {l}), ms"),
                ff,
            ));
            row[format!("{key}_guided_eval_ms")] = json!(fg);
            row[format!("{key}_forward_ms")] = json!(ff);
        }
        // The first size keeps the flat keys of earlier versions of this output.
        if i == 0 {
            for (k, v) in row.as_object().expect("object") {
                if k.ends_with("_ms") {
                    json[k] = v.clone();
                }
            }
        }
        json["guided"].as_array_mut().expect("array").push(row);
    }
    Ok(Report {
        title: "Lorenz-63 local score, k = 2, MLP width 256, depth 5".into(),
        lines,
        json,
    })
}

/// Scenario 1 of docs/method.md §8 on a trajectory of `l` states of `(2, s, s)` fields: every 4th
/// state, 8×8 block means, noise std 0.1; unnormalised data (mean 0, scale 1).
fn scenario1(l: usize, s: usize, dev: &Device) -> Result<Observation> {
    let shape = vec![2, s, s];
    let f = 2 * s * s;
    let op = Operator::parse("stride:4|coarsen:8")?;
    let m = op.output_shape(l, &shape)?.iter().product::<usize>();
    Ok(Observation {
        operator: op,
        state_shape: shape,
        y: Tensor::zeros([1, m], dev),
        variance: Tensor::full([1, m], 0.01, dev),
        scale2: Tensor::ones([1, m], dev),
        mean: Tensor::zeros([1, 1, f], dev),
        scale: Tensor::ones([1, 1, f], dev),
    })
}

/// The Kolmogorov local score (k = 2: 10 field channels + 1 forcing channel): training at
/// lr 2e-4, one guided evaluation per --states (γ = 1e-2), and a whole assimilation.
fn unet(a: &Args, dev: &Device) -> Result<Report> {
    let s = a.size;
    if s == 0 || !s.is_multiple_of(8) {
        bail!("--size {s}: needs a positive multiple of 8 (8×8 block means, 3 U-Net levels)");
    }
    if let Some(&l) = a.states.iter().find(|&&l| l < 5) {
        bail!("--states {l}: a trajectory needs at least the window's 5 states");
    }
    if (1..5).contains(&a.assimilation_states) {
        bail!("--assimilation-states: a trajectory needs at least the window's 5 states (or 0)");
    }
    let cfg = ScoreNetConfig::unet(2, [2, s, s], a.preset);
    let (b, warmup) = (a.batch_size.unwrap_or(32), a.warmup.unwrap_or(5));
    let repeats = a.repeats.unwrap_or(10);
    let (net, train_sps) = train_rate(&cfg, b, 2e-4, warmup, a.steps.unwrap_or(50), dev);
    let score = WindowScore::new(&net, &cfg);
    let likelihood = Likelihood::Sda { gamma: 1e-2 };
    let f = cfg.features;
    let mut rng = StdRng::seed_from_u64(0);
    let mut lines = vec![(format!("training steps/s (batch {b})"), train_sps)];
    let mut json = json!({
        "network": "unet",
        "describe": cfg.describe(),
        "size": s,
        "train_steps_per_s": train_sps,
        "guided": [],
    });
    for &l in &a.states {
        let obs = scenario1(l, s, dev)?;
        let guided = guided(&score, &obs, likelihood);
        let x = normal([1, l, f], &mut rng, dev);
        let g = time_ms(warmup.min(3), repeats, || guided.eps(x.clone(), 0.5));
        let fw = time_ms(warmup.min(3), repeats, || score.eps(x.clone(), 0.5));
        lines.push((format!("guided evaluation (1 × {l} states), ms"), g));
        lines.push((format!("forward only (1 × {l} states), ms"), fw));
        json["guided"]
            .as_array_mut()
            .expect("array")
            .push(json!({"states": l, "guided_eval_ms": g, "forward_ms": fw}));
    }
    let l = a.assimilation_states;
    if l > 0 {
        let obs = scenario1(l, s, dev)?;
        let guided = guided(&score, &obs, likelihood);
        let sampler = PcSampler {
            sde: VpSde::default(),
            steps: a.sampler_steps,
            corrections: a.corrections,
            tau: 0.5,
        };
        let t0 = Instant::now();
        let x = sampler.sample(&guided, [1, l, f], &mut rng, dev, |_| {});
        let finite = x.into_data().iter::<f32>().all(f32::is_finite);
        let secs = t0.elapsed().as_secs_f64();
        let (t, c) = (a.sampler_steps, a.corrections);
        lines.push((
            format!("assimilation of {l} states (T = {t}, C = {c}), s"),
            secs,
        ));
        json["assimilation"] =
            json!({"states": l, "steps": t, "corrections": c, "seconds": secs, "finite": finite});
    }
    Ok(Report {
        title: format!("Kolmogorov local score, k = 2, {} on {s}²", cfg.describe()),
        lines,
        json,
    })
}
