use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::climate::{Climate, Eofs, Keep, Training};
use super::lim::{LinearChain, Observation};
use super::*;
use crate::axis::Axis;
use crate::import::{ImportSpec, Input, prepare};
use crate::record::{Gaps, Record, SplitByTime, Windows};
use crate::record_info::VariableInfo;
use crate::score::operator::Operator;
use crate::score::table::Table;

/// Observations from the text of a table.
fn table(text: &str) -> Observed {
    let t = Table::parse(text, "obs.csv").unwrap();
    Observed {
        operator: Operator::from_table(&t),
        y: Array::new(vec![t.rows.len()], t.values()),
        noise: t.stds(),
    }
}

/// An imported (external) data set whose training split is `train`, kept in order.
fn imported(train: Array) -> (SystemInfo, Array) {
    let mut valid = train.clone();
    valid.shape[0] = 1;
    valid.data.truncate(valid.shape.iter().product());
    let input = |a: Array| Input {
        array: a,
        origin: "x.npy".into(),
        dtype: "float32".into(),
    };
    let spec = ImportSpec {
        train: input(train),
        valid_test: Some((input(valid), None)),
        split: crate::import::DEFAULT_SPLIT,
        seed: 0,
        context: None,
        layout: crate::mcs::Layout::Vector,
        transform: crate::transform::TransformSpec::All(crate::transform::Transform::None),
    };
    let i = prepare(&spec).unwrap();
    (i.info, i.train)
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

/// A random `n × n` covariance `B Bᵀ + 0.1 I`.
fn spd(rng: &mut StdRng, n: usize) -> DMatrix<f64> {
    let b = DMatrix::from_fn(n, n, |_, _| normal(rng));
    &b * b.transpose() + DMatrix::identity(n, n) * 0.1
}

/// The joint covariance of `p_0 … p_{L−1}` of a chain: `Cov(p_t, p_s) = A^{t−s} Σ_s`.
fn joint(chain: &LinearChain, length: usize) -> DMatrix<f64> {
    let k = chain.a.nrows();
    let mut sigma = vec![chain.p0.clone()];
    for t in 1..length {
        let s = &chain.a * &sigma[t - 1] * chain.a.transpose() + &chain.q;
        sigma.push(s);
    }
    let mut big = DMatrix::zeros(k * length, k * length);
    for (s, sig) in sigma.iter().enumerate() {
        let mut block = sig.clone();
        for t in s..length {
            big.view_mut((t * k, s * k), (k, k)).copy_from(&block);
            big.view_mut((s * k, t * k), (k, k))
                .copy_from(&block.transpose());
            block = &chain.a * block;
        }
    }
    big
}

#[test]
fn rts_smoother_and_backward_sampling_equal_dense_gaussian_conditioning() {
    let mut rng = StdRng::seed_from_u64(1);
    let (k, l) = (2, 6);
    let chain = LinearChain {
        a: DMatrix::from_row_slice(2, 2, &[0.8, 0.3, -0.2, 0.6]),
        q: spd(&mut rng, k) * 0.3,
        p0: spd(&mut rng, k),
    };
    // Two observations of state 3 (one of two values, one of one), one of states 1 and 5.
    let obs: Vec<Observation> = [(1, 1), (3, 2), (3, 1), (5, 2)]
        .iter()
        .map(|&(time, m)| Observation {
            time,
            g: DMatrix::from_fn(m, k, |_, _| normal(&mut rng)),
            r: spd(&mut rng, m) * 0.2,
            d: DVector::from_fn(m, |_, _| normal(&mut rng)),
        })
        .collect();
    // Dense: condition the whole trajectory's Gaussian on every observation at once.
    let prior = joint(&chain, l);
    let m: usize = obs.iter().map(|o| o.d.len()).sum();
    let mut h = DMatrix::zeros(m, k * l);
    let mut r = DMatrix::zeros(m, m);
    let mut d = DVector::zeros(m);
    let mut row = 0;
    for o in &obs {
        let n = o.d.len();
        h.view_mut((row, o.time * k), (n, k)).copy_from(&o.g);
        r.view_mut((row, row), (n, n)).copy_from(&o.r);
        d.rows_mut(row, n).copy_from(&o.d);
        row += n;
    }
    let gain = &prior * h.transpose() * (&h * &prior * h.transpose() + r).try_inverse().unwrap();
    let mean = &gain * d;
    let cov = &prior - &gain * &h * &prior;
    let sm = chain.smooth(l, &obs).unwrap();
    for t in 0..l {
        for i in 0..k {
            assert!(
                (sm.mean[t][i] - mean[t * k + i]).abs() < 1e-9,
                "mean {t} {i}"
            );
            for j in 0..k {
                let want = cov[(t * k + i, t * k + j)];
                assert!((sm.cov[t][(i, j)] - want).abs() < 1e-9, "cov {t} {i} {j}");
            }
        }
    }
    // Backward sampling draws whole trajectories: their mean and the covariance of states 2 and
    // 3 (across time) match the dense posterior within five standard errors.
    let n = 20000;
    let draws: Vec<Vec<DVector<f64>>> = (0..n).map(|_| sm.sample(&mut rng)).collect();
    for t in 0..l {
        for i in 0..k {
            let avg = draws.iter().map(|p| p[t][i]).sum::<f64>() / n as f64;
            let se = (cov[(t * k + i, t * k + i)] / n as f64).sqrt();
            assert!(
                (avg - mean[t * k + i]).abs() < 5.0 * se,
                "draw mean {t} {i}"
            );
        }
    }
    let (a, b) = (2 * k, 3 * k + 1);
    let c = draws
        .iter()
        .map(|p| (p[2][0] - mean[a]) * (p[3][1] - mean[b]))
        .sum::<f64>()
        / n as f64;
    let se = ((cov[(a, a)] * cov[(b, b)] + cov[(a, b)].powi(2)) / n as f64).sqrt();
    assert!((c - cov[(a, b)]).abs() < 5.0 * se, "{c} vs {}", cov[(a, b)]);
}

/// `n` training states of `d` correlated values (a random mixing of independent normals plus
/// a mean), as one trajectory per 10 states.
fn correlated(n: usize, d: usize, seed: u64) -> Array {
    let mut rng = StdRng::seed_from_u64(seed);
    let mix = DMatrix::from_fn(d, d, |_, _| normal(&mut rng));
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let z = DVector::from_fn(d, |_, _| normal(&mut rng));
        let x = &mix * z;
        data.extend((0..d).map(|i| (3.0 + i as f64 + x[i]) as f32));
    }
    Array::new(vec![n / 10, 10, d], data)
}

