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
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::io::{Array, temp_path};
use crate::score::operator::{Operator, Term};

/// Width in pixels of a [`trajectories`] figure.
pub const TRAJECTORY_WIDTH: u32 = 1200;
/// Height in pixels of each coordinate's panel in a [`trajectories`] figure.
pub const TRAJECTORY_PANEL_HEIGHT: u32 = 300;
/// Width in pixels of each cell of a [`panels`] grid.
pub const PANEL_WIDTH: u32 = 500;
/// Height in pixels of each cell of a [`panels`] grid.
pub const PANEL_HEIGHT: u32 = 400;
/// At most this many sample (and reference) trajectories are drawn; larger sets are thinned
/// evenly.
pub const MAX_DRAWN: usize = 64;

/// A qualitative palette (matplotlib's "tab10"); [`Series::color`] indexes it modulo its length.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

const SAMPLE_COLOR: RGBColor = RGBColor(31, 119, 180);
const REFERENCE_COLOR: RGBColor = RGBColor(255, 127, 14);
const ENSEMBLE_ALPHA: f64 = 0.25;
/// Pixels below a plot for tick labels and the x axis description.
const X_AREA: i32 = 50;
/// Pixels left of a plot for tick labels and the y axis description.
const Y_AREA: i32 = 80;
/// Pixels above a grid panel for its title.
const TITLE_AREA: i32 = 32;
const TICK_SIZE: u32 = 15;
const DESC_SIZE: f32 = 18.0;
const LEGEND_SIZE: f32 = 15.0;
const TITLE_SIZE: f32 = 20.0;

/// The whole image, in pixel coordinates.
type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Observations to overlay on a [`trajectories`] figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Observations {
    /// For each row of `values`, the index of the observed state.
    pub times: Vec<usize>,
    /// For each column of `values`, the state coordinate it observes, or `None` when the column
    /// is not a plain coordinate (e.g. a nonlinear function of the state), which is not drawn.
    pub channels: Vec<Option<usize>>,
    /// The observed values, `(M, K)` with `M = times.len()` and `K = channels.len()`, in
    /// physical units.
    pub values: Array,
}

impl Observations {
    /// The observations `values` made by `operator` on trajectories of `length` states of
    /// dimension `dim`: the observed state of each row, and the coordinate of each column (that
    /// of the last `select` term, every coordinate without one).
    pub fn for_operator(
        operator: &Operator,
        values: Array,
        length: usize,
        dim: usize,
    ) -> Result<Self> {
        let expected = operator.output_shape(length, &[dim])?;
        if values.shape != expected {
            return Err(Error::Shape {
                what: "observations".into(),
                expected: format!("{expected:?} for '{}' on {length} states", operator.spec()),
                got: values.shape,
            });
        }
        let channels = match operator.terms().iter().rev().find_map(|t| match t {
            Term::Select(idx) => Some(idx.clone()),
            _ => None,
        }) {
            Some(idx) => idx.into_iter().map(Some).collect(),
            None => (0..dim).map(Some).collect(),
        };
        Ok(Self {
            times: operator.times(length)?,
            channels,
            values,
        })
    }
}

/// The axis labels of [`trajectories`] for states of dimension `dim`: `x, y, z` for three
/// coordinates (Lorenz-63), `x0, x1, …` otherwise.
pub fn coordinate_labels(dim: usize) -> Vec<String> {
    if dim == 3 {
        ["x", "y", "z"].map(String::from).to_vec()
    } else {
        (0..dim).map(|i| format!("x{i}")).collect()
    }
}

/// One line of a [`Panel`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend entry; an empty label gives no entry.
    pub label: String,
    /// The `(x, y)` points, in drawing order. Points with a non-finite coordinate (or a
    /// non-positive one on a log axis) are skipped and break the line.
    pub points: Vec<(f64, f64)>,
    /// Draw as a dashed line without markers. A dashed series with a single point is a
    /// horizontal line at its `y` across the whole panel (a reference level).
    pub dashed: bool,
    /// Index into [`PALETTE`] (taken modulo its length).
    pub color: usize,
}

/// One chart of a [`panels`] grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Panel {
    /// The title above the chart.
    pub title: String,
    /// The x axis description.
    pub x_label: String,
    /// The y axis description.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic x axis (points with `x <= 0` are skipped).
    pub log_x: bool,
    /// Logarithmic y axis (points with `y <= 0` are skipped).
    pub log_y: bool,
}

/// Draws one panel per state coordinate, stacked vertically, to the PNG file `path`.
///
/// `samples` is `(N, L, D)` in physical units; `reference` and `truth` are `(N', L', D)` (a
/// single trajectory may also be given as `(L', D)`). At most [`MAX_DRAWN`] samples and as many
/// reference trajectories are drawn, as thin semi-transparent lines (blue and orange); each
/// truth trajectory is a black line and the observations of plain coordinates are black
/// crosses. Panel `d`'s y axis is labelled `labels[d]`, or `x_d` where `labels` is too short.
/// The legend is in the first panel. The figure is [`TRAJECTORY_WIDTH`] ×
/// `D ·` [`TRAJECTORY_PANEL_HEIGHT`] pixels.
///
/// Fails with [`Error::Shape`] on arrays of the wrong rank or dimension, [`Error::Config`] on
/// observations that do not fit, and [`Error::Io`] when the file cannot be drawn or written.
/// Non-finite values are skipped (and break lines).
pub fn trajectories(
    path: &Path,
    samples: &Array,
    reference: Option<&Array>,
    truth: Option<&Array>,
    observations: Option<&Observations>,
    labels: &[String],
) -> Result<()> {
    let samples = Trajectories::new("samples", samples, None)?;
    let dim = samples.dim;
    if dim == 0 {
        return Err(Error::Shape {
            what: "samples".into(),
            expected: "(N, L, D) with D >= 1".into(),
            got: vec![samples.count, samples.length, 0],
        });
    }
    let reference = reference
        .map(|a| Trajectories::new("reference", a, Some(dim)))
        .transpose()?;
    let truth = truth
        .map(|a| Trajectories::new("truth", a, Some(dim)))
        .transpose()?;
    if let Some(obs) = observations {
        check_observations(obs, dim)?;
    }

    // The shared x range: every state index and every observation time.
    let mut x_max = [Some(&samples), reference.as_ref(), truth.as_ref()]
        .into_iter()
        .flatten()
        .map(|t| t.length.saturating_sub(1) as f64)
        .fold(0.0, f64::max);
    if let Some(obs) = observations {
        x_max = obs.times.iter().map(|&t| t as f64).fold(x_max, f64::max);
    }
    let x_range = if x_max > 0.0 { 0.0..x_max } else { -0.5..0.5 };

    let drawn = thin(samples.count);
    let drawn_reference = reference
        .as_ref()
        .map(|r| thin(r.count))
        .unwrap_or_default();
    let height = u32::try_from(dim)
        .ok()
        .and_then(|d| d.checked_mul(TRAJECTORY_PANEL_HEIGHT))
        .ok_or_else(|| Error::config("plot", format!("too many coordinates ({dim})")))?;

    // The legend, shown in the first panel.
    let thinned = |drawn: usize, all: usize| {
        if drawn < all {
            format!(" ({drawn} of {all})")
        } else {
            String::new()
        }
    };
    let mut entries = vec![Entry {
        label: format!("samples{}", thinned(drawn.len(), samples.count)),
        key: Key::Line(SAMPLE_COLOR.mix(0.8), 2),
    }];
    if let Some(r) = &reference {
        entries.push(Entry {
            label: format!("reference{}", thinned(drawn_reference.len(), r.count)),
            key: Key::Line(REFERENCE_COLOR.mix(0.8), 2),
        });
    }
    if truth.is_some() {
        entries.push(Entry {
            label: "truth".into(),
            key: Key::Line(BLACK.mix(1.0), 2),
        });
    }
    if observations.is_some_and(|o| o.channels.iter().any(Option::is_some)) {
        entries.push(Entry {
            label: "observations".into(),
            key: Key::Cross,
        });
    }

    render(path, (TRAJECTORY_WIDTH, height), |root| {
        let areas = root.split_evenly((dim, 1));
        for (d, area) in areas.iter().enumerate() {
            // What this panel draws, split at non-finite values.
            let mut reference_lines = Vec::new();
            if let Some(r) = &reference {
                for &n in &drawn_reference {
                    reference_lines.extend(segments(r.coordinate(n, d)));
                }
            }
            let mut sample_lines = Vec::new();
            for &n in &drawn {
                sample_lines.extend(segments(samples.coordinate(n, d)));
            }
            let mut truth_lines = Vec::new();
            if let Some(t) = &truth {
                for n in 0..t.count {
                    truth_lines.extend(segments(t.coordinate(n, d)));
                }
            }
            let crosses = observations.map(|obs| observed(obs, d)).unwrap_or_default();

            let mut range = Extent::default();
            for line in [&reference_lines, &sample_lines, &truth_lines]
                .into_iter()
                .flatten()
            {
                range.add_all(line.iter().map(|&(_, v)| v));
            }
            range.add_all(crosses.iter().map(|&(_, v)| v));
            let (y0, y1) = range.linear();

            let mut chart = ChartBuilder::on(area)
                .margin(10)
                .x_label_area_size(X_AREA)
                .y_label_area_size(Y_AREA)
                .build_cartesian_2d(x_range.clone(), y0..y1)
                .map_err(text)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", TICK_SIZE))
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(text)?;

            let ensembles = [
                (&reference_lines, REFERENCE_COLOR),
                (&sample_lines, SAMPLE_COLOR),
            ];
            for (lines, color) in ensembles {
                let style = color.mix(ENSEMBLE_ALPHA).stroke_width(1);
                for line in lines {
                    chart
                        .draw_series(LineSeries::new(line.iter().copied(), style))
                        .map_err(text)?;
                }
            }
            for line in &truth_lines {
                chart
                    .draw_series(LineSeries::new(line.iter().copied(), BLACK.stroke_width(2)))
                    .map_err(text)?;
            }
            chart
                .draw_series(
                    crosses
                        .iter()
                        .map(|&p| Cross::new(p, 5, BLACK.stroke_width(2))),
                )
                .map_err(text)?;

            let plot = chart.plotting_area().get_pixel_range();
            let label = labels
                .get(d)
                .filter(|l| !l.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("x_{d}"));
            axis_descriptions(root, &plot, (d + 1 == dim).then_some("state index"), &label)?;
            if d == 0 {
                let mut occupied = Vec::new();
                for line in [&reference_lines, &sample_lines, &truth_lines]
                    .into_iter()
                    .flatten()
                {
                    let pixels: Vec<_> = line.iter().map(|p| chart.backend_coord(p)).collect();
                    trace(&pixels, &mut occupied);
                }
                occupied.extend(crosses.iter().map(|p| chart.backend_coord(p)));
                legend(root, &plot, &entries, &occupied)?;
            }
        }
        Ok(())
    })
}

