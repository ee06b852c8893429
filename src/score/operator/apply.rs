//! The operator applied to states and trajectories, to values and to their scales.

use burn::prelude::*;

use super::{Operator, Term};
use crate::error::Result;

/// Whether every row is one value of weight 1.
pub(super) fn plain(rows: &[&[(usize, f32)]]) -> bool {
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

impl Operator {
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

    pub(super) fn map_states(&self, x: Tensor<2>, shape: &[usize], scales: bool) -> Tensor<2> {
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
