//! The trajectories figure: one panel per state coordinate, with samples, a reference
//! ensemble, the truth and the observations.

use std::path::Path;

use plotters::prelude::*;

use super::{Entry, Extent, Key, X_AREA, Y_AREA, axis_descriptions, legend, split, trace};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::plot::{Canvas, TICK_SIZE, render, render_png, text, tick};
use crate::score::operator::{Operator, Term};

/// Width in pixels of a [`trajectories`] figure.
pub const TRAJECTORY_WIDTH: u32 = 1200;
/// Height in pixels of each coordinate's panel in a [`trajectories`] figure.
pub const TRAJECTORY_PANEL_HEIGHT: u32 = 300;
/// At most this many sample (and reference) trajectories are drawn; larger sets are thinned
/// evenly.
pub const MAX_DRAWN: usize = 64;

const SAMPLE_COLOR: RGBColor = RGBColor(31, 119, 180);
const REFERENCE_COLOR: RGBColor = RGBColor(255, 127, 14);
const ENSEMBLE_ALPHA: f64 = 0.25;

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
    let figure = Figure::new(samples, reference, truth, observations)?;
    let size = figure.size()?;
    render(path, size, |root| figure.draw(root, labels))
}

/// The [`trajectories`] figure as PNG bytes, drawn in memory.
pub fn trajectories_png(
    samples: &Array,
    reference: Option<&Array>,
    truth: Option<&Array>,
    observations: Option<&Observations>,
    labels: &[String],
) -> Result<Vec<u8>> {
    let figure = Figure::new(samples, reference, truth, observations)?;
    let size = figure.size()?;
    render_png(size, |root| figure.draw(root, labels))
}

/// The checked inputs of a [`trajectories`] figure, the trajectories drawn and the shared x
/// range.
struct Figure<'a> {
    samples: Trajectories<'a>,
    reference: Option<Trajectories<'a>>,
    truth: Option<Trajectories<'a>>,
    observations: Option<&'a Observations>,
    /// Every state index and every observation time.
    x_range: std::ops::Range<f64>,
    /// The samples drawn, and the reference trajectories.
    drawn: Vec<usize>,
    drawn_reference: Vec<usize>,
}

impl<'a> Figure<'a> {
    /// The picture's size: one panel per coordinate.
    fn size(&self) -> Result<(u32, u32)> {
        let dim = self.samples.dim;
        let height = u32::try_from(dim)
            .ok()
            .and_then(|d| d.checked_mul(TRAJECTORY_PANEL_HEIGHT))
            .ok_or_else(|| Error::config("plot", format!("too many coordinates ({dim})")))?;
        Ok((TRAJECTORY_WIDTH, height))
    }

    /// Every coordinate's panel, top to bottom.
    fn draw(&self, root: &Canvas, labels: &[String]) -> std::result::Result<(), String> {
        let entries = self.legend_entries();
        let areas = root.split_evenly((self.samples.dim, 1));
        for (d, area) in areas.iter().enumerate() {
            self.draw_coordinate(root, area, d, labels, &entries)?;
        }
        Ok(())
    }

    /// Checks the arrays against each other and thins the ensembles.
    fn new(
        samples: &'a Array,
        reference: Option<&'a Array>,
        truth: Option<&'a Array>,
        observations: Option<&'a Observations>,
    ) -> Result<Self> {
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
        Ok(Self {
            samples,
            reference,
            truth,
            observations,
            x_range,
            drawn,
            drawn_reference,
        })
    }

    /// The legend, shown in the first panel.
    fn legend_entries(&self) -> Vec<Entry> {
        let (samples, reference, truth) = (&self.samples, &self.reference, &self.truth);
        let (drawn, drawn_reference) = (&self.drawn, &self.drawn_reference);
        let observations = self.observations;
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
        if let Some(r) = reference {
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
        entries
    }

    /// The panel of coordinate `d` in `area`: its lines and crosses on axes of their extent,
    /// the axis descriptions, and in the first panel the legend `entries`.
    fn draw_coordinate(
        &self,
        root: &Canvas,
        area: &Canvas,
        d: usize,
        labels: &[String],
        entries: &[Entry],
    ) -> Result<(), String> {
        let (samples, reference, truth) = (&self.samples, &self.reference, &self.truth);
        let (observations, dim) = (self.observations, samples.dim);
        // What this panel draws, split at non-finite values.
        let mut reference_lines = Vec::new();
        if let Some(r) = &reference {
            for &n in &self.drawn_reference {
                reference_lines.extend(segments(r.coordinate(n, d)));
            }
        }
        let mut sample_lines = Vec::new();
        for &n in &self.drawn {
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
            .build_cartesian_2d(self.x_range.clone(), y0..y1)
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
            legend(root, &plot, entries, &occupied)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::{folder, only, png_size};

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
}