/// Draws a `rows × cols` grid of line charts to the PNG file `path`, filled row by row.
///
/// Each [`Series`] is a line in its palette colour with a marker at every point, or a dashed
/// line where [`Series::dashed`] (a single point making a horizontal line across the panel).
/// Each panel has a legend of its labelled series. Non-finite points are skipped; a panel with
/// no drawable point shows empty axes. Cells beyond `panels.len()` stay blank. The figure is
/// `cols ·` [`PANEL_WIDTH`] × `rows ·` [`PANEL_HEIGHT`] pixels.
///
/// Fails with [`Error::Config`] when `rows` or `cols` is 0 or the grid has fewer cells than
/// `panels`, and with [`Error::Io`] when the file cannot be drawn or written.
pub fn panels(path: &Path, rows: usize, cols: usize, panels: &[Panel]) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Err(Error::config(
            "plot",
            format!("a grid of {rows} x {cols} panels is empty"),
        ));
    }
    if rows.saturating_mul(cols) < panels.len() {
        return Err(Error::config(
            "plot",
            format!(
                "{} panels do not fit a grid of {rows} x {cols}",
                panels.len()
            ),
        ));
    }
    let side = |n: usize, px: u32| u32::try_from(n).ok().and_then(|n| n.checked_mul(px));
    let size = side(cols, PANEL_WIDTH)
        .zip(side(rows, PANEL_HEIGHT))
        .ok_or_else(|| Error::config("plot", format!("a grid of {rows} x {cols} is too large")))?;
    render(path, size, |root| {
        let areas = root.split_evenly((rows, cols));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_panel(root, area, panel)?;
        }
        Ok(())
    })
}

/// One panel of a grid: the title, then the chart on axes of the right kind.
fn draw_panel(root: &Canvas, area: &Canvas, panel: &Panel) -> Result<(), String> {
    let (title, area) = area.split_vertically(TITLE_AREA);
    let (xs, ys) = title.get_pixel_range();
    draw_text(
        root,
        &panel.title,
        ((xs.start + xs.end) / 2, (ys.start + ys.end) / 2 + 4),
        TITLE_SIZE,
        BLACK,
        (Anchor::Middle, Anchor::Middle),
        false,
    )?;

    let (mut xs, mut ys) = (Extent::default(), Extent::default());
    for series in &panel.series {
        let level = series.dashed && series.points.len() == 1;
        for &(x, y) in &series.points {
            if usable(x, panel.log_x) && usable(y, panel.log_y) {
                if !level {
                    xs.add(x);
                }
                ys.add(y);
            }
        }
    }
    let (x0, x1) = if panel.log_x { xs.log() } else { xs.linear() };
    let (y0, y1) = if panel.log_y { ys.log() } else { ys.linear() };
    match (panel.log_x, panel.log_y) {
        (false, false) => draw_chart(root, &area, panel, x0..x1, y0..y1),
        (true, false) => draw_chart(root, &area, panel, (x0..x1).log_scale(), y0..y1),
        (false, true) => draw_chart(root, &area, panel, x0..x1, (y0..y1).log_scale()),
        (true, true) => draw_chart(
            root,
            &area,
            panel,
            (x0..x1).log_scale(),
            (y0..y1).log_scale(),
        ),
    }
}

/// Whether a coordinate can be drawn on a linear (or log) axis.
fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

/// Draws one chart of a grid on the given axes.
fn draw_chart<X, Y>(root: &Canvas, area: &Canvas, panel: &Panel, x: X, y: Y) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_top(0)
        .x_label_area_size(X_AREA)
        .y_label_area_size(Y_AREA)
        .build_cartesian_2d(x, y)
        .map_err(text)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", TICK_SIZE))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(text)?;

    let x_range = chart.x_range();
    let mut entries = Vec::new();
    let mut occupied = Vec::new();
    for series in &panel.series {
        let (r, g, b) = PALETTE[series.color % PALETTE.len()];
        let color = RGBColor(r, g, b);
        let points = series
            .points
            .iter()
            .map(|&(x, y)| (usable(x, panel.log_x) && usable(y, panel.log_y)).then_some((x, y)));
        let lines = match *series.points.as_slice() {
            [(_, y)] if series.dashed && usable(y, panel.log_y) => {
                vec![vec![(x_range.start, y), (x_range.end, y)]]
            }
            _ => split(points.clone()),
        };
        let style = color.stroke_width(2);
        for line in &lines {
            let pixels: Vec<_> = line.iter().map(|p| chart.backend_coord(p)).collect();
            trace(&pixels, &mut occupied);
            if series.dashed {
                chart
                    .draw_series(DashedLineSeries::new(line.iter().copied(), 8, 5, style))
                    .map_err(text)?;
            } else {
                chart
                    .draw_series(LineSeries::new(line.iter().copied(), style))
                    .map_err(text)?;
            }
        }
        if !series.dashed {
            chart
                .draw_series(points.flatten().map(|p| Circle::new(p, 4, color.filled())))
                .map_err(text)?;
        }
        if !series.label.is_empty() {
            entries.push(Entry {
                label: series.label.clone(),
                key: if series.dashed {
                    Key::Dashed(color)
                } else {
                    Key::Marker(color)
                },
            });
        }
    }
    let plot = chart.plotting_area().get_pixel_range();
    axis_descriptions(root, &plot, Some(&panel.x_label), &panel.y_label)?;
    legend(root, &plot, &entries, &occupied)
}

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

