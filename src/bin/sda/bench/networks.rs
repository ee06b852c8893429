//! The networks measured: the Lorenz-96 ring network, the Lorenz-63 local score and the
//! Kolmogorov U-Net, each as one [`Report`].

use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sda::nn::cpu::Precision;
use sda::score::guidance::{Likelihood, Observation};
use sda::score::net::{CpuWindowScore, ScoreNetConfig, WindowScore};
use sda::score::operator::Operator;
use sda::score::sampler::{PcSampler, normal};
use sda::score::sde::VpSde;
use sda::score::{NoiseEstimator, tensor, to_vec};
use serde_json::json;

use super::timing::{fused_lines, guided, time_ms, train_rate};
use super::{Args, Report};

/// The Lorenz-96 ring network `sda train` picks (k = 2, 40 positions, kernel 9, width 128,
/// depth 5): training steps/s with burn's autodiff and the fused trainer.
pub fn ring(a: &Args, dev: &Device) -> Result<Report> {
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
pub fn lorenz(a: &Args, dev: &Device) -> Result<Report> {
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
    let bf16 = cpu && Precision::Bf16.check().is_ok();
    if cpu {
        let steps = a.steps.unwrap_or(200);
        fused_lines(&cfg, b, warmup, steps, dev, &mut lines, &mut json);
    }
    let fused_bf16 = bf16.then(|| CpuWindowScore::new(&net, &cfg).with_precision(Precision::Bf16));
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
        // What the fused twins compute, beside their speed: their guided ε̂ against burn's
        // (evaluated only where a fused twin runs: the CPU).
        let exact = (fused.is_some() || fused_bf16.is_some())
            .then(|| to_vec(guided(&score, &obs, lik).eps(x.clone(), 0.5)));
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
            let got = to_vec(guided(fused, &obs, lik).eps(x.clone(), 0.5));
            let exact = exact.as_deref().expect("computed where a fused twin runs");
            row[format!("{key}_rel_diff")] = json!(relative_difference(&got, exact));
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

/// max |a − b| / max |b|: how far a fused network's output is from burn's on the same input.
fn relative_difference(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() as f64));
    diff / scale
}

/// Scenario 1 of docs/method.md §8 on a trajectory of `l` states of `(2, s, s)` fields: every 4th
/// state, 8×8 block means, noise std 0.1; unnormalised data (mean 0, scale 1).
pub fn scenario1(l: usize, s: usize, dev: &Device) -> Result<Observation> {
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
/// lr 2e-4, one guided evaluation per --lengths (γ = 1e-2), and a whole assimilation.
pub fn unet(a: &Args, dev: &Device) -> Result<Report> {
    let s = a.size;
    if s == 0 || !s.is_multiple_of(8) {
        bail!("--size {s}: needs a positive multiple of 8 (8×8 block means, 3 U-Net levels)");
    }
    if let Some(&l) = a.states.iter().find(|&&l| l < 5) {
        bail!("--lengths {l}: a trajectory needs at least the window's 5 states");
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
