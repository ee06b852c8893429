//! `sda plot vorticity`: a grid of vorticity fields (samples by states) and a GIF.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sda::field::vorticities;
use sda::io::{Array, read_npy};
use sda::plot::{FieldStyle, VORTICITY_VMAX, vorticity_gif, vorticity_grid_stations};

#[derive(clap::Args)]
pub struct VortArgs {
    /// Velocity fields, (N, L, 2, H, W): channels (u, v), first spatial axis x.
    pub fields: PathBuf,
    /// Output PNG (default: the fields' path with .png).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// How many samples (rows) to draw, the first ones of the file.
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// The states (columns) to draw, comma-separated, e.g. 0,8,16 (default: up to 8 evenly
    /// spaced, the first and the last included).
    #[arg(long, value_delimiter = ',')]
    pub states: Option<Vec<usize>>,
    /// True trajectories, (M, L', 2, H, W), drawn as the first row labelled "truth"
    /// (`--reference` before: that name is a set of reference samples elsewhere).
    #[arg(long = "truth", alias = "reference")]
    pub reference: Option<PathBuf>,
    /// Which trajectory of --truth is drawn.
    #[arg(
        long = "truth-index",
        alias = "reference-index",
        default_value_t = 0,
        requires = "reference"
    )]
    pub reference_index: usize,
    /// Colour limits ±vmax of the vorticity, in grid units (centred differences, one cell = 1).
    #[arg(long, default_value_t = VORTICITY_VMAX)]
    pub vmax: f32,
    /// Pixels per grid cell.
    #[arg(long, default_value_t = 3)]
    pub scale: u32,
    /// Observed cells, (H, W) for every state or (L, H, W) per state (bool or float, non-zero =
    /// observed); unobserved cells are faded to grey (`--mask` before: that name is the values
    /// scored in `evaluate`).
    #[arg(long = "observed", alias = "mask")]
    pub mask: Option<PathBuf>,
    /// Station markers: a .npy of flat indices within a state (the file of a `points:` term;
    /// `c·H·W + i·W + j`), each grid cell (i, j) drawn white in a black frame (`--stations`
    /// before: that name is a count in `observe`).
    #[arg(long = "points", alias = "stations")]
    pub stations: Option<PathBuf>,
    /// Also write an animated GIF of the first sample, every state.
    #[arg(long)]
    pub gif: Option<PathBuf>,
    /// Milliseconds between GIF frames.
    #[arg(long, default_value_t = 200)]
    pub delay: u32,
}

pub(super) fn run_vorticity(a: VortArgs) -> Result<()> {
    let style = FieldStyle {
        vmax: a.vmax,
        scale: a.scale,
    };
    style.check()?;
    let x = read_fields(&a.fields, "fields")?;
    let [n, l, _, h, w] = x.shape[..] else {
        unreachable!("read_fields checks the rank")
    };
    if a.samples == 0 {
        bail!("--samples: must be at least 1");
    }
    let samples = a.samples.min(n);
    let states = states_of(&a, l)?;
    let size = 2 * h * w;
    let pick = |data: &[f32], length: usize, trajectory: usize| -> Vec<f32> {
        states
            .iter()
            .flat_map(|&s| &data[(trajectory * length + s) * size..][..size])
            .copied()
            .collect()
    };

    // Rows: the truth, then the samples; each row the chosen states' (u, v).
    let mut rows = Vec::new();
    let mut row_labels = Vec::new();
    if let Some((r, lr)) = reference(&a, &states, h, w)? {
        rows.extend(pick(&r.data, lr, a.reference_index));
        row_labels.push("truth".to_string());
    }
    for i in 0..samples {
        rows.extend(pick(&x.data, l, i));
        row_labels.push(format!("sample {i}"));
    }
    let omega = Array::new(
        vec![row_labels.len(), states.len(), h, w],
        vorticities(&rows, h, w),
    );

    let masks = a
        .mask
        .as_ref()
        .map(|path| columns_of_mask(path, &states, l, h, w))
        .transpose()?;
    let wide = w * a.scale as usize >= 64;
    let column_labels: Vec<String> = states
        .iter()
        .map(|s| {
            if wide {
                format!("state {s}")
            } else {
                s.to_string()
            }
        })
        .collect();
    let gif_frames = a.gif.as_ref().map(|_| {
        let first = &x.data[..l * size];
        Array::new(vec![l, h, w], vorticities(first, h, w))
    });

    let out = a.output.unwrap_or_else(|| a.fields.with_extension("png"));
    let stations = stations(a.stations.as_deref(), size, h, w)?;
    vorticity_grid_stations(
        &out,
        &omega,
        masks.as_ref(),
        &row_labels,
        &column_labels,
        &style,
        &stations,
    )
    .context("--output")?;
    println!("→ {}", out.display());
    if let (Some(path), Some(frames)) = (&a.gif, gif_frames) {
        vorticity_gif(path, &frames, &style, a.delay).context("--gif")?;
        println!("→ {}", path.display());
    }
    Ok(())
}

