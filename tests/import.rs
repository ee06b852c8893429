//! One's own data from end to end on the command line: `sda import` of arrays made outside sda,
//! `train`, `observe --table`, `assimilate` and `evaluate` with a table of observations, the
//! new operator terms on a model, and every kind of bad input a user can give them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{fails_with, ok, s, sda, train_tiny};

fn write(path: &Path, shape: Vec<usize>, data: Vec<f32>) {
    sda::io::write_npy(path, &sda::io::Array::new(shape, data)).unwrap();
}

/// 12 trajectories of 24 states of 4 values: damped rotations of random phases, plus an
/// offset per component (so that the normalisation has something to do).
fn trajectories(n: usize, l: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * l * 4);
    for r in 0..n {
        let phase = r as f32 * 0.9;
        for t in 0..l {
            let a = phase + 0.3 * t as f32;
            out.extend([a.cos() * 2.0 + 5.0, a.sin() * 2.0, (2.0 * a).cos(), -3.0]);
        }
    }
    out
}

/// A data folder imported from a file, a tiny model trained on it and a table of
/// observations of a test trajectory, made once.
fn fixture() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sda-import-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let x = dir.join("x.npy");
        write(&x, vec![12, 24, 4], trajectories(12, 24));
        let data = dir.join("data");
        let out = ok(sda(&[
            "import",
            "--train",
            s(&x),
            "--output",
            s(&data),
            "--seed",
            "1",
        ]));
        assert!(out.contains("10 + 1 + 1 trajectories"), "{out}");
        // A data set is never overwritten without --force.
        let again = [
            "import",
            "--train",
            s(&x),
            "--output",
            s(&data),
            "--seed",
            "1",
        ];
        let o = sda(&again);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("--force"), "{err}");
        ok(sda(&[&again[..], &["--force"]].concat()));
        ok(train_tiny(&data, &dir.join("run"), "4", &[]));
        let out = ok(sda(&[
            "observe",
            "--trajectories",
            s(&data.join("test.npy")),
            "--length",
            "12",
            "--table",
            "--times",
            "4",
            "--stations",
            "2",
            "--noise",
            "0.2:0.4",
            "--output",
            s(&dir.join("obs")),
        ]));
        assert!(out.contains("8 rows at 4 states"), "{out}");
        dir
    })
}

fn assimilate(extra: &[&str], out: &Path) -> std::process::Output {
    let dir = fixture();
    let _ = std::fs::remove_file(out);
    let run = dir.join("run");
    let mut args = vec![
        "assimilate",
        // A briefly trained prior: the plumbing is tested, not the samples.
        "--no-guard",
        "--model",
        s(&run),
        "--length",
        "12",
        "--samples",
        "3",
        "--steps",
        "4",
        "--output",
        s(out),
    ];
    args.extend_from_slice(extra);
    sda(&args)
}

#[test]
fn imported_data_trains_assimilates_a_table_and_evaluates() {
    let dir = fixture();
    let info = sda::data::read_info(&dir.join("data")).unwrap();
    assert_eq!(info.system.name(), "external");
    assert_eq!(info.state_shape, vec![4]);
    // The last component is constant: its mean is −3 whatever the split.
    assert!((info.normalisation.mean[3] + 3.0).abs() < 1e-6);
    let table = dir.join("obs/obs.csv");
    let out = dir.join("x-table.npy");
    let stdout = ok(assimilate(&["--observations", s(&table)], &out));
    assert!(stdout.contains("std(A(x) − y)"), "{stdout}");
    assert!(
        stdout.contains("has no simulator, so no transition density"),
        "{stdout}"
    );
    let x = sda::io::read_npy(&out).unwrap();
    assert_eq!(x.shape, vec![3, 12, 4]);
    assert_eq!(x.non_finite(), 0);
    let stdout = ok(sda(&[
        "evaluate",
        "--samples",
        s(&out),
        "--truth",
        s(&dir.join("obs/truth.npy")),
        "--observations",
        s(&table),
        "--system",
        s(&dir.join("data")),
    ]));
    for needle in ["RMSE", "CRPS", "std(A(x) − y)", "no transition density"] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    // The particle filter needs a transition density: one line, nothing written.
    let pf = dir.join("pf.npy");
    let o = sda(&[
        "filter",
        "--system",
        s(&dir.join("data")),
        "--observations",
        s(&table),
        "--length",
        "12",
        "--output",
        s(&pf),
    ]);
    fails_with(
        &o,
        &pf,
        "external (imported) system has no transition density",
    );
}

#[test]
fn points_at_and_linear_operators_drive_the_sampler() {
    let dir = fixture();
    let pts = dir.join("points.npy");
    write(&pts, vec![2], vec![3.0, 0.0]);
    let lin = dir.join("a.npy");
    write(&lin, vec![1, 4], vec![1.0, -1.0, 0.5, 0.0]);
    for (op, shape) in [
        (format!("at:0,5,11|points:{}", pts.display()), vec![3, 2]),
        (format!("at:2,3|linear:{}", lin.display()), vec![2, 1]),
    ] {
        let y = dir.join("y-op.npy");
        write(&y, shape.clone(), vec![0.5; shape.iter().product()]);
        let out = dir.join("x-op.npy");
        let stdout = ok(assimilate(
            &["--observations", s(&y), "--operator", &op, "--noise", "0.3"],
            &out,
        ));
        assert!(stdout.contains("std(A(x) − y)"), "{op}: {stdout}");
        assert_eq!(sda::io::read_npy(&out).unwrap().shape, vec![3, 12, 4]);
    }
}

