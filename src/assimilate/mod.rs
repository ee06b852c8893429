//! Posterior (and prior) sampling with a trained model: validation of the inputs, batching of
//! samples so that memory stays bounded, and the diagnostics a user reads first.

mod fit;
mod sample;

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::data::{SystemInfo, features, shape_text, unravel};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::model::Model;
use crate::nn::cpu::Precision;
use crate::nn::{tensor, to_vec};
use crate::score::autoregressive::{CONTEXT_STD, Conditioning, Sampling, Windows};
use crate::score::guidance::{Likelihood, Observation};
use crate::score::net::{Architecture, Composition, ScoreNetConfig};
use crate::score::operator::Operator;
use crate::score::sampler::{Corrector, Grid, Method};

pub use fit::{Fit, log_likelihood, residual_std};
pub use sample::{batch_seed, fused, sample, sample_counted};

/// Observations as given by a user: operator, values and noise stds (physical units).
#[derive(Clone, Debug)]
pub struct Observed {
    /// The operator `A`.
    pub operator: Operator,
    /// `y`, of the shape `A` produces.
    pub y: Array,
    /// One noise std per value of `y`.
    pub noise: Vec<f32>,
}

/// Sampler settings for one assimilation.
#[derive(Clone, Debug)]
pub struct SampleConfig {
    /// States per trajectory.
    pub length: usize,
    /// Number of trajectories to draw.
    pub samples: usize,
    /// Trajectories per sampler batch (bounds memory).
    pub batch: usize,
    /// Sampler steps T.
    pub steps: usize,
    /// Langevin corrections C.
    pub corrections: usize,
    /// Langevin step scale τ (`sda` corrector).
    pub tau: f64,
    /// The predictor.
    pub method: Method,
    /// The time grid.
    pub grid: Grid,
    /// DDIM's η in [0, 1].
    pub eta: f64,
    /// The corrector's step rule.
    pub corrector: Corrector,
    /// The `fixed` corrector's δ.
    pub delta: f64,
    /// The likelihood approximation.
    pub likelihood: Likelihood,
    /// How window scores compose over the trajectory.
    pub composition: Composition,
    /// The arithmetic of the fused CPU network's matrix products (MLP models on the CPU);
    /// [`sample`] resolves `Auto` (see [`Precision::resolve`]).
    pub precision: Precision,
    /// Seed.
    pub seed: u64,
    /// Joint (all states at once) or autoregressive (window after window) sampling.
    pub sampling: Sampling,
    /// Autoregressive windows' states (`None`: the model's window `2k + 1`).
    pub window: Option<usize>,
    /// Autoregressive windows' context states (`None`: `k`).
    pub context: Option<usize>,
    /// How an autoregressive window is conditioned on its context.
    pub conditioning: Conditioning,
    /// The std of an autoregressive window's likelihood of its context (normalised units).
    pub context_std: f64,
    /// Whether each step's iterates are checked, and a run that diverges stopped with
    /// [`Error::Diverged`] (see [`crate::score::guard`]).
    pub guard: bool,
    /// The index of the first batch: batch `i` of this call is seeded as batch
    /// `first_batch + i` of a call with the same seed, so that a run drawn in pieces (resumed
    /// after a kill) gives the samples of one drawn at once, bit for bit.
    pub first_batch: usize,
}

impl Default for SampleConfig {
    /// The paper's Lorenz-63 evaluation: 64 trajectories of 65 states, T = 256, C = 1, τ = 0.25,
    /// the SDA likelihood with γ = 0.03 (the CLI's defaults).
    fn default() -> Self {
        Self {
            length: 65,
            samples: 64,
            batch: 64,
            steps: 256,
            corrections: 1,
            tau: 0.25,
            method: Method::Pc,
            grid: Grid::T,
            eta: 0.0,
            corrector: Corrector::Sda,
            delta: 0.1,
            likelihood: Likelihood::Sda { gamma: 0.03 },
            composition: Composition::default(),
            precision: Precision::Auto,
            seed: 0,
            sampling: Sampling::Joint,
            window: None,
            context: None,
            conditioning: Conditioning::Both,
            context_std: CONTEXT_STD,
            guard: true,
            first_batch: 0,
        }
    }
}

