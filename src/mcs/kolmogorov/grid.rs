//! Periodic grids on `[0, 2π]`: spacing, FFT wavenumbers, block averages and 2-D DFTs.

use std::sync::Arc;

use rustfft::Fft;
use rustfft::num_complex::Complex32;

/// Grid spacing of an `n`-point periodic axis on `[0, 2π]`.
pub(super) fn grid_step(n: usize) -> f64 {
    2.0 * std::f64::consts::PI / n as f64
}

/// The signed wavenumber of FFT index `i` of an `n`-point transform.
pub(super) fn signed(i: usize, n: usize) -> isize {
    if i <= n / 2 {
        i as isize
    } else {
        i as isize - n as isize
    }
}

/// Block average of an `[n, n]` field by `c` into `[n/c, n/c]`.
pub(super) fn block_average(fine: &[f32], n: usize, c: usize, out: &mut [f32]) {
    let h = n / c;
    out.fill(0.0);
    for x in 0..n {
        let orow = &mut out[(x / c) * h..(x / c + 1) * h];
        for (y, v) in fine[x * n..(x + 1) * n].iter().enumerate() {
            orow[y / c] += v;
        }
    }
    let scale = 1.0 / (c * c) as f32;
    for v in out {
        *v *= scale;
    }
}

/// The unnormalised 2-D DFT of a real `[h, h]` field, `[h, h]` complex.
pub(super) fn fft2(x: &[f32], h: usize, fft: &Arc<dyn Fft<f32>>) -> Vec<Complex32> {
    let mut a: Vec<Complex32> = x.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft.process(&mut a); // along the second axis, row by row
    let mut t = vec![Complex32::ZERO; h * h];
    transpose(&a, &mut t, h);
    fft.process(&mut t); // along the first axis
    transpose(&t, &mut a, h);
    a
}

pub(super) fn transpose(a: &[Complex32], t: &mut [Complex32], h: usize) {
    for i in 0..h {
        for j in 0..h {
            t[j * h + i] = a[i * h + j];
        }
    }
}
