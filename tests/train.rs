//! Training: the loss falls, and a resumed run ends exactly where an uninterrupted one does.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use sda::assimilate::fused;
use sda::data::{Dataset, simulate};
use sda::mcs::System;
use sda::model::{Model, RunConfig};
use sda::nn::bf16;
use sda::nn::cpu::Precision;
use sda::score::net::{Architecture, Backbone, ScoreNetConfig, UNetPreset};
use sda::score::sde::VpSde;
use sda::score::to_vec;
use sda::train::{Engine, EpochStats, TrainConfig, train_with};

/// [`train_with`] on the default SDE and the CPU.
fn fit(
    d: &Dataset,
    net: ScoreNetConfig,
    cfg: &TrainConfig,
    dir: &Path,
    resume: bool,
    engine: Engine,
    progress: impl FnMut(&EpochStats),
) -> sda::error::Result<Model> {
    let device = Device::flex();
    train_with(
        d,
        net,
        VpSde::default(),
        cfg,
        Some(dir),
        resume,
        &device,
        engine,
        progress,
    )
}

fn data(name: &str) -> (PathBuf, Dataset) {
    let dir = std::env::temp_dir().join(format!("sda-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    simulate(
        &dir.join("data"),
        System::from_name("lorenz63").unwrap(),
        80,
        64,
        256,
        0,
    )
    .unwrap();
    let d = Dataset::load(&dir.join("data")).unwrap();
    (dir, d)
}

/// Trains `net()` into `run_dir` and kills the run (a panic in the progress callback) when
/// epoch `epoch` reports; returns the last epoch that reported.
fn kill_at(epoch: usize, d: &Dataset, cfg: &TrainConfig, run_dir: &Path, engine: Engine) -> usize {
    let mut last = 0;
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fit(d, net(), cfg, run_dir, false, engine, |s| {
            last = s.epoch;
            if s.epoch == epoch {
                panic!("killed");
            }
        })
    }));
    last
}

/// A few epochs of batch 20 at `precision` (the default's other settings).
fn short(epochs: usize, precision: Precision) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 20,
        precision,
        ..TrainConfig::default()
    }
}

fn net() -> ScoreNetConfig {
    ScoreNetConfig {
        architecture: Architecture::Local,
        window: 5,
        features: 3,
        backbone: Backbone::Mlp {
            width: 64,
            depth: 2,
        },
        embedding: 16,
    }
}

#[test]
fn short_training_on_lorenz_lowers_the_loss() {
    // At initialisation ε_φ ≈ noise-free guess, so the ε-MSE starts near or above 1; a few
    // hundred AdamW steps must at least halve the validation loss.
    let (dir, d) = data("loss");
    let cfg = TrainConfig {
        epochs: 60,
        batch_size: 16,
        lr: 2e-3,
        ..TrainConfig::default()
    };
    let mut stats: Vec<EpochStats> = Vec::new();
    fit(
        &d,
        net(),
        &cfg,
        &dir.join("run"),
        false,
        Engine::Auto,
        |s| stats.push(*s),
    )
    .unwrap();
    let first = stats[0].valid_loss;
    let last = stats
        .iter()
        .rev()
        .take(5)
        .map(|s| s.valid_loss)
        .sum::<f64>()
        / 5.0;
    assert!(last < 0.5 * first, "valid loss {first:.3} → {last:.3}");
    assert!(dir.join("run/stats.csv").exists() && dir.join("run/model.safetensors").exists());
}

/// `max |a − b|` over matching elements.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max)
}

/// Asserts that two runs' train and valid losses agree within 1e-3, epoch by epoch.
fn same_losses(a: &[EpochStats], b: &[EpochStats]) {
    for (p, q) in a.iter().zip(b) {
        for (x, y) in [(p.train_loss, q.train_loss), (p.valid_loss, q.valid_loss)] {
            assert!(
                (x - y).abs() < 1e-3 * x,
                "epoch {}: losses {x} and {y}",
                p.epoch
            );
        }
    }
}

/// The composed ε of a model on a fixed batch of trajectories.
fn estimate(m: &sda::model::Model) -> Vec<f32> {
    let device = Device::flex();
    let x = sda::score::sampler::normal(
        [4, 9, 3],
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0),
        &device,
    );
    let score = sda::score::net::WindowScore::new(&m.net, &m.config.net);
    to_vec(sda::score::NoiseEstimator::eps(&score, x, 0.5))
}

