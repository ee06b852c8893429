//! The network side of the score: composition of local windows and input gradients.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sda::score::guidance::{Guided, Likelihood, Observation};
use sda::score::net::{
    Architecture, Backbone, Composition, ScoreNetConfig, WindowScore, unfold_windows,
};
use sda::score::operator::Operator;
use sda::score::sampler::normal;
use sda::score::sde::VpSde;
use sda::score::{NoiseEstimator, tensor, to_vec};

fn config(window: usize) -> ScoreNetConfig {
    ScoreNetConfig {
        architecture: Architecture::Local,
        window,
        features: 3,
        backbone: Backbone::Mlp {
            width: 32,
            depth: 2,
        },
        embedding: 8,
    }
}

#[test]
fn composing_a_window_sized_trajectory_is_the_network_on_that_window() {
    let device = Device::flex();
    device.seed(0);
    let cfg = config(5);
    let net = cfg.init(&device);
    let mut rng = StdRng::seed_from_u64(0);
    let x = normal([4, 5, 3], &mut rng, &device);
    let composed = to_vec(WindowScore::new(&net, &cfg).eps(x.clone(), 0.3));
    let direct = to_vec(net.forward(x.reshape([4, 15]), Tensor::full([4], 0.3, &device)));
    for (a, b) in composed.iter().zip(&direct) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn composition_takes_centres_and_ends_of_the_right_windows() {
    // L = 9, k = 2: 5 windows; state i (2 ≤ i < 7) is the centre of window i − 2, states 0, 1
    // come from window 0 and states 7, 8 from window 4 (its elements 3, 4).
    let device = Device::flex();
    device.seed(1);
    let cfg = config(5);
    let net = cfg.init(&device);
    let mut rng = StdRng::seed_from_u64(1);
    let x = normal([2, 9, 3], &mut rng, &device);
    let composed = to_vec(WindowScore::new(&net, &cfg).eps(x.clone(), 0.7));
    for b in 0..2 {
        let xb = x.clone().slice([b..b + 1, 0..9, 0..3]);
        let window = |j: usize| {
            let w = xb.clone().slice([0..1, j..j + 5, 0..3]).reshape([1, 15]);
            to_vec(net.forward(w, Tensor::full([1], 0.7, &device)))
        };
        let expect = |i: usize| -> Vec<f32> {
            let (j, e) = match i {
                0 | 1 => (0, i),
                7 | 8 => (4, i - 4),
                _ => (i - 2, 2),
            };
            window(j)[3 * e..3 * e + 3].to_vec()
        };
        for i in 0..9 {
            let got = &composed[(b * 9 + i) * 3..(b * 9 + i) * 3 + 3];
            for (g, e) in got.iter().zip(expect(i)) {
                assert!((g - e).abs() < 1e-5, "b={b} i={i}");
            }
        }
    }
}

#[test]
fn unfold_gives_consecutive_states() {
    // Window j of x[b, i, f] = 10 i + f holds rows j..j+w.
    let device = Device::flex();
    let data: Vec<f32> = (0..6 * 2).map(|n| (10 * (n / 2) + n % 2) as f32).collect();
    let w = to_vec(unfold_windows(tensor(data, [1, 6, 2], &device), 3));
    assert_eq!(&w[..6], &[0., 1., 10., 11., 20., 21.]);
    assert_eq!(&w[18..], &[30., 31., 40., 41., 50., 51.]);
}

#[test]
fn likelihood_score_matches_finite_differences() {
    // s_y = ∇_x log p(y | x(t)) with log p = −½ Σ (y − A(x̂))² / (σ_y² + γ(σ/μ)² s²), through the
    // network: compare each coordinate with a central difference of log p (in f64 on CPU).
    let device = Device::flex();
    device.seed(3);
    let cfg = config(5);
    let net = cfg.init(&device);
    let score = WindowScore::new(&net, &cfg);
    let sde = VpSde::default();
    let (l, t, gamma) = (7, 0.4, 0.03);
    let obs = Observation {
        operator: Operator::parse("stride:3|select:0,2").unwrap(),
        state_shape: vec![3],
        y: tensor(vec![0.5, 20.0, -1.0, 22.0, 2.0, 30.0], [1, 6], &device),
        variance: Tensor::full([1, 6], 0.25, &device),
        scale2: tensor(vec![64.0, 73.96, 64.0, 73.96, 64.0, 73.96], [1, 6], &device),
        mean: tensor(vec![0.0, 0.0, 25.0], [1, 1, 3], &device),
        scale: tensor(vec![8.0, 9.0, 8.6], [1, 1, 3], &device),
    };
    let guided = Guided {
        prior: &score,
        sde,
        obs: &obs,
        likelihood: Likelihood::Sda { gamma },
    };
    let mut rng = StdRng::seed_from_u64(3);
    let x = normal([1, l, 3], &mut rng, &device);
    let (_, s) = guided.eps_and_grad(x.clone(), t);
    let s = to_vec(s);
    let (mu, sigma) = (sde.mu(t), sde.sigma(t));
    let log_p = |xv: &[f32]| -> f64 {
        let x = tensor(xv.to_vec(), [1, l, 3], &device);
        let eps = score.eps(x.clone(), t);
        let x_hat = (x - eps.mul_scalar(sigma)).div_scalar(mu);
        let err = to_vec(obs.y.clone() - obs.observe(x_hat));
        let var = to_vec(
            obs.variance.clone() + obs.scale2.clone().mul_scalar(gamma * (sigma / mu).powi(2)),
        );
        -0.5 * err
            .iter()
            .zip(&var)
            .map(|(e, v)| (*e as f64).powi(2) / *v as f64)
            .sum::<f64>()
    };
    let x0 = to_vec(x);
    let h = 1e-2f32;
    let mut worst = 0.0f64;
    for j in 0..x0.len() {
        let (mut p, mut m) = (x0.clone(), x0.clone());
        p[j] += h;
        m[j] -= h;
        let fd = (log_p(&p) - log_p(&m)) / (2.0 * h as f64);
        let scale = fd.abs().max(1.0);
        worst = worst.max((fd - s[j] as f64).abs() / scale);
    }
    assert!(worst < 2e-2, "relative error {worst}");
}

#[test]
fn fused_cpu_network_equals_the_burn_network_and_its_gradient() {
    // Same function: ε̂ from the fused CPU MLP equals the burn network's composed ε̂, and its
    // vector-Jacobian product vᵀ ∂ε̂/∂x equals burn's autodiff one (to f32 round-off).
    // 70 windows per trajectory × 3 trajectories: more rows than one fused chunk.
    let cfg = ScoreNetConfig {
        backbone: Backbone::Mlp {
            width: 64,
            depth: 3,
        },
        ..config(5)
    };
    fused_matches_burn(&cfg, 4, 4, [3, 74, 3], 0.35);
}

/// The fused CPU network of `cfg` (weights from `seed`) against the burn network on
/// trajectories of `shape` drawn from `draws` at time `t`, in both compositions: ε̂ within
/// 1e-5 and `vᵀ ∂ε̂/∂x` within 1e-4 of the largest value.
fn fused_matches_burn(cfg: &ScoreNetConfig, seed: u64, draws: u64, shape: [usize; 3], t: f64) {
    use sda::score::net::CpuWindowScore;
    let device = Device::flex();
    let net = cfg.init_seeded(&device, seed);
    for composition in [Composition::Centre, Composition::Mean] {
        let burn_score = WindowScore {
            composition,
            ..WindowScore::new(&net, cfg)
        };
        let mut cpu_score = CpuWindowScore::new(&net, cfg);
        cpu_score.composition = composition;
        let mut rng = StdRng::seed_from_u64(draws);
        let x = normal(shape, &mut rng, &device);
        let v = normal(shape, &mut rng, &device);
        let (e1, vjp1) = burn_score.eps_vjp(x.clone(), t);
        let (e2, vjp2) = cpu_score.eps_vjp(x, t);
        let close = |a: Vec<f32>, b: Vec<f32>| {
            let scale = a.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            a.iter()
                .zip(&b)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
                / scale
        };
        assert!(close(to_vec(e1), to_vec(e2)) < 1e-5, "{composition:?}");
        assert!(
            close(to_vec(vjp1(v.clone())), to_vec(vjp2(v))) < 1e-4,
            "{composition:?}"
        );
    }
}

#[test]
#[cfg_attr(
    bf16_cpu,
    ignore = "this CPU has AVX512-BF16: the bf16 products are tested instead"
)]
fn without_avx512_bf16_the_bf16_products_are_refused() {
    use sda::nn::cpu::Precision;
    assert!(!sda::nn::bf16::available());
    let err = Precision::Bf16.check().unwrap_err().to_string();
    assert!(err.contains("AVX512-BF16"), "{err}");
}

