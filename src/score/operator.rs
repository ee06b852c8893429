//! Observation operators as a small composable language, applied left to right in physical
//! units: `stride:8|select:0` observes every 8th state, then its component 0.
//!
//! An operator is a choice of states in time followed by a map applied to each chosen state, so
//! the same operator drives the sampler's likelihood (on whole trajectories, differentiably) and
//! a particle filter (one state at a time).
//!
//! | term | effect |
//! |---|---|
//! | `stride:K[@O]` | states `O, O+K, O+2K, …` (O defaults to 0) |
//! | `last` | the last state only |
//! | `select:I[,J…]` | components (channels) `I, J, …` of each state |

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
}

/// A parsed observation operator.
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

impl Operator {
    /// Parses `term|term|…`. The empty string (or `identity`) observes everything.
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
            let term = match name {
                "stride" => {
                    let arg = need()?;
                    let (k, o) = match arg.split_once('@') {
                        Some((k, o)) => (number(spec, k)?, number(spec, o)?),
                        None => (number(spec, arg)?, 0),
                    };
                    if k == 0 {
                        return Err(err("stride must be at least 1".into()));
                    }
                    Term::Stride {
                        stride: k,
                        offset: o,
                    }
                }
                "last" => Term::Last,
                "select" => {
                    let idx = need()?
                        .split(',')
                        .map(|s| number(spec, s))
                        .collect::<Result<Vec<_>>>()?;
                    Term::Select(idx)
                }
                other => {
                    return Err(err(format!(
                        "unknown term '{other}' (known: stride:K[@O], last, select:I[,J])"
                    )));
                }
            };
            terms.push(term);
        }
        Ok(Self {
            spec: spec.into(),
            terms,
        })
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
                Term::Select(_) => idx,
            };
        }
        if idx.is_empty() {
            return Err(self.err(format!("observes no state of a {length}-state trajectory")));
        }
        Ok(idx)
    }

    /// The shape of one observed state, given the shape of a state.
    pub fn state_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let mut shape = shape.to_vec();
        for term in &self.terms {
            if let Term::Select(idx) = term {
                if let Some(&bad) = idx.iter().find(|&&i| i >= shape[0]) {
                    return Err(self.err(format!(
                        "component {bad} does not exist in states of shape {shape:?}"
                    )));
                }
                shape[0] = idx.len();
            }
        }
        Ok(shape)
    }

    /// The shape of `y` for a trajectory of `length` states of shape `shape`:
    /// `(observed states, *observed state shape)`.
    pub fn output_shape(&self, length: usize, shape: &[usize]) -> Result<Vec<usize>> {
        let mut out = vec![self.times(length)?.len()];
        out.extend(self.state_shape(shape)?);
        Ok(out)
    }

    /// Applies the per-state map to a batch of states.
    ///
    /// # Shapes
    /// - x: `[N, prod(shape)]` → `[N, prod(state_shape(shape))]`
    pub fn apply_states(&self, x: Tensor<2>, shape: &[usize]) -> Tensor<2> {
        let mut x = x;
        let mut shape = shape.to_vec();
        for term in &self.terms {
            if let Term::Select(idx) = term {
                let [n, _] = x.dims();
                let inner: usize = shape[1..].iter().product();
                let device = x.device();
                let x3 = x.reshape([n, shape[0], inner]);
                let ids: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
                let ids = Tensor::<1, Int>::from_ints(ids.as_slice(), &device);
                x = x3.select(1, ids).reshape([n, idx.len() * inner]);
                shape[0] = idx.len();
            }
        }
        x
    }

    /// Applies the operator to a batch of trajectories.
    ///
    /// # Shapes
    /// - x: `[B, L, prod(shape)]` → `[B, L', prod(state_shape(shape))]`
    pub fn apply(&self, x: Tensor<3>, shape: &[usize]) -> Result<Tensor<3>> {
        let [b, l, f] = x.dims();
        let times = self.times(l)?;
        let device = x.device();
        let ids: Vec<i64> = times.iter().map(|&i| i as i64).collect();
        let x = if times.len() == l {
            x
        } else {
            x.select(1, Tensor::<1, Int>::from_ints(ids.as_slice(), &device))
        };
        let lo = times.len();
        let y = self.apply_states(x.reshape([b * lo, f]), shape);
        let fo = y.dims()[1];
        Ok(y.reshape([b, lo, fo]))
    }

    /// Whether every term is linear, so that per-channel scales propagate through it.
    pub fn is_linear(&self) -> bool {
        true
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
}
