//! What `system.json` keeps of an imported record cut into windows (see [`crate::record`]):
//! the file, its variables, axes and stations, the windows' periods and starts, the fixed mask
//! and the observed-value masks.

use serde::{Deserialize, Serialize};

use crate::axis::Axis;
use crate::geo::Station;

/// What is recorded of one imported variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariableInfo {
    /// Its name in the file.
    pub name: String,
    /// Its stored type (`float`, `short`, …).
    pub dtype: String,
    /// Its dimensions in the file.
    pub dims: Vec<String>,
    /// Its shape in the file.
    pub shape: Vec<usize>,
    /// Its `units` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    /// Its `long_name` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_name: Option<String>,
}

/// What `system.json` keeps of a record cut into windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordInfo {
    /// The file (its absolute path).
    pub file: String,
    /// Its format, in words.
    pub format: String,
    /// The variables, in the order of the state.
    pub variables: Vec<VariableInfo>,
    /// The time axis of the whole record (after `--select`).
    pub time: Axis,
    /// The other axes of the state (after `--select` and `--coarsen`).
    pub space: Vec<Axis>,
    /// What `--select` and `--coarsen` did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<String>,
    /// The stations of the one space axis (its `D` values, in order), when it is a network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stations: Option<Vec<Station>>,
    /// Steps per window.
    pub window: usize,
    /// Steps between window starts.
    pub stride: usize,
    /// The training, validation and test periods, `[start, end)` time steps.
    pub periods: [[usize; 2]; 3],
    /// The time step at which each window of `train`, `valid` and `test` starts, in the
    /// order of the arrays.
    pub starts: [Vec<usize>; 3],
    /// Windows dropped for holding missing values, per split.
    pub dropped: [usize; 3],
    /// The fixed mask, when some value is missing at every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskInfo>,
    /// The masks of observed values of each split (`--gaps keep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedInfo>,
}

/// The masks of observed values that `--gaps keep` writes beside the trajectories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedInfo {
    /// The files of `train`, `valid` and `test` (`{split}-observed.npy`: float32 of the
    /// trajectories' shape, 1 observed, 0 missing).
    pub files: [String; 3],
    /// Missing values per split (of the windows, overlaps counted as often as they occur).
    pub missing: [usize; 3],
    /// Values per split.
    pub values: [usize; 3],
}

/// The file of the observed-value mask of a split (`train-observed.npy`).
pub fn observed_file(split: &str) -> String {
    format!("{split}-observed.npy")
}

/// The fixed mask of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskInfo {
    /// Its file in the data folder (`mask.npy`: the state's shape, 1 where there is data).
    pub file: String,
    /// Values of a state that are masked.
    pub masked: usize,
    /// Values of a state.
    pub values: usize,
    /// Of the masked values, those that had data at some times (`--gaps mask`).
    #[serde(default)]
    pub gaps: usize,
    /// The masked values of a state, as runs `[start, end)` of flat indices (empty in data
    /// folders made before it was recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<[usize; 2]>,
}

impl MaskInfo {
    /// Whether flat value `j` of a state is masked, when the runs are recorded.
    pub fn masked_at(&self, j: usize) -> Option<bool> {
        if self.runs.is_empty() && self.masked > 0 {
            return None;
        }
        let k = self.runs.partition_point(|r| r[1] <= j);
        Some(self.runs.get(k).is_some_and(|r| r[0] <= j))
    }
}
