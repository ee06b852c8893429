//! `sda slurm submit` against a real Slurm (scripts/slurm/start.sh starts one on this machine;
//! `.ci/run` does so before the tests): 4-shard arrays with a throttle of 2 and their merge
//! give the bits of the unsharded runs; a failed shard leaves the merge cancelled, `status`
//! names it and `resubmit` completes the run. With several (fake) nodes, the shards spread over
//! them. Without a reachable Slurm the tests say so and pass, unless SDA_SLURM_REQUIRED=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{ASSIMILATE, SMALL_STUDY, bytes, ok, sda_in, small_prior, without_columns};

/// The idle nodes of the cluster, or None (with a message) when there is no Slurm to use.
fn cluster() -> Option<Vec<String>> {
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N %t"])
        .output();
    let nodes: Vec<String> = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.ends_with(" idle") || l.ends_with(" mix") || l.ends_with(" alloc"))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    if nodes.is_empty() {
        let why = "no Slurm cluster reachable (sinfo shows no usable node); start one with scripts/slurm/start.sh";
        assert!(
            std::env::var("SDA_SLURM_REQUIRED").as_deref() != Ok("1"),
            "SDA_SLURM_REQUIRED=1 but {why}"
        );
        eprintln!("skipped: {why}");
        return None;
    }
    Some(nodes)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-slurm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The job ids `sda slurm submit` printed: (array, merge).
fn job_ids(stdout: &str) -> (String, Option<String>) {
    let word_after = |key: &str| {
        stdout
            .split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(String::from)
    };
    (
        word_after("array job ")
            .or_else(|| word_after("submitted job "))
            .expect("a job id"),
        word_after("merge job "),
    )
}

