//! `sda slurm submit|status|resubmit`: an sda command as a Slurm job array of shards and a
//! merge job that waits for it, watched and completed from the parts on disk and `scontrol`
//! (no accounting database needed).
//!
//! Everything a submission writes lives in `OUTPUT.slurm/`: the two batch scripts, one log per
//! shard and `jobs.json` (the job ids, for `status` and `resubmit`).

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use sda::io::{read_json, write_atomic, write_json};
use sda::shard::Shards;
use serde::{Deserialize, Serialize};

use crate::{Cli, Command};

/// Run sda commands on a Slurm cluster.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand)]
enum Sub {
    /// Submit an sda command: with --array N, N shards as a job array and a merge job that
    /// runs after all of them succeed (simulate, assimilate, sample, study), or N
    /// independent commands where the command holds `{i}` (e.g. `sda train --output run-{i}
    /// --seed {i}`); without, one job.
    Submit(SubmitArgs),
    /// Say which shards of a submitted run are done (and where they ran), running, pending or
    /// failed, and where the merge stands.
    Status(StatusArgs),
    /// Submit again the shards of a run that failed or never ran, and a new merge job.
    Resubmit(DirArgs),
}

#[derive(clap::Args)]
struct SubmitArgs {
    /// Array tasks: shards of the command, or independent commands with `{i}` in them.
    #[arg(long, default_value_t = 1)]
    array: usize,
    /// At most K tasks of the array run at once [default: no limit].
    #[arg(long)]
    throttle: Option<usize>,
    /// Time limit of each task, in Slurm's notation (e.g. 30, 2:00:00, 1-0).
    #[arg(long)]
    time: Option<String>,
    /// Slurm partition [default: the cluster's].
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long)]
    account: Option<String>,
    /// GPUs per task (for --device cuda or vulkan).
    #[arg(long)]
    gpus_per_task: Option<usize>,
    /// CPUs per task [default: the cluster's].
    #[arg(long)]
    cpus_per_task: Option<usize>,
    /// Print the batch scripts and submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object (job ids, folder of scripts and logs) instead of a sentence.
    #[arg(long)]
    json: bool,
    /// Replace a finished run in the command's output (and the parts of an earlier
    /// submission).
    #[arg(long)]
    force: bool,
    /// The sda command, after `--`: `sda slurm submit --array 8 -- sda study lorenz63 ...`.
    #[arg(last = true, required = true, value_name = "SDA COMMAND")]
    command: Vec<String>,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// The submitted command's output (or its OUTPUT.slurm/ folder).
    dir: PathBuf,
    /// Print one JSON object (tasks with state and host, merge job, failed shards).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DirArgs {
    /// The submitted command's output (or its OUTPUT.slurm/ folder).
    dir: PathBuf,
}

/// What `jobs.json` records of a submission.
#[derive(Serialize, Deserialize)]
struct Jobs {
    /// The command as the tasks run it (the program's absolute path first, no --shard).
    command: Vec<String>,
    /// The command's output.
    output: PathBuf,
    /// Array tasks.
    count: usize,
    /// Whether the tasks are shards of one run (merged), rather than independent commands.
    sharded: bool,
    /// The array jobs, first submission first (resubmissions add one each).
    arrays: Vec<String>,
    /// The merge job of the last (re)submission.
    merge: Option<String>,
    /// The throttle of the array.
    throttle: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    match a.command {
        Sub::Submit(s) => submit(s),
        Sub::Status(d) => status(&d.dir, d.json),
        Sub::Resubmit(d) => resubmit(&d.dir),
    }
}

/// The folder of a submission's scripts, logs and job ids.
fn folder(output: &Path) -> PathBuf {
    sda::output::beside(output, "slurm")
}

/// The output of a submission from its output or its `.slurm`/`.shards` folder.
fn output_of(dir: &Path) -> PathBuf {
    sda::output::owner(dir, &["slurm", "shards"])
}

/// What submitting needs to know of the sda command.
struct Plan {
    /// Whether it runs as shards of one run.
    shardable: bool,
    /// Its output.
    output: PathBuf,
    /// Whether that output holds a finished run.
    finished: bool,
    /// What --force removes: (file, folder names inside the output).
    outputs: Vec<PathBuf>,
}

