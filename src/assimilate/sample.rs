//! The sampling run: the prior's network, the batches, the guard's verdicts and the counts of
//! network evaluations.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Observed, SampleConfig};
use crate::data::features;
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::splitmix64;
use crate::model::Model;
use crate::nn::to_vec;
use crate::score::autoregressive::{Window, Windows};
use crate::score::guard::{Guard, Watched, advice};
use crate::score::guidance::{Guided, Likelihood, Observation};
use crate::score::net::{Backbone, CpuWindowScore, ScoreNetConfig, WindowScore};
use crate::score::sampler::{Sampler, Step, normal};
use crate::score::{Counted, Evaluations, NoiseEstimator};

/// Whether `net` samples on `device` as the fused CPU network (MLP networks on the CPU).
pub fn fused(net: &ScoreNetConfig, device: &Device) -> bool {
    *device == Device::flex()
        && matches!(net.backbone, Backbone::Mlp { .. } | Backbone::Ring { .. })
}

/// The seed of batch `i` of a sampling run: a function of the run's seed and `i` only, so
/// that batches can be drawn in any order or in separate processes.
pub fn batch_seed(seed: u64, i: usize) -> u64 {
    splitmix64(seed ^ splitmix64(i as u64))
}

/// Draws `config.samples` trajectories from the posterior given `observed` (or from the prior
/// when `None`). Returns `(N, L, *state_shape)` in physical units. `progress` sees each sampler
/// step of each batch.
pub fn sample(
    model: &Model,
    observed: Option<&Observed>,
    config: &SampleConfig,
    device: &Device,
    progress: impl FnMut(usize),
) -> Result<Array> {
    Ok(sample_counted(model, observed, config, device, progress)?.0)
}

impl SampleConfig {
    /// The sampler these settings run.
    pub fn sampler(&self, sde: crate::score::sde::VpSde) -> Sampler {
        Sampler {
            sde,
            method: self.method,
            steps: self.steps,
            grid: self.grid,
            eta: self.eta,
            corrections: self.corrections,
            corrector: self.corrector,
            tau: self.tau,
            delta: self.delta,
        }
    }
}

