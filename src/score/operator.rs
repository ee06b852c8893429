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

use burn::prelude::*;

use crate::error::{Error, Result};

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

/// Rows of weighted sums of a state's values.
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    /// The table they came from.
    pub path: String,
    /// Each row's `(flat index, weight)` terms.
    pub rows: Vec<Vec<(usize, f32)>>,
}

/// A list of non-negative integers read from a `.npy` file (or given inline).
#[derive(Clone, Debug, PartialEq)]
pub struct Indices {
    /// Where they came from.
    pub path: String,
    /// The indices.
    pub indices: Vec<usize>,
}

/// A dense matrix read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// The file.
    pub path: String,
    /// Rows M (observed values).
    pub rows: usize,
    /// Columns F (values of a state).
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// One row of a table: the state it observes, its weighted terms and its line.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The observed state's index in the trajectory.
    pub time: usize,
    /// `(flat index within the state, weight)`.
    pub terms: Vec<(usize, f32)>,
    /// Its line in the file.
    pub line: usize,
}

/// The rows of a table, sorted by time.
#[derive(Clone, Debug, PartialEq)]
pub struct Entries {
    /// The table file.
    pub path: String,
    /// The rows, by time.
    pub rows: Vec<Entry>,
}

impl Entries {
    fn times(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self.rows.iter().map(|p| p.time).collect();
        t.dedup();
        t
    }

    fn of(table: &super::table::Table) -> Self {
        Self {
            path: table.path.clone(),
            rows: table
                .rows
                .iter()
                .map(|r| Entry {
                    time: r.time,
                    terms: r.terms.clone(),
                    line: r.line,
                })
                .collect(),
        }
    }
}

/// Whether every row is one value of weight 1.
fn plain(rows: &[&[(usize, f32)]]) -> bool {
    rows.iter().all(|t| matches!(t, [(_, w)] if *w == 1.0))
}

/// `y[n, r] = Σ_k w_rk x[n, i_rk]` (scales: `sqrt(Σ_k w_rk² s[n, i_rk]²)`) of the rows
/// `rows` of weighted terms, whose flat indices into `x`'s second axis are given; padded to
/// the longest row with terms of weight 0, so that one gather and one sum do every row.
fn weighted_rows(x: Tensor<2>, rows: &[&[(usize, f32)]], scales: bool) -> Tensor<2> {
    let n = x.dims()[0];
    let device = x.device();
    let m = rows.len();
    let k = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let (mut idx, mut w) = (Vec::with_capacity(m * k), Vec::with_capacity(m * k));
    for r in rows {
        for j in 0..k {
            let (i, v) = r.get(j).copied().unwrap_or((r[0].0, 0.0));
            idx.push(i as i64);
            w.push(if scales { v * v } else { v });
        }
    }
    let picked = x.select(1, Tensor::<1, Int>::from_ints(idx.as_slice(), &device));
    if plain(rows) {
        return picked;
    }
    let w = Tensor::<2>::from_data(TensorData::new(w, [1, m * k]), &device);
    let terms = if scales {
        picked.square() * w
    } else {
        picked * w
    };
    let y = terms.reshape([n, m, k]).sum_dim(2).reshape([n, m]);
    if scales { y.sqrt() } else { y }
}

/// The integers of a `.npy` file (any shape, flattened), all non-negative and integral.
fn read_indices(spec: &str, path: &str) -> Result<Vec<usize>> {
    let a = crate::io::read_npy(std::path::Path::new(path))?;
    let err = |reason: String| Error::Operator {
        spec: spec.into(),
        reason: format!("{path}: {reason}"),
    };
    if a.data.is_empty() {
        return Err(err("holds no index".into()));
    }
    a.data
        .iter()
        .map(|&v| {
            if v >= 0.0 && v.fract() == 0.0 && v.is_finite() {
                Ok(v as usize)
            } else {
                Err(err(format!("{v} is not a non-negative integer index")))
            }
        })
        .collect()
}

impl Matrix {
    /// Reads a `(M, F)` matrix.
    pub fn read(spec: &str, path: &str) -> Result<Self> {
        let a = crate::io::read_npy(std::path::Path::new(path))?;
        match a.shape[..] {
            [m, f] if m > 0 && f > 0 => {
                a.check_finite(path)?;
                Ok(Self {
                    path: path.into(),
                    rows: m,
                    cols: f,
                    data: a.data,
                })
            }
            _ => Err(Error::Operator {
                spec: spec.into(),
                reason: format!("{path}: expected an (M, F) matrix, got shape {:?}", a.shape),
            }),
        }
    }
}

/// A boolean grid mask read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// The file it came from.
    pub path: String,
    /// Its grid shape `(H, W)`.
    pub shape: [usize; 2],
    /// Row-major indices of its non-zero points.
    pub points: Vec<usize>,
}

