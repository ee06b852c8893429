//! Where commands write: checks made before any long computation, so that a typo in a path, a
//! full disk or an existing result is found in the first second, not after hours of training.
//!
//! - [`check_file`]: an output file can be written (its folder exists and takes files, it is
//!   not a folder, and the disk has room for what will be written when that is known);
//! - [`check_folder`]: the same for an output folder, plus the refusal to write into a folder
//!   that already holds the command's output unless the user asked to replace it (`--force`)
//!   or to continue it (`--resume`);
//! - [`remove_outputs`]: what `--force` does before writing anew: removes the listed outputs
//!   (and only those) of a folder;
//! - [`Parts`]: the completed pieces of a long computation (batches of samples), kept beside
//!   its output so that `--resume` finishes a killed run with the same result.
//!
//! Every command that writes a folder or a file calls one of these first; with its own list of
//! output names, a new command gets the same guarantees in one line.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a command does when its output folder already holds its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Refuse with a one-line message naming `--force` (and `--resume` where the command has it).
    Refuse,
    /// Replace it (`--force`).
    Replace,
    /// Continue it (`--resume`).
    Resume,
}

impl Existing {
    /// From the command's `--force` and `--resume` flags (`--resume` wins if both are given;
    /// commands declare the two as conflicting).
    pub fn from_flags(force: bool, resume: bool) -> Self {
        match (force, resume) {
            (_, true) => Existing::Resume,
            (true, false) => Existing::Replace,
            (false, false) => Existing::Refuse,
        }
    }
}

/// An output folder as a command sees it before it starts.
#[derive(Clone, Debug)]
pub struct Folder<'a> {
    /// The folder.
    pub path: &'a Path,
    /// The flag that names it (`--output`), for messages.
    pub flag: &'a str,
    /// What the folder holds when it holds this command's output ("a trained run").
    pub what: &'a str,
    /// The names (files or folders) whose presence means the folder holds that output.
    pub markers: &'a [&'a str],
    /// Whether the command has `--resume` (mentioned in the refusal).
    pub resumable: bool,
    /// Bytes the command will write, where known (checked against the free space).
    pub bytes: Option<u64>,
}

/// Checks an output folder before the computation; returns whether it already holds the
/// command's output (some marker exists).
///
/// Fails when the path is a file, when the folder (or the nearest existing folder above it,
/// where the missing ones will be made) does not take files or a file stands in the way, when
/// the disk has less room than `bytes`, and when the folder holds output and `existing` is
/// [`Existing::Refuse`].
pub fn check_folder(folder: &Folder, existing: Existing) -> Result<bool> {
    let Folder {
        path,
        flag,
        what,
        markers,
        resumable,
        bytes,
    } = *folder;
    let shown = path.display();
    if path.exists() && !path.is_dir() {
        return Err(Error::config(
            format!("{flag} {shown}"),
            "is a file, not a folder",
        ));
    }
    let found: Vec<&str> = markers
        .iter()
        .copied()
        .filter(|m| path.join(m).exists())
        .collect();
    if !found.is_empty() && existing == Existing::Refuse {
        let how = if resumable {
            "pass --resume to continue it or --force to replace it"
        } else {
            "pass --force to replace it"
        };
        return Err(Error::config(
            format!("{flag} {shown}"),
            format!("already holds {what} ({}); {how}", found.join(", ")),
        ));
    }
    let writable = if path.is_dir() {
        path.to_path_buf()
    } else {
        existing_parent(path, flag)?
    };
    check_writable(&writable, flag, path)?;
    check_space(&writable, bytes, flag, path)?;
    Ok(!found.is_empty())
}

/// Checks that `path` can be written as a file: not a folder, its folder exists or can be
/// made (no file in the way) and takes files, and (where `bytes` is known) the disk has room.
pub fn check_file(path: &Path, flag: &str, bytes: Option<u64>) -> Result<()> {
    if path.is_dir() {
        return Err(Error::config(
            format!("{flag} {}", path.display()),
            "is a folder; name a file",
        ));
    }
    let dir = existing_parent(path, flag)?;
    check_writable(&dir, flag, path)?;
    check_space(&dir, bytes, flag, path)
}

