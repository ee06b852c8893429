//! `sda filter --method` and `sda evaluate --skip` as a user meets them: a deterministic
//! Lorenz-96 run end to end, then the bad inputs, each a one-line error with nothing written.

use std::path::PathBuf;
use std::sync::OnceLock;

mod common;
use common::{fails_with, ok, s, sda};

/// A deterministic L96-40 data set and observations of every variable after the first state.
fn fixture() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sda-classical-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        ok(sda(&[
            "simulate",
            "lorenz96",
            "--size",
            "40",
            "--forcing",
            "8",
            "--dt",
            "0.05",
            "--noise",
            "0",
            "--trajectories",
            "10",
            "--length",
            "120",
            "--burn-in",
            "300",
            "--output",
            s(&data),
        ]));
        ok(sda(&[
            "observe",
            "--trajectories",
            s(&data.join("test.npy")),
            "--operator",
            "stride:1@1",
            "--noise",
            "1",
            "--output",
            s(&dir.join("obs")),
        ]));
        // As DAPPER's benchmarks: the initial ensemble around the truth's first state.
        let t = sda::io::read_npy(&dir.join("obs/truth.npy")).unwrap();
        let first = sda::io::Array::new(vec![40], t.data[..40].to_vec());
        sda::io::write_npy(&dir.join("x0.npy"), &first).unwrap();
        dir
    })
}

fn filter(extra: &[&str], out: &std::path::Path) -> std::process::Output {
    let dir = fixture();
    let (data, y) = (dir.join("data"), dir.join("obs/y.npy"));
    let mut args = vec![
        "filter",
        "--system",
        s(&data),
        "--observations",
        s(&y),
        "--operator",
        "stride:1@1",
        "--noise",
        "1",
        "--length",
        "120",
        "--initial-std",
        "0.1",
        "--output",
        s(out),
    ];
    let x0 = dir.join("x0.npy");
    args.extend_from_slice(&["--initial", s(&x0)]);
    args.extend_from_slice(extra);
    sda(&args)
}