/// Waits until every record of `job` has ended; returns their states.
fn wait(job: &str) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let out = Command::new("scontrol")
            .args(["-o", "show", "job", job])
            .output()
            .unwrap();
        let states: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("JobState="))
                    .map(String::from)
            })
            .collect();
        let running =
            |s: &String| ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"].contains(&s.as_str());
        if !states.is_empty() && !states.iter().any(running) {
            return states;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "job {job} did not end in 5 minutes: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Submits `command` as `shards` shards (throttle 2) and waits for its merge; returns the
/// hosts the shards ran on (from `sda slurm status`).
fn submit_and_merge(d: &Path, shards: usize, command: &[&str]) -> Vec<String> {
    let n = shards.to_string();
    let out = ok(sda_in(
        d,
        &[
            &[
                "slurm",
                "submit",
                "--array",
                &n,
                "--throttle",
                "2",
                "--",
                "sda",
            ][..],
            command,
        ]
        .concat(),
    ));
    let (array, merge) = job_ids(&out);
    wait(&array);
    let merge = merge.expect("a merge job");
    assert_eq!(wait(&merge), ["COMPLETED"], "merge job: {out}");
    let output = command[command.iter().position(|w| *w == "--output").unwrap() + 1];
    let status = ok(sda_in(d, &["slurm", "status", output]));
    assert!(status.contains("merged →"), "{status}");
    status
        .lines()
        .filter_map(|l| l.split("done on ").nth(1))
        .map(|h| h.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// The data set simulated as 4 shards of an array and merged: the single run's bits. Returns
/// the nodes the shards ran on.
fn sharded_simulation_matches(d: &Path) -> Vec<String> {
    let sim = [
        "simulate",
        "lorenz63",
        "--trajectories",
        "64",
        "--length",
        "64",
    ];
    let hosts = submit_and_merge(d, 4, &[&sim[..], &["--output", "data-split"]].concat());
    for f in ["system.json", "train.npy", "valid.npy", "test.npy"] {
        assert_eq!(
            bytes(&d.join("data").join(f)),
            bytes(&d.join("data-split").join(f)),
            "{f}"
        );
    }
    hosts
}

/// The assimilation run as 4 shards and merged: the single run's samples.
fn sharded_assimilation_matches(d: &Path) -> Vec<String> {
    let assimilate = ASSIMILATE;
    ok(sda_in(
        d,
        &[&assimilate[..], &["--output", "whole.npy"]].concat(),
    ));
    let hosts = submit_and_merge(d, 4, &[&assimilate[..], &["--output", "x.npy"]].concat());
    assert_eq!(bytes(&d.join("whole.npy")), bytes(&d.join("x.npy")));

    hosts
}

/// Filters over observation sets: an array of independent commands, `{i}` the task, with no
/// merge; each output is the single command's.
fn filter_array_matches(d: &Path) {
    for i in 0..2 {
        let (index, out) = (format!("{}", i + 1), format!("obs-{i}"));
        ok(sda_in(
            d,
            &[
                "observe",
                "--trajectories",
                "data/test.npy",
                "--index",
                &index,
                "--length",
                "33",
                "--operator",
                "stride:8|select:0",
                "--noise",
                "0.4",
                "--output",
                &out,
            ],
        ));
    }
    let filter = |y: &str, out: &str| {
        [
            "filter",
            "--system",
            "lorenz63",
            "--observations",
            y,
            "--operator",
            "stride:8|select:0",
            "--noise",
            "0.4",
            "--length",
            "33",
            "--particles",
            "512",
            "--keep",
            "64",
            "--seed",
            "4",
            "--output",
            out,
        ]
        .map(String::from)
    };
    for i in 0..2 {
        let f = filter(&format!("obs-{i}/y.npy"), &format!("whole-pf-{i}.npy"));
        ok(sda_in(d, &f.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    let f = filter("obs-{i}/y.npy", "pf-{i}.npy");
    let out = ok(sda_in(
        d,
        &[
            &["slurm", "submit", "--array", "2", "--", "sda"][..],
            &f.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    ));
    let (array, merge) = job_ids(&out);
    assert!(merge.is_none(), "independent commands have no merge: {out}");
    assert!(wait(&array).iter().all(|s| s == "COMPLETED"));
    for i in 0..2 {
        assert_eq!(
            bytes(&d.join(format!("whole-pf-{i}.npy"))),
            bytes(&d.join(format!("pf-{i}.npy")))
        );
    }
}

/// The small study run as 4 shards and merged: the single run's rows and samples.
fn sharded_study_matches(d: &Path) -> Vec<String> {
    let study = SMALL_STUDY;
    ok(sda_in(d, &[&study[..], &["--output", "sw"]].concat()));
    let hosts = submit_and_merge(d, 4, &[&study[..], &["--output", "ss"]].concat());
    for (f, col) in [("rows.csv", "seconds"), ("summary.csv", "mean_seconds")] {
        assert_eq!(
            without_columns(&d.join("sw").join(f), &[col]),
            without_columns(&d.join("ss").join(f), &[col]),
            "{f}"
        );
    }
    for e in std::fs::read_dir(d.join("sw/samples")).unwrap() {
        let n = e.unwrap().file_name();
        assert_eq!(
            bytes(&d.join("sw/samples").join(&n)),
            bytes(&d.join("ss/samples").join(&n)),
            "{n:?}"
        );
    }
    hosts
}

#[test]
fn arrays_of_shards_and_their_merge_give_the_single_run_bits() {
    let Some(nodes) = cluster() else { return };
    let d = tmp("bits");
    // The data, prior and observations of the runs below; the data again as 4 shards.
    small_prior(&d);
    let mut hosts = sharded_simulation_matches(&d);
    hosts.extend(sharded_assimilation_matches(&d));
    filter_array_matches(&d);
    hosts.extend(sharded_study_matches(&d));
    hosts.sort();
    hosts.dedup();
    eprintln!("shards ran on {hosts:?} of the nodes {nodes:?}");
    if nodes.len() > 1 {
        assert!(hosts.len() > 1, "every shard ran on {hosts:?} of {nodes:?}");
    }
}

#[test]
fn a_failed_shard_cancels_the_merge_and_resubmit_completes_the_run() {
    if cluster().is_none() {
        return;
    }
    let d = tmp("fail");
    let sim = [
        "simulate",
        "lorenz63",
        "--trajectories",
        "40",
        "--length",
        "32",
        "--seed",
        "5",
    ];
    ok(sda_in(&d, &[&sim[..], &["--output", "whole"]].concat()));
    // Shard 2 cannot write its part: a folder stands where it goes.
    let blocker = d.join("data.shards/part-0002-of-0004.npy");
    std::fs::create_dir_all(&blocker).unwrap();
    let out = ok(sda_in(
        &d,
        &[
            &[
                "slurm",
                "submit",
                "--array",
                "4",
                "--throttle",
                "2",
                "--",
                "sda",
            ][..],
            &sim[..],
            &["--output", "data"],
        ]
        .concat(),
    ));
    let (array, merge) = job_ids(&out);
    let states = wait(&array);
    assert!(states.iter().any(|s| s == "FAILED"), "{states:?}");
    assert_eq!(wait(&merge.unwrap()), ["CANCELLED"]);
    assert!(
        !d.join("data/system.json").exists(),
        "merged without shard 2"
    );
    let status = ok(sda_in(&d, &["slurm", "status", "data"]));
    assert!(status.contains("task 2: failed"), "{status}");
    assert!(status.contains("failed or missing: 2 "), "{status}");
    assert!(status.contains("3 of 4 shards done"), "{status}");

    std::fs::remove_dir(&blocker).unwrap();
    let again = ok(sda_in(&d, &["slurm", "resubmit", "data"]));
    assert!(
        again.contains("resubmitted shard(s) 2 as array job"),
        "{again}"
    );
    let merge = again
        .split("merge job ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(wait(&merge), ["COMPLETED"]);
    for f in ["system.json", "train.npy", "valid.npy", "test.npy"] {
        assert_eq!(
            bytes(&d.join("whole").join(f)),
            bytes(&d.join("data").join(f)),
            "{f}"
        );
    }
    let status = ok(sda_in(&d, &["slurm", "status", "data"]));
    assert!(status.contains("merged →"), "{status}");
}
