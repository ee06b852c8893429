//! Tests of the Kolmogorov-flow solver: the time scheme's order and stability, the
//! parameters' checks, the transforms, the initial field and a blown-up flow.

use super::grid::grid_step;
use super::scheme::{RK_A, RK_B, RK_C, RK_STABILITY, STAGES};
use super::*;
use rustfft::num_complex::Complex64;

/// The Butcher tableau `(a, b)` of the 2N scheme: stage `i` sees
/// `u = ω + Σ_j a_ij h N_j`, the step ends at `ω + Σ_j b_j h N_j`.
fn butcher() -> ([[f64; STAGES]; STAGES], [f64; STAGES]) {
    let (mut a, mut d, mut u) = ([[0.0; STAGES]; STAGES], [0.0; STAGES], [0.0; STAGES]);
    for i in 0..STAGES {
        a[i] = u;
        for j in 0..STAGES {
            d[j] = RK_A[i] * d[j] + if i == j { 1.0 } else { 0.0 };
            u[j] += RK_B[i] * d[j];
        }
    }
    (a, u)
}

#[test]
fn the_runge_kutta_scheme_has_order_four_and_its_stability_interval() {
    let (a, b) = butcher();
    let mul = |v: &[f64; STAGES]| -> [f64; STAGES] {
        std::array::from_fn(|i| (0..STAGES).map(|j| a[i][j] * v[j]).sum())
    };
    let dot = |v: [f64; STAGES]| -> f64 { (0..STAGES).map(|i| b[i] * v[i]).sum() };
    let c: [f64; STAGES] = std::array::from_fn(|i| a[i].iter().sum());
    for (got, want) in c.iter().zip(RK_C) {
        assert!((got - want).abs() < 1e-14, "c {c:?}");
    }
    let pow = |p: i32| c.map(|c| c.powi(p));
    let (ac, ac2) = (mul(&c), mul(&pow(2)));
    let conditions = [
        (dot([1.0; STAGES]), 1.0),
        (dot(c), 1.0 / 2.0),
        (dot(pow(2)), 1.0 / 3.0),
        (dot(ac), 1.0 / 6.0),
        (dot(pow(3)), 1.0 / 4.0),
        (dot(std::array::from_fn(|i| c[i] * ac[i])), 1.0 / 8.0),
        (dot(ac2), 1.0 / 12.0),
        (dot(mul(&ac)), 1.0 / 24.0),
    ];
    for (i, (got, want)) in conditions.iter().enumerate() {
        assert!(
            (got - want).abs() < 1e-13,
            "order condition {i}: {got} vs {want}"
        );
    }
    // R(z) = 1 + Σ_k z^k bᵀ a^{k−1} 1 on the imaginary axis.
    let mut coefficients = vec![1.0];
    let mut v = [1.0; STAGES];
    for _ in 0..STAGES {
        coefficients.push(dot(v));
        v = mul(&v);
    }
    let gain = |y: f64| {
        let z = Complex64::new(0.0, y);
        let mut power = Complex64::new(1.0, 0.0);
        let mut r = Complex64::new(0.0, 0.0);
        for c in &coefficients {
            r += power * c;
            power *= z;
        }
        r.norm()
    };
    for i in 0..=4000 {
        let y = RK_STABILITY * i as f64 / 4000.0;
        assert!(gain(y) <= 1.0 + 1e-9, "|R({y} i)| = {}", gain(y));
    }
    assert!(gain(RK_STABILITY + 0.01) > 1.0);
    // RK4's interval, 2√2, for comparison: 6 stages go further per stage than its 4.
    assert!(RK_STABILITY / STAGES as f64 > 1.13 * 8f64.sqrt() / 4.0);
}

fn small() -> Kolmogorov {
    Kolmogorov {
        size: 32,
        coarsen: 2,
        ..Kolmogorov::default()
    }
}

