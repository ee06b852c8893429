//! The run folder's files: which belong to a run, the checkpoint that names the files of the
//! last complete one, and writing and reading them.

use std::path::{Path, PathBuf};

use burn::optim::AdamWConfig;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{Deserialize, Serialize};

use super::engine::Stepper;
use super::{Engine, EpochStats, write_stats};
use crate::error::{Error, Result};
use crate::io::{Array, read_npy, temp_path, write_json, write_npy};
use crate::model::{load_weights, save_weights};
use crate::nn::cpu::Precision;

#[derive(Serialize, Deserialize)]
pub(super) struct Checkpoint {
    pub(super) epochs_done: usize,
    /// The engine that wrote it (absent: burn, before the fused trainer existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) engine: Option<Engine>,
    /// Optimisation steps taken (the fused engine's AdamW counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) steps: Option<u64>,
    /// Whether the checkpoint's files carry its epoch in their names (`checkpoint-000064.bpk`):
    /// a run killed while writing checkpoint 128 then still resumes from the complete files of
    /// checkpoint 64 that this file names (absent: untagged names, from older runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) tagged: bool,
}

impl Checkpoint {
    /// The suffix of this checkpoint's file names.
    pub(super) fn suffix(&self) -> String {
        if self.tagged {
            tag(self.epochs_done)
        } else {
            String::new()
        }
    }
}

/// The suffix of the file names of the checkpoint after `epochs` epochs.
pub(super) fn tag(epochs: usize) -> String {
    format!("-{epochs:06}")
}

/// What a training run writes in its folder: config.json and model.safetensors (the model),
/// stats.csv, and the checkpoint (checkpoint.json naming the files of the last checkpoint,
/// `checkpoint-E.*` and `optimizer-E.*`).
pub fn is_run_file(name: &str) -> bool {
    matches!(
        name,
        "config.json"
            | "model.safetensors"
            | "stats.csv"
            | "checkpoint.json"
            | "checkpoint.bpk"
            | "optimizer.bpk"
            | "optimizer.npy"
    ) || checkpoint_file(name)
}

/// A file of a tagged checkpoint (`checkpoint-000064.bpk`, `optimizer-000064.npy`, …).
pub(super) fn checkpoint_file(name: &str) -> bool {
    (name.starts_with("checkpoint-") || name.starts_with("optimizer-") || name.starts_with("ema-"))
        && [".bpk", ".npy", ".safetensors"]
            .iter()
            .any(|e| name.ends_with(e))
}

/// Whether `name` is a write in progress of another process (`.NAME.tmpPID`,
/// [`crate::io::temp_path`], and the scratch files that the weight stores build beside such a
/// path, `.NAME.tmpPID.PID-N.tmp…`): in a run folder, one that a killed run left behind.
pub(super) fn foreign_temp(name: &str) -> bool {
    name.starts_with('.')
        && name
            .split_once(".tmp")
            .map(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or("")
            })
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| pid != std::process::id())
}

