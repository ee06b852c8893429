//! `sda assimilate` and `sda sample`: posterior and prior trajectories from a trained model.

mod args;
mod draw;
mod observations;
mod output;
mod report;

use anyhow::{Context, Result, bail};
use sda::assimilate::{Observed, SampleConfig, fused};
use sda::model::Model;
use sda::score::guidance::Likelihood;
use sda::score::preset::{Flags, Settings};
use sda::shard::Shards;

use self::draw::draw;
use self::output::{check_output, finish_shard, layout_of, merge_parts};
use self::report::{report_posterior, report_prior};
use crate::common::{bar, device};
use crate::shard::Opened;

pub use args::{Args, Gamma, SampleArgs, SamplerArgs};
pub use observations::{OnRecord, is_table, observed, observed_any};

/// The title of a NetCDF output of `assimilate`.
const POSTERIOR: &str = "posterior samples p(x | y) of sda assimilate";
/// The title of a NetCDF output of `sample`.
const PRIOR: &str = "prior samples p(x) of sda sample";

fn load(a: &SamplerArgs) -> Result<(burn::prelude::Device, Model)> {
    let dev = device(&a.device)?;
    let model =
        Model::load(&a.model, &dev).with_context(|| format!("--model {}", a.model.display()))?;
    Ok((dev, model))
}

/// The sampler settings of the flags, with the precision resolved for `model` on `dev`.
fn config(
    a: &SamplerArgs,
    settings: &Settings,
    model: &Model,
    dev: &burn::prelude::Device,
) -> Result<SampleConfig> {
    let net = &model.config.net;
    Ok(SampleConfig {
        length: a.length,
        samples: a.samples,
        batch: a.batch,
        composition: a.composition,
        precision: a.precision.resolve(net.fused_width(fused(net, dev)))?,
        seed: a.seed,
        guard: !a.no_guard,
        sampling: a.sampling,
        window: a.window,
        context: a.context,
        conditioning: a.conditioning,
        context_std: a.context_std,
        ..Default::default()
    }
    .with(settings))
}

/// `--gamma auto`: γ from the validation trajectories (or the run folder's cache), reported.
fn calibrate(
    a: &Args,
    model: &Model,
    obs: &Observed,
    cfg: &SampleConfig,
    dev: &burn::prelude::Device,
) -> Result<f64> {
    let run = &a.sampler.model;
    let path = sda::calibrate::validation_file(model, run, a.calibration_data.as_deref())?;
    let valid = sda::data::read_trajectories(&path, &model.config.data.state_shape)
        .context("--gamma auto")?;
    let budget = sda::calibrate::Budget {
        windows: a.calibration,
        ..Default::default()
    };
    let pb = bar(0, "calibrate γ");
    let c = sda::calibrate::gamma(model, obs, cfg, &valid, &budget, Some(run), dev, |d, n| {
        pb.set_length(n as u64);
        pb.set_position(d as u64);
    })?;
    pb.finish_and_clear();
    let cached = sda::calibrate::cache_file(run, &c.key);
    println!(
        "--gamma auto on {} ({}):",
        path.display(),
        if c.fresh {
            format!("ran now, cached in {}", cached.display())
        } else {
            format!("read from {}", cached.display())
        }
    );
    println!("{}", c.report());
    Ok(c.gamma)
}

