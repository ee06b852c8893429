//! Autoregressive sampling (Shysheya et al., NeurIPS 2024, "On conditional diffusion models for
//! PDE simulations"): the trajectory is drawn window after window instead of all at once.
//!
//! Every window holds `w` consecutive states (the model's `2k + 1` by default). The first window
//! covers states `0..w`; each next one starts `w − c` states later, so that its first `c` states
//! (the context) are the last `c` states already drawn, and the last window is moved back to end
//! on the trajectory's last state (its context is then longer than `c`). A window is drawn by
//! the unchanged sampler given its context, by inpainting with replacement (RePaint): at the
//! start and after every step the context states of the iterate are replaced by a fresh draw of
//! their perturbation `μ(t) x + σ(t) z`, so that the network sees them at the step's noise level
//! and the other states follow them. The observations of the window's new states guide it with
//! the likelihood of joint sampling (γ, DPS or MMPS); those of its context states are not used
//! again (they informed the window that drew them). All samples of a batch go through the
//! windows together.
//!
//! Each window only sees the observations of its own states and of the past (through its
//! context): the result is a draw of `∏ p(x_new | x_context, y_new)`, which is the smoothing
//! posterior `p(x | y)` only where later observations say nothing about earlier states.

use burn::prelude::*;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::NoiseEstimator;
use super::guard::Watched;
use super::guidance::{Context, Guidance, Guided, Likelihood, Observation};
use super::sampler::{Sampler, Step, normal};
use super::sde::VpSde;
use crate::error::{Error, Result};

/// How a trajectory is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// All states at once, the composed score of the whole trajectory (the paper's).
    #[default]
    Joint,
    /// Window after window, each given the last states already drawn.
    Autoregressive,
}

/// How a window is drawn given its context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Conditioning {
    /// A Gaussian likelihood on the context (std `--context-std`) and replacement,
    /// both.
    #[default]
    Both,
    /// A Gaussian likelihood on the context states (reconstruction guidance).
    Guidance,
    /// Replacement of the context states by their perturbation (inpainting, RePaint).
    Replacement,
}

/// The default std of the context's likelihood, in normalised units (training standard
/// deviations).
pub const CONTEXT_STD: f64 = 0.1;

/// The windows of an autoregressive run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Windows {
    /// States per window `w`.
    pub window: usize,
    /// Context states `c` each window after the first takes from those already drawn
    /// (`1 ≤ c < w`; the last window may take more).
    pub context: usize,
    /// How a window is conditioned on its context.
    pub conditioning: Conditioning,
    /// γ of the context's likelihood (see [`Context`]).
    pub gamma: f64,
    /// The std of the context's likelihood, normalised units.
    pub context_std: f64,
}

/// The noise estimate of one window: the prior, guided by the window's observations and by its
/// context's likelihood (where given).
struct InWindow<'a> {
    prior: &'a dyn NoiseEstimator,
    sde: VpSde,
    guided: Option<Guided<'a>>,
    context: Option<Context>,
}

impl Guidance for InWindow<'_> {
    fn eps_and_grad(&self, x: Tensor<3>, t: f64) -> (Tensor<3>, Tensor<3>) {
        match (&self.guided, &self.context) {
            (Some(g), c) => g.eps_and_grad_with(x, t, c.as_ref()),
            (None, Some(c)) => c.eps_and_grad(self.prior, self.sde, x, t),
            (None, None) => {
                let e = self.prior.eps(x, t);
                let zero = e.zeros_like();
                (e, zero)
            }
        }
    }
    fn sde(&self) -> VpSde {
        self.sde
    }
}

impl NoiseEstimator for InWindow<'_> {
    fn eps(&self, x: Tensor<3>, t: f64) -> Tensor<3> {
        if self.guided.is_none() && self.context.is_none() {
            return self.prior.eps(x, t);
        }
        self.eps_and_grad(x, t).0
    }
}

/// One window of a run, as [`Windows::sample`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its index, from 0.
    pub index: usize,
    /// Windows in the run.
    pub count: usize,
    /// Its first state.
    pub start: usize,
    /// Its context: the states `start..start + fixed` already drawn.
    pub fixed: usize,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "window {} of {}", self.index + 1, self.count)
    }
}