impl SampleConfig {
    /// These settings with the sampler and likelihood of resolved preset `settings`.
    pub fn with(self, settings: &crate::score::preset::Settings) -> Self {
        Self {
            steps: settings.steps,
            corrections: settings.corrections,
            tau: settings.tau,
            method: settings.sampler,
            grid: settings.grid,
            eta: settings.eta,
            corrector: settings.corrector,
            delta: settings.delta,
            likelihood: settings.likelihood,
            ..self
        }
    }

    /// The windows of autoregressive sampling (`None` for joint sampling), checked against the
    /// model: `--window` states (the model's window by default, at least it), `--context`
    /// context states (`k` by default).
    pub fn windows(&self, net: &ScoreNetConfig) -> Result<Option<Windows>> {
        if self.sampling == Sampling::Joint {
            for (flag, given) in [("--window", self.window), ("--context", self.context)] {
                if given.is_some() {
                    return Err(Error::config(
                        flag,
                        "applies to --sampling autoregressive only",
                    ));
                }
            }
            return Ok(None);
        }
        let gamma = match self.likelihood {
            Likelihood::Sda { gamma } if gamma > 0.0 => gamma,
            _ => 0.03,
        };
        if net.architecture == Architecture::Global {
            return Err(Error::config(
                "--sampling",
                "autoregressive sampling needs a local model (this one is global: it only \
                 handles whole trajectories)",
            ));
        }
        let w = self.window.unwrap_or(net.window);
        if w < net.window {
            return Err(Error::config(
                "--window",
                format!(
                    "{w} states is shorter than the model's window of {}",
                    net.window
                ),
            ));
        }
        let c = self.context.unwrap_or(net.order().clamp(1, w - 1));
        if !(self.context_std > 0.0 && self.context_std.is_finite()) {
            return Err(Error::config("--context-std", "must be positive"));
        }
        let windows = Windows {
            conditioning: self.conditioning,
            gamma,
            context_std: self.context_std,
            ..Windows::new(w, c)?
        };
        windows.check(self.length)?;
        Ok(Some(windows))
    }

    /// How the trajectories are drawn, in words: `joint` or `autoregressive, 21 windows of 5
    /// states (context 2, conditioning both)`.
    pub fn describe_sampling(&self, net: &ScoreNetConfig) -> String {
        match self.windows(net) {
            Ok(Some(w)) => format!(
                "autoregressive, {} windows of {} states (context {}, conditioning {})",
                w.plan(self.length).len(),
                w.window,
                w.context,
                crate::flag_value(&w.conditioning)
            ),
            _ => "joint".into(),
        }
    }

    /// Sampler steps of one batch: `steps`, times the windows of autoregressive sampling.
    pub fn steps_per_batch(&self, net: &ScoreNetConfig) -> usize {
        match self.windows(net) {
            Ok(Some(w)) => self.steps * w.plan(self.length).len(),
            _ => self.steps,
        }
    }

