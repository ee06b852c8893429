//! Plain-array helpers on 2-D velocity fields, such as the Kolmogorov flow's (docs/method.md §8).
//!
//! A field is a row-major `(C, H, W)` slice: channels `(u, v)` on an `(H, W)` grid whose first
//! axis is x and second axis y, both periodic. Derivatives are in grid units (one cell = 1), as
//! in the reference code's `KolmogorovFlow.vorticity`.

use crate::error::{Error, Result};

/// The vorticity of the velocity field `u_v`, `(2, H, W)` → `(H, W)`.
///
/// With the reference's sign convention `ω = ∂u/∂y − ∂v/∂x`, where y is the second axis and x
/// the first, by centred differences with periodic wrap and unit grid spacing:
///
/// ```text
/// ω[i][j] = (u[i][j+1] − u[i][j−1]) / 2 − (v[i+1][j] − v[i−1][j]) / 2
/// ```
///
/// # Panics
/// If `u_v.len() != 2·h·w` (a bug in the caller).
pub fn vorticity(u_v: &[f32], h: usize, w: usize) -> Vec<f32> {
    assert_eq!(u_v.len(), 2 * h * w, "vorticity: expected (2, {h}, {w})");
    let (u, v) = u_v.split_at(h * w);
    let mut omega = Vec::with_capacity(h * w);
    for i in 0..h {
        let (up, down) = ((i + 1) % h, (i + h - 1) % h);
        for j in 0..w {
            let (right, left) = ((j + 1) % w, (j + w - 1) % w);
            let du_dy = 0.5 * (u[i * w + right] - u[i * w + left]);
            let dv_dx = 0.5 * (v[up * w + j] - v[down * w + j]);
            omega.push(du_dy - dv_dx);
        }
    }
    omega
}

/// [`vorticity`] of every field of a stack `(..., 2, H, W)` → `(..., H, W)`.
///
/// # Panics
/// If `fields.len()` is not a multiple of `2·h·w` (a bug in the caller).
pub fn vorticities(fields: &[f32], h: usize, w: usize) -> Vec<f32> {
    let size = 2 * h * w;
    assert!(
        size > 0 && fields.len().is_multiple_of(size),
        "vorticities: expected (..., 2, {h}, {w}), got {} values",
        fields.len()
    );
    fields
        .chunks_exact(size)
        .flat_map(|u_v| vorticity(u_v, h, w))
        .collect()
}

