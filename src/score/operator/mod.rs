//! Observation operators as a small composable language, applied left to right in physical
//! units: `stride:8|select:0` observes every 8th state, then its component 0.
//!
//! An operator is a choice of states in time followed by a map applied to each chosen state, so
//! the same operator drives the sampler's likelihood (on whole trajectories, differentiably) and
//! a particle filter (one state at a time). Every map is differentiable.
//!
//! | term | effect |
//! |---|---|
//! | `stride:K[@O]` | states `O, O+K, O+2K, …` (O defaults to 0) |
//! | `last` | the last state only |
//! | `select:I[,J…]` | components (channels) `I, J, …` of each state |
//! | `coarsen:R` | block means of `R × R` grid cells (fields `(C, H, W)`) |
//! | `crop:I0:I1:J0:J1` | grid rows `I0..I1` (first axis) and columns `J0..J1` |
//! | `space-stride:K[@O]` | grid points `O, O+K, …` along both axes |
//! | `vorticity` | `ω = ∂u/∂y − ∂v/∂x` of `(u, v)` fields (centred, periodic, grid units) |
//! | `saturate` | `w / (1 + |w|)`, value by value |
//! | `arctan` | `atan(w)`, value by value (`stride:2@2\|arctan`: the arctangent of every value of every other state) |
//! | `mask:FILE.npy` | the grid points where the `(H, W)` array in FILE is non-zero: `(C, M)` |
//! | `at:I[,J…]` / `at:FILE.npy` | states `I, J, …` (increasing; irregular times) |
//! | `points:FILE.npy` | the listed flat indices of each state (any shape → `(M)`) |
//! | `linear:FILE.npy` | a dense `(M, F)` matrix applied to each state of `F` values → `(M)` |
//! | `table:FILE.csv` | the rows of a table of observations (alone): each a weighted sum of values of one state |
//!
//! `at`, `points`, `linear` and `table` are linear maps applied as they are in every path
//! (trajectories, per state, scales, and so a Jacobian-vector product maps a tangent by the
//! term itself, and the gradient of the likelihood, by automatic differentiation, by its
//! transpose). Scales pass through `at`, `points` and a table's rows of one value of weight 1 as
//! values do; `linear` and weighted rows map scales `s` to `sqrt(A² s²)` (the scale of `A x` for
//! independent values of scales `s`).

mod apply;
mod jvp;
mod parse;
mod readers;
mod shape;
mod states;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};

pub use readers::{Entries, Entry, Indices, Mask, Matrix, Weighted};

/// One term of an operator.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// Every `stride`-th state from `offset`.
    Stride {
        /// Step between observed states.
        stride: usize,
        /// First observed state.
        offset: usize,
    },
    /// The last state.
    Last,
    /// Components of each state, along its first axis (channels of a field).
    Select(Vec<usize>),
    /// Block means of `R × R` cells of a field.
    Coarsen(usize),
    /// Rows `i0..i1` and columns `j0..j1` of a field.
    Crop {
        /// Rows (first grid axis).
        rows: std::ops::Range<usize>,
        /// Columns (second grid axis).
        cols: std::ops::Range<usize>,
    },
    /// Every `stride`-th grid point from `offset`, along both grid axes.
    SpaceStride {
        /// Step between observed grid points.
        stride: usize,
        /// First observed grid point.
        offset: usize,
    },
    /// Vorticity of a `(u, v)` field: `(2, H, W)` → `(1, H, W)`.
    Vorticity,
    /// `w / (1 + |w|)`.
    Saturate,
    /// `atan(w)`, value by value.
    Arctan,
    /// The grid points of a mask: `(C, H, W)` → `(C, M)`.
    Mask(Mask),
    /// The listed states, increasing (irregular times).
    At(Vec<usize>),
    /// The listed flat indices of each state: any shape → `(M)`.
    Points(Indices),
    /// A dense `(M, F)` matrix applied to each state of `F` values: → `(M)`.
    Linear(Matrix),
    /// The rows of a table of observations, each time its own set: a whole trajectory →
    /// `(M)`, one value per row of the table.
    Table(Entries),
    /// Weighted sums of the values of each state (the rows of one time of a table): any
    /// shape → `(M)`.
    Weighted(Weighted),
}

/// One observed state for filters (see [`Operator::observed_states`]): its index in the
/// trajectory, the range of `y`'s flat values it explains, and its own per-state operator
/// (`None`: the whole operator's per-state map).
pub type ObservedState = (usize, std::ops::Range<usize>, Option<Operator>);

/// An operator that the sampler, the filter and `sda observe` share.
#[derive(Clone, Debug, PartialEq)]
pub struct Operator {
    spec: String,
    terms: Vec<Term>,
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec)
    }
}

impl std::str::FromStr for Operator {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        Operator::parse(spec)
    }
}

impl Operator {
    /// The operator of a table of observations (already read): its rows.
    pub fn from_table(table: &crate::score::table::Table) -> Self {
        Self {
            spec: format!("table:{}", table.path),
            terms: vec![Term::Table(Entries::of(table))],
        }
    }

    /// The table term, if this operator is one.
    pub fn table(&self) -> Option<&Entries> {
        match self.terms.first() {
            Some(Term::Table(e)) => Some(e),
            _ => None,
        }
    }

    /// The terms, in order.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The specification text.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    fn err(&self, reason: String) -> Error {
        Error::Operator {
            spec: self.spec.clone(),
            reason,
        }
    }
}

impl Operator {
    /// Whether every observed value is one value of the state, as it is (tables by index or
    /// station, `stride`, `at`, `last`, `select`, `crop`, `space-stride`, `mask`, `points`):
    /// what a transform of the state's variables composes with, value by value, and what the
    /// statistical baselines take. `coarsen`, `linear`, `vorticity`, `saturate`, `arctan` and
    /// table rows at places between grid cells (bilinear weights) mix or map the values.
    pub fn is_direct(&self) -> bool {
        self.terms.iter().all(Term::is_direct)
    }
}

/// Whether every row is one value of weight 1.
fn single(rows: impl IntoIterator<Item = impl AsRef<[(usize, f32)]>>) -> bool {
    rows.into_iter()
        .all(|r| matches!(r.as_ref(), [(_, w)] if *w == 1.0))
}

impl Term {
    /// Whether every value this term observes is one value of the state, as it is (see
    /// [`Operator::is_direct`]).
    pub fn is_direct(&self) -> bool {
        match self {
            Term::Stride { .. }
            | Term::Last
            | Term::At(_)
            | Term::Select(_)
            | Term::Crop { .. }
            | Term::SpaceStride { .. }
            | Term::Mask(_)
            | Term::Points(_) => true,
            Term::Table(e) => single(e.rows.iter().map(|r| &r.terms)),
            Term::Weighted(w) => single(&w.rows),
            Term::Coarsen(_)
            | Term::Vorticity
            | Term::Saturate
            | Term::Arctan
            | Term::Linear(_) => false,
        }
    }

    /// Whether the term is a linear map of the states, so that its Jacobian-vector product is
    /// the term applied to the tangent. Every term but `saturate` and `arctan` is.
    pub fn is_linear(&self) -> bool {
        !matches!(self, Term::Saturate | Term::Arctan)
    }
}