/// The x description centred under the plot (if any) and the y description, rotated, at the
/// left edge of the tick labels.
fn axis_descriptions(
    root: &Canvas,
    (xs, ys): &(Range<i32>, Range<i32>),
    x_label: Option<&str>,
    y_label: &str,
) -> Result<(), String> {
    if let Some(label) = x_label {
        draw_text(
            root,
            label,
            ((xs.start + xs.end) / 2, ys.end + X_AREA - 2),
            DESC_SIZE,
            BLACK,
            (Anchor::Middle, Anchor::End),
            false,
        )?;
    }
    draw_text(
        root,
        y_label,
        (xs.start - Y_AREA + 2, (ys.start + ys.end) / 2),
        DESC_SIZE,
        BLACK,
        (Anchor::Start, Anchor::Middle),
        true,
    )
}

/// How a legend entry is keyed.
#[derive(Clone, Copy, Debug)]
enum Key {
    /// A plain line of some colour and width.
    Line(RGBAColor, u32),
    /// A line with a round marker.
    Marker(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A black cross.
    Cross,
}

/// One legend row.
#[derive(Clone, Debug)]
struct Entry {
    label: String,
    key: Key,
}

/// Draws a legend box in the corner of the plot (pixel ranges `plot`) that covers the fewest
/// `occupied` pixels, preferring the upper right on ties.
fn legend(
    root: &Canvas,
    plot: &(Range<i32>, Range<i32>),
    entries: &[Entry],
    occupied: &[(i32, i32)],
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let (pad, key, gap, inset) = (7, 28, 7, 8);
    let row = (LEGEND_SIZE * 1.4).ceil() as i32;
    let mut text_width = 0.0f32;
    for entry in entries {
        text_width = text_width.max(layout(&entry.label, LEGEND_SIZE)?.1);
    }
    let width = 2 * pad + key + gap + text_width.ceil() as i32;
    let height = 2 * pad + row * entries.len() as i32;
    let (xs, ys) = plot;
    let corners = [
        (xs.end - inset - width, ys.start + inset),
        (xs.start + inset, ys.start + inset),
        (xs.end - inset - width, ys.end - inset - height),
        (xs.start + inset, ys.end - inset - height),
    ];
    let covered = |&(x, y): &(i32, i32)| {
        occupied
            .iter()
            .filter(|&&(a, b)| (x..x + width).contains(&a) && (y..y + height).contains(&b))
            .count()
    };
    let (x, y) = corners
        .into_iter()
        .min_by_key(covered)
        .expect("four corners");

    root.draw(&Rectangle::new(
        [(x, y), (x + width, y + height)],
        WHITE.mix(0.85).filled(),
    ))
    .map_err(text)?;
    root.draw(&Rectangle::new(
        [(x, y), (x + width, y + height)],
        BLACK.mix(0.4).stroke_width(1),
    ))
    .map_err(text)?;
    for (i, entry) in entries.iter().enumerate() {
        let cy = y + pad + row * i as i32 + row / 2;
        let (k0, k1) = (x + pad, x + pad + key);
        let line = vec![(k0, cy), (k1, cy)];
        match entry.key {
            Key::Line(color, width) => root
                .draw(&PathElement::new(line, color.stroke_width(width)))
                .map_err(text)?,
            Key::Marker(color) => {
                root.draw(&PathElement::new(line, color.stroke_width(2)))
                    .map_err(text)?;
                root.draw(&Circle::new(((k0 + k1) / 2, cy), 4, color.filled()))
                    .map_err(text)?;
            }
            Key::Dashed(color) => root
                .draw(&DashedPathElement::new(line, 6, 4, color.stroke_width(2)))
                .map_err(text)?,
            Key::Cross => root
                .draw(&Cross::new(((k0 + k1) / 2, cy), 5, BLACK.stroke_width(2)))
                .map_err(text)?,
        }
        draw_text(
            root,
            &entry.label,
            (k1 + gap, cy),
            LEGEND_SIZE,
            BLACK,
            (Anchor::Start, Anchor::Middle),
            false,
        )?;
    }
    Ok(())
}

/// Appends the pixels of a polyline, one every few pixels, to `out`.
fn trace(pixels: &[(i32, i32)], out: &mut Vec<(i32, i32)>) {
    out.extend(pixels.first());
    for pair in pixels.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) / 4).clamp(1, 10_000);
        out.extend((1..=steps).map(|s| (x0 + (x1 - x0) * s / steps, y0 + (y1 - y0) * s / steps)));
    }
}

/// Where a text's anchor point sits on its box, along one axis.
#[derive(Clone, Copy, Debug)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn fraction(self) -> f32 {
        match self {
            Anchor::Start => 0.0,
            Anchor::Middle => 0.5,
            Anchor::End => 1.0,
        }
    }
}

/// The embedded font, parsed once.
fn font() -> Result<&'static FontRef<'static>, String> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).ok())
        .as_ref()
        .ok_or_else(|| "the embedded DejaVu Sans font is invalid".to_string())
}

/// Lays out one line of text at `size` pixels: the glyphs (positioned in a box whose top-left
/// corner is the origin), the box's width and its height.
fn layout(text: &str, size: f32) -> Result<(Vec<Glyph>, f32, f32), String> {
    let font = font()?;
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let mut pen = 0.0;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(previous) = previous {
            pen += scaled.kern(previous, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(pen, scaled.ascent())));
        pen += scaled.h_advance(id);
        previous = Some(id);
    }
    Ok((glyphs, pen, scaled.ascent() - scaled.descent()))
}

/// Draws one line of text whose box is anchored at pixel `at` of `root` by `align`
/// (horizontal, vertical); `vertical` rotates it a quarter turn anticlockwise (reading upwards).
fn draw_text(
    root: &Canvas,
    text: &str,
    at: (i32, i32),
    size: f32,
    color: RGBColor,
    align: (Anchor, Anchor),
    vertical: bool,
) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    let font = font()?;
    let (glyphs, width, height) = layout(text, size)?;
    let (box_w, box_h) = if vertical {
        (height, width)
    } else {
        (width, height)
    };
    let left = (at.0 as f32 - align.0.fraction() * box_w).round() as i32;
    let top = (at.1 as f32 - align.1.fraction() * box_h).round() as i32;
    let length = width.round() as i32;
    for glyph in glyphs {
        let Some(outline) = font.outline_glyph(glyph) else {
            continue; // blank glyphs (spaces)
        };
        let bounds = outline.px_bounds();
        let mut failure = None;
        outline.draw(|gx, gy, coverage| {
            if coverage <= 0.0 || failure.is_some() {
                return;
            }
            let u = bounds.min.x as i32 + gx as i32;
            let v = bounds.min.y as i32 + gy as i32;
            let pixel = if vertical {
                (left + v, top + length - u)
            } else {
                (left + u, top + v)
            };
            if let Err(e) = root.draw_pixel(pixel, &color.mix(coverage.min(1.0) as f64)) {
                failure = Some(e.to_string());
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(())
}

/// Registers the embedded font with `plotters` once (it draws the tick labels), under the family
/// name it uses for sans-serif text.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())
        })
        .clone()
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

/// A plotters error as text.
fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// A set of trajectories `(N, L, D)` viewed per coordinate.
struct Trajectories<'a> {
    data: &'a [f32],
    count: usize,
    length: usize,
    dim: usize,
}

impl<'a> Trajectories<'a> {
    /// Checks the rank (3, or 2 for one trajectory) and, where given, the dimension.
    fn new(what: &str, array: &'a Array, dim: Option<usize>) -> Result<Self> {
        let shape = match *array.shape.as_slice() {
            [n, l, d] => Some((n, l, d)),
            [l, d] if dim.is_some() => Some((1, l, d)),
            _ => None,
        };
        let Some((count, length, d)) = shape.filter(|&(_, _, d)| dim.is_none_or(|dim| dim == d))
        else {
            return Err(Error::Shape {
                what: what.into(),
                expected: match dim {
                    Some(dim) => format!("(N, L, {dim}) or (L, {dim})"),
                    None => "(N, L, D)".into(),
                },
                got: array.shape.clone(),
            });
        };
        Ok(Self {
            data: &array.data,
            count,
            length,
            dim: d,
        })
    }

