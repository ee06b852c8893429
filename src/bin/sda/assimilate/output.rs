//! Where the samples go: --output checked before sampling, written as `.npy` or `.nc`, kept
//! as a shard's part, or put together from the parts by `sda merge`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sda::assimilate::{Observed, SampleConfig};
use sda::coords::{Layout, write_netcdf};
use sda::data::features;
use sda::io::{Array, write_npy};
use sda::model::Model;
use sda::output::{check_file, fingerprint};
use sda::shard::Shards;

use super::SamplerArgs;
use crate::shard::Sharded;

/// Whether `path` is a NetCDF output (`.nc`).
pub fn is_netcdf(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("nc"))
}

/// The coordinates of a `.nc` --output (`None` for `.npy`), checked before sampling.
///
/// `table`: the observations are a table, which `--start` also places; `placed`: the record
/// step a table of dates placed the first state at, which dates the samples without `--start`.
pub fn layout_of(
    a: &SamplerArgs,
    model: &Model,
    title: &str,
    table: bool,
    placed: Option<usize>,
) -> Result<Option<Layout>> {
    if !is_netcdf(&a.output) {
        if a.start.is_some() && !table {
            bail!(
                "--start: places a table of dates (.csv observations) or dates the samples of a \
                 NetCDF --output (.nc); {} is neither",
                a.output.display()
            );
        }
        return Ok(None);
    }
    let start = a.start.clone().or(placed.map(|k| k.to_string()));
    Ok(Some(Layout::of(
        &model.config.data,
        a.samples,
        a.length,
        start.as_deref(),
        title,
    )?))
}

/// Writes the samples to --output: .npy, or .nc with `layout`.
pub fn write_output(a: &SamplerArgs, x: &Array, layout: Option<&Layout>) -> Result<()> {
    match layout {
        Some(l) => write_netcdf(&a.output, x, l),
        None => write_npy(&a.output, x),
    }
    .with_context(|| format!("--output {}", a.output.display()))
}

/// Checks that --output can take the samples (and the batches kept meanwhile) before sampling.
pub fn check_output(a: &SamplerArgs, model: &Model) -> Result<()> {
    let values = (a.samples * a.length * features(&model.config.data.state_shape)) as u64;
    let kept = if a.samples > a.batch { 2 } else { 1 };
    Ok(check_file(
        &a.output,
        "--output",
        Some(kept * 4 * values + 4096),
    )?)
}

/// What the samples depend on besides the flags: the model's files and the observations.
pub fn fingerprint_of(
    a: &SamplerArgs,
    cfg: &SampleConfig,
    obs: Option<&Observed>,
) -> Result<String> {
    let file = |name: &str| -> Result<String> {
        let p = a.model.join(name);
        let bytes = std::fs::read(&p).with_context(|| format!("--model {}", p.display()))?;
        Ok(fingerprint(&bytes))
    };
    let obs = obs.map(|o| {
        let bytes: Vec<u8> =
            o.y.data
                .iter()
                .chain(&o.noise)
                .flat_map(|v| v.to_le_bytes())
                .collect();
        format!("{} {}", o.operator, fingerprint(&bytes))
    });
    // The guard stops a run but never changes its samples.
    let cfg = SampleConfig {
        guard: true,
        ..cfg.clone()
    };
    Ok(serde_json::json!({
        "sampler": format!("{cfg:?}"),
        "config": file("config.json")?,
        "weights": file("model.safetensors")?,
        "observations": obs,
    })
    .to_string())
}

/// What a run stopped in batch `i` leaves: no output, and the batches done in OUTPUT.parts/.
pub fn not_written(output: &Path, i: usize) -> String {
    match i {
        0 => format!("--output {} not written", output.display()),
        _ => format!(
            "--output {} not written ({i} completed batches kept for --resume)",
            output.display()
        ),
    }
}

/// Keeps a shard's samples as its part.
pub fn finish_shard(s: Sharded, x: &Array, cfg: &SampleConfig) -> Result<()> {
    let all = cfg.samples.div_ceil(cfg.batch);
    let r = s.shard.range(all);
    let what = format!(
        "{} trajectories (batches {}..{} of {all})",
        x.shape[0], r.start, r.end
    );
    s.finish("npy", &sda::io::npy_bytes(x), &what)
}

/// The samples of every part, in order, written to --output (after the same checks as a run).
pub fn merge_parts(
    a: &SamplerArgs,
    model: &Model,
    shards: Shards,
    title: &str,
    placed: Option<usize>,
) -> Result<Array> {
    let layout = layout_of(a, model, title, true, placed)?;
    check_output(a, model)?;
    let x = shards.concatenated()?;
    if x.shape[0] != a.samples {
        bail!(
            "{}: the parts hold {} trajectories, not the {} of --samples",
            shards.dir().display(),
            x.shape[0],
            a.samples
        );
    }
    write_output(a, &x, layout.as_ref())?;
    let n = shards.manifest().count;
    shards.remove()?;
    println!(
        "{} trajectories of {} states merged from {n} shards → {}",
        a.samples,
        a.length,
        a.output.display()
    );
    Ok(x)
}
