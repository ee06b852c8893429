//! The Kolmogorov-flow simulator against the physics it must obey: incompressibility, the
//! energy balance of forced, dissipated Navier–Stokes, the exact decay of a single Kolmogorov
//! mode; then its determinism and the plausibility of its statistics. Small grids, so that the
//! whole file runs in seconds.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex64;
use sda::mcs::{Kolmogorov, chain_rng};

fn small(size: usize, coarsen: usize) -> Kolmogorov {
    Kolmogorov {
        size,
        coarsen,
        ..Kolmogorov::default()
    }
}

/// Normalised 2-D DFT of a real `[n, n]` field (f64, independent of the simulator's FFTs).
fn dft2(f: &[f32], n: usize) -> Vec<Complex64> {
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    let mut a: Vec<Complex64> = f.iter().map(|&v| Complex64::new(v as f64, 0.0)).collect();
    fft.process(&mut a);
    let mut t = vec![Complex64::ZERO; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    fft.process(&mut t);
    t.iter().map(|z| z / (n * n) as f64).collect() // [ky, kx]
}

fn wavenumber(i: usize, n: usize) -> f64 {
    if i <= n / 2 {
        i as f64
    } else {
        i as f64 - n as f64
    }
}

/// `max_k |k_x û + k_y v̂|` relative to `max_k |k| |û, v̂|`.
fn divergence(uv: &[f32], n: usize) -> f64 {
    let (u, v) = uv.split_at(n * n);
    let (u, v) = (dft2(u, n), dft2(v, n));
    let (mut div, mut scale) = (0.0f64, 0.0f64);
    for b in 0..n {
        for a in 0..n {
            let (kx, ky) = (wavenumber(a, n), wavenumber(b, n));
            let m = b * n + a;
            div = div.max((kx * u[m] + ky * v[m]).norm());
            scale = scale.max((kx * kx + ky * ky).sqrt() * u[m].norm().max(v[m].norm()));
        }
    }
    div / scale
}

#[test]
fn velocity_is_divergence_free_after_stepping_and_after_projection() {
    // 30 = 2·3·5 takes the column transforms' odd radices and a ragged last column block.
    for n in [32, 30] {
        let k = small(n, 1);
        let mut s = k.solver();
        let mut flow = s.initial(&mut chain_rng(1, 0));
        s.advance(&mut flow, 0.4);
        // ∇·u = i(k_x û + k_y v̂) = 0 for every mode, to f32 round-off.
        let d = divergence(&s.velocity(&flow), n);
        assert!(d < 1e-5, "{n}²: relative divergence {d}");

        // Projection of white noise: the divergent part is removed.
        let mut rng = StdRng::seed_from_u64(0);
        let noise: Vec<f32> = (0..2 * n * n)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        assert!(divergence(&noise, n) > 0.1);
        let projected = s.from_velocity(&noise);
        let d = divergence(&s.velocity(&projected), n);
        assert!(d < 1e-5, "{n}²: relative divergence after projection {d}");
    }
}

/// `(KE, P, D, R)`: kinetic energy `½⟨|u|²⟩`, forcing power `⟨sin(4y) u⟩`, viscous
/// dissipation `ν⟨|∇u|²⟩` and drag `α⟨|u|²⟩`, from the velocity on the grid alone.
fn budget(uv: &[f32], n: usize, k: &Kolmogorov) -> [f64; 4] {
    let (u, v) = uv.split_at(n * n);
    let dx = 2.0 * std::f64::consts::PI / n as f64;
    let mut ke = 0.0;
    let mut power = 0.0;
    for p in 0..n * n {
        let y = ((p % n) as f64 + 0.5) * dx;
        ke += 0.5 * ((u[p] as f64).powi(2) + (v[p] as f64).powi(2));
        power += (k.forcing_wavenumber as f64 * y).sin() * k.forcing_amplitude * u[p] as f64;
    }
    let (ke, power) = (ke / (n * n) as f64, power / (n * n) as f64);
    // ⟨|∇u|²⟩ = Σ_k |k|² (|û_k|² + |v̂_k|²), exact for band-limited fields (Parseval).
    let (fu, fv) = (dft2(u, n), dft2(v, n));
    let mut grad = 0.0;
    for b in 0..n {
        for a in 0..n {
            let k2 = wavenumber(a, n).powi(2) + wavenumber(b, n).powi(2);
            grad += k2 * (fu[b * n + a].norm_sqr() + fv[b * n + a].norm_sqr());
        }
    }
    [ke, power, grad / k.reynolds, k.drag * 2.0 * ke]
}

#[test]
fn energy_balance_holds_on_average() {
    // dKE/dt = ⟨f·u⟩ − ν⟨|∇u|²⟩ − α⟨|u|²⟩: the dealiased nonlinear term exchanges energy
    // between modes and conserves it, so KE(T) − KE(0) = ∫ (P − D − R) dt (Simpson's rule over
    // saved states 0.02 apart; its error, O(δ⁴), and RK4's are far below the tolerance).
    // 30 = 2·3·5 takes the column transforms' odd radices and a ragged last column block.
    for n in [32, 30] {
        energy_balance_on(n);
    }
}

fn energy_balance_on(n: usize) {
    let k = Kolmogorov {
        dt: 0.02,
        reynolds: 200.0,
        ..small(n, 1)
    };
    let mut s = k.solver();
    let mut flow = s.initial(&mut chain_rng(2, 0));
    let steps = 50;
    let mut b = Vec::new();
    for i in 0..=steps {
        if i > 0 {
            s.advance(&mut flow, k.dt);
        }
        b.push(budget(&s.velocity(&flow), n, &k));
    }
    let rhs: Vec<f64> = b.iter().map(|[_, p, d, r]| p - d - r).collect();
    let simpson: f64 = (0..steps / 2)
        .map(|i| rhs[2 * i] + 4.0 * rhs[2 * i + 1] + rhs[2 * i + 2])
        .sum::<f64>()
        * k.dt
        / 3.0;
    let change = b[steps][0] - b[0][0];
    let scale: f64 = b.iter().map(|[_, p, d, r]| p.abs() + d + r).sum::<f64>() * k.dt;
    assert!(
        (change - simpson).abs() < 2e-4 * scale,
        "{n}²: ΔKE {change} vs ∫(P − D − R) {simpson} (scale {scale})"
    );
    // Not a trivial balance: all three terms matter over the run.
    let [_, p, d, r] = b[steps / 2];
    assert!(
        p.abs() > 1e-3 && d > 1e-3 && r > 1e-3,
        "P {p}, D {d}, R {r}"
    );
}

#[test]
fn single_kolmogorov_mode_decays_to_its_closed_form() {
    // u = a(t) sin(4y), v = 0 makes the nonlinear term vanish (uv = 0 and v² − u² depends on y
    // only), so da/dt = A − (16ν + α) a: a(t) = a∞ + (a0 − a∞) e^{−λt}, λ = 16ν + α, a∞ = A/λ.
    let k = small(32, 1);
    let n = k.size;
    let dx = 2.0 * std::f64::consts::PI / n as f64;
    let a0 = 0.5;
    let profile = |a: f64| -> Vec<f32> {
        let mut uv = vec![0.0; 2 * n * n];
        for p in 0..n * n {
            uv[p] = (a * (4.0 * ((p % n) as f64 + 0.5) * dx).sin()) as f32;
        }
        uv
    };
    let mut s = k.solver();
    let mut flow = s.from_velocity(&profile(a0));
    let lambda = 16.0 / k.reynolds + k.drag;
    let a_inf = k.forcing_amplitude / lambda;
    for i in 1..=10 {
        s.advance(&mut flow, k.dt);
        let t = i as f64 * k.dt;
        let a = a_inf + (a0 - a_inf) * (-lambda * t).exp();
        let got = s.velocity(&flow);
        let err = got
            .iter()
            .zip(profile(a))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-4 * a as f32, "t = {t}: a = {a}, max error {err}");
    }
}

