//! Pictures of 2-D vorticity fields: the "icefire" colour map, [`vorticity_grid`] of fields
//! with observation masks, station markers and a colour bar.

use std::path::Path;

use plotters::prelude::*;

use super::text::{Anchor, draw_text, layout, register_font};
use super::{Canvas, LEGEND_SIZE, TICK_SIZE, render, text, tick};
use crate::error::{Error, Result};
use crate::io::Array;

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
pub(super) const NAN_COLOR: (u8, u8, u8) = (128, 128, 128);

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

/// How [`vorticity_grid`] and [`vorticity_gif`](super::vorticity_gif) turn vorticity into pixels.
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
    let ([rows, cols, h, w], masks) =
        check_grid(fields, masks, row_labels, column_labels, style, stations)?;

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

/// Checks the arguments of [`vorticity_grid_stations`]: returns the shape `(R, C, H, W)` of
/// `fields` and the values of the masks.
fn check_grid<'a>(
    fields: &Array,
    masks: Option<&'a Array>,
    row_labels: &[String],
    column_labels: &[String],
    style: &FieldStyle,
    stations: &[usize],
) -> Result<([usize; 4], Option<&'a [f32]>)> {
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
    Ok(([rows, cols, h, w], masks))
}

/// An [`Error::Shape`] for a field array.
pub(super) fn field_shape(what: &str, expected: &str, got: &[usize]) -> Error {
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
pub(super) mod tests {
    use super::*;
    use crate::plot::tests::{folder, only, png_size};

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
    pub(crate) fn swirls(n: usize, h: usize, w: usize) -> Vec<f32> {
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
}
