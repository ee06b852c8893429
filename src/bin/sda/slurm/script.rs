//! The batch scripts of a submission: the array's (or the single job's) and the merge's.

use std::path::Path;

use super::SubmitArgs;

/// Quotes a word for bash.
pub fn quote(word: &str) -> String {
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
pub fn directives(a: &SubmitArgs, name: &str, log: &Path, cwd: &Path) -> String {
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

/// The script of the array (or of the one job) and, for shards of one run, the merge's.
///
/// `command`: the sda command as the tasks run it; `indexed`: it holds `{i}`; `sharded`: its
/// tasks are shards of one run, merged into `output`.
pub fn scripts(
    a: &SubmitArgs,
    command: &[String],
    indexed: bool,
    sharded: bool,
    slurm_dir: &Path,
    output: &Path,
) -> std::io::Result<(String, Option<String>)> {
    let cwd = std::env::current_dir()?;
    let name = format!(
        "sda-{}",
        command.get(1).map(String::as_str).unwrap_or("job")
    );
    let words: Vec<String> = command.iter().map(|w| quote(w)).collect();
    let mut script;
    let merge_script;
    if a.array > 1 {
        script = directives(a, &name, &slurm_dir.join("task-%a.log"), &cwd);
        let throttle = a.throttle.map(|k| format!("%{k}")).unwrap_or_default();
        script.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", a.array - 1));
        script.push_str("set -eu\n");
        script.push_str(&format!(
            "echo \"task ${{SLURM_ARRAY_TASK_ID}} of {} on ${{SLURMD_NODENAME:-$(hostname)}}\"\n",
            a.array
        ));
        let mut line = words.join(" ");
        if indexed {
            line = requote(command);
        } else {
            line.push_str(&format!(
                " --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"",
                a.array
            ));
        }
        script.push_str(&format!("exec {line}\n"));
        merge_script = sharded.then(|| {
            let mut m = directives(
                a,
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
        script = directives(a, &name, &slurm_dir.join("job.log"), &cwd);
        script.push_str(&format!("set -eu\nexec {}\n", words.join(" ")));
        merge_script = None;
    }
    Ok((script, merge_script))
}

/// The command as bash words with `{i}` replaced by the array task's index.
pub fn requote(command: &[String]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("stride:8|select:0"), "'stride:8|select:0'");
        assert_eq!(quote("--seed"), "--seed");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(
            requote(&["sda".into(), "run-{i}".into(), "{i}".into()]),
            "sda run-${SLURM_ARRAY_TASK_ID} ${SLURM_ARRAY_TASK_ID}"
        );
    }
}
