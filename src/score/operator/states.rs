//! The operator one observed state at a time (filters) or one window of states at a time
//! (autoregressive sampling).

use super::{Entries, Entry, Indices, ObservedState, Operator, Term, Weighted, apply::plain};
use crate::error::Result;

impl Operator {
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