#[test]
#[cfg_attr(not(bf16_cpu), ignore = "this CPU has no AVX512-BF16")]
fn bf16_products_keep_the_fused_network_and_its_gradient_to_bfloat16_accuracy() {
    // bf16 operands carry 8 significant bits (relative 2⁻⁹ each); the composed ε̂ and its
    // VJP through six layers of width 256 must stay within a few 1e-3 of float32, and must
    // differ from it (the bf16 path is the one that ran).
    use sda::nn::cpu::Precision;
    use sda::score::net::CpuWindowScore;
    let device = Device::flex();
    let cfg = ScoreNetConfig {
        backbone: Backbone::Mlp {
            width: 256,
            depth: 5,
        },
        ..config(5)
    };
    let net = cfg.init_seeded(&device, 5);
    let f32_score = CpuWindowScore::new(&net, &cfg);
    let bf16_score = CpuWindowScore::new(&net, &cfg).with_precision(Precision::Bf16);
    let mut rng = StdRng::seed_from_u64(5);
    let x = normal([4, 40, 3], &mut rng, &device);
    let v = normal([4, 40, 3], &mut rng, &device);
    let (e1, vjp1) = f32_score.eps_vjp(x.clone(), 0.6);
    let (e2, vjp2) = bf16_score.eps_vjp(x, 0.6);
    let rel = |a: Vec<f32>, b: Vec<f32>| {
        let num: f32 = a.iter().zip(&b).map(|(p, q)| (p - q) * (p - q)).sum();
        let den: f32 = a.iter().map(|p| p * p).sum();
        (num / den).sqrt()
    };
    let (de, dv) = (
        rel(to_vec(e1), to_vec(e2)),
        rel(to_vec(vjp1(v.clone())), to_vec(vjp2(v))),
    );
    assert!(
        de < 5e-3 && dv < 1e-2,
        "relative RMS differences {de}, {dv}"
    );
    assert!(de > 1e-5 && dv > 1e-5, "bf16 equals float32: {de}, {dv}");
}

