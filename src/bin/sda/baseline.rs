//! `sda filter --method climatology|persistence|oi|lim` on a data folder: the statistical
//! baselines of `sda::baseline`, fitted on the folder's training split.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sda::baseline::{Method, Settings};
use sda::data::{read_info, read_trajectories};
use sda::io::write_npy;
use sda::record::read_mask;

use crate::filter::{Args, observations};

/// The data folder of `--system` (a folder, or the folder of its `system.json`).
fn folder(spec: &str, method: &str) -> Result<std::path::PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if path.is_file() && path.file_name().is_some_and(|n| n == "system.json") {
        return Ok(path.parent().unwrap_or(Path::new(".")).to_path_buf());
    }
    bail!(
        "--system {spec}: --method {method} is fitted on a data folder's training split (e.g. \
         one `sda import` wrote); give the folder{}",
        if matches!(method, "oi" | "climatology") {
            ", or --climatology X.npy for the classical method on a named system"
        } else {
            ""
        }
    )
}

pub fn run(a: &Args, method: Method) -> Result<()> {
    let name = sda::flag_value(&method);
    let dir = folder(&a.system, &name)?;
    let info = read_info(&dir).with_context(|| format!("--system {}", a.system))?;
    if let Some(m) = &a.mean {
        sda::output::check_file(m, "--mean", None)?;
        if m == &a.output {
            bail!("--mean {}: the same file as --output", m.display());
        }
    }
    let observed = observations(a, &info.state_shape)?;
    let train_path = dir.join("train.npy");
    let train = read_trajectories(&train_path, &info.state_shape)
        .with_context(|| format!("--system {}", a.system))?;
    let mask = read_mask(&dir, &info).with_context(|| format!("--system {}", a.system))?;
    let settings = Settings {
        samples: a.samples,
        seed: a.seed,
        eofs: a.eofs,
        start: a.start.clone(),
    };
    let t0 = std::time::Instant::now();
    let out = sda::baseline::run(
        method,
        &info,
        &train,
        mask.as_ref(),
        &observed,
        a.length,
        &settings,
    )
    .with_context(|| format!("--method {name}"))?;
    let secs = t0.elapsed().as_secs_f64();
    write_npy(&a.output, &out.samples)
        .with_context(|| format!("--output {}", a.output.display()))?;
    if let Some(m) = &a.mean {
        write_npy(m, &out.mean).with_context(|| format!("--mean {}", m.display()))?;
    }
    let observed_states = observed.operator.times(a.length)?.len();
    println!(
        "{name}: {} trajectories of {} states, {} observed ({} values), in {secs:.2} s → {}{}",
        a.samples,
        a.length,
        observed_states,
        observed.y.data.len(),
        a.output.display(),
        a.mean
            .as_ref()
            .map(|m| format!(", mean → {}", m.display()))
            .unwrap_or_default()
    );
    for line in &out.report {
        println!("  {line}");
    }
    if let Some(m) = &mask {
        let masked = m.data.iter().filter(|&&v| v <= 0.5).count();
        println!("  {masked} masked value(s) per state are not modelled (NaN in the output)");
    }
    Ok(())
}
