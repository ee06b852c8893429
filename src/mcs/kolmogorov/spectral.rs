//! Transforms between the flow's Fourier modes and velocities on the grid: the packed
//! two-field FFTs, the curl, the block average of saved states and its lift back.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;

use super::Flow;
use super::grid::{block_average, fft2, grid_step, signed};
use super::solver::{GRID_PAD, Solver};

impl Solver {
    /// Writes `ẑ = û + i v̂ = (k_x + i k_y) ψ̂`, `ψ̂ = ω̂ / |k|²`, into the grid rows
    /// `k_y ∈ [0, K]` and, from `ω̂(−k) = conj ω̂(k)`, the rows `k_y ∈ [−K, −1]` (zeros in the
    /// columns `|k_x| > K`; the mean `U + i V` at `k = 0`), then transforms down the kept columns
    /// (the rows `K < |k_y|` read as zeros): the grid holds `z` along `y`, `ẑ` along `x`.
    #[inline(always)]
    pub(super) fn spectral_to_grid(&mut self, omega: &[Complex32], mean: [f64; 2]) {
        let (n, k) = (self.n, self.k_max);
        let gs = n + GRID_PAD;
        for r in 0..2 * k + 1 {
            let (dst, src) = if r <= k { (r, r) } else { (n - (r - k), r - k) };
            let dst = &mut self.grid[dst * gs..][..n];
            let f = &self.velocity_factor[r * n..(r + 1) * n];
            let mut w = &omega[src * n..(src + 1) * n];
            if r > k {
                // ω̂(k_x, −k) = conj ω̂(−k_x, k): the row's column −k_x (conjugated below).
                mirror_kept(w, k, &mut self.mirror);
                w = &self.mirror;
            }
            dst[k + 1..n - k].fill(Complex32::ZERO);
            for range in [0..k + 1, n - k..n] {
                let pairs = dst[range.clone()]
                    .iter_mut()
                    .zip(&f[range.clone()])
                    .zip(&w[range]);
                if r <= k {
                    for ((d, f), w) in pairs {
                        *d = f * w;
                    }
                } else {
                    for ((d, f), w) in pairs {
                        *d = f * w.conj();
                    }
                }
            }
        }
        self.grid[0] = Complex32::new(mean[0] as f32, mean[1] as f32);
        self.column_ifft.process(
            &mut self.grid[..],
            gs,
            &self.column_blocks,
            k + 1..n - k,
            &mut self.column_scratch,
        );
    }

    /// The velocity on the simulation grid into `phys_u`, `phys_v`; returns `max(|u| + |v|)`.
    pub(super) fn velocity_in_place(&mut self, flow: &Flow) -> f64 {
        crate::kernels::simd!(self.spectral_to_grid(&flow.omega, flow.mean));
        let (n, k) = (self.n, self.k_max);
        let mut lanes = [0.0; SPEED_LANES];
        for (y, row) in self.grid[..].chunks_exact_mut(n + GRID_PAD).enumerate() {
            let row = &mut row[..n];
            clear_dropped_columns(row, y, k);
            self.ifft.process_with_scratch(row, &mut self.fft_scratch);
            fold_speed(row, &mut lanes);
            for (x, z) in row.iter().enumerate() {
                self.phys_u[x * n + y] = z.re;
                self.phys_v[x * n + y] = z.im;
            }
        }
        max_speed(&lanes) as f64
    }

