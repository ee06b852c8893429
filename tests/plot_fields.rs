//! `sda plot vorticity` as a user meets it: pictures of a small synthetic flow, and bad inputs
//! that must give a one-line error naming the culprit, a non-zero exit and no output file.

use std::f32::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Output;

use sda::io::{Array, write_npy};

mod common;
use common::{s, sda};

/// A fresh, empty folder for one test.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sda-plot-fields-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` trajectories of `l` divergence-free fields `(2, h, w)`: the stream function
/// ψ = sin(2π i/h + t/2 + n) cos(2π j/w), u = ∂ψ/∂y, v = −∂ψ/∂x (in grid units).
fn flow(n: usize, l: usize, h: usize, w: usize) -> Array {
    let mut data = Vec::with_capacity(n * l * 2 * h * w);
    let (a, b) = (2.0 * PI / h as f32, 2.0 * PI / w as f32);
    for k in 0..n {
        for t in 0..l {
            let phase = 0.5 * t as f32 + k as f32;
            let (x, y) = (|i: usize| a * i as f32 + phase, |j: usize| b * j as f32);
            for i in 0..h {
                for j in 0..w {
                    data.push(-b * x(i).sin() * y(j).sin());
                }
            }
            for i in 0..h {
                for j in 0..w {
                    data.push(-a * x(i).cos() * y(j).cos());
                }
            }
        }
    }
    Array::new(vec![n, l, 2, h, w], data)
}

/// The (width, height) of a PNG file, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let int = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (int(16), int(20))
}

/// The (width, height) of a GIF file, from its logical screen descriptor.
fn gif_size(path: &Path) -> (u16, u16) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"GIF89a", "{} is not a GIF", path.display());
    let int = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    (int(6), int(8))
}