#[test]
fn fused_and_burn_engines_train_the_same_network() {
    // Same initialisation, windows and AdamW: the two engines differ by rounding only (in
    // float32: burn's engine has no bf16 products).
    let (dir, d) = data("engines");
    let cfg = short(3, Precision::F32);
    let run = |engine: Engine, name: &str| {
        let mut stats: Vec<EpochStats> = Vec::new();
        let m = fit(&d, net(), &cfg, &dir.join(name), false, engine, |s| {
            stats.push(*s)
        })
        .unwrap();
        (estimate(&m), stats)
    };
    let (eb, sb) = run(Engine::Burn, "burn");
    let (ef, sf) = run(Engine::Fused, "fused");
    same_losses(&sb, &sf);
    let diff = max_abs_diff(&eb, &ef);
    let scale = eb.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-3 * scale, "ε differs by {diff} (scale {scale})");
    // And training moved the weights well beyond that difference.
    let init = fit(
        &d,
        net(),
        &TrainConfig {
            epochs: 1,
            lr: 1e-12,
            ..cfg.clone()
        },
        &dir.join("init"),
        false,
        Engine::Burn,
        |_| {},
    )
    .unwrap();
    let moved = max_abs_diff(&estimate(&init), &eb);
    assert!(
        moved > 100.0 * diff,
        "training moved ε by {moved}, engines differ by {diff}"
    );
}

#[test]
#[cfg_attr(not(bf16_cpu), ignore = "this CPU has no AVX512-BF16")]
fn bf16_training_follows_float32_training_and_differs_from_it() {
    // The --precision of the run must reach the trainer: its losses differ from float32's
    // by bf16 rounding, small against the loss, and not at all is a bug.
    let (dir, d) = data("bf16");
    let wide = ScoreNetConfig {
        backbone: Backbone::Mlp {
            width: 64,
            depth: 2,
        },
        embedding: 16,
        ..net()
    };
    let run = |precision, name: &str| {
        let cfg = short(3, precision);
        let mut stats: Vec<EpochStats> = Vec::new();
        fit(
            &d,
            wide.clone(),
            &cfg,
            &dir.join(name),
            false,
            Engine::Auto,
            |s| stats.push(*s),
        )
        .unwrap();
        stats
    };
    let a = run(Precision::F32, "f32");
    let b = run(Precision::Bf16, "bf16");
    for (a, b) in a.iter().zip(&b) {
        let d = (a.train_loss - b.train_loss).abs();
        assert!(
            d > 0.0 && d < 2e-2 * a.train_loss,
            "epoch {}: {} and {}",
            a.epoch,
            a.train_loss,
            b.train_loss
        );
    }
}

#[test]
fn bf16_is_refused_where_it_cannot_run() {
    // The burn engine has no bf16 products; a CPU without AVX512-BF16 neither.
    let (dir, d) = data("bf16-refused");
    let cfg = TrainConfig {
        epochs: 1,
        precision: Precision::Bf16,
        ..TrainConfig::default()
    };
    let err = fit(
        &d,
        net(),
        &cfg,
        &dir.join("run"),
        false,
        Engine::Burn,
        |_| {},
    )
    .err()
    .expect("bf16 with the burn engine is refused")
    .to_string();
    assert!(err.contains("--precision"), "{err}");
    assert!(!dir.join("run/model.safetensors").exists());
}