impl Mask {
    /// Reads a mask: any `(H, W)` array, non-zero where observed.
    pub fn read(path: &str) -> Result<Self> {
        let a = crate::io::read_npy(std::path::Path::new(path))?;
        if a.shape.len() != 2 {
            return Err(Error::Shape {
                what: path.into(),
                expected: "(H, W) for a mask".into(),
                got: a.shape,
            });
        }
        a.check_finite(path)?;
        let points: Vec<usize> = (0..a.data.len()).filter(|&i| a.data[i] != 0.0).collect();
        if points.is_empty() {
            return Err(Error::Operator {
                spec: format!("mask:{path}"),
                reason: "the mask selects no grid point".into(),
            });
        }
        Ok(Self {
            path: path.into(),
            shape: [a.shape[0], a.shape[1]],
            points,
        })
    }
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

fn number(spec: &str, text: &str) -> Result<usize> {
    text.trim().parse().map_err(|_| Error::Operator {
        spec: spec.into(),
        reason: format!("'{text}' is not a non-negative integer"),
    })
}

/// `K[@O]` with `K ≥ 1`.
fn stride_arg(spec: &str, arg: &str) -> Result<(usize, usize)> {
    let (k, o) = match arg.split_once('@') {
        Some((k, o)) => (number(spec, k)?, number(spec, o)?),
        None => (number(spec, arg)?, 0),
    };
    if k == 0 {
        return Err(Error::Operator {
            spec: spec.into(),
            reason: "stride must be at least 1".into(),
        });
    }
    Ok((k, o))
}

const KNOWN: &str = "stride:K[@O], last, select:I[,J], coarsen:R, crop:I0:I1:J0:J1, \
                     space-stride:K[@O], vorticity, saturate, arctan, mask:FILE.npy, at:I[,J]|FILE.npy, \
                     points:FILE.npy, linear:FILE.npy, table:FILE.csv";

impl Operator {
    /// Parses `term|term|…`. The empty string (or `identity`) observes everything. A
    /// `mask:FILE` term reads its file now.
    pub fn parse(spec: &str) -> Result<Self> {
        let err = |reason: String| Error::Operator {
            spec: spec.into(),
            reason,
        };
        let mut terms = Vec::new();
        for part in spec.split('|').map(str::trim) {
            if part.is_empty() || part == "identity" {
                continue;
            }
            let (name, arg) = match part.split_once(':') {
                Some((n, a)) => (n.trim(), Some(a.trim())),
                None => (part, None),
            };
            let need =
                || arg.ok_or_else(|| err(format!("'{name}' needs an argument, e.g. {name}:2")));
            let no_arg = |term: Term| match arg {
                Some(_) => Err(err(format!("'{name}' takes no argument"))),
                None => Ok(term),
            };
            let term = match name {
                "stride" => {
                    let (stride, offset) = stride_arg(spec, need()?)?;
                    Term::Stride { stride, offset }
                }
                "space-stride" => {
                    let (stride, offset) = stride_arg(spec, need()?)?;
                    Term::SpaceStride { stride, offset }
                }
                "last" => no_arg(Term::Last)?,
                "vorticity" => no_arg(Term::Vorticity)?,
                "saturate" => no_arg(Term::Saturate)?,
                "arctan" => no_arg(Term::Arctan)?,
                "select" => {
                    let idx = need()?
                        .split(',')
                        .map(|s| number(spec, s))
                        .collect::<Result<Vec<_>>>()?;
                    Term::Select(idx)
                }
                "coarsen" => match number(spec, need()?)? {
                    0 => return Err(err("coarsen factor must be at least 1".into())),
                    r => Term::Coarsen(r),
                },
                "crop" => {
                    let v = need()?
                        .split(':')
                        .map(|s| number(spec, s))
                        .collect::<Result<Vec<_>>>()?;
                    match v[..] {
                        [i0, i1, j0, j1] if i0 < i1 && j0 < j1 => Term::Crop {
                            rows: i0..i1,
                            cols: j0..j1,
                        },
                        [_, _, _, _] => {
                            return Err(err("crop needs I0 < I1 and J0 < J1".into()));
                        }
                        _ => return Err(err("crop takes four numbers: crop:I0:I1:J0:J1".into())),
                    }
                }
                "mask" => Term::Mask(Mask::read(need()?)?),
                "at" => {
                    let arg = need()?;
                    let idx = if arg.ends_with(".npy") {
                        read_indices(spec, arg)?
                    } else {
                        arg.split(',')
                            .map(|s| number(spec, s))
                            .collect::<Result<Vec<_>>>()?
                    };
                    if idx.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(err("at: states must be listed in increasing order".into()));
                    }
                    Term::At(idx)
                }
                "points" => {
                    let path = need()?;
                    Term::Points(Indices {
                        path: path.into(),
                        indices: read_indices(spec, path)?,
                    })
                }
                "linear" => Term::Linear(Matrix::read(spec, need()?)?),
                "table" => {
                    let path = need()?;
                    let t = super::table::Table::read(std::path::Path::new(path))?;
                    Term::Table(Entries {
                        path: path.into(),
                        ..Entries::of(&t)
                    })
                }
                other => {
                    return Err(err(format!("unknown term '{other}' (known: {KNOWN})")));
                }
            };
            terms.push(term);
        }
        if terms.len() > 1 && terms.iter().any(|t| matches!(t, Term::Table(_))) {
            return Err(err(
                "a table is a whole operator: it takes no other term".into()
            ));
        }
        Ok(Self {
            spec: spec.into(),
            terms,
        })
    }