impl Windows {
    /// Windows of `window` states with `context` context states, checked.
    pub fn new(window: usize, context: usize) -> Result<Self> {
        if window < 2 {
            return Err(Error::config(
                "--window",
                format!("{window} states: an autoregressive window needs at least 2"),
            ));
        }
        if context == 0 || context >= window {
            return Err(Error::config(
                "--context",
                format!(
                    "{context} states: the context of a window of {window} states lies in 1..{}",
                    window - 1
                ),
            ));
        }
        Ok(Self {
            window,
            context,
            conditioning: Conditioning::default(),
            gamma: 0.03,
            context_std: CONTEXT_STD,
        })
    }

    /// Checks that a trajectory of `length` states holds one window.
    pub fn check(&self, length: usize) -> Result<()> {
        if length < self.window {
            return Err(Error::config(
                "--length",
                format!(
                    "{length} states is shorter than one autoregressive window of {} states \
                     (--sampling autoregressive)",
                    self.window
                ),
            ));
        }
        Ok(())
    }

    /// The windows of a trajectory of `length` ≥ `window` states, in order.
    pub fn plan(&self, length: usize) -> Vec<Window> {
        let (w, stride) = (self.window, self.window - self.context);
        let mut starts = vec![0];
        while starts.last().expect("one") + w < length {
            starts.push((starts.last().expect("one") + stride).min(length - w));
        }
        let count = starts.len();
        starts
            .iter()
            .enumerate()
            .map(|(index, &start)| Window {
                index,
                count,
                start,
                fixed: if index == 0 {
                    0
                } else {
                    starts[index - 1] + w - start
                },
            })
            .collect()
    }

    /// The observations of each window's new states (see [`Observation::window`]).
    pub fn observations(
        &self,
        obs: &Observation,
        length: usize,
    ) -> Result<Vec<Option<Observation>>> {
        self.plan(length)
            .iter()
            .map(|win| {
                let end = win.start + self.window;
                obs.window(length, win.start, self.window, win.start + win.fixed..end)
            })
            .collect()
    }

    /// Draws `[B, L, F]` trajectories window after window: `prior` is the noise estimate of
    /// one window `[B, w, F]`; `observations` those of each window (from
    /// [`Self::observations`], `None` unguided), each guiding its window with `likelihood`.
    /// `step` sees every step of every window, with the largest guidance term of the step's
    /// predictor evaluations when `watch` (see [`Watched`]); an error from it stops the run.
    #[allow(clippy::too_many_arguments)]
    pub fn sample(
        &self,
        sampler: &Sampler,
        prior: &dyn NoiseEstimator,
        sde: VpSde,
        observations: Option<(&[Option<Observation>], Likelihood)>,
        [b, l, f]: [usize; 3],
        rng: &mut StdRng,
        device: &Device,
        watch: bool,
        mut step: impl FnMut(Window, Step<'_>, Option<Tensor<1>>) -> Result<()>,
    ) -> Result<Tensor<3>> {
        self.check(l)?;
        let w = self.window;
        let mut drawn: Vec<Tensor<3>> = Vec::new();
        let mut last: Option<Tensor<3>> = None; // the last window drawn
        for win in self.plan(l) {
            let guided = observations.and_then(|(o, likelihood)| {
                o[win.index].as_ref().map(|obs| Guided {
                    prior,
                    sde,
                    obs,
                    likelihood,
                })
            });
            let known = last
                .as_ref()
                .map(|prev| prev.clone().slice([0..b, w - win.fixed..w, 0..f]));
            let context = known
                .clone()
                .filter(|_| self.conditioning != Conditioning::Replacement)
                .map(|values| Context {
                    values,
                    variance: self.context_std * self.context_std,
                    gamma: self.gamma,
                });
            let unguided = guided.is_none() && context.is_none();
            let est = InWindow {
                prior,
                sde,
                guided,
                context,
            };
            let watched = (watch && !unguided).then(|| Watched::new(&est));
            let eps: &dyn NoiseEstimator = match &watched {
                Some(w) => w,
                None => &est,
            };
            let x = normal([b, w, f], rng, device);
            let report = |s: Step<'_>| step(win, s, watched.as_ref().and_then(Watched::take));
            let x = match known {
                Some(known) if self.conditioning != Conditioning::Guidance => {
                    sampler.try_sample_inpainting(eps, x, &known, rng, report)?
                }
                _ => sampler.try_sample_from(eps, x, rng, report)?,
            };
            drawn.push(x.clone().slice([0..b, win.fixed..w, 0..f]));
            last = Some(x);
        }
        Ok(Tensor::cat(drawn, 1))
    }
}
