//! The states an operator observes and the shapes it makes of them, with the checks of
//! observations against them.

use super::{Operator, Term};
use crate::error::{Error, Result};

impl Operator {
    /// The indices of the observed states of a trajectory of `length` states, in order.
    pub fn times(&self, length: usize) -> Result<Vec<usize>> {
        let mut idx: Vec<usize> = (0..length).collect();
        for term in &self.terms {
            idx = match term {
                Term::Stride { stride, offset } => {
                    idx.into_iter().skip(*offset).step_by(*stride).collect()
                }
                Term::Last => idx.last().map(|&i| vec![i]).unwrap_or_default(),
                Term::At(at) => {
                    if let Some(&bad) = at.iter().find(|&&i| i >= idx.len()) {
                        return Err(self.err(format!(
                            "state {bad} lies outside the {} states it chooses from (of a \
                             {length}-state trajectory)",
                            idx.len()
                        )));
                    }
                    at.iter().map(|&i| idx[i]).collect()
                }
                Term::Table(e) => {
                    if let Some(r) = e.rows.iter().find(|p| p.time >= length) {
                        return Err(Error::config(
                            &e.path,
                            format!(
                                "line {}: time {} lies outside a trajectory of {length} states \
                                 (0..{})",
                                r.line,
                                r.time,
                                length.saturating_sub(1)
                            ),
                        ));
                    }
                    e.times()
                }
                _ => idx,
            };
        }
        if idx.is_empty() {
            return Err(self.err(format!("observes no state of a {length}-state trajectory")));
        }
        Ok(idx)
    }