#[test]
fn mean_composition_averages_every_covering_window() {
    // L = 7, w = 5: 3 windows; state 0 is covered by window 0 only, state 2 by windows 0, 1, 2
    // (elements 2, 1, 0), state 5 by windows 1, 2 (elements 4, 3).
    let device = Device::flex();
    device.seed(6);
    let cfg = config(5);
    let net = cfg.init(&device);
    let mut rng = StdRng::seed_from_u64(6);
    let x = normal([1, 7, 3], &mut rng, &device);
    let score = WindowScore {
        composition: Composition::Mean,
        ..WindowScore::new(&net, &cfg)
    };
    let composed = to_vec(score.eps(x.clone(), 0.5));
    let window = |j: usize| {
        let w = x.clone().slice([0..1, j..j + 5, 0..3]).reshape([1, 15]);
        to_vec(net.forward(w, Tensor::full([1], 0.5, &device)))
    };
    let (w0, w1, w2) = (window(0), window(1), window(2));
    for c in 0..3 {
        let at = |i: usize| composed[i * 3 + c];
        assert!((at(0) - w0[c]).abs() < 1e-6);
        let mean2 = (w0[2 * 3 + c] + w1[3 + c] + w2[c]) / 3.0;
        assert!((at(2) - mean2).abs() < 1e-6);
        let mean5 = (w1[4 * 3 + c] + w2[3 * 3 + c]) / 2.0;
        assert!((at(5) - mean5).abs() < 1e-6);
    }
    // The chunked VJP agrees with the single graph for this composition too.
    let v = normal([1, 7, 3], &mut rng, &device);
    let chunked = WindowScore {
        max_windows: 2,
        ..score
    };
    let score = WindowScore {
        composition: Composition::Mean,
        ..WindowScore::new(&net, &cfg)
    };
    let g1 = to_vec(score.eps_vjp(x.clone(), 0.5).1(v.clone()));
    let g2 = to_vec(chunked.eps_vjp(x, 0.5).1(v));
    for (a, b) in g1.iter().zip(&g2) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn chunked_input_gradient_equals_the_single_graph_one() {
    // Beyond `max_windows`, the VJP recomputes the network chunk by chunk of windows and folds
    // the window gradients back onto states: it must give the same product as one graph.
    let device = Device::flex();
    device.seed(5);
    let cfg = config(5);
    let net = cfg.init(&device);
    let mut rng = StdRng::seed_from_u64(5);
    let (b, l) = (3, 11);
    let x = normal([b, l, 3], &mut rng, &device);
    let v = normal([b, l, 3], &mut rng, &device);
    let whole = WindowScore::new(&net, &cfg);
    let mut chunked = WindowScore::new(&net, &cfg);
    chunked.max_windows = 4; // 3 × 7 windows in chunks of 4 rows
    let (e1, vjp1) = whole.eps_vjp(x.clone(), 0.4);
    let (e2, vjp2) = chunked.eps_vjp(x, 0.4);
    let (g1, g2) = (to_vec(vjp1(v.clone())), to_vec(vjp2(v)));
    for (a, c) in to_vec(e1).iter().zip(&to_vec(e2)) {
        assert!((a - c).abs() < 1e-6);
    }
    let scale = g1.iter().map(|g| g.abs()).fold(0.0f32, f32::max);
    assert!(scale > 1e-3, "the product is not trivially zero");
    for (i, (a, c)) in g1.iter().zip(&g2).enumerate() {
        assert!(
            (a - c).abs() < 1e-5 * (1.0 + scale),
            "value {i}: {a} vs {c}"
        );
    }
}

#[test]
fn window_batches_are_sized_to_bound_memory() {
    // The paper's U-Net at 64² keeps ~30 M activations per window: one graph holds a 64-state
    // trajectory (60 windows) but not a 512-state one, which the VJP then chunks.
    use sda::score::net::UNetPreset;
    let unet = ScoreNetConfig::unet(2, [2, 64, 64], UNetPreset::Paper);
    let per = unet.activation_floats();
    assert!((20_000_000..40_000_000).contains(&per), "{per}");
    let device = Device::flex();
    let small = ScoreNetConfig::unet(2, [2, 16, 16], UNetPreset::Reduced);
    let net = small.init(&device);
    let score = WindowScore::new(&net, &small);
    assert!(score.max_windows > 1000, "{}", score.max_windows);
    let mlp = config(5);
    let net = mlp.init(&device);
    assert_eq!(WindowScore::new(&net, &mlp).max_windows, 1 << 16);
    let paper_windows = (2usize << 30) / per;
    assert!((60..512).contains(&paper_windows), "{paper_windows}");
}

/// A ring network on 12 positions, kernel 5.
fn ring_config(window: usize) -> ScoreNetConfig {
    ScoreNetConfig {
        architecture: Architecture::Local,
        window,
        features: 12,
        backbone: Backbone::Ring {
            kernel: 5,
            width: 32,
            depth: 2,
        },
        embedding: 8,
    }
}

#[test]
fn fused_ring_network_equals_the_burn_ring_network_and_its_gradient() {
    fused_matches_burn(&ring_config(3), 7, 5, [2, 30, 12], 0.6);
}

#[test]
fn a_ring_network_turns_with_the_ring_and_sees_only_its_kernel() {
    // Rotating every state of a window by s positions rotates the estimate by s (one weight
    // set along the ring), and a change at one position moves the estimate only within
    // kernel / 2 = 2 positions of it.
    let device = Device::flex();
    let cfg = ring_config(3);
    let net = cfg.init_seeded(&device, 3);
    let mut rng = StdRng::seed_from_u64(9);
    let x = to_vec(normal([1, 3, 12], &mut rng, &device));
    let eps = |x: &[f32]| {
        to_vec(net.forward(
            tensor(x.to_vec(), [1, 36], &device),
            Tensor::full([1], 0.4, &device),
        ))
    };
    let base = eps(&x);
    let rotate = |v: &[f32], s: usize| -> Vec<f32> {
        v.chunks(12)
            .flat_map(|state| (0..12).map(move |p| state[(p + 12 - s) % 12]))
            .collect()
    };
    for s in [1, 5, 11] {
        let turned = eps(&rotate(&x, s));
        let expected = rotate(&base, s);
        let worst = turned
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "shift {s}: {worst}");
    }
    let mut poked = x.clone();
    poked[12 + 6] += 1.0; // state 1, position 6
    let moved = eps(&poked);
    for state in 0..3 {
        for p in 0..12 {
            let d = (moved[state * 12 + p] - base[state * 12 + p]).abs();
            let near = (p as i64 - 6).abs() <= 2;
            assert_eq!(d > 1e-7, near, "state {state} position {p}: change {d}");
        }
    }
}