fn plan(args: &[String]) -> Result<Plan> {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let line = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            bail!("the command after `--`: {line}");
        }
    };
    let in_dir = |dir: &Path, names: &[&str]| names.iter().map(|n| dir.join(n)).collect();
    Ok(match cli.command {
        Command::Simulate(a) => Plan {
            shardable: true,
            finished: a.output.join("system.json").exists(),
            outputs: in_dir(&a.output, &crate::simulate::DATA_FILES),
            output: a.output,
        },
        Command::Assimilate(a) => file_plan(a.sampler.output),
        Command::Sample(a) => file_plan(a.sampler.output),
        Command::Study(a) if a.system == "lorenz96" => Plan {
            shardable: true,
            finished: a.output.join("lorenz96.csv").exists(),
            outputs: ["lorenz96.csv", "lorenz96.md"]
                .iter()
                .map(|n| a.output.join(n))
                .collect(),
            output: a.output,
        },
        Command::Study(a) => Plan {
            shardable: true,
            finished: a.output.join("summary.csv").exists() && !a.resume,
            outputs: in_dir(&a.output, &crate::study::STUDY_FILES),
            output: a.output,
        },
        Command::Train(a) => Plan {
            shardable: false,
            finished: a.output.join("model.safetensors").exists() && !a.resume,
            outputs: Vec::new(),
            output: a.output,
        },
        Command::Slurm(_) | Command::Merge(_) => {
            bail!(
                "the command after `--`: submit an sda command that computes (simulate, train, assimilate, study, ...)"
            )
        }
        _ => Plan {
            shardable: false,
            finished: false,
            outputs: Vec::new(),
            output: PathBuf::from("sda-job"),
        },
    })
}

fn file_plan(output: PathBuf) -> Plan {
    Plan {
        shardable: true,
        finished: output.exists(),
        outputs: vec![output.clone()],
        output,
    }
}

/// Quotes a word for bash.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The `#SBATCH` lines every job of a submission shares.
fn directives(a: &SubmitArgs, name: &str, log: &Path, cwd: &Path) -> String {
    let mut s = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={}\n#SBATCH --chdir={}\n",
        log.display(),
        cwd.display()
    );
    let mut line = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            s.push_str(&format!("#SBATCH --{flag}={v}\n"));
        }
    };
    line("time", a.time.clone());
    line("partition", a.partition.clone());
    line("account", a.account.clone());
    line("gpus-per-task", a.gpus_per_task.map(|g| g.to_string()));
    line("cpus-per-task", a.cpus_per_task.map(|c| c.to_string()));
    s
}

fn submit(a: SubmitArgs) -> Result<()> {
    if a.array == 0 {
        bail!("--array 0: needs at least one task");
    }
    if a.throttle == Some(0) {
        bail!("--throttle 0: at least one task must be allowed to run");
    }
    let mut command = a.command.clone();
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
    let cwd = std::env::current_dir()?;
    let output = std::path::absolute(&p.output)?;
    let slurm_dir = folder(&output);
    let shards_dir = Shards::folder(&output);
    if !a.force && !indexed {
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
    }

    let name = format!(
        "sda-{}",
        command.get(1).map(String::as_str).unwrap_or("job")
    );
    let words: Vec<String> = command.iter().map(|w| quote(w)).collect();
    let mut script;
    let merge_script;
    if a.array > 1 {
        script = directives(&a, &name, &slurm_dir.join("task-%a.log"), &cwd);
        let throttle = a.throttle.map(|k| format!("%{k}")).unwrap_or_default();
        script.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", a.array - 1));
        script.push_str("set -eu\n");
        script.push_str(&format!(
            "echo \"task ${{SLURM_ARRAY_TASK_ID}} of {} on ${{SLURMD_NODENAME:-$(hostname)}}\"\n",
            a.array
        ));
        let mut line = words.join(" ");
        if indexed {
            line = requote(&command);
        } else {
            line.push_str(&format!(
                " --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"",
                a.array
            ));
        }
        script.push_str(&format!("exec {line}\n"));
        merge_script = sharded.then(|| {
            let mut m = directives(
                &a,
                &format!("{name}-merge"),
                &slurm_dir.join("merge.log"),
                &cwd,
            );
            m.push_str(&format!(
                "set -eu\nexec {} merge {}\n",
                quote(&command[0]),
                quote(&output.display().to_string())
            ));
            m
        });
    } else {
        script = directives(&a, &name, &slurm_dir.join("job.log"), &cwd);
        script.push_str(&format!("set -eu\nexec {}\n", words.join(" ")));
        merge_script = None;
    }
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
    if a.json {
        let j = serde_json::json!({
            "array": array,
            "merge": merge,
            "tasks": a.array,
            "folder": slurm_dir,
            "output": output,
        });
        println!("{j}");
        return Ok(());
    }
    match &merge {
        Some(m) => println!(
            "submitted array job {array} ({} shards{}) and merge job {m} (after every shard succeeds); logs in {}; `sda slurm status {}`",
            a.array,
            a.throttle
                .map(|k| format!(", at most {k} at once"))
                .unwrap_or_default(),
            slurm_dir.display(),
            p.output.display()
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
    Ok(())
}

/// The command as bash words with `{i}` replaced by the array task's index.
fn requote(command: &[String]) -> String {
    command
        .iter()
        .map(|w| {
            w.split("{i}")
                .map(|piece| {
                    if piece.is_empty() {
                        String::new()
                    } else {
                        quote(piece)
                    }
                })
                .collect::<Vec<_>>()
                .join("${SLURM_ARRAY_TASK_ID}")
        })
        .collect::<Vec<_>>()
        .join(" ")
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

/// The full path of a program on the PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Runs `sbatch --parsable EXTRA SCRIPT` and returns the job id.
fn sbatch_run(sbatch: &Path, extra: &[String], script: &Path) -> Result<String> {
    let out = Process::new(sbatch)
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .with_context(|| format!("running {}", sbatch.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "sbatch {}: {}",
            script.display(),
            err.lines().next().unwrap_or("failed").trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // --parsable prints `ID` or `ID;CLUSTER`.
    Ok(text.trim().split(';').next().unwrap_or("").to_string())
}

/// One job record of `scontrol -o show job`.
struct Record {
    /// Array tasks it stands for (one, or a pending range).
    tasks: Vec<usize>,
    state: String,
    node: String,
    reason: String,
}

/// The records of `job` that the controller still holds (finished jobs stay for MinJobAge).
fn records(job: &str) -> Vec<Record> {
    let Ok(out) = Process::new("scontrol")
        .args(["-o", "show", "job", job])
        .output()
    else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let field = |k: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))
                    .unwrap_or("")
                    .to_string()
            };
            Record {
                tasks: task_list(&field("ArrayTaskId")),
                state: field("JobState"),
                node: field("NodeList"),
                reason: field("Reason"),
            }
        })
        .collect()
}

