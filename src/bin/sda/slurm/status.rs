//! `sda slurm status`: where each shard of a submission stands (its part on disk first, then
//! what the controller says) and where the merge stands.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sda::shard::Shards;
use serde::Serialize;

use super::sbatch::records;
use super::{Jobs, folder, load_jobs};

/// Where each shard of a submission stands.
pub enum State {
    Done { host: String, seconds: f64 },
    Queued(String),
    Failed(String),
    Missing,
}

/// Each shard's state: its part on disk first, then what the controller says.
pub fn states(output: &Path, jobs: &Jobs) -> Result<Vec<State>> {
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

pub fn status(dir: &Path, json: bool) -> Result<()> {
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
