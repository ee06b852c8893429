//! Run folders: `RUN/config.json` (what the network is and what it was trained on) beside
//! `RUN/model.safetensors`. Loading is: read the config, initialise, load the weights.

mod training;

pub use training::{LrSchedule, TrainConfig};

use std::path::Path;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::data::{Normalisation, SystemInfo};
use crate::error::{Error, Result};
use crate::io::{read_json, write_atomic, write_json};
use crate::score::net::{ScoreNet, ScoreNetConfig};
use crate::score::sde::VpSde;

/// Everything `config.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The data the model was trained on.
    pub data: SystemInfo,
    /// The network.
    pub net: ScoreNetConfig,
    /// The noise schedule.
    pub sde: VpSde,
    /// The training settings.
    pub train: TrainConfig,
    /// The data folder it was trained on, as an absolute path where known (where `--gamma
    /// auto` finds validation trajectories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<std::path::PathBuf>,
}

impl RunConfig {
    /// Reads `config.json`, including those written before networks had a `backbone` (all
    /// MLPs then).
    pub fn read(path: &Path) -> Result<Self> {
        let mut value: serde_json::Value = read_json(path)?;
        if let Some(net) = value.get_mut("net").and_then(|n| n.as_object_mut()) {
            net.entry("backbone").or_insert_with(|| "mlp".into());
        }
        serde_json::from_value(value).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The normalisation of the training data.
    pub fn normalisation(&self) -> &Normalisation {
        &self.data.normalisation
    }
}

/// Writes the weights of `net` to `path` (atomically).
///
/// The file is built in memory and written through [`write_atomic`]'s temporary file, the one
/// kind that a resumed run knows to clear when a kill left it behind.
pub fn save_weights(net: &ScoreNet, path: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| Error::Weights {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut store = SafetensorsStore::from_bytes(None);
    net.save_into(&mut store).map_err(|e| err(&e))?;
    let bytes = store.get_bytes().map_err(|e| err(&e))?;
    write_atomic(path, &canonical_safetensors(&bytes).map_err(|e| err(&e))?)
}

/// A safetensors file with its JSON header's keys in sorted order (the tensors' data
/// unchanged), so that the same weights always give the same bytes: the writer's header comes
/// from hash maps, whose order changes from one map to the next.
fn canonical_safetensors(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::collections::BTreeMap;
    let bad = || "not a safetensors buffer".to_string();
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(bad)?;
    let header = bytes.get(8..8 + n).ok_or_else(bad)?;
    let sorted: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let mut text = serde_json::to_vec(&sorted).map_err(|e| e.to_string())?;
    // The data starts 8-byte aligned, as the format's writers keep it.
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    Ok(out)
}

/// Loads weights from `path` into `net`, requiring every tensor to match.
pub fn load_weights(net: &mut ScoreNet, path: &Path) -> Result<()> {
    let err = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let mut store = SafetensorsStore::from_file(path);
    let result = net
        .load_from(&mut store)
        .map_err(|e| err(format!("not a valid safetensors file ({e})")))?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(err(format!(
            "does not match config.json ({} missing, {} errors)",
            result.missing.len(),
            result.errors.len()
        )));
    }
    Ok(())
}

/// A trained model: its configuration and network.
pub struct Model {
    /// `config.json`.
    pub config: RunConfig,
    /// The network, on the device it was loaded to.
    pub net: ScoreNet,
}

impl Model {
    /// Loads `RUN/config.json` and `RUN/model.safetensors` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = RunConfig::read(&dir.join("config.json"))?;
        let mut net = config.net.init(device);
        load_weights(&mut net, &dir.join("model.safetensors"))?;
        Ok(Self { config, net })
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        write_json(&dir.join("config.json"), &self.config)?;
        save_weights(&self.net, &dir.join("model.safetensors"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::net::{Architecture, Backbone};

    #[test]
    fn the_same_weights_always_give_the_same_file_and_it_loads_back() {
        let device = Device::flex();
        let cfg = ScoreNetConfig {
            architecture: Architecture::Local,
            window: 5,
            features: 3,
            backbone: Backbone::Mlp {
                width: 16,
                depth: 2,
            },
            embedding: 8,
        };
        let net = cfg.init_seeded(&device, 3);
        let dir = std::env::temp_dir().join(format!("sda-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Several writes: the writer's header order used to change from one to the next.
        let files: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                let path = dir.join(format!("w{i}.safetensors"));
                save_weights(&net, &path).unwrap();
                std::fs::read(&path).unwrap()
            })
            .collect();
        assert!(files.iter().all(|f| f == &files[0]));
        let n = u64::from_le_bytes(files[0][..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0, "the data starts 8-byte aligned");
        let header = std::str::from_utf8(&files[0][8..8 + n]).unwrap();
        assert!(
            header.starts_with("{\"__metadata__\":{\"format\""),
            "{header}"
        );
        // Read back into a network of other weights: the same tensors as the saved one.
        let mut other = cfg.init_seeded(&device, 4);
        save_weights(&other, &dir.join("other.safetensors")).unwrap();
        assert_ne!(
            std::fs::read(dir.join("other.safetensors")).unwrap(),
            files[0]
        );
        load_weights(&mut other, &dir.join("w0.safetensors")).unwrap();
        save_weights(&other, &dir.join("back.safetensors")).unwrap();
        assert_eq!(
            std::fs::read(dir.join("back.safetensors")).unwrap(),
            files[0]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
