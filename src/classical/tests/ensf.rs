//! The ensemble score filter against its exact law on linear-Gaussian problems (paired and
//! mixture scores), and wrong filters that fail the same checks.

use super::*;
use crate::classical::ensf;

/// The exact mean and covariance of EnSF's analysis for N → ∞ on a linear-Gaussian problem
/// (prior `N(m, P)`, `y = H x + N(0, R)`): every score is affine, `S = −A(t) z + B(t)`, so an
/// Euler–Maruyama step maps `N(μ, V)` to `N(Cμ + Δσ²B, C V Cᵀ + Δσ² I)` with
/// `C = I − Δ(b I + σ² A)`, from `N(0, I)` at `t = 1`. The paired score conditions on the
/// member: the output is `a x_i + e` plus noise of covariance `V`. `sign` multiplies the
/// likelihood's score (−1: the wrong sign). Clipping is assumed not to act.
fn ensf_law(
    s: &Ensf,
    m: &DVector<f64>,
    p: &DMatrix<f64>,
    h: &DMatrix<f64>,
    r: &DMatrix<f64>,
    y: &DVector<f64>,
    sign: f64,
) -> (DVector<f64>, DMatrix<f64>) {
    let d = m.len();
    let id = DMatrix::<f64>::identity(d, d);
    let rinv = r.clone().try_inverse().unwrap();
    let (hrh, hry) = (h.transpose() * &rinv * h, h.transpose() * &rinv * y);
    let dt = 1.0 / s.steps as f64;
    let mut a = DMatrix::zeros(d, d);
    let mut mu = DVector::zeros(d);
    let mut v = id.clone();
    for n in 0..s.steps {
        let t = 1.0 - n as f64 * dt;
        let c = s.at(t);
        let lik = sign * s.damping.at(t);
        let (big_a, b) = match s.score {
            EnsfScore::Paired => (&id / c.beta2 + &hrh * lik, &hry * lik),
            EnsfScore::Mixture(_) => {
                let g = (p * c.alpha.powi(2) + &id * c.beta2).try_inverse().unwrap();
                (&g + &hrh * lik, &g * m * c.alpha + &hry * lik)
            }
        };
        let cm = &id - (&id * c.b + &big_a * c.sigma2) * dt;
        if s.score == EnsfScore::Paired {
            a = &cm * &a + &id * (dt * c.sigma2 * c.alpha / c.beta2);
        }
        mu = &cm * &mu + b * (dt * c.sigma2);
        v = &cm * &v * cm.transpose() + &id * (dt * c.sigma2);
    }
    match s.score {
        EnsfScore::Paired => (&a * m + mu, &a * p * a.transpose() + v),
        EnsfScore::Mixture(_) => (mu, v),
    }
}

fn scalar_law(s: &Ensf, m: f64, p: f64, r: f64, y: f64) -> (f64, f64) {
    let one = |v: f64| DMatrix::from_element(1, 1, v);
    let (mean, cov) = ensf_law(
        s,
        &DVector::from_element(1, m),
        &one(p),
        &one(1.0),
        &one(r),
        &DVector::from_element(1, y),
        1.0,
    );
    (mean[0], cov[(0, 0)])
}

#[test]
fn ensf_law_reproduces_the_scalar_bias_table() {
    // The recursion at N_t = 5000 against independently computed values (the EnSF spec's
    // table, 4 digits): EnSF is not the Kalman filter even here (KF: 0.5 / 0.5, 1.8824 / 0.2353).
    let paired = Ensf {
        steps: 5000,
        ..Ensf::default()
    };
    let legacy = Ensf {
        steps: 5000,
        eps_alpha: 0.05,
        eps_beta: 0.0,
        score: EnsfScore::Mixture(None),
        ..Ensf::default()
    };
    let mixture = Ensf {
        eps_beta: 0.0,
        ..legacy.clone()
    };
    let mixture = Ensf {
        eps_alpha: 0.5,
        ..mixture
    };
    for (s, (m, p, r, y), want) in [
        (&paired, (0.0, 1.0, 1.0, 1.0), (0.0663, 0.8971)),
        (&paired, (0.0, 1.0, 0.0025, 1.0), (0.9164, 0.00836)),
        (&paired, (0.0, 4.0, 0.25, 2.0), (0.3854, 2.6767)),
        (&legacy, (0.0, 1.0, 1.0, 1.0), (0.5167, 0.4430)),
        (&legacy, (0.0, 4.0, 0.25, 2.0), (2.2415, 0.1726)),
        (&mixture, (0.0, 1.0, 1.0, 1.0), (0.4132, 0.4377)),
        (&mixture, (0.0, 4.0, 0.25, 2.0), (1.9710, 0.1610)),
    ] {
        let (mean, var) = scalar_law(s, m, p, r, y);
        assert!(
            (mean - want.0).abs() < 2e-3 * (1.0 + want.0.abs())
                && (var - want.1).abs() < 2e-3 * want.1.max(0.01),
            "{:?} on {:?}: {mean:.5} / {var:.5}, table {want:?}",
            s.score,
            (m, p, r, y)
        );
    }
    // Without damping (h ≡ 1) the legacy mixture overshoots further: 0.683 / 0.366.
    let undamped = Ensf {
        damping: Damping::None,
        ..legacy.clone()
    };
    let (mean, var) = scalar_law(&undamped, 0.0, 1.0, 1.0, 1.0);
    assert!(
        (mean - 0.683).abs() < 2e-3 && (var - 0.366).abs() < 2e-3,
        "{mean} {var}"
    );
}