    /// Forward transforms of two real `[n, n]` fields to their kept modes `[K + 1, n]`,
    /// normalised so that `a(x) = Σ_k â_k e^{i k·x}`.
    pub(super) fn forward_pair(
        &mut self,
        a: &[f32],
        b: &[f32],
        sa: &mut [Complex32],
        sb: &mut [Complex32],
    ) {
        let (n, k) = (self.n, self.k_max);
        let gs = n + GRID_PAD;
        for (y, row) in self.grid[..].chunks_exact_mut(gs).enumerate() {
            let row = &mut row[..n];
            for (x, z) in row.iter_mut().enumerate() {
                *z = Complex32::new(a[x * n + y], b[x * n + y]);
            }
            self.fft.process_with_scratch(row, &mut self.fft_scratch);
        }
        crate::kernels::simd!(self.column_fft.process(
            &mut self.grid[..],
            gs,
            &self.column_blocks,
            0..0,
            &mut self.column_scratch,
        ));
        let scale = 1.0 / (n * n) as f32;
        for ky in 0..=k {
            let (a_row, b_row) = (ky * gs, (n - ky) % n * gs);
            for i in 0..n {
                let m = ky * n + i;
                if !self.keep[i] {
                    sa[m] = Complex32::ZERO;
                    sb[m] = Complex32::ZERO;
                    continue;
                }
                // p = ẑ(k), q = conj ẑ(−k)
                let p = self.grid[a_row + i];
                let q = self.grid[b_row + (n - i) % n].conj();
                sa[m] = 0.5 * scale * (p + q);
                sb[m] = Complex32::new(0.0, -0.5 * scale) * (p - q);
            }
        }
    }

    /// The velocity `(u, v)` on the simulation grid.
    ///
    /// # Shapes
    /// - returns: `[2, size, size]`
    pub fn velocity(&mut self, flow: &Flow) -> Vec<f32> {
        self.velocity_in_place(flow);
        let mut out = self.phys_u.clone();
        out.extend_from_slice(&self.phys_v);
        out
    }

    /// The flow of a velocity field on the simulation grid, projected onto divergence-free
    /// fields (only the curl and the mean are kept) and truncated by the 2/3 rule.
    ///
    /// # Shapes
    /// - velocity: `[2, size, size]`
    pub fn from_velocity(&mut self, velocity: &[f32]) -> Flow {
        let nn = self.n * self.n;
        assert_eq!(velocity.len(), 2 * nn, "velocity of shape [2, size, size]");
        let mut su = self.zero().omega;
        let mut sv = su.clone();
        self.forward_pair(&velocity[..nn], &velocity[nn..], &mut su, &mut sv);
        self.curl(&su, &sv)
    }

    /// `ω̂ = i k_x v̂ − i k_y û`, the mean from the zero modes.
    pub(super) fn curl(&self, su: &[Complex32], sv: &[Complex32]) -> Flow {
        let mut flow = self.zero();
        for ky in 0..=self.k_max {
            for i in 0..self.n {
                let m = ky * self.n + i;
                flow.omega[m] = Complex32::i() * (self.kx[i] * sv[m] - ky as f32 * su[m]);
            }
        }
        flow.mean = [su[0].re as f64, sv[0].re as f64];
        flow
    }

    /// Block-averages the velocity `coarsen×` into `out`, `[2, h, w]`.
    pub fn coarse(&mut self, flow: &Flow, out: &mut [f32]) {
        self.velocity_in_place(flow);
        let (n, c) = (self.n, self.config.coarsen);
        let h = n / c;
        assert_eq!(out.len(), 2 * h * h, "coarse state of shape [2, h, w]");
        let (ou, ov) = out.split_at_mut(h * h);
        block_average(&self.phys_u, n, c, ou);
        block_average(&self.phys_v, n, c, ov);
    }