#[test]
fn auto_precision_is_bf16_only_on_the_fused_network_where_it_runs() {
    let mlp = net(); // width 64: whole blocks of 16 columns
    let unet = ScoreNetConfig::unet(1, [2, 8, 8], UNetPreset::Reduced);
    let device = Device::flex();
    // Sampling runs the fused network for MLPs on the CPU device, never for U-Nets.
    assert!(fused(&mlp, &device) && !fused(&unet, &device));
    let err = Precision::Bf16
        .resolve(mlp.fused_width(false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--precision bf16"), "{err}");
    // A width that is no multiple of 16 has no bf16 products in its wide layers.
    let narrow = ScoreNetConfig {
        backbone: Backbone::Mlp {
            width: 40,
            depth: 2,
        },
        ..net()
    };
    use Precision::{Auto, Bf16, F32};
    // (asked for, network, fused, what it stands for; None: refused). Not fused: burn's
    // engine, or any device but the CPU.
    let mut cases = vec![
        (Auto, &unet, false, Some(F32)),
        (Auto, &unet, true, Some(F32)),
        (Auto, &mlp, false, Some(F32)),
        (F32, &mlp, true, Some(F32)),
        (Bf16, &mlp, false, None),
        (Bf16, &unet, true, None),
        (Auto, &narrow, true, Some(F32)),
    ];
    // Where the fused network runs, what the CPU has decides.
    if cfg!(bf16_cpu) {
        cases.extend([
            (Auto, &mlp, true, Some(Bf16)),
            (Bf16, &mlp, true, Some(Bf16)),
            (Bf16, &narrow, true, Some(Bf16)),
        ]);
    } else {
        cases.extend([(Auto, &mlp, true, Some(F32)), (Bf16, &mlp, true, None)]);
    }
    for (asked, network, fused, expected) in cases {
        assert_eq!(
            asked.resolve(network.fused_width(fused)).ok(),
            expected,
            "{asked} on {:?}, fused {fused}",
            network.backbone
        );
    }
}

#[test]
fn config_json_records_the_precision_that_ran() {
    let (dir, d) = data("auto");
    let cfg = short(1, Precision::Auto);
    assert_eq!(cfg.precision, Precision::Auto);
    let expected = if bf16::available() { "bf16" } else { "f32" };
    for (engine, name, precision) in [
        (Engine::Auto, "fused", expected),
        (Engine::Burn, "burn", "f32"),
    ] {
        let m = fit(&d, net(), &cfg, &dir.join(name), false, engine, |_| {}).unwrap();
        let text = std::fs::read_to_string(dir.join(name).join("config.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["train"]["precision"], precision, "{name}: {text}");
        assert_eq!(m.config.train.precision.to_string(), precision);
    }
}

/// Samples of a 1-epoch prior drawn with `precision`.
fn auto_sampling_draws(name: &str) -> impl Fn(Precision) -> Vec<f32> {
    use sda::assimilate::{SampleConfig, sample};
    let (dir, d) = data(name);
    let cfg = short(1, Precision::Auto);
    let m = fit(
        &d,
        net(),
        &cfg,
        &dir.join("run"),
        false,
        Engine::Auto,
        |_| {},
    )
    .unwrap();
    move |precision| {
        let cfg = SampleConfig {
            length: 9,
            samples: 2,
            batch: 2,
            steps: 4,
            corrections: 1,
            tau: 0.25,
            likelihood: sda::score::guidance::Likelihood::Sda { gamma: 0.0 },
            composition: Default::default(),
            precision,
            seed: 3,
            // A 1-epoch prior: the precision is the point, not the samples.
            guard: false,
            ..Default::default()
        };
        sample(&m, None, &cfg, &Device::flex(), |_| {})
            .unwrap()
            .data
    }
}

#[test]
#[cfg_attr(not(bf16_cpu), ignore = "this CPU has no AVX512-BF16")]
fn auto_sampling_runs_bf16_on_a_cpu_with_avx512_bf16() {
    let draw = auto_sampling_draws("auto-sample-bf16");
    let (auto, float32) = (draw(Precision::Auto), draw(Precision::F32));
    assert_eq!(auto, draw(Precision::Bf16));
    assert!(auto != float32, "auto sampled in float32");
}

#[test]
#[cfg_attr(
    bf16_cpu,
    ignore = "this CPU has AVX512-BF16: auto's bf16 sampling is tested instead"
)]
fn auto_sampling_runs_f32_on_a_cpu_without_avx512_bf16() {
    let draw = auto_sampling_draws("auto-sample-f32");
    assert_eq!(draw(Precision::Auto), draw(Precision::F32));
}

#[test]
fn config_json_precisions_of_older_runs_still_load() {
    for (text, p) in [("\"f32\"", Precision::F32), ("\"bf16\"", Precision::Bf16)] {
        assert_eq!(serde_json::from_str::<Precision>(text).unwrap(), p);
    }
    // A run from before precisions were offered names none: it trained in float32, and an
    // auto resume keeps float32 on any CPU (a run keeps the precision it started with).
    let (dir, d) = data("old-config");
    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 16,
        checkpoint_every: 2,
        precision: Precision::F32,
        ..TrainConfig::default()
    };
    let run_dir = dir.join("run");
    kill_at(3, &d, &cfg, &run_dir, Engine::Auto);
    let path = run_dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let train = json["train"].as_object_mut().unwrap();
    assert_eq!(train.remove("precision").unwrap(), "f32");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    assert_eq!(
        RunConfig::read(&path).unwrap().train.precision,
        Precision::F32
    );
    let auto = TrainConfig {
        precision: Precision::Auto,
        ..cfg
    };
    let m = fit(&d, net(), &auto, &run_dir, true, Engine::Auto, |_| {}).unwrap();
    assert_eq!(m.config.train.precision, Precision::F32);
}

#[test]
fn a_fused_run_resumes_only_with_the_fused_engine() {
    let (dir, d) = data("mixed");
    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 16,
        checkpoint_every: 2,
        ..TrainConfig::default()
    };
    let run_dir = dir.join("run");
    kill_at(3, &d, &cfg, &run_dir, Engine::Fused);
    let err = fit(&d, net(), &cfg, &run_dir, true, Engine::Burn, |_| {})
        .err()
        .expect("a burn resume of a fused run is refused")
        .to_string();
    assert!(err.contains("--engine fused"), "{err}");
}