    /// Coordinate `d` of trajectory `n` as `(state index, value)` points.
    fn coordinate(&self, n: usize, d: usize) -> impl Iterator<Item = (f64, f64)> + Clone + '_ {
        let base = n * self.length * self.dim;
        (0..self.length).map(move |i| (i as f64, self.data[base + i * self.dim + d] as f64))
    }
}

/// Checks that observations fit states of dimension `dim`.
fn check_observations(obs: &Observations, dim: usize) -> Result<()> {
    let (m, k) = (obs.times.len(), obs.channels.len());
    if obs.values.shape != [m, k] {
        return Err(Error::Shape {
            what: "observations".into(),
            expected: format!("({m}, {k}) from {m} times and {k} channels"),
            got: obs.values.shape.clone(),
        });
    }
    if let Some(c) = obs.channels.iter().flatten().find(|&&c| c >= dim) {
        return Err(Error::config(
            "observations",
            format!("channel {c} is not a coordinate of a state of dimension {dim}"),
        ));
    }
    Ok(())
}

/// The finite observations of coordinate `d`, as `(state index, value)`.
fn observed(obs: &Observations, d: usize) -> Vec<(f64, f64)> {
    let k = obs.channels.len();
    let mut points = Vec::new();
    for (j, _) in obs
        .channels
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == Some(d))
    {
        for (r, &t) in obs.times.iter().enumerate() {
            let v = obs.values.data[r * k + j] as f64;
            if v.is_finite() {
                points.push((t as f64, v));
            }
        }
    }
    points
}

/// The indices drawn out of `n` trajectories: all, or [`MAX_DRAWN`] evenly spread.
fn thin(n: usize) -> Vec<usize> {
    if n <= MAX_DRAWN {
        (0..n).collect()
    } else {
        (0..MAX_DRAWN).map(|i| i * n / MAX_DRAWN).collect()
    }
}

/// Splits a polyline at its non-finite points.
fn segments(points: impl Iterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    split(points.map(|(x, y)| (x.is_finite() && y.is_finite()).then_some((x, y))))
}

/// Splits a polyline at its missing points (`None`), dropping empty pieces.
fn split(points: impl Iterator<Item = Option<(f64, f64)>>) -> Vec<Vec<(f64, f64)>> {
    let mut lines = vec![Vec::new()];
    for point in points {
        match point {
            Some(p) => lines.last_mut().expect("never empty").push(p),
            None if !lines.last().expect("never empty").is_empty() => lines.push(Vec::new()),
            None => {}
        }
    }
    lines.retain(|l| !l.is_empty());
    lines
}

/// The extent of a set of values, ignoring non-finite ones.
#[derive(Clone, Copy, Debug, Default)]
struct Extent {
    bounds: Option<(f64, f64)>,
}

impl Extent {
    fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.bounds = Some(match self.bounds {
                Some((lo, hi)) => (lo.min(v), hi.max(v)),
                None => (v, v),
            });
        }
    }

    fn add_all(&mut self, values: impl IntoIterator<Item = f64>) {
        values.into_iter().for_each(|v| self.add(v));
    }

    /// A linear axis range with 5% padding; `(0, 1)` when empty.
    fn linear(self) -> (f64, f64) {
        match self.bounds {
            None => (0.0, 1.0),
            Some((lo, hi)) if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) => {
                let pad = (lo.abs() * 0.1).max(1.0);
                (lo - pad, hi + pad)
            }
            Some((lo, hi)) => {
                let pad = 0.05 * (hi - lo);
                (lo - pad, hi + pad)
            }
        }
    }

    /// A logarithmic axis range (positive values only) with 5% padding in log space;
    /// `(1, 10)` when empty.
    fn log(self) -> (f64, f64) {
        match self.bounds.filter(|&(lo, _)| lo > 0.0) {
            None => (1.0, 10.0),
            Some((lo, hi)) if hi / lo < 1.0 + 1e-9 => (lo / 2.0, hi * 2.0),
            Some((lo, hi)) => {
                let pad = (hi / lo).powf(0.05);
                (lo / pad, hi * pad)
            }
        }
    }
}

// Pictures of 2-D fields

/// The default colour limit `±VORTICITY_VMAX` of [`FieldStyle`], in grid units: the reference's
/// `vorticity2rgb` default for 64² Kolmogorov fields, whose vorticity mostly lies within ±1.
pub const VORTICITY_VMAX: f32 = 1.25;

/// Pixels between the cells of a [`vorticity_grid`].
const CELL_GAP: i32 = 4;
/// Pixels around a [`vorticity_grid`].
const FIELD_MARGIN: i32 = 14;
/// Width in pixels of a [`vorticity_grid`]'s colour bar.
const BAR_WIDTH: i32 = 12;
/// Unobserved pixels are mixed this much with [`MASK_GREY`] (the reference paints them grey).
const MASK_FADE: f32 = 0.75;
const MASK_GREY: f32 = 240.0;
/// The colour of non-finite values.
const NAN_COLOR: (u8, u8, u8) = (128, 128, 128);

/// seaborn's "icefire" colour map, sampled at every 16th of its 256 entries (and the last):
/// light cyan, blue, near-black at the centre, red, orange, light yellow.
const ICEFIRE: [(u8, u8, u8); 17] = [
    (189, 231, 219),
    (144, 200, 209),
    (96, 171, 205),
    (60, 140, 207),
    (65, 103, 199),
    (72, 73, 150),
    (55, 53, 92),
    (37, 37, 50),
    (31, 30, 30),
    (55, 32, 37),
    (92, 41, 53),
    (138, 46, 67),
    (185, 53, 64),
    (218, 83, 52),
    (237, 126, 64),
    (247, 171, 117),
    (255, 212, 172),
];

/// How [`vorticity_grid`] and [`vorticity_gif`] turn vorticity into pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldStyle {
    /// Colour limits `±vmax` (positive); values beyond them saturate.
    pub vmax: f32,
    /// Pixels per grid cell along each axis, an integer zoom from 1 to 16.
    pub scale: u32,
}

impl Default for FieldStyle {
    fn default() -> Self {
        Self {
            vmax: VORTICITY_VMAX,
            scale: 3,
        }
    }
}

impl FieldStyle {
    /// Fails with [`Error::Config`] unless `vmax` is positive and finite and `scale` is 1 to 16.
    pub fn check(&self) -> Result<()> {
        if !(self.vmax.is_finite() && self.vmax > 0.0) {
            return Err(Error::config(
                "vmax",
                format!("must be positive, got {}", self.vmax),
            ));
        }
        if !(1..=16).contains(&self.scale) {
            return Err(Error::config(
                "scale",
                format!("must be 1 to 16 pixels per cell, got {}", self.scale),
            ));
        }
        Ok(())
    }
}

