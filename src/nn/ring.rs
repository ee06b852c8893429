//! States laid out on a periodic 1-D grid (the Lorenz-96 ring, any periodic 1-D field) and the
//! patches a ring network sees.
//!
//! A ring network maps a window of `w` states of `F` positions to its noise estimate one
//! position at a time: the estimate at position `p` (its `w` values, one per state) is a
//! function of the `K = 2r + 1` positions `p − r … p + r` (indices modulo `F`) of all `w`
//! states. The same function runs at every position, so it is a circular convolution of
//! kernel `K` along space with the window's states as channels, followed by `1 × 1`
//! convolutions (the residual MLP of [`super::ResMlp`] applied at every position). Weight
//! sharing along the ring makes the network equivariant to rotations of the ring and gives
//! every window `F` training examples.
//!
//! The functions here move values between windows `[rows, w·F]` (state-major, as the rest of
//! the crate stores them) and patch rows `[rows·F, w·K]` (row `i·F + p` holds, state by state,
//! the `K` values around position `p` of window `i`), and back.

/// Patch rows `[rows·F, w·K]` of windows `[rows, w·F]`: row `i·F + p` holds, for each state
/// `s`, the values at positions `p − r … p + r` (modulo `F`) of state `s` of window `i`.
pub fn patches(x: &[f32], w: usize, f: usize, k: usize) -> Vec<f32> {
    let r = k / 2;
    let rows = x.len() / (w * f);
    let mut out = Vec::with_capacity(rows * f * w * k);
    for window in x.chunks_exact(w * f) {
        for p in 0..f {
            for state in window.chunks_exact(f) {
                // Positions p − r … p + r, wrapped.
                let start = (p + f - r % f) % f;
                for o in 0..k {
                    out.push(state[(start + o) % f]);
                }
            }
        }
    }
    out
}

/// The transpose of [`patches`]: sums patch-row values `[rows·F, w·K]` back onto the
/// positions they were taken from, `[rows, w·F]`.
pub fn fold_patches(g: &[f32], w: usize, f: usize, k: usize) -> Vec<f32> {
    let r = k / 2;
    let rows = g.len() / (f * w * k);
    let mut out = vec![0.0; rows * w * f];
    for (window, gw) in out.chunks_exact_mut(w * f).zip(g.chunks_exact(f * w * k)) {
        for (p, gp) in gw.chunks_exact(w * k).enumerate() {
            let start = (p + f - r % f) % f;
            for (state, gs) in window.chunks_exact_mut(f).zip(gp.chunks_exact(k)) {
                for (o, v) in gs.iter().enumerate() {
                    state[(start + o) % f] += v;
                }
            }
        }
    }
    out
}

/// Per-position outputs `[rows·F, w]` (row `i·F + p`: the `w` values of position `p`) as
/// windows `[rows, w·F]`.
pub fn positions_to_windows(y: &[f32], w: usize, f: usize) -> Vec<f32> {
    let rows = y.len() / (w * f);
    let mut out = vec![0.0; rows * w * f];
    for (window, yw) in out.chunks_exact_mut(w * f).zip(y.chunks_exact(w * f)) {
        for (p, yp) in yw.chunks_exact(w).enumerate() {
            for (s, v) in yp.iter().enumerate() {
                window[s * f + p] = *v;
            }
        }
    }
    out
}

/// The transpose (and inverse) of [`positions_to_windows`]: windows `[rows, w·F]` as
/// per-position rows `[rows·F, w]`.
pub fn windows_to_positions(x: &[f32], w: usize, f: usize) -> Vec<f32> {
    let rows = x.len() / (w * f);
    let mut out = vec![0.0; rows * w * f];
    for (xw, ow) in x.chunks_exact(w * f).zip(out.chunks_exact_mut(w * f)) {
        for (p, op) in ow.chunks_exact_mut(w).enumerate() {
            for (s, v) in op.iter_mut().enumerate() {
                *v = xw[s * f + p];
            }
        }
    }
    out
}

/// The training rows of windows `[B, w·F]` with times `t` `[B]` and noise `ε` `[B, w·F]`:
/// every position's patch `[B·F, w·K]`, its window's time `[B·F]` and its own noise
/// `[B·F, w]`.
pub fn training_rows(
    x: &[f32],
    t: &[f32],
    eps: &[f32],
    w: usize,
    f: usize,
    k: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (
        patches(x, w, f, k),
        t.iter().flat_map(|&t| std::iter::repeat_n(t, f)).collect(),
        windows_to_positions(eps, w, f),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect()
    }

    #[test]
    fn a_patch_holds_the_wrapped_neighbourhood_of_its_position() {
        // 1 window of 2 states on a ring of 5: state s position q holds 10 s + q.
        let (w, f, k) = (2, 5, 3);
        let x: Vec<f32> = (0..w)
            .flat_map(|s| (0..f).map(move |q| (10 * s + q) as f32))
            .collect();
        let p = patches(&x, w, f, k);
        assert_eq!(p.len(), f * w * k);
        // Position 0 sees 4, 0, 1 of each state; position 4 sees 3, 4, 0.
        assert_eq!(&p[..6], &[4.0, 0.0, 1.0, 14.0, 10.0, 11.0]);
        assert_eq!(&p[4 * 6..], &[3.0, 4.0, 0.0, 13.0, 14.0, 10.0]);
    }

    #[test]
    fn folding_is_the_transpose_of_patching() {
        // ⟨patches(x), g⟩ = ⟨x, fold(g)⟩ for any x, g, kernels up to the ring's width.
        for (w, f, k) in [(3, 8, 5), (1, 4, 3), (5, 40, 9), (2, 7, 7)] {
            let x = values(2 * w * f);
            let g = values(2 * f * w * k)
                .iter()
                .map(|v| v * 0.5 + 1.0)
                .collect::<Vec<_>>();
            let lhs: f64 = patches(&x, w, f, k)
                .iter()
                .zip(&g)
                .map(|(a, b)| (a * b) as f64)
                .sum();
            let rhs: f64 = x
                .iter()
                .zip(&fold_patches(&g, w, f, k))
                .map(|(a, b)| (a * b) as f64)
                .sum();
            assert!(
                (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn positions_and_windows_are_inverse_transposes() {
        let (w, f) = (3, 6);
        let x = values(4 * w * f);
        let back = positions_to_windows(&windows_to_positions(&x, w, f), w, f);
        assert_eq!(back, x);
        // Row p of a window's positions is column p of its states.
        let rows = windows_to_positions(&x, w, f);
        assert_eq!(rows[2 * w + 1], x[f + 2]);
    }
}