#[test]
fn bad_operators_and_tables_are_one_line_errors() {
    let dir = fixture();
    let out = dir.join("x-bad.npy");
    let table = dir.join("obs/obs.csv");
    // A table brings its own operator and noise.
    let o = assimilate(
        &[
            "--observations",
            s(&table),
            "--operator",
            "last",
            "--noise",
            "1",
        ],
        &out,
    );
    fails_with(&o, &out, "not given with a table");
    let y = dir.join("y-bad.npy");
    write(&y, vec![12, 2], vec![0.0; 24]);
    let o = assimilate(&["--observations", s(&y)], &out);
    fails_with(&o, &out, "--operator and --noise");
    let pts = dir.join("far.npy");
    write(&pts, vec![2], vec![1.0, 4.0]);
    let op = format!("points:{}", pts.display());
    let o = assimilate(
        &["--observations", s(&y), "--operator", &op, "--noise", "1"],
        &out,
    );
    fails_with(&o, &out, "index 4");
    let lin = dir.join("wide.npy");
    write(&lin, vec![2, 5], vec![0.0; 10]);
    let op = format!("linear:{}", lin.display());
    let o = assimilate(
        &["--observations", s(&y), "--operator", &op, "--noise", "1"],
        &out,
    );
    fails_with(&o, &out, "width 5 is not the state's size 4");
    for (name, text, needle) in [
        ("nostd.csv", "time,index,value\n0,1,2\n", "no column 'std'"),
        (
            "text.csv",
            "time,index,value,std\n0,1,2,1\n1,1,high,1\n",
            "line 3: value 'high' is not a number",
        ),
        (
            "zero.csv",
            "time,index,value,std\n0,1,2,0\n",
            "line 2: std 0 must be positive",
        ),
        (
            "late.csv",
            "time,index,value,std\n0,1,2,1\n12,1,2,1\n",
            "line 3: time 12 lies outside",
        ),
        (
            "wide.csv",
            "time,index,value,std\n0,4,2,1\n",
            "line 2: index 4 lies outside",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o = assimilate(&["--observations", s(&path)], &out);
        fails_with(&o, &out, needle);
        assert!(String::from_utf8_lossy(&o.stderr).contains(name));
    }
}

#[test]
fn bad_imports_are_one_line_errors_and_write_nothing() {
    let dir = fixture();
    let good = dir.join("x.npy");
    let out = dir.join("never");
    let nan = dir.join("nan.npy");
    let mut v = trajectories(5, 6);
    v[2 * 24 + 3 * 4 + 1] = f32::NAN;
    v[4 * 24] = f32::INFINITY;
    write(&nan, vec![5, 6, 4], v);
    let o = sda(&["import", "--train", s(&nan), "--output", s(&out)]);
    fails_with(
        &o,
        &out,
        "2 non-finite value(s) (NaN or inf), the first at [2, 3, 1]",
    );
    let two = dir.join("two.npy");
    write(&two, vec![2, 6, 4], trajectories(2, 6));
    let o = sda(&["import", "--train", s(&two), "--output", s(&out)]);
    fails_with(&o, &out, "at least 3");
    let other = dir.join("other.npy");
    write(&other, vec![2, 6, 3], vec![0.0; 36]);
    let o = sda(&[
        "import",
        "--train",
        s(&good),
        "--valid",
        s(&good),
        "--test",
        s(&other),
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "(3) differ from the training states' (4)");
    let o = sda(&[
        "import",
        "--train",
        s(&good),
        "--split",
        "0.5,0.4,0.3",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "sum to 1");
}

#[test]
fn imported_fields_with_context_channels_train_and_sample() {
    let dir = std::env::temp_dir().join(format!("sda-import-fields-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // 5 trajectories of 6 states of one 8 × 8 channel, and one constant context channel.
    let x = dir.join("fields.npy");
    let data: Vec<f32> = (0..5 * 6 * 64).map(|k| ((k as f32) * 0.37).sin()).collect();
    write(&x, vec![5, 6, 1, 8, 8], data);
    let c = dir.join("context.npy");
    write(
        &c,
        vec![1, 8, 8],
        (0..64).map(|k| (k % 8) as f32 / 8.0).collect(),
    );
    let data = dir.join("data");
    let out = ok(sda(&[
        "import",
        "--train",
        s(&x),
        "--context",
        s(&c),
        "--output",
        s(&data),
    ]));
    assert!(out.contains("1 context channel"), "{out}");
    let run = dir.join("run");
    ok(sda(&[
        "train",
        "--data",
        s(&data),
        "--output",
        s(&run),
        "--order",
        "1",
        "--preset",
        "reduced",
        "--hidden",
        "4,8",
        "--blocks",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "2",
    ]));
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        v["net"]["forcing"], 0,
        "imported fields have no Kolmogorov forcing"
    );
    assert_eq!(v["net"]["context"].as_array().unwrap().len(), 64);
    let prior = dir.join("prior.npy");
    ok(sda(&[
        "sample",
        "--no-guard",
        "--model",
        s(&run),
        "--length",
        "4",
        "--samples",
        "1",
        "--steps",
        "2",
        "--output",
        s(&prior),
    ]));
    let p = sda::io::read_npy(&prior).unwrap();
    assert_eq!(p.shape, vec![1, 4, 1, 8, 8]);
    assert_eq!(p.non_finite(), 0);
    // A context of another grid is refused, naming the file.
    let bad = dir.join("bad-context.npy");
    write(&bad, vec![1, 8, 9], vec![0.0; 72]);
    let never = dir.join("never");
    let o = sda(&[
        "import",
        "--train",
        s(&x),
        "--context",
        s(&bad),
        "--output",
        s(&never),
    ]);
    fails_with(&o, &never, "bad-context.npy");
    std::fs::remove_dir_all(&dir).unwrap();
}
