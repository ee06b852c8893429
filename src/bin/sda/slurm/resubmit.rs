//! `sda slurm resubmit`: the shards of a run that failed or never ran submitted again, with a
//! new merge job.

use std::path::Path;
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use sda::io::write_json;
use sda::shard::Shards;

use super::sbatch::{records, sbatch_run, which};
use super::status::{State, states};
use super::{folder, load_jobs};

pub fn resubmit(dir: &Path) -> Result<()> {
    let (output, mut jobs) = load_jobs(dir)?;
    if !jobs.sharded {
        bail!(
            "{}: not a sharded submission; submit the command again",
            output.display()
        );
    }
    if !Shards::folder(&output).exists() && output.exists() {
        println!("{}: already merged; nothing to resubmit", output.display());
        return Ok(());
    }
    let todo: Vec<usize> = states(&output, &jobs)?
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, State::Failed(_) | State::Missing))
        .map(|(i, _)| i)
        .collect();
    let sbatch = which("sbatch").context(
        "sbatch: not found on the PATH (submit from a Slurm login node, or load its module)",
    )?;
    let slurm_dir = folder(&output);
    // The old merge job was cancelled with its failed dependency, or is still waiting: a new
    // one replaces it.
    if let Some(m) = &jobs.merge
        && records(m).iter().any(|r| r.state == "PENDING")
    {
        let _ = Process::new("scancel").arg(m).status();
    }
    // Shards of earlier arrays that still run must finish before the merge (arrays the
    // controller has forgotten have ended).
    let mut after = jobs
        .arrays
        .iter()
        .filter(|a| !records(a).is_empty())
        .map(|a| format!("afterany:{a}"))
        .collect::<Vec<_>>();
    if !todo.is_empty() {
        let list = todo
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let throttle = jobs.throttle.map(|k| format!("%{k}")).unwrap_or_default();
        let array = sbatch_run(
            &sbatch,
            &[format!("--array={list}{throttle}")],
            &slurm_dir.join("array.sbatch"),
        )?;
        after.push(format!("afterok:{array}"));
        println!("resubmitted shard(s) {list} as array job {array}");
        jobs.arrays.push(array);
    } else {
        println!("no shard failed or is missing; submitting the merge again");
    }
    let merge = sbatch_run(
        &sbatch,
        &[
            format!("--dependency={}", after.join(",")),
            "--kill-on-invalid-dep=yes".into(),
        ],
        &slurm_dir.join("merge.sbatch"),
    )?;
    println!("merge job {merge}");
    jobs.merge = Some(merge);
    write_json(&slurm_dir.join("jobs.json"), &jobs)?;
    Ok(())
}
