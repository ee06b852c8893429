//! Which values of a data folder's trajectories were observed: the weights of the masked
//! denoising loss.
//!
//! A real record has two kinds of missing values (see [`crate::record`]). A fixed mask
//! (`mask.npy`, the state's shape, 1 where there is data) marks values that never have data,
//! such as land in an ocean field. A split's observed mask (`train-observed.npy`,
//! `valid-observed.npy`: the trajectories' shape `(N, L, *state)`, 1 where observed, written by
//! `sda import --gaps keep`) marks the gaps inside the record. The missing values themselves are
//! stored as the training mean (0 in normalised units), so that every array stays finite.
//!
//! Training counts the denoising loss on the observed values only: the loss of a batch is
//! `Σ w (ε_φ(x(t), t) − ε)² / Σ w` with `w` the product of both masks. With no mask at all the
//! weights are all 1 and the loss is the plain mean, computed as before.

use std::path::Path;

use crate::data::{SystemInfo, shape_text};
use crate::error::{Error, Result};
use crate::io::{Array, read_npy};
use crate::mcs::{External, System};

/// The file of a split's observed mask in a data folder.
pub fn observed_file(split: &str) -> String {
    format!("{split}-observed.npy")
}

/// The weights of the training and validation trajectories (1 = observed, 0 = missing), flat
/// in the trajectories' order; `None` where every value is observed.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The training trajectories' weights, `N·L·F` values.
    pub train: Vec<f32>,
    /// The validation trajectories' weights.
    pub valid: Vec<f32>,
}

impl Observed {
    /// The share of the training values that are observed.
    pub fn train_share(&self) -> f64 {
        self.train.iter().map(|&w| w as f64).sum::<f64>() / self.train.len().max(1) as f64
    }
}

/// The fixed mask's file of a data folder, when its system is a record with one.
fn mask_file(info: &SystemInfo) -> Option<&str> {
    match &info.system {
        System::External(External {
            record: Some(r), ..
        }) => r.mask.as_ref().map(|m| m.file.as_str()),
        _ => None,
    }
}

/// Reads a 0/1 array and checks its shape and values.
fn read_flags(path: &Path, shape: &[usize], what: &str) -> Result<Vec<f32>> {
    let a = read_npy(path)?;
    if a.shape != shape {
        return Err(Error::Shape {
            what: path.display().to_string(),
            expected: format!("({}) like {what}", shape_text(shape)),
            got: a.shape,
        });
    }
    if let Some(i) = a.data.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(Error::config(
            path.display().to_string(),
            format!(
                "value {} at flat position {i}: a mask holds 1 (observed) or 0 (missing) only",
                a.data[i]
            ),
        ));
    }
    Ok(a.data)
}

/// The weights of one split: its observed mask (if written) times the fixed mask (if any).
fn split_weights(
    dir: &Path,
    split: &str,
    trajectories: &Array,
    fixed: Option<&[f32]>,
) -> Result<Option<Vec<f32>>> {
    let path = dir.join(observed_file(split));
    let mut w = if path.exists() {
        Some(read_flags(&path, &trajectories.shape, "the trajectories")?)
    } else {
        None
    };
    if let Some(m) = fixed {
        let w = w.get_or_insert_with(|| vec![1.0; trajectories.data.len()]);
        for state in w.chunks_exact_mut(m.len()) {
            for (v, &k) in state.iter_mut().zip(m) {
                *v *= k;
            }
        }
    }
    Ok(w)
}

/// The weights of a data folder's training and validation splits, or `None` when it has
/// neither a fixed mask nor observed masks.
pub fn read(
    dir: &Path,
    info: &SystemInfo,
    train: &Array,
    valid: &Array,
) -> Result<Option<Observed>> {
    let fixed = match mask_file(info) {
        Some(file) => Some(read_flags(
            &dir.join(file),
            &info.state_shape,
            "the states",
        )?),
        None => None,
    };
    let tw = split_weights(dir, "train", train, fixed.as_deref())?;
    let vw = split_weights(dir, "valid", valid, fixed.as_deref())?;
    Ok(match (tw, vw) {
        (None, None) => None,
        (t, v) => Some(Observed {
            train: t.unwrap_or_else(|| vec![1.0; train.data.len()]),
            valid: v.unwrap_or_else(|| vec![1.0; valid.data.len()]),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_are_the_product_of_the_fixed_and_the_observed_masks() {
        let dir = std::env::temp_dir().join(format!("sda-observed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 1 trajectory of 2 states of 3 values; value 2 is land, state 1 misses value 0.
        let trajectories = Array::new(vec![1, 2, 3], vec![0.0; 6]);
        let observed = Array::new(vec![1, 2, 3], vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        crate::io::write_npy(&dir.join(observed_file("train")), &observed).unwrap();
        let fixed = [1.0, 1.0, 0.0];
        let w = split_weights(&dir, "train", &trajectories, Some(&fixed)).unwrap();
        assert_eq!(w, Some(vec![1.0, 1.0, 0.0, 0.0, 1.0, 0.0]));
        // No observed file: the fixed mask at every state; neither: no weights.
        let w = split_weights(&dir, "valid", &trajectories, Some(&fixed)).unwrap();
        assert_eq!(w, Some(vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0]));
        assert_eq!(
            split_weights(&dir, "valid", &trajectories, None).unwrap(),
            None
        );
        // A value other than 0 or 1 is refused, naming the file.
        let bad = Array::new(vec![1, 2, 3], vec![1.0, 0.5, 1.0, 1.0, 1.0, 1.0]);
        crate::io::write_npy(&dir.join(observed_file("train")), &bad).unwrap();
        let e = split_weights(&dir, "train", &trajectories, None).unwrap_err();
        assert!(e.to_string().contains("train-observed.npy"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
