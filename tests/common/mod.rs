//! What the command-line tests share: running the built binary and judging its failures.
#![allow(dead_code)] // each test crate uses its own subset

pub mod netcdf3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the built `sda` with `args`.
pub fn sda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .output()
        .expect("sda runs")
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a failure with a one-line message containing `needle`, and no output at `out`.
pub fn fails_with(o: &Output, out: &Path, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success");
    assert!(err.contains(needle), "message lacks '{needle}': {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(!out.exists(), "{} was written", out.display());
}

/// Runs the built `sda` in `dir` (relative paths, as a user would), without Slurm's variables.
pub fn sda_in(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sda"));
    c.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SLURM_") {
            c.env_remove(k);
        }
    }
    c.output().expect("sda runs")
}

/// A file's bytes.
pub fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A CSV file without the columns `names` (wall times differ between runs).
pub fn without_columns(p: &Path, names: &[&str]) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let header: Vec<&str> = text.lines().next().unwrap_or("").split(',').collect();
    let drop: Vec<usize> = names
        .iter()
        .map(|n| header.iter().position(|h| h == n).expect("a column"))
        .collect();
    text.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A small Lorenz-63 study on the data folder `data` (8 assimilations: 1 order × 2 scenarios
/// × 2 trajectories × 2 corrections), to which `--output DIR` is added.
pub const SMALL_STUDY: [&str; 23] = [
    "study",
    "lorenz63",
    "--data",
    "data",
    "--orders",
    "2",
    "--trajectories",
    "2",
    "--length",
    "33",
    "--samples",
    "8",
    "--steps",
    "64",
    "--corrections",
    "1,2",
    "--epochs",
    "2000",
    "--particles",
    "256",
    "--keep",
    "32",
    "--seed=0",
];

/// `sda train` of a tiny prior (3 epochs of a width-16, depth-1 MLP in batches of `batch`) on
/// `data` into `out`, with `extra` flags.
pub fn train_tiny(data: &Path, out: &Path, batch: &str, extra: &[&str]) -> Output {
    let args = [
        "train",
        "--data",
        s(data),
        "--output",
        s(out),
        "--width",
        "16",
        "--depth",
        "1",
        "--epochs",
        "3",
        "--batch-size",
        batch,
    ];
    sda(&[&args[..], extra].concat())
}

/// Makes, in `dir`: `data` (64 simulated Lorenz-63 chains of 64 states), `run` (a prior
/// trained on them) and `obs` (observations of the first test trajectory, 33 states,
/// 'stride:8|select:0', noise 0.4).
pub fn small_prior(dir: &Path) {
    let run = |args: &[&str]| ok(sda_in(dir, args));
    run(&[
        "simulate",
        "lorenz63",
        "--output",
        "data",
        "--trajectories",
        "64",
        "--length",
        "64",
    ]);
    run(&[
        "train", "--data", "data", "--output", "run", "--epochs", "2000", "--width", "64",
    ]);
    run(&[
        "observe",
        "--trajectories",
        "data/test.npy",
        "--length",
        "33",
        "--operator",
        "stride:8|select:0",
        "--noise",
        "0.4",
        "--output",
        "obs",
    ]);
}

/// Assimilating `obs` of [`small_prior`] with `run`: 14 samples in 4 batches of 4, 64 steps;
/// `--output FILE` is added.
pub const ASSIMILATE: [&str; 19] = [
    "assimilate",
    "--model",
    "run",
    "--observations",
    "obs/y.npy",
    "--operator",
    "stride:8|select:0",
    "--noise",
    "0.4",
    "--length",
    "33",
    "--samples",
    "14",
    "--batch",
    "4",
    "--steps",
    "64",
    "--seed",
    "11",
];

/// The `.rs` files under `dir` (none if it does not exist), sorted, without the folders named
/// in `skip`.
pub fn rust_files(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if !path
                .file_name()
                .is_some_and(|n| skip.iter().any(|s| n == *s))
            {
                rust_files(&path, skip, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