    /// The operator of a table of observations (already read): its rows.
    pub fn from_table(table: &super::table::Table) -> Self {
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
    fn term_shape(&self, term: &Term, shape: Vec<usize>) -> Result<Vec<usize>> {
        let field = |name: &str, shape: &[usize]| -> Result<[usize; 3]> {
            match *shape {
                [c, h, w] => Ok([c, h, w]),
                _ => Err(self.err(format!(
                    "'{name}' needs field states (C, H, W), got states of shape ({})",
                    crate::data::shape_text(shape)
                ))),
            }
        };
        Ok(match term {
            Term::Stride { .. } | Term::Last | Term::At(_) => shape,
            Term::Points(p) => {
                let f: usize = shape.iter().product();
                if let Some(&bad) = p.indices.iter().find(|&&i| i >= f) {
                    return Err(self.err(format!(
                        "index {bad} of {} lies outside states of {f} values (shape ({}))",
                        p.path,
                        crate::data::shape_text(&shape)
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
                        crate::data::shape_text(&shape)
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
            Term::Select(idx) => {
                if let Some(&bad) = idx.iter().find(|&&i| i >= shape[0]) {
                    return Err(self.err(format!(
                        "component {bad} does not exist in states of shape ({})",
                        crate::data::shape_text(&shape)
                    )));
                }
                let mut s = shape;
                s[0] = idx.len();
                s
            }
            Term::Coarsen(r) => {
                let [c, h, w] = field("coarsen", &shape)?;
                if h % r != 0 || w % r != 0 {
                    return Err(self.err(format!(
                        "a {h} × {w} grid does not divide into {r} × {r} blocks"
                    )));
                }
                vec![c, h / r, w / r]
            }
            Term::Crop { rows, cols } => {
                let [c, h, w] = field("crop", &shape)?;
                if rows.end > h || cols.end > w {
                    return Err(self.err(format!(
                        "crop {}:{}:{}:{} lies outside the {h} × {w} grid",
                        rows.start, rows.end, cols.start, cols.end
                    )));
                }
                vec![c, rows.len(), cols.len()]
            }
            Term::SpaceStride { stride, offset } => {
                let [c, h, w] = field("space-stride", &shape)?;
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
                let [c, h, w] = field("vorticity", &shape)?;
                if c != 2 {
                    return Err(self.err(format!(
                        "vorticity needs (u, v) fields of 2 channels, got {c}"
                    )));
                }
                vec![1, h, w]
            }
            Term::Saturate | Term::Arctan => shape,
            Term::Mask(mask) => {
                let [c, h, w] = field("mask", &shape)?;
                if mask.shape != [h, w] {
                    return Err(self.err(format!(
                        "mask {} is {} × {} but the fields there are {h} × {w}",
                        mask.path, mask.shape[0], mask.shape[1]
                    )));
                }
                vec![c, mask.points.len()]
            }
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

    /// Applies the per-state map to a batch of states. The shape must have passed
    /// [`Self::state_shape`].
    ///
    /// # Shapes
    /// - x: `[N, prod(shape)]` → `[N, prod(state_shape(shape))]`
    pub fn apply_states(&self, x: Tensor<2>, shape: &[usize]) -> Tensor<2> {
        self.map_states(x, shape, false)
    }

    /// The scale of each observed value given the scale of each state value (`[N,
    /// prod(shape)]`): the map itself for selections and means; non-linear terms pass the scale
    /// of their input through (vorticity: the mean scale of `u` and `v`).
    pub fn apply_scales(&self, s: Tensor<2>, shape: &[usize]) -> Tensor<2> {
        self.map_states(s, shape, true)
    }

    fn map_states(&self, x: Tensor<2>, shape: &[usize], scales: bool) -> Tensor<2> {
        let n = x.dims()[0];
        let device = x.device();
        let ints = |v: Vec<usize>| {
            let v: Vec<i64> = v.into_iter().map(|i| i as i64).collect();
            Tensor::<1, Int>::from_ints(v.as_slice(), &device)
        };
        let mut x = x;
        let mut shape = shape.to_vec();
        for term in &self.terms {
            if matches!(
                term,
                Term::Stride { .. } | Term::Last | Term::At(_) | Term::Table(_)
            ) {
                continue;
            }
            let next = self
                .term_shape(term, shape.clone())
                .expect("operator checked against the state shape");
            let m: usize = next.iter().product();
            x = match term {
                Term::Stride { .. } | Term::Last | Term::At(_) | Term::Table(_) => {
                    unreachable!()
                }
                Term::Points(p) => x.select(1, ints(p.indices.clone())),
                Term::Weighted(wr) => {
                    let rows: Vec<&[(usize, f32)]> = wr.rows.iter().map(Vec::as_slice).collect();
                    weighted_rows(x, &rows, scales)
                }
                Term::Linear(a) => {
                    let f = a.cols;
                    let t = |v: Vec<f32>| {
                        Tensor::<2>::from_data(TensorData::new(v, [a.rows, f]), &device).transpose()
                    };
                    if scales {
                        // sqrt(Σ_j A_ij² s_j²): the scale of A x for independent values.
                        let a2 = a.data.iter().map(|v| v * v).collect();
                        x.square().matmul(t(a2)).sqrt()
                    } else {
                        x.matmul(t(a.data.clone()))
                    }
                }
                Term::Select(idx) => {
                    let inner: usize = shape[1..].iter().product();
                    x.reshape([n, shape[0], inner])
                        .select(1, ints(idx.clone()))
                        .reshape([n, m])
                }
                Term::Coarsen(r) => {
                    let r = *r;
                    let [c, h, w] = [shape[0], shape[1], shape[2]];
                    let x: Tensor<5> = x.reshape([n * c, h / r, r, w / r, r]);
                    x.mean_dim(4).mean_dim(2).reshape([n, m])
                }
                Term::Crop { rows, cols } => {
                    let [c, h, w] = [shape[0], shape[1], shape[2]];
                    x.reshape([n, c, h, w])
                        .slice([0..n, 0..c, rows.clone(), cols.clone()])
                        .reshape([n, m])
                }
                Term::SpaceStride { stride, offset } => {
                    let [c, h, w] = [shape[0], shape[1], shape[2]];
                    let pick = |k: usize| (*offset..k).step_by(*stride).collect::<Vec<_>>();
                    x.reshape([n, c, h, w])
                        .select(2, ints(pick(h)))
                        .select(3, ints(pick(w)))
                        .reshape([n, m])
                }
                Term::Vorticity => {
                    let [h, w] = [shape[1], shape[2]];
                    let f = x.reshape([n, 2, h, w]);
                    let u = f.clone().slice([0..n, 0..1, 0..h, 0..w]);
                    let v = f.slice([0..n, 1..2, 0..h, 0..w]);
                    let omega = if scales {
                        (u + v).mul_scalar(0.5)
                    } else {
                        // ω[i, j] = (u[i, j+1] − u[i, j−1]) / 2 − (v[i+1, j] − v[i−1, j]) / 2.
                        let du = roll(u.clone(), 3, -1) - roll(u, 3, 1);
                        let dv = roll(v.clone(), 2, -1) - roll(v, 2, 1);
                        (du - dv).mul_scalar(0.5)
                    };
                    omega.reshape([n, m])
                }
                Term::Saturate | Term::Arctan if scales => x,
                Term::Saturate => x.clone() / (x.abs() + 1.0),
                Term::Arctan => x.atan(),
                Term::Mask(mask) => {
                    let [c, h, w] = [shape[0], shape[1], shape[2]];
                    x.reshape([n, c, h * w])
                        .select(2, ints(mask.points.clone()))
                        .reshape([n, m])
                }
            };
            shape = next;
        }
        x
    }

    /// The per-state map and its Jacobian-vector product at `x` along `v`: `(A(x), J_A(x) v)`.
    /// The tangent goes through the terms in order with the values: a linear term maps it by
    /// applying itself, `saturate` scales it by `1 / (1 + |w|)²` and `arctan` by `1 / (1 + w²)`
    /// at its input `w`.
    ///
    /// # Shapes
    /// - x, v: `[N, prod(shape)]` → both `[N, prod(state_shape(shape))]`
    pub fn jvp_states(
        &self,
        x: Tensor<2>,
        v: Tensor<2>,
        shape: &[usize],
    ) -> (Tensor<2>, Tensor<2>) {
        let (mut x, mut v) = (x, v);
        let mut shape = shape.to_vec();
        for term in &self.terms {
            if matches!(term, Term::Stride { .. } | Term::Last) {
                continue;
            }
            let one = Operator {
                spec: self.spec.clone(),
                terms: vec![term.clone()],
            };
            v = match term {
                Term::Saturate => v / (x.clone().abs() + 1.0).square(),
                Term::Arctan => v / (x.clone().square() + 1.0),
                _ if term.is_linear() => one.map_states(v, &shape, false),
                other => unreachable!("{other:?} has no tangent map"),
            };
            x = one.map_states(x, &shape, false);
            shape = self
                .term_shape(term, shape)
                .expect("operator checked against the state shape");
        }
        (x, v)
    }

    /// [`Self::jvp_states`] over trajectories: `(A(x), J_A(x) v)` for `x, v` of shape
    /// `[B, L, prod(shape)]`.
    pub fn jvp(
        &self,
        x: Tensor<3>,
        v: Tensor<3>,
        shape: &[usize],
    ) -> Result<(Tensor<3>, Tensor<3>)> {
        // A linear operator is its own Jacobian (tables gather across times: this path too).
        if self.terms.iter().all(Term::is_linear) {
            return Ok((self.apply(x, shape)?, self.apply(v, shape)?));
        }
        let [b, l, f] = x.dims();
        let times = self.times(l)?;
        self.state_shape(shape)?;
        let lo = times.len();
        let pick = |x: Tensor<3>| {
            if lo == l {
                x
            } else {
                let ids: Vec<i64> = times.iter().map(|&i| i as i64).collect();
                let device = x.device();
                x.select(1, Tensor::<1, Int>::from_ints(ids.as_slice(), &device))
            }
        };
        let (y, jv) = self.jvp_states(
            pick(x).reshape([b * lo, f]),
            pick(v).reshape([b * lo, f]),
            shape,
        );
        let fo = y.dims()[1];
        Ok((y.reshape([b, lo, fo]), jv.reshape([b, lo, fo])))
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

    /// Applies the operator to a batch of trajectories.
    ///
    /// # Shapes
    /// - x: `[B, L, prod(shape)]` → `[B, L', prod(state_shape(shape))]`
    pub fn apply(&self, x: Tensor<3>, shape: &[usize]) -> Result<Tensor<3>> {
        self.apply_with(x, shape, false)
    }

    /// [`Self::apply_scales`] over trajectories: `[B, L, prod(shape)]` of scales.
    pub fn apply_scales_trajectories(&self, s: Tensor<3>, shape: &[usize]) -> Result<Tensor<3>> {
        self.apply_with(s, shape, true)
    }

    fn apply_with(&self, x: Tensor<3>, shape: &[usize], scales: bool) -> Result<Tensor<3>> {
        let [b, l, f] = x.dims();
        let times = self.times(l)?;
        self.state_shape(shape)?;
        let device = x.device();
        let ids: Vec<i64> = times.iter().map(|&i| i as i64).collect();
        let x = if times.len() == l {
            x
        } else {
            x.select(1, Tensor::<1, Int>::from_ints(ids.as_slice(), &device))
        };
        let lo = times.len();
        if let Some(e) = self.table() {
            // Row r of the table weighs values of the `k`-th observed state: flat indices
            // `k · F + index` of the observed states side by side.
            let rows: Vec<Vec<(usize, f32)>> = e
                .rows
                .iter()
                .map(|r| {
                    let k = times.partition_point(|&s| s < r.time);
                    r.terms.iter().map(|&(i, w)| (k * f + i, w)).collect()
                })
                .collect();
            let rows: Vec<&[(usize, f32)]> = rows.iter().map(Vec::as_slice).collect();
            let m = rows.len();
            let y = weighted_rows(x.reshape([b, lo * f]), &rows, scales);
            return Ok(y.reshape([b, 1, m]));
        }
        let y = self.map_states(x.reshape([b * lo, f]), shape, scales);
        let fo = y.dims()[1];
        Ok(y.reshape([b, lo, fo]))
    }

    /// The observed states one at a time, for filters: each state's index in the trajectory,
    /// the range of `y`'s flat values it explains, and the operator that maps that state alone
    /// to them through [`Self::apply_states`] (`None`: this operator's own per-state map; for
    /// a table, the `points` of that time).
    pub fn observed_states(&self, length: usize, shape: &[usize]) -> Result<Vec<ObservedState>> {
        let times = self.times(length)?;
        let per: usize = self.state_shape(shape)?.iter().product();
        Ok(match self.table() {
            None => times
                .iter()
                .enumerate()
                .map(|(r, &t)| (t, r * per..(r + 1) * per, None))
                .collect(),
            Some(e) => {
                let mut start = 0;
                times
                    .iter()
                    .map(|&t| {
                        let rows: Vec<Vec<(usize, f32)>> = e
                            .rows
                            .iter()
                            .filter(|r| r.time == t)
                            .map(|r| r.terms.clone())
                            .collect();
                        let range = start..start + rows.len();
                        start = range.end;
                        let slices: Vec<&[(usize, f32)]> = rows.iter().map(Vec::as_slice).collect();
                        // Rows of one value of weight 1 are points, as they always were.
                        let term = if plain(&slices) {
                            Term::Points(Indices {
                                path: e.path.clone(),
                                indices: rows.iter().map(|r| r[0].0).collect(),
                            })
                        } else {
                            Term::Weighted(Weighted {
                                path: e.path.clone(),
                                rows,
                            })
                        };
                        let op = Operator {
                            spec: format!("{} at state {t}", self.spec),
                            terms: vec![term],
                        };
                        (t, range, Some(op))
                    })
                    .collect()
            }
        })
    }
}

impl Operator {
    /// Whether every term acts on one state at a time (or chooses states in time), so that the
    /// observations of a run of states depend on those states alone: what autoregressive
    /// sampling needs to guide each window by its own observations. Every term does today; a
    /// term that couples states (a time mean, a difference between states) must answer `false`.
    pub fn acts_state_by_state(&self) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Stride { .. } | Term::Last | Term::At(_) | Term::Table(_) => true,
            Term::Select(_)
            | Term::Coarsen(_)
            | Term::Crop { .. }
            | Term::SpaceStride { .. }
            | Term::Vorticity
            | Term::Saturate
            | Term::Arctan
            | Term::Mask(_)
            | Term::Points(_)
            | Term::Weighted(_)
            | Term::Linear(_) => true,
        })
    }

    /// The observations of states `from..to` of a `length`-state trajectory, as an operator on
    /// the `len` states from `start` (`start ≤ from ≤ to ≤ start + len ≤ length`): the operator
    /// and the flat indices of `y` it explains, in order. `None` where none of those states is
    /// observed. Needs [`Self::acts_state_by_state`].
    pub fn restrict(
        &self,
        length: usize,
        shape: &[usize],
        start: usize,
        len: usize,
        states: std::ops::Range<usize>,
    ) -> Result<Option<(Operator, Vec<usize>)>> {
        if !self.acts_state_by_state() {
            return Err(
                self.err("couples states far apart: it cannot guide one window at a time".into())
            );
        }
        assert!(start <= states.start && states.end <= start + len && start + len <= length);
        let inside = |t: usize| states.contains(&t);
        let spec = format!(
            "{} on states {}..{} (window from {start})",
            self.spec, states.start, states.end
        );
        if let Some(e) = self.table() {
            let (rows, index): (Vec<_>, Vec<usize>) = e
                .rows
                .iter()
                .enumerate()
                .filter(|(_, r)| inside(r.time))
                .map(|(i, r)| {
                    let moved = Entry {
                        time: r.time - start,
                        ..r.clone()
                    };
                    (moved, i)
                })
                .unzip();
            if rows.is_empty() {
                return Ok(None);
            }
            let terms = vec![Term::Table(Entries {
                path: e.path.clone(),
                rows,
            })];
            return Ok(Some((Operator { spec, terms }, index)));
        }
        let (mut times, mut index) = (Vec::new(), Vec::new());
        for (t, range, _) in self.observed_states(length, shape)? {
            if inside(t) {
                times.push(t - start);
                index.extend(range);
            }
        }
        if times.is_empty() {
            return Ok(None);
        }
        // The states first, then every per-state term in its order (the two commute).
        let mut terms = vec![Term::At(times)];
        terms.extend(
            self.terms
                .iter()
                .filter(|t| !matches!(t, Term::Stride { .. } | Term::Last | Term::At(_)))
                .cloned(),
        );
        Ok(Some((Operator { spec, terms }, index)))
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

/// Rolls a 4-D tensor by one cell along `dim` with periodic wrap: `shift = -1` gives
/// `y[…, i, …] = x[…, i + 1, …]`, `shift = 1` gives `y[…, i, …] = x[…, i − 1, …]`.
fn roll(x: Tensor<4>, dim: usize, shift: i32) -> Tensor<4> {
    let m = x.dims()[dim];
    if shift < 0 {
        Tensor::cat(
            vec![x.clone().narrow(dim, 1, m - 1), x.narrow(dim, 0, 1)],
            dim,
        )
    } else {
        Tensor::cat(
            vec![x.clone().narrow(dim, m - 1, 1), x.narrow(dim, 0, m - 1)],
            dim,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_and_select_give_the_documented_shapes() {
        let op = Operator::parse("stride:8|select:0").unwrap();
        // 65 states: 0, 8, …, 64 → 9 observed states of 1 component.
        assert_eq!(op.output_shape(65, &[3]).unwrap(), vec![9, 1]);
        let op = Operator::parse("stride:4@2|select:0,2").unwrap();
        assert_eq!(op.times(11).unwrap(), vec![2, 6, 10]);
        assert_eq!(op.output_shape(11, &[3]).unwrap(), vec![3, 2]);
        assert_eq!(Operator::parse("last").unwrap().times(5).unwrap(), vec![4]);
    }

    #[test]
    fn bad_specs_are_named() {
        for (spec, needle) in [
            ("stride:0", "at least 1"),
            ("foo:1", "unknown term 'foo'"),
            ("select:x", "'x' is not"),
            ("stride", "needs an argument"),
        ] {
            let e = Operator::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        let e = Operator::parse("select:3")
            .unwrap()
            .state_shape(&[3])
            .unwrap_err();
        assert!(e.to_string().contains("component 3"));
    }

    #[test]
    fn apply_picks_the_right_values() {
        let device = Device::flex();
        // x[b, i, j] = 100 b + 10 i + j.
        let data: Vec<f32> = (0..2 * 5 * 3)
            .map(|n| (100 * (n / 15) + 10 * ((n / 3) % 5) + n % 3) as f32)
            .collect();
        let x = crate::score::tensor(data, [2, 5, 3], &device);
        let y = Operator::parse("stride:2@1|select:2,0")
            .unwrap()
            .apply(x, &[3])
            .unwrap();
        assert_eq!(y.dims(), [2, 2, 2]);
        let y = crate::score::to_vec(y);
        assert_eq!(y, vec![12., 10., 32., 30., 112., 110., 132., 130.]);
    }

    /// A deterministic, non-trivial `(n, c, h, w)` batch of fields, flattened per state.
    fn fields(n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
        (0..n * c * h * w)
            .map(|k| ((k as f32 * 0.37).sin() + 0.3 * (k as f32 * 1.3).cos()) * 1.7)
            .collect()
    }

    fn apply_flat(op: &Operator, x: &[f32], n: usize, shape: &[usize]) -> Vec<f32> {
        let f: usize = shape.iter().product();
        let device = Device::flex();
        to_vec(op.apply_states(crate::score::tensor(x.to_vec(), [n, f], &device), shape))
    }

    use crate::score::to_vec;

    #[test]
    fn field_terms_give_the_documented_shapes() {
        let s = [2, 16, 16];
        let shape = |spec: &str| Operator::parse(spec).unwrap().state_shape(&s).unwrap();
        assert_eq!(shape("coarsen:4"), vec![2, 4, 4]);
        assert_eq!(shape("coarsen:4|crop:1:3:0:2"), vec![2, 2, 2]);
        assert_eq!(shape("space-stride:4"), vec![2, 4, 4]);
        assert_eq!(shape("space-stride:4@1"), vec![2, 4, 4]);
        assert_eq!(shape("space-stride:5@2"), vec![2, 3, 3]);
        assert_eq!(shape("vorticity|saturate"), vec![1, 16, 16]);
        assert_eq!(shape("coarsen:2|arctan"), vec![2, 8, 8]);
        // On vector states: every other state from the second, every value through atan.
        let op = Operator::parse("stride:2@2|arctan").unwrap();
        assert_eq!(op.times(9).unwrap(), vec![2, 4, 6, 8]);
        assert_eq!(op.output_shape(9, &[40]).unwrap(), vec![4, 40]);
        assert_eq!(
            Operator::parse("select:1,3|arctan")
                .unwrap()
                .state_shape(&[40])
                .unwrap(),
            vec![2]
        );
        assert!(!Term::Arctan.is_linear());
        // The paper's scenario 3 on 64²: coarsen 4 → 16², vorticity, central 12 × 12.
        let op = Operator::parse("stride:3|coarsen:4|vorticity|saturate|crop:2:14:2:14").unwrap();
        assert_eq!(
            op.output_shape(10, &[2, 64, 64]).unwrap(),
            vec![4, 1, 12, 12]
        );
    }

    #[test]
    fn field_terms_reject_what_does_not_fit() {
        let s = [2, 16, 16];
        for (spec, shape, needle) in [
            ("coarsen:3", &s[..], "does not divide"),
            ("crop:0:17:0:4", &s[..], "outside the 16 × 16 grid"),
            ("space-stride:2@16", &s[..], "outside"),
            ("select:0|vorticity", &s[..], "2 channels"),
            ("coarsen:2", &[3][..], "needs field states"),
            ("vorticity", &[3][..], "needs field states"),
        ] {
            let e = Operator::parse(spec)
                .unwrap()
                .state_shape(shape)
                .unwrap_err();
            assert!(e.to_string().contains(needle), "{spec}: {e}");
        }
        for (spec, needle) in [
            ("coarsen:0", "at least 1"),
            ("crop:0:4:0", "four numbers"),
            ("crop:4:2:0:1", "I0 < I1"),
            ("vorticity:2", "takes no argument"),
            ("arctan:2", "takes no argument"),
            ("mask:/nonexistent/mask.npy", "/nonexistent/mask.npy"),
        ] {
            let e = Operator::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn field_terms_compute_the_right_values() {
        let (c, h, w) = (2, 4, 6);
        let x = fields(1, c, h, w);
        let at = |ch: usize, i: usize, j: usize| x[(ch * h + (i % h)) * w + (j % w)];
        // Coarsen 2: block means.
        let y = apply_flat(&"coarsen:2".parse().unwrap(), &x, 1, &[c, h, w]);
        let want = (at(1, 2, 4) + at(1, 2, 5) + at(1, 3, 4) + at(1, 3, 5)) / 4.0;
        assert!((y[(2 + 1) * 3 + 2] - want).abs() < 1e-6); // channel 1, block (1, 2)
        // Crop and space-stride pick grid points.
        let y = apply_flat(&"crop:1:3:2:5".parse().unwrap(), &x, 1, &[c, h, w]);
        assert_eq!(y[0], at(0, 1, 2));
        assert_eq!(y[2 * 3 + 3 + 2], at(1, 2, 4));
        let y = apply_flat(&"space-stride:3@1".parse().unwrap(), &x, 1, &[c, h, w]);
        assert_eq!(y, vec![at(0, 1, 1), at(0, 1, 4), at(1, 1, 1), at(1, 1, 4)]);
        // Vorticity with periodic centred differences, the sign convention of docs/method.md §8.
        let y = apply_flat(&"vorticity".parse().unwrap(), &x, 1, &[c, h, w]);
        for (i, j) in [(0, 0), (1, 3), (3, 5), (2, 1)] {
            let want = (at(0, i, j + 1) - at(0, i, j + w - 1)) / 2.0
                - (at(1, i + 1, j) - at(1, i + h - 1, j)) / 2.0;
            assert!((y[i * w + j] - want).abs() < 1e-5, "({i}, {j})");
        }
        let y = apply_flat(&"saturate".parse().unwrap(), &x, 1, &[c, h, w]);
        assert!((y[7] - x[7] / (1.0 + x[7].abs())).abs() < 1e-6);
        // arctan after a selection: the arctangent of channel 1's values.
        let y = apply_flat(&"select:1|arctan".parse().unwrap(), &x, 1, &[c, h, w]);
        assert_eq!(y.len(), h * w);
        for k in [0, 7, 23] {
            assert!((y[k] - x[h * w + k].atan()).abs() < 1e-6, "{k}");
        }
    }

    #[test]
    fn masks_pick_their_points_and_check_their_shape() {
        let dir = std::env::temp_dir().join(format!("sda-mask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mask.npy");
        let mut m = vec![0.0f32; 4 * 6];
        m[6 + 2] = 1.0; // row 1, column 2
        m[3 * 6 + 5] = 1.0;
        crate::io::write_npy(&path, &crate::io::Array::new(vec![4, 6], m)).unwrap();
        let spec = format!("mask:{}", path.display());
        let op = Operator::parse(&spec).unwrap();
        assert_eq!(op.state_shape(&[2, 4, 6]).unwrap(), vec![2, 2]);
        let x = fields(1, 2, 4, 6);
        let y = apply_flat(&op, &x, 1, &[2, 4, 6]);
        assert_eq!(y, vec![x[8], x[23], x[24 + 8], x[24 + 23]]);
        let e = op.state_shape(&[2, 8, 8]).unwrap_err().to_string();
        assert!(e.contains("4 × 6") && e.contains("8 × 8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn field_operators_match_finite_differences() {
        // ∇ of ½‖A(x)‖² · r for a fixed random direction r, by autodiff and central differences.
        let device = Device::flex().autodiff();
        let (c, h, w) = (2, 8, 8);
        let shape = [c, h, w];
        let f = c * h * w;
        for spec in [
            "coarsen:2",
            "crop:1:5:2:7",
            "space-stride:3@1",
            "vorticity",
            "vorticity|saturate",
            "coarsen:2|vorticity|saturate|crop:1:3:0:4",
            "arctan",
            "vorticity|arctan",
            "coarsen:2|arctan|crop:1:3:0:4",
        ] {
            let op: Operator = spec.parse().unwrap();
            let x0 = fields(1, c, h, w);
            let m: usize = op.state_shape(&shape).unwrap().iter().product();
            let r: Vec<f32> = (0..m).map(|k| ((k * 7 % 5) as f32 - 2.0) * 0.3).collect();
            let objective = |x: Tensor<2>| {
                let y = op.apply_states(x, &shape);
                let r = crate::score::tensor(r.clone(), [1, m], &y.device());
                (y * r).sum()
            };
            let x = crate::score::tensor(x0.clone(), [1, f], &device).require_grad();
            let g = to_vec(x.grad(&objective(x.clone()).backward()).unwrap());
            let value = |x: &[f32]| {
                let t = crate::score::tensor(x.to_vec(), [1, f], &Device::flex());
                to_vec(objective(t))[0] as f64
            };
            for k in [0, 5, 17, 63, 64, 100, 127] {
                let eps = 1e-2;
                let (mut a, mut b) = (x0.clone(), x0.clone());
                a[k] += eps;
                b[k] -= eps;
                let fd = (value(&a) - value(&b)) / (2.0 * eps as f64);
                assert!(
                    (fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                    "{spec}: ∂/∂x[{k}] autodiff {} vs finite differences {fd}",
                    g[k]
                );
            }
        }
    }

    /// A scratch folder for operator files.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sda-op-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn save(path: &std::path::Path, shape: Vec<usize>, data: Vec<f32>) -> String {
        crate::io::write_npy(path, &crate::io::Array::new(shape, data)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn at_points_and_linear_compute_hand_values() {
        let dir = scratch("hand");
        // Trajectory of 6 states of shape (2, 3): x[t, c, j] = 100 t + 10 c + j.
        let x: Vec<f32> = (0..6 * 6)
            .map(|k| (100 * (k / 6) + 10 * ((k / 3) % 2) + k % 3) as f32)
            .collect();
        let device = Device::flex();
        let run = |spec: &str| {
            let op = Operator::parse(spec).unwrap();
            let y = op
                .apply(crate::score::tensor(x.clone(), [1, 6, 6], &device), &[2, 3])
                .unwrap();
            (op.output_shape(6, &[2, 3]).unwrap(), to_vec(y))
        };
        let pts = save(&dir.join("p.npy"), vec![3], vec![5.0, 0.0, 4.0]);
        let (shape, y) = run(&format!("at:1,4|points:{pts}"));
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(y, vec![112., 100., 111., 412., 400., 411.]);
        // at: from a file, after a stride (states 0, 2, 4 → the 2nd and 3rd: 2, 4).
        let at = save(&dir.join("at.npy"), vec![2], vec![1.0, 2.0]);
        let op = Operator::parse(&format!("stride:2|at:{at}")).unwrap();
        assert_eq!(op.times(6).unwrap(), vec![2, 4]);
        // linear: rows (1, −1, 0, 0, 0, 0) and (0.5, 0, 0, 0, 0, 2) on state 3.
        let mut a = vec![0.0; 12];
        a[0] = 1.0;
        a[1] = -1.0;
        a[6] = 0.5;
        a[11] = 2.0;
        let lin = save(&dir.join("a.npy"), vec![2, 6], a);
        let (shape, y) = run(&format!("at:3|linear:{lin}"));
        assert_eq!(shape, vec![1, 2]);
        assert_eq!(y, vec![-1.0, 0.5 * 300.0 + 2.0 * 312.0]);
        // Scales: points pass them through, linear gives sqrt(Σ A² s²).
        let op = Operator::parse(&format!("linear:{lin}")).unwrap();
        let s = to_vec(op.apply_scales(
            crate::score::tensor(vec![1., 2., 3., 4., 5., 6.], [1, 6], &device),
            &[6],
        ));
        assert!(
            (s[0] - 5f32.sqrt()).abs() < 1e-5 && (s[1] - (0.25f32 + 144.0).sqrt()).abs() < 1e-4
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_terms_refuse_what_does_not_fit() {
        let dir = scratch("bad");
        let pts = save(&dir.join("p.npy"), vec![2], vec![1.0, 6.0]);
        let e = Operator::parse(&format!("points:{pts}"))
            .unwrap()
            .state_shape(&[2, 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("index 6") && e.contains("6 values"), "{e}");
        let frac = save(&dir.join("f.npy"), vec![1], vec![1.5]);
        let e = Operator::parse(&format!("points:{frac}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1.5 is not a non-negative integer"), "{e}");
        let lin = save(&dir.join("a.npy"), vec![2, 5], vec![0.0; 10]);
        let e = Operator::parse(&format!("linear:{lin}"))
            .unwrap()
            .state_shape(&[6])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 × 5") && e.contains("width 5 is not the state's size 6"),
            "{e}"
        );
        let vec3 = save(&dir.join("v.npy"), vec![3], vec![0.0; 3]);
        let e = Operator::parse(&format!("linear:{vec3}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(M, F) matrix"), "{e}");
        let e = Operator::parse("at:3,1").unwrap_err().to_string();
        assert!(e.contains("increasing"), "{e}");
        let e = Operator::parse("at:1,9")
            .unwrap()
            .times(5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("state 9 lies outside"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tables_gather_their_pairs_and_split_into_per_state_points() {
        let dir = scratch("table");
        let path = dir.join("obs.csv");
        std::fs::write(
            &path,
            "time,index,value,std
4,2,0,1
1,0,0,1
4,2,0,2
4,5,0,1
",
        )
        .unwrap();
        let op = Operator::parse(&format!("table:{}", path.display())).unwrap();
        assert_eq!(op.times(6).unwrap(), vec![1, 4]);
        assert_eq!(op.output_shape(6, &[2, 3]).unwrap(), vec![4]);
        let x: Vec<f32> = (0..6 * 6).map(|k| k as f32).collect();
        let device = Device::flex();
        let y = to_vec(
            op.apply(crate::score::tensor(x.clone(), [1, 6, 6], &device), &[2, 3])
                .unwrap(),
        );
        // Rows by time: (1, 0), then (4, 2) twice and (4, 5).
        assert_eq!(y, vec![6.0, 26.0, 26.0, 29.0]);
        let per = op.observed_states(6, &[2, 3]).unwrap();
        assert_eq!(per.len(), 2);
        assert_eq!((per[1].0, per[1].1.clone()), (4, 1..4));
        let state4 = crate::score::tensor(x[24..30].to_vec(), [1, 6], &device);
        let y4 = to_vec(per[1].2.as_ref().unwrap().apply_states(state4, &[2, 3]));
        assert_eq!(y4, vec![26.0, 26.0, 29.0]);
        let e = op.times(4).unwrap_err().to_string();
        assert!(e.contains("line 2: time 4 lies outside"), "{e}");
        let e = op.state_shape(&[5]).unwrap_err().to_string();
        assert!(e.contains("line 5: index 5 lies outside"), "{e}");
        let e = Operator::parse(&format!("table:{}|saturate", path.display())).unwrap_err();
        assert!(e.to_string().contains("takes no other term"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_terms_match_finite_differences() {
        // ∇ of Σ A(x) · r over a whole trajectory (4 states of 6 values), autodiff against
        // central differences; saturate makes the objective non-linear.
        let dir = scratch("fd");
        let pts = save(&dir.join("p.npy"), vec![4], vec![5.0, 0.0, 3.0, 3.0]);
        let a: Vec<f32> = (0..3 * 6)
            .map(|k| ((k * 5 % 7) as f32 - 3.0) * 0.4)
            .collect();
        let lin = save(&dir.join("a.npy"), vec![3, 6], a);
        let csv = dir.join("obs.csv");
        std::fs::write(
            &csv,
            "time,index,value,std
3,1,0,1
0,4,0,1
3,1,0,1
2,0,0,1
",
        )
        .unwrap();
        let device = Device::flex().autodiff();
        let (l, f) = (4, 6);
        for spec in [
            format!("at:0,2|points:{pts}|saturate"),
            format!("stride:2@1|linear:{lin}|saturate"),
            format!("stride:2@1|linear:{lin}|arctan"),
            format!("at:1,3|arctan|points:{pts}"),
            format!("linear:{lin}"),
            format!("table:{}", csv.display()),
        ] {
            let op: Operator = spec.parse().unwrap();
            let x0 = fields(1, l, 2, 3);
            let m: usize = op.output_shape(l, &[f]).unwrap().iter().product();
            let r: Vec<f32> = (0..m)
                .map(|k| ((k * 7 % 5) as f32 - 2.0) * 0.3 + 0.1)
                .collect();
            let objective = |x: Tensor<3>| {
                let y = op.apply(x, &[f]).unwrap();
                let r = crate::score::tensor(r.clone(), [1, m], &y.device());
                (y.reshape([1, m]) * r).sum()
            };
            let x = crate::score::tensor(x0.clone(), [1, l, f], &device).require_grad();
            let g = to_vec(x.grad(&objective(x.clone()).backward()).unwrap());
            let value = |x: &[f32]| {
                let t = crate::score::tensor(x.to_vec(), [1, l, f], &Device::flex());
                to_vec(objective(t))[0] as f64
            };
            for k in 0..l * f {
                let eps = 1e-2;
                let (mut a, mut b) = (x0.clone(), x0.clone());
                a[k] += eps;
                b[k] -= eps;
                let fd = (value(&a) - value(&b)) / (2.0 * eps as f64);
                assert!(
                    (fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                    "{spec}: ∂/∂x[{k}] autodiff {} vs finite differences {fd}",
                    g[k]
                );
            }
            // Not a trivial gradient: some entries are non-zero.
            assert!(g.iter().any(|v| v.abs() > 1e-3), "{spec}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn jvp_matches_finite_differences() {
        // J_A v against (A(x + h v) − A(x − h v)) / 2h, in f64 arithmetic on the values.
        let device = Device::flex();
        let (c, h, w) = (2, 8, 8);
        let shape = [c, h, w];
        let f = c * h * w;
        for spec in [
            "coarsen:2",
            "space-stride:3@1",
            "vorticity|saturate",
            "saturate|coarsen:2|vorticity|saturate|crop:1:3:0:4",
            "stride:2|select:1|saturate",
            "at:0,2|select:1|saturate",
            "at:1,2|coarsen:2",
            "stride:2|select:1|arctan",
            "vorticity|arctan",
            "arctan|coarsen:2|vorticity|saturate",
        ] {
            let op: Operator = spec.parse().unwrap();
            let x0 = fields(3, c, h, w);
            let v0: Vec<f32> = (0..3 * f)
                .map(|k| ((k * 13 % 7) as f32 - 3.0) * 0.25)
                .collect();
            let t = |d: &[f32]| crate::score::tensor(d.to_vec(), [1, 3, f], &device);
            let (y, jv) = op.jvp(t(&x0), t(&v0), &shape).unwrap();
            assert_eq!(y.dims(), jv.dims());
            assert_eq!(to_vec(y.clone()), to_vec(op.apply(t(&x0), &shape).unwrap()));
            let eps = 1e-2f32;
            let shift =
                |s: f32| -> Vec<f32> { x0.iter().zip(&v0).map(|(x, v)| x + s * eps * v).collect() };
            let a = to_vec(op.apply(t(&shift(1.0)), &shape).unwrap());
            let b = to_vec(op.apply(t(&shift(-1.0)), &shape).unwrap());
            for (k, g) in to_vec(jv).iter().enumerate() {
                let fd = (a[k] - b[k]) / (2.0 * eps);
                assert!(
                    (fd - g).abs() < 2e-3 * (1.0 + fd.abs()),
                    "{spec}: (J v)[{k}] = {g} vs finite differences {fd}"
                );
            }
        }
    }

    /// A table of weighted rows on 4 states of 6 values: bilinear-like rows, a plain row, two
    /// rows at one state.
    fn weighted_table() -> super::super::table::Table {
        use super::super::table::{Row, Table};
        let row = |time, terms: Vec<(usize, f32)>, line| Row {
            time,
            terms,
            value: 0.0,
            std: 1.0,
            line,
        };
        Table::sorted(
            "w.csv",
            vec![
                row(2, vec![(0, 0.375), (1, 0.375), (3, 0.125), (4, 0.125)], 2),
                row(0, vec![(5, 1.0)], 3),
                row(2, vec![(2, 0.5), (5, 0.5)], 4),
                row(3, vec![(1, 0.25), (4, 0.75)], 5),
            ],
        )
    }

    #[test]
    fn weighted_tables_are_linear_and_their_gradient_is_the_transpose() {
        let op = Operator::from_table(&weighted_table());
        let (l, f) = (4, 6);
        // The dense matrix of the rows by hand: row r holds w at column time · F + index.
        let rows: [(usize, &[(usize, f32)]); 4] = [
            (0, &[(5, 1.0)]),
            (2, &[(0, 0.375), (1, 0.375), (3, 0.125), (4, 0.125)]),
            (2, &[(2, 0.5), (5, 0.5)]),
            (3, &[(1, 0.25), (4, 0.75)]),
        ];
        let mut a = vec![0.0f64; 4 * l * f];
        for (r, (t, terms)) in rows.iter().enumerate() {
            for &(i, w) in terms.iter() {
                a[r * l * f + t * f + i] += w as f64;
            }
        }
        let x0 = fields(1, l, 2, 3);
        let device = Device::flex();
        let y = to_vec(
            op.apply(crate::score::tensor(x0.clone(), [1, l, f], &device), &[f])
                .unwrap(),
        );
        for r in 0..4 {
            let want: f64 = (0..l * f).map(|k| a[r * l * f + k] * x0[k] as f64).sum();
            assert!(
                (y[r] as f64 - want).abs() < 1e-5,
                "row {r}: {} vs {want}",
                y[r]
            );
        }
        // The gradient of w · A(x) by automatic differentiation is Aᵀ w, and
        // <A v, w> = <v, Aᵀ w> for any v (the dot-product test).
        let w: Vec<f32> = vec![0.7, -1.3, 0.4, 2.1];
        let ad = Device::flex().autodiff();
        let x = crate::score::tensor(x0.clone(), [1, l, f], &ad).require_grad();
        let objective = (op.apply(x.clone(), &[f]).unwrap().reshape([1, 4])
            * crate::score::tensor(w.clone(), [1, 4], &ad))
        .sum();
        let g = to_vec(x.grad(&objective.backward()).unwrap());
        for k in 0..l * f {
            let want: f64 = (0..4).map(|r| a[r * l * f + k] * w[r] as f64).sum();
            assert!(
                (g[k] as f64 - want).abs() < 1e-6,
                "∂/∂x[{k}]: {} vs {want}",
                g[k]
            );
        }
        let v = fields(1, l, 3, 2)
            .iter()
            .map(|x| x * 0.5 - 0.2)
            .collect::<Vec<f32>>();
        let av = to_vec(
            op.apply(crate::score::tensor(v.clone(), [1, l, f], &device), &[f])
                .unwrap(),
        );
        let lhs: f64 = av.iter().zip(&w).map(|(a, b)| (a * b) as f64).sum();
        let rhs: f64 = v.iter().zip(&g).map(|(a, b)| (a * b) as f64).sum();
        assert!(
            (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
            "{lhs} vs {rhs}"
        );
        // The Jacobian-vector product is A v.
        let (_, jv) = op
            .jvp(
                crate::score::tensor(x0.clone(), [1, l, f], &device),
                crate::score::tensor(v.clone(), [1, l, f], &device),
                &[f],
            )
            .unwrap();
        assert_eq!(to_vec(jv), av);
        // Scales: sqrt(Σ w² s²) per row; here s = 2 everywhere.
        let sc = to_vec(
            op.apply_scales_trajectories(Tensor::full([1, l, f], 2.0, &device), &[f])
                .unwrap(),
        );
        for (r, (_, terms)) in rows.iter().enumerate() {
            let want = 2.0 * terms.iter().map(|t| t.1 * t.1).sum::<f32>().sqrt();
            assert!(
                (sc[r] - want).abs() < 1e-6,
                "scale of row {r}: {} vs {want}",
                sc[r]
            );
        }
        // One state at a time (filters): the same rows, a weighted term where a row is.
        let per = op.observed_states(l, &[f]).unwrap();
        assert_eq!(
            per.iter().map(|p| (p.0, p.1.clone())).collect::<Vec<_>>(),
            vec![(0, 0..1), (2, 1..3), (3, 3..4)]
        );
        assert!(matches!(
            per[0].2.as_ref().unwrap().terms()[0],
            Term::Points(_)
        ));
        for (t, range, map) in &per {
            let state = crate::score::tensor(x0[t * f..(t + 1) * f].to_vec(), [1, f], &device);
            let got = to_vec(map.as_ref().unwrap().apply_states(state, &[f]));
            for (g, want) in got.iter().zip(&y[range.clone()]) {
                assert!(
                    (g - want).abs() < 1e-6,
                    "state {t}: {got:?} vs {:?}",
                    &y[range.clone()]
                );
            }
        }
        // Restricted to a window (autoregressive sampling): states 2..4 from state 1.
        let (sub, index) = op.restrict(l, &[f], 1, 3, 2..4).unwrap().unwrap();
        assert_eq!(index, vec![1, 2, 3]);
        let tail = crate::score::tensor(x0[f..].to_vec(), [1, 3, f], &device);
        let got = to_vec(sub.apply(tail, &[f]).unwrap());
        for (g, want) in got.iter().zip(&y[1..]) {
            assert!((g - want).abs() < 1e-6);
        }
        let e = op.state_shape(&[4]).unwrap_err().to_string();
        assert!(
            e.contains("line 3: index 5 lies outside a state of 4 values"),
            "{e}"
        );
    }
}
