//! The statistical baselines on the command line: `sda filter --method climatology|persistence|
//! oi|lim` on an imported data folder (imported with --valid and no --test), scored by `sda
//! evaluate --hidden`, and the messages of what they refuse.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fails_with, ok, s, sda};

fn write(path: &Path, shape: Vec<usize>, data: Vec<f32>) {
    sda::io::write_npy(path, &sda::io::Array::new(shape, data)).unwrap();
}

/// `n` trajectories of `l` states of 3 values: a slow oscillation, a copy of it with noise and
/// an independent noise, of different means.
fn trajectories(n: usize, l: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let mut out = Vec::with_capacity(n * l * 3);
    for r in 0..n {
        let phase = r as f32 * 0.7;
        for t in 0..l {
            let a = (phase + 0.4 * t as f32).sin() * 2.0;
            out.extend([a + 10.0, a + noise(), 3.0 * noise() - 4.0]);
        }
    }
    out
}

/// A data folder (train and valid only), a table of observations of valid trajectory 0 and its
/// truth, made once.
fn fixture() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sda-baselines-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir.join("x.npy"), vec![40, 12, 3], trajectories(40, 12, 1));
        write(&dir.join("v.npy"), vec![4, 12, 3], trajectories(4, 12, 2));
        let out = ok(sda(&[
            "import",
            "--train",
            s(&dir.join("x.npy")),
            "--valid",
            s(&dir.join("v.npy")),
            "--output",
            s(&dir.join("data")),
        ]));
        assert!(out.contains("40 + 4 + 0 trajectories"), "{out}");
        assert!(!dir.join("data/test.npy").exists());
        ok(sda(&[
            "observe",
            "--trajectories",
            s(&dir.join("data/valid.npy")),
            "--index",
            "0",
            "--length",
            "8",
            "--table",
            "--times",
            "4",
            "--stations",
            "2",
            "--noise",
            "0.1",
            "--seed",
            "3",
            "--output",
            s(&dir.join("obs")),
        ]));
        dir
    })
}

fn filter(method: &str, extra: &[&str], out: &Path) -> std::process::Output {
    let dir = fixture();
    let data = dir.join("data");
    let mut args = vec![
        "filter",
        "--system",
        s(&data),
        "--method",
        method,
        "--length",
        "8",
        "--output",
        s(out),
    ];
    let obs = dir.join("obs/obs.csv");
    if !extra.contains(&"--observations") {
        args.extend(["--observations", s(&obs)]);
    }
    args.extend(extra);
    sda(&args)
}

