//! The two engines of the optimisation (burn's autodiff, the fused CPU trainer) and the state
//! each keeps between steps.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::windows::{Windows, loss};
use super::{Ema, LEVELS, level};
use crate::error::{Error, Result};
use crate::model::TrainConfig;
use crate::nn::cpu::Precision;
use crate::nn::cpu_train::{AdamW, CpuTrainer};
use crate::nn::ring;
use crate::score::net::{Backbone, ScoreNet, ScoreNetConfig};

/// Which implementation runs the optimisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The fused trainer for MLP networks on the CPU device, burn's autodiff otherwise.
    #[default]
    Auto,
    /// burn's autodiff and AdamW, on any device and network.
    Burn,
    /// The fused CPU trainer (hand-written gradients, every core): MLP networks on the CPU only.
    Fused,
}

impl std::fmt::Display for Engine {
    /// The engine's name on the command line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::flag_value(self))
    }
}

impl Engine {
    /// The engine `Auto` stands for with `net` on `device`.
    pub fn resolve(self, net: &ScoreNetConfig, device: &Device) -> Result<Engine> {
        let mlp = matches!(net.backbone, Backbone::Mlp { .. } | Backbone::Ring { .. });
        let cpu = *device == Device::flex();
        match self {
            Engine::Auto if mlp && cpu => Ok(Engine::Fused),
            Engine::Auto => Ok(Engine::Burn),
            Engine::Fused if !mlp => Err(Error::config(
                "--engine fused",
                "trains MLP and ring networks only; U-Nets train with --engine burn",
            )),
            Engine::Fused if !cpu => Err(Error::config(
                "--engine fused",
                "runs on the CPU device only",
            )),
            e => Ok(e),
        }
    }
}

/// The optimisation state of one of the two engines.
pub(super) enum Stepper {
    Burn {
        /// Always `Some` between steps (taken by the optimizer during one).
        model: Option<ScoreNet>,
        optim: burn::optim::ModuleOptimizer,
    },
    Fused {
        trainer: Box<CpuTrainer>,
        /// A network of the run's configuration on the plain device, to load weights into.
        template: ScoreNet,
        /// `(w, F, K)` of a ring network, whose rows are positions rather than windows.
        ring: Option<(usize, usize, usize)>,
        /// The average of the weights, when asked for.
        ema: Option<Box<Ema>>,
        /// The products' arithmetic.
        precision: Precision,
    },
}

/// The rows a ring network of windows of `w` states on `f` positions and kernel `k` trains
/// on: every position of every window, with its window's time, its own noise and weights.
fn ring_rows(
    x: &[f32],
    t: &[f32],
    eps: &[f32],
    wts: Option<&[f32]>,
    (w, f, k): (usize, usize, usize),
) -> Windows {
    let (x, t, eps) = ring::training_rows(x, t, eps, w, f, k);
    let wts = wts.map_or_else(Vec::new, |v| ring::windows_to_positions(v, w, f));
    Windows { x, t, eps, wts }
}

impl Stepper {
    /// The optimisation state of `engine` for a network of `net` initialised from
    /// `config.seed`, its products in `precision`.
    pub(super) fn new(
        engine: Engine,
        net: &ScoreNetConfig,
        config: &TrainConfig,
        precision: Precision,
        device: &Device,
        adamw: &AdamWConfig,
    ) -> Self {
        let ad = device.clone().autodiff();
        let model = net.init_seeded(&ad, config.seed);
        match engine {
            Engine::Fused => {
                let template = model.valid();
                let cpu = template.score_cpu().expect("an MLP network");
                let ring = template
                    .ring_kernel()
                    .map(|k| (net.window, net.features, k));
                let ema = config.ema.map(|d| Box::new(Ema::new(d, &cpu)));
                Stepper::Fused {
                    trainer: Box::new(
                        CpuTrainer::new(cpu, AdamW::new(config.weight_decay as f32))
                            .with_precision(precision),
                    ),
                    template,
                    ring,
                    ema,
                    precision,
                }
            }
            _ => Stepper::Burn {
                model: Some(model),
                optim: adamw.init(),
            },
        }
    }

