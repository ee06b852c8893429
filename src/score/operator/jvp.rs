//! Jacobian-vector products of an operator, for linearised guidance.

use burn::prelude::*;

use super::{Operator, Term};
use crate::error::Result;

impl Operator {
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
}
