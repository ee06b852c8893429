//! The text rasteriser: the embedded DejaVu Sans font, laid out with `ab_glyph` and drawn
//! pixel by pixel (titles, axis descriptions, legends and labels), and registered with
//! `plotters` for its tick labels.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use plotters::prelude::*;

use super::Canvas;

/// Where a text's anchor point sits on its box, along one axis.
#[derive(Clone, Copy, Debug)]
pub(super) enum Anchor {
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
pub(super) fn layout(text: &str, size: f32) -> Result<(Vec<Glyph>, f32, f32), String> {
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
pub(super) fn draw_text(
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
pub(super) fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