pub fn run(a: Args) -> Result<()> {
    // Bad or meaningless flags fail before the model loads.
    let settings = a.sampler.preset.resolve(&Flags {
        likelihood: a.likelihood,
        solver: a.solver,
        iterations: a.iterations,
        gamma: a.gamma.map(|g| match g {
            Gamma::Value(v) => v,
            // A placeholder that resolves like any γ; calibration replaces it below.
            Gamma::Auto => 0.03,
        }),
        zeta: a.zeta,
        ..a.sampler.flags()
    })?;
    let auto = a.gamma == Some(Gamma::Auto);
    if !auto && (a.calibration != 4 || a.calibration_data.is_some()) {
        bail!("--calibration and --calibration-data go with --gamma auto only");
    }
    if auto && a.calibration == 0 {
        bail!("--calibration 0: the calibration needs at least 1 validation window");
    }
    let (dev, model) = load(&a.sampler)?;
    let (obs, placed) = observations_of(&a, &model)?;
    let mut cfg = config(&a.sampler, &settings, &model, &dev)?;
    let layout = layout_of(
        &a.sampler,
        &model,
        POSTERIOR,
        is_table(&a.observations),
        placed,
    )?;
    check_output(&a.sampler, &model)?;
    let mut settings = settings;
    if auto {
        let gamma = calibrate(&a, &model, &obs, &cfg, &dev)?;
        settings.likelihood = Likelihood::Sda { gamma };
        cfg.likelihood = settings.likelihood;
    }
    let sharded = match crate::shard::open(&a.sampler.shard, &a.sampler.output)? {
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Some(s),
        Opened::Whole => None,
    };
    let (x, secs, evals) = draw(
        &model,
        Some(&obs),
        &cfg,
        &dev,
        &a.sampler,
        sharded.as_ref(),
        layout.as_ref(),
    )?;
    if let Some(s) = sharded {
        return finish_shard(s, &x, &cfg);
    }
    println!(
        "{} posterior trajectories of {} states (preset {}: {}; precision {}; {}) in {:.1} s, \
         {evals} network passes per sample → {}",
        cfg.samples,
        cfg.length,
        sda::flag_value(&a.sampler.preset),
        settings.describe(),
        cfg.precision,
        cfg.describe_sampling(&model.config.net),
        secs,
        a.sampler.output.display()
    );
    report_posterior(&a.sampler.model, &model, &x, &obs)
}

pub fn run_sample(a: SampleArgs) -> Result<()> {
    let settings = Settings {
        likelihood: Likelihood::Sda { gamma: 0.0 },
        ..a.sampler.preset.resolve(&a.sampler.flags())?
    };
    let (dev, model) = load(&a.sampler)?;
    let cfg = config(&a.sampler, &settings, &model, &dev)?;
    let layout = layout_of(&a.sampler, &model, PRIOR, false, None)?;
    check_output(&a.sampler, &model)?;
    let sharded = match crate::shard::open(&a.sampler.shard, &a.sampler.output)? {
        Opened::Done => return Ok(()),
        Opened::Shard(s) => Some(s),
        Opened::Whole => None,
    };
    let (x, secs, evals) = draw(
        &model,
        None,
        &cfg,
        &dev,
        &a.sampler,
        sharded.as_ref(),
        layout.as_ref(),
    )?;
    if let Some(s) = sharded {
        return finish_shard(s, &x, &cfg);
    }
    println!(
        "{} prior trajectories of {} states ({} steps of {}, C = {}; precision {}; {}) in {:.1} \
         s, {evals} network passes per sample → {}",
        cfg.samples,
        cfg.length,
        cfg.steps,
        sda::flag_value(&cfg.method),
        cfg.corrections,
        cfg.precision,
        cfg.describe_sampling(&model.config.net),
        secs,
        a.sampler.output.display()
    );
    report_prior(&model, &x);
    Ok(())
}

/// The observations of `assimilate`'s flags, checked against the model, and where a table of
/// dates placed the first state in the record (which dates a .nc output without `--start`).
fn observations_of(a: &Args, model: &Model) -> Result<(Observed, Option<usize>)> {
    let (o, start) = observed_any(
        &model.config.data.state_shape,
        &a.observations,
        a.operator.as_deref(),
        a.noise.as_deref(),
        a.sampler.length,
        Some(OnRecord {
            info: &model.config.data,
            start: a.sampler.start.as_deref(),
        }),
    )?;
    // Observations the model's transforms refuse fail now, before anything is drawn.
    o.transformed(&model.config.data, a.sampler.length)?;
    Ok((o, start))
}

/// `sda merge` of a sharded `assimilate`.
pub fn merge(a: Args, shards: Shards) -> Result<()> {
    let (_, model) = load(&a.sampler)?;
    let (obs, placed) = observations_of(&a, &model)?;
    let x = merge_parts(&a.sampler, &model, shards, POSTERIOR, placed)?;
    report_posterior(&a.sampler.model, &model, &x, &obs)
}

/// `sda merge` of a sharded `sample`.
pub fn merge_sample(a: SampleArgs, shards: Shards) -> Result<()> {
    let (_, model) = load(&a.sampler)?;
    let x = merge_parts(&a.sampler, &model, shards, PRIOR, None)?;
    report_prior(&model, &x);
    Ok(())
}