#[test]
fn every_baseline_writes_samples_and_a_mean_that_evaluate_scores_at_hidden_values() {
    let dir = fixture();
    let truth = sda::io::read_npy(&dir.join("obs/truth.npy")).unwrap();
    // The truth as (L, *state), which evaluate takes as one truth.
    let flat = dir.join("truth-flat.npy");
    write(&flat, vec![8, 3], truth.data.clone());
    for method in ["climatology", "persistence", "oi", "lim"] {
        let out = dir.join(format!("{method}.npy"));
        let mean = dir.join(format!("{method}-mean.npy"));
        let text = ok(filter(
            method,
            &["--samples", "32", "--mean", s(&mean), "--seed", "4"],
            &out,
        ));
        assert!(
            text.contains(&format!("{method}: 32 trajectories of 8 states")),
            "{text}"
        );
        let x = sda::io::read_npy(&out).unwrap();
        assert_eq!(x.shape, vec![32, 8, 3]);
        assert!(x.data.iter().all(|v| v.is_finite()));
        let m = sda::io::read_npy(&mean).unwrap();
        assert_eq!(m.shape, vec![1, 8, 3]);
        let scored = ok(sda(&[
            "evaluate",
            "--samples",
            s(&out),
            "--truth",
            s(&flat),
            "--observations",
            s(&dir.join("obs/obs.csv")),
            "--system",
            s(&dir.join("data")),
            "--unobserved",
        ]));
        assert!(
            scored.contains("scored at 16 of 24 values of the trajectory"),
            "{scored}"
        );
        for word in ["RMSE", "CRPS", "spread", "50 % / 90 %", "no simulator"] {
            assert!(scored.contains(word), "{method}: {word}: {scored}");
        }
        assert!(!scored.contains("deterministic"), "{scored}");
    }
    // The same seed, the same samples.
    let again = dir.join("oi-again.npy");
    ok(filter("oi", &["--samples", "32", "--seed", "4"], &again));
    assert_eq!(
        std::fs::read(dir.join("oi.npy")).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn npy_observations_with_an_operator_work_and_transforms_are_refused() {
    let dir = fixture();
    let truth = sda::io::read_npy(&dir.join("obs/truth.npy")).unwrap();
    // Values 0 and 2 of every other state: 4 × 2 observations.
    let y: Vec<f32> = (0..8)
        .step_by(2)
        .flat_map(|t| [truth.data[t * 3], truth.data[t * 3 + 2]])
        .collect();
    let yp = dir.join("y.npy");
    write(&yp, vec![4, 2], y);
    let out = dir.join("lim-npy.npy");
    let o = filter(
        "lim",
        &[
            "--observations",
            s(&yp),
            "--operator",
            "stride:2|select:0,2",
            "--noise",
            "0.1",
        ],
        &out,
    );
    let text = ok(o);
    assert!(text.contains("4 observed (8 values)"), "{text}");
    let bad = dir.join("saturate.npy");
    let o = filter(
        "oi",
        &[
            "--observations",
            s(&yp),
            "--operator",
            "stride:2|select:0,2|saturate",
            "--noise",
            "0.1",
        ],
        &bad,
    );
    fails_with(&o, &bad, "observes a transform of the state");
}

#[test]
fn bad_baseline_input_is_one_line_and_writes_nothing() {
    let dir = fixture();
    let out = dir.join("never.npy");
    // An unknown method.
    let o = filter("kriging", &[], &out);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value 'kriging'"));
    // Observations outside the trajectory.
    let late = dir.join("late.csv");
    std::fs::write(&late, "time,index,value,std\n2,0,1,0.1\n9,1,1,0.1\n").unwrap();
    let o = filter("oi", &["--observations", s(&late)], &out);
    fails_with(
        &o,
        &out,
        "line 3: time 9 lies outside a trajectory of 8 states",
    );
    let far = dir.join("far.csv");
    std::fs::write(&far, "time,index,value,std\n2,7,1,0.1\n").unwrap();
    let o = filter("persistence", &["--observations", s(&far)], &out);
    fails_with(&o, &out, "index 7 lies outside a state of 3 values");
    // A record step for trajectories that have no time axis.
    let o = filter("lim", &["--start", "3"], &out);
    fails_with(&o, &out, "not an imported record");
    // No samples, too many EOFs.
    let o = filter("oi", &["--samples", "0"], &out);
    fails_with(&o, &out, "--samples: must be at least 1");
    let o = filter("lim", &["--eofs", "9"], &out);
    fails_with(&o, &out, "--eofs: between 1 and the 3 EOFs");
    // A model-needing method on an imported system still says why it cannot run.
    let o = filter("etkf", &[], &out);
    fails_with(&o, &out, "an external (imported) system has no dynamics");
    // A baseline needs a data folder, not a named system.
    let o = sda(&[
        "filter",
        "--system",
        "lorenz63",
        "--method",
        "lim",
        "--observations",
        s(&dir.join("obs/obs.csv")),
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "is fitted on a data folder's training split");
    // --unobserved needs observations; a mask of the wrong shape is refused.
    let x = dir.join("climatology-h.npy");
    ok(filter("climatology", &["--samples", "4"], &x));
    let o = sda(&["evaluate", s(&x), "--unobserved"]);
    assert!(!o.status.success());
    let m = dir.join("mask5.npy");
    write(&m, vec![5], vec![1.0; 5]);
    let o = sda(&["evaluate", s(&x), "--mask", s(&m)]);
    fails_with(&o, &out, "not a state's (3) or a trajectory's (8, 3)");
}