    /// The shape of one observed state, given the shape of a state; checks that every term
    /// fits the shape it receives.
    pub fn state_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        self.terms
            .iter()
            .try_fold(shape.to_vec(), |shape, term| self.term_shape(term, shape))
    }

    /// The shape one term makes of the states it receives, or why it cannot take them.
    pub(super) fn term_shape(&self, term: &Term, shape: Vec<usize>) -> Result<Vec<usize>> {
        match term {
            Term::Stride { .. } | Term::Last | Term::At(_) | Term::Saturate | Term::Arctan => {
                Ok(shape)
            }
            Term::Points(_) | Term::Linear(_) | Term::Table(_) | Term::Weighted(_) => {
                self.values_shape(term, &shape)
            }
            Term::Select(idx) => {
                if let Some(&bad) = idx.iter().find(|&&i| i >= shape[0]) {
                    return Err(self.err(format!(
                        "component {bad} does not exist in states of shape ({})",
                        crate::data::shape_text(&shape)
                    )));
                }
                let mut s = shape;
                s[0] = idx.len();
                Ok(s)
            }
            Term::Coarsen(_)
            | Term::Crop { .. }
            | Term::SpaceStride { .. }
            | Term::Vorticity
            | Term::Mask(_) => self.field_shape(term, &shape),
        }
    }

    /// The field states `(C, H, W)` a term named `name` needs, or why `shape` is not one.
    fn field(&self, name: &str, shape: &[usize]) -> Result<[usize; 3]> {
        match *shape {
            [c, h, w] => Ok([c, h, w]),
            _ => Err(self.err(format!(
                "'{name}' needs field states (C, H, W), got states of shape ({})",
                crate::data::shape_text(shape)
            ))),
        }
    }

    /// [`Self::term_shape`] of the terms that take a state as its flat values (`points`,
    /// `linear`, a table, weighted rows): `(M)`.
    fn values_shape(&self, term: &Term, shape: &[usize]) -> Result<Vec<usize>> {
        Ok(match term {
            Term::Points(p) => {
                let f: usize = shape.iter().product();
                if let Some(&bad) = p.indices.iter().find(|&&i| i >= f) {
                    return Err(self.err(format!(
                        "index {bad} of {} lies outside states of {f} values (shape ({}))",
                        p.path,
                        crate::data::shape_text(shape)
                    )));
                }
                vec![p.indices.len()]
            }
            Term::Linear(a) => {
                let f: usize = shape.iter().product();
                if a.cols != f {
                    return Err(self.err(format!(
                        "{} is {} × {}: its width {} is not the state's size {f} (shape ({}))",
                        a.path,
                        a.rows,
                        a.cols,
                        a.cols,
                        crate::data::shape_text(shape)
                    )));
                }
                vec![a.rows]
            }
            Term::Table(e) => {
                let f: usize = shape.iter().product();
                for r in &e.rows {
                    if let Some(&(i, _)) = r.terms.iter().find(|t| t.0 >= f) {
                        return Err(Error::config(
                            &e.path,
                            format!(
                                "line {}: index {i} lies outside a state of {f} values (0..{})",
                                r.line,
                                f - 1
                            ),
                        ));
                    }
                }
                vec![e.rows.len()]
            }
            Term::Weighted(wr) => {
                let f: usize = shape.iter().product();
                if let Some(&(i, _)) = wr.rows.iter().flatten().find(|t| t.0 >= f) {
                    return Err(self.err(format!(
                        "index {i} of {} lies outside states of {f} values",
                        wr.path
                    )));
                }
                vec![wr.rows.len()]
            }
            other => unreachable!("{other:?} does not take a state as its values"),
        })
    }

    /// [`Self::term_shape`] of the terms on fields `(C, H, W)`: `coarsen`, `crop`,
    /// `space-stride`, `vorticity`, `mask`.
    fn field_shape(&self, term: &Term, shape: &[usize]) -> Result<Vec<usize>> {
        Ok(match term {
            Term::Coarsen(r) => {
                let [c, h, w] = self.field("coarsen", shape)?;
                if h % r != 0 || w % r != 0 {
                    return Err(self.err(format!(
                        "a {h} × {w} grid does not divide into {r} × {r} blocks"
                    )));
                }
                vec![c, h / r, w / r]
            }
            Term::Crop { rows, cols } => {
                let [c, h, w] = self.field("crop", shape)?;
                if rows.end > h || cols.end > w {
                    return Err(self.err(format!(
                        "crop {}:{}:{}:{} lies outside the {h} × {w} grid",
                        rows.start, rows.end, cols.start, cols.end
                    )));
                }
                vec![c, rows.len(), cols.len()]
            }
            Term::SpaceStride { stride, offset } => {
                let [c, h, w] = self.field("space-stride", shape)?;
                if *offset >= h.min(w) {
                    return Err(
                        self.err(format!("offset {offset} lies outside the {h} × {w} grid"))
                    );
                }
                vec![
                    c,
                    (h - offset).div_ceil(*stride),
                    (w - offset).div_ceil(*stride),
                ]
            }
            Term::Vorticity => {
                let [c, h, w] = self.field("vorticity", shape)?;
                if c != 2 {
                    return Err(self.err(format!(
                        "vorticity needs (u, v) fields of 2 channels, got {c}"
                    )));
                }
                vec![1, h, w]
            }
            Term::Mask(mask) => {
                let [c, h, w] = self.field("mask", shape)?;
                if mask.shape != [h, w] {
                    return Err(self.err(format!(
                        "mask {} is {} × {} but the fields there are {h} × {w}",
                        mask.path, mask.shape[0], mask.shape[1]
                    )));
                }
                vec![c, mask.points.len()]
            }
            other => unreachable!("{other:?} is not a term on fields"),
        })
    }

    /// The shape of `y` for a trajectory of `length` states of shape `shape`:
    /// `(observed states, *observed state shape)`.
    pub fn output_shape(&self, length: usize, shape: &[usize]) -> Result<Vec<usize>> {
        if self.table().is_some() {
            // One value per row of the table.
            self.times(length)?;
            return self.state_shape(shape);
        }
        let mut out = vec![self.times(length)?.len()];
        out.extend(self.state_shape(shape)?);
        Ok(out)
    }

    /// Checks observations `y` (named `what` in errors, with one noise std per value) against
    /// this operator on `length` states of `state_shape`: `y`'s shape, finite values, and
    /// positive, finite stds.
    pub fn check_observations(
        &self,
        y: &crate::io::Array,
        noise: &[f32],
        length: usize,
        state_shape: &[usize],
        what: &str,
    ) -> Result<()> {
        let expected = self.output_shape(length, state_shape)?;
        if y.shape != expected {
            return Err(Error::Shape {
                what: what.into(),
                expected: format!(
                    "({}) for operator '{}' on {length} states of shape ({})",
                    crate::data::shape_text(&expected),
                    self,
                    crate::data::shape_text(state_shape)
                ),
                got: y.shape.clone(),
            });
        }
        y.check_finite(what)?;
        if noise.len() != y.data.len() {
            return Err(Error::config(
                "--noise",
                format!(
                    "needs one std per observed value ({}), got {}",
                    y.data.len(),
                    noise.len()
                ),
            ));
        }
        if let Some(v) = noise.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(Error::config(
                "--noise",
                format!("standard deviations must be positive and finite (found {v})"),
            ));
        }
        Ok(())
    }
}
