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

use super::{SystemInfo, shape_text};
use crate::error::{Error, Result};
use crate::io::{Array, read_npy};
use crate::mcs::{External, System};
use crate::record_info::observed_file;

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

/// Checks a 0/1 array's shape and values; `name` names it in messages.
fn check_flags(a: &Array, shape: &[usize], name: &str, what: &str) -> Result<()> {
    if a.shape != shape {
        return Err(Error::Shape {
            what: name.to_string(),
            expected: format!("({}) like {what}", shape_text(shape)),
            got: a.shape.clone(),
        });
    }
    if let Some(i) = a.data.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(Error::config(
            name,
            format!(
                "value {} at flat position {i}: a mask holds 1 (observed) or 0 (missing) only",
                a.data[i]
            ),
        ));
    }
    Ok(())
}

/// The weights of one split: its observed mask (if any) times the fixed mask (if any).
fn split_weights(
    trajectories: &Array,
    observed: Option<(&Array, &str)>,
    fixed: Option<&[f32]>,
) -> Result<Option<Vec<f32>>> {
    let mut w = match observed {
        Some((a, name)) => {
            check_flags(a, &trajectories.shape, name, "the trajectories")?;
            Some(a.data.clone())
        }
        None => None,
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

/// The masks of a data set, each with the name its messages use.
#[derive(Clone, Copy, Default)]
pub struct Masks<'a> {
    /// The fixed mask, of the state's shape (`mask.npy`).
    pub fixed: Option<(&'a Array, &'a str)>,
    /// The training split's observed mask (`train-observed.npy`).
    pub train: Option<(&'a Array, &'a str)>,
    /// The validation split's observed mask (`valid-observed.npy`).
    pub valid: Option<(&'a Array, &'a str)>,
}

/// The weights of the training and validation trajectories given their masks, or `None`
/// when there is no mask at all.
///
/// # Errors
/// A mask of the wrong shape or with values other than 0 and 1, named.
pub fn weights(
    state_shape: &[usize],
    train: &Array,
    valid: &Array,
    masks: Masks,
) -> Result<Option<Observed>> {
    let fixed = match masks.fixed {
        Some((a, name)) => {
            check_flags(a, state_shape, name, "the states")?;
            Some(a.data.as_slice())
        }
        None => None,
    };
    let tw = split_weights(train, masks.train, fixed)?;
    let vw = split_weights(valid, masks.valid, fixed)?;
    Ok(match (tw, vw) {
        (None, None) => None,
        (t, v) => Some(Observed {
            train: t.unwrap_or_else(|| vec![1.0; train.data.len()]),
            valid: v.unwrap_or_else(|| vec![1.0; valid.data.len()]),
        }),
    })
}

/// A named mask as [`Masks`] holds it.
fn pair(o: &Option<(Array, String)>) -> Option<(&Array, &str)> {
    o.as_ref().map(|(a, n)| (a, n.as_str()))
}

/// Reads a data folder's masks, when it has them.
fn read_if(path: &Path) -> Result<Option<(Array, String)>> {
    if path.exists() {
        Ok(Some((read_npy(path)?, path.display().to_string())))
    } else {
        Ok(None)
    }
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
        Some(file) => {
            let path = dir.join(file);
            Some((read_npy(&path)?, path.display().to_string()))
        }
        None => None,
    };
    let t = read_if(&dir.join(observed_file("train")))?;
    let v = read_if(&dir.join(observed_file("valid")))?;
    weights(
        &info.state_shape,
        train,
        valid,
        Masks {
            fixed: pair(&fixed),
            train: pair(&t),
            valid: pair(&v),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_are_the_product_of_the_fixed_and_the_observed_masks() {
        // 1 trajectory of 2 states of 3 values; value 2 is land, state 1 misses value 0.
        let trajectories = Array::new(vec![1, 2, 3], vec![0.0; 6]);
        let observed = Array::new(vec![1, 2, 3], vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        let fixed = [1.0, 1.0, 0.0];
        let w = split_weights(&trajectories, Some((&observed, "o")), Some(&fixed)).unwrap();
        assert_eq!(w, Some(vec![1.0, 1.0, 0.0, 0.0, 1.0, 0.0]));
        // No observed mask: the fixed mask at every state; neither: no weights.
        let w = split_weights(&trajectories, None, Some(&fixed)).unwrap();
        assert_eq!(w, Some(vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0]));
        assert_eq!(split_weights(&trajectories, None, None).unwrap(), None);
        // A value other than 0 or 1, or another shape, is refused, naming the mask.
        let bad = Array::new(vec![1, 2, 3], vec![1.0, 0.5, 1.0, 1.0, 1.0, 1.0]);
        let e = split_weights(&trajectories, Some((&bad, "x/train-observed.npy")), None);
        assert!(e.unwrap_err().to_string().contains("train-observed.npy"));
        let short = Array::new(vec![1, 1, 3], vec![1.0; 3]);
        assert!(split_weights(&trajectories, Some((&short, "s")), None).is_err());
    }

    #[test]
    fn a_folder_and_the_same_arrays_in_memory_give_the_same_weights() {
        let dir = std::env::temp_dir().join(format!("sda-observed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The linear system's states are 2 values; it has no fixed mask.
        let train = Array::new(vec![1, 2, 2], vec![0.5; 4]);
        let valid = Array::new(vec![1, 2, 2], vec![0.5; 4]);
        let splits = crate::data::Splits::from_arrays(
            System::from_name("linear").unwrap(),
            train.clone(),
            Some(valid.clone()),
            Some(valid.clone()),
        )
        .unwrap();
        let info = splits.info;
        let t = Array::new(vec![1, 2, 2], vec![1.0, 0.0, 1.0, 1.0]);
        crate::io::write_npy(&dir.join(observed_file("train")), &t).unwrap();
        let read = read(&dir, &info, &train, &valid).unwrap();
        let masks = Masks {
            train: Some((&t, "t")),
            ..Default::default()
        };
        let memory = weights(&[2], &train, &valid, masks).unwrap();
        assert_eq!(read, memory);
        assert_eq!(read.unwrap().valid, vec![1.0; 4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