#[test]
fn time_stepping_is_fourth_order() {
    // A 16² flow stepped over t = 0.8 in 4 and in 8 equal steps (Courant numbers about 3 and
    // 1.5, by the Kolmogorov default's speed), against 1536 steps: halving the step must divide
    // the error by 2⁴ (a third-order scheme gives 8, a fifth-order one 32).
    let k = small(16, 1);
    let mut s = k.solver();
    let start = s.initial(&mut StdRng::seed_from_u64(2));
    let mut run = |steps: usize| {
        let mut flow = start.clone();
        for _ in 0..steps {
            s.step(&mut flow, 0.8 / steps as f64);
        }
        s.velocity(&flow)
    };
    let reference = run(1536);
    let error = |x: Vec<f32>| -> f64 {
        x.iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).powi(2) as f64)
            .sum::<f64>()
            .sqrt()
    };
    let (coarse, fine) = (error(run(4)), error(run(8)));
    let ratio = coarse / fine;
    assert!(
        (11.0..23.0).contains(&ratio),
        "errors {coarse:.3e} and {fine:.3e}: ratio {ratio:.2}"
    );
}

#[test]
fn a_mean_flow_carries_the_field_along_galilean_invariance() {
    // The forcing sin(4y) does not depend on x, so a uniform mean flow (U, 0) only carries
    // the field along x: ω_U(x, y, t) = ω_0(x − X(t), y, t), with X(t) = U (1 − e^{−αt}) / α as
    // the drag slows the mean down. In Fourier, ω̂_U(k) = ω̂_0(k) e^{−i k_x X}. A strong drag
    // makes the mean change within a step, so that every stage must see it at its own time.
    let k = Kolmogorov {
        drag: 2.0,
        ..small(32, 1)
    };
    let (n, u, steps, h) = (32, 0.7, 40, 0.025);
    let mut s = k.solver();
    let mut still = s.initial(&mut StdRng::seed_from_u64(4));
    let mut carried = still.clone();
    carried.mean = [u, 0.0];
    for _ in 0..steps {
        s.step(&mut still, h);
        s.step(&mut carried, h);
    }
    let t = steps as f64 * h;
    let shift = u * (1.0 - (-k.drag * t).exp()) / k.drag;
    let (mut error, mut norm) = (0.0f64, 0.0f64);
    for (m, (a, b)) in carried.omega.iter().zip(&still.omega).enumerate() {
        let i = m % n;
        let kx = if i <= n / 2 {
            i as f64
        } else {
            i as f64 - n as f64
        };
        let phase = Complex64::from_polar(1.0, -kx * shift);
        let want = Complex64::new(b.re as f64, b.im as f64) * phase;
        error += (Complex64::new(a.re as f64, a.im as f64) - want).norm_sqr();
        norm += want.norm_sqr();
    }
    let relative = (error / norm).sqrt();
    assert!(relative < 1e-4, "relative difference {relative:.2e}");
    assert!((carried.mean[0] - u * (-k.drag * t).exp()).abs() < 1e-12);
}

