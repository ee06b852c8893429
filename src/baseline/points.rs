//! Observations as single measured values: `(time, index, value, std)`, the form that the
//! statistical baselines and `sda evaluate --unobserved` need. A table of observations is one
//! already; an operator is one when each observed value is a value of the state (`stride`,
//! `last`, `at`, `select`, `crop`, `space-stride`, `mask` and `points` terms): which value each
//! one reads comes from applying the operator's own per-state map to the states' flat indices.

use burn::prelude::*;

use crate::assimilate::Observed;
use crate::data::{features, shape_text};
use crate::error::{Error, Result};
use crate::io::Array;
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

/// Which values of a trajectory `(L, *state)` a score counts, each rule naming itself for its
/// messages (a flag, a keyword): the values a data folder's fixed mask keeps (a state's shape,
/// non-zero above 0.5), those a given mask keeps (a state's or the trajectory's shape, non-zero),
/// and, with an operator, those it did not observe. `None` when no rule is given; an error when
/// a mask has another shape or no value is left. Returns the values kept (flat `t · F + i`) and a
/// line saying which they are.
pub fn scored_values(
    trajectory: &[usize],
    fixed: Option<(&Array, &str)>,
    mask: Option<(&Array, &str)>,
    unobserved: Option<(&Operator, &str)>,
) -> Result<Option<(Vec<bool>, String)>> {
    let (l, state) = (trajectory[0], &trajectory[1..]);
    let f: usize = state.iter().product();
    let mut keep = vec![true; l * f];
    let mut what = Vec::new();
    let and_state = |keep: &mut Vec<bool>, per_state: &[bool]| {
        for (i, k) in keep.iter_mut().enumerate() {
            *k &= per_state[i % f];
        }
    };
    if let Some((m, name)) = fixed {
        if m.shape != state {
            return Err(Error::config(
                name,
                format!(
                    "its mask is of shape ({}), the samples' states ({})",
                    shape_text(&m.shape),
                    shape_text(state)
                ),
            ));
        }
        let flags: Vec<bool> = m.data.iter().map(|&v| v > 0.5).collect();
        what.push(format!(
            "the {} of {f} values of a state the data folder's mask keeps",
            flags.iter().filter(|&&k| k).count()
        ));
        and_state(&mut keep, &flags);
    }
    if let Some((m, name)) = mask {
        let flags: Vec<bool> = m.data.iter().map(|&v| v != 0.0).collect();
        if m.shape == state {
            and_state(&mut keep, &flags);
        } else if m.shape == trajectory {
            keep.iter_mut().zip(&flags).for_each(|(k, &m)| *k &= m);
        } else {
            return Err(Error::config(
                name,
                format!(
                    "of shape ({}), not a state's ({}) or a trajectory's ({})",
                    shape_text(&m.shape),
                    shape_text(state),
                    shape_text(trajectory)
                ),
            ));
        }
        what.push(format!("those {name} keeps"));
    }
    if let Some((operator, name)) = unobserved {
        let seen = observed_mask(operator, l, state)?;
        keep.iter_mut().zip(&seen).for_each(|(k, &s)| *k &= !s);
        what.push(format!("those not observed ({name})"));
    }
    if what.is_empty() {
        return Ok(None);
    }
    let n = keep.iter().filter(|&&k| k).count();
    if n == 0 {
        let names: Vec<&str> = [
            unobserved.map(|u| u.1),
            mask.map(|m| m.1),
            fixed.map(|f| f.1),
        ]
        .into_iter()
        .flatten()
        .collect();
        return Err(Error::config(
            names.join(", "),
            "no value of the trajectory is left to score",
        ));
    }
    let line = format!(
        "scored at {n} of {} values of the trajectory: {}",
        l * f,
        what.join(", ")
    );
    Ok(Some((keep, line)))
}
