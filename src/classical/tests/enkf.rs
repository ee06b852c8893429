//! The ensemble Kalman filters and the EnKS against the exact Kalman filter and RTS smoother,
//! the LETKF against the ETKF, the Gaspari–Cohn taper, and rotations of the anomalies.

use super::*;

#[test]
fn ensemble_filters_match_the_kalman_filter() {
    let lin = Linear::new(0.1, "stride:2@1|select:0", 24);
    let p = lin.problem();
    let exact = lin.filtered();
    let etkf = run(Method::Etkf, &settings(2000), &p, &|_| {}).unwrap();
    assert_close("etkf", &etkf, &exact, 0.1, Some(0.12));
    // The DEnKF's half-gain anomaly update is exact only to second order in the gain: close,
    // not equal.
    let denkf = run(Method::Denkf, &settings(2000), &p, &|_| {}).unwrap();
    assert_close("denkf", &denkf, &exact, 0.3, None);
    let enkf = run(Method::Enkf, &settings(4000), &p, &|_| {}).unwrap();
    assert_close("enkf", &enkf, &exact, 0.1, Some(0.12));
    // A wrong filter is far off: the prior forecast alone, with no analysis.
    let mut bad = lin.problem();
    bad.y.iter_mut().for_each(|y| *y *= -1.0);
    let wrong = run(Method::Etkf, &settings(2000), &bad, &|_| {}).unwrap();
    let r = std::panic::catch_unwind(|| assert_close("negated", &wrong, &exact, 0.1, None));
    assert!(r.is_err(), "the check must be able to fail");
}

#[test]
fn enks_with_full_lag_matches_the_rts_smoother() {
    // Several seeds: with 2000 members the gain's sampling error alone moves the mean by up to
    // 0.15 posterior std on some seeds (the innovations are several stds), so 0.2 per seed;
    // the filter's estimates, or a smoother of another lag, are off by far more.
    let lin = Linear::new(0.1, "stride:2@1|select:0", 24);
    let p = lin.problem();
    let n_obs = p.times.len();
    for seed in [0, 1, 2, 3] {
        let s = Settings {
            lag: n_obs,
            seed,
            ..settings(2000)
        };
        let enks = run(Method::Enks, &s, &p, &|_| {}).unwrap();
        assert_close("enks", &enks, &lin.smoothed(), 0.2, Some(0.15));
        // A short lag: each state sees the observations of two more cycles.
        let s2 = Settings { lag: 2, ..s };
        let enks2 = run(Method::Enks, &s2, &p, &|_| {}).unwrap();
        assert_close("enks lag 2", &enks2, &lin.lagged(2), 0.2, Some(0.15));
        // The filter is not the smoother: the same check must fail against the filtered states.
        let filtered = lin.filtered();
        let far = (0..enks.length).any(|t| {
            let (m, c) = (&filtered.0[t], &filtered.1[t]);
            (0..2).any(|i| (enks.mean(t)[i] - m[i]).abs() / c[(i, i)].sqrt() > 0.5)
        });
        assert!(
            far,
            "enks (seed {seed}) is as close to the filter as to the smoother"
        );
    }
}

#[test]
fn letkf_without_localisation_is_the_etkf() {
    let model = Lorenz96 {
        n: 40,
        forcing: 8.0,
        dt: 0.05,
        noise: 0.0,
    };
    let (op, y, noise) = l96_problem(&model, 30);
    let mut x0 = vec![0.0; 40];
    x0[0] = 1.0;
    let p = Problem::new(&model, &op, &y, &noise, 30, Some(x0), 0.3, None).unwrap();
    let s = Settings {
        members: 10,
        inflation: 1.05,
        ..Default::default()
    };
    let etkf = run(Method::Etkf, &s, &p, &|_| {}).unwrap();
    for block in [1, 2] {
        let l = run(Method::Letkf, &Settings { block, ..s.clone() }, &p, &|_| {}).unwrap();
        let diff = etkf
            .data
            .iter()
            .zip(&l.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-8, "block {block}: {diff}");
    }
    // A finite radius changes the answer.
    let loc = Settings {
        radius: 4.0,
        ..s.clone()
    };
    let l = run(Method::Letkf, &loc, &p, &|_| {}).unwrap();
    assert!(
        etkf.data
            .iter()
            .zip(&l.data)
            .any(|(a, b)| (a - b).abs() > 1e-3)
    );
}

#[test]
fn gaspari_cohn_matches_the_table() {
    let table = [
        (0.0, 1.0),
        (1.0, 0.9703),
        (2.0, 0.8896),
        (3.0, 0.7722),
        (4.0, 0.6336),
        (6.0, 0.3534),
        (8.0, 0.1453),
        (10.0, 0.0386),
        (12.0, 0.00426),
        (13.0, 0.00062),
        (14.0, 0.0000107),
    ];
    for (d, v) in table {
        let w = Taper::Gc.weight(d, 4.0);
        // The table has four decimals, or two to three significant digits for small values.
        assert!(
            (w - v).abs() <= 5e-5f64.min(1e-2 * v),
            "ρ({d}) = {w}, table {v}"
        );
    }
    assert_eq!(Taper::Gc.weight(14.6, 4.0), 0.0);
    assert_eq!(Taper::Step.weight(4.0, 4.0), 1.0);
    assert_eq!(Taper::Step.weight(4.5, 4.0), 0.0);
}

#[test]
fn rotations_keep_mean_and_covariance() {
    let mut rng = method_rng(5);
    for n in [2, 3, 7, 24] {
        let q = mean_preserving_rotation(n, &mut rng);
        let ones = DVector::from_element(n, 1.0);
        assert!((&q * &ones - &ones).amax() < 1e-12);
        assert!((q.transpose() * &q - DMatrix::identity(n, n)).amax() < 1e-12);
        // (For N = 2 the only mean-preserving rotation of positive determinant is I.)
        assert!(
            n == 2 || (&q - DMatrix::identity(n, n)).amax() > 1e-3,
            "not the identity"
        );
        let e = DMatrix::from_fn(5, n, |i, j| ((i * 7 + j * 3) % 11) as f64 + 0.1 * j as f64);
        let mut r = e.clone();
        let s = Settings {
            rotate: true,
            ..Default::default()
        };
        post_process(&mut r, &s, &mut rng);
        let (m0, a0) = split(&e);
        let (m1, a1) = split(&r);
        assert!((m0 - m1).amax() < 1e-12);
        assert!((&a0 * a0.transpose() - &a1 * a1.transpose()).amax() < 1e-10);
        assert!(n == 2 || (e - r).amax() > 1e-6, "members moved");
    }
}
