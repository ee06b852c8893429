//! A guard on every sampling run: the iterates are watched after each step, and a run that has
//! left the range any healthy sampler stays in is stopped with an error naming what diverged.
//!
//! The VP SDE's marginal at time `t` is `x(t) = μ x + σ z` with `μ² + σ² = 1 + η²` (Song et al.
//! 2021, the variance-preserving SDE; Rozet & Louppe 2023, §2), so in the network's normalised
//! units (unit variance per value) every iterate of a sampler that tracks the marginals has
//! standard deviation about 1, and by Cauchy–Schwarz `|x(t)| ≤ √(1 + η²) √(x² + z²)`. A standard
//! normal value exceeds 7 once in 10¹¹ draws, so an iterate beyond [`BOUND`] = 50 normalised
//! units needs a training value about 49 standard deviations from its mean: a record that held
//! one would be beyond what a prior trained on it can represent. An iterate beyond the bound (or
//! beyond twice the largest normalised observation, where observations lie that far out) is
//! therefore not a sample of anything the prior or the observations support: the sampler has
//! diverged. The same bound applies to the move the guidance term makes in one predictor step:
//! with `ρ = σ/μ`, an Euler step in `ρ` moves `x` by `μ_s |ρ_t − ρ_s| max |σ s_y|` through the
//! guidance alone (Rozet & Louppe 2023, eq. 12 and their predictor), and a move larger than the
//! bound is an explicit step far outside its stability region.

use burn::prelude::*;

use super::NoiseEstimator;
use super::guidance::{Guidance, Likelihood};
use super::sde::VpSde;

/// The bound of the iterates, in normalised units (training standard deviations).
pub const BOUND: f64 = 50.0;

/// How far past the bound an iterate may go before the last step and still be let run: a
/// sampler can pass through the bound at high noise and come back (on Lorenz-96, a k = 4 prior
/// reached 50.8 training stds at t = 0.85 and ended within 5.7), while the runs that diverge
/// grow past any bound (to hundreds of stds within a few steps, then to 10⁹ and beyond).
pub const TOLERATED: f64 = 10.0;

/// What left the healthy range.
#[derive(Clone, Debug, PartialEq)]
pub enum Divergence {
    /// The iterates hold NaN or infinite values.
    NonFinite,
    /// The iterates' largest absolute value, beyond the bound.
    Range {
        /// `max |x|` in normalised units.
        value: f64,
        /// The bound it crossed.
        bound: f64,
        /// The move the guidance term made in the step (normalised units; `None` unguided).
        guided: Option<f64>,
    },
    /// The guidance term's largest value, and the move it makes in one step, beyond the bound.
    Guidance {
        /// `max |σ s_y|` (noise-estimate units).
        value: f64,
        /// The move in one predictor step, `μ_s |ρ_t − ρ_s| max |σ s_y|` (normalised units).
        moves: f64,
        /// The bound it crossed.
        bound: f64,
    },
}

impl Divergence {
    /// Whether the prior's own steps, not the guidance, took the iterates out of range: the
    /// guidance moved them by less than a tenth of the bound in the step that crossed it (or
    /// there was none).
    pub fn prior_alone(&self) -> bool {
        match self {
            Divergence::Range { bound, guided, .. } => guided.is_none_or(|m| m < bound / 10.0),
            _ => false,
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::NonFinite => write!(f, "the samples hold NaN or infinite values"),
            Divergence::Range { value, bound, .. } => write!(
                f,
                "the samples reached {value:.3e} training standard deviations (a healthy \
                 sampler stays within {bound})"
            ),
            Divergence::Guidance {
                value,
                moves,
                bound,
            } => write!(
                f,
                "the guidance term reached {value:.3e}, a move of {moves:.3e} training standard \
                 deviations in one step (bound {bound})"
            ),
        }
    }
}

/// A guided estimator that keeps the largest `|σ s_y|` of the predictor's evaluations since the
/// last [`take`](Watched::take), on the device (read once per step, with the iterates).
///
/// The predictor's evaluations are those at the step's first time: the corrector's (and
/// Heun's second) come at the step's end, where the step they make is normalised by the
/// estimate's own size (`δ = τ / mean(ε̂²)`), so a large guidance term there is no large move.
pub struct Watched<'a> {
    /// The guided estimator watched.
    pub guided: &'a dyn Guidance,
    largest: std::cell::RefCell<Option<(f64, Tensor<1>)>>,
}