#[test]
fn oi_is_dense_gaussian_conditioning_on_the_low_rank_covariance() {
    let d = 5;
    let (info, train) = imported(correlated(400, d, 2));
    // State 1 observes values 0 and 3, value 3 twice (two instruments); state 2 value 4.
    let obs = table("time,index,value,std\n1,0,4.5,0.3\n1,3,5.0,0.5\n1,3,6.5,0.4\n2,4,9,0.2\n");
    let settings = Settings {
        samples: 4000,
        seed: 3,
        eofs: Some(2),
        start: None,
    };
    let out = run(Method::Oi, &info, &train, None, &obs, 4, &settings).unwrap();
    // The oracle: N(μ, S C S) with C the two EOFs plus remainder, conditioned densely.
    let t = Training::new(&info, &train, None).unwrap();
    let clim = Climate::fit(&t).unwrap();
    let eofs = Eofs::fit(&clim.anomalies(&t), Keep::Count(2)).unwrap();
    let s = DMatrix::from_diagonal(&clim.std[0]);
    let c = &s * eofs.dense() * &s;
    let mu = &clim.mean[0];
    let posterior = |rows: &[(usize, f64, f64)]| {
        let m = rows.len();
        let h = DMatrix::from_fn(m, d, |i, j| f64::from(rows[i].0 == j));
        let r = DMatrix::from_fn(m, m, |i, j| if i == j { rows[i].2.powi(2) } else { 0.0 });
        let y = DVector::from_fn(m, |i, _| rows[i].1);
        let gain = &c * h.transpose() * (&h * &c * h.transpose() + r).try_inverse().unwrap();
        (mu + &gain * (y - &h * mu), &c - &gain * &h * &c)
    };
    let at = |a: &Array, n: usize, t: usize, i: usize| a.data[(n * 4 + t) * d + i] as f64;
    let cases = [
        (1, posterior(&[(0, 4.5, 0.3), (3, 5.0, 0.5), (3, 6.5, 0.4)])),
        (2, posterior(&[(4, 9.0, 0.2)])),
        (0, (mu.clone(), c.clone())),
    ];
    for (time, (m, cov)) in &cases {
        for i in 0..d {
            let got = at(&out.mean, 0, *time, i);
            assert!(
                (got - m[i]).abs() < 1e-4 * (1.0 + m[i].abs()),
                "{time} {i}: {got} vs {}",
                m[i]
            );
            // The draws' variance within 5 standard errors (√(2/S) relative).
            let n = settings.samples;
            let var = (0..n)
                .map(|k| (at(&out.samples, k, *time, i) - m[i]).powi(2))
                .sum::<f64>()
                / n as f64;
            let want = cov[(i, i)];
            assert!(
                (var - want).abs() < 5.0 * want * (2.0 / n as f64).sqrt(),
                "var {time} {i}: {var} vs {want}"
            );
        }
    }
    // An unobserved state is the climatology.
    for i in 0..d {
        assert!((at(&out.mean, 0, 3, i) - mu[i]).abs() < 1e-6);
    }
}

