//! Systems whose trajectories were imported rather than simulated (`sda import`): the data is
//! all there is, so there is no prior to draw from and no transition density.

use serde::{Deserialize, Serialize};

/// An imported system: its state shape and where its trajectories came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct External {
    /// The shape of one state: `[D]` for vectors, `[C, H, W]` for fields.
    pub state_shape: Vec<usize>,
    /// Constant context channels of field data (`context.npy` in the data folder, shape
    /// `(Cc, H, W)`), given to the network beside the states; 0 when there are none.
    #[serde(default)]
    pub context_channels: usize,
    /// Where the trajectories came from and how they were split.
    pub provenance: Provenance,
    /// The record the trajectories were cut from (`sda import --netcdf`): its time axis,
    /// coordinates, periods and windows; absent for trajectories imported as such.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<crate::record_info::RecordInfo>,
    /// How a vector state is laid out in space (`sda import --layout`).
    #[serde(default, skip_serializing_if = "super::Layout::is_vector")]
    pub layout: super::Layout,
}

/// The record of an import: the sources and the split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Every input, in the order train, valid, test, context (those given).
    pub sources: Vec<Source>,
    /// The fractions `(train, valid, test)` by which the trajectories of one source were split
    /// (after a seeded shuffle), or `None` when the splits were given.
    pub split: Option<[f64; 3]>,
    /// The seed of the shuffle.
    pub seed: u64,
    /// Trajectories in `(train, valid, test)`.
    pub trajectories: [usize; 3],
}

/// One input array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// What it was used for: `train`, `valid`, `test` or `context`.
    pub role: String,
    /// Where it came from: a file (absolute path) or a description (`numpy array`).
    pub origin: String,
    /// Its dtype as read (`float32`, `float64`).
    pub dtype: String,
    /// Its shape as read.
    pub shape: Vec<usize>,
    /// FNV-1a (64-bit) of its values as stored (float32, little-endian), in hex: the same data
    /// gives the same checksum.
    pub checksum: String,
}

/// FNV-1a, 64-bit, of the little-endian bytes of `data`.
pub fn checksum(data: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in data {
        for b in v.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