#[test]
fn resumed_training_equals_uninterrupted_training() {
    resume_case("resume-fused", Engine::Fused);
}

#[test]
fn resumed_burn_training_equals_uninterrupted_training() {
    resume_case("resume-burn", Engine::Burn);
}

fn resume_case(name: &str, engine: Engine) {
    resume_case_with(name, engine, None)
}

#[test]
fn resumed_training_with_a_weight_average_equals_uninterrupted_training() {
    // The average resumes from its own checkpoint file: the same averaged network, and it is
    // not the raw one.
    resume_case_with("resume-ema", Engine::Fused, Some(0.9));
}

fn resume_case_with(name: &str, engine: Engine, ema: Option<f64>) {
    let (dir, d) = data(name);
    let full = TrainConfig {
        epochs: 6,
        batch_size: 16,
        checkpoint_every: 3,
        ema,
        ..TrainConfig::default()
    };
    let a = fit(&d, net(), &full, &dir.join("a"), false, engine, |_| {}).unwrap();
    // Interrupt after the checkpoint at epoch 3: run 3 epochs, then put the full config back
    // and resume (this is what a killed run leaves behind, a checkpoint at epoch 3).
    let b_dir = dir.join("b");
    assert_eq!(kill_at(4, &d, &full, &b_dir, engine), 4);
    let b = fit(&d, net(), &full, &b_dir, true, engine, |_| {}).unwrap();
    let (ea, eb) = (estimate(&a), estimate(&b));
    let diff = max_abs_diff(&ea, &eb);
    assert!(diff < 1e-5, "resumed model differs by {diff}");
    let csv = std::fs::read_to_string(b_dir.join("stats.csv")).unwrap();
    assert_eq!(
        csv,
        std::fs::read_to_string(dir.join("a/stats.csv")).unwrap()
    );
    if ema.is_some() {
        let raw = fit(
            &d,
            net(),
            &TrainConfig {
                ema: None,
                ..full.clone()
            },
            &dir.join("raw"),
            false,
            engine,
            |_| {},
        )
        .unwrap();
        let apart = max_abs_diff(&estimate(&raw), &ea);
        assert!(
            apart > 1e3 * diff.max(1e-7),
            "average and raw weights differ by {apart}"
        );
    }
}