/// Removes the files of checkpoints other than the one with `suffix`, and the temporary files
/// of killed runs (best effort: a file left over costs only disk space, and the next
/// checkpoint tries again).
pub(super) fn remove_stale_checkpoints(dir: &Path, suffix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
        let stale_tagged = checkpoint_file(&name) && !stem.ends_with(suffix);
        let untagged = matches!(
            name.as_str(),
            "checkpoint.bpk" | "optimizer.bpk" | "optimizer.npy"
        );
        if stale_tagged || untagged || foreign_temp(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// burn's optimizer state in the checkpoint with file-name suffix `sfx`.
fn optim_path(dir: &Path, sfx: &str) -> PathBuf {
    dir.join(format!("optimizer{sfx}.bpk"))
}

/// The fused engine's AdamW moments in the checkpoint with file-name suffix `sfx`.
fn moments_path(dir: &Path, sfx: &str) -> PathBuf {
    dir.join(format!("optimizer{sfx}.npy"))
}

/// burn's model, with its parameter ids, in the checkpoint with file-name suffix `sfx`.
fn bpk_path(dir: &Path, sfx: &str) -> PathBuf {
    dir.join(format!("checkpoint{sfx}.bpk"))
}

/// Loads the weights and the optimizer state of `ckpt`, from the run folder `dir`, into
/// `stepper`.
pub(super) fn load(
    stepper: &mut Stepper,
    ckpt: &Checkpoint,
    dir: &Path,
    adamw: &AdamWConfig,
    precision: Precision,
) -> Result<()> {
    let sfx = ckpt.suffix();
    let (optim_path, moments_path) = (optim_path(dir, &sfx), moments_path(dir, &sfx));
    match stepper {
        Stepper::Burn { model, optim } => {
            // The burnpack checkpoint keeps parameter ids, which key the optimizer state.
            let path = bpk_path(dir, &sfx);
            let mut store = BurnpackStore::from_file(&path).auto_extension(false);
            let model = model.as_mut().expect("a model");
            model.load_from(&mut store).map_err(|e| Error::Weights {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let o = std::mem::replace(optim, adamw.init());
            *optim = o.load(&optim_path).map_err(|e| Error::Weights {
                path: optim_path.clone(),
                reason: e.to_string(),
            })?;
        }
        Stepper::Fused {
            trainer,
            template,
            ema,
            ..
        } => {
            let mut net = template.clone();
            let weights = if ckpt.tagged {
                dir.join(format!("checkpoint{sfx}.safetensors"))
            } else {
                dir.join("model.safetensors")
            };
            load_weights(&mut net, &weights)?;
            trainer.net = net.score_cpu().expect("an MLP network");
            trainer.net.set_precision(precision);
            if let Some(ema) = ema {
                load_weights(&mut net, &dir.join(format!("ema{sfx}.safetensors")))?;
                ema.net = net.score_cpu().expect("an MLP network");
            }
            let m = read_npy(&moments_path)?;
            let p = trainer.net.parameters();
            if m.shape != [2, p] {
                return Err(Error::config(
                    moments_path.display().to_string(),
                    format!(
                        "expected AdamW moments of shape [2, {p}], found {:?}",
                        m.shape
                    ),
                ));
            }
            trainer.moment1 = m.data[..p].to_vec();
            trainer.moment2 = m.data[p..].to_vec();
            trainer.steps = ckpt.steps.unwrap_or(0);
        }
    }
    Ok(())
}

/// Writes the checkpoint after `done` epochs of `stepper`, and the `stats` so far, into the run
/// folder `dir`.
///
/// A checkpoint writes its files under names tagged with its epoch, each atomically, then
/// checkpoint.json naming them (the commit), then removes the previous checkpoint's files: a
/// kill at any moment leaves checkpoint.json naming complete files.
pub(super) fn save(
    stepper: &Stepper,
    stats: &[EpochStats],
    done: usize,
    engine: Engine,
    dir: &Path,
) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let network = stepper.network();
    save_weights(&network, &dir.join("model.safetensors"))?;
    let mut ckpt = Checkpoint {
        epochs_done: done,
        engine: Some(engine),
        steps: None,
        tagged: true,
    };
    let sfx = ckpt.suffix();
    let (optim_path, moments_path) = (optim_path(dir, &sfx), moments_path(dir, &sfx));
    match stepper {
        Stepper::Burn { model, optim } => {
            let bpk = bpk_path(dir, &sfx);
            let tmp = temp_path(&bpk);
            let mut store = BurnpackStore::from_file(&tmp)
                .auto_extension(false)
                .overwrite(true);
            let model = model.as_ref().expect("a model");
            model.save_into(&mut store).map_err(|e| Error::Weights {
                path: bpk.clone(),
                reason: e.to_string(),
            })?;
            std::fs::rename(&tmp, &bpk).map_err(io)?;
            let tmp = temp_path(&optim_path);
            optim.save(&tmp).map_err(|e| Error::Weights {
                path: optim_path.clone(),
                reason: e.to_string(),
            })?;
            std::fs::rename(&tmp, &optim_path).map_err(io)?;
        }
        Stepper::Fused { trainer, ema, .. } => {
            let p = trainer.net.parameters();
            let mut m = trainer.moment1.clone();
            m.extend_from_slice(&trainer.moment2);
            write_npy(&moments_path, &Array::new(vec![2, p], m))?;
            let raw = dir.join(format!("checkpoint{sfx}.safetensors"));
            if ema.is_some() {
                save_weights(&network, &dir.join(format!("ema{sfx}.safetensors")))?;
                save_weights(&stepper.raw_network(), &raw)?;
            } else {
                save_weights(&network, &raw)?;
            }
            ckpt.steps = Some(trainer.steps);
        }
    }
    write_stats(&dir.join("stats.csv"), stats)?;
    write_json(&dir.join("checkpoint.json"), &ckpt)?;
    remove_stale_checkpoints(dir, &sfx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::foreign_temp;

    #[test]
    fn the_temporary_files_of_other_processes_are_foreign() {
        let me = std::process::id();
        let other = me.wrapping_add(1);
        assert!(foreign_temp(&format!(".model.safetensors.tmp{other}")));
        // The scratch file a weight store builds beside our temporary path, killed mid-save.
        assert!(foreign_temp(&format!(
            ".model.safetensors.tmp{other}.{other}-20.tmpAbc12.safetensors"
        )));
        assert!(!foreign_temp(&format!(".model.safetensors.tmp{me}")));
        assert!(!foreign_temp(&format!(
            ".model.safetensors.tmp{me}.{me}-3.tmp"
        )));
        assert!(!foreign_temp("model.safetensors"));
        assert!(!foreign_temp(".hidden.tmpnotes"));
    }
}
