//! Helpers shared by the subcommands: devices, progress bars, noise levels.

use std::path::{Path, PathBuf};

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
        #[cfg(any(feature = "vulkan", feature = "wgpu"))]
        "vulkan" => vulkan(spec, index),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(index.unwrap_or(0))),
        #[cfg(not(any(feature = "vulkan", feature = "wgpu")))]
        "vulkan" => missing(spec, name, index),
        #[cfg(not(feature = "cuda"))]
        "cuda" => missing(spec, name, index),
        other => bail!("--device {other}: unknown device (cpu, vulkan[:N], cuda[:N])"),
    }
}

/// A Vulkan device, brought up now so that a machine without one gets a one-line error rather
/// than a panic at the first tensor. The `vulkan` feature compiles kernels to SPIR-V; the `wgpu`
/// feature (without `vulkan`) to WGSL, which wgpu translates for the Vulkan driver. The device
/// of each spec is brought up once per process and reused.
#[cfg(any(feature = "vulkan", feature = "wgpu"))]
fn vulkan(spec: &str, index: Option<usize>) -> Result<Device> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use burn::tensor::wgpu::WgpuBackend;
    static UP: OnceLock<Mutex<HashMap<String, Device>>> = OnceLock::new();
    let mut up = UP
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(d) = up.get(spec) {
        return Ok(d.clone());
    }
    let kind = match index {
        Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
        None => Default::default(),
    };
    // wgpu, the Vulkan loader and the driver may panic rather than fail: a panic here is an
    // error too, with the default hook silenced so that no backtrace is printed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Device::wgpu_options()
            .graphics_api(WgpuBackend::Vulkan)
            .device_kind(kind)
            .init()
    }));
    std::panic::set_hook(hook);
    let device = match result {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            let e = e.to_string();
            bail!(
                "--device {spec}: no Vulkan device could be opened ({})",
                e.lines().next().unwrap_or("")
            )
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the driver failed");
            bail!(
                "--device {spec}: no Vulkan device could be opened ({})",
                why.lines().next().unwrap_or("")
            )
        }
    };
    up.insert(spec.to_string(), device.clone());
    Ok(device)
}

/// The error for a GPU device whose cargo feature this binary lacks.
#[cfg(not(all(any(feature = "vulkan", feature = "wgpu"), feature = "cuda")))]
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
    #[cfg(any(feature = "vulkan", feature = "wgpu", feature = "cuda"))]
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

/// CPU seconds used by the process so far (all threads); wall-clock seconds where unavailable.
pub fn process_cpu() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + 1e-9 * ts.tv_nsec as f64;
        }
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

/// A file given as the first argument or, in its spelling before that, as a hidden flag (clap
/// requires one of the two).
pub fn first_or_flag<'a>(positional: &'a Option<PathBuf>, flag: &'a Option<PathBuf>) -> &'a Path {
    positional
        .as_deref()
        .or(flag.as_deref())
        .expect("clap requires one")
}