impl<'a> Watched<'a> {
    /// Watches `guided` from now on.
    pub fn new(guided: &'a impl Guidance) -> Self {
        Self {
            guided,
            largest: Default::default(),
        }
    }

    /// The largest `|σ s_y|` of the predictor's evaluations since the last call (a one-value
    /// tensor), and a fresh start.
    pub fn take(&self) -> Option<Tensor<1>> {
        self.largest.borrow_mut().take().map(|(_, g)| g)
    }
}

impl NoiseEstimator for Watched<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        let (eps, s) = self.guided.eps_and_grad(x, t);
        let mut largest = self.largest.borrow_mut();
        match largest.take() {
            // A later evaluation of the step (corrector, Heun's second): not a predictor's.
            Some((t0, m)) if t0 != t => *largest = Some((t0, m)),
            previous => {
                let g = s.abs().max().mul_scalar(self.guided.sde().sigma(t)); // [1]
                *largest = Some((t, previous.map_or(g.clone(), |(_, m)| m.max_pair(g))));
            }
        }
        eps
    }
}

/// The checks of one run.
#[derive(Clone, Debug)]
pub struct Guard {
    /// The schedule (for the step's move).
    pub sde: VpSde,
    /// The bound of the iterates and of a step's guidance move, in normalised units.
    pub bound: f64,
    /// The first step (and its `t`) of the current pass whose iterates were beyond the bound
    /// but let run (see [`Guard::verdict`]).
    since: std::cell::Cell<Option<(usize, f64)>>,
}

/// Why [`Guard::verdict`] stops a run: what diverged, and the step (and its `t`) from which
/// iterates let run beyond the bound had been out of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stop {
    /// What diverged.
    pub divergence: Divergence,
    /// The first step beyond the bound, when the run was let go on past it.
    pub since: Option<(usize, f64)>,
}

impl Stop {
    /// The noise level at which the run first left the range: where the excursion began, or
    /// `s`, the step that stopped it.
    pub fn left_at(&self, s: f64) -> f64 {
        self.since.map_or(s, |(_, t)| t)
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.divergence)?;
        if let Some((first, t)) = self.since {
            write!(f, ", beyond the bound since step {first} (t = {t:.3})")?;
        }
        Ok(())
    }
}

impl Guard {
    /// A guard with [`BOUND`], raised to twice `observed` (the largest normalised observation)
    /// where the observations lie that far out.
    pub fn new(sde: VpSde, observed: f64) -> Self {
        Self {
            sde,
            bound: BOUND.max(2.0 * observed),
            since: Default::default(),
        }
    }

    /// The verdict on step `index` (1 to `steps`) of a pass of the sampler (a batch, or a
    /// window of an autoregressive run; step 1 starts a new pass), which went from `t` to `s`
    /// and reached `x` with the largest guidance term `guidance`: [`check`](Self::check), with
    /// iterates beyond the bound let run until the last step as [`stops`](Self::stops) says,
    /// and the step they first crossed it remembered for the message.
    pub fn verdict(
        &self,
        index: usize,
        steps: usize,
        x: &Tensor<3>,
        t: f64,
        s: f64,
        guidance: Option<Tensor<1>>,
    ) -> Option<Stop> {
        if index == 1 {
            self.since.set(None);
        }
        let d = self.check(x, t, s, guidance)?;
        if !self.stops(&d, index == steps) {
            if self.since.get().is_none() {
                self.since.set(Some((index, s)));
            }
            return None;
        }
        Some(Stop {
            divergence: d,
            since: self.since.get(),
        })
    }