#[test]
fn lim_recovers_a_known_propagator_and_noise() {
    // x_{t+1} = A x_t + N(0, Q) in 3 values, 200 000 steps in one record.
    let a = DMatrix::from_row_slice(3, 3, &[0.7, 0.2, 0.0, -0.1, 0.5, 0.1, 0.0, 0.3, 0.4]);
    let q = DMatrix::from_row_slice(3, 3, &[1.0, 0.3, 0.0, 0.3, 0.5, 0.1, 0.0, 0.1, 0.8]);
    let lq = q.clone().cholesky().unwrap().l();
    let n = 200_000;
    let mut rng = StdRng::seed_from_u64(4);
    let mut x = DVector::zeros(3);
    let mut data = Vec::with_capacity(n * 3);
    for _ in 0..n {
        x = &a * x + &lq * DVector::from_fn(3, |_, _| normal(&mut rng));
        data.extend(x.iter().map(|&v| (v + 10.0) as f32));
    }
    let (info, train) = imported(Array::new(vec![1, n, 3], data));
    let t = Training::new(&info, &train, None).unwrap();
    let clim = Climate::fit(&t).unwrap();
    let z = clim.anomalies(&t);
    let eofs = Eofs::fit(&z, Keep::Count(3)).unwrap();
    let fit = lim::fit(&(eofs.u.transpose() * &z), &t.pairs(1)).unwrap();
    // Back to physical units: x − μ = S U p.
    let su = DMatrix::from_diagonal(&clim.std[0]) * &eofs.u;
    let inv = su.clone().try_inverse().unwrap();
    let a_hat = &su * &fit.chain.a * &inv;
    let q_hat = &su * &fit.chain.q * su.transpose();
    // Standard errors of order 1/√n ≈ 0.0022: five of them, times the values' scale.
    let tol = 5.0 * 2.0 / (n as f64).sqrt();
    for i in 0..3 {
        for j in 0..3 {
            assert!(
                (a_hat[(i, j)] - a[(i, j)]).abs() < tol,
                "A {i} {j}: {a_hat}"
            );
            assert!(
                (q_hat[(i, j)] - q[(i, j)]).abs() < 2.0 * tol,
                "Q {i} {j}: {q_hat}"
            );
        }
    }
    assert_eq!(fit.clipped, 0);
    assert!(fit.radius < 1.0 && fit.radius > 0.5, "{}", fit.radius);
}

