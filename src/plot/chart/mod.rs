//! Line charts: [`trajectories`] of states, one panel per coordinate, and [`panels`], a grid
//! of charts of [`Series`], with their axes, tick labels and legends.

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::text::{Anchor, draw_text, layout};
use super::{Canvas, LEGEND_SIZE, TICK_SIZE, render, text, tick};
use crate::error::{Error, Result};

mod trajectories;

pub use trajectories::{
    MAX_DRAWN, Observations, TRAJECTORY_PANEL_HEIGHT, TRAJECTORY_WIDTH, coordinate_labels,
    trajectories, trajectories_png,
};

/// Width in pixels of each cell of a [`panels`] grid.
pub const PANEL_WIDTH: u32 = 500;
/// Height in pixels of each cell of a [`panels`] grid.
pub const PANEL_HEIGHT: u32 = 400;

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

/// Pixels below a plot for tick labels and the x axis description.
const X_AREA: i32 = 50;
/// Pixels left of a plot for tick labels and the y axis description.
const Y_AREA: i32 = 80;
/// Pixels above a grid panel for its title.
const TITLE_AREA: i32 = 32;
const DESC_SIZE: f32 = 18.0;
const TITLE_SIZE: f32 = 20.0;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::{folder, only, png_size};

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
}
