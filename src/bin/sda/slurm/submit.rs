//! `sda slurm submit`: the command checked, its scripts written and submitted, and its job
//! ids kept in `jobs.json`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sda::io::{write_atomic, write_json};
use sda::shard::Shards;

use super::plan::{Plan, plan};
use super::sbatch::{sbatch_run, which};
use super::script::scripts;
use super::{Jobs, SubmitArgs, folder};

pub fn submit(a: SubmitArgs) -> Result<()> {
    let (mut command, program, indexed) = command_of(&a)?;
    let probe: Vec<String> = command.iter().map(|w| w.replace("{i}", "0")).collect();
    let p = plan(&probe)?;
    let sharded = a.array > 1 && !indexed;
    if sharded && !p.shardable {
        bail!(
            "--array {}: `{}` does not split into shards; put {{i}} in the command to run {} independent ones (e.g. --output run-{{i}} --seed {{i}})",
            a.array,
            command[1..].first().map(String::as_str).unwrap_or("?"),
            a.array
        );
    }
    // The tasks run this very build, wherever they start.
    command[0] = if program == "sda" {
        std::env::current_exe()?.display().to_string()
    } else {
        std::path::absolute(&program)?.display().to_string()
    };
    let output = std::path::absolute(&p.output)?;
    let slurm_dir = folder(&output);
    let shards_dir = Shards::folder(&output);
    if !a.force && !indexed {
        refuse_existing(&p, &shards_dir)?;
    }
    let (script, merge_script) = scripts(&a, &command, indexed, sharded, &slurm_dir, &output)?;
    if a.dry_run {
        println!("# {}\n{script}", slurm_dir.join("array.sbatch").display());
        if let Some(m) = &merge_script {
            println!(
                "# {} (submitted with --dependency=afterok:<array job> --kill-on-invalid-dep=yes)\n{m}",
                slurm_dir.join("merge.sbatch").display()
            );
        }
        return Ok(());
    }
    let sbatch = which("sbatch").context(
        "sbatch: not found on the PATH (submit from a Slurm login node, or load its module)",
    )?;
    if a.force {
        for path in p.outputs.iter().chain([&shards_dir, &slurm_dir]) {
            remove(path)?;
        }
    }
    std::fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("making {}", slurm_dir.display()))?;
    let array_path = slurm_dir.join("array.sbatch");
    write_atomic(&array_path, script.as_bytes())?;
    let array = sbatch_run(&sbatch, &[], &array_path)?;
    let merge = match &merge_script {
        Some(m) => {
            let path = slurm_dir.join("merge.sbatch");
            write_atomic(&path, m.as_bytes())?;
            Some(sbatch_run(
                &sbatch,
                &[
                    format!("--dependency=afterok:{array}"),
                    "--kill-on-invalid-dep=yes".into(),
                ],
                &path,
            )?)
        }
        None => None,
    };
    write_json(
        &slurm_dir.join("jobs.json"),
        &Jobs {
            command: command.clone(),
            output: output.clone(),
            count: a.array,
            sharded,
            arrays: vec![array.clone()],
            merge: merge.clone(),
            throttle: a.throttle,
        },
    )?;
    announce(&a, &array, merge.as_deref(), &slurm_dir, &output, &p.output);
    Ok(())
}

/// The command after `--`, checked (an sda command, without --shard), with its program and
/// whether it holds `{i}`.
fn command_of(a: &SubmitArgs) -> Result<(Vec<String>, String, bool)> {
    if a.array == 0 {
        bail!("--array 0: needs at least one task");
    }
    if a.throttle == Some(0) {
        bail!("--throttle 0: at least one task must be allowed to run");
    }
    let command = a.command.clone();
    let program = command[0].clone();
    let file = Path::new(&program)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !file.starts_with("sda") {
        bail!(
            "the command after `--` must be an sda command (`sda simulate ...`), not `{program}`"
        );
    }
    if command
        .iter()
        .any(|w| w == "--shard" || w.starts_with("--shard="))
    {
        bail!("--shard: `sda slurm submit` gives each task its shard; leave it out of the command");
    }
    let indexed = command.iter().any(|w| w.contains("{i}"));
    Ok((command, program, indexed))
}

/// Refuses an output that holds a finished run or the parts of an earlier submission.
fn refuse_existing(p: &Plan, shards_dir: &Path) -> Result<()> {
    if p.finished {
        bail!(
            "{} already holds a finished run; pass --force to replace it",
            p.output.display()
        );
    }
    if shards_dir.join("manifest.json").exists() {
        bail!(
            "{} holds the parts of an earlier submission; `sda slurm resubmit {}` completes it, --force starts over",
            shards_dir.display(),
            p.output.display()
        );
    }
    Ok(())
}

/// What was submitted: one JSON object (--json) or a sentence.
fn announce(
    a: &SubmitArgs,
    array: &str,
    merge: Option<&str>,
    slurm_dir: &Path,
    output: &Path,
    given: &Path,
) {
    if a.json {
        let j = serde_json::json!({
            "array": array,
            "merge": merge,
            "tasks": a.array,
            "folder": slurm_dir,
            "output": output,
        });
        println!("{j}");
        return;
    }
    match &merge {
        Some(m) => println!(
            "submitted array job {array} ({} shards{}) and merge job {m} (after every shard succeeds); logs in {}; `sda slurm status {}`",
            a.array,
            a.throttle
                .map(|k| format!(", at most {k} at once"))
                .unwrap_or_default(),
            slurm_dir.display(),
            given.display()
        ),
        None => println!(
            "submitted job {array}{}; logs in {}",
            if a.array > 1 {
                format!(" ({} tasks)", a.array)
            } else {
                String::new()
            },
            slurm_dir.display()
        ),
    }
}

fn remove(path: &Path) -> Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else if path.exists() {
        std::fs::remove_file(path)
    } else {
        Ok(())
    };
    r.with_context(|| format!("--force: removing {}", path.display()))
}
