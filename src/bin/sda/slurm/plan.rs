//! What submitting needs to know of the sda command, read from its own flags.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Parser;

use crate::{Cli, Command};

/// What submitting needs to know of the sda command.
pub struct Plan {
    /// Whether it runs as shards of one run.
    pub shardable: bool,
    /// Its output.
    pub output: PathBuf,
    /// Whether that output holds a finished run.
    pub finished: bool,
    /// What --force removes: (file, folder names inside the output).
    pub outputs: Vec<PathBuf>,
}

pub fn plan(args: &[String]) -> Result<Plan> {
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

pub fn file_plan(output: PathBuf) -> Plan {
    Plan {
        shardable: true,
        finished: output.exists(),
        outputs: vec![output.clone()],
        output,
    }
}
