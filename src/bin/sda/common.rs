//! Helpers shared by the subcommands: devices, progress bars, noise levels.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use sda::io::read_npy;

/// Parses `cpu`, `vulkan[:N]` or `cuda[:N]`.
pub fn device(spec: &str) -> Result<Device> {
    let (name, index) = match spec.split_once(':') {
        Some((n, i)) => (
            n,
            Some(
                i.parse::<usize>()
                    .with_context(|| format!("--device {spec}: bad index"))?,
            ),
        ),
        None => (spec, None),
    };
    match name {
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(match index {
            Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
            None => Default::default(),
        })),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(index.unwrap_or(0))),
        #[cfg(not(feature = "vulkan"))]
        "vulkan" => missing(spec, name, index),
        #[cfg(not(feature = "cuda"))]
        "cuda" => missing(spec, name, index),
        other => bail!("--device {other}: unknown device (cpu, vulkan[:N], cuda[:N])"),
    }
}

/// The error for a GPU device whose cargo feature this binary lacks.
#[cfg(not(all(feature = "vulkan", feature = "cuda")))]
fn missing(spec: &str, name: &str, _index: Option<usize>) -> Result<Device> {
    bail!(
        "--device {spec}: this binary was built without the '{name}' feature (cargo build --release --features {name})"
    )
}

/// The device as reports name it: the part's own name on GPUs (e.g. `NVIDIA H100 80GB HBM3`),
/// the thread count on the CPU.
pub fn device_name(spec: &str, device: &Device) -> String {
    if *device == Device::flex() {
        return format!("CPU, {} threads", rayon::current_num_threads());
    }
    #[cfg(any(feature = "vulkan", feature = "cuda"))]
    if let Some(identity) = device.identity() {
        return identity.name;
    }
    spec.to_string()
}

/// A progress bar with a message slot.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {msg}",
        )
        .expect("valid template"),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Noise standard deviations: a positive number for every observation, or a `.npy` of
/// per-observation stds of the observation's shape.
pub fn noise(spec: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let m: usize = shape.iter().product();
    let values = match spec.parse::<f64>() {
        Ok(v) => vec![v as f32; m],
        Err(_) => {
            let a = read_npy(Path::new(spec)).with_context(|| "--noise")?;
            if a.shape != shape {
                bail!(
                    "--noise {spec}: shape {:?} differs from the observations' {shape:?}",
                    a.shape
                );
            }
            a.data
        }
    };
    if let Some(bad) = values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        bail!("--noise {spec}: standard deviations must be positive and finite (found {bad})");
    }
    Ok(values)
}
