//! Transforms of positive and bounded quantities (`sda import --transform`): the
//! normalisation is fitted to the transformed training values while the arrays stay in
//! physical units, values outside a transform's domain are refused in one line naming the
//! variable and the place, observations are transformed with their noise std mapped to first
//! order (checked by hand), and a log-transformed positive data set gives positive samples.

use std::path::{Path, PathBuf};

use sda::assimilate::Observed;
use sda::data::SystemInfo;
use sda::io::Array;
use sda::record::{Axis, Gaps, Record, SplitByTime, VariableInfo, Windows};
use sda::score::operator::Operator;
use sda::transform::{Transform, TransformSpec};

mod common;
use common::{fails_with, ok, s, sda};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-transforms-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn variable(name: &str) -> VariableInfo {
    VariableInfo {
        name: name.into(),
        dtype: "float".into(),
        dims: vec!["time".into(), "station".into()],
        shape: vec![12, 2],
        units: None,
        long_name: None,
    }
}

/// 12 daily steps at 2 stations of U (any sign: t − 5 + j) and P (positive: exp(0.1 t + j)):
/// states `(U₀, U₁, P₀, P₁)`.
fn record(p: impl Fn(usize, usize) -> f64) -> Record {
    let mut values = Vec::new();
    for t in 0..12 {
        for j in 0..2 {
            values.push(t as f64 - 5.0 + j as f64);
        }
        for j in 0..2 {
            values.push(p(t, j));
        }
    }
    Record {
        origin: "r.nc".into(),
        format: "NetCDF-3 classic".into(),
        variables: vec![variable("U"), variable("P")],
        time: Axis {
            name: "time".into(),
            values: (0..12).map(|t| t as f64).collect(),
            units: Some("days since 2000-01-01".into()),
            calendar: Some("standard".into()),
        },
        space: vec![Axis {
            name: "station".into(),
            values: vec![10.0, 20.0],
            units: None,
            calendar: None,
        }],
        values,
        edits: vec![],
        stations: None,
    }
}