/// The "icefire" colour at `t ∈ [0, 1]` (clamped), interpolated linearly between 17 control
/// colours of seaborn's map. A NaN `t` gives grey.
pub fn icefire(t: f32) -> (u8, u8, u8) {
    if t.is_nan() {
        return NAN_COLOR;
    }
    let x = t.clamp(0.0, 1.0) * (ICEFIRE.len() - 1) as f32;
    let k = (x.floor() as usize).min(ICEFIRE.len() - 2);
    let f = x - k as f32;
    let (a, b) = (ICEFIRE[k], ICEFIRE[k + 1]);
    let mix = |a: u8, b: u8| (a as f32 + f * (b as f32 - a as f32)).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The colour of vorticity `omega` with limits `±vmax`, as the reference's `vorticity2rgb`:
/// `s = clamp(ω / vmax, −1, 1)`, contrast-stretched to `sign(s)·|s|^0.8`, on [`icefire`]
/// (negative blue, zero black, positive orange). Non-finite values are grey.
pub fn vorticity_color(omega: f32, vmax: f32) -> (u8, u8, u8) {
    if !omega.is_finite() {
        return NAN_COLOR;
    }
    let s = (omega / vmax).clamp(-1.0, 1.0);
    let s = s.signum() * s.abs().powf(0.8);
    icefire(0.5 * (s + 1.0))
}

/// Draws a grid of vorticity fields to the PNG file `path`: `fields` is `(R, C, H, W)`, one row
/// per sample (e.g. the truth, then samples) and one column per state.
///
/// Each field is drawn pixel-exact, `style.scale` pixels per grid cell, with the first axis (x)
/// downwards and the second (y) rightwards, as the reference's pictures, in [`vorticity_color`]
/// with limits `±style.vmax`; a colour bar is on the right. `row_labels` (left of each row) and
/// `column_labels` (above each column) are either empty or one per row/column. `masks`, `(C, H,
/// W)` or `(H, W)` for every column, marks the observed grid cells of each column (non-zero);
/// the others are faded to light grey in every row.
///
/// Fails with [`Error::Shape`] on arrays of the wrong shape, [`Error::Config`] on labels that do
/// not match or a bad style, and [`Error::Io`] when the file cannot be drawn or written.
pub fn vorticity_grid(
    path: &Path,
    fields: &Array,
    masks: Option<&Array>,
    row_labels: &[String],
    column_labels: &[String],
    style: &FieldStyle,
) -> Result<()> {
    vorticity_grid_stations(path, fields, masks, row_labels, column_labels, style, &[])
}

/// [`vorticity_grid`] with station markers: every grid cell of `stations` (row-major `i·W + j`)
/// is drawn white in a black frame in every field, where the observations are.
///
/// Fails as [`vorticity_grid`] does, and with [`Error::Config`] on a station outside the grid.
pub fn vorticity_grid_stations(
    path: &Path,
    fields: &Array,
    masks: Option<&Array>,
    row_labels: &[String],
    column_labels: &[String],
    style: &FieldStyle,
    stations: &[usize],
) -> Result<()> {
    style.check()?;
    if let (Some(&bad), [.., h, w]) = (stations.iter().max(), fields.shape.as_slice())
        && bad >= h * w
    {
        return Err(Error::config(
            "stations",
            format!("grid cell {bad} lies outside the {h} × {w} grid"),
        ));
    }
    let &[rows, cols, h, w] = fields.shape.as_slice() else {
        return Err(field_shape("fields", "(R, C, H, W)", &fields.shape));
    };
    if rows * cols * h * w == 0 {
        return Err(field_shape(
            "fields",
            "(R, C, H, W), none empty",
            &fields.shape,
        ));
    }
    let masks = masks.map(|m| check_masks(m, cols, h, w)).transpose()?;
    for (noun, labels, n) in [("row", row_labels, rows), ("column", column_labels, cols)] {
        if !labels.is_empty() && labels.len() != n {
            return Err(Error::config(
                "plot",
                format!("{} {noun} labels for {n} {noun}s", labels.len()),
            ));
        }
    }

    // Layout: labels left and above, cells separated by gaps, the colour bar on the right.
    register_font().map_err(|e| Error::config("plot", e))?;
    let label_box = |text: &String| layout(text, LEGEND_SIZE).map(|(_, w, h)| (w, h));
    let boxes = row_labels
        .iter()
        .chain(column_labels)
        .map(label_box)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config("plot", e))?;
    let (row_boxes, column_boxes) = boxes.split_at(row_labels.len());
    let label_w = row_boxes.iter().map(|b| b.0.ceil() as i32).max();
    let label_h = column_boxes.iter().map(|b| b.1.ceil() as i32).max();
    let too_large = || {
        Error::config(
            "plot",
            format!("a grid of {rows} x {cols} fields of {h} x {w} is too large"),
        )
    };
    let scale = style.scale as usize;
    let cell = (
        i32::try_from(w * scale).map_err(|_| too_large())?,
        i32::try_from(h * scale).map_err(|_| too_large())?,
    );
    let left = FIELD_MARGIN + label_w.map_or(0, |w| w + 8);
    let top = FIELD_MARGIN + label_h.map_or(0, |h| h + 4);
    let span = |n: usize, c: i32| {
        i32::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(c + CELL_GAP))
            .map(|s| s - CELL_GAP)
            .filter(|&s| s <= 16_000)
            .ok_or_else(too_large)
    };
    let (grid_w, grid_h) = (span(cols, cell.0)?, span(rows, cell.1)?);
    let ticks = colour_bar_ticks(style.vmax, grid_h);
    let tick_w = ticks
        .iter()
        .map(|t| layout(&tick(*t as f64), TICK_SIZE as f32).map(|(_, w, _)| w.ceil() as i32))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config("plot", e))?
        .into_iter()
        .max()
        .unwrap_or(0);
    let bar_left = left + grid_w + 3 * CELL_GAP;
    let width = bar_left + BAR_WIDTH + 6 + tick_w + FIELD_MARGIN;
    let height = top + grid_h + FIELD_MARGIN;

    render(path, (width as u32, height as u32), |root| {
        for r in 0..rows {
            for c in 0..cols {
                let x0 = left + c as i32 * (cell.0 + CELL_GAP);
                let y0 = top + r as i32 * (cell.1 + CELL_GAP);
                let field = &fields.data[(r * cols + c) * h * w..][..h * w];
                let mask = masks.map(|m| &m[(c % (m.len() / (h * w))) * h * w..][..h * w]);
                draw_field(root, (x0, y0), field, mask, w, style)?;
                draw_stations(root, (x0, y0), stations, w, style.scale as i32)?;
            }
        }
        let label_color = BLACK;
        for (r, text) in row_labels.iter().enumerate() {
            let y = top + r as i32 * (cell.1 + CELL_GAP) + cell.1 / 2;
            let align = (Anchor::End, Anchor::Middle);
            draw_text(
                root,
                text,
                (left - 8, y),
                LEGEND_SIZE,
                label_color,
                align,
                false,
            )?;
        }
        for (c, text) in column_labels.iter().enumerate() {
            let x = left + c as i32 * (cell.0 + CELL_GAP) + cell.0 / 2;
            let align = (Anchor::Middle, Anchor::End);
            draw_text(
                root,
                text,
                (x, top - 4),
                LEGEND_SIZE,
                label_color,
                align,
                false,
            )?;
        }
        colour_bar(root, (bar_left, top), grid_h, &ticks, style.vmax)
    })
}

/// Writes an animated GIF of the vorticity fields `frames`, `(L, H, W)`, one frame per state,
/// `delay_ms` milliseconds apart (rounded to GIF's hundredths of a second, at least 2), looping
/// forever. Pixels are as in [`vorticity_grid`], without labels, on a 256-colour palette of
/// [`vorticity_color`].
///
/// Fails with [`Error::Shape`] on a wrong shape, [`Error::Config`] on a bad style or an image
/// larger than GIF allows, and [`Error::Io`] when the file cannot be written.
pub fn vorticity_gif(path: &Path, frames: &Array, style: &FieldStyle, delay_ms: u32) -> Result<()> {
    style.check()?;
    let &[l, h, w] = frames.shape.as_slice() else {
        return Err(field_shape("frames", "(L, H, W)", &frames.shape));
    };
    if l * h * w == 0 {
        return Err(field_shape(
            "frames",
            "(L, H, W), none empty",
            &frames.shape,
        ));
    }
    let scale = style.scale as usize;
    let side = |n: usize| u16::try_from(n * scale).ok();
    let (Some(width), Some(height)) = (side(w), side(h)) else {
        return Err(Error::config(
            "plot",
            format!("a {h} x {w} field at {scale} pixels per cell is too large for a GIF"),
        ));
    };
    // Palette entry k is the colour of ω = vmax·(2k/254 − 1) for k < 255; 255 is non-finite.
    let level = |k: usize| style.vmax * (2.0 * k as f32 / 254.0 - 1.0);
    let mut palette: Vec<u8> = (0..255)
        .flat_map(|k| {
            let (r, g, b) = vorticity_color(level(k), style.vmax);
            [r, g, b]
        })
        .collect();
    palette.extend([NAN_COLOR.0, NAN_COLOR.1, NAN_COLOR.2]);
    let index = |omega: f32| -> u8 {
        if omega.is_finite() {
            ((omega / style.vmax).clamp(-1.0, 1.0) * 127.0 + 127.0).round() as u8
        } else {
            255
        }
    };
    let delay = u16::try_from(delay_ms.div_ceil(10).max(2)).unwrap_or(u16::MAX);
    let encode = || -> std::result::Result<Vec<u8>, gif::EncodingError> {
        let mut encoder = gif::Encoder::new(Vec::new(), width, height, &palette)?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        for field in frames.data.chunks_exact(h * w) {
            let mut pixels = Vec::with_capacity(width as usize * height as usize);
            for row in field.chunks_exact(w) {
                let line: Vec<u8> = row
                    .iter()
                    .flat_map(|&omega| std::iter::repeat_n(index(omega), scale))
                    .collect();
                for _ in 0..scale {
                    pixels.extend_from_slice(&line);
                }
            }
            let mut frame = gif::Frame::from_indexed_pixels(width, height, pixels, None);
            frame.delay = delay;
            encoder.write_frame(&frame)?;
        }
        encoder.into_inner()
    };
    let bytes = encode().map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::io::write_atomic(path, &bytes)
}

