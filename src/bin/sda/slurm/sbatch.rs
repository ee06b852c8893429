//! Talking to Slurm: `sbatch` to submit a batch script, `scontrol` for what the controller
//! holds of a job.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};

/// The full path of a program on the PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Runs `sbatch --parsable EXTRA SCRIPT` and returns the job id.
pub fn sbatch_run(sbatch: &Path, extra: &[String], script: &Path) -> Result<String> {
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
pub struct Record {
    /// Array tasks it stands for (one, or a pending range).
    pub tasks: Vec<usize>,
    pub state: String,
    pub node: String,
    pub reason: String,
}

/// The records of `job` that the controller still holds (finished jobs stay for MinJobAge).
pub fn records(job: &str) -> Vec<Record> {
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
pub fn task_list(spec: &str) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lists() {
        assert_eq!(task_list("0-3%2"), vec![0, 1, 2, 3]);
        assert_eq!(task_list("1,4-5"), vec![1, 4, 5]);
        assert_eq!(task_list(""), Vec::<usize>::new());
    }
}