    /// Checks the settings against the model.
    pub fn check(&self, model: &Model) -> Result<()> {
        let net = &model.config.net;
        self.windows(net)?;
        match net.architecture {
            Architecture::Local if self.length < net.window => {
                return Err(Error::config(
                    "--length",
                    format!(
                        "{} states is shorter than the model's window of {}",
                        self.length, net.window
                    ),
                ));
            }
            Architecture::Global if self.length != net.window => {
                return Err(Error::config(
                    "--length",
                    format!(
                        "a global model only handles trajectories of {} states",
                        net.window
                    ),
                ));
            }
            _ => {}
        }
        if self.samples == 0 {
            return Err(Error::config("--samples", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(Error::config("--batch", "must be at least 1"));
        }
        if self.steps == 0 {
            return Err(Error::config("--steps", "must be at least 1"));
        }
        if !(self.tau > 0.0 && self.tau.is_finite()) {
            return Err(Error::config("--tau", "must be positive"));
        }
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(Error::config("--delta", "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.eta) {
            return Err(Error::config("--eta", "must lie in [0, 1]"));
        }
        match self.likelihood {
            Likelihood::Mmps { iterations: 0, .. } => {
                Err(Error::config("--iterations", "must be at least 1"))
            }
            Likelihood::Sda { gamma } if !(gamma >= 0.0 && gamma.is_finite()) => {
                Err(Error::config("--gamma", "must be non-negative"))
            }
            Likelihood::Dps { zeta } if !(zeta > 0.0 && zeta.is_finite()) => {
                Err(Error::config("--zeta", "must be positive"))
            }
            _ => Ok(()),
        }
    }
}

impl Observed {
    /// Observations from a table of `time,index,value,std` rows (see
    /// [`crate::score::table`]): the operator of its `(time, index)` pairs, `y` of shape `(M)`
    /// and one noise std per row.
    pub fn from_table(path: &std::path::Path) -> Result<Self> {
        let t = crate::score::table::Table::read(path)?;
        Ok(Self {
            operator: Operator::from_table(&t),
            y: Array::new(vec![t.rows.len()], t.values()),
            noise: t.stds(),
        })
    }

    /// These observations in the variables the model learns (`info.transforms`, see
    /// [`crate::transform`]): `z = g(y)` with noise std `|g'(y)| σ_y`, to first order; the
    /// observations themselves where there is no transform.
    ///
    /// # Errors
    /// An operator that mixes or maps the state's values (only direct observations of values
    /// compose with a transform), a value outside its variable's domain (naming the table's
    /// line or `y`'s index and the variable), a `sqrt` variable observed at 0 (where the first
    /// order std is infinite).
    pub fn transformed(&self, info: &SystemInfo, length: usize) -> Result<Observed> {
        let t = &info.transforms;
        if t.is_identity() {
            return Ok(self.clone());
        }
        let shape = &info.state_shape;
        let f = features(shape);
        if !self.operator.is_direct() {
            return Err(Error::config(
                "--operator",
                format!(
                    "'{}' mixes or maps the state's values, but the model learns transformed \
                     variables ({}): only observations of the values themselves (a table, \
                     stride, at, last, select, crop, space-stride, mask, points) are \
                     transformed with them",
                    self.operator,
                    t.describe()
                ),
            ));
        }
        assert!(f < 1 << 24, "flat indices exact in float32");
        // Which value of the state each observation is: the operator applied to states that
        // hold their own indices.
        let index: Vec<f32> = (0..length).flat_map(|_| (0..f).map(|j| j as f32)).collect();
        let source = to_vec(
            self.operator
                .apply(tensor(index, [1, length, f], &Device::flex()), shape)?,
        );
        let per = t.per_value(f);
        let table = self.operator.table();
        let place = |m: usize| match table {
            Some(e) => format!("{} line {}", e.path, e.rows[m].line),
            None => format!("y[{}]", shape_text(&unravel(&self.y.shape, m))),
        };
        let mut y = Vec::with_capacity(self.y.data.len());
        let mut noise = Vec::with_capacity(y.capacity());
        for (m, ((&v, &s), &j)) in self.y.data.iter().zip(&self.noise).zip(&source).enumerate() {
            let j = j as usize;
            let tr = per[j];
            let name = &t.of_value(j, f).expect("transforms").name;
            let bad = |why: &str| {
                Error::config(
                    "--observations",
                    format!(
                        "{}: value {v} of variable {name} (the model learns {name}={tr}): {why}",
                        place(m)
                    ),
                )
            };
            if let Some(why) = tr.outside(v as f64) {
                return Err(bad(why));
            }
            let std = tr.std(v as f64, s as f64);
            if !std.is_finite() {
                return Err(bad(
                    "the first-order noise std σ/(2√y) of sqrt is infinite at 0; a variable \
                     observed at 0 needs log:C",
                ));
            }
            y.push(tr.forward(v as f64) as f32);
            noise.push(std as f32);
        }
        Ok(Observed {
            operator: self.operator.clone(),
            y: Array::new(self.y.shape.clone(), y),
            noise,
        })
    }

    /// Observations from a table that may name stations, places and dates, placed on the
    /// record of `ctx` (see [`crate::locate`]), with what the placing did in one line (empty
    /// for a table by state and index) and the record step of the window's first state (for a
    /// table of dates).
    pub fn from_table_on(
        path: &std::path::Path,
        ctx: &crate::locate::Context,
    ) -> Result<(Self, String, Option<usize>)> {
        let placed = crate::locate::read(path, ctx)?;
        let t = &placed.table;
        Ok((
            Self {
                operator: Operator::from_table(t),
                y: Array::new(vec![t.rows.len()], t.values()),
                noise: t.stds(),
            },
            placed.summary,
            placed.start,
        ))
    }

    /// Checks `y` against the operator, the model's states and the trajectory length.
    pub fn check(&self, state_shape: &[usize], length: usize, what: &str) -> Result<()> {
        self.operator
            .check_observations(&self.y, &self.noise, length, state_shape, what)
    }

    /// The largest `|y − A(m)| / s` over the observed values, with `m` the training mean and
    /// `s` the scale of each observed value: how far out, in training standard deviations,
    /// the observations lie.
    pub fn extent(&self, obs: &Observation, length: usize, device: &Device) -> f64 {
        let f = obs.mean.dims()[2];
        let am = to_vec(obs.observe(Tensor::zeros([1, length, f], device)));
        let s2 = to_vec(obs.scale2.clone());
        self.y
            .data
            .iter()
            .zip(am.iter().zip(&s2))
            .map(|(y, (m, s2))| ((y - m) / s2.sqrt()).abs() as f64)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    }

    /// The observation in the sampler's terms, on `device`.
    pub fn to_observation(
        &self,
        model: &Model,
        length: usize,
        device: &Device,
    ) -> Result<Observation> {
        let norm = model.config.normalisation();
        let shape = &model.config.data.state_shape;
        let f = features(shape);
        let m = self.y.data.len();
        let vec32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        // Scale of each observed value: the scales of the state values it comes from.
        let scales: Vec<f32> = (0..length).flat_map(|_| vec32(&norm.scale)).collect();
        let s = to_vec(
            self.operator
                .apply_scales_trajectories(tensor(scales, [1, length, f], device), shape)?,
        );
        Ok(Observation {
            operator: self.operator.clone(),
            state_shape: shape.clone(),
            y: tensor(self.y.data.clone(), [1, m], device),
            variance: tensor(self.noise.iter().map(|v| v * v).collect(), [1, m], device),
            scale2: tensor(s.iter().map(|v| v * v).collect(), [1, m], device),
            mean: tensor(vec32(&norm.mean), [1, 1, f], device),
            scale: tensor(vec32(&norm.scale), [1, 1, f], device),
        })
    }
}

/// Observes trajectories: `y = A(x) + σ z`, `z ~ N(0, I)`, for one trajectory `x` of shape
/// `(L, *shape)` (flat) and one noise std per observed value.
pub fn observe(
    x: &[f32],
    length: usize,
    shape: &[usize],
    operator: &Operator,
    noise: &[f32],
    seed: u64,
) -> Result<Array> {
    use rand_distr::{Distribution, StandardNormal};
    let out_shape = operator.output_shape(length, shape)?;
    let device = Device::flex();
    let ax = to_vec(operator.apply(
        tensor(x.to_vec(), [1, length, features(shape)], &device),
        shape,
    )?);
    if noise.len() != ax.len() {
        return Err(Error::config("--noise", "needs one std per observed value"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let y = ax
        .iter()
        .zip(noise)
        .map(|(v, s)| {
            let z: f32 = StandardNormal.sample(&mut rng);
            v + s * z
        })
        .collect();
    Ok(Array::new(out_shape, y))
}
