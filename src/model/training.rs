//! The training settings a run folder records (`config.json`'s `train`): epochs, batches, the
//! learning rate and its decay, the seed, the fused engine's precision, the weights' moving
//! average and the preconditioning. The loop that uses them is [`crate::train`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::cpu::Precision;

/// How the learning rate decays over the epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Linearly to 0 (the paper's).
    #[default]
    Linear,
    /// Half a cosine to 0.
    Cosine,
    /// Exponentially to 1e-3 of the initial rate.
    Exponential,
    /// Constant.
    Constant,
}

/// Training settings; the defaults are the paper's Lorenz-63 ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs (one window per training chain each).
    pub epochs: usize,
    /// Windows per optimisation step.
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Learning-rate decay.
    pub lr_schedule: LrSchedule,
    /// Seed of the initialisation and of every draw.
    pub seed: u64,
    /// Epochs between checkpoints.
    pub checkpoint_every: usize,
    /// Arithmetic of the fused engine's matrix products (bf16: bfloat16 operands and float32
    /// sums in the forward, input-gradient and weight-gradient products).
    /// [`train_with`](crate::train::train_with) resolves `Auto` (see [`Precision::resolve`])
    /// and `config.json` records what ran; runs written before precisions were offered are
    /// float32.
    #[serde(default = "float32")]
    pub precision: Precision,
    /// Decay of the exponential moving average of the weights that sampling uses (see
    /// [`Ema`](crate::train::Ema)); `None`: the raw weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    /// The network learns the residual of the Gaussian denoiser: the noise estimate is
    /// `c(t) x(t) + F_φ(x(t), t)` (see [`crate::score::precondition`]), right at high noise
    /// before any training. Runs written before it was offered learn `ε` itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub precondition: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 4096,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 1e-3,
            lr_schedule: LrSchedule::Linear,
            seed: 0,
            checkpoint_every: 64,
            precision: Precision::Auto,
            ema: None,
            precondition: false,
        }
    }
}

/// The precision of runs whose `config.json` names none.
fn float32() -> Precision {
    Precision::F32
}

impl TrainConfig {
    /// The learning rate of epoch `e` (0-based).
    pub fn lr_at(&self, e: usize) -> f64 {
        let frac = e as f64 / self.epochs as f64;
        self.lr
            * match self.lr_schedule {
                LrSchedule::Linear => 1.0 - frac,
                LrSchedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * frac).cos()),
                LrSchedule::Exponential => 1e-3f64.powf(frac),
                LrSchedule::Constant => 1.0,
            }
    }

    /// Checks the settings, one named error per rule.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("--epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("--batch-size", "must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config("--lr", "must be positive"));
        }
        if self.checkpoint_every == 0 {
            return Err(Error::config("--checkpoint-every", "must be at least 1"));
        }
        if let Some(d) = self.ema
            && !(d > 0.0 && d < 1.0)
        {
            return Err(Error::config(
                "--ema",
                format!("the decay must be in (0, 1), e.g. 0.999 (got {d})"),
            ));
        }
        Ok(())
    }
}
