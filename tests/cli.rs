//! The command line as a user meets it: a tiny end-to-end run, then every kind of bad input,
//! each of which must give a one-line error naming the culprit, a non-zero exit and no output.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;
use common::{fails_with, s, sda};

/// A tiny data set and model, made once for all tests.
fn fixture() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sda-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        let run = dir.join("run");
        let ok = |o: Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ok(sda(&[
            "simulate",
            "lorenz63",
            "--output",
            s(&data),
            "--trajectories",
            "20",
            "--length",
            "40",
            "--burn-in",
            "100",
        ]));
        ok(train_briefly(&data, &run, &[]));
        ok(sda(&[
            "observe",
            "--trajectories",
            s(&data.join("test.npy")),
            "--length",
            "17",
            "--operator",
            "stride:8|select:0",
            "--noise",
            "0.4",
            "--output",
            s(&dir.join("obs")),
        ]));
        dir
    })
}

/// `sda train` of the fixture's prior (3 epochs of a width-16 MLP) on `data` into `run`, with
/// `extra` flags.
fn train_briefly(data: &Path, run: &Path, extra: &[&str]) -> Output {
    common::train_tiny(data, run, "8", extra)
}

/// Runs `assimilate` with the fixture and `overrides` of (flag, value); returns (output, out path).
/// The fixture's prior is trained for 3 epochs, so its samples diverge and the guard would stop
/// every run: the plumbing tests run with `--no-guard`, and [`guarded`] without it.
fn assimilate(overrides: &[(&str, &str)]) -> (Output, PathBuf) {
    let mut o = overrides.to_vec();
    o.push(("--no-guard", ""));
    guarded(&o)
}

/// [`assimilate`] with the guard on (unless `overrides` hold `--no-guard`).
fn guarded(overrides: &[(&str, &str)]) -> (Output, PathBuf) {
    let dir = fixture();
    let out = dir.join(format!(
        "x-{}.npy",
        overrides
            .iter()
            .filter(|(f, _)| *f != "--no-guard")
            .map(|(f, _)| f.trim_start_matches('-'))
            .collect::<Vec<_>>()
            .join("-")
    ));
    let _ = std::fs::remove_file(&out);
    let mut args: Vec<(String, String)> = [
        ("--model", s(&dir.join("run")).to_string()),
        ("--observations", s(&dir.join("obs/y.npy")).to_string()),
        ("--operator", "stride:8|select:0".to_string()),
        ("--noise", "0.4".to_string()),
        ("--length", "17".to_string()),
        ("--samples", "3".to_string()),
        ("--steps", "4".to_string()),
        ("--output", s(&out).to_string()),
    ]
    .iter()
    .map(|(f, v)| (f.to_string(), v.clone()))
    .collect();
    for (f, v) in overrides {
        match args.iter_mut().find(|(g, _)| g == f) {
            Some(slot) => slot.1 = v.to_string(),
            None => args.push((f.to_string(), v.to_string())),
        }
    }
    let mut argv = vec!["assimilate".to_string()];
    for (f, v) in args {
        argv.push(f);
        // A switch (e.g. --no-guard) comes with an empty value.
        if !v.is_empty() {
            argv.push(v);
        }
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    (sda(&argv), out)
}

fn write_npy(path: &Path, shape: Vec<usize>, data: Vec<f32>) {
    sda::io::write_npy(path, &sda::io::Array::new(shape, data)).unwrap();
}

/// What `--precision auto` runs the fixture's MLP (width 16) with on the CPU.
fn auto_precision() -> &'static str {
    if sda::nn::bf16::available() {
        "bf16"
    } else {
        "f32"
    }
}

#[test]
fn assimilate_runs_and_writes_samples_of_the_right_shape() {
    let (o, out) = assimilate(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = sda::io::read_npy(&out).unwrap();
    assert_eq!(x.shape, vec![3, 17, 3]);
    assert_eq!(x.non_finite(), 0);
    // The default precision is auto; the summary and config.json name what it resolved to.
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = format!("precision {}; joint)", auto_precision());
    assert!(stdout.contains(&line), "{stdout}");
    let config = std::fs::read_to_string(fixture().join("run/config.json")).unwrap();
    let line = format!("\"precision\": \"{}\"", auto_precision());
    assert!(config.contains(&line), "{config}");
}

#[test]
fn bf16_assimilation_runs_where_the_cpu_has_it_and_is_refused_elsewhere() {
    let (o, out) = assimilate(&[("--precision", "bf16")]);
    if sda::nn::bf16::available() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let x = sda::io::read_npy(&out).unwrap();
        assert_eq!(x.shape, vec![3, 17, 3]);
        assert_eq!(x.non_finite(), 0);
    } else {
        fails_with(&o, &out, "AVX512-BF16");
    }
}

