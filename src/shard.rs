//! Splitting an embarrassingly parallel run into shards whose merged result is the unsharded
//! run's, bit for bit.
//!
//! A command run with `--shard I/N` does the `I`-th of `N` contiguous slices of its items
//! (chains to simulate, batches of samples, assimilations of a study) and keeps its result as
//! one part in `OUTPUT.shards/`; `sda merge` puts the parts together. What makes the result
//! exact is the commands' own seeding: every item's randomness is a function of the base seed
//! and the item's index only, never of the items run before it in the same process.
//!
//! - [`Shard`]: which slice (`I/N`, or `auto` from a Slurm job array's variables);
//! - [`Shards`]: the folder of parts, with a manifest that fingerprints the command line and
//!   the build, so that parts of different runs are never mixed;
//! - [`locked`]: a section that one process at a time runs (shared preparation, such as a
//!   model that every shard of a study needs).

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{read_json, write_atomic, write_json};

/// One slice of a run: the `index`-th (from 0) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which slice, `0 ≤ index < count`.
    pub index: usize,
    /// How many slices the run is cut into.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `I/N` (`0 ≤ I < N`) or `auto` (the Slurm array task of this process, see
    /// [`Shard::from_env`]).
    pub fn parse(spec: &str) -> Result<Shard> {
        if spec == "auto" {
            return Shard::from_env(|k| std::env::var(k).ok());
        }
        let bad = |why: &str| Error::config(format!("--shard {spec}"), why.to_string());
        let (i, n) = spec
            .split_once('/')
            .ok_or_else(|| bad("expected I/N (shard I of N, counted from 0) or auto"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("I in I/N must be a whole number ≥ 0"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N in I/N must be a whole number ≥ 1"))?;
        if count == 0 {
            return Err(bad("N in I/N must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "shards are counted from 0: I must be below N (0 to {})",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Slurm array task: `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT` (so that `--array=0-7` and `--array=1-8` both give 8 shards).
    /// `env` reads a variable (the process environment in [`Shard::parse`]).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let get = |k: &str| -> Result<Option<usize>> {
            env(k)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        Error::config("--shard auto", format!("{k}={v} is not a whole number"))
                    })
                })
                .transpose()
        };
        let (Some(id), Some(count)) = (get("SLURM_ARRAY_TASK_ID")?, get("SLURM_ARRAY_TASK_COUNT")?)
        else {
            return Err(Error::config(
                "--shard auto",
                "not inside a Slurm job array (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are unset); give --shard I/N",
            ));
        };
        let min = get("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id.checked_sub(min).filter(|&i| i < count).ok_or_else(|| {
            Error::config(
                "--shard auto",
                format!(
                    "array task {id} is not among the {count} tasks from {min}: use --array=0-{} (or give --shard I/N)",
                    count.saturating_sub(1)
                ),
            )
        })?;
        Ok(Shard { index, count })
    }

    /// The items of this shard among `items` numbered from 0: a contiguous slice, the first
    /// `items mod count` shards holding one more than the others.
    pub fn range(&self, items: usize) -> Range<usize> {
        let (q, r) = (items / self.count, items % self.count);
        let start = self.index * q + self.index.min(r);
        start..start + q + usize::from(self.index < r)
    }
}

/// What every part of a sharded run must agree on: the command line (without `--shard`) and
/// the build that ran it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The command's arguments after the program name, `--shard` removed.
    pub args: Vec<String>,
    /// Shards the run is cut into.
    pub count: usize,
    /// The build: version and a hash of the executable.
    pub build: String,
    /// The working folder of the run (relative paths of `args` are relative to it).
    pub cwd: String,
}

/// What a finished shard records beside its part.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Done {
    /// The shard.
    pub shard: Shard,
    /// The fingerprint of the manifest it ran under.
    pub manifest: String,
    /// The host (Slurm node) it ran on.
    pub host: String,
    /// Wall time of the shard, seconds.
    pub seconds: f64,
}

/// The build of the running executable: its version and a hash of its bytes.
pub fn build_id() -> String {
    let hash = std::env::current_exe()
        .and_then(std::fs::read)
        .map(|b| crate::output::fingerprint(&b))
        .unwrap_or_else(|_| "unknown".into());
    format!("{} {hash}", env!("CARGO_PKG_VERSION"))
}

