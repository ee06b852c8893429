//! Kolmogorov flow through the command line, at a toy size: simulate, train a U-Net, observe
//! and assimilate with the paper's kinds of operators, evaluate, plot; and the bad inputs of
//! fields, each a one-line error with nothing written.

use std::path::PathBuf;
use std::sync::OnceLock;

mod common;
use common::{fails_with, ok, s, sda};

/// 16 × 16 fields (a 32² simulation block-averaged 2×) and a tiny U-Net, made once.
fn fixture() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sda-fields-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        ok(sda(&[
            "simulate",
            "kolmogorov",
            "--size",
            "32",
            "--coarsen",
            "2",
            "--trajectories",
            "10",
            "--length",
            "10",
            "--burn-in",
            "4",
            "--output",
            s(&data),
        ]));
        ok(sda(&[
            "train",
            "--data",
            s(&data),
            "--output",
            s(&dir.join("run")),
            "--hidden",
            "8,16",
            "--blocks",
            "1",
            "--epochs",
            "2",
            "--batch-size",
            "4",
        ]));
        ok(sda(&[
            "mask",
            "--size",
            "16",
            "--output",
            s(&dir.join("ring.npy")),
        ]));
        dir
    })
}

/// Observes test trajectory 0 with `op` and assimilates it; returns the samples' shape.
fn scenario(name: &str, op: &str, noise: &str, extra: &[&str]) -> Vec<usize> {
    let dir = fixture();
    let obs = dir.join(format!("obs-{name}"));
    let test = dir.join("data/test.npy");
    let mut argv = vec![
        "observe",
        "--trajectories",
        s(&test),
        "--length",
        "8",
        "--operator",
        op,
        "--noise",
        noise,
        "--output",
        s(&obs),
    ];
    argv.extend(extra);
    ok(sda(&argv));
    let out = dir.join(format!("x-{name}.npy"));
    let stdout = ok(sda(&[
        "assimilate",
        // A briefly trained prior: the plumbing is tested, not the samples.
        "--no-guard",
        "--model",
        s(&dir.join("run")),
        "--observations",
        s(&obs.join("y.npy")),
        "--operator",
        op,
        "--noise",
        noise,
        "--length",
        "8",
        "--samples",
        "2",
        "--steps",
        "3",
        "--output",
        s(&out),
    ]));
    assert!(stdout.contains("std(A(x) − y)"), "{stdout}");
    sda::io::read_npy(&out).unwrap().shape
}

#[test]
fn the_five_kinds_of_observation_run_end_to_end() {
    let ring = fixture().join("ring.npy");
    let ring_op = format!("last|vorticity|mask:{}", s(&ring));
    for (name, op, noise, extra) in [
        ("coarse", "stride:4|coarsen:4", "0.1", &[][..]),
        ("crop", "stride:3|coarsen:2|crop:2:6:2:6", "0.01", &[][..]),
        (
            "nonlinear",
            "stride:3|coarsen:2|vorticity|saturate|crop:1:7:1:7",
            "0.05",
            &[][..],
        ),
        ("sparse", "space-stride:4", "0.1", &[][..]),
        ("ring", ring_op.as_str(), "0.2", &["--fill", "0.6"][..]),
    ] {
        assert_eq!(
            scenario(name, op, noise, extra),
            vec![2, 8, 2, 16, 16],
            "{name}"
        );
    }
    let y = sda::io::read_npy(&fixture().join("obs-ring/y.npy")).unwrap();
    assert!(y.data.iter().all(|&v| v == 0.6), "--fill sets every value");
}

#[test]
fn evaluate_reports_residuals_and_the_resimulation_of_field_samples() {
    let dir = fixture();
    scenario("eval", "stride:4|coarsen:4", "0.1", &[]);
    let out = ok(sda(&[
        "evaluate",
        "--samples",
        s(&dir.join("x-eval.npy")),
        "--system",
        s(&dir.join("data")),
        "--observations",
        s(&dir.join("obs-eval/y.npy")),
        "--operator",
        "stride:4|coarsen:4",
        "--noise",
        "0.1",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["residual_std"].as_f64().unwrap().is_finite());
    assert!((v["noise_std"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    let errors = v["resimulation"]["relative_error"].as_array().unwrap();
    assert_eq!(errors.len(), 8);
}

#[test]
fn a_grid_that_does_not_divide_is_refused() {
    let out = fixture().join("bad-grid");
    let o = sda(&[
        "simulate",
        "kolmogorov",
        "--size",
        "30",
        "--coarsen",
        "4",
        "--trajectories",
        "4",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out.join("train.npy"), "--coarsen");
}

#[test]
fn crops_outside_the_grid_and_masks_of_the_wrong_shape_are_named() {
    let dir = fixture();
    for (op, needle) in [
        ("crop:0:20:0:4", "outside the 16 × 16 grid"),
        ("coarsen:3", "does not divide"),
    ] {
        let out = dir.join("bad-op");
        let o = sda(&[
            "observe",
            "--trajectories",
            s(&dir.join("data/test.npy")),
            "--operator",
            op,
            "--noise",
            "0.1",
            "--output",
            s(&out),
        ]);
        fails_with(&o, &out.join("y.npy"), needle);
    }
    let mask = dir.join("mask-8.npy");
    sda::io::write_npy(&mask, &sda::io::Array::new(vec![8, 8], vec![1.0; 64])).unwrap();
    let op = format!("last|vorticity|mask:{}", s(&mask));
    let y = dir.join("y-mask.npy");
    sda::io::write_npy(&y, &sda::io::Array::new(vec![1, 1, 64], vec![0.0; 64])).unwrap();
    let out = dir.join("x-bad-mask.npy");
    let o = sda(&[
        "assimilate",
        "--model",
        s(&dir.join("run")),
        "--observations",
        s(&y),
        "--operator",
        &op,
        "--noise",
        "0.1",
        "--length",
        "8",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "mask-8.npy is 8 × 8");
}