#[test]
fn missing_observation_file_is_named() {
    let (o, out) = assimilate(&[("--observations", "/nonexistent/y.npy")]);
    fails_with(&o, &out, "/nonexistent/y.npy");
}

#[test]
fn wrong_observation_shape_is_named() {
    let y = fixture().join("bad-shape.npy");
    write_npy(&y, vec![8, 1], vec![0.0; 8]);
    let (o, out) = assimilate(&[("--observations", s(&y))]);
    fails_with(&o, &out, "expected shape (3, 1)");
}

#[test]
fn nan_in_observations_is_refused() {
    let y = fixture().join("nan.npy");
    write_npy(&y, vec![3, 1], vec![0.0, f32::NAN, 1.0]);
    let (o, out) = assimilate(&[("--observations", s(&y))]);
    fails_with(&o, &out, "non-finite");
}

#[test]
fn zero_or_negative_noise_is_refused() {
    for v in ["0", "-1"] {
        let (o, out) = assimilate(&[("--noise", v)]);
        fails_with(&o, &out, "--noise");
    }
}

#[test]
fn unknown_operator_is_named() {
    let (o, out) = assimilate(&[("--operator", "stride:8|blur:2")]);
    fails_with(&o, &out, "unknown term 'blur'");
}

#[test]
fn operator_that_does_not_fit_the_model_states_is_refused() {
    let (o, out) = assimilate(&[("--operator", "stride:8|select:5")]);
    fails_with(&o, &out, "component 5");
}

#[test]
fn length_shorter_than_the_window_is_refused() {
    let y = fixture().join("short.npy");
    write_npy(&y, vec![1, 1], vec![0.0]);
    let (o, out) = assimilate(&[("--length", "3"), ("--observations", s(&y))]);
    fails_with(&o, &out, "--length");
}

#[test]
fn autoregressive_sampling_runs_and_is_reproducible() {
    let flags = [("--sampling", "autoregressive"), ("--seed", "5")];
    let (o, out) = assimilate(&flags);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // 17 states, windows of 5 advancing by 3: starts 0, 3, 6, 9, 12.
    assert!(
        stdout.contains("autoregressive, 5 windows of 5 states (context 2, conditioning both)"),
        "{stdout}"
    );
    let x = sda::io::read_npy(&out).unwrap();
    assert_eq!(x.shape, vec![3, 17, 3]);
    assert_eq!(x.non_finite(), 0);
    let (o, out) = assimilate(&flags);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(sda::io::read_npy(&out).unwrap().data, x.data);
}

#[test]
fn autoregressive_sampling_shorter_than_one_window_is_refused() {
    let y = fixture().join("short-ar.npy");
    write_npy(&y, vec![1, 1], vec![0.0]);
    let (o, out) = assimilate(&[
        ("--sampling", "autoregressive"),
        ("--length", "4"),
        ("--observations", s(&y)),
    ]);
    fails_with(
        &o,
        &out,
        "shorter than one autoregressive window of 5 states",
    );
    let (o, out) = assimilate(&[("--sampling", "autoregressive"), ("--window", "20")]);
    fails_with(
        &o,
        &out,
        "17 states is shorter than one autoregressive window of 20",
    );
    let (o, out) = assimilate(&[("--sampling", "autoregressive"), ("--context", "5")]);
    fails_with(&o, &out, "--context");
    let (o, out) = assimilate(&[("--context", "2")]);
    fails_with(&o, &out, "applies to --sampling autoregressive only");
}

