//! The Vulkan device against the CPU: the MLP's and a small U-Net's ε and input VJP, and a short
//! sampling run, with the same weights and the same noise. Needs a `--features vulkan` or
//! `--features wgpu` build and a Vulkan device (a GPU, or Mesa's software lavapipe:
//! `scripts/vulkan-cpu-check.sh` sets one up); hence `#[ignore]`d in a plain `cargo test`.
#![cfg(any(feature = "vulkan", feature = "wgpu"))]

use burn::prelude::*;
use burn::tensor::wgpu::WgpuBackend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use sda::model::{load_weights, save_weights};
use sda::score::net::{Backbone, ScoreNet, ScoreNetConfig, UNetPreset, WindowScore};
use sda::score::sampler::PcSampler;
use sda::score::sde::VpSde;
use sda::score::{NoiseEstimator, tensor, to_vec};

fn vulkan() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| {
            Device::wgpu_options()
                .graphics_api(WgpuBackend::Vulkan)
                .init()
                .expect("a Vulkan device (see scripts/vulkan-cpu-check.sh)")
        })
        .clone()
}

/// The network initialised on the CPU from `seed`, and the same weights on the Vulkan device.
fn twins(config: &ScoreNetConfig, name: &str) -> (ScoreNet, ScoreNet) {
    let cpu = config.init_seeded(&Device::flex(), 7);
    let path = std::env::temp_dir().join(format!(
        "sda-vulkan-{name}-{}.safetensors",
        std::process::id()
    ));
    save_weights(&cpu, &path).unwrap();
    let mut gpu = config.init(&vulkan());
    load_weights(&mut gpu, &path).unwrap();
    let _ = std::fs::remove_file(&path);
    (cpu, gpu)
}

fn normal(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// `max |a − b|` and `max |a|`.
fn diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    (d, a.iter().fold(0.0f32, |m, v| m.max(v.abs())))
}

/// ε and the VJP of `v` at `x` (shape `[b, l, f]`) on both devices; prints and checks the
/// largest differences relative to the largest CPU value.
fn compare(name: &str, config: &ScoreNetConfig, shape: [usize; 3]) {
    let (cpu, gpu) = twins(config, name);
    let n = shape.iter().product();
    let (x, v) = (normal(n, 1), normal(n, 2));
    let run = |net: &ScoreNet, device: &Device| {
        let score = WindowScore::new(net, config);
        let (e, vjp) = score.eps_vjp(tensor(x.clone(), shape, device), 0.4);
        let g = vjp(tensor(v.clone(), shape, device));
        (to_vec(e), to_vec(g))
    };
    let (e_cpu, g_cpu) = run(&cpu, &Device::flex());
    let (e_gpu, g_gpu) = run(&gpu, &vulkan());
    let (de, se) = diff(&e_cpu, &e_gpu);
    let (dg, sg) = diff(&g_cpu, &g_gpu);
    println!(
        "{name}: ε max |Vulkan − CPU| = {de:.2e} (max |ε| {se:.2}, relative {:.1e}); input VJP max |Vulkan − CPU| = {dg:.2e} (max {sg:.2}, relative {:.1e})",
        de / se,
        dg / sg
    );
    assert!(de / se < 1e-3, "{name}: ε differs by {de}");
    assert!(dg / sg < 1e-3, "{name}: VJP differs by {dg}");
}

#[test]
#[ignore = "needs a Vulkan device: scripts/vulkan-cpu-check.sh"]
fn mlp_eps_and_vjp_match_the_cpu() {
    compare("MLP (k = 2, width 64, depth 3)", &mlp(), [4, 9, 3]);
}

fn mlp() -> ScoreNetConfig {
    let mut c = ScoreNetConfig::local(2, 3, 64);
    c.backbone = Backbone::Mlp {
        width: 64,
        depth: 3,
    };
    c
}

#[test]
#[ignore = "needs a Vulkan device: scripts/vulkan-cpu-check.sh"]
fn unet_eps_and_vjp_match_the_cpu() {
    let mut c = ScoreNetConfig::unet(1, [2, 16, 16], UNetPreset::Reduced);
    if let Backbone::Unet { hidden, blocks, .. } = &mut c.backbone {
        *hidden = vec![8, 16];
        *blocks = 1;
    }
    compare(
        "U-Net (k = 1, 2 × 16 × 16, channels 8, 16)",
        &c,
        [2, 4, 2 * 16 * 16],
    );
}

#[test]
#[ignore = "needs a Vulkan device: scripts/vulkan-cpu-check.sh"]
fn a_short_sampling_run_matches_the_cpu() {
    let config = mlp();
    let (cpu, gpu) = twins(&config, "sample");
    let sampler = PcSampler {
        sde: VpSde::default(),
        steps: 16,
        corrections: 1,
        tau: 0.25,
    };
    let run = |net: &ScoreNet, device: &Device| {
        let score = WindowScore::new(net, &config);
        let mut rng = StdRng::seed_from_u64(3);
        to_vec(sampler.sample(&score, [4, 17, 3], &mut rng, device, |_| {}))
    };
    let a = run(&cpu, &Device::flex());
    let b = run(&gpu, &vulkan());
    let (d, s) = diff(&a, &b);
    println!(
        "sampling (MLP, 4 × 17 states, T = 16, C = 1): max |Vulkan − CPU| = {d:.2e} (max |x| {s:.2}, relative {:.1e})",
        d / s
    );
    assert!(b.iter().all(|v| v.is_finite()));
    assert!(d / s < 1e-2, "samples differ by {d}");
}
