//! SDA's assimilation of one truth's observations in the Lorenz-96 benchmark.

use anyhow::Result;
use sda::assimilate::{Observed, SampleConfig, sample_counted};
use sda::io::Array;
use sda::model::Model;
use sda::study::lorenz96::{Case, sda_operator};

use super::super::Args;
use super::super::settings::SdaSetting;
use crate::common::{bar, device};

/// SDA's posterior samples `(N, L_sda, 40)` of one truth's observations, on the case's grid.
#[allow(clippy::too_many_arguments)]
pub fn assimilate_sda(
    a: &Args,
    c: &Case,
    model: &Model,
    s: &SdaSetting,
    y: &Array,
    noise: &[f32],
    length: usize,
    seed: u64,
) -> Result<Array> {
    let operator = sda_operator(c)?;
    let l = (length - 1) / c.thin + 1;
    let observed = Observed {
        operator,
        y: y.clone(),
        noise: noise.to_vec(),
    };
    let cfg = SampleConfig {
        length: l,
        samples: a.sda_samples,
        batch: a.sda_samples.min(8),
        precision: a.precision,
        seed,
        guard: !a.no_guard,
        sampling: s.sampling,
        ..SampleConfig::default()
    }
    .with(&s.settings);
    let passes = cfg.sampler(model.config.sde).evaluations();
    println!(
        "{} {}: {l} states × {} samples, {passes} guided network passes over {} windows each \
         ({})",
        c.name,
        s.label(a.sda_samples),
        a.sda_samples,
        l.saturating_sub(2 * s.k),
        cfg.describe_sampling(&model.config.net)
    );
    let pb = bar(
        (cfg.steps_per_batch(&model.config.net) * a.sda_samples.div_ceil(cfg.batch)) as u64,
        "sda",
    );
    pb.set_message(format!("{l} states, {} samples", a.sda_samples));
    let (x, _) = sample_counted(model, Some(&observed), &cfg, &device(&a.device)?, |_| {
        pb.inc(1)
    })?;
    pb.finish_and_clear();
    Ok(x)
}
