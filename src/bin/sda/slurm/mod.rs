//! `sda slurm submit|status|resubmit`: an sda command as a Slurm job array of shards and a
//! merge job that waits for it, watched and completed from the parts on disk and `scontrol`
//! (no accounting database needed).
//!
//! Everything a submission writes lives in `OUTPUT.slurm/`: the two batch scripts, one log per
//! shard and `jobs.json` (the job ids, for `status` and `resubmit`).

mod plan;
mod resubmit;
mod sbatch;
mod script;
mod status;
mod submit;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;

use sda::io::read_json;
use serde::{Deserialize, Serialize};

use self::resubmit::resubmit;
use self::status::status;
use self::submit::submit;

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
    /// Time limit of each task, in Slurm's notation (e.g. 30, 2:00:00, 1-0); sbatch's --time
    /// (`--time` before: that name is the time dimension in `import`).
    #[arg(long = "time-limit", alias = "time")]
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
