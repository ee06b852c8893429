//! PNG figures for data-assimilation results, drawn in pure Rust.
//!
//! Three kinds of figure:
//! - [`trajectories`]: one panel per state coordinate, stacked vertically over a shared
//!   "state index" axis, with posterior samples, an optional reference ensemble (e.g. a particle
//!   filter's trajectories), an optional ground truth and the observations;
//! - [`panels`]: a grid of line charts with markers, one [`Series`] per line, for metric sweeps
//!   such as the paper's Figure 3 (rows = scenarios, columns = metrics, x = number of
//!   corrections, one series per Markov order `k`, the particle filter as a dashed line);
//! - [`vorticity_grid`] and [`vorticity_gif`]: 2-D vorticity fields (of the Kolmogorov flow,
//!   docs/method.md §8) as pixel-exact images in the paper's diverging "icefire" colours, a grid of
//!   samples × states with a colour bar and faded unobserved cells, or an animation of one
//!   trajectory (the reference code's `draw` and `save_gif`).
//!
//! Figures are rendered with `plotters`' bitmap backend. Text uses the DejaVu Sans font embedded
//! in the binary (from the `dejavu` crate), so no system font or C library is needed: tick labels
//! go through `plotters`, and titles, axis descriptions and legends are rasterised here with
//! `ab_glyph` (which places glyphs with their side bearings, unlike `plotters` 0.3's own
//! `ab_glyph` path, where words such as "particle" come out as "partide"). Legends go in the
//! corner of the plot that hides the fewest data.
//!
//! Files are written to a temporary file beside the target and then renamed, so a failure never
//! leaves half a file. The output is always PNG (GIF for [`vorticity_gif`]), whatever the
//! extension of `path`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::temp_path;
use text::register_font;

mod chart;
mod field;
mod gif;
mod text;

pub use chart::{
    MAX_DRAWN, Observations, PALETTE, PANEL_HEIGHT, PANEL_WIDTH, Panel, Series,
    TRAJECTORY_PANEL_HEIGHT, TRAJECTORY_WIDTH, coordinate_labels, panels, trajectories,
    trajectories_png,
};
pub use field::{
    FieldStyle, VORTICITY_VMAX, icefire, vorticity_color, vorticity_grid, vorticity_grid_stations,
};
pub use gif::vorticity_gif;

const TICK_SIZE: u32 = 15;
const LEGEND_SIZE: f32 = 15.0;

/// The whole image, in pixel coordinates.
type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A tick label: integers without decimals, other values to six significant digits, very
/// large or small ones in scientific notation.
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let magnitude = v.abs().log10().floor();
    if !(-3.0..5.0).contains(&magnitude) {
        let text = format!("{v:.1e}");
        return text.replace(".0e", "e");
    }
    let unit = 10f64.powf(magnitude - 5.0);
    let rounded = (v / unit).round() * unit;
    let text = format!("{rounded:.*}", (5.0 - magnitude).max(0.0) as usize);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Draws a white `size` canvas with `draw` into a temporary PNG beside `path`, then renames it
/// to `path`; on failure the temporary file is removed.
fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&Canvas) -> Result<(), String>,
{
    let fail = |msg: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(msg),
    };
    register_font().map_err(fail)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    // The bitmap backend picks the image format from the extension.
    let mut name = OsString::from(temp_path(path).as_os_str());
    name.push(".png");
    let tmp = PathBuf::from(name);
    let result = (|| {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(text)?;
        draw(&root)?;
        root.present().map_err(text)
    })();
    let result = result.map_err(fail).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp); // best effort: the error is what matters
    }
    result
}

/// The figure as PNG bytes, drawn as [`render`] draws it into a file, in memory.
fn render_png<F>(size: (u32, u32), draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(&Canvas) -> Result<(), String>,
{
    let fail = |msg: String| Error::config("plot", msg);
    register_font().map_err(fail)?;
    let mut rgb = vec![0u8; 3 * size.0 as usize * size.1 as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(text).map_err(fail)?;
        draw(&root).map_err(fail)?;
        root.present().map_err(text).map_err(fail)?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, size.0, size.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&rgb))
        .map_err(|e| fail(e.to_string()))?;
    Ok(bytes)
}

/// A plotters error as text.
fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty folder for one test.
    pub(super) fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sda-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks the PNG magic and returns the (width, height) from the IHDR chunk.
    pub(super) fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() > 24, "{} is too short", path.display());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (width, height)
    }

    /// The folder holds exactly the given file names (no temporary file left).
    pub(super) fn only(dir: &Path, names: &[&str]) {
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, names);
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(16.0), "16");
        assert_eq!(tick(-12.5), "-12.5");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick(10000.0), "10000");
        assert_eq!(tick(2.5e5), "2.5e5");
        assert_eq!(tick(5e-4), "5e-4");
        assert_eq!(tick(0.00123456789), "0.00123457");
    }

    #[test]
    fn unwritable_path_leaves_no_temporary_file() {
        let dir = folder("unwritable");
        // A folder where the file should be: the rename fails.
        let path = dir.join("taken.png");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        assert!(matches!(
            panels(&path, 1, 1, &[Panel::default()]),
            Err(Error::Io { .. })
        ));
        only(&dir, &["taken.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