/// The block mean of `field`, `(C, H, W)` → `(C, H/r, W/r)`: each output cell is the mean of an
/// `r × r` block, as the observation operator "r× block-averaged" of docs/method.md §8 and the
/// 256² → 64² reduction of the simulations.
///
/// Fails with [`Error::Config`] when `r` is zero or does not divide `H` and `W`.
///
/// # Panics
/// If `field.len() != c·h·w` (a bug in the caller).
pub fn coarsen(field: &[f32], c: usize, h: usize, w: usize, r: usize) -> Result<Vec<f32>> {
    assert_eq!(field.len(), c * h * w, "coarsen: expected ({c}, {h}, {w})");
    if r == 0 || !h.is_multiple_of(r) || !w.is_multiple_of(r) {
        return Err(Error::config(
            "coarsen",
            format!("factor {r} does not divide the {h}×{w} grid"),
        ));
    }
    let (hr, wr) = (h / r, w / r);
    let norm = 1.0 / (r * r) as f32;
    let mut out = vec![0.0; c * hr * wr];
    for ch in 0..c {
        for i in 0..h {
            let row = &field[(ch * h + i) * w..][..w];
            let target = &mut out[(ch * hr + i / r) * wr..][..wr];
            for (j, x) in row.iter().enumerate() {
                target[j / r] += x * norm;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn vorticity_of_a_shear_is_the_centred_difference_of_a_sine() {
        let (h, w) = (6, 16);
        // u = sin(2π j / W), v = 0: a shear along the second axis.
        let mut u_v = vec![0.0; 2 * h * w];
        for i in 0..h {
            for j in 0..w {
                u_v[i * w + j] = (2.0 * PI * j as f32 / w as f32).sin();
            }
        }
        let omega = vorticity(&u_v, h, w);
        for i in 0..h {
            for j in 0..w {
                // (sin(a(j+1)) − sin(a(j−1))) / 2 = sin(a) cos(a j), a = 2π / W
                let a = 2.0 * PI / w as f32;
                let expected = a.sin() * (a * j as f32).cos();
                assert!((omega[i * w + j] - expected).abs() < 1e-5, "({i}, {j})");
            }
        }
    }

    #[test]
    fn vorticity_sign_and_periodic_wrap_on_the_first_axis() {
        let (h, w) = (4, 3);
        // u = 0, v = i (a ramp along the first axis that jumps from 3 back to 0).
        let mut u_v = vec![0.0; 2 * h * w];
        for i in 0..h {
            for j in 0..w {
                u_v[h * w + i * w + j] = i as f32;
            }
        }
        let omega = vorticity(&u_v, h, w);
        for j in 0..w {
            // Interior: ω = −(v[i+1] − v[i−1]) / 2 = −1.
            assert_eq!(omega[w + j], -1.0);
            assert_eq!(omega[2 * w + j], -1.0);
            // Wrapped: i = 0 sees v[1] − v[3] = −2 → ω = 1; i = 3 sees v[0] − v[2] = −2.
            assert_eq!(omega[j], 1.0);
            assert_eq!(omega[3 * w + j], 1.0);
        }
    }

    #[test]
    fn vorticity_of_a_solid_rotation_is_uniform() {
        // On an infinite grid, u = y, v = −x is a clockwise rotation in (x, y) with
        // ω = ∂u/∂y − ∂v/∂x = 1 + 1 = 2; away from the periodic seams it is exactly 2.
        let (h, w) = (5, 7);
        let mut u_v = vec![0.0; 2 * h * w];
        for i in 0..h {
            for j in 0..w {
                u_v[i * w + j] = j as f32;
                u_v[h * w + i * w + j] = -(i as f32);
            }
        }
        let omega = vorticity(&u_v, h, w);
        for i in 1..h - 1 {
            for j in 1..w - 1 {
                assert_eq!(omega[i * w + j], 2.0);
            }
        }
    }

    #[test]
    fn vorticities_maps_each_field() {
        let (h, w) = (3, 4);
        let a: Vec<f32> = (0..2 * h * w).map(|k| (k * k % 7) as f32).collect();
        let b: Vec<f32> = (0..2 * h * w).map(|k| (k % 5) as f32 - 2.0).collect();
        let both = [a.clone(), b.clone()].concat();
        assert_eq!(
            vorticities(&both, h, w),
            [vorticity(&a, h, w), vorticity(&b, h, w)].concat()
        );
    }

    #[test]
    fn coarsen_takes_block_means() {
        // Channel 0 holds 0..16 on a 4×4 grid; channel 1 is constant 3.
        let mut field: Vec<f32> = (0..16).map(|k| k as f32).collect();
        field.extend([3.0; 16]);
        let out = coarsen(&field, 2, 4, 4, 2).unwrap();
        // Block (0, 0) = mean(0, 1, 4, 5) = 2.5; (0, 1) = mean(2, 3, 6, 7) = 4.5; and so on.
        assert_eq!(out, vec![2.5, 4.5, 10.5, 12.5, 3.0, 3.0, 3.0, 3.0]);
        // r = 1 is the identity; r = H·W gives the channel means.
        assert_eq!(coarsen(&field, 2, 4, 4, 1).unwrap(), field);
        assert_eq!(coarsen(&field, 2, 4, 4, 4).unwrap(), vec![7.5, 3.0]);
    }

    #[test]
    fn coarsen_rejects_a_factor_that_does_not_divide() {
        let field = vec![0.0; 6 * 4];
        assert!(coarsen(&field, 1, 6, 4, 4).is_err());
        assert!(coarsen(&field, 1, 6, 4, 0).is_err());
        assert_eq!(coarsen(&field, 1, 6, 4, 2).unwrap().len(), 6);
    }
}