    /// Lifts a saved state `[2, h, w]` to the simulation grid: per channel, the coarse Fourier
    /// modes below the coarse Nyquist are divided by the block average's transfer function
    /// `H(k) = sin(k c dx/2) / (c sin(k dx/2))` per axis and shifted from the coarse cell
    /// centres to the fine ones; then the curl keeps the divergence-free part.
    pub fn lift(&mut self, coarse: &[f32]) -> Flow {
        let (n, c) = (self.n, self.config.coarsen);
        let h = n / c;
        assert_eq!(coarse.len(), 2 * h * h, "coarse state of shape [2, h, w]");
        let dx = grid_step(n);
        let transfer = |k: f64| {
            if k == 0.0 {
                1.0
            } else {
                (k * c as f64 * dx / 2.0).sin() / (c as f64 * (k * dx / 2.0).sin())
            }
        };
        let mut planner = FftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(h);
        let mut channels = [vec![Complex32::ZERO; self.zero().omega.len()], vec![]];
        channels[1] = channels[0].clone();
        for (ch, fine) in channels.iter_mut().enumerate() {
            let g = fft2(&coarse[ch * h * h..(ch + 1) * h * h], h, &fft);
            for (a, row) in g.chunks(h).enumerate() {
                let kx = signed(a, h);
                for (b, val) in row.iter().enumerate() {
                    let ky = signed(b, h);
                    // Drop the coarse Nyquist (ambiguous) and the conjugate half k_y < 0.
                    if kx.unsigned_abs() * 2 >= h || ky < 0 || ky as usize * 2 >= h {
                        continue;
                    }
                    if kx.unsigned_abs() > self.k_max || ky as usize > self.k_max {
                        continue;
                    }
                    let (kxf, kyf) = (kx as f64, ky as f64);
                    let phase = (kxf + kyf) * (dx - c as f64 * dx) / 2.0;
                    let scale = 1.0 / (transfer(kxf) * transfer(kyf) * (h * h) as f64);
                    let shift = Complex32::from_polar(scale as f32, phase as f32);
                    let i = if kx >= 0 {
                        kx as usize
                    } else {
                        n - kx.unsigned_abs()
                    };
                    fine[ky as usize * n + i] = val * shift;
                }
            }
        }
        self.curl(&channels[0], &channels[1])
    }
}

/// Zeros the columns `|k_x| > K` of grid row `y` before its transform along `x`, where they
/// may hold something else: only in the rows `K < y < n − K`. In the other rows
/// [`Solver::spectral_to_grid`] wrote zeros there, and the column transforms, which write
/// every row of the kept columns' blocks, read them as zeros (so they give zeros back).
#[inline(always)]
pub(super) fn clear_dropped_columns(row: &mut [Complex32], y: usize, k: usize) {
    let n = row.len();
    if y > k && y < n - k {
        for z in &mut row[k + 1..n - k] {
            *z = Complex32::ZERO;
        }
    }
}

/// `dst[i] = src[−i mod n]` on the kept columns `i ∈ [0, K] ∪ [n − K, n)` (`k_x → −k_x`):
/// columns 1..=K pair with n − 1, …, n − K and back. One reversed copy, so that the loops that
/// use it run forwards.
#[inline(always)]
pub(super) fn mirror_kept(src: &[Complex32], k: usize, dst: &mut [Complex32]) {
    let n = src.len();
    dst[0] = src[0];
    for (to, from) in [(1..k + 1, n - k..n), (n - k..n, 1..k + 1)] {
        for (d, s) in dst[to].iter_mut().zip(src[from].iter().rev()) {
            *d = *s;
        }
    }
}

/// Running maxima of `|u| + |v|` in [`SPEED_LANES`] lanes, so that the fold vectorises
/// (reduced once, by [`max_speed`], after the last row).
pub(super) const SPEED_LANES: usize = 32;

/// Folds `|re| + |im|` of a row of `u + i v` into `lanes`.
#[inline(always)]
pub(super) fn fold_speed(row: &[Complex32], lanes: &mut [f32; SPEED_LANES]) {
    let chunks = row.chunks_exact(SPEED_LANES);
    for z in chunks.remainder() {
        let v = z.re.abs() + z.im.abs();
        lanes[0] = if v > lanes[0] || v.is_nan() {
            v
        } else {
            lanes[0]
        };
    }
    for chunk in chunks {
        for (l, z) in lanes.iter_mut().zip(chunk) {
            // NaN sticks (so that a blown-up flow shows), unlike `f32::max`.
            let v = z.re.abs() + z.im.abs();
            *l = if v > *l || v.is_nan() { v } else { *l };
        }
    }
}

/// `max(|u| + |v|)` from the lanes of [`fold_speed`]; NaN if any value was NaN.
pub(super) fn max_speed(lanes: &[f32; SPEED_LANES]) -> f32 {
    lanes.iter().fold(0.0f32, |m, &l| {
        if l.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(l)
        }
    })
}
