//! Never losing work: commands refuse to overwrite what they wrote before unless asked
//! (`--force`, `--resume`), check their output before computing, and `assimilate --resume`
//! finishes a killed run with the samples an uninterrupted one gives.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{fails_with, ok, s, sda};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-safety-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn simulate(out: &Path, extra: &[&str]) -> std::process::Output {
    let args = [
        "simulate",
        "lorenz63",
        "--output",
        s(out),
        "--trajectories",
        "20",
        "--length",
        "40",
        "--burn-in",
        "50",
    ];
    sda(&[&args[..], extra].concat())
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    common::train_tiny(data, out, "8", extra)
}

/// Asserts a one-line failure containing `needle`.
fn refused(o: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected a refusal");
    assert!(err.contains(needle), "message lacks '{needle}': {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
}

#[test]
fn simulate_refuses_an_existing_data_set_unless_forced() {
    let d = tmp("simulate");
    let out = d.join("data");
    ok(simulate(&out, &[]));
    let before = std::fs::read(out.join("train.npy")).unwrap();
    let o = simulate(&out, &["--seed", "5"]);
    refused(&o, "already holds a data set");
    refused(&o, "--force");
    assert_eq!(std::fs::read(out.join("train.npy")).unwrap(), before);
    ok(simulate(&out, &["--seed", "5", "--force"]));
    assert_ne!(std::fs::read(out.join("train.npy")).unwrap(), before);
    // A folder of the user's own files is not a data set: writing there is allowed.
    let mine = d.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    ok(simulate(&mine, &[]));
    assert!(mine.join("notes.txt").exists());
}

#[test]
fn outputs_that_cannot_be_written_fail_before_the_work() {
    let d = tmp("preflight");
    let data = d.join("data");
    ok(simulate(&data, &[]));
    // A path that cannot be made (a file in the way) fails at once, even with an epoch count
    // that would take hours.
    std::fs::write(d.join("file"), "x").unwrap();
    let run = d.join("file/runs/a");
    let o = sda(&[
        "train",
        "--data",
        s(&data),
        "--output",
        s(&run),
        "--epochs",
        "100000000",
    ]);
    // The refusal comes before any epoch: the run folder was never made.
    fails_with(&o, &run, "is a file, not a folder");
    // So does a data set larger than the free disk space (10¹² chains × 10⁶ states).
    let big = d.join("big");
    let o = sda(&[
        "simulate",
        "lorenz63",
        "--output",
        s(&big),
        "--trajectories",
        "1000000000000",
        "--length",
        "1000000",
    ]);
    fails_with(&o, &big, "are free there");
    // Read-only folders are found before the work too (unless running as root, who may write).
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    if std::fs::File::create(ro.join("probe")).is_err() {
        fails_with(
            &simulate(&ro.join("data"), &[]),
            &ro.join("data"),
            "cannot write",
        );
    }
    // An output that is a file, or an .npy output that is a folder.
    refused(&train(&data, &d.join("file"), &[]), "is a file");
    let run = d.join("run");
    ok(train(&data, &run, &[]));
    let o = sda(&[
        "sample",
        "--model",
        s(&run),
        "--length",
        "9",
        "--samples",
        "2",
        "--steps",
        "2",
        "--output",
        s(&d),
    ]);
    refused(&o, "is a folder");
}

#[test]
fn train_refuses_an_existing_run_unless_resumed_or_forced() {
    let d = tmp("train");
    let data = d.join("data");
    ok(simulate(&data, &[]));
    let run = d.join("run");
    ok(train(&data, &run, &[]));
    std::fs::write(run.join("notes.txt"), "mine").unwrap();
    let weights = std::fs::read(run.join("model.safetensors")).unwrap();
    let o = train(&data, &run, &["--seed", "4"]);
    refused(&o, "already holds a trained run");
    refused(&o, "--resume");
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        weights
    );
    // --resume of a finished run has nothing to do; --force replaces it, keeping other files.
    let out = ok(train(&data, &run, &["--resume"]));
    assert!(out.contains("nothing to do"), "{out}");
    ok(train(&data, &run, &["--seed", "4", "--force"]));
    assert_ne!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        weights
    );
    assert!(run.join("notes.txt").exists());
    let o = train(&data, &run, &["--force", "--resume"]);
    assert!(!o.status.success());
    refused(&train(&data, &d.join("none"), &["--resume"]), "no run");
}

/// The arguments of a prior sampling run of 6 samples in batches of 2.
fn sample_args<'a>(run: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sample",
        // A 3-epoch prior: the batches are the point, not the samples.
        "--no-guard",
        "--model",
        s(run),
        "--length",
        "9",
        "--samples",
        "6",
        "--batch",
        "2",
        "--steps",
        "3000",
        "--output",
        s(out),
    ];
    args.extend(extra);
    args
}

#[test]
fn a_killed_sampling_run_resumes_to_the_same_bits() {
    let d = tmp("resume");
    let data = d.join("data");
    ok(simulate(&data, &[]));
    let run = d.join("run");
    ok(train(&data, &run, &[]));
    let full = d.join("full.npy");
    ok(sda(&sample_args(&run, &full, &[])));
    assert!(!d.join("full.npy.parts").exists(), "parts are removed");

    // Kill the run once its first batch is kept.
    let out = d.join("x.npy");
    let parts = d.join("x.npy.parts");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(sample_args(&run, &out, &[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !parts.join("part-000000.npy").exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no batch kept");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Each batch is 3 000 sampler steps: the kill comes long before the last one ends, so
    // the run is always resumed below (a machine fast enough to finish first fails here).
    assert!(
        !out.exists(),
        "the run finished before it was killed: its batches need more --steps"
    );
    // Without --resume the kept batches are not thrown away.
    let o = sda(&sample_args(&run, &out, &[]));
    fails_with(&o, &out, "--resume");
    // Other settings are refused.
    let o = sda(&sample_args(&run, &out, &["--seed", "9", "--resume"]));
    fails_with(&o, &out, "other settings");
    ok(sda(&sample_args(&run, &out, &["--resume"])));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&full).unwrap());
    assert!(!parts.exists());
    // --force starts over, with the same result.
    std::fs::create_dir(&parts).unwrap();
    ok(sda(&sample_args(&run, &out, &["--force"])));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&full).unwrap());
}