#[test]
fn a_non_zero_mean_flow_decays_by_the_drag() {
    // The spatial mean obeys dU/dt = −α U (the forcing and the advection have zero mean):
    // from uniform u = 1, ⟨u⟩ = e^{−αt}.
    let k = small(16, 1);
    let mut s = k.solver();
    let mut uv = vec![0.0; 2 * 16 * 16];
    uv[..256].fill(1.0);
    let mut flow = s.from_velocity(&uv);
    s.advance(&mut flow, 1.0);
    let u = s.velocity(&flow)[..256]
        .iter()
        .map(|&u| u as f64)
        .sum::<f64>()
        / 256.0;
    assert!((u - (-k.drag).exp()).abs() < 1e-5, "u {u}");
}

#[test]
fn same_seed_gives_same_bits_whatever_the_thread_count() {
    let k = small(32, 2);
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| k.trajectories(3, 2, 1, seed))
    };
    let a = run(1, 7);
    assert_eq!(a.len(), 3 * 2 * 2 * 16 * 16);
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        run(2, 7).iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(a, run(2, 8));
    // Trajectories are independent draws, not copies.
    let per = 2 * 2 * 16 * 16;
    assert_ne!(a[..per], a[per..2 * per]);
}

#[test]
fn resimulating_a_saved_state_follows_the_trajectory() {
    // Lifting a 32² state to the 64² grid loses only the modes above the coarse Nyquist, so the
    // re-simulated trajectory stays close to the original for a few saved intervals.
    let k = small(64, 2);
    let (l, d) = (4, k.state_len());
    let x = k.trajectory(&mut chain_rng(5, 0), l, 10);
    let y = k.resimulate(&x[..d], l);
    let rel = |i: usize| {
        let (a, b) = (&x[i * d..(i + 1) * d], &y[i * d..(i + 1) * d]);
        let num: f32 = a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum();
        let den: f32 = a.iter().map(|p| p * p).sum();
        (num / den).sqrt()
    };
    assert!(rel(0) < 0.05, "state 0: relative error {}", rel(0));
    assert!(rel(1) < 0.1, "state 1: relative error {}", rel(1));
    assert!(rel(3) < 0.3, "state 3: relative error {}", rel(3));
}