fn windows(transform: &[&str]) -> Windows {
    Windows {
        window: 3,
        stride: 1,
        split: SplitByTime::parse(&[6.0, 3.0, 3.0]).unwrap(),
        gaps: Gaps::Drop,
        transform: TransformSpec::parse(
            &transform.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        )
        .unwrap(),
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

#[test]
fn the_normalisation_is_of_the_logarithms_and_the_windows_stay_physical() {
    let r = record(|t, j| (0.1 * t as f64 + j as f64).exp());
    let cut = sda::record::cut(&r, &windows(&["P=log"])).unwrap();
    let info = &cut.splits.info;
    assert_eq!(info.transforms.describe(), "U=none, P=log");
    assert!(
        cut.summary().contains("transforms U=none, P=log"),
        "{}",
        cut.summary()
    );
    // The training period is steps 0..6: U₀ = t − 5 and ln P₁ = 0.1 t + 1 over t = 0..5.
    let steps: Vec<f64> = (0..6).map(|t| t as f64).collect();
    let (mu, su) = mean_std(&steps.iter().map(|t| t - 5.0).collect::<Vec<_>>());
    let (ml, sl) = mean_std(&steps.iter().map(|t| 0.1 * t + 1.0).collect::<Vec<_>>());
    let n = &info.normalisation;
    assert!((n.mean[0] - mu).abs() < 1e-12 && (n.scale[0] - su).abs() < 1e-12);
    assert!((n.mean[3] - ml).abs() < 1e-12, "{} vs {ml}", n.mean[3]);
    assert!((n.scale[3] - sl).abs() < 1e-12, "{} vs {sl}", n.scale[3]);
    // The windows hold the physical values: window 1 of train starts at step 1.
    let w = &cut.splits.train;
    assert_eq!(w.shape, vec![4, 3, 4]);
    assert!((w.data[12 + 3] as f64 - (0.1f64 + 1.0).exp()).abs() < 1e-5);
    // What the networks see, and back: ln P normalised, then exp again.
    let mut x = w.data.clone();
    info.to_model(&mut x);
    let z = ((0.1 + 1.0) - ml) / sl;
    assert!((x[12 + 3] as f64 - z).abs() < 1e-5, "{} vs {z}", x[12 + 3]);
    info.from_model(&mut x);
    for (a, b) in x.iter().zip(&w.data) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    // system.json keeps the transforms; without any it has no such field.
    let json = serde_json::to_string(info).unwrap();
    assert!(
        json.contains(
            r#""transforms":[{"name":"U","transform":"none"},{"name":"P","transform":"log"}]"#
        ),
        "{json}"
    );
    let back: SystemInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(back.transforms, info.transforms);
    let plain = sda::record::cut(&r, &windows(&[])).unwrap();
    assert!(
        !serde_json::to_string(&plain.splits.info)
            .unwrap()
            .contains("transforms")
    );
}

#[test]
fn values_outside_a_domain_are_refused_naming_the_variable_and_the_place() {
    // P is 0 at step 4, station 1: log refuses it, log:0.1 and sqrt take it, logit refuses P ≥ 1.
    let r = record(|t, j| if (t, j) == (4, 1) { 0.0 } else { 0.5 });
    let e = sda::record::cut(&r, &windows(&["P=log"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("r.nc")
            && e.contains("variable P (--transform P=log)")
            && e.contains("value 0 at time step 4 (time 4), state index [3]")
            && e.contains("log:0.1"),
        "{e}"
    );
    assert!(sda::record::cut(&r, &windows(&["P=log:0.1"])).is_ok());
    assert!(
        sda::record::cut(&r, &windows(&["sqrt"]))
            .unwrap_err()
            .to_string()
            .contains("variable U")
    );
    let e = sda::record::cut(&r, &windows(&["P=logit"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("value 0 at time step 4"), "{e}");
    let e = TransformSpec::parse(&["Q=log".into()])
        .unwrap()
        .resolve(&["U".into(), "P".into()]);
    assert!(e.unwrap_err().to_string().contains("no variable 'Q'"));

    // The command line: one line, nothing written.
    let d = dir("refuse");
    let x: Vec<f32> = (0..5 * 4 * 2)
        .map(|k| if k == 13 { -0.5 } else { 1.0 })
        .collect();
    let path = d.join("x.npy");
    sda::io::write_npy(&path, &Array::new(vec![5, 4, 2], x)).unwrap();
    let out = d.join("data");
    let o = sda(&[
        "import",
        "--train",
        s(&path),
        "--transform",
        "1=sqrt",
        "--output",
        s(&out),
    ]);
    fails_with(
        &o,
        &out,
        "variable 1 (--transform 1=sqrt): value -0.5 at [1, 2, 1]: sqrt needs values ≥ 0",
    );
    let o = sda(&[
        "import",
        "--train",
        s(&path),
        "--transform",
        "exp",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "'exp' is not a transform");
    let o = sda(&[
        "import",
        "--train",
        s(&path),
        "--transform",
        "log:-1",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "positive number");
    // Component 0 alone is log-transformed: the negative value is in component 1.
    ok(sda(&[
        "import",
        "--train",
        s(&path),
        "--transform",
        "0=log",
        "--output",
        s(&out),
    ]));
    let info = sda::data::read_info(&out).unwrap();
    assert_eq!(info.transforms.describe(), "0=log, 1=none");
    std::fs::remove_dir_all(&d).unwrap();
}

fn info_with(transforms: &[&str]) -> SystemInfo {
    let r = record(|t, j| (0.1 * t as f64 + j as f64).exp() * 0.01 + 0.001);
    sda::record::cut(&r, &windows(transforms))
        .unwrap()
        .splits
        .info
}

#[test]
fn observations_are_transformed_with_their_std_mapped_to_first_order() {
    let info = info_with(&["P=log"]);
    let d = dir("obs");
    // A table: P₀ = e at time 0 (std 0.1), U₁ = −3 at time 1 (std 0.5), P₁ = 2 at time 2.
    let csv = d.join("obs.csv");
    std::fs::write(
        &csv,
        "time,index,value,std\n1,1,-3,0.5\n0,2,2.718281828,0.1\n2,3,2,0.4\n",
    )
    .unwrap();
    let o = Observed::from_table(&csv).unwrap();
    let z = o.transformed(&info, 3).unwrap();
    // Sorted by time: (0, P₀), (1, U₁), (2, P₁).
    let want_y = [1.0, -3.0, 2f64.ln()];
    let want_s = [0.1 / std::f64::consts::E, 0.5, 0.4 / 2.0];
    for k in 0..3 {
        assert!(
            (z.y.data[k] as f64 - want_y[k]).abs() < 1e-6,
            "y {k}: {}",
            z.y.data[k]
        );
        assert!(
            (z.noise[k] as f64 - want_s[k]).abs() < 1e-6,
            "σ {k}: {}",
            z.noise[k]
        );
    }
    // An array with an operator: values 0 (U₀) and 3 (P₁) of state 1.
    let direct = Observed {
        operator: Operator::parse("at:1|select:0,3").unwrap(),
        y: Array::new(vec![1, 2], vec![-2.0, 4.0]),
        noise: vec![0.2, 0.2],
    };
    direct.check(&info.state_shape, 3, "y").unwrap();
    let z = direct.transformed(&info, 3).unwrap();
    assert_eq!(z.y.data[0], -2.0);
    assert!((z.y.data[1] - 4f32.ln()).abs() < 1e-6);
    assert!((z.noise[0] - 0.2).abs() < 1e-7 && (z.noise[1] - 0.05).abs() < 1e-7);
    // sqrt: σ/(2√y); logit: σ/(y(1 − y)).
    let info_sqrt = info_with(&["P=sqrt"]);
    let z = direct.transformed(&info_sqrt, 3).unwrap();
    assert!((z.y.data[1] - 2.0).abs() < 1e-6 && (z.noise[1] - 0.05).abs() < 1e-7);
    let share = Observed {
        y: Array::new(vec![1, 2], vec![-2.0, 0.2]),
        ..direct.clone()
    };
    let info_logit = info_with(&["P=logit"]);
    let z = share.transformed(&info_logit, 3).unwrap();
    assert!((z.y.data[1] as f64 - 0.25f64.ln()).abs() < 1e-6);
    assert!((z.noise[1] as f64 - 0.2 / 0.16).abs() < 1e-5);

    // Refusals: outside the domain (naming the line or index), sqrt at 0, operators that mix.
    std::fs::write(&csv, "time,index,value,std\n0,2,-1,0.1\n").unwrap();
    let e = Observed::from_table(&csv)
        .unwrap()
        .transformed(&info, 3)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("obs.csv line 2: value -1 of variable P (the model learns P=log)"),
        "{e}"
    );
    let zero = Observed {
        y: Array::new(vec![1, 2], vec![-2.0, 0.0]),
        ..direct.clone()
    };
    let e = zero.transformed(&info, 3).unwrap_err().to_string();
    assert!(e.contains("y[0, 1]: value 0 of variable P"), "{e}");
    let e = zero.transformed(&info_sqrt, 3).unwrap_err().to_string();
    assert!(e.contains("infinite at 0"), "{e}");
    let mixed = Observed {
        operator: Operator::parse("at:1|saturate").unwrap(),
        y: Array::new(vec![1, 4], vec![0.1; 4]),
        noise: vec![0.1; 4],
    };
    let e = mixed.transformed(&info, 3).unwrap_err().to_string();
    assert!(e.contains("'at:1|saturate' mixes or maps"), "{e}");
    // Without transforms the observations are the given ones, whatever the operator.
    let plain = info_with(&[]);
    let same = mixed.transformed(&plain, 3).unwrap();
    assert_eq!(same.y, mixed.y);
    assert_eq!(Transform::Sqrt.std(4.0, 0.2), 0.05);
    std::fs::remove_dir_all(&d).unwrap();
}

/// Log-normal AR(1) chains `(n, length, 2)`: positive, with a long right tail.
fn positive_chains(n: usize, length: usize) -> Array {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut data = Vec::with_capacity(n * length * 2);
    for _ in 0..n {
        let mut z: [f64; 2] = [
            StandardNormal.sample(&mut rng),
            StandardNormal.sample(&mut rng),
        ];
        for _ in 0..length {
            for v in z.iter_mut() {
                data.push(v.exp() as f32);
                let e: f64 = StandardNormal.sample(&mut rng);
                *v = 0.9 * *v + (1.0f64 - 0.81).sqrt() * e;
            }
        }
    }
    Array::new(vec![n, length, 2], data)
}

fn all_positive(p: &Path) -> (usize, f32) {
    let x = sda::io::read_npy(p).unwrap();
    (
        x.data.len(),
        x.data.iter().copied().fold(f32::INFINITY, f32::min),
    )
}

#[test]
fn a_log_transformed_positive_data_set_gives_positive_samples() {
    let d = dir("positive");
    let path = d.join("x.npy");
    sda::io::write_npy(&path, &positive_chains(128, 12)).unwrap();
    let data = d.join("data");
    let run = d.join("run");
    let printed = ok(sda(&[
        "import",
        "--train",
        s(&path),
        "--transform",
        "log",
        "--output",
        s(&data),
    ]));
    assert!(printed.contains("transforms 0=log, 1=log"), "{printed}");
    ok(sda(&[
        "train",
        "--data",
        s(&data),
        "--output",
        s(&run),
        "--epochs",
        "1000",
        "--width",
        "64",
        "--depth",
        "3",
        "--order",
        "1",
    ]));
    // The training arrays are in physical units, the model's config keeps the transforms.
    let config = sda::model::RunConfig::read(&run.join("config.json")).unwrap();
    assert_eq!(config.data.transforms.describe(), "0=log, 1=log");
    let prior = d.join("prior.npy");
    ok(sda(&[
        "sample",
        "--model",
        s(&run),
        "--length",
        "12",
        "--samples",
        "16",
        "--output",
        s(&prior),
    ]));
    let (n, min) = all_positive(&prior);
    assert_eq!(n, 16 * 12 * 2);
    assert!(min > 0.0, "a log-transformed prior sample is {min}");
    // Observations in physical units pull the samples, which stay positive.
    let csv = d.join("obs.csv");
    std::fs::write(&csv, "time,index,value,std\n2,0,3.0,0.05\n6,1,0.2,0.01\n").unwrap();
    let x = d.join("x.npy");
    let printed = ok(sda(&[
        "assimilate",
        "--model",
        s(&run),
        "--observations",
        s(&csv),
        "--length",
        "12",
        "--samples",
        "16",
        "--output",
        s(&x),
    ]));
    assert!(printed.contains("rms((A(x) − y) / σ_y)"), "{printed}");
    let (_, min) = all_positive(&x);
    assert!(min > 0.0, "a log-transformed posterior sample is {min}");
    let a = sda::io::read_npy(&x).unwrap();
    let at = |s: usize, t: usize, j: usize| a.data[(s * 12 + t) * 2 + j];
    let mean = |t, j| (0..16).map(|s| at(s, t, j) as f64).sum::<f64>() / 16.0;
    // Within a few noise stds of what was observed (the prior alone spreads over ~0.2 … 5).
    assert!((mean(2, 0) - 3.0).abs() < 0.5, "{}", mean(2, 0));
    assert!((mean(6, 1) - 0.2).abs() < 0.05, "{}", mean(6, 1));
    // Observations outside the domain and mixing operators are refused before sampling.
    std::fs::write(&csv, "time,index,value,std\n2,0,-1.0,0.05\n").unwrap();
    let out = d.join("bad.npy");
    let o = sda(&[
        "assimilate",
        "--model",
        s(&run),
        "--observations",
        s(&csv),
        "--length",
        "12",
        "--output",
        s(&out),
    ]);
    fails_with(
        &o,
        &out,
        "line 2: value -1 of variable 0 (the model learns 0=log)",
    );
    std::fs::remove_dir_all(&d).unwrap();
}