/// An [`Error::Shape`] for a field array.
fn field_shape(what: &str, expected: &str, got: &[usize]) -> Error {
    Error::Shape {
        what: what.into(),
        expected: expected.into(),
        got: got.to_vec(),
    }
}

/// Checks observation masks against `cols` fields of `h × w`, returning their values.
fn check_masks(masks: &Array, cols: usize, h: usize, w: usize) -> Result<&[f32]> {
    match *masks.shape.as_slice() {
        [mh, mw] if (mh, mw) == (h, w) => Ok(&masks.data),
        [mc, mh, mw] if (mc, mh, mw) == (cols, h, w) => Ok(&masks.data),
        _ => Err(field_shape(
            "masks",
            &format!("({cols}, {h}, {w}) or ({h}, {w})"),
            &masks.shape,
        )),
    }
}

/// Draws one field with its top-left corner at `at`, faded where `mask` is zero.
fn draw_field(
    root: &Canvas,
    at: (i32, i32),
    field: &[f32],
    mask: Option<&[f32]>,
    w: usize,
    style: &FieldStyle,
) -> Result<(), String> {
    let scale = style.scale as i32;
    for (k, &omega) in field.iter().enumerate() {
        let (mut r, mut g, mut b) = vorticity_color(omega, style.vmax);
        if mask.is_some_and(|m| m[k] == 0.0) {
            let fade = |c: u8| (c as f32 + MASK_FADE * (MASK_GREY - c as f32)).round() as u8;
            (r, g, b) = (fade(r), fade(g), fade(b));
        }
        let color = RGBColor(r, g, b);
        let (i, j) = ((k / w) as i32, (k % w) as i32);
        for dy in 0..scale {
            for dx in 0..scale {
                let p = (at.0 + j * scale + dx, at.1 + i * scale + dy);
                root.draw_pixel(p, &color).map_err(text)?;
            }
        }
    }
    Ok(())
}

/// Marks grid cells `stations` (row-major) of a field drawn at `at`: the cell white, framed by
/// a black square one pixel outside it.
fn draw_stations(
    root: &Canvas,
    at: (i32, i32),
    stations: &[usize],
    w: usize,
    scale: i32,
) -> Result<(), String> {
    for &k in stations {
        let (i, j) = ((k / w) as i32, (k % w) as i32);
        let (x0, y0) = (at.0 + j * scale, at.1 + i * scale);
        for dy in -1..=scale {
            for dx in -1..=scale {
                let edge = dx == -1 || dy == -1 || dx == scale || dy == scale;
                let color = if edge { BLACK } else { WHITE };
                root.draw_pixel((x0 + dx, y0 + dy), &color).map_err(text)?;
            }
        }
    }
    Ok(())
}

/// The values labelled on a colour bar `height` pixels tall: the limits and zero, and the
/// half-limits where there is room.
fn colour_bar_ticks(vmax: f32, height: i32) -> Vec<f32> {
    if height >= 150 {
        vec![vmax, 0.5 * vmax, 0.0, -0.5 * vmax, -vmax]
    } else {
        vec![vmax, 0.0, -vmax]
    }
}

