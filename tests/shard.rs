//! Runs cut into shards (`--shard I/N`) and merged (`sda merge`) give the bits of the unsharded
//! run; bad shard specs, missing and foreign parts, and submissions that cannot be made are
//! refused in one line with nothing written. (tests/slurm.rs runs the same through a real
//! Slurm.)

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{
    ASSIMILATE, SMALL_STUDY, bytes, fails_with, ok, sda_in, small_prior, without_columns,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const SIM: [&str; 9] = [
    "simulate",
    "lorenz63",
    "--trajectories",
    "50",
    "--length",
    "48",
    "--burn-in",
    "64",
    "--seed=7",
];

#[test]
fn a_sharded_simulation_merges_into_the_unsharded_bits() {
    let d = tmp("simulate");
    ok(sda_in(&d, &[&SIM[..], &["--output", "whole"]].concat()));
    for i in [2, 0, 1] {
        let spec = format!("{i}/3");
        let out = ok(sda_in(
            &d,
            &[&SIM[..], &["--output", "split", "--shard", &spec]].concat(),
        ));
        assert!(out.contains(&format!("shard {i}/3")), "{out}");
    }
    assert!(!d.join("split").exists(), "a shard wrote the output");
    // A shard whose part is done is skipped.
    let again = ok(sda_in(
        &d,
        &[&SIM[..], &["--output", "split", "--shard", "1/3"]].concat(),
    ));
    assert!(again.contains("already done"), "{again}");
    ok(sda_in(&d, &["merge", "split"]));
    for f in ["system.json", "train.npy", "valid.npy", "test.npy"] {
        assert_eq!(
            bytes(&d.join("whole").join(f)),
            bytes(&d.join("split").join(f)),
            "{f}"
        );
    }
    assert!(
        !d.join("split.shards").exists(),
        "parts left after the merge"
    );
}

#[test]
fn sharded_samples_and_studies_merge_into_the_unsharded_bits() {
    let d = tmp("assimilate");
    small_prior(&d);
    ok(sda_in(
        &d,
        &[&ASSIMILATE[..], &["--output", "whole.npy"]].concat(),
    ));
    // 4 batches over 3 shards (2 + 1 + 1), and over 5 (one shard without a batch).
    for n in [3, 5] {
        let out = format!("split{n}.npy");
        for i in 0..n {
            let spec = format!("{i}/{n}");
            ok(sda_in(
                &d,
                &[&ASSIMILATE[..], &["--output", &out, "--shard", &spec]].concat(),
            ));
        }
        let merged = ok(sda_in(&d, &["merge", &format!("{out}.shards")]));
        assert!(merged.contains("std(A(x) − y)"), "{merged}");
        assert_eq!(
            bytes(&d.join("whole.npy")),
            bytes(&d.join(&out)),
            "{n} shards"
        );
    }

    // A study: 1 order × 2 scenarios × 2 trajectories × 2 corrections = 8 assimilations over
    // 3 shards, two of them at once (they share the folder and the data).
    let study = SMALL_STUDY;
    ok(sda_in(&d, &[&study[..], &["--output", "sw"]].concat()));
    let exe = env!("CARGO_BIN_EXE_sda");
    let shard = |i: usize| {
        let spec = format!("{i}/3");
        Command::new(exe)
            .current_dir(&d)
            .args([&study[..], &["--output", "ss", "--shard", &spec]].concat())
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|t| {
        let a = t.spawn(|| shard(0));
        let b = t.spawn(|| shard(2));
        (a.join().unwrap(), b.join().unwrap())
    });
    ok(a);
    ok(b);
    let e = sda_in(&d, &["merge", "ss"]);
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("shard(s) 1 of 3 missing"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
    assert!(!d.join("ss/summary.csv").exists());
    ok(shard(1));
    ok(sda_in(&d, &["merge", "ss"]));
    assert_eq!(
        without_columns(&d.join("sw/rows.csv"), &["seconds"]),
        without_columns(&d.join("ss/rows.csv"), &["seconds"])
    );
    assert_eq!(
        without_columns(&d.join("sw/summary.csv"), &["mean_seconds"]),
        without_columns(&d.join("ss/summary.csv"), &["mean_seconds"])
    );
    let names: Vec<_> = std::fs::read_dir(d.join("sw/samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 8);
    for n in names {
        assert_eq!(
            bytes(&d.join("sw/samples").join(&n)),
            bytes(&d.join("ss/samples").join(&n)),
            "{n:?}"
        );
    }
}

#[test]
fn bad_shards_missing_and_foreign_parts_are_refused_in_one_line() {
    let d = tmp("refuse");
    let sim =
        |out: &str, extra: &[&str]| sda_in(&d, &[&SIM[..], &["--output", out], extra].concat());
    for (spec, needle) in [
        ("3/2", "--shard 3/2: shards are counted from 0"),
        ("0/0", "--shard 0/0: N in I/N must be at least 1"),
        ("auto", "--shard auto: not inside a Slurm job array"),
        ("1", "--shard 1: expected I/N"),
    ] {
        fails_with(&sim("x", &["--shard", spec]), &d.join("x.shards"), needle);
    }
    ok(sim("x", &["--shard", "0/2"]));
    fails_with(
        &sda_in(&d, &["merge", "x"]),
        &d.join("x"),
        "shard(s) 1 of 2 missing",
    );
    // Another command line into the same parts.
    let other = sda_in(
        &d,
        &[&SIM[..], &["--output", "x", "--shard", "1/2", "--force"]].concat(),
    );
    fails_with(&other, &d.join("x"), "holds the parts of another run");
    // A part of another run put in place of shard 1.
    ok(sim("y", &["--shard", "1/2"]));
    std::fs::copy(
        d.join("y.shards/part-0001-of-0002.json"),
        d.join("x.shards/part-0001-of-0002.json"),
    )
    .unwrap();
    std::fs::copy(
        d.join("y.shards/part-0001-of-0002.npy"),
        d.join("x.shards/part-0001-of-0002.npy"),
    )
    .unwrap();
    fails_with(
        &sda_in(&d, &["merge", "x"]),
        &d.join("x"),
        "part-0001-of-0002.json is from another run",
    );
    fails_with(
        &sda_in(&d, &["merge", "nothing"]),
        &d.join("nothing"),
        "holds no sharded run",
    );
}

#[test]
fn submissions_that_cannot_be_made_are_refused_before_anything_is_written() {
    let d = tmp("submit");
    let empty = d.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let submit = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sda"));
        c.current_dir(&d).env("PATH", &empty).args(args);
        c.output().unwrap()
    };
    let cmd = [
        &["slurm", "submit", "--array", "4", "--", "sda"][..],
        &SIM[..],
    ]
    .concat();
    fails_with(
        &submit(&[&cmd[..], &["--output", "data"]].concat()),
        &d.join("data.slurm"),
        "sbatch: not found on the PATH",
    );
    // --dry-run prints the scripts and needs no Slurm.
    let dry = [
        &[
            "slurm",
            "submit",
            "--array",
            "4",
            "--throttle",
            "2",
            "--dry-run",
            "--",
            "sda",
        ][..],
        &SIM[..],
    ]
    .concat();
    let out = ok(submit(&[&dry[..], &["--output", "data"]].concat()));
    assert!(out.contains("#SBATCH --array=0-3%2"), "{out}");
    assert!(
        out.contains("--shard \"${SLURM_ARRAY_TASK_ID}/4\""),
        "{out}"
    );
    assert!(out.contains("merge "), "{out}");
    assert!(!d.join("data.slurm").exists());
    // A finished run in the output.
    ok(sda_in(&d, &[&SIM[..], &["--output", "done"]].concat()));
    fails_with(
        &submit(&[&cmd[..], &["--output", "done"]].concat()),
        &d.join("done.slurm"),
        "already holds a finished run; pass --force",
    );
    // Training is one job per run: an array needs {i} in the command.
    fails_with(
        &submit(&[
            "slurm", "submit", "--array", "2", "--", "sda", "train", "--data", "done", "--output",
            "run",
        ]),
        &d.join("run.slurm"),
        "does not split into shards; put {i} in the command",
    );
    let seeds = ok(submit(&[
        "slurm",
        "submit",
        "--array",
        "2",
        "--dry-run",
        "--",
        "sda",
        "train",
        "--data",
        "done",
        "--output",
        "run-{i}",
        "--seed",
        "{i}",
    ]));
    assert!(
        seeds.contains("--output run-${SLURM_ARRAY_TASK_ID} --seed ${SLURM_ARRAY_TASK_ID}"),
        "{seeds}"
    );
    fails_with(
        &submit(&[
            "slurm", "submit", "--", "sda", "simulate", "lorenz63", "--output", "z", "--shard",
            "0/2",
        ]),
        &d.join("z.slurm"),
        "leave it out of the command",
    );
}

#[test]
fn a_sharded_lorenz96_study_merges_into_the_unsharded_tables_and_figures() {
    let d = tmp("l96");
    let study = [
        "study",
        "lorenz96",
        "--cases",
        "sakov2008",
        "--truth-seeds",
        "1,2,3",
        "--cycles",
        "450",
        "--no-sda",
    ];
    ok(sda_in(&d, &[&study[..], &["--output", "whole"]].concat()));
    for i in 0..2 {
        let spec = format!("{i}/2");
        ok(sda_in(
            &d,
            &[&study[..], &["--output", "split", "--shard", &spec]].concat(),
        ));
    }
    assert!(
        !d.join("split/lorenz96.csv").exists(),
        "a shard wrote the tables"
    );
    ok(sda_in(&d, &["merge", "split"]));
    // Everything but the two timing columns.
    let table = |dir: &str| {
        without_columns(
            &d.join(dir).join("lorenz96.csv"),
            &["cpu_seconds", "ms_per_cycle"],
        )
    };
    let whole = table("whole");
    assert_eq!(whole.lines().count(), 1 + 3 * 10, "{whole}");
    assert_eq!(whole, table("split"));
    for f in [
        "lorenz96-sakov2008-rmse.png",
        "lorenz96-sakov2008-hovmoller.png",
    ] {
        assert_eq!(
            bytes(&d.join("whole").join(f)),
            bytes(&d.join("split").join(f)),
            "{f}"
        );
    }
}
