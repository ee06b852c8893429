//! Observation maps on vector states: the selections and value-by-value terms of an operator,
//! their Jacobians and pullbacks.

use nalgebra::{DMatrix, DVector};

use crate::error::{Error, Result};
use crate::score::operator::{Operator, Term};

/// One term of an observation map on vector states.
#[derive(Clone, Debug)]
enum MapTerm {
    Select(Vec<usize>),
    Saturate,
    Arctan,
}

/// A value-by-value term at `u`: its value and derivative.
fn elementwise(t: &MapTerm, u: f64) -> (f64, f64) {
    match t {
        MapTerm::Saturate => (u / (1.0 + u.abs()), 1.0 / (1.0 + u.abs()).powi(2)),
        MapTerm::Arctan => (u.atan(), 1.0 / (1.0 + u * u)),
        MapTerm::Select(_) => unreachable!("a selection is not value by value"),
    }
}

/// The per-state part of an observation operator on vector states, in f64: the selections and
/// the value-by-value non-linear terms (`saturate`, `arctan`) of [`Operator`], and where each
/// observed value sits on the state's grid.
#[derive(Clone, Debug)]
pub struct ObsMap {
    terms: Vec<MapTerm>,
    /// The state component that each observed value derives from (for localisation).
    pub locations: Vec<usize>,
    /// Whether the map is linear (selections only).
    pub linear: bool,
}

impl ObsMap {
    /// The per-state map of `operator` on states of `dim` values.
    pub fn new(operator: &Operator, dim: usize) -> Result<Self> {
        let mut terms = Vec::new();
        let mut locations: Vec<usize> = (0..dim).collect();
        let mut linear = true;
        operator.state_shape(&[dim])?;
        for term in operator.terms() {
            match term {
                Term::Stride { .. } | Term::Last => {}
                Term::Select(idx) => {
                    locations = idx.iter().map(|&i| locations[i]).collect();
                    terms.push(MapTerm::Select(idx.clone()));
                }
                Term::Saturate => {
                    linear = false;
                    terms.push(MapTerm::Saturate);
                }
                Term::Arctan => {
                    linear = false;
                    terms.push(MapTerm::Arctan);
                }
                other => {
                    return Err(Error::Operator {
                        spec: operator.spec().into(),
                        reason: format!(
                            "classical methods take stride, last, select, saturate and arctan \
                             terms on vector states, not {other:?}"
                        ),
                    });
                }
            }
        }
        Ok(Self {
            terms,
            locations,
            linear,
        })
    }

    /// Observed values per state.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// Whether the map observes nothing.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// `h(x)` of one state.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut v = x.to_vec();
        for t in &self.terms {
            v = match t {
                MapTerm::Select(idx) => idx.iter().map(|&i| v[i]).collect(),
                MapTerm::Saturate => v.iter().map(|w| w / (1.0 + w.abs())).collect(),
                MapTerm::Arctan => v.iter().map(|w| w.atan()).collect(),
            };
        }
        v
    }

    /// `J_h(x)ᵀ w` for `w = cotangent(h(x))` (one value per observed value): the gradient of
    /// `wᵀ h` at `x`, exact, for one state. For a Gaussian likelihood
    /// `cotangent(v) = R⁻¹ (y − v)` gives `∇ₓ log p(y | x)`.
    pub fn pullback(&self, x: &[f64], cotangent: impl FnOnce(&[f64]) -> Vec<f64>) -> Vec<f64> {
        if self.terms.iter().all(|t| !matches!(t, MapTerm::Select(_))) {
            // Value by value: the chain rule is a product of scalar derivatives.
            let mut v = x.to_vec();
            let mut der = vec![1.0; x.len()];
            for t in &self.terms {
                for (u, g) in v.iter_mut().zip(der.iter_mut()) {
                    let (f, df) = elementwise(t, *u);
                    *g *= df;
                    *u = f;
                }
            }
            let w = cotangent(&v);
            return w.iter().zip(&der).map(|(w, g)| w * g).collect();
        }
        // Forward, keeping each term's input; then the cotangent back through the terms.
        let mut inputs: Vec<Vec<f64>> = Vec::with_capacity(self.terms.len());
        let mut v = x.to_vec();
        for t in &self.terms {
            let next = match t {
                MapTerm::Select(idx) => idx.iter().map(|&i| v[i]).collect(),
                other => v.iter().map(|&u| elementwise(other, u).0).collect(),
            };
            inputs.push(std::mem::replace(&mut v, next));
        }
        let mut g = cotangent(&v);
        for (t, input) in self.terms.iter().zip(&inputs).rev() {
            g = match t {
                MapTerm::Select(idx) => {
                    let mut back = vec![0.0; input.len()];
                    for (&i, gi) in idx.iter().zip(&g) {
                        back[i] += gi;
                    }
                    back
                }
                other => g
                    .iter()
                    .zip(input)
                    .map(|(gi, &u)| gi * elementwise(other, u).1)
                    .collect(),
            };
        }
        g
    }

    /// `h` of every column of `e` (`D × N` → `p × N`).
    pub fn apply_columns(&self, e: &DMatrix<f64>) -> DMatrix<f64> {
        // The common maps (all of the state, or one selection) without a vector per column.
        match self.terms.as_slice() {
            [] => return e.clone(),
            [MapTerm::Select(idx)] => {
                return DMatrix::from_fn(idx.len(), e.ncols(), |i, j| e[(idx[i], j)]);
            }
            _ => {}
        }
        let p = self.len();
        let mut out = DMatrix::zeros(p, e.ncols());
        for (j, col) in e.column_iter().enumerate() {
            let v = self.apply(col.as_slice());
            out.column_mut(j).copy_from_slice(&v);
        }
        out
    }

    /// The Jacobian of `h` at `x` times the columns of `x_dir` (`D × K` → `p × K`): exact for
    /// linear maps, a centred finite difference otherwise.
    pub fn jacobian_times(&self, x: &DVector<f64>, x_dir: &DMatrix<f64>) -> DMatrix<f64> {
        if self.linear {
            return self.apply_columns(x_dir);
        }
        let mut out = DMatrix::zeros(self.len(), x_dir.ncols());
        for (j, col) in x_dir.column_iter().enumerate() {
            let norm = col.norm().max(1e-300);
            let eps = 1e-6 * (1.0 + x.norm()) / norm;
            let plus = self.apply((x + col * eps).as_slice());
            let minus = self.apply((x - col * eps).as_slice());
            for i in 0..plus.len() {
                out[(i, j)] = (plus[i] - minus[i]) / (2.0 * eps);
            }
        }
        out
    }
}