    /// Checks the iterate `x` reached by the step from `t` to `s`, and the largest guidance
    /// term of the step's evaluations. One read from the device.
    pub fn check(
        &self,
        x: &Tensor<3>,
        t: f64,
        s: f64,
        guidance: Option<Tensor<1>>,
    ) -> Option<Divergence> {
        let mut parts = vec![
            x.clone().abs().max(),
            // NaN where any value is NaN or infinite (0 · inf = NaN).
            x.clone().mul_scalar(0.0).sum(),
        ];
        parts.extend(guidance);
        let v = super::to_vec(Tensor::cat(parts, 0));
        let (largest, zero) = (v[0] as f64, v[1] as f64);
        if !largest.is_finite() || !zero.is_finite() {
            return Some(Divergence::NonFinite);
        }
        let mut guided = None;
        if let Some(&g) = v.get(2) {
            let g = g as f64;
            let rho = |t: f64| self.sde.sigma(t) / self.sde.mu(t);
            let moves = self.sde.mu(s) * (rho(t) - rho(s)).abs() * g;
            if !g.is_finite() {
                return Some(Divergence::NonFinite);
            }
            if moves > self.bound {
                return Some(Divergence::Guidance {
                    value: g,
                    moves,
                    bound: self.bound,
                });
            }
            guided = Some(moves);
        }
        if largest > self.bound {
            return Some(Divergence::Range {
                value: largest,
                bound: self.bound,
                guided,
            });
        }
        None
    }
}

impl Guard {
    /// Whether divergence `d`, seen at a step that is (`last`) or is not the run's last, stops
    /// the run: every one does, except iterates beyond the bound by at most [`TOLERATED`] times
    /// before the last step, which are let run so that a sampler that comes back is not
    /// refused. A run whose samples end beyond the bound is refused at its last step.
    fn stops(&self, d: &Divergence, last: bool) -> bool {
        match d {
            Divergence::Range { value, bound, .. } => last || *value > TOLERATED * bound,
            _ => true,
        }
    }
}

/// What to try after a divergence, with the flags that set it, for a run of `steps` steps with
/// `likelihood` (`None`: the prior); `prior_alone` where the prior's own steps diverged (see
/// [`Divergence::prior_alone`]), which more steps or more training cure and the likelihood's
/// settings do not.
pub fn advice(likelihood: Option<&Likelihood>, steps: usize, prior_alone: bool) -> String {
    if prior_alone && likelihood.is_some() {
        return format!(
            "more --steps (now {steps}; the prior's own steps diverged, not the guidance) or a \
             longer-trained prior"
        );
    }
    match likelihood {
        Some(Likelihood::Sda { gamma }) => format!(
            "a larger --gamma (now {gamma}; e.g. {}), --likelihood mmps, more --steps (now \
             {steps}) or a longer-trained prior",
            fmt_g((gamma * 10.0).max(0.3))
        ),
        Some(Likelihood::Mmps { iterations, .. }) => format!(
            "more --iterations (now {iterations}), more --steps (now {steps}), --likelihood sda \
             with a larger --gamma (e.g. 0.3) or a longer-trained prior"
        ),
        Some(Likelihood::Dps { zeta }) => format!(
            "a smaller --zeta (now {zeta}), --likelihood mmps, more --steps (now {steps}) or a \
             longer-trained prior"
        ),
        None => format!("more --steps (now {steps}) or a longer-trained prior"),
    }
}