#[test]
fn fused_and_burn_engines_train_the_same_ring_network() {
    // The fused engine trains a ring network on its positions' patches; burn trains the
    // same function through its own gather: same losses epoch by epoch, same network after.
    let dir = std::env::temp_dir().join(format!("sda-train-ring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut system = System::from_name("lorenz96").unwrap();
    if let System::Lorenz96(l) = &mut system {
        l.n = 12;
    }
    simulate(&dir.join("data"), system, 40, 32, 64, 1).unwrap();
    let d = Dataset::load(&dir.join("data")).unwrap();
    let ring = ScoreNetConfig {
        architecture: Architecture::Local,
        window: 3,
        features: 12,
        backbone: Backbone::Ring {
            kernel: 5,
            width: 32,
            depth: 2,
        },
        embedding: 8,
    };
    let cfg = short(3, Precision::F32);
    let run = |engine: Engine, name: &str| {
        let mut stats: Vec<EpochStats> = Vec::new();
        let m = fit(
            &d,
            ring.clone(),
            &cfg,
            &dir.join(name),
            false,
            engine,
            |s| stats.push(*s),
        )
        .unwrap();
        let x = sda::score::sampler::normal(
            [2, 7, 12],
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0),
            &Device::flex(),
        );
        let score = sda::score::net::WindowScore::new(&m.net, &m.config.net);
        (
            to_vec(sda::score::NoiseEstimator::eps(&score, x, 0.5)),
            stats,
        )
    };
    let (eb, sb) = run(Engine::Burn, "burn");
    let (ef, sf) = run(Engine::Fused, "fused");
    same_losses(&sb, &sf);
    let scale = eb.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    assert!(max_abs_diff(&eb, &ef) < 1e-3 * scale);
    assert!(sb[2].train_loss < sb[0].train_loss, "{sb:?}");
    // With a masked loss too: the fused engine's rows are positions, and their weights must
    // follow the same reordering as the noise.
    let mut d = d;
    let flags = |n: usize, k: usize| -> Vec<f32> {
        (0..n)
            .map(|i| {
                if (i * 7 + k).is_multiple_of(5) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect()
    };
    d.observed = Some(sda::data::observed::Observed {
        train: flags(d.train.data.len(), 1),
        valid: flags(d.valid.data.len(), 3),
    });
    let masked = |engine: Engine, name: &str| {
        let mut stats: Vec<EpochStats> = Vec::new();
        fit(
            &d,
            ring.clone(),
            &cfg,
            &dir.join(name),
            false,
            engine,
            |s| stats.push(*s),
        )
        .unwrap();
        stats
    };
    let (mb, mf) = (
        masked(Engine::Burn, "mburn"),
        masked(Engine::Fused, "mfused"),
    );
    same_losses(&mb, &mf);
    assert!((mb[0].valid_loss - sb[0].valid_loss).abs() > 1e-4 * sb[0].valid_loss);
}

#[test]
fn the_masked_loss_is_the_same_in_both_engines_and_all_ones_change_nothing() {
    // A third of the values missing (their stored value is the mean, 0 in normalised units):
    // both engines count the same observed values and agree to rounding.
    let (dir, mut d) = data("masked");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let mut flags = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                if rand::Rng::random::<f32>(&mut rng) < 0.33 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect()
    };
    let (train, valid) = (flags(d.train.data.len()), flags(d.valid.data.len()));
    let mean = &d.info.normalisation.mean;
    for (a, w) in [(&mut d.train, &train), (&mut d.valid, &valid)] {
        for (i, (v, &k)) in a.data.iter_mut().zip(w.iter()).enumerate() {
            if k == 0.0 {
                *v = mean[i % 3] as f32;
            }
        }
    }
    let cfg = short(3, Precision::F32);
    let run = |d: &Dataset, engine: Engine, name: &str| {
        let mut stats: Vec<EpochStats> = Vec::new();
        fit(d, net(), &cfg, &dir.join(name), false, engine, |s| {
            stats.push(*s)
        })
        .unwrap();
        stats
    };
    let plain = run(&d, Engine::Fused, "plain");
    d.observed = Some(sda::data::observed::Observed {
        train: vec![1.0; train.len()],
        valid: vec![1.0; valid.len()],
    });
    let ones = run(&d, Engine::Fused, "ones");
    for (p, q) in plain.iter().zip(&ones) {
        assert_eq!((p.train_loss, p.valid_loss), (q.train_loss, q.valid_loss));
    }
    d.observed = Some(sda::data::observed::Observed { train, valid });
    let fused = run(&d, Engine::Fused, "fused");
    let burn = run(&d, Engine::Burn, "burn");
    same_losses(&fused, &burn);
    // And the masked loss is not the plain one: the mean-filled values are easy to denoise
    // at low noise, so leaving them out changes the validation loss.
    assert!(
        (fused[0].valid_loss - plain[0].valid_loss).abs() > 1e-3 * plain[0].valid_loss,
        "{} vs {}",
        fused[0].valid_loss,
        plain[0].valid_loss
    );
}

#[test]
fn a_preconditioned_network_is_right_at_high_noise_from_the_first_epoch() {
    // The residual of c(t) x(t) is learnt instead of ε: at t in [0.8, 1] the Gaussian denoiser
    // alone has a mean square error μ²/(μ² + σ²) ≤ 0.012 for unit-variance data, so after 12
    // steps the highest level's validation loss is what the residual's initial output adds
    // (about 0.1); a plain network must learn the near-identity first (about 1).
    let (dir, d) = data("precondition");
    let run = |precondition: bool, name: &str| {
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 16,
            precondition,
            ..TrainConfig::default()
        };
        let mut stats: Vec<EpochStats> = Vec::new();
        let model = fit(&d, net(), &cfg, &dir.join(name), false, Engine::Auto, |s| {
            stats.push(*s)
        })
        .unwrap();
        (stats, model)
    };
    let (pre, model) = run(true, "pre");
    let (plain, _) = run(false, "plain");
    let high = |s: &[EpochStats]| s[s.len() - 1].valid_levels[sda::train::LEVELS - 1];
    assert!(high(&pre) < 0.2, "preconditioned: {}", high(&pre));
    assert!(
        high(&plain) > 4.0 * high(&pre),
        "plain {} vs {}",
        high(&plain),
        high(&pre)
    );
    // The run folder says so, and reads back.
    assert!(model.config.train.precondition);
    let back = RunConfig::read(&dir.join("pre/config.json")).unwrap();
    assert!(back.train.precondition);
    let plain: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plain/config.json")).unwrap())
            .unwrap();
    assert!(
        plain["train"].get("precondition").is_none(),
        "a plain run's config.json is as before"
    );
}

/// [`fit`] without a run folder: the network trained in memory.
fn fit_in_memory(
    d: &Dataset,
    cfg: &TrainConfig,
    resume: bool,
    progress: impl FnMut(&EpochStats),
) -> sda::error::Result<Model> {
    let device = Device::flex();
    train_with(
        d,
        net(),
        VpSde::default(),
        cfg,
        None,
        resume,
        &device,
        Engine::Auto,
        progress,
    )
}

/// Each tensor's bytes by name in a safetensors file (the header's order of names is not
/// fixed from one write to the next).
fn tensors_of(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let v = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(v[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&v[8..8 + n]).unwrap();
    let data = &v[8 + n..];
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .map(|(k, t)| {
            let at = |i: usize| t["data_offsets"][i].as_u64().unwrap() as usize;
            (k.clone(), data[at(0)..at(1)].to_vec())
        })
        .collect()
}

#[test]
fn a_network_trained_in_memory_is_the_one_a_run_folder_gets_and_nothing_is_written() {
    // `train_with(.., None, ..)` (Python's `sda.train` without `output`) trains the same
    // network as a run written to a folder, bit for bit, and writes no file.
    let (dir, d) = data("memory");
    let cfg = short(6, Precision::F32);
    let on_disk = fit(
        &d,
        net(),
        &cfg,
        &dir.join("run"),
        false,
        Engine::Auto,
        |_| {},
    )
    .unwrap();
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut epochs = 0;
    let in_memory = fit_in_memory(&d, &cfg, false, |_| epochs += 1).unwrap();
    assert_eq!(epochs, 6);
    let after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "training in memory wrote files");
    in_memory.save(&dir.join("saved")).unwrap();
    let (saved, run) = (
        tensors_of(&dir.join("saved/model.safetensors")),
        tensors_of(&dir.join("run/model.safetensors")),
    );
    assert!(saved.len() > 4, "{:?}", saved.keys());
    assert!(saved == run, "the weights differ");
    assert_eq!(in_memory.config.train.epochs, on_disk.config.train.epochs);
    // Resuming needs a folder.
    let err = fit_in_memory(&d, &cfg, true, |_| {})
        .err()
        .expect("resume without a folder is refused")
        .to_string();
    assert!(err.contains("in memory"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