#[test]
fn etkf_tracks_the_truth_and_evaluate_scores_it() {
    let dir = fixture();
    let out = dir.join("etkf.npy");
    ok(filter(
        &["--method", "etkf", "--members", "20", "--inflation", "1.05"],
        &out,
    ));
    let x = sda::io::read_npy(&out).unwrap();
    assert_eq!(x.shape, vec![20, 120, 40]);
    let text = ok(sda(&[
        "evaluate",
        "--samples",
        s(&out),
        "--truth",
        s(&dir.join("obs/truth.npy")),
        "--skip",
        "60",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rmse = v["time_averaged"]["rmse"].as_f64().unwrap();
    // Observation noise std 1 on every variable: a working filter is far below it (≈ 0.2–0.3),
    // a broken one near the climatological 3.6.
    assert!(rmse < 0.5, "etkf rmse {rmse}");
    assert_eq!(v["time_averaged"]["states"].as_u64(), Some(59));
}

#[test]
fn ensf_tracks_the_truth_through_the_cli() {
    let dir = fixture();
    let out = dir.join("ensf.npy");
    ok(filter(
        &["--method", "ensf", "--members", "20", "--ensf-steps", "100"],
        &out,
    ));
    let x = sda::io::read_npy(&out).unwrap();
    assert_eq!(x.shape, vec![20, 120, 40]);
    let text = ok(sda(&[
        "evaluate",
        "--samples",
        s(&out),
        "--truth",
        s(&dir.join("obs/truth.npy")),
        "--skip",
        "60",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rmse = v["time_averaged"]["rmse"].as_f64().unwrap();
    // Unit noise on every variable at every state: far below the climatological 3.6.
    assert!(rmse < 1.5, "ensf rmse {rmse}");
}

#[test]
fn bad_classical_settings_fail_in_one_line_and_write_nothing() {
    let dir = fixture();
    let out = dir.join("bad.npy");
    for (args, needle) in [
        (&["--method", "etkf", "--members", "1"][..], "--members"),
        (
            &["--method", "etkf", "--inflation", "0.9"][..],
            "--inflation",
        ),
        (&["--method", "letkf", "--radius", "0"][..], "--radius"),
        (
            &["--method", "letkf", "--radius", "4", "--block", "0"][..],
            "--block",
        ),
        // The former spelling of --block is still read, as --block.
        (
            &["--method", "letkf", "--radius", "4", "--batch", "0"][..],
            "--block",
        ),
        (&["--method", "enks", "--lag", "500"][..], "--lag"),
        (&["--method", "bpf"][..], "deterministic"),
        (&["--method", "ensf", "--members", "1"][..], "--members"),
        (
            &["--method", "ensf", "--ensf-steps", "0"][..],
            "--ensf-steps",
        ),
        (
            &["--method", "ensf", "--ensf-eps-beta", "1"][..],
            "--ensf-eps-beta",
        ),
        (
            &["--method", "ensf", "--ensf-score", "mixture:21"][..],
            "--ensf-score",
        ),
    ] {
        fails_with(&filter(args, &out), &out, needle);
    }
    // OI on a named system needs --climatology (on a data folder it is the statistical
    // baseline fitted on the training split, tests/baselines.rs).
    let o = sda(&[
        "filter",
        "--system",
        "lorenz96",
        "--method",
        "oi",
        "--observations",
        s(&dir.join("obs/y.npy")),
        "--operator",
        "stride:1@1",
        "--noise",
        "1",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "--climatology");
    let o = filter(&["--method", "kalmanish"], &out);
    assert!(!o.status.success() && !out.exists());
    // A value clap cannot parse: its own message, naming the flag.
    let o = filter(&["--method", "ensf", "--ensf-score", "mixture:0"], &out);
    assert!(!o.status.success() && !out.exists());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--ensf-score"));
}

/// `sda study lorenz96` at a tiny size: the classical rows, an SDA row from a prior it trains
/// (a small MLP on 320 short chains), the prior reused on a rerun, and `--no-sda`.
#[test]
fn lorenz96_study_adds_sda_beside_the_classical_methods() {
    let dir = fixture().join("study96");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "study",
            "lorenz96",
            "--output",
            s(&dir),
            "--cases",
            "sakov2008",
            "--cycles",
            "480",
            "--sda-chains",
            "320",
            "--sda-epochs",
            "1000",
            "--sda-networks",
            "mlp",
            "--sda-width",
            "128",
            "--sda-samples",
            "4",
            "--steps",
            "32",
            // A prior this crude needs the likelihood's variance inflated (γ = 0.03 diverges).
            "--gamma",
            "0.3",
            // Even so, the first state of its samples runs away (to ~126 training stds, a state
            // the scores leave out), and the guard would refuse the row.
            "--no-guard",
        ];
        args.extend_from_slice(extra);
        ok(sda(&args))
    };
    let first = run(&[]);
    assert!(first.contains("trained the L96-40 prior"), "{first}");
    let csv = std::fs::read_to_string(dir.join("lorenz96.csv")).unwrap();
    let rmse = |method: &str| -> f64 {
        let line = csv
            .lines()
            .find(|l| l.split(',').nth(2).is_some_and(|m| m.starts_with(method)))
            .unwrap_or_else(|| panic!("no {method} row in {csv}"));
        line.split(',').nth(3).unwrap().parse().unwrap()
    };
    let (clim, sda_rmse, etkf) = (rmse("climatology"), rmse("sda mlp k=2"), rmse("etkf"));
    // Unit-noise observations of every variable at every state: even a crude prior pulls the
    // posterior mean well below climatology (≈ 3.6) and below the noise; a sampler that ignores
    // the observations or diverges does not.
    assert!(
        sda_rmse < 1.0 && sda_rmse < 0.3 * clim,
        "sda {sda_rmse}, climatology {clim}"
    );
    assert!(etkf < 0.5, "etkf {etkf}");
    assert!(dir.join("lorenz96-sakov2008-hovmoller.png").exists());
    // The prior is reused; without SDA only the classical rows remain.
    let second = run(&["--no-sda"]);
    assert!(!second.contains("trained"), "{second}");
    let csv = std::fs::read_to_string(dir.join("lorenz96.csv")).unwrap();
    assert!(!csv.contains("sda mlp k="), "{csv}");
    let third = run(&["--truth-seeds", "3001"]);
    assert!(!third.contains("trained"), "{third}");
}