/// This machine's name: the Slurm node where one is set, else the host name.
pub fn host_name() -> String {
    std::env::var("SLURMD_NODENAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The parts of a sharded run: `OUTPUT.shards/` with `manifest.json`, one `part-I-of-N.EXT`
/// per finished shard and its `part-I-of-N.json` ([`Done`]), written after the part, so that
/// a part counts only once it is whole.
pub struct Shards {
    dir: PathBuf,
    manifest: Manifest,
}

impl Shards {
    /// The folder of parts of `output`.
    pub fn folder(output: &Path) -> PathBuf {
        crate::output::beside(output, "shards")
    }

    /// The output whose parts `dir` holds (`dir` may also name the output itself).
    pub fn output_of(dir: &Path) -> PathBuf {
        crate::output::owner(dir, &["shards"])
    }

    /// The parts of `output` as they are, if a sharded run left any (no check of the build or
    /// of completeness: for saying where a run stands).
    pub fn existing(output: &Path) -> Result<Option<Shards>> {
        let dir = Self::folder(output);
        let path = dir.join("manifest.json");
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Shards {
            manifest: read_json(&path)?,
            dir,
        }))
    }

    /// Opens (creating it if needed) the folder of parts of `output` for a run under
    /// `manifest`; fails when the folder holds parts of another command line, shard count or
    /// build.
    pub fn open(output: &Path, manifest: Manifest) -> Result<Shards> {
        let dir = Self::folder(output);
        let path = dir.join("manifest.json");
        let shards = Shards {
            dir: dir.clone(),
            manifest,
        };
        locked(&dir.join(".lock"), || {
            if path.exists() {
                let saved: Manifest = read_json(&path)?;
                if saved != shards.manifest {
                    return Err(Error::config(
                        "--shard",
                        format!(
                            "{} holds the parts of another run ({}); finish that one with `sda merge` or remove the folder",
                            dir.display(),
                            difference(&saved, &shards.manifest)
                        ),
                    ));
                }
            } else {
                write_json(&path, &shards.manifest)?;
            }
            Ok(())
        })?;
        Ok(shards)
    }

    /// Opens the parts of a finished run for merging: `dir` names the output or its
    /// `.shards` folder. Fails with one line naming the missing shards, a part of another
    /// run, or a build other than the running one.
    pub fn complete(dir: &Path) -> Result<Shards> {
        // Absolute: the merge moves to the run's working folder.
        let dir = std::path::absolute(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let output = Self::output_of(&dir);
        let Some(shards) = Self::existing(&output)? else {
            return Err(Error::config(
                format!("sda merge {}", Self::folder(&output).display()),
                "holds no sharded run (no manifest.json)",
            ));
        };
        let (dir, manifest) = (&shards.dir, &shards.manifest);
        if manifest.build != build_id() {
            return Err(Error::config(
                format!("sda merge {}", dir.display()),
                format!(
                    "the parts were made by another build of sda ({}); merge with the binary that made them",
                    manifest.build
                ),
            ));
        }
        let mut missing = Vec::new();
        for i in 0..shards.manifest.count {
            match shards.done(i)? {
                Some(_) => {}
                None => missing.push(i.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::config(
                format!("sda merge {}", shards.dir.display()),
                format!(
                    "shard(s) {} of {} missing; run them (`sda slurm resubmit`) and merge again",
                    missing.join(", "),
                    shards.manifest.count
                ),
            ));
        }
        Ok(shards)
    }

    /// The run's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The folder of parts.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of shard `i`'s part, with extension `ext`.
    pub fn part(&self, i: usize, ext: &str) -> PathBuf {
        self.dir
            .join(format!("part-{i:04}-of-{:04}.{ext}", self.manifest.count))
    }

    fn marker(&self, i: usize) -> PathBuf {
        self.part(i, "json")
    }

    /// Shard `i`'s record if it finished under this manifest; an error if a part of another
    /// run stands in its place.
    pub fn done(&self, i: usize) -> Result<Option<Done>> {
        let p = self.marker(i);
        if !p.exists() {
            return Ok(None);
        }
        let d: Done = read_json(&p)?;
        if d.manifest != self.fingerprint() || d.shard.index != i {
            return Err(Error::config(
                format!("sda merge {}", self.dir.display()),
                format!(
                    "part {} is from another run (other command line or build)",
                    p.display()
                ),
            ));
        }
        Ok(Some(d))
    }

    /// Writes shard `shard`'s part (atomically), then its record.
    pub fn finish(&self, shard: Shard, ext: &str, bytes: &[u8], seconds: f64) -> Result<()> {
        write_atomic(&self.part(shard.index, ext), bytes)?;
        write_json(
            &self.marker(shard.index),
            &Done {
                shard,
                manifest: self.fingerprint(),
                host: host_name(),
                seconds,
            },
        )
    }

    /// The `.npy` parts of every shard, in order, as one array (concatenated along the first
    /// axis: the items).
    pub fn concatenated(&self) -> Result<crate::io::Array> {
        let mut shape = Vec::new();
        let mut data = Vec::new();
        for i in 0..self.manifest.count {
            let part = crate::io::read_npy(&self.part(i, "npy"))?;
            shape = part.shape;
            data.extend(part.data);
        }
        let per: usize = shape.iter().skip(1).product();
        if let Some(n) = shape.first_mut() {
            *n = data.len() / per.max(1);
        }
        Ok(crate::io::Array::new(shape, data))
    }

    /// Reads shard `i`'s part.
    pub fn read(&self, i: usize, ext: &str) -> Result<Vec<u8>> {
        let p = self.part(i, ext);
        std::fs::read(&p).map_err(|source| Error::Io { path: p, source })
    }

    /// Removes the folder once the merged output is written.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir,
            source,
        })
    }

    fn fingerprint(&self) -> String {
        let json = serde_json::to_string(&self.manifest).unwrap_or_default();
        crate::output::fingerprint(json.as_bytes())
    }
}