#[test]
fn corrupt_weights_are_named() {
    let dir = fixture();
    let run = dir.join("corrupt-run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(dir.join("run/config.json"), run.join("config.json")).unwrap();
    std::fs::write(run.join("model.safetensors"), b"not safetensors at all").unwrap();
    let (o, out) = assimilate(&[("--model", s(&run))]);
    fails_with(&o, &out, "model.safetensors");
}

#[test]
fn model_data_mismatch_is_refused() {
    // A Lorenz-96 observation (32 values per state) given to a Lorenz-63 model.
    let y = fixture().join("l96.npy");
    write_npy(&y, vec![3, 32], vec![0.0; 96]);
    let (o, out) = assimilate(&[("--observations", s(&y)), ("--operator", "stride:8")]);
    fails_with(&o, &out, "expected shape (3, 3)");
}

#[test]
fn unknown_system_is_named() {
    let out = fixture().join("no-such-system");
    let o = sda(&["simulate", "lorenz99", "--output", s(&out)]);
    fails_with(&o, &out, "unknown system 'lorenz99'");
}

#[test]
fn unsupported_npy_dtype_is_refused() {
    let y = fixture().join("complex.npy");
    let mut bytes = sda::io::npy_bytes(&sda::io::Array::new(vec![3, 1], vec![0.0; 3]));
    let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
    bytes[at + 1] = b'c';
    std::fs::write(&y, bytes).unwrap();
    let (o, out) = assimilate(&[("--observations", s(&y))]);
    fails_with(&o, &out, "not supported");
}

#[test]
fn evaluate_reports_failed_samples_and_refuses_mismatched_sets() {
    let dir = fixture();
    let ok = dir.join("eval-ok.npy");
    let mut data = vec![0.5f32; 4 * 17 * 3];
    data[5] = f32::NAN; // sample 0 fails
    write_npy(&ok, vec![4, 17, 3], data);
    let reference = dir.join("eval-ref.npy");
    write_npy(
        &reference,
        vec![6, 17, 3],
        (0..6 * 17 * 3).map(|i| (i % 7) as f32 * 0.1).collect(),
    );
    let o = sda(&[
        "evaluate",
        "--samples",
        s(&ok),
        "--reference",
        s(&reference),
        "--system",
        "lorenz63",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // One of four samples holds a NaN: counted, not fatal; W1 computed on the other three.
    assert_eq!(v["failed"], 1);
    assert!(v["w1"].as_f64().unwrap() > 0.0);

    let other = dir.join("eval-other.npy");
    write_npy(&other, vec![6, 16, 3], vec![0.0; 6 * 16 * 3]);
    let o = sda(&["evaluate", "--samples", s(&ok), "--reference", s(&other)]);
    fails_with(&o, &dir.join("none"), "--reference");
    let empty = dir.join("eval-empty.npy");
    write_npy(&empty, vec![0, 17, 3], vec![]);
    let o = sda(&[
        "evaluate",
        "--samples",
        s(&empty),
        "--reference",
        s(&reference),
    ]);
    fails_with(&o, &dir.join("none"), "non-empty");
    let o = sda(&["evaluate", "--samples", s(&ok), "--system", "lorenz99"]);
    fails_with(&o, &dir.join("none"), "unknown system 'lorenz99'");
}

#[test]
fn filter_refuses_bad_observations_and_writes_nothing() {
    let dir = fixture();
    let out = dir.join("pf-bad.npy");
    let y = dir.join("pf-bad-y.npy");
    write_npy(&y, vec![5, 1], vec![0.0; 5]);
    let o = sda(&[
        "filter",
        "--system",
        "lorenz63",
        "--observations",
        s(&y),
        "--operator",
        "stride:8|select:0",
        "--noise",
        "0.4",
        "--length",
        "17",
        "--particles",
        "64",
        "--keep",
        "16",
        "--output",
        s(&out),
    ]);
    fails_with(&o, &out, "(3, 1)");
}

#[test]
fn tiny_study_writes_its_table_and_figures() {
    let dir = fixture();
    let out = dir.join("study");
    let data = dir.join("data");
    let args = vec![
        "study",
        "lorenz63",
        "--output",
        s(&out),
        "--data",
        s(&data),
        "--orders",
        "1",
        "--corrections",
        "0",
        "--cases",
        "lo",
        "--trajectories",
        "1",
        "--length",
        "17",
        "--samples",
        "4",
        "--steps",
        "4",
        "--particles",
        "256",
        "--keep",
        "32",
        "--epochs",
        "2",
        // A 2-epoch prior diverges: the table is made all the same.
        "--no-guard",
    ];
    let o = sda(&[&args[..], &["--precision", "f32"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = std::fs::read_to_string(out.join("rows.csv")).unwrap();
    // Header + one row: k = 1, lo, trajectory 0, C = 0, with a finite W1 and floor.
    assert_eq!(rows.lines().count(), 2, "{rows}");
    let fields: Vec<&str> = rows.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&fields[..4], &["1", "lo", "0", "0"]);
    assert!(
        fields[4].parse::<f64>().unwrap().is_finite() && fields[5].parse::<f64>().unwrap() > 0.0
    );
    for png in ["figure3.png", "trajectories.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
    // The same study with bf16 products adds its own row and samples beside float32's.
    if sda::nn::bf16::available() {
        let mut args = args.clone();
        args.extend(["--precision", "bf16", "--resume"]);
        let o = sda(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows = std::fs::read_to_string(out.join("rows.csv")).unwrap();
        assert_eq!(rows.lines().count(), 3, "{rows}");
        let precision = |i: usize| rows.lines().nth(i).unwrap().split(',').nth(12).unwrap();
        assert_eq!((precision(1), precision(2)), ("f32", "bf16"), "{rows}");
        for f in [
            "k1-lo-0-C0-sda0.03-pc-t-sda0.25-T4.npy",
            "k1-lo-0-C0-bf16-sda0.03-pc-t-sda0.25-T4.npy",
        ] {
            assert!(out.join("samples").join(f).exists(), "{f}");
        }
    }
    // Without --resume (or --force) the study is not touched.
    let o = sda(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already holds a study") && err.contains("--resume"),
        "{err}"
    );
    // The default, auto, is one of the two: its row is there already.
    let o = sda(&[&args[..], &["--resume"]].concat());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = format!(
        "0 to run (composition mean, precision k = 1: {})",
        auto_precision()
    );
    assert!(stdout.contains(&line), "{stdout}");
}

#[test]
fn field_observations_given_to_a_lorenz_model_are_refused() {
    let (o, out) = assimilate(&[("--operator", "stride:8|coarsen:4")]);
    fails_with(&o, &out, "needs field states");
}

#[test]
fn meaningless_or_out_of_range_sampler_flags_are_refused_and_nothing_is_written() {
    for (flags, needle) in [
        (
            &[("--likelihood", "mmps"), ("--iterations", "0")][..],
            "--iterations",
        ),
        (
            &[("--likelihood", "sda"), ("--iterations", "2")][..],
            "--iterations: apply to --likelihood mmps",
        ),
        (
            &[("--gamma", "0.1"), ("--zeta", "1")][..],
            "--zeta: applies to --likelihood dps only (the likelihood is sda)",
        ),
        (&[("--corrector", "fixed"), ("--delta", "0")][..], "--delta"),
        (
            &[("--delta", "0.1")][..],
            "--delta: applies to --corrector fixed",
        ),
        (&[("--sampler", "ddim"), ("--eta", "1.5")][..], "--eta"),
        (&[("--eta", "0.5")][..], "--eta: applies to --sampler ddim"),
        (
            &[
                ("--preset", "fast"),
                ("--likelihood", "mmps"),
                ("--gamma", "0.1"),
            ][..],
            "--gamma",
        ),
    ] {
        let (o, out) = assimilate(flags);
        fails_with(&o, &out, needle);
    }
}

#[test]
fn presets_and_mmps_run_and_name_what_ran() {
    for (flags, needle) in [
        // No sampler or likelihood flag: the default preset (the fixture gives --steps 4).
        (
            &[("--seed", "0")][..],
            "preset stable: pc on the uniform-t grid, 4 steps, C = 1 (τ = 0.25), MMPS (CG, K = 1)",
        ),
        (&[("--gamma", "0.1")][..], "SDA (γ = 0.1)"),
        (&[("--preset", "fast")][..], "preset fast"),
        (&[("--preset", "accurate"), ("--steps", "3")][..], "3 steps"),
        (
            &[
                ("--likelihood", "mmps"),
                ("--solver", "gmres"),
                ("--iterations", "2"),
                ("--sampler", "heun"),
            ][..],
            "MMPS (GMRES, K = 2)",
        ),
    ] {
        let (o, out) = assimilate(flags);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains(needle) && stdout.contains("backward network passes per sample"),
            "{stdout}"
        );
        assert_eq!(
            sda::io::read_npy(&out).unwrap().non_finite(),
            0,
            "{flags:?}"
        );
    }
}

#[test]
fn zero_or_negative_gamma_is_refused() {
    for v in ["0", "-0.1"] {
        let (o, out) = assimilate(&[("--gamma", v)]);
        fails_with(&o, &out, "--gamma: must be positive");
    }
}

#[test]
fn a_diverging_run_stops_with_one_line_and_writes_nothing() {
    // An untrained prior, observations of std 0.001 and γ = 1e-9: the likelihood's variance
    // σ_y² + γ ρ² is ~1e-6 where a healthy step needs ~ρ Δρ, so the first Euler step moves the
    // state by far more than the guard's bound (50 training stds).
    let flags = [("--noise", "0.001"), ("--gamma", "1e-9")];
    let (o, out) = guarded(&flags);
    fails_with(&o, &out, "sampling diverged at step");
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "noise level t =",
        "--gamma",
        "--likelihood mmps",
        "--no-guard",
    ] {
        assert!(err.contains(needle), "message lacks '{needle}': {err}");
    }
    assert!(!out.with_extension("npy.parts").exists());
    // In batches, a run stopped in its first batch leaves no folder of parts either (nothing
    // to resume), so that the next run needs neither --resume nor --force.
    let (o, out) = guarded(&[("--noise", "0.001"), ("--gamma", "1e-9"), ("--batch", "1")]);
    fails_with(&o, &out, "sampling diverged at step");
    assert!(!out.with_extension("npy.parts").exists());
    // --no-guard hands over what the sampler made: values far outside the data's range.
    let (o, out) = assimilate(&flags);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = sda::io::read_npy(&out).unwrap();
    let largest = x.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    // Lorenz-63 states stay within |x| < 60; NaN makes `largest` NaN, which fails `> 1e3`
    // as well, so count it apart.
    assert!(largest > 1e3 || x.non_finite() > 0, "max |x| {largest}");
}

#[test]
fn ring_networks_and_the_weight_average_refuse_bad_settings() {
    // Each a one-line error naming the flag, with no run folder written.
    let dir = std::env::temp_dir().join(format!("sda-cli-ring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ring, vec) = (dir.join("l96"), dir.join("l63"));
    let sim = |args: &[&str]| common::ok(sda(args));
    sim(&[
        "simulate",
        "lorenz96",
        "--size",
        "12",
        "--trajectories",
        "10",
        "--length",
        "16",
        "--burn-in",
        "8",
        "--output",
        s(&ring),
    ]);
    sim(&[
        "simulate",
        "lorenz63",
        "--trajectories",
        "10",
        "--length",
        "16",
        "--burn-in",
        "8",
        "--output",
        s(&vec),
    ]);
    let out = dir.join("run");
    let train = |data: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            s(data),
            "--output",
            s(&out),
            "--epochs",
            "1",
        ];
        args.extend_from_slice(extra);
        sda(&args)
    };
    fails_with(&train(&ring, &["--ema", "1.5"]), &out, "--ema");
    fails_with(
        &train(&ring, &["--ema", "0.99", "--engine", "burn"]),
        &out,
        "--ema",
    );
    fails_with(&train(&ring, &["--kernel", "13"]), &out, "--kernel");
    fails_with(&train(&ring, &["--kernel", "4"]), &out, "--kernel");
    fails_with(&train(&vec, &["--network", "unet"]), &out, "--network unet");
    // Lorenz-96 trains a ring network by default; Lorenz-63 an MLP.
    let text = common::ok(train(&ring, &["--width", "16", "--depth", "1"]));
    assert!(text.contains("ring network kernel 9"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_preconditioned_prior_samples_where_the_plain_one_of_as_few_epochs_diverges() {
    // The fixture's 3-epoch prior leaves the guard's range in the first steps of unguided
    // sampling (t > 0.9), and the message names --precondition; the same 3 epochs with
    // --precondition give an estimate that is the Gaussian denoiser there, and samples.
    let dir = fixture();
    let sample = |run: &Path, out: &Path| {
        sda(&[
            "sample",
            "--model",
            s(run),
            "--length",
            "17",
            "--samples",
            "3",
            "--output",
            s(out),
        ])
    };
    let out = dir.join("prior-plain.npy");
    let o = sample(&dir.join("run"), &out);
    fails_with(&o, &out, "sampling diverged at step");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sda train --precondition"), "{err}");
    let run = dir.join("run-pre");
    let _ = std::fs::remove_dir_all(&run);
    let o = train_briefly(&dir.join("data"), &run, &["--precondition"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("prior-pre.npy");
    let o = sample(&run, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = sda::io::read_npy(&out).unwrap();
    assert_eq!((x.shape.clone(), x.non_finite()), (vec![3, 17, 3], 0));
}
