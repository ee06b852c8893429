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
    write_atomic(path, &bytes)
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