#[test]
fn check_rejects_a_coarsening_that_does_not_divide_the_grid() {
    let k = Kolmogorov {
        size: 64,
        coarsen: 3,
        ..Kolmogorov::default()
    };
    assert!(matches!(k.check(), Err(Error::Config { name, .. }) if name == "--coarsen"));
    assert!(small().check().is_ok());
}

#[test]
fn forward_pair_gives_the_fourier_coefficients_of_both_fields() {
    // a = cos(3x + 5y) has â(3, 5) = ½ (and its conjugate at −k, not stored);
    // b = sin(x − 2y) has b̂(1, −2) = −i/2, stored as its conjugate partner b̂(−1, 2) = i/2.
    let mut s = small().solver();
    let n = s.size();
    let dx = grid_step(n);
    let (mut a, mut b) = (vec![0.0; n * n], vec![0.0; n * n]);
    for p in 0..n * n {
        let (x, y) = ((p / n) as f64 * dx, (p % n) as f64 * dx);
        a[p] = (3.0 * x + 5.0 * y).cos() as f32;
        b[p] = (x - 2.0 * y).sin() as f32;
    }
    let (mut sa, mut sb) = (s.zero().omega, s.zero().omega);
    s.forward_pair(&a, &b, &mut sa, &mut sb);
    let mut want_a = s.zero().omega;
    let mut want_b = s.zero().omega;
    want_a[5 * n + 3] = Complex32::new(0.5, 0.0);
    want_b[2 * n + n - 1] = Complex32::new(0.0, 0.5);
    for m in 0..sa.len() {
        assert!((sa[m] - want_a[m]).norm() < 1e-6, "â at {m}: {}", sa[m]);
        assert!((sb[m] - want_b[m]).norm() < 1e-6, "b̂ at {m}: {}", sb[m]);
    }
}

#[test]
fn lift_recovers_a_band_limited_field_from_its_block_average() {
    // u = sin(2y + 1) + 0.3, v = cos(3x − 0.5) is divergence-free with modes below the
    // coarse Nyquist: block-averaging multiplies each mode by H(k_x) H(k_y) and moves it
    // to the coarse cell centres, which the lift undoes exactly.
    let k = small();
    let n = k.size;
    let dx = grid_step(n);
    let mut uv = vec![0.0f32; 2 * n * n];
    for p in 0..n * n {
        let (x, y) = (((p / n) as f64 + 0.5) * dx, ((p % n) as f64 + 0.5) * dx);
        uv[p] = ((2.0 * y + 1.0).sin() + 0.3) as f32;
        uv[n * n + p] = (3.0 * x - 0.5).cos() as f32;
    }
    let mut s = k.solver();
    let flow = s.from_velocity(&uv);
    let mut x = vec![0.0; k.state_len()];
    s.coarse(&flow, &mut x);
    assert!((x[0] - x[1]).abs() > 0.1, "u varies along y");
    let lifted = s.lift(&x);
    let back = s.velocity(&lifted);
    let err = uv
        .iter()
        .zip(&back)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err < 1e-5, "max error {err}");
}

#[test]
fn initial_field_has_the_requested_maximum_speed() {
    let k = small();
    let mut s = k.solver();
    let flow = s.initial(&mut chain_rng(0, 0));
    let uv = s.velocity(&flow);
    let nn = k.size * k.size;
    let vmax = (0..nn)
        .map(|p| (uv[p].powi(2) + uv[nn + p].powi(2)).sqrt())
        .fold(0.0, f32::max);
    assert!((vmax - 3.0).abs() < 1e-4, "max speed {vmax}");
}

#[test]
#[should_panic(expected = "blew up")]
fn a_blown_up_flow_stops_with_a_message() {
    let k = small();
    let mut s = k.solver();
    let mut flow = s.initial(&mut chain_rng(0, 0));
    // One NaN mode spreads over the whole grid in the first evaluation.
    flow.omega[k.size + 1] = Complex32::new(f32::NAN, 0.0);
    s.advance(&mut flow, k.dt);
}