/// The exact law of EnSF (paired, N → ∞) at every state of the spring problem `lin`: forecasts
/// by `F m`, `F P Fᵀ + Q`, analyses by [`ensf_law`].
fn ensf_filtered(
    lin: &Linear,
    s: &Ensf,
    sign: f64,
    m0: DVector<f64>,
    p0: DMatrix<f64>,
) -> (Vec<DVector<f64>>, Vec<DMatrix<f64>>) {
    let lg = lin.kalman();
    let obs = lin.observations();
    let (mut m, mut p) = (m0, p0);
    let (mut means, mut covs) = (Vec::new(), Vec::new());
    for t in 0..lin.length {
        if t > 0 {
            m = &lg.f * m;
            p = &lg.f * p * lg.f.transpose() + &lg.q;
        }
        if let Some(o) = obs.iter().find(|o| o.time == t) {
            (m, p) = ensf_law(s, &m, &p, &o.h, &o.r, &o.y, sign);
        }
        means.push(m.clone());
        covs.push(p.clone());
    }
    (means, covs)
}

/// The largest error of an ensemble's means (in stds of `exact`) and variances (relative).
fn worst(est: &Estimate, exact: &(Vec<DVector<f64>>, Vec<DMatrix<f64>>)) -> (f64, f64) {
    let (mut wm, mut wc) = (0.0f64, 0.0f64);
    for t in 0..est.length {
        let (m, c) = (&exact.0[t], &exact.1[t]);
        let (em, ec) = (est.mean(t), est.cov(t));
        for i in 0..m.len() {
            wm = wm.max((em[i] - m[i]).abs() / c[(i, i)].sqrt());
            wc = wc.max((ec[(i, i)] / c[(i, i)] - 1.0).abs());
        }
    }
    (wm, wc)
}

#[test]
fn ensf_follows_its_exact_linear_gaussian_law() {
    // The noisy spring observed in position every second state, 10⁴ members, paired score: at
    // every state the ensemble's mean and variances match the exact N → ∞ law of the discrete
    // scheme (mean standard error 0.01 std, variance 1.4 %), for two step counts. The law is
    // taken from the drawn initial ensemble's own mean and covariance.
    let lin = Linear::new(0.1, "stride:2@1|select:0", 24);
    let p = lin.problem();
    let n = 10_000;
    let start = initial_ensemble(&p, n, &mut method_rng(3));
    let (m0, a0) = split(&start);
    let p0 = &a0 * a0.transpose() / (n - 1) as f64;
    let kf = lin.filtered();
    for steps in [25, 200] {
        let ensf = Ensf {
            steps,
            ..Ensf::default()
        };
        let s = Settings {
            ensf: ensf.clone(),
            ..settings(n)
        };
        let exact = ensf_filtered(&lin, &ensf, 1.0, m0.clone(), p0.clone());
        let est = run(Method::Ensf, &s, &p, &|_| {}).unwrap();
        let (wm, wc) = worst(&est, &exact);
        eprintln!("ensf N_t = {steps}: mean off by {wm:.3} stds, variance by {wc:.3}");
        assert!(
            wm < 0.06 && wc < 0.08,
            "N_t = {steps}: {wm:.3} stds, {wc:.3}"
        );
        // The law it follows is not the Kalman filter's: the paired score under-corrects.
        let (km, _) = worst(&est, &kf);
        assert!(km > 0.5, "ensf is within {km:.3} stds of the Kalman filter");
        // Wrong filters fail the same check: the likelihood's sign flipped; the noise floor
        // ε_β doubled (the law of 0.025 against a run with 0.05). (The paired law hardly
        // depends on the damping, by 0.02 std here: the mixture test checks that.)
        let flipped = ensf::run_signed(&s, &p, &|_| {}, -1.0).unwrap();
        let (fm, fc) = worst(&flipped, &exact);
        assert!(fm > 0.3 || fc > 0.2, "sign flip passes: {fm:.3}, {fc:.3}");
        let floor = Settings {
            ensf: Ensf {
                eps_beta: 0.05,
                ..ensf.clone()
            },
            ..s.clone()
        };
        let u = run(Method::Ensf, &floor, &p, &|_| {}).unwrap();
        let (um, uc) = worst(&u, &exact);
        eprintln!("  wrong sign: {fm:.3} / {fc:.3}; ε_β doubled: {um:.3} / {uc:.3}");
        assert!(
            um > 0.2 && uc > 0.15,
            "a wrong ε_β passes: {um:.3}, {uc:.3}"
        );
    }
}