/// The states (columns) to draw: --states, checked against the fields' `l`, or up to 8 evenly
/// spaced.
fn states_of(a: &VortArgs, l: usize) -> Result<Vec<usize>> {
    let states = match &a.states {
        Some(states) => {
            if let Some(&s) = states.iter().find(|&&s| s >= l) {
                bail!(
                    "--states: state {s} is out of range for {} with {l} states",
                    a.fields.display()
                );
            }
            states.clone()
        }
        None => spread(l, 8),
    };
    if states.is_empty() {
        bail!("--states: no state given");
    }
    Ok(states)
}

/// The fields of --reference (with their states per trajectory), checked against the samples'
/// grid of `h` × `w`, --reference-index and the states drawn.
fn reference(a: &VortArgs, states: &[usize], h: usize, w: usize) -> Result<Option<(Array, usize)>> {
    let Some(path) = &a.reference else {
        return Ok(None);
    };
    let r = read_fields(path, "--truth")?;
    let [m, lr, _, hr, wr] = r.shape[..] else {
        unreachable!("read_fields checks the rank")
    };
    if (hr, wr) != (h, w) {
        bail!(
            "--truth {}: fields of {hr} x {wr}, the samples' are {h} x {w}",
            path.display()
        );
    }
    if a.reference_index >= m {
        bail!(
            "--truth-index: {} is out of range for {} with {m} trajectories",
            a.reference_index,
            path.display()
        );
    }
    if let Some(&s) = states.iter().find(|&&s| s >= lr) {
        bail!(
            "--truth {}: state {s} is out of range for {lr} states",
            path.display()
        );
    }
    Ok(Some((r, lr)))
}

/// The grid cells of --points (flat indices within a state of `size` values on `h` × `w`).
fn stations(path: Option<&Path>, size: usize, h: usize, w: usize) -> Result<Vec<usize>> {
    Ok(match path {
        None => Vec::new(),
        Some(path) => {
            let p = read_npy(path).with_context(|| "--points")?;
            let mut cells = Vec::with_capacity(p.data.len());
            for &v in &p.data {
                if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < size) {
                    bail!(
                        "--points {}: {v} is not a flat index of a state of {size} values",
                        path.display()
                    );
                }
                cells.push(v as usize % (h * w));
            }
            cells
        }
    })
}

/// Reads velocity fields, checking that they are (N, L, 2, H, W) and not empty.
fn read_fields(path: &Path, what: &str) -> Result<Array> {
    let x = read_npy(path).with_context(|| what.to_string())?;
    match x.shape[..] {
        [n, l, 2, h, w] if n * l * h * w > 0 => Ok(x),
        _ => bail!(
            "{what} {}: expected velocity fields (N, L, 2, H, W), got {:?}",
            path.display(),
            x.shape
        ),
    }
}

/// Up to `k` of `0..l`, evenly spaced, the first and the last included.
fn spread(l: usize, k: usize) -> Vec<usize> {
    if l <= k {
        return (0..l).collect();
    }
    let mut states: Vec<usize> = (0..k).map(|i| i * (l - 1) / (k - 1)).collect();
    states.dedup();
    states
}

/// The mask of each drawn state, (C, H, W), from a mask file of (H, W) or (L, H, W).
fn columns_of_mask(path: &Path, states: &[usize], l: usize, h: usize, w: usize) -> Result<Array> {
    let m = read_mask(path).context("--observed")?;
    let data = match m.shape[..] {
        [mh, mw] if (mh, mw) == (h, w) => {
            states.iter().flat_map(|_| m.data.iter()).copied().collect()
        }
        [ml, mh, mw] if (ml, mh, mw) == (l, h, w) => states
            .iter()
            .flat_map(|&s| &m.data[s * h * w..][..h * w])
            .copied()
            .collect(),
        _ => bail!(
            "--observed {}: expected ({h}, {w}) or ({l}, {h}, {w}) to match the fields, got {:?}",
            path.display(),
            m.shape
        ),
    };
    Ok(Array::new(vec![states.len(), h, w], data))
}

/// Reads a mask `.npy`: float32/float64 through [`read_npy`], or one byte per value (numpy's
/// `bool`, `uint8` or `int8`), non-zero = observed.
fn read_mask(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let Some((descr, shape, body)) = npy_header(&bytes) else {
        return Ok(read_npy(path)?);
    };
    if !["|b1", "|u1", "|i1"].contains(&descr.as_str()) {
        return Ok(read_npy(path)?);
    }
    let count: usize = shape.iter().product();
    if body.len() != count {
        bail!(
            "{}: holds {} bytes of data, shape {shape:?} needs {count}",
            path.display(),
            body.len()
        );
    }
    let data = body.iter().map(|&b| f32::from(u8::from(b != 0))).collect();
    Ok(Array::new(shape, data))
}

/// The dtype, shape and data of a C-ordered `.npy` file, or `None` when it is not one that
/// this simple reader understands (then [`read_npy`] reports why).
fn npy_header(bytes: &[u8]) -> Option<(String, Vec<usize>, &[u8])> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return None;
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(bytes.get(start..start + len)?).ok()?;
    let value = |key: &str| {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[at..].trim_start_matches([' ', ':']))
    };
    if !value("fortran_order")?.starts_with("False") {
        return None;
    }
    let descr = value("descr")?.strip_prefix('\'')?.split('\'').next()?;
    let shape = value("shape")?.strip_prefix('(')?.split(')').next()?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    Some((descr.to_string(), shape, &bytes[start + len..]))
}
