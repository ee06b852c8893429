//! `--shard I/N` on the commands that split (simulate, assimilate, sample, study), and what
//! `sda merge` shares with them.

use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};
use sda::shard::{Manifest, Shard, Shards, build_id};

/// The `--shard` flag, the same in every command that takes it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ShardArgs {
    /// Do shard I of N of the run (counted from 0; `auto`: the task of a Slurm job array),
    /// writing its part to OUTPUT.shards/; `sda merge OUTPUT` then writes the output, the same
    /// bits as an unsharded run. A shard whose part is done is skipped.
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
}

/// A shard at work: which one, its folder of parts, and when it started.
pub struct Sharded {
    pub shard: Shard,
    pub shards: Shards,
    started: Instant,
}

impl Sharded {
    /// Keeps this shard's part (atomically) and says so.
    pub fn finish(self, ext: &str, bytes: &[u8], what: &str) -> Result<()> {
        let seconds = self.started.elapsed().as_secs_f64();
        self.shards.finish(self.shard, ext, bytes, seconds)?;
        println!(
            "shard {}: {what} in {seconds:.1} s → {}",
            self.shard,
            self.shards.part(self.shard.index, ext).display()
        );
        Ok(())
    }
}

/// The command line of this process after the program name, without `--shard`.
fn args_without_shard() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--shard" {
            args.next();
        } else if !a.starts_with("--shard=") {
            out.push(a);
        }
    }
    out
}

/// What `--shard` asks of a run.
pub enum Opened {
    /// No `--shard`: the whole run.
    Whole,
    /// This shard's part is already done: nothing to do.
    Done,
    /// A shard to run.
    Shard(Sharded),
}

/// Opens the shard that `--shard` names for the run writing `output`. Fails for a bad spec or
/// parts of another run.
pub fn open(args: &ShardArgs, output: &Path) -> Result<Opened> {
    let Some(spec) = &args.shard else {
        return Ok(Opened::Whole);
    };
    let shard = Shard::parse(spec)?;
    let cwd = std::env::current_dir()?;
    let manifest = Manifest {
        args: args_without_shard(),
        count: shard.count,
        build: build_id(),
        cwd: cwd.display().to_string(),
    };
    let shards = Shards::open(output, manifest)?;
    if let Some(done) = shards.done(shard.index)? {
        println!(
            "shard {shard}: already done on {} ({:.1} s) → {}",
            done.host,
            done.seconds,
            shards.dir().display()
        );
        return Ok(Opened::Done);
    }
    Ok(Opened::Shard(Sharded {
        shard,
        shards,
        started: Instant::now(),
    }))
}

/// Checks, for `sda merge`, that `shards` ran in a folder the merge can reach, and moves there
/// (relative paths of the command line are relative to it).
pub fn enter(shards: &Shards) -> Result<()> {
    let cwd = Path::new(&shards.manifest().cwd);
    if !cwd.is_dir() {
        bail!(
            "{}: the run's working folder {} is gone; merge where the shards ran",
            shards.dir().display(),
            cwd.display()
        );
    }
    std::env::set_current_dir(cwd)?;
    Ok(())
}