/// Removes the outputs named in `names` from `dir` (files or folders), leaving anything else
/// the user keeps there: what `--force` does before a command writes anew.
pub fn remove_outputs(dir: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        let p = dir.join(name);
        let result = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else if p.exists() {
            std::fs::remove_file(&p)
        } else {
            Ok(())
        };
        result.map_err(|source| Error::Io { path: p, source })?;
    }
    Ok(())
}

/// Bytes free for an unprivileged user on the file system holding `path` (None where unknown).
pub fn free_space(path: &Path) -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid NUL-terminated path and `s` a buffer of the right type, which
        // statvfs fills when it returns 0.
        let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it initialised `s`.
        let s = unsafe { s.assume_init() };
        // The fields' types differ between C libraries (u64 on glibc x86-64, u32 elsewhere).
        #[allow(clippy::unnecessary_cast)]
        Some(s.f_bavail as u64 * s.f_frsize as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = path;
        None
    }
}

/// The nearest existing folder above `path`, where the command will create what is missing
/// (as `mkdir -p` does): it must be a folder, not a file.
fn existing_parent(path: &Path, flag: &str) -> Result<PathBuf> {
    let mut parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    while !parent.exists() {
        parent = match parent.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
    }
    if !parent.is_dir() {
        return Err(Error::config(
            format!("{flag} {}", path.display()),
            format!("{} is a file, not a folder", parent.display()),
        ));
    }
    Ok(parent)
}

/// Creates and removes a probe file in `dir`.
fn check_writable(dir: &Path, flag: &str, path: &Path) -> Result<()> {
    let probe = dir.join(format!(".sda-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe); // best effort: it is empty
            Ok(())
        }
        Err(e) => Err(Error::config(
            format!("{flag} {}", path.display()),
            format!("cannot write in {}: {e}", dir.display()),
        )),
    }
}

fn check_space(dir: &Path, bytes: Option<u64>, flag: &str, path: &Path) -> Result<()> {
    if let (Some(need), Some(free)) = (bytes, free_space(dir))
        && free < need
    {
        return Err(Error::config(
            format!("{flag} {}", path.display()),
            format!(
                "needs about {} but only {} are free there",
                human(need),
                human(free)
            ),
        ));
    }
    Ok(())
}

/// `OUTPUT.SUFFIX` beside `output`: where a command keeps what belongs to that output (its
/// kept batches, its shards, its Slurm scripts).
pub fn beside(output: &Path, suffix: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{name}.{suffix}"))
}

/// The output that `path` is the `OUTPUT.SUFFIX` folder of, for one of `suffixes` ([`beside`]
/// undone); `path` itself where it ends in none of them.
pub fn owner(path: &Path, suffixes: &[&str]) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for suffix in suffixes {
        if let Some(stem) = name
            .strip_suffix(suffix)
            .and_then(|s| s.strip_suffix('.'))
            .filter(|s| !s.is_empty())
        {
            return path.with_file_name(stem);
        }
    }
    path.to_path_buf()
}

/// Bytes in words: `12.3 MB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

/// The completed pieces of a long computation, kept beside its output (`OUTPUT.parts/`) until
/// the output is written: a killed run resumes from them instead of starting over.
///
/// Each piece is a `.npy` written atomically, and `run.json` holds a fingerprint of everything
/// the pieces depend on (settings, model, observations), so that a resume with other settings
/// is refused rather than mixed.
pub struct Parts {
    dir: PathBuf,
}

impl Parts {
    /// The folder of pieces of `output`.
    pub fn folder(output: &Path) -> PathBuf {
        beside(output, "parts")
    }

