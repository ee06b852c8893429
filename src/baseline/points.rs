//! Observations as single measured values: `(time, index, value, std)`, the form that the
//! statistical baselines and `sda evaluate --unobserved` need. A table of observations is one
//! already; an operator is one when each observed value is a value of the state (`stride`,
//! `last`, `at`, `select`, `crop`, `space-stride`, `mask` and `points` terms): which value each
//! one reads comes from applying the operator's own per-state map to the states' flat indices.

use burn::prelude::*;

use crate::assimilate::Observed;
use crate::data::features;
use crate::error::{Error, Result};
use crate::nn::{tensor, to_vec};
use crate::score::operator::{Operator, Term};

/// One measured value of the trajectory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// The state's index in the trajectory.
    pub time: usize,
    /// The flat index of the value within the state.
    pub index: usize,
    /// The measurement (physical units).
    pub value: f64,
    /// Its noise std.
    pub std: f64,
}

/// `(time, flat index)` of every observed value of `operator` on `length` states of `shape`, in
/// the order of `y`; an error for an operator that mixes or transforms values (`coarsen`,
/// `vorticity`, `linear`, `saturate`, `arctan`), whose observations are not values of the state.
pub fn observed_values(
    operator: &Operator,
    length: usize,
    shape: &[usize],
) -> Result<Vec<(usize, usize)>> {
    if let Some(t) = operator.terms().iter().find(|t| !t.is_direct()) {
        return Err(Error::Operator {
            spec: operator.spec().into(),
            reason: match t {
                Term::Table(_) | Term::Weighted(_) => "a row observes a place between grid \
                    cells (a bilinear sum of values), not one value: the statistical baselines \
                    and --unobserved take rows by index or station"
                    .to_string(),
                _ => format!(
                    "observes a transform of the state ({t:?}), not its values: the statistical \
                     baselines and --unobserved take tables and operators made of stride, last, at, \
                     select, crop, space-stride, mask and points terms"
                ),
            },
        });
    }
    if let Some(e) = operator.table() {
        operator.times(length)?;
        return Ok(e.rows.iter().map(|r| (r.time, r.terms[0].0)).collect());
    }
    let f = features(shape);
    if f >= 1 << 24 {
        return Err(Error::config(
            "--operator",
            format!("states of {f} values are too large to index"),
        ));
    }
    let device = Device::flex();
    let ids: Vec<f32> = (0..f).map(|i| i as f32).collect();
    let picked = to_vec(operator.apply_states(tensor(ids, [1, f], &device), shape));
    let per: Vec<usize> = picked.iter().map(|&v| v as usize).collect();
    let mut out = Vec::new();
    for (t, range, _) in operator.observed_states(length, shape)? {
        debug_assert_eq!(range.len(), per.len());
        out.extend(per.iter().map(|&i| (t, i)));
    }
    Ok(out)
}

/// The measurements of `observed` on `length` states of `shape`, in the order of `y`.
pub fn points(observed: &Observed, length: usize, shape: &[usize]) -> Result<Vec<Point>> {
    let at = observed_values(&observed.operator, length, shape)?;
    Ok(at
        .iter()
        .zip(&observed.y.data)
        .zip(&observed.noise)
        .map(|((&(time, index), &v), &s)| Point {
            time,
            index,
            value: v as f64,
            std: s as f64,
        })
        .collect())
}

/// Which values of a trajectory of `length` states of `shape` were observed: `true` at the
/// flat position `t · F + i` of every observed value.
pub fn observed_mask(operator: &Operator, length: usize, shape: &[usize]) -> Result<Vec<bool>> {
    let f = features(shape);
    let mut seen = vec![false; length * f];
    for (t, i) in observed_values(operator, length, shape)? {
        seen[t * f + i] = true;
    }
    Ok(seen)
}