/// A number in its shortest form (`0.3`, not `0.30000000000000004`).
fn fmt_g(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::tensor;

    fn x(values: Vec<f32>) -> Tensor<3> {
        let n = values.len();
        tensor(values, [1, n, 1], &Device::flex())
    }

    #[test]
    fn iterates_within_the_bound_pass_and_the_rest_are_named() {
        let guard = Guard::new(VpSde::default(), 0.0);
        assert_eq!(guard.bound, BOUND);
        // N(0, 1)-sized iterates at mid t: nothing to report.
        assert_eq!(guard.check(&x(vec![0.5, -3.0, 6.0]), 0.5, 0.49, None), None);
        assert_eq!(
            guard.check(&x(vec![0.5, f32::NAN]), 0.5, 0.49, None),
            Some(Divergence::NonFinite)
        );
        assert_eq!(
            guard.check(&x(vec![0.5, f32::INFINITY]), 0.5, 0.49, None),
            Some(Divergence::NonFinite)
        );
        assert_eq!(
            guard.check(&x(vec![0.5, -60.0]), 0.5, 0.49, None),
            Some(Divergence::Range {
                value: 60.0,
                bound: 50.0,
                guided: None
            })
        );
        // Observations 40 training stds out raise the bound to 80.
        let far = Guard::new(VpSde::default(), 40.0);
        assert_eq!(far.check(&x(vec![60.0]), 0.5, 0.49, None), None);
    }

    #[test]
    fn the_guidance_move_is_its_size_times_the_euler_step_in_rho() {
        let sde = VpSde::default();
        let guard = Guard::new(sde, 0.0);
        let (t, s) = (0.5, 0.49);
        let rho = |t: f64| sde.sigma(t) / sde.mu(t);
        // The step moves x by μ_s |ρ_t − ρ_s| per unit of the guidance term.
        let per_unit = sde.mu(s) * (rho(t) - rho(s));
        let g = |v: f64| Some(Tensor::<1>::from_floats([v as f32], &Device::flex()));
        let under = 0.9 * BOUND / per_unit;
        assert_eq!(guard.check(&x(vec![1.0]), t, s, g(under)), None);
        let over = 1.1 * BOUND / per_unit;
        match guard.check(&x(vec![1.0]), t, s, g(over)) {
            Some(Divergence::Guidance { moves, .. }) => {
                assert!((moves - 1.1 * BOUND).abs() < 1e-3 * BOUND, "{moves}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn excursions_within_the_tolerance_run_on_until_the_last_step() {
        let guard = Guard::new(VpSde::default(), 0.0);
        let range = |value: f64| Divergence::Range {
            value,
            bound: BOUND,
            guided: None,
        };
        assert!(!guard.stops(&range(1.1 * BOUND), false));
        assert!(!guard.stops(&range(TOLERATED * BOUND), false));
        assert!(guard.stops(&range(1.01 * TOLERATED * BOUND), false));
        assert!(guard.stops(&range(1.1 * BOUND), true));
        assert!(guard.stops(&Divergence::NonFinite, false));
        let guidance = Divergence::Guidance {
            value: 1.0,
            moves: 1.1 * BOUND,
            bound: BOUND,
        };
        assert!(guard.stops(&guidance, false));
    }

    #[test]
    fn a_pass_remembers_where_its_excursion_began_and_the_next_pass_forgets_it() {
        let guard = Guard::new(VpSde::default(), 0.0);
        let out = || x(vec![60.0]);
        assert_eq!(guard.verdict(1, 4, &x(vec![1.0]), 1.0, 0.75, None), None);
        assert_eq!(guard.verdict(2, 4, &out(), 0.75, 0.5, None), None);
        assert_eq!(guard.verdict(3, 4, &out(), 0.5, 0.25, None), None);
        let stop = guard.verdict(4, 4, &out(), 0.25, 0.0, None).unwrap();
        assert_eq!(stop.since, Some((2, 0.5)));
        assert_eq!(stop.left_at(0.0), 0.5);
        assert!(
            stop.to_string()
                .ends_with("beyond the bound since step 2 (t = 0.500)")
        );
        // Far beyond the tolerance: stopped at once, with no excursion behind it.
        let far = guard.verdict(1, 4, &x(vec![1e4]), 1.0, 0.75, None).unwrap();
        assert_eq!(far.since, None);
        assert_eq!(far.left_at(0.75), 0.75);
    }

    #[test]
    fn the_advice_names_the_flags_of_the_likelihood_that_ran() {
        let a = advice(Some(&Likelihood::Sda { gamma: 0.03 }), 64, false);
        assert!(
            a.contains("--gamma (now 0.03; e.g. 0.3)") && a.contains("(now 64)"),
            "{a}"
        );
        let a = advice(
            Some(&Likelihood::Mmps {
                solver: Default::default(),
                iterations: 1,
            }),
            64,
            false,
        );
        assert!(a.contains("--iterations (now 1)"), "{a}");
        assert!(advice(None, 8, true).contains("--steps (now 8)"));
        let a = advice(Some(&Likelihood::Sda { gamma: 0.03 }), 64, true);
        assert!(
            a.starts_with("more --steps (now 64; the prior's own"),
            "{a}"
        );
    }
}