#[test]
fn ensf_mixture_follows_its_exact_law() {
    // One analysis of a forecast ensemble with the exact mean and covariance of N((1, 0), P),
    // P correlated, observed in its first component (y = 2.5, R = 1), by the mixture score
    // over all 2000 members. The law holds for N → ∞ (the mixture of the members then is the
    // Gaussian convolved with N(0, β²)): within 0.1 std (4.5 standard errors) and 8 %.
    let lin = Linear::new(0.1, "stride:1|select:0", 1);
    let n = 2000;
    let m = DVector::from_vec(vec![1.0, 0.0]);
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.4, 0.4, 0.6]);
    // Standard normal draws, whitened to the exact sample moments, then coloured.
    let mut rng = method_rng(11);
    let w = DMatrix::from_fn(2, n, |_, _| StandardNormal.sample(&mut rng));
    let (_, wa) = split(&w);
    let sw = (&wa * wa.transpose() / (n - 1) as f64).cholesky().unwrap();
    let white = sw.l().try_inverse().unwrap() * &wa;
    let x0 = join(&m, &(cov.clone().cholesky().unwrap().l() * white));
    let o = &lin.observations()[0];
    let y = DVector::from_element(1, 2.5);
    // `s` runs, `law` gives the exact answer.
    let check = |s: &Ensf, law: &Ensf, sign: f64, noise: f64| -> (f64, f64) {
        let mut prob = lin.problem();
        prob.std[0].fill(noise);
        prob.y[0] = y.clone();
        let r = DMatrix::from_element(1, 1, noise * noise);
        let (em, ec) = ensf_law(law, &m, &cov, &o.h, &r, &y, 1.0);
        let z = ensf::analysis(&prob, 0, &x0, s, &mut method_rng(5), sign);
        let (zm, za) = split(&z);
        let zc = &za * za.transpose() / (n - 1) as f64;
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..2 {
            worst.0 = worst.0.max((zm[i] - em[i]).abs() / ec[(i, i)].sqrt());
            worst.1 = worst.1.max((zc[(i, i)] / ec[(i, i)] - 1.0).abs());
        }
        worst
    };
    let mix = Ensf {
        steps: 100,
        score: EnsfScore::Mixture(None),
        ..Ensf::default()
    };
    let (gm, gc) = check(&mix, &mix, 1.0, 1.0);
    eprintln!("mixture: {gm:.3} stds, {gc:.3}");
    assert!(gm < 0.1 && gc < 0.08, "mixture: {gm:.3} stds, {gc:.3}");
    // With no information in the observation (std 10⁶) and ε_α = 0.05, β² = t, the output is
    // the prior (to O(ε_α)): this checks the schedule's b and σ².
    let legacy = Ensf {
        eps_alpha: 0.05,
        eps_beta: 0.0,
        ..mix.clone()
    };
    let (pm, pc) = check(&legacy, &legacy, 1.0, 1e6);
    eprintln!("prior only: {pm:.3} stds, {pc:.3}");
    assert!(pm < 0.1 && pc < 0.08, "prior only: {pm:.3} stds, {pc:.3}");
    // Wrong filters fail: the likelihood's sign flipped; no damping.
    let (fm, fc) = check(&mix, &mix, -1.0, 1.0);
    let (um, uc) = check(
        &Ensf {
            damping: Damping::None,
            ..mix.clone()
        },
        &mix,
        1.0,
        1.0,
    );
    eprintln!("  wrong sign: {fm:.3} / {fc:.3}; undamped: {um:.3} / {uc:.3}");
    assert!(fm > 0.3 || fc > 0.2, "sign flip passes: {fm:.3}, {fc:.3}");
    assert!(um > 0.3 || uc > 0.2, "no damping passes: {um:.3}, {uc:.3}");
}