    /// Opens the pieces of `output`: with [`Existing::Resume`], those of a killed run with the
    /// same `fingerprint`; with [`Existing::Replace`], none (the old ones are removed); with
    /// [`Existing::Refuse`], fails if a killed run left pieces.
    pub fn open(output: &Path, fingerprint: &str, existing: Existing) -> Result<Parts> {
        let dir = Self::folder(output);
        let run = dir.join("run.json");
        // run.json is written (atomically) before any piece: a folder without it, left by a
        // kill right after its creation, holds nothing.
        if run.exists() {
            let io = |source| Error::Io {
                path: dir.clone(),
                source,
            };
            match existing {
                Existing::Refuse => {
                    let done = std::fs::read_dir(&dir)
                        .map_err(io)?
                        .flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
                        .count();
                    return Err(Error::config(
                        format!("--output {}", output.display()),
                        format!(
                            "an interrupted run left {} ({done} part(s) done); pass --resume to finish it or --force to start over",
                            dir.display()
                        ),
                    ));
                }
                Existing::Replace => std::fs::remove_dir_all(&dir).map_err(io)?,
                Existing::Resume => {
                    let saved = std::fs::read_to_string(&run).unwrap_or_default();
                    if saved != fingerprint {
                        return Err(Error::config(
                            "--resume",
                            format!(
                                "{} was drawn with other settings, model or observations; pass --force to start over",
                                dir.display()
                            ),
                        ));
                    }
                }
            }
        }
        if !run.exists() {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            crate::io::write_atomic(&run, fingerprint.as_bytes())?;
        }
        Ok(Parts { dir })
    }

    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("part-{i:06}.npy"))
    }

    /// Piece `i`, if a previous run completed it.
    pub fn get(&self, i: usize) -> Result<Option<crate::io::Array>> {
        let p = self.path(i);
        p.exists().then(|| crate::io::read_npy(&p)).transpose()
    }

    /// Keeps piece `i` (atomically).
    pub fn put(&self, i: usize, piece: &crate::io::Array) -> Result<()> {
        crate::io::write_npy(&self.path(i), piece)
    }

    /// Removes the folder if it holds no piece (a run stopped before its first piece leaves
    /// nothing to resume, so nothing that would ask for `--resume` or `--force`).
    pub fn discard_if_empty(self) -> Result<()> {
        let io = |source| Error::Io {
            path: self.dir.clone(),
            source,
        };
        let pieces = std::fs::read_dir(&self.dir)
            .map_err(io)?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
            .count();
        if pieces == 0 {
            std::fs::remove_dir_all(&self.dir).map_err(io)?;
        }
        Ok(())
    }

    /// Removes the pieces once the output they make is written.
    pub fn finish(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir,
            source,
        })
    }
}

/// A 64-bit FNV-1a hash of `bytes` in hex: fingerprints of files and arrays in [`Parts`].
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sda-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn folder<'a>(path: &'a Path, bytes: Option<u64>) -> Folder<'a> {
        Folder {
            path,
            flag: "--output",
            what: "a data set",
            markers: &["system.json", "train.npy"],
            resumable: false,
            bytes,
        }
    }

    #[test]
    fn a_folder_with_output_is_refused_unless_replaced_or_resumed() {
        let d = tmp("refuse");
        let out = d.join("data");
        assert!(!check_folder(&folder(&out, None), Existing::Refuse).unwrap());
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        assert!(!check_folder(&folder(&out, None), Existing::Refuse).unwrap());
        std::fs::write(out.join("train.npy"), "x").unwrap();
        let err = check_folder(&folder(&out, None), Existing::Refuse)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already holds a data set (train.npy); pass --force"),
            "{err}"
        );
        assert!(check_folder(&folder(&out, None), Existing::Replace).unwrap());
        assert!(check_folder(&folder(&out, None), Existing::Resume).unwrap());
        remove_outputs(&out, &["system.json", "train.npy"]).unwrap();
        assert!(!out.join("train.npy").exists() && out.join("notes.txt").exists());
    }

    #[test]
    fn missing_parents_files_and_full_disks_are_refused() {
        let d = tmp("preflight");
        // Missing folders will be made; a file in the way is refused.
        assert!(!check_folder(&folder(&d.join("no/data"), None), Existing::Refuse).unwrap());
        std::fs::write(d.join("file"), "x").unwrap();
        let err = check_folder(&folder(&d.join("file/a/data"), None), Existing::Refuse)
            .unwrap_err()
            .to_string();
        assert!(err.contains("file is a file, not a folder"), "{err}");
        let err = check_folder(&folder(&d.join("file"), None), Existing::Replace)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a file"), "{err}");
        let err = check_file(&d, "--output", None).unwrap_err().to_string();
        assert!(err.contains("is a folder"), "{err}");
        check_file(&d.join("x.npy"), "--output", Some(1000)).unwrap();
        if free_space(&d).is_some() {
            let err = check_file(&d.join("x.npy"), "--output", Some(u64::MAX))
                .unwrap_err()
                .to_string();
            assert!(err.contains("are free there"), "{err}");
        }
    }
}