/// Draws a vertical colour bar from `+vmax` (top) to `−vmax` (bottom) with its top-left corner
/// at `at`, a frame, and tick labels on the right.
fn colour_bar(
    root: &Canvas,
    at: (i32, i32),
    height: i32,
    ticks: &[f32],
    vmax: f32,
) -> Result<(), String> {
    let span = (height - 1).max(1) as f32;
    for y in 0..height {
        let omega = vmax * (1.0 - 2.0 * y as f32 / span);
        let (r, g, b) = vorticity_color(omega, vmax);
        let color = RGBColor(r, g, b);
        for x in 0..BAR_WIDTH {
            root.draw_pixel((at.0 + x, at.1 + y), &color)
                .map_err(text)?;
        }
    }
    let frame = [(at.0 - 1, at.1 - 1), (at.0 + BAR_WIDTH, at.1 + height)];
    root.draw(&Rectangle::new(frame, BLACK.stroke_width(1)))
        .map_err(text)?;
    for &t in ticks {
        let y = at.1 + ((1.0 - t / vmax) * 0.5 * span).round() as i32;
        let right = at.0 + BAR_WIDTH;
        root.draw(&PathElement::new(vec![(right, y), (right + 3, y)], BLACK))
            .map_err(text)?;
        let align = (Anchor::Start, Anchor::Middle);
        let label = tick(t as f64);
        draw_text(
            root,
            &label,
            (right + 6, y),
            TICK_SIZE as f32,
            BLACK,
            align,
            false,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty folder for one test.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sda-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks the PNG magic and returns the (width, height) from the IHDR chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() > 24, "{} is too short", path.display());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (width, height)
    }

    /// The folder holds exactly the given file names (no temporary file left).
    fn only(dir: &Path, names: &[&str]) {
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, names);
    }

    /// Noisy sine/cosine trajectories `(n, l, d)`.
    fn waves(n: usize, l: usize, d: usize, shift: f32) -> Array {
        let mut data = Vec::with_capacity(n * l * d);
        for s in 0..n {
            for i in 0..l {
                for c in 0..d {
                    let t = i as f32 * 0.15 + c as f32;
                    let wobble = ((s * 7919 + i * 104729 + c * 31) % 1000) as f32 / 1000.0 - 0.5;
                    data.push((c as f32 + 1.0) * (t + shift).sin() + 0.4 * wobble);
                }
            }
        }
        Array::new(vec![n, l, d], data)
    }

    #[test]
    fn trajectories_draw_every_layer() {
        let dir = folder("trajectories");
        let path = dir.join("x.png");
        let (l, d) = (65, 3);
        let samples = waves(100, l, d, 0.0);
        let reference = waves(20, l, d, 0.3);
        let mut truth = waves(1, l, d, 0.1);
        truth.data[10 * d] = f32::NAN; // a gap in the truth
        let times: Vec<usize> = (0..l).step_by(8).collect();
        let values: Vec<f32> = times
            .iter()
            .flat_map(|&t| [truth.data[t * d], truth.data[t * d + 2] + 0.2, 1.0])
            .collect();
        let observations = Observations {
            values: Array::new(vec![times.len(), 3], values),
            times,
            channels: vec![Some(0), Some(2), None],
        };
        let labels = vec!["x".to_string(), "y".to_string()]; // the third falls back to x_2
        trajectories(
            &path,
            &samples,
            Some(&reference),
            Some(&truth),
            Some(&observations),
            &labels,
        )
        .unwrap();
        assert_eq!(png_size(&path), (1200, 900));
        only(&dir, &["x.png"]);

        // Samples alone, one coordinate, one state.
        let path = dir.join("single.png");
        trajectories(&path, &waves(1, 1, 1, 0.0), None, None, None, &[]).unwrap();
        assert_eq!(png_size(&path), (1200, 300));
        only(&dir, &["single.png", "x.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trajectories_reject_mismatched_inputs() {
        let dir = folder("mismatch");
        let path = dir.join("x.png");
        let samples = waves(2, 5, 3, 0.0);
        let two_d = waves(1, 5, 2, 0.0);
        assert!(matches!(
            trajectories(&path, &two_d, None, Some(&samples), None, &[]),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            trajectories(&path, &samples, Some(&two_d), None, None, &[]),
            Err(Error::Shape { .. })
        ));
        let observations = Observations {
            times: vec![0, 4],
            channels: vec![Some(3)],
            values: Array::new(vec![2, 1], vec![0.0, 1.0]),
        };
        assert!(matches!(
            trajectories(&path, &samples, None, None, Some(&observations), &[]),
            Err(Error::Config { .. })
        ));
        let observations = Observations {
            times: vec![0],
            channels: vec![Some(0)],
            values: Array::new(vec![2, 1], vec![0.0, 1.0]),
        };
        assert!(matches!(
            trajectories(&path, &samples, None, None, Some(&observations), &[]),
            Err(Error::Shape { .. })
        ));
        only(&dir, &[]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Figure 3's layout: scenarios by metrics, x = corrections, a series per k and a dashed
    /// particle-filter level.
    fn figure3() -> Vec<Panel> {
        let corrections = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0];
        let mut panels = Vec::new();
        for scenario in ["lo", "hi"] {
            for (m, metric) in ["W1", "log p(x)", "log p(y|x)"].into_iter().enumerate() {
                let mut series: Vec<Series> = (1..=4)
                    .map(|k| Series {
                        label: format!("k = {k}"),
                        points: corrections
                            .iter()
                            .map(|&c| (c, (m as f64 + 1.0) * (1.0 + k as f64 / (1.0 + c))))
                            .collect(),
                        dashed: false,
                        color: k - 1,
                    })
                    .collect();
                series.push(Series {
                    label: "particle filter".into(),
                    points: vec![(0.0, m as f64 + 1.5)],
                    dashed: true,
                    color: 7,
                });
                panels.push(Panel {
                    title: format!("{metric} ({scenario})"),
                    x_label: "corrections C".into(),
                    y_label: metric.into(),
                    series,
                    ..Panel::default()
                });
            }
        }
        panels
    }

    #[test]
    fn panels_draw_a_grid() {
        let dir = folder("panels");
        let path = dir.join("fig3.png");
        panels(&path, 2, 3, &figure3()).unwrap();
        assert_eq!(png_size(&path), (1500, 800));
        only(&dir, &["fig3.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn panels_survive_bad_points_and_log_axes() {
        let dir = folder("bad");
        let path = dir.join("bad.png");
        let nan = Panel {
            title: "all NaN".into(),
            series: vec![
                Series {
                    label: "nan".into(),
                    points: vec![(f64::NAN, 1.0), (1.0, f64::NAN), (2.0, f64::INFINITY)],
                    dashed: false,
                    color: 0,
                },
                Series {
                    label: "nan level".into(),
                    points: vec![(0.0, f64::NAN)],
                    dashed: true,
                    color: 1,
                },
            ],
            ..Panel::default()
        };
        let log = Panel {
            title: "log-log".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series {
                    label: "power law".into(),
                    points: vec![(0.0, 1.0), (1.0, 1.0), (10.0, 100.0), (100.0, 1e4)],
                    dashed: false,
                    color: 2,
                },
                Series {
                    label: "dashed polyline".into(),
                    points: vec![(1.0, 2.0), (100.0, -1.0), (100.0, 2e4)],
                    dashed: true,
                    color: 3,
                },
            ],
            log_x: true,
            log_y: true,
        };
        let empty = Panel::default();
        panels(&path, 2, 2, &[nan, log, empty]).unwrap();
        assert_eq!(png_size(&path), (1000, 800));
        only(&dir, &["bad.png"]);

        assert!(matches!(
            panels(&path, 0, 2, &[]),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            panels(&path, 1, 1, &figure3()),
            Err(Error::Config { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The dark pixels of a `w × h` RGB buffer.
    fn dark(buffer: &[u8], w: usize) -> Vec<(usize, usize)> {
        buffer
            .chunks(3)
            .enumerate()
            .filter(|(_, rgb)| rgb.iter().any(|&c| c < 128))
            .map(|(i, _)| (i % w, i / w))
            .collect()
    }

    #[test]
    fn text_is_rasterised_inside_its_box() {
        let (w, h) = (240usize, 240usize);
        let (_, width, height) = layout("particle filter", 18.0).unwrap();
        assert!(
            width > 80.0 && (15.0..30.0).contains(&height),
            "{width} x {height}"
        );
        for vertical in [false, true] {
            let mut buffer = vec![255u8; w * h * 3];
            {
                let root = BitMapBackend::with_buffer(&mut buffer, (w as u32, h as u32))
                    .into_drawing_area();
                let align = (Anchor::Middle, Anchor::Middle);
                draw_text(
                    &root,
                    "particle filter",
                    (120, 120),
                    18.0,
                    BLACK,
                    align,
                    vertical,
                )
                .unwrap();
                root.present().unwrap();
            }
            let pixels = dark(&buffer, w);
            assert!(pixels.len() > 150, "only {} dark pixels", pixels.len());
            let (box_w, box_h) = if vertical {
                (height, width)
            } else {
                (width, height)
            };
            for &(x, y) in &pixels {
                assert!((x as f32 - 120.0).abs() <= box_w / 2.0 + 2.0, "x = {x}");
                assert!((y as f32 - 120.0).abs() <= box_h / 2.0 + 2.0, "y = {y}");
            }
            let xs = pixels.iter().map(|p| p.0);
            let spread = xs.clone().max().unwrap() - xs.min().unwrap();
            assert_eq!(spread > 60, !vertical, "horizontal extent {spread}");
        }
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
    fn lines_break_at_missing_points() {
        let points = [
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, 2.0),
            (3.0, 3.0),
            (f64::INFINITY, 0.0),
        ];
        assert_eq!(
            segments(points.into_iter()),
            vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]
        );
        assert!(segments([(0.0, f64::NAN)].into_iter()).is_empty());
        assert_eq!(thin(10), (0..10).collect::<Vec<_>>());
        let drawn = thin(1000);
        assert_eq!(drawn.len(), MAX_DRAWN);
        assert!(drawn.windows(2).all(|w| w[0] < w[1]) && drawn[MAX_DRAWN - 1] < 1000);
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

    #[test]
    fn icefire_is_blue_black_orange() {
        // The ends and centre are seaborn's own entries 0, 128 and 255.
        assert_eq!(icefire(0.0), (189, 231, 219));
        assert_eq!(icefire(0.5), (31, 30, 30));
        assert_eq!(icefire(1.0), (255, 212, 172));
        assert_eq!(icefire(-3.0), icefire(0.0));
        assert_eq!(icefire(f32::NAN), NAN_COLOR);
        // Halfway between two control colours is their mean.
        let (a, b) = (ICEFIRE[3], ICEFIRE[4]);
        let mid = icefire(3.5 / 16.0);
        assert_eq!(mid.2, ((a.2 as f32 + b.2 as f32) / 2.0).round() as u8);
        // Negative vorticity is blue, positive red, zero near-black, beyond ±vmax saturated.
        let (r, _, b) = vorticity_color(-0.5, 1.25);
        assert!(b > 2 * r, "negative: ({r}, {b})");
        let (r, _, b) = vorticity_color(0.5, 1.25);
        assert!(r > 2 * b, "positive: ({r}, {b})");
        assert_eq!(vorticity_color(0.0, 1.25), (31, 30, 30));
        assert_eq!(vorticity_color(7.0, 1.25), icefire(1.0));
        assert_eq!(vorticity_color(-7.0, 1.25), icefire(0.0));
        // The 0.8 power: ω = vmax/2 maps to t = (1 + 0.5^0.8) / 2.
        let t = 0.5 * (1.0 + 0.5f32.powf(0.8));
        assert_eq!(vorticity_color(0.625, 1.25), icefire(t));
    }

    #[test]
    fn stations_are_white_cells_in_black_frames() {
        // A 3 × 4 field at 3 pixels per cell, drawn at (2, 2); a station at cell (1, 2) = 6.
        let (w, scale) = (4usize, 3i32);
        let (bw, bh) = (20usize, 16usize);
        let mut buffer = vec![100u8; bw * bh * 3];
        {
            let root =
                BitMapBackend::with_buffer(&mut buffer, (bw as u32, bh as u32)).into_drawing_area();
            draw_stations(&root, (2, 2), &[6], w, scale).unwrap();
            root.present().unwrap();
        }
        let pixel = |x: i32, y: i32| {
            let k = 3 * (y as usize * bw + x as usize);
            (buffer[k], buffer[k + 1], buffer[k + 2])
        };
        // The cell spans x = 2 + 2·3 .. +3 = 8..11, y = 2 + 1·3 = 5..8.
        for y in 4..=8 {
            for x in 7..=11 {
                let frame = x == 7 || x == 11 || y == 4 || y == 8;
                let want = if frame { (0, 0, 0) } else { (255, 255, 255) };
                assert_eq!(pixel(x, y), want, "({x}, {y})");
            }
        }
        assert_eq!(pixel(6, 6), (100, 100, 100));
        assert_eq!(pixel(12, 6), (100, 100, 100));
    }

    #[test]
    fn fields_are_pixel_exact_first_axis_down() {
        // A 2 × 3 field at 2 pixels per cell: ω[i][j] positive only at (1, 2).
        let (w, h, scale) = (3usize, 2usize, 2u32);
        let field = [0.0, 0.0, 0.0, 0.0, 0.0, 1.25];
        let mask = [1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let style = FieldStyle { vmax: 1.25, scale };
        let (bw, bh) = (8usize, 6usize);
        let mut buffer = vec![255u8; bw * bh * 3];
        {
            let root =
                BitMapBackend::with_buffer(&mut buffer, (bw as u32, bh as u32)).into_drawing_area();
            draw_field(&root, (1, 1), &field, Some(&mask), w, &style).unwrap();
            root.present().unwrap();
        }
        let pixel = |x: usize, y: usize| {
            let k = 3 * (y * bw + x);
            (buffer[k], buffer[k + 1], buffer[k + 2])
        };
        let s = scale as usize;
        for y in 0..bh {
            for x in 0..bw {
                let inside = (1..1 + w * s).contains(&x) && (1..1 + h * s).contains(&y);
                let expected = if !inside {
                    (255, 255, 255)
                } else {
                    let (i, j) = ((y - 1) / s, (x - 1) / s);
                    let c = vorticity_color(field[i * w + j], 1.25);
                    if mask[i * w + j] == 0.0 {
                        // Unobserved: 75% of the way to grey 240.
                        let fade = |c: u8| (c as f32 + 0.75 * (240.0 - c as f32)).round() as u8;
                        (fade(c.0), fade(c.1), fade(c.2))
                    } else {
                        c
                    }
                };
                assert_eq!(pixel(x, y), expected, "pixel ({x}, {y})");
            }
        }
        // Row i = 1 (second axis j = 2) is drawn at the bottom right.
        assert_eq!(pixel(6, 4), icefire(1.0));
    }

    /// A stack of `n` smooth vorticity fields `(n, h, w)`.
    fn swirls(n: usize, h: usize, w: usize) -> Vec<f32> {
        let mut data = Vec::with_capacity(n * h * w);
        for k in 0..n {
            for i in 0..h {
                for j in 0..w {
                    let (x, y) = (i as f32 / h as f32, j as f32 / w as f32);
                    let phase = 0.3 * k as f32;
                    data.push(
                        1.5 * (std::f32::consts::TAU * x + phase).sin()
                            * (std::f32::consts::TAU * y).cos(),
                    );
                }
            }
        }
        data
    }

    #[test]
    fn vorticity_grid_writes_a_png_of_the_expected_height() {
        let dir = folder("vorticity-grid");
        let path = dir.join("w.png");
        let (rows, cols, h, w) = (2, 3, 8, 6);
        let fields = Array::new(vec![rows, cols, h, w], swirls(rows * cols, h, w));
        let mut masks = Array::new(vec![cols, h, w], vec![0.0; cols * h * w]);
        masks.data[..h * w].fill(1.0);
        let style = FieldStyle {
            vmax: 1.25,
            scale: 2,
        };
        vorticity_grid(&path, &fields, Some(&masks), &[], &[], &style).unwrap();
        let (width, height) = png_size(&path);
        // Margins of 14, two rows of 16 pixels with a gap of 4; the colour bar on the right.
        assert_eq!(height, 14 + 2 * 16 + 4 + 14);
        assert!(
            width > 14 + 3 * 12 + 2 * 4 + 12 + BAR_WIDTH as u32,
            "width {width}"
        );
        // Labels add room on the left and above.
        let row_labels = ["truth".to_string(), "sample 1".to_string()];
        let column_labels: Vec<String> = (0..cols).map(|c| format!("{c}")).collect();
        vorticity_grid(&path, &fields, None, &row_labels, &column_labels, &style).unwrap();
        let (labelled_w, labelled_h) = png_size(&path);
        assert!(labelled_w > width + 40 && labelled_h > height + 10);
        only(&dir, &["w.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vorticity_grid_rejects_bad_inputs_and_writes_nothing() {
        let dir = folder("vorticity-bad");
        let path = dir.join("w.png");
        let fields = Array::new(vec![1, 2, 4, 4], swirls(2, 4, 4));
        let style = FieldStyle::default();
        let bad_mask = Array::new(vec![3, 4, 4], vec![1.0; 48]);
        let err = vorticity_grid(&path, &fields, Some(&bad_mask), &[], &[], &style).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        let flat = Array::new(vec![2, 4, 4], swirls(2, 4, 4));
        let err = vorticity_grid(&path, &flat, None, &[], &[], &style).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        let labels = ["a".to_string()];
        let err = vorticity_grid(&path, &fields, None, &[], &labels, &style).unwrap_err();
        assert!(
            err.to_string().contains("1 column labels for 2 columns"),
            "{err}"
        );
        for style in [
            FieldStyle {
                vmax: 0.0,
                scale: 2,
            },
            FieldStyle {
                vmax: f32::NAN,
                scale: 2,
            },
            FieldStyle {
                vmax: 1.0,
                scale: 0,
            },
        ] {
            let err = vorticity_grid(&path, &fields, None, &[], &[], &style).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{err}");
        }
        only(&dir, &[]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vorticity_gif_has_one_frame_per_state() {
        let dir = folder("vorticity-gif");
        let path = dir.join("w.gif");
        let (l, h, w) = (5, 8, 6);
        let mut data = swirls(l, h, w);
        data[3] = f32::NAN;
        let frames = Array::new(vec![l, h, w], data);
        let style = FieldStyle {
            vmax: 1.25,
            scale: 3,
        };
        vorticity_gif(&path, &frames, &style, 200).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..6], b"GIF89a");
        // The logical screen: width then height, little-endian, in pixels.
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), (w * 3) as u16);
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), (h * 3) as u16);
        // Decoded: one frame per state, 20 hundredths apart, each pixel the colour of its
        // cell's vorticity quantised to 255 levels (ω ≈ vmax·k/127, k = −127..=127).
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(&bytes[..]).unwrap();
        let mut count = 0;
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            assert_eq!((frame.width, frame.height, frame.delay), (18, 24, 20));
            for (p, rgba) in frame.buffer.chunks_exact(4).enumerate() {
                let (y, x) = (p / 18, p % 18);
                let omega = frames.data[count * h * w + (y / 3) * w + x / 3];
                let level = 1.25 * ((omega / 1.25).clamp(-1.0, 1.0) * 127.0).round() / 127.0;
                let expected = vorticity_color(if omega.is_nan() { omega } else { level }, 1.25);
                assert_eq!(
                    (rgba[0], rgba[1], rgba[2]),
                    expected,
                    "frame {count}, ({x}, {y})"
                );
            }
            count += 1;
        }
        assert_eq!(count, l);
        only(&dir, &["w.gif"]);
        let err = vorticity_gif(&path, &Array::new(vec![4, 4], vec![0.0; 16]), &style, 200);
        assert!(matches!(err, Err(Error::Shape { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