/// [`sample`], and the network evaluations each sample took (forward and backward passes).
pub fn sample_counted(
    model: &Model,
    observed: Option<&Observed>,
    config: &SampleConfig,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> Result<(Array, Evaluations)> {
    config.check(model)?;
    let shape = &model.config.data.state_shape;
    let f = features(shape);
    let l = config.length;
    let (transformed, obs) = observations(model, observed, config, device)?;
    let observed = transformed.as_ref();
    let guard = Guard::new(
        model.config.sde,
        match (observed, &obs) {
            (Some(o), Some(ob)) => o.extent(ob, l, device),
            _ => 0.0,
        },
    );
    // On the CPU, the fused twin of the network computes the same function faster.
    let network = Network::of(model, config, device)?;
    let preconditioned;
    let prior: &dyn NoiseEstimator = if model.config.train.precondition {
        preconditioned = crate::score::precondition::Preconditioned {
            inner: network.estimator(),
            sde: model.config.sde,
        };
        &preconditioned
    } else {
        network.estimator()
    };
    let sampler = config.sampler(model.config.sde);
    let prior = &Counted::new(prior);
    let windows = autoregressive_windows(model, observed, config)?;
    let window_obs = match (&windows, &obs) {
        (Some(w), Some(o)) => Some(w.observations(o, l)?),
        _ => None,
    };
    let run = Run {
        model,
        config,
        device,
        sampler: &sampler,
        prior,
        obs: obs.as_ref(),
        guard: &guard,
    };
    let mut out = Vec::with_capacity(config.samples * l * f);
    let mut done = 0;
    let mut batches = 0;
    let mut tick = || {
        done += 1;
        progress(done);
    };
    for (i, start) in (0..config.samples).step_by(config.batch).enumerate() {
        let b = config.batch.min(config.samples - start);
        let mut rng = StdRng::seed_from_u64(batch_seed(config.seed, config.first_batch + i));
        let x = match &windows {
            Some(w) => run.windows(w, window_obs.as_deref(), [b, l, f], &mut rng, &mut tick)?,
            None => run.batch([b, l, f], &mut rng, &mut tick)?,
        };
        out.extend(to_vec(x));
        batches += 1;
    }
    model.config.data.from_model(&mut out);
    let mut dims = vec![config.samples, l];
    dims.extend(shape);
    // Every batch makes the same passes; each pass evaluates all its samples once.
    let total = prior.evaluations();
    let per_sample = Evaluations {
        forward: total.forward / batches,
        backward: total.backward / batches,
    };
    Ok((Array::new(dims, out), per_sample))
}

/// The observations of the variables the model learns (the given ones without transforms), and
/// the observation of them that guides the sampler.
fn observations(
    model: &Model,
    observed: Option<&Observed>,
    config: &SampleConfig,
    device: &Device,
) -> Result<(Option<Observed>, Option<Observation>)> {
    let shape = &model.config.data.state_shape;
    let l = config.length;
    let transformed = match observed {
        Some(o) => {
            o.check(shape, l, "--observations")?;
            Some(o.transformed(&model.config.data, l)?)
        }
        None => None,
    };
    let obs = match transformed.as_ref() {
        Some(o) => Some(o.to_observation(model, l, device)?),
        None => None,
    };
    if let (Some(_), Likelihood::Sda { gamma }) = (&obs, config.likelihood)
        && gamma <= 0.0
    {
        return Err(Error::config("--gamma", "must be positive"));
    }
    Ok((transformed, obs))
}

/// The network a run samples with: burn's, or its fused CPU twin.
enum Network<'a> {
    Burn(WindowScore<'a>),
    Cpu(Box<CpuWindowScore<'a>>),
}

impl<'a> Network<'a> {
    /// The fused CPU network where [`fused`] says so (at the precision asked for), else burn's.
    fn of(model: &'a Model, config: &SampleConfig, device: &Device) -> Result<Self> {
        let fused = fused(&model.config.net, device);
        let precision = config
            .precision
            .resolve(model.config.net.fused_width(fused))?;
        Ok(if fused {
            let mut s =
                CpuWindowScore::new(&model.net, &model.config.net).with_precision(precision);
            s.composition = config.composition;
            Network::Cpu(Box::new(s))
        } else {
            Network::Burn(WindowScore {
                composition: config.composition,
                ..WindowScore::new(&model.net, &model.config.net)
            })
        })
    }

    fn estimator(&self) -> &dyn NoiseEstimator {
        match self {
            Network::Burn(s) => s,
            Network::Cpu(s) => s.as_ref(),
        }
    }
}

/// The windows of an autoregressive run (`None`: all states at once), refused where the
/// operator couples states far apart.
fn autoregressive_windows(
    model: &Model,
    observed: Option<&Observed>,
    config: &SampleConfig,
) -> Result<Option<Windows>> {
    let windows = config.windows(&model.config.net)?;
    if let (Some(_), Some(o)) = (&windows, observed)
        && !o.operator.acts_state_by_state()
    {
        return Err(Error::config(
            "--sampling",
            format!(
                "autoregressive sampling guides each window by its own observations: operator \
                 '{}' couples states far apart",
                o.operator
            ),
        ));
    }
    Ok(windows)
}

/// What every batch of a run shares: the model, the settings, the sampler, the counted prior,
/// the observation and the guard.
struct Run<'a> {
    model: &'a Model,
    config: &'a SampleConfig,
    device: &'a Device,
    sampler: &'a Sampler,
    prior: &'a Counted<'a>,
    obs: Option<&'a Observation>,
    guard: &'a Guard,
}

impl Run<'_> {
    /// The guard's verdict on the iterate a step reached (in a window of autoregressive runs).
    fn check(&self, step: Step<'_>, g: Option<Tensor<1>>, window: Option<Window>) -> Result<()> {
        let (config, model) = (self.config, self.model);
        match self
            .guard
            .verdict(step.index, config.steps, step.x, step.t, step.s, g)
        {
            None => Ok(()),
            Some(stop) => Err(Error::Diverged {
                step: step.index,
                steps: config.steps,
                t: step.s,
                what: match window {
                    Some(w) => format!("{stop} ({w} of the autoregressive run)"),
                    None => stop.to_string(),
                },
                advice: {
                    let mut a = advice(
                        self.obs.map(|_| &config.likelihood),
                        config.steps,
                        stop.divergence.prior_alone(),
                    );
                    // A prior whose own steps leave the range at high noise has not learnt
                    // the near-identity there, which a preconditioned network has built in.
                    if (self.obs.is_none() || stop.divergence.prior_alone())
                        && stop.left_at(step.s) > 0.8
                        && !model.config.train.precondition
                    {
                        a.push_str(
                            ", or one trained with sda train --precondition (right at high \
                             noise from the first epoch)",
                        );
                    }
                    a
                },
            }),
        }
    }

    /// One batch of `[B, L, F]` trajectories drawn window after window; `tick` sees each step.
    fn windows(
        &self,
        w: &Windows,
        window_obs: Option<&[Option<Observation>]>,
        dims: [usize; 3],
        rng: &mut StdRng,
        tick: &mut impl FnMut(),
    ) -> Result<Tensor<3>> {
        let config = self.config;
        w.sample(
            self.sampler,
            self.prior,
            self.model.config.sde,
            window_obs.map(|o| (o, config.likelihood)),
            dims,
            rng,
            self.device,
            config.guard,
            |window, step, g| {
                tick();
                if config.guard {
                    self.check(step, g, Some(window))
                } else {
                    Ok(())
                }
            },
        )
    }

    /// One batch of `[B, L, F]` trajectories drawn all at once, guided by the observation if
    /// there is one; `tick` sees each step.
    fn batch(
        &self,
        dims: [usize; 3],
        rng: &mut StdRng,
        tick: &mut impl FnMut(),
    ) -> Result<Tensor<3>> {
        let (config, prior) = (self.config, self.prior);
        let guided = self.obs.map(|obs| Guided {
            prior: prior as &dyn NoiseEstimator,
            sde: self.model.config.sde,
            obs,
            likelihood: config.likelihood,
        });
        let watched = guided.as_ref().map(Watched::new);
        let eps: &dyn NoiseEstimator = match (&guided, &watched) {
            (Some(_), Some(w)) if config.guard => w,
            (Some(g), _) => g,
            _ => prior,
        };
        let x = normal(dims, rng, self.device);
        self.sampler.try_sample_from(eps, x, rng, |step| {
            tick();
            if !config.guard {
                return Ok(());
            }
            let g = watched.as_ref().and_then(Watched::take);
            self.check(step, g, None)
        })
    }
}