/// How two manifests differ, in words.
fn difference(saved: &Manifest, new: &Manifest) -> String {
    if saved.count != new.count {
        format!("{} shards, not {}", saved.count, new.count)
    } else if saved.build != new.build {
        format!("built by sda {}", saved.build)
    } else {
        format!("command line `{}`", saved.args.join(" "))
    }
}

/// Runs `f` while holding an exclusive lock on the file `lock` (made, with its folder, if
/// missing), so that of several processes (shards on the nodes of one file system) one at a
/// time runs it. Where the platform has no file locks, `f` runs unlocked.
pub fn locked<T, E: From<Error>>(lock: &Path, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let io = |source| Error::Io {
        path: lock.to_path_buf(),
        source,
    };
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .map_err(io)?;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; released when `file` closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io(std::io::Error::last_os_error()).into());
        }
    }
    let out = f();
    drop(file);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(Shard::parse("2/8").unwrap(), Shard { index: 2, count: 8 });
        for (spec, why) in [
            ("3/2", "below N"),
            ("0/0", "at least 1"),
            ("2", "expected I/N"),
            ("a/4", "whole number"),
        ] {
            let e = Shard::parse(spec).unwrap_err().to_string();
            assert!(
                e.contains(&format!("--shard {spec}")) && e.contains(why),
                "{e}"
            );
        }
    }

    #[test]
    fn slurm_variables_give_the_shard_and_their_absence_is_an_error() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]))
        .unwrap();
        assert_eq!(s, Shard { index: 4, count: 8 });
        let e = Shard::from_env(env(&[])).unwrap_err().to_string();
        assert!(e.contains("not inside a Slurm job array"), "{e}");
        let e = Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("array task 9"), "{e}");
    }

    #[test]
    fn ranges_cover_every_item_once_in_order() {
        for items in [0, 1, 7, 8, 9, 64, 1000] {
            for count in [1, 2, 3, 8, 13] {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(items);
                    assert_eq!(r.start, next, "items {items} count {count}");
                    assert!(r.len() == items / count || r.len() == items / count + 1);
                    next = r.end;
                }
                assert_eq!(next, items);
            }
        }
    }

    #[test]
    fn parts_of_another_run_are_refused_and_missing_ones_named() {
        let d = std::env::temp_dir().join(format!("sda-shard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let out = d.join("x.npy");
        let manifest = Manifest {
            args: vec!["sample".into(), "--seed".into(), "1".into()],
            count: 3,
            build: build_id(),
            cwd: "/".into(),
        };
        let s = Shards::open(&out, manifest.clone()).unwrap();
        s.finish(Shard { index: 0, count: 3 }, "bin", b"zero", 0.1)
            .unwrap();
        s.finish(Shard { index: 2, count: 3 }, "bin", b"two", 0.1)
            .unwrap();
        let e = Shards::complete(&out).err().unwrap().to_string();
        assert!(e.contains("shard(s) 1 of 3 missing"), "{e}");
        let other = Manifest {
            args: vec!["sample".into(), "--seed".into(), "2".into()],
            ..manifest.clone()
        };
        let e = Shards::open(&out, other).err().unwrap().to_string();
        assert!(
            e.contains("parts of another run") && e.contains("--seed 1"),
            "{e}"
        );
        s.finish(Shard { index: 1, count: 3 }, "bin", b"one", 0.1)
            .unwrap();
        let all = Shards::complete(&Shards::folder(&out)).unwrap();
        let parts: Vec<Vec<u8>> = (0..3).map(|i| all.read(i, "bin").unwrap()).collect();
        assert_eq!(parts, [b"zero".to_vec(), b"one".to_vec(), b"two".to_vec()]);
        // A record of another run in a part's place is named.
        std::fs::write(
            all.part(1, "json"),
            serde_json::to_string(&Done {
                shard: Shard { index: 1, count: 3 },
                manifest: "0000".into(),
                host: "h".into(),
                seconds: 0.0,
            })
            .unwrap(),
        )
        .unwrap();
        let e = Shards::complete(&out).err().unwrap().to_string();
        assert!(
            e.contains("part-0001-of-0003.json is from another run"),
            "{e}"
        );
        assert_eq!(Shards::output_of(&Shards::folder(&out)), out);
        let _ = std::fs::remove_dir_all(&d);
    }
}