/// `3`, `0-7%2` or `1,4-5` as a list of task indices.
fn task_list(spec: &str) -> Vec<usize> {
    let spec = spec.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// Where each shard of a submission stands.
enum State {
    Done { host: String, seconds: f64 },
    Queued(String),
    Failed(String),
    Missing,
}

fn load_jobs(dir: &Path) -> Result<(PathBuf, Jobs)> {
    let output = std::path::absolute(output_of(dir))?;
    let path = folder(&output).join("jobs.json");
    if !path.exists() {
        bail!(
            "{}: no submission here (no {}); submit with `sda slurm submit`",
            dir.display(),
            path.display()
        );
    }
    Ok((output, read_json(&path)?))
}

/// Each shard's state: its part on disk first, then what the controller says.
fn states(output: &Path, jobs: &Jobs) -> Result<Vec<State>> {
    let mut out: Vec<State> = (0..jobs.count).map(|_| State::Missing).collect();
    // Later arrays (resubmissions) override earlier records.
    for array in &jobs.arrays {
        for r in records(array) {
            for &t in &r.tasks {
                if t < jobs.count {
                    out[t] = match r.state.as_str() {
                        "PENDING" => State::Queued(format!(
                            "pending ({})",
                            r.reason.trim_matches(|c| c == '(' || c == ')')
                        )),
                        "RUNNING" | "CONFIGURING" | "COMPLETING" => {
                            State::Queued(format!("running on {}", r.node))
                        }
                        "COMPLETED" => State::Missing,
                        other => State::Failed(format!("{} on {}", other.to_lowercase(), r.node)),
                    };
                }
            }
        }
    }
    if jobs.sharded
        && let Some(shards) = Shards::existing(output)?
    {
        for (i, s) in out.iter_mut().enumerate() {
            // A part of another run counts as missing here; `merge` names it.
            if let Ok(Some(d)) = shards.done(i) {
                *s = State::Done {
                    host: d.host,
                    seconds: d.seconds,
                };
            }
        }
    }
    Ok(out)
}

/// Where a submission stands, as `sda slurm status` prints it (or `--json` writes it).
#[derive(Serialize)]
struct Report {
    output: PathBuf,
    arrays: Vec<String>,
    tasks: Vec<TaskReport>,
    merge: Option<String>,
    merge_state: Option<String>,
    merged: bool,
    failed: Vec<usize>,
}

#[derive(Serialize)]
struct TaskReport {
    task: usize,
    /// done, pending, running, failed, missing or ended.
    state: String,
    /// The node where it ran or runs, where known.
    host: Option<String>,
    /// Words: `done on node1 in 3.2 s`.
    detail: String,
}

fn report(dir: &Path) -> Result<Report> {
    let (output, jobs) = load_jobs(dir)?;
    let merged = jobs.sharded && !Shards::folder(&output).exists() && output.exists();
    let mut tasks = Vec::new();
    let mut failed = Vec::new();
    if merged {
        // The parts are gone with the merge; the tasks' logs say where each ran.
        for i in 0..jobs.count {
            let log = folder(&output).join(format!("task-{i}.log"));
            let first = std::fs::read_to_string(&log).unwrap_or_default();
            let host = first
                .lines()
                .next()
                .and_then(|l| l.rsplit_once(" on "))
                .map(|h| h.1.to_string());
            tasks.push(TaskReport {
                task: i,
                state: "done".into(),
                detail: match &host {
                    Some(h) => format!("done on {h}"),
                    None => "done".into(),
                },
                host,
            });
        }
    } else {
        for (i, s) in states(&output, &jobs)?.into_iter().enumerate() {
            let (state, host, detail) = match s {
                State::Done { host, seconds } => (
                    "done",
                    Some(host.clone()),
                    format!("done on {host} in {seconds:.1} s"),
                ),
                State::Queued(t) => {
                    let host = t.strip_prefix("running on ").map(String::from);
                    let state = if host.is_some() { "running" } else { "pending" };
                    (state, host, t)
                }
                State::Failed(t) => {
                    failed.push(i);
                    ("failed", t.rsplit_once(" on ").map(|h| h.1.to_string()), t)
                }
                State::Missing if jobs.sharded => {
                    failed.push(i);
                    (
                        "missing",
                        None,
                        "missing (no part on disk, not in the queue)".into(),
                    )
                }
                State::Missing => (
                    "ended",
                    None,
                    "finished or unknown (no longer in the queue)".into(),
                ),
            };
            tasks.push(TaskReport {
                task: i,
                state: state.into(),
                host,
                detail,
            });
        }
    }
    let merge_state = jobs
        .merge
        .as_ref()
        .map(|m| match (records(m).into_iter().next(), merged) {
            (_, true) => "done".to_string(),
            (Some(r), _) if r.state == "PENDING" => format!(
                "pending ({})",
                r.reason.trim_matches(|c| c == '(' || c == ')')
            ),
            (Some(r), _) => r.state.to_lowercase(),
            (None, _) => "no longer in the queue".into(),
        });
    Ok(Report {
        output,
        arrays: jobs.arrays,
        tasks,
        merge: jobs.merge,
        merge_state,
        merged,
        failed,
    })
}

fn status(dir: &Path, json: bool) -> Result<()> {
    let r = report(dir)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!(
        "{}: {} task(s), array job(s) {}",
        r.output.display(),
        r.tasks.len(),
        r.arrays.join(", ")
    );
    for t in &r.tasks {
        println!("  task {}: {}", t.task, t.detail);
    }
    if let (Some(m), Some(state)) = (&r.merge, &r.merge_state) {
        println!("  merge job {m}: {state}");
    }
    if r.merged {
        println!("merged → {}", r.output.display());
    } else if r.merge.is_some() {
        let done = r.tasks.iter().filter(|t| t.state == "done").count();
        let failed: Vec<String> = r.failed.iter().map(|i| i.to_string()).collect();
        println!(
            "{done} of {} shards done{}",
            r.tasks.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(
                    "; failed or missing: {} (`sda slurm resubmit {}`)",
                    failed.join(", "),
                    r.output.display()
                )
            }
        );
    }
    Ok(())
}

fn resubmit(dir: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lists_and_quoting() {
        assert_eq!(task_list("0-3%2"), vec![0, 1, 2, 3]);
        assert_eq!(task_list("1,4-5"), vec![1, 4, 5]);
        assert_eq!(task_list(""), Vec::<usize>::new());
        assert_eq!(quote("stride:8|select:0"), "'stride:8|select:0'");
        assert_eq!(quote("--seed"), "--seed");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(
            requote(&["sda".into(), "run-{i}".into(), "{i}".into()]),
            "sda run-${SLURM_ARRAY_TASK_ID} ${SLURM_ARRAY_TASK_ID}"
        );
    }
}