/// A `.npy` file of numpy's `bool` dtype.
fn write_bool_npy(path: &Path, shape: &[usize], values: &[bool]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '|b1', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    header.push_str(&" ".repeat((64 - (11 + header.len()) % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(values.iter().map(|&b| b as u8));
    std::fs::write(path, bytes).unwrap();
}

/// The command failed with a single line on stderr that mentions every one of `needles`.
fn fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    }
}

#[test]
fn vorticity_grid_and_gif_have_the_expected_size() {
    let dir = folder("ok");
    let (n, l, h, w) = (3, 6, 8, 12);
    let x = dir.join("x.npy");
    let truth = dir.join("truth.npy");
    write_npy(&x, &flow(n, l, h, w)).unwrap();
    write_npy(&truth, &flow(2, l, h, w)).unwrap();
    let mask = dir.join("mask.npy");
    let observed: Vec<bool> = (0..l * h * w).map(|k| k % 3 == 0).collect();
    write_bool_npy(&mask, &[l, h, w], &observed);
    let (png, gif) = (dir.join("w.png"), dir.join("w.gif"));
    let out = sda(&[
        "plot",
        "vorticity",
        s(&x),
        "--output",
        s(&png),
        "--samples",
        "2",
        "--states",
        "0,2,5",
        // The spellings before the renames (--truth, --truth-index, --observed) still work.
        "--reference",
        s(&truth),
        "--reference-index",
        "1",
        "--mask",
        s(&mask),
        "--scale",
        "2",
        "--gif",
        s(&gif),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three rows (truth, 2 samples) of 8·2 pixels and three columns of 12·2 pixels, 4 apart,
    // plus labels, margins and the colour bar.
    let (width, height) = png_size(&png);
    let grid = (3 * 24 + 2 * 4, 3 * 16 + 2 * 4);
    assert!(width > grid.0 + 60 && width < grid.0 + 300, "width {width}");
    assert!(
        height > grid.1 + 20 && height < grid.1 + 80,
        "height {height}"
    );
    // The animation is of one field at 2 pixels per cell.
    assert_eq!(gif_size(&gif), (24, 16));

    // The default: all 6 states (at most 8), 4 samples asked of 3, no reference.
    let out = sda(&["plot", "vorticity", s(&x), "--scale", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (width, height) = png_size(&x.with_extension("png"));
    assert!(width > 6 * 12 + 5 * 4 && height > 3 * 8 + 2 * 4 && height < 3 * 8 + 80);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_give_one_line_and_no_file() {
    let dir = folder("bad");
    let (n, l, h, w) = (2, 4, 8, 8);
    let x = dir.join("x.npy");
    write_npy(&x, &flow(n, l, h, w)).unwrap();
    let (png, gif) = (dir.join("w.png"), dir.join("w.gif"));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "plot",
            "vorticity",
            s(&x),
            "--output",
            s(&png),
            "--gif",
            s(&gif),
        ];
        args.extend(extra);
        sda(&args)
    };

    // A mask of the wrong shape, float or bool.
    let mask = dir.join("mask.npy");
    write_npy(&mask, &Array::new(vec![h, w + 1], vec![1.0; h * (w + 1)])).unwrap();
    fails_with(
        &run(&["--observed", s(&mask)]),
        &["--observed", "mask.npy", "[8, 9]"],
    );
    write_bool_npy(&mask, &[l + 1, h, w], &vec![true; (l + 1) * h * w]);
    fails_with(
        &run(&["--observed", s(&mask)]),
        &["--observed", "[5, 8, 8]"],
    );

    // States out of range, of the samples or of the reference.
    fails_with(&run(&["--states", "0,4"]), &["--states", "state 4"]);
    let short = dir.join("short.npy");
    write_npy(&short, &flow(1, 2, h, w)).unwrap();
    fails_with(
        &run(&["--states", "0,3", "--truth", s(&short)]),
        &["--truth", "short.npy", "state 3"],
    );
    fails_with(
        &run(&["--truth", s(&short), "--truth-index", "1"]),
        &["--truth-index"],
    );

    // Files that are not (N, L, 2, H, W).
    let flat = dir.join("flat.npy");
    write_npy(&flat, &Array::new(vec![2, 3, 8, 8], vec![0.0; 384])).unwrap();
    fails_with(
        &sda(&["plot", "vorticity", s(&flat), "--output", s(&png)]),
        &["flat.npy", "(N, L, 2, H, W)", "[2, 3, 8, 8]"],
    );
    fails_with(&run(&["--truth", s(&flat)]), &["--truth", "flat.npy"]);
    fails_with(&run(&["--vmax=-1"]), &["vmax"]);

    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["flat.npy", "mask.npy", "short.npy", "x.npy"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The RGB pixels of a PNG (8-bit RGB or RGBA), with its size.
fn pixels(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(png_bytes).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| p[..3].to_vec())
        .collect();
    (info.width, info.height, rgb)
}

#[test]
fn a_trajectories_figure_in_memory_has_the_pixels_of_its_file() {
    // What Python's `sda.plot.trajectories` returns without `output`: the same picture as the
    // file, encoded in memory.
    let dir = folder("png-bytes");
    let (n, l, d) = (4, 20, 3);
    let x = Array::new(
        vec![n, l, d],
        (0..n * l * d).map(|i| (i as f32 * 0.37).sin()).collect(),
    );
    let labels = sda::plot::coordinate_labels(d);
    let file = dir.join("x.png");
    sda::plot::trajectories(&file, &x, None, None, None, &labels).unwrap();
    let bytes = sda::plot::trajectories_png(&x, None, None, None, &labels).unwrap();
    let (w, h, drawn) = pixels(&bytes);
    assert_eq!(
        (w, h),
        (
            sda::plot::TRAJECTORY_WIDTH,
            3 * sda::plot::TRAJECTORY_PANEL_HEIGHT
        )
    );
    assert_eq!(
        pixels(&std::fs::read(&file).unwrap()),
        (w, h, drawn.clone())
    );
    // Not a blank canvas: the lines and axes are there.
    assert!(drawn.iter().filter(|&&v| v < 128).count() > 1000);
    std::fs::remove_dir_all(&dir).unwrap();
}
