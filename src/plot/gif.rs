//! Animated GIFs of a trajectory of vorticity fields.

use std::path::Path;

use super::field::{FieldStyle, NAN_COLOR, field_shape, vorticity_color};
use crate::error::{Error, Result};
use crate::io::Array;

/// Writes an animated GIF of the vorticity fields `frames`, `(L, H, W)`, one frame per state,
/// `delay_ms` milliseconds apart (rounded to GIF's hundredths of a second, at least 2), looping
/// forever. Pixels are as in [`vorticity_grid`](super::vorticity_grid), without labels, on a 256-colour palette of
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::field::tests::swirls;
    use crate::plot::tests::{folder, only};

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
