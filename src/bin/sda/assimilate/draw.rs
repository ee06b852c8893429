//! Drawing the samples, batch by batch, with the batches done kept for `--resume`.

use anyhow::Result;
use sda::assimilate::{Observed, SampleConfig, sample_counted};
use sda::coords::Layout;
use sda::io::Array;
use sda::model::Model;
use sda::output::{Existing, Parts};
use sda::score::Evaluations;

use super::SamplerArgs;
use super::output::{fingerprint_of, not_written, write_output};
use crate::common::bar;
use crate::shard::Sharded;

/// Draws the samples batch by batch (a shard: its batches only); with more than one batch,
/// each completed batch is kept in OUTPUT.parts/ so that `--resume` finishes a killed run with
/// the same samples. The output (a shard's part) is written before returning.
pub fn draw(
    model: &Model,
    obs: Option<&Observed>,
    cfg: &SampleConfig,
    dev: &burn::prelude::Device,
    a: &SamplerArgs,
    sharded: Option<&Sharded>,
    layout: Option<&Layout>,
) -> Result<(Array, f64, Evaluations)> {
    cfg.check(model)?;
    let all = cfg.samples.div_ceil(cfg.batch);
    let mine = sharded.map_or(0..all, |s| s.shard.range(all));
    let batches = mine.len();
    let per_batch = cfg.steps_per_batch(&model.config.net);
    let pb = bar((batches * per_batch) as u64, "sample");
    let t0 = std::time::Instant::now();
    let existing = Existing::from_flags(a.force, a.resume);
    let parts = if batches > 1 && sharded.is_none() {
        Some(Parts::open(
            &a.output,
            &fingerprint_of(a, cfg, obs)?,
            existing,
        )?)
    } else {
        None
    };
    let mut data = Vec::new();
    let mut evals = Evaluations::default();
    let mut shape = Vec::new();
    for (done, i) in mine.clone().enumerate() {
        let b = cfg.batch.min(cfg.samples - i * cfg.batch);
        let kept = parts.as_ref().map(|p| p.get(i)).transpose()?.flatten();
        let x = match kept {
            Some(x) => x,
            None => {
                let piece = SampleConfig {
                    samples: b,
                    first_batch: i,
                    ..cfg.clone()
                };
                let offset = done * per_batch;
                let (x, e) = match sample_counted(model, obs, &piece, dev, |s| {
                    pb.set_position((offset + s) as u64)
                }) {
                    Ok(v) => v,
                    Err(err) => {
                        pb.finish_and_clear();
                        // Nothing to resume: no folder of parts is left behind either.
                        if let Some(p) = parts {
                            p.discard_if_empty()?;
                        }
                        return Err(anyhow::Error::from(err).context(not_written(&a.output, i)));
                    }
                };
                // Every batch makes the same passes per sample.
                evals = e;
                if let Some(p) = &parts {
                    p.put(i, &x)?;
                }
                x
            }
        };
        pb.set_position(((done + 1) * per_batch) as u64);
        shape = x.shape.clone();
        data.extend(x.data);
    }
    pb.finish_and_clear();
    if shape.is_empty() {
        // A shard without batches (more shards than batches).
        shape = vec![0, cfg.length];
        shape.extend(&model.config.data.state_shape);
    }
    shape[0] = data.len() / shape[1..].iter().product::<usize>().max(1);
    let x = Array::new(shape, data);
    if sharded.is_none() {
        write_output(a, &x, layout)?;
    }
    if let Some(p) = parts {
        p.finish()?;
    }
    Ok((x, t0.elapsed().as_secs_f64(), evals))
}