    /// One optimisation step on the windows `range` of `w`; returns the batch's mean loss.
    pub(super) fn step(
        &mut self,
        w: &Windows,
        range: std::ops::Range<usize>,
        size: usize,
        lr: f64,
    ) -> f64 {
        match self {
            Stepper::Burn { model, optim } => {
                let m = model.take().expect("a model between steps");
                let device = m.devices()[0].clone();
                let l = loss(&m, w, range, size, &device);
                let value = l.clone().into_scalar::<f32>() as f64;
                let grads = GradientsParams::from_grads(l.backward(), &m);
                *model = Some(optim.step(lr, m, grads));
                value
            }
            Stepper::Fused {
                trainer, ring, ema, ..
            } => {
                let (x, t, eps, wts) = (
                    &w.x[range.start * size..range.end * size],
                    &w.t[range.clone()],
                    &w.eps[range.start * size..range.end * size],
                    w.weights(range.clone(), size),
                );
                let loss = match ring {
                    Some(shape) => {
                        let r = ring_rows(x, t, eps, wts, *shape);
                        trainer.step_weighted(&r.x, &r.t, &r.eps, r.all_weights(), lr)
                    }
                    None => trainer.step_weighted(x, t, eps, wts, lr),
                };
                if let Some(ema) = ema {
                    ema.update(&trainer.net, trainer.steps);
                }
                loss
            }
        }
    }

    /// The mean loss of each of `parts`, without gradients, by the network sampling uses (the
    /// weight average where one is kept), made ready once for all of them.
    pub(super) fn losses(&mut self, parts: &[&Windows], size: usize, device: &Device) -> Vec<f64> {
        match self {
            Stepper::Burn { model, .. } => {
                let valid = model.as_ref().expect("a model").valid();
                parts
                    .iter()
                    .map(|w| {
                        loss(&valid, w, 0..w.t.len(), size, device).into_scalar::<f32>() as f64
                    })
                    .collect()
            }
            Stepper::Fused {
                trainer,
                ring,
                ema,
                precision,
                ..
            } => {
                let mut averaged = ema.as_ref().map(|e| {
                    CpuTrainer::new(e.net.clone(), trainer.adamw).with_precision(*precision)
                });
                let trainer = averaged.as_mut().unwrap_or(trainer);
                parts
                    .iter()
                    .map(|w| {
                        let wts = w.weights(0..w.t.len(), size);
                        match ring {
                            Some(shape) => {
                                let r = ring_rows(&w.x, &w.t, &w.eps, wts, *shape);
                                trainer.loss_weighted(&r.x, &r.t, &r.eps, r.all_weights())
                            }
                            None => trainer.loss_weighted(&w.x, &w.t, &w.eps, wts),
                        }
                    })
                    .collect()
            }
        }
    }

    /// The network sampling uses (the average of the weights, if kept), on the plain device.
    pub(super) fn network(&self) -> ScoreNet {
        match self {
            Stepper::Fused {
                template,
                ema: Some(ema),
                ..
            } => {
                let mut net = template.clone();
                net.load_score_cpu(&ema.net);
                net
            }
            _ => self.raw_network(),
        }
    }

    /// The network the optimizer moves, on the plain device.
    pub(super) fn raw_network(&self) -> ScoreNet {
        match self {
            Stepper::Burn { model, .. } => model.as_ref().expect("a model").valid(),
            Stepper::Fused {
                trainer, template, ..
            } => {
                let mut net = template.clone();
                net.load_score_cpu(&trainer.net);
                net
            }
        }
    }

    /// The losses of the windows of `w` at each noise level, and their mean over all windows.
    pub(super) fn level_losses(
        &mut self,
        w: &Windows,
        size: usize,
        device: &Device,
    ) -> (f64, [f64; LEVELS]) {
        let mut parts: [Windows; LEVELS] = std::array::from_fn(|_| Windows::default());
        for (i, &t) in w.t.iter().enumerate() {
            let p = &mut parts[level(t)];
            p.x.extend_from_slice(&w.x[i * size..(i + 1) * size]);
            p.eps.extend_from_slice(&w.eps[i * size..(i + 1) * size]);
            if let Some(v) = w.weights(i..i + 1, size) {
                p.wts.extend_from_slice(v);
            }
            p.t.push(t);
        }
        let held: Vec<usize> = (0..LEVELS).filter(|&j| !parts[j].t.is_empty()).collect();
        let losses = self.losses(
            &held.iter().map(|&j| &parts[j]).collect::<Vec<_>>(),
            size,
            device,
        );
        let mut levels = [f64::NAN; LEVELS];
        let mut sum = 0.0;
        for (&j, l) in held.iter().zip(losses) {
            levels[j] = l;
            sum += l * parts[j].t.len() as f64;
        }
        (sum / w.t.len() as f64, levels)
    }
}