#[test]
fn statistics_of_a_short_run_are_finite_and_plausible() {
    let k = small(64, 2);
    let (n, l) = (2, 12);
    let x = k.trajectories(n, l, 20, 0);
    let [_, h, w] = k.state_shape();
    let st = k.statistics(&x, n, l, h, w);
    println!("{st}");
    // Forced at k = 4 with drag 0.1, the flow keeps O(1) energy (the reference: ≈ 0.95).
    assert!(st.energy > 0.1 && st.energy < 5.0, "energy {}", st.energy);
    assert!(
        st.std.iter().all(|s| *s > 0.1 && *s < 3.0),
        "std {:?}",
        st.std
    );
    assert!(st.profile_amplitude.is_finite() && st.profile_correlation.abs() <= 1.0);
    // Σ_k E(k) is the energy but for the corner modes |k| > h/2.
    let total: f64 = st.spectrum.iter().sum();
    assert!(total <= st.energy * 1.0001 && total > 0.9 * st.energy);
    // Saved states 0.2 apart are strongly correlated, less so at longer lags.
    let r = &st.autocorrelation;
    assert_eq!(r.len(), 8);
    assert!(
        r[0] > 0.5 && r[0] < 1.0 && r[7] < r[0],
        "autocorrelation {r:?}"
    );
}

#[test]
fn sub_steps_are_planned_again_when_the_flow_speeds_up() {
    let k = small(64, 1);
    let dx = 2.0 * std::f64::consts::PI / 64.0;
    let plan = |speed: f64, duration: f64| (duration * speed / (k.courant * dx)).ceil() as usize;
    let speed = |uv: &[f32]| {
        let (u, v) = uv.split_at(uv.len() / 2);
        u.iter()
            .zip(v)
            .map(|(u, v)| u.abs() + v.abs())
            .fold(0.0f32, f32::max) as f64
    };
    let mut s = k.solver();

    // Unforced, a uniform flow only slows down (drag): the plan made at the start holds.
    let mut still = Kolmogorov {
        forcing_amplitude: 0.0,
        ..k.clone()
    }
    .solver();
    let mut uv = vec![0.0; 2 * 64 * 64];
    uv[..64 * 64].fill(1.0);
    let mut flow = still.from_velocity(&uv);
    assert_eq!(still.advance(&mut flow, 3.0), plan(1.0, 3.0));

    // The random initial field (max speed 3) is accelerated by the forcing: over a long
    // interval the sub-steps must outnumber the plan made from the starting speed.
    let start = s.initial(&mut StdRng::seed_from_u64(3));
    let s0 = speed(&s.velocity(&start));
    let mut long = start.clone();
    let taken = s.advance(&mut long, 4.0);
    let end = speed(&s.velocity(&long));
    assert!(end > 1.2 * s0, "the flow did not speed up: {s0} → {end}");
    assert!(
        taken > plan(s0, 4.0),
        "{taken} sub-steps, planned {}",
        plan(s0, 4.0)
    );
    assert!(taken <= plan(end.max(s0) * 1.5, 4.0), "{taken} sub-steps");
    // And the result is the one of twenty short intervals, up to time-stepping error.
    let mut short = start;
    for _ in 0..20 {
        s.advance(&mut short, 0.2);
    }
    let (a, b) = (s.velocity(&long), s.velocity(&short));
    let num: f32 = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum();
    let den: f32 = b.iter().map(|q| q * q).sum();
    assert!(
        (num / den).sqrt() < 1e-3,
        "relative difference {}",
        (num / den).sqrt()
    );
}
