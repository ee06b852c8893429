//! The U-Net of the Kolmogorov experiment: shapes, periodicity, gradients, size.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use sda::nn::{ChannelNorm, UNet, UNetConfig, circular_pad};

fn tiny(hidden: Vec<usize>) -> UNetConfig {
    UNetConfig {
        channels: 3,
        context: 1,
        hidden,
        blocks: 1,
        kernel: 3,
        embedding: 8,
    }
}

fn normal<const D: usize>(shape: [usize; D], rng: &mut StdRng, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `max |a − b| / max |a|`.
fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    err / scale
}

/// A context channel that varies along both axes, so that a wrong roll of it shows.
fn context(n: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..n * h * w)
        .map(|k| {
            let (i, j) = ((k / w) % h, k % w);
            let (y, x) = (j as f32 / w as f32, i as f32 / h as f32);
            (std::f32::consts::TAU * y).sin() + 0.5 * (std::f32::consts::TAU * x).cos()
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [n, 1, h, w]), device)
}

fn forward(net: &UNet, x: Tensor<4>, c: Tensor<4>, e: Tensor<2>, shift: (i64, i64)) -> Tensor<4> {
    let roll = |t: Tensor<4>| t.roll(&[shift.0, shift.1], &[2, 3]);
    net.forward(roll(x), roll(c), e)
}

#[test]
fn output_has_the_shape_of_the_fields() {
    let device = Device::flex();
    device.seed(0);
    let net = tiny(vec![8, 16]).init(&device);
    let mut rng = StdRng::seed_from_u64(0);
    let x = normal([2, 3, 16, 8], &mut rng, &device);
    let e = normal([2, 8], &mut rng, &device);
    let y = net.forward(x, context(2, 16, 8, &device), e);
    assert_eq!(y.dims(), [2, 3, 16, 8]);
    assert!(values(y).iter().all(|v| v.is_finite()));
}

#[test]
#[should_panic(expected = "divisible by 2")]
fn odd_grid_is_refused_with_a_message() {
    let device = Device::flex();
    let net = tiny(vec![8, 16]).init(&device);
    let mut rng = StdRng::seed_from_u64(0);
    let x = normal([1, 3, 15, 8], &mut rng, &device);
    let e = normal([1, 8], &mut rng, &device);
    net.forward(x, context(1, 15, 8, &device), e);
}

#[test]
fn even_kernel_is_a_config_error() {
    let cfg = UNetConfig {
        kernel: 4,
        ..tiny(vec![8])
    };
    assert!(cfg.check().is_err());
    assert!(tiny(vec![8, 16]).check().is_ok());
    assert!(UNetConfig::paper(10, 1).check().is_ok());
    assert!(UNetConfig::reduced(10, 1).check().is_ok());
}

#[test]
fn circular_pad_wraps_both_axes() {
    let device = Device::flex();
    // x = [[0, 1, 2], [3, 4, 5]]; out[i, j] = x[(i − 1) mod 2, (j − 1) mod 3].
    let x = Tensor::<1, Int>::arange(0..6, &device)
        .float()
        .reshape([1, 1, 2, 3]);
    let expect = [
        5., 3., 4., 5., 3., //
        2., 0., 1., 2., 0., //
        5., 3., 4., 5., 3., //
        2., 0., 1., 2., 0., //
    ];
    let y = circular_pad(x.clone(), 1);
    assert_eq!(y.dims(), [1, 1, 4, 5]);
    assert_eq!(values(y), expect);
    // p = 2 on two channels: out[c, i, j] = x[c, (i − 2) mod 2, (j − 2) mod 3].
    let x2 = Tensor::cat(vec![x.clone(), x + 10.0], 1); // [1, 2, 2, 3]
    let y = values(circular_pad(x2, 2)); // [1, 2, 6, 7]
    for c in 0..2 {
        for i in 0..6 {
            for j in 0..7 {
                let src = ((i + 2) % 2) * 3 + (j + 1) % 3; // (i − 2) mod 2, (j − 2) mod 3
                assert_eq!(y[(c * 6 + i) * 7 + j], src as f32 + 10.0 * c as f32);
            }
        }
    }
}

#[test]
fn channel_norm_standardises_each_pixel_over_channels() {
    // At each (n, i, j): mean_c y = 0 and mean_c y² = var / (var + ε) ≈ 1.
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(5);
    let x = normal([2, 6, 4, 5], &mut rng, &device) * 3.0 + 1.5;
    let y = ChannelNorm::new().forward(x);
    let mean = values(y.clone().mean_dim(1));
    let square = values(y.square().mean_dim(1));
    assert_eq!(mean.len(), 2 * 4 * 5);
    assert!(mean.iter().all(|m| m.abs() < 1e-5));
    assert!(square.iter().all(|s| (s - 1.0).abs() < 1e-4));
}