#[test]
fn climatology_and_persistence_by_hand() {
    // Two trajectories of three states of two values.
    let x = [
        [1.0, 10.0],
        [2.0, 12.0],
        [4.0, 11.0],
        [3.0, 14.0],
        [5.0, 10.0],
        [6.0, 12.0],
    ];
    let data: Vec<f32> = x.iter().flatten().map(|&v| v as f32).collect();
    let (info, train) = imported(Array::new(vec![2, 3, 2], data));
    // Value 0 is measured at state 1 (2.5, std 0.5); value 1 never.
    let obs = table("time,index,value,std\n1,0,2.5,0.5\n");
    let settings = Settings {
        samples: 40000,
        seed: 5,
        eofs: None,
        start: None,
    };
    let clim = run(Method::Climatology, &info, &train, None, &obs, 4, &settings).unwrap();
    let pers = run(Method::Persistence, &info, &train, None, &obs, 4, &settings).unwrap();
    // Means 3.5 and 11.5; unbiased variances 17.5/5 = 3.5 and 11.5/5 = 2.3.
    let (m0, m1, v0, v1): (f64, f64, f64, f64) = (3.5, 11.5, 3.5, 2.3);
    // Lag-1 differences of value 0: 1, 2, 2, 1 → δ₁² = 2.5; lag 2: 3, 3 → δ₂² = 9.
    let pers_sd = [
        (0.25f64 + 2.5).sqrt(),
        0.5,
        (0.25f64 + 2.5).sqrt(),
        (0.25f64 + 9.0).sqrt(),
    ];
    let sd = |a: &Array, t: usize, i: usize| {
        let n = a.shape[0];
        let v: Vec<f64> = (0..n).map(|k| a.data[(k * 4 + t) * 2 + i] as f64).collect();
        let m = v.iter().sum::<f64>() / n as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    // Relative standard error of a std from S draws: 1/√(2S) ≈ 0.0035.
    let close = |got: f64, want: f64| (got - want).abs() < 0.02 * want;
    for (t, &want_sd) in pers_sd.iter().enumerate() {
        assert!((clim.mean.data[t * 2] as f64 - m0).abs() < 1e-6);
        assert!((clim.mean.data[t * 2 + 1] as f64 - m1).abs() < 1e-6);
        assert!(
            close(sd(&clim.samples, t, 0), v0.sqrt()),
            "{}",
            sd(&clim.samples, t, 0)
        );
        assert!(close(sd(&clim.samples, t, 1), v1.sqrt()));
        assert!((pers.mean.data[t * 2] - 2.5).abs() < 1e-6);
        assert!((pers.mean.data[t * 2 + 1] as f64 - m1).abs() < 1e-6);
        assert!(
            close(sd(&pers.samples, t, 0), want_sd),
            "{t}: {}",
            sd(&pers.samples, t, 0)
        );
        assert!(close(sd(&pers.samples, t, 1), v1.sqrt()));
    }
}

/// A monthly record of 60 steps (from January), two stations: station 0 is `month + step/100`,
/// station 1 missing throughout (a fixed mask).
fn monthly_record() -> Record {
    let steps = 60;
    let mut values = Vec::new();
    for s in 0..steps {
        values.push((s % 12) as f64 + s as f64 / 100.0);
        values.push(f64::NAN);
    }
    Record {
        origin: "r.nc".into(),
        format: "NetCDF-3 classic".into(),
        variables: vec![VariableInfo {
            name: "T".into(),
            dtype: "float".into(),
            dims: vec!["time".into(), "station".into()],
            shape: vec![steps, 2],
            units: None,
            long_name: None,
        }],
        // Mid-month days of a 360-day calendar.
        time: Axis {
            name: "time".into(),
            values: (0..steps).map(|s| 15.0 + 30.0 * s as f64).collect(),
            units: Some("days since 2000-01-01".into()),
            calendar: Some("360_day".into()),
        },
        space: vec![Axis {
            name: "station".into(),
            values: vec![0.0, 1.0],
            units: None,
            calendar: None,
        }],
        values,
        edits: Vec::new(),
        stations: None,
    }
}

#[test]
fn a_monthly_record_gets_monthly_means_and_its_mask() {
    let cut = crate::record::cut(
        &monthly_record(),
        &Windows {
            window: 6,
            stride: 1,
            split: SplitByTime::Counts([36, 12, 12]),
            gaps: Gaps::Drop,
            transform: crate::transform::TransformSpec::All(crate::transform::Transform::None),
        },
    )
    .unwrap();
    let (info, train, mask) = (&cut.splits.info, &cut.splits.train, cut.mask.as_ref());
    let obs = table("time,index,value,std\n0,0,100,1\n");
    let settings = Settings {
        samples: 3,
        start: Some("test:1".into()),
        ..Settings::default()
    };
    let out = run(Method::Climatology, info, train, mask, &obs, 6, &settings).unwrap();
    // Test window 1 starts at step 49 (February). Month m's training values are m + s/100 for
    // s = m, m + 12, m + 24: mean m + (m + 12)/100.
    for t in 0..6 {
        let m = ((49 + t) % 12) as f64;
        let want = m + (m + 12.0) / 100.0;
        assert!((out.mean.data[t * 2] as f64 - want).abs() < 1e-5, "{t}");
        assert!(out.mean.data[t * 2 + 1].is_nan());
        assert!(out.samples.data[t * 2 + 1].is_nan());
    }
    assert!(out.report[0].contains("monthly"), "{:?}", out.report);
    // Without --start the months are unknown; past the record's end is refused; an observation
    // of the masked station is refused.
    let e = |s: Settings, o: &Observed| {
        run(Method::Oi, info, train, mask, o, 6, &s)
            .unwrap_err()
            .to_string()
    };
    let plain = Settings::default();
    assert!(e(plain.clone(), &obs).contains("--start: needed"));
    let late = Settings {
        start: Some("56".into()),
        ..plain.clone()
    };
    assert!(e(late, &obs).contains("lie outside the record's 60 steps"));
    let masked = table("time,index,value,std\n2,1,1,1\n");
    let ok = Settings {
        start: Some("test:0".into()),
        ..plain
    };
    assert!(e(ok, &masked).contains("value 1 of state 2 is masked"));
}

#[test]
fn hidden_values_are_scored_alone() {
    // Two samples of 2 states × 2 values; state 0's value 1 and state 1's value 0 observed.
    let samples = Array::new(vec![2, 2, 2], vec![1.0, 5.0, 7.0, 2.0, 3.0, 9.0, 9.0, 4.0]);
    let truth = Array::new(vec![2, 2], vec![1.0, 0.0, 0.0, 4.0]);
    let obs = table("time,index,value,std\n0,1,6,1\n1,0,8,1\n");
    let seen = points::observed_mask(&obs.operator, 2, &[2]).unwrap();
    assert_eq!(seen, vec![false, true, true, false]);
    let keep: Vec<bool> = seen.iter().map(|s| !s).collect();
    let e = crate::evaluate::evaluate_at(&samples, None, Some(&truth), None, None, Some(&keep))
        .unwrap();
    // Hidden values: (0, 0) with members 1, 3 (truth 1) and (1, 1) with 2, 4 (truth 4).
    // Means 2 and 3: errors 1 and 1 → RMSE 1. Variances 2 and 2 → spread √2.
    // CRPS: |1−1|+|3−1| = 2, /2 = 1, minus |1−3|/4 = 0.5 → 0.5; the same for the other.
    assert!((e.rmse.unwrap() - 1.0).abs() < 1e-12);
    assert!((e.spread.unwrap() - 2f64.sqrt()).abs() < 1e-12);
    assert!((e.crps.unwrap() - 0.5).abs() < 1e-12);
    // A masked value (NaN) is not a failure when it is left out.
    let mut nan = samples.clone();
    nan.data[1] = f32::NAN;
    let e =
        crate::evaluate::evaluate_at(&nan, None, Some(&truth), None, None, Some(&keep)).unwrap();
    assert_eq!(e.failed, 0);
    assert!((e.rmse.unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn operators_that_mix_values_have_no_hidden_values() {
    let op = Operator::parse("stride:2|select:1").unwrap();
    assert_eq!(
        points::observed_values(&op, 4, &[3]).unwrap(),
        vec![(0, 1), (2, 1)]
    );
    let op = Operator::parse("coarsen:2").unwrap();
    let e = points::observed_values(&op, 4, &[1, 4, 4]).unwrap_err();
    assert!(e.to_string().contains("not its values"), "{e}");
}

#[test]
fn lim_posterior_mean_is_dense_conditioning_of_the_whole_trajectory() {
    // An AR(1) record of 4 values, a LIM of 2 EOFs (the rest white), 5 states observed by a table.
    let (n, d, l) = (3000, 4, 5);
    let mut rng = StdRng::seed_from_u64(6);
    let mix = DMatrix::from_fn(d, d, |_, _| normal(&mut rng));
    let mut x = DVector::zeros(d);
    let mut data = Vec::new();
    for _ in 0..n {
        x = &x * 0.8 + &mix * DVector::from_fn(d, |_, _| normal(&mut rng));
        data.extend(x.iter().map(|&v| v as f32));
    }
    let (info, train) = imported(Array::new(vec![1, n, d], data));
    let obs =
        table("time,index,value,std\n0,1,2,0.5\n2,0,-1,0.3\n2,3,1.5,0.4\n2,3,1,0.6\n4,2,0.5,1\n");
    let settings = Settings {
        samples: 2,
        eofs: Some(2),
        ..Settings::default()
    };
    let out = run(Method::Lim, &info, &train, None, &obs, l, &settings).unwrap();
    let t = Training::new(&info, &train, None).unwrap();
    let clim = Climate::fit(&t).unwrap();
    let z = clim.anomalies(&t);
    let eofs = Eofs::fit(&z, Keep::Count(2)).unwrap();
    let fit = lim::fit(&(eofs.u.transpose() * &z), &t.pairs(1)).unwrap();
    // x_t = μ + S (U p_t + e_t): the joint covariance of the trajectory's values.
    let su = DMatrix::from_diagonal(&clim.std[0]) * &eofs.u;
    let jp = joint(&fit.chain, l);
    let mut big = DMatrix::zeros(l * d, l * d);
    for a in 0..l {
        for b in 0..l {
            let block = &su * jp.view((a * 2, b * 2), (2, 2)) * su.transpose();
            big.view_mut((a * d, b * d), (d, d)).copy_from(&block);
        }
        for i in 0..d {
            big[(a * d + i, a * d + i)] += eofs.rest[i] * clim.std[0][i].powi(2);
        }
    }
    let rows: [(usize, usize, f64, f64); 5] = [
        (0, 1, 2.0, 0.5),
        (2, 0, -1.0, 0.3),
        (2, 3, 1.5, 0.4),
        (2, 3, 1.0, 0.6),
        (4, 2, 0.5, 1.0),
    ];
    let m = rows.len();
    let h = DMatrix::from_fn(m, l * d, |r, j| f64::from(rows[r].0 * d + rows[r].1 == j));
    let r = DMatrix::from_fn(m, m, |a, b| if a == b { rows[a].3.powi(2) } else { 0.0 });
    let mu = DVector::from_fn(l * d, |j, _| clim.mean[0][j % d]);
    let y = DVector::from_fn(m, |a, _| rows[a].2);
    let gain = &big * h.transpose() * (&h * &big * h.transpose() + r).try_inverse().unwrap();
    let want = &mu + gain * (y - &h * &mu);
    for j in 0..l * d {
        let got = out.mean.data[j] as f64;
        assert!(
            (got - want[j]).abs() < 1e-4 * (1.0 + want[j].abs()),
            "{j}: {got} vs {}",
            want[j]
        );
    }
}

#[test]
fn scored_values_combine_the_fixed_mask_a_mask_and_the_unobserved_values() {
    use crate::baseline::points::scored_values;
    use crate::score::operator::Operator;
    // 4 states of 3 values; the fixed mask drops value 1, the mask drops state 3's value 2,
    // and `stride:2|select:0` observed value 0 at states 0 and 2.
    let fixed = Array::new(vec![3], vec![1.0, 0.0, 1.0]);
    let mut m = vec![1.0; 12];
    m[3 * 3 + 2] = 0.0;
    let mask = Array::new(vec![4, 3], m);
    let op = Operator::parse("stride:2|select:0").unwrap();
    let (keep, line) = scored_values(
        &[4, 3],
        Some((&fixed, "F")),
        Some((&mask, "M")),
        Some((&op, "U")),
    )
    .unwrap()
    .unwrap();
    let kept: Vec<usize> = (0..12).filter(|&i| keep[i]).collect();
    assert_eq!(kept, [2, 3, 5, 8, 9]);
    assert!(line.starts_with("scored at 5 of 12 values"), "{line}");
    assert!(
        line.contains("those M keeps") && line.contains("(U)"),
        "{line}"
    );
    assert!(scored_values(&[4, 3], None, None, None).unwrap().is_none());
    // A mask of another shape, and masks that leave nothing, are refused by name.
    let odd = Array::new(vec![5], vec![1.0; 5]);
    let e = scored_values(&[4, 3], None, Some((&odd, "M")), None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("M: of shape (5), not a state's (3)"),
        "{e}"
    );
    let e = scored_values(&[4, 3], Some((&odd, "F")), None, None).unwrap_err();
    assert!(
        e.to_string().starts_with("F: its mask is of shape (5)"),
        "{e}"
    );
    let none = Array::new(vec![3], vec![0.0; 3]);
    let e = scored_values(&[4, 3], None, Some((&none, "M")), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "M: no value of the trajectory is left to score"
    );
}
