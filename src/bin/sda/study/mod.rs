//! `sda study lorenz63`: the paper's Lorenz-63 evaluation (Figure 3, docs/method.md §7) in one
//! command. Every expensive piece (data, models, filters, rows) is cached in the output folder,
//! so an interrupted study resumes where it stopped and a larger study reuses a smaller one.
//! `sda study lorenz96`: the classical benchmark on Lorenz-96 (in [`lorenz96`]).

mod args;
mod lorenz63;
mod lorenz96;
mod models;
mod report;
mod rows;
mod settings;

use anyhow::{Result, bail};
use sda::shard::Shards;

use crate::shard::{Opened, Sharded};

pub use args::Args;

/// How a study runs: whole, as one shard of its assimilations, or merging the shards' rows.
pub enum Mode {
    Whole,
    Shard(Sharded),
    Merge(Shards),
}

/// What a study writes in its folder (`data` only when it simulates its own).
pub const STUDY_FILES: [&str; 8] = [
    "rows.csv",
    "summary.csv",
    "figure3.png",
    "trajectories.png",
    "samples",
    "obs",
    "models",
    "data",
];

pub fn run(a: Args) -> Result<()> {
    if a.system != "lorenz96" {
        check_system(&a)?;
    }
    if a.shard.shard.is_some() && a.force {
        bail!(
            "--force with --shard: shards never remove a study; remove {} first (or `sda slurm submit --force`)",
            a.output.display()
        );
    }
    let mode = match crate::shard::open(&a.shard, &a.output)? {
        Opened::Whole => Mode::Whole,
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Mode::Shard(s),
    };
    if a.system == "lorenz96" {
        return lorenz96::run_study(&a, mode);
    }
    lorenz63::run_mode(a, mode)
}

/// `sda merge` of a sharded study: the shards' rows join rows.csv, then the summary and the
/// figures are made as a whole run makes them.
pub fn merge(a: Args, shards: Shards) -> Result<()> {
    if a.system == "lorenz96" {
        return lorenz96::run_study(&a, Mode::Merge(shards));
    }
    check_system(&a)?;
    lorenz63::run_mode(a, Mode::Merge(shards))
}

fn check_system(a: &Args) -> Result<()> {
    if a.system != "lorenz63" {
        bail!(
            "unknown study system '{}': lorenz63 and lorenz96 have studies",
            a.system
        );
    }
    Ok(())
}