#[test]
fn rolling_fields_and_context_rolls_the_output() {
    // Circular convolutions commute with periodic shifts; a stride-2 level only with even
    // ones, so a net of L levels is equivariant to shifts by multiples of 2^(L−1):
    // f(roll(x), roll(c)) = roll(f(x, c)).
    let device = Device::flex();
    device.seed(1);
    let mut rng = StdRng::seed_from_u64(1);
    let (h, w) = (16, 8);
    let x = normal([2, 3, h, w], &mut rng, &device);
    let c = context(2, h, w, &device);
    let e = normal([2, 8], &mut rng, &device);
    for (hidden, shift) in [
        (vec![8], (1, 1)),
        (vec![8, 16], (2, -2)),
        (vec![8, 16], (6, 4)),
    ] {
        let net = tiny(hidden.clone()).init(&device);
        let rolled_after = forward(&net, x.clone(), c.clone(), e.clone(), (0, 0))
            .roll(&[shift.0, shift.1], &[2, 3]);
        let rolled_before = forward(&net, x.clone(), c.clone(), e.clone(), shift);
        let err = relative_error(&values(rolled_after), &values(rolled_before));
        assert!(err < 1e-5, "{hidden:?} shift {shift:?}: {err}");
    }
    // An odd shift of a two-level net is not a symmetry: the test can fail.
    let net = tiny(vec![8, 16]).init(&device);
    let after = forward(&net, x.clone(), c.clone(), e.clone(), (0, 0)).roll(&[1, 0], &[2, 3]);
    let before = forward(&net, x, c, e, (1, 0));
    assert!(relative_error(&values(after), &values(before)) > 1e-3);
}

#[test]
fn input_gradient_matches_central_differences() {
    // ∂/∂x_k Σ v ⊙ f(x) ≈ (L(x + δ e_k) − L(x − δ e_k)) / 2δ, error O(δ²) + O(ε_f32 L / δ):
    // about 1e-4 here (measured 3e-5 to 1.2e-4), against a tolerance of 1e-3 (1 + |∂L|).
    let device = Device::flex();
    device.seed(2);
    let net = tiny(vec![8, 16]).init(&device);
    let mut rng = StdRng::seed_from_u64(2);
    let (h, w) = (8, 8);
    let x = normal([1, 3, h, w], &mut rng, &device);
    let v = normal([1, 3, h, w], &mut rng, &device);
    let c = context(1, h, w, &device);
    let e = normal([1, 8], &mut rng, &device);
    let loss = |x: Tensor<4>| -> f64 {
        (net.forward(x, c.clone(), e.clone()) * v.clone())
            .sum()
            .into_scalar::<f32>() as f64
    };

    let xg = x.clone().detach().autodiff().require_grad();
    let l = (net.forward(xg.clone(), c.clone().autodiff(), e.clone().autodiff())
        * v.clone().autodiff())
    .sum();
    let grad = values(xg.grad(&l.backward()).unwrap().without_autodiff());

    let delta = 1e-2;
    let xs = values(x.clone());
    for k in [0, 17, 64 + 9, 2 * 64 + 63, 2 * 64 + 36] {
        let bump = |s: f32| {
            let mut d = xs.clone();
            d[k] += s;
            Tensor::<4>::from_data(TensorData::new(d, [1, 3, h, w]), &device)
        };
        let fd = (loss(bump(delta)) - loss(bump(-delta))) / (2.0 * delta as f64);
        let err = (fd - grad[k] as f64).abs();
        assert!(
            err < 1e-3 * (1.0 + fd.abs()),
            "coordinate {k}: autodiff {} vs differences {fd}",
            grad[k]
        );
    }
}

#[test]
fn paper_network_has_the_hand_counted_parameters() {
    // Conv(i → o, k×k) has k²·i·o + o parameters, Linear(i → o) i·o + o. Per level of c
    // channels: 2·blocks blocks of Linear(E → c) + 2 Conv(c → c); then the heads (in → c0,
    // c_{i−1} → c_i stride 2) and the tails (c_i → c_{i−1}, c0 → out).
    let cfg = UNetConfig::paper(10, 1);
    let (k2, e, b) = (9, 64, 3);
    let conv = |i: usize, o: usize| k2 * i * o + o;
    let linear = |i: usize, o: usize| i * o + o;
    let c = [96, 192, 384];
    let block = |c: usize| linear(e, c) + 2 * conv(c, c);
    let mut expect = conv(11, c[0]) + conv(c[0], 10);
    for i in 0..3 {
        expect += 2 * b * block(c[i]);
        if i > 0 {
            expect += conv(c[i - 1], c[i]) + conv(c[i], c[i - 1]);
        }
    }
    let net = cfg.init(&Device::flex());
    println!("UNetConfig::paper(10, 1): {} parameters", net.num_params());
    assert_eq!(net.num_params(), expect);
}
