//! Time stepping: sub-steps planned from the Courant condition, the Runge–Kutta stages in
//! integrating-factor form, and the non-linear term.

use rustfft::num_complex::Complex32;

use super::Flow;
use super::grid::grid_step;
use super::scheme::{COURANT_LIMIT, REPLAN_SLACK, RK_A, RK_B, RK_C, STAGES};
use super::solver::{GRID_PAD, Solver};
use super::spectral::{SPEED_LANES, clear_dropped_columns, fold_speed, max_speed, mirror_kept};

impl Solver {
    /// Advances `flow` by `duration` in equal sub-steps, as many as the Courant
    /// condition `h max(|u| + |v|) / dx ≤ courant` at the start asks for; returns their number.
    ///
    /// The speed is measured again at the start of every sub-step (it comes free with the
    /// step's first evaluation of `N`): where it has grown so that the sub-step's Courant number
    /// would pass `courant` by more than [`REPLAN_SLACK`] (or pass [`COURANT_LIMIT`]), the rest
    /// of the interval is planned again from that speed.
    pub fn advance(&mut self, flow: &mut Flow, duration: f64) -> usize {
        let dx = grid_step(self.n);
        let courant = self.config.courant;
        let ceiling = (courant * (1.0 + REPLAN_SLACK)).min(COURANT_LIMIT);
        let (mut left, mut planned, mut h, mut taken) = (duration, 0usize, 0.0, 0usize);
        loop {
            let speed = crate::kernels::simd!(self.first_stage(flow));
            // A blown-up flow would otherwise plan an endless interval.
            assert!(
                speed.is_finite(),
                "the Kolmogorov flow blew up (non-finite velocity): lower kolmogorov.courant"
            );
            if planned == 0 || speed * h / dx > ceiling {
                planned = (left * speed / (courant * dx)).ceil().max(1.0) as usize;
                h = left / planned as f64;
            }
            crate::kernels::simd!(self.rest_of_step(flow, h));
            taken += 1;
            planned -= 1;
            left -= h;
            if planned == 0 {
                return taken;
            }
        }
    }

    /// One time step of size `h` ([`RK_A`]): with `u = ω`, `d = 0`, for each stage
    /// `d ← A_i d + h N(u)`, `u ← u + B_i d`, the non-linear term `N` taken at the stage's time
    /// `c_i h`. In integrating-factor form, `u` and `d` are kept at the time of the stage that
    /// uses them: after each stage both are multiplied by `e^{L (c_{i+1} − c_i) h}`, and the
    /// last stage's `u`, carried to `t + h`, is the new `ω`.
    pub fn step(&mut self, flow: &mut Flow, h: f64) {
        // The pointwise loops run compiled for AVX-512 where the CPU has it (the FFTs pick
        // their own instructions at run time).
        crate::kernels::simd!(self.first_stage(flow));
        crate::kernels::simd!(self.rest_of_step(flow, h))
    }

    /// `N(ω)` of the next step into `stage_term`; returns `max(|u| + |v|)` of the flow.
    #[inline(always)]
    fn first_stage(&mut self, flow: &Flow) -> f64 {
        let mut term = std::mem::take(&mut self.stage_term);
        let speed = self.nonlinear(&flow.omega, flow.mean, &mut term, true);
        self.stage_term = term;
        speed as f64
    }

    /// The step of size `h` after [`Self::first_stage`].
    #[inline(always)]
    fn rest_of_step(&mut self, flow: &mut Flow, h: f64) {
        let (n, k) = (self.n, self.k_max);
        if self.factor_step != h {
            let nu = 1.0 / self.config.reynolds;
            for (i, &c) in RK_C.iter().enumerate() {
                let next = RK_C.get(i + 1).copied().unwrap_or(1.0);
                let tau = (next - c) * h;
                for (e, &kx) in self.transfer_columns[i * n..(i + 1) * n]
                    .iter_mut()
                    .zip(&self.kx)
                {
                    *e = (-nu * (kx as f64).powi(2) * tau).exp_m1() as f32;
                }
                for (ky, e) in self.transfer_rows[i * (k + 1)..(i + 1) * (k + 1)]
                    .iter_mut()
                    .enumerate()
                {
                    *e = (-(nu * (ky as f64).powi(2) + self.config.drag) * tau).exp_m1() as f32;
                }
            }
            self.factor_step = h;
        }
        let hf = h as f32;
        let (drag, mean0) = (self.config.drag, flow.mean);
        let mean = |tau: f64| mean0.map(|m| m * (-drag * tau).exp());
        let mut nonlinear = std::mem::take(&mut self.stage_term);
        let mut du = std::mem::take(&mut self.du);
        for i in 0..STAGES {
            if i > 0 {
                self.nonlinear(&flow.omega, mean(RK_C[i] * h), &mut nonlinear, false);
            }
            let (a, b) = (RK_A[i] as f32, RK_B[i] as f32);
            let columns = &self.transfer_columns[i * n..(i + 1) * n];
            for ky in 0..=k {
                let row = self.transfer_rows[i * (k + 1) + ky];
                let modes = ky * n..(ky + 1) * n;
                let (w, d, f) = (
                    &mut flow.omega[modes.clone()],
                    &mut du[modes.clone()],
                    &nonlinear[modes],
                );
                // Zipped slices over the kept columns (the others stay zero), so that the
                // update vectorises.
                for range in [0..k + 1, n - k..n] {
                    for (((w, d), &f), &e) in w[range.clone()]
                        .iter_mut()
                        .zip(&mut d[range.clone()])
                        .zip(&f[range.clone()])
                        .zip(&columns[range])
                    {
                        // e^{Lτ} − 1 = (1 + r)(1 + c) − 1
                        let e = row + e + row * e;
                        let next = a * *d + hf * f;
                        let w1 = *w + b * next;
                        *w = w1 + w1 * e;
                        *d = next + next * e;
                    }
                }
            }
        }
        flow.mean = mean(h);
        self.stage_term = nonlinear;
        self.du = du;
    }

    /// `N(ω) = −u·∇ω + ∇×f` in Fourier, with Basdevant's
    /// `u·∇ω = (∂x² − ∂y²)(uv) + ∂x∂y(v² − u²)`, i.e. `(k_y² − k_x²) (uv)^ − k_x k_y (v² − u²)^`.
    /// Returns `max(|u| + |v|)` on the grid if `measure`, else 0.
    #[inline(always)]
    fn nonlinear(
        &mut self,
        omega: &[Complex32],
        mean: [f64; 2],
        out: &mut [Complex32],
        measure: bool,
    ) -> f32 {
        self.spectral_to_grid(omega, mean);
        let (n, k) = (self.n, self.k_max);
        let mut lanes = [0.0; SPEED_LANES];
        for (y, row) in self.grid[..].chunks_exact_mut(n + GRID_PAD).enumerate() {
            let row = &mut row[..n];
            clear_dropped_columns(row, y, k);
            self.ifft.process_with_scratch(row, &mut self.fft_scratch);
            if measure {
                fold_speed(row, &mut lanes);
            }
            // z = u + i v  →  uv + i (v² − u²)
            for z in row.iter_mut() {
                let (u, v) = (z.re, z.im);
                *z = Complex32::new(u * v, v * v - u * u);
            }
            self.fft.process_with_scratch(row, &mut self.fft_scratch);
        }
        self.column_fft.process(
            &mut self.grid[..],
            n + GRID_PAD,
            &self.column_blocks,
            0..0,
            &mut self.column_scratch,
        );
        let gs = n + GRID_PAD;
        for ky in 0..=k {
            // (uv)^ ∝ a + b, (v² − u²)^ ∝ −i (a − b), with a = z_k and b = conj z_−k.
            let neg = (n - ky) % n;
            let (za, zb) = (&self.grid[ky * gs..][..n], &self.grid[neg * gs..][..n]);
            let zm = &mut self.mirror;
            mirror_kept(zb, k, zm);
            let (f, c) = (
                &self.forcing[ky * n..(ky + 1) * n],
                &self.advection_factor[ky * n..(ky + 1) * n],
            );
            // The columns |k_x| > K of `out` are never written: they stay zero.
            let o = &mut out[ky * n..(ky + 1) * n];
            let term = |a: Complex32, b: Complex32, c: [f32; 2], f: Complex32| {
                let b = b.conj();
                let (s, d) = (a + b, a - b);
                // f − (c₀ (a + b) − c₁ (−i)(a − b)) = f − c₀ s − i c₁ d
                f - s * c[0] - Complex32::new(-d.im, d.re) * c[1]
            };
            for range in [0..k + 1, n - k..n] {
                for ((((o, &a), &b), &c), &f) in o[range.clone()]
                    .iter_mut()
                    .zip(&za[range.clone()])
                    .zip(&zm[range.clone()])
                    .zip(&c[range.clone()])
                    .zip(&f[range])
                {
                    *o = term(a, b, c, f);
                }
            }
        }
        if measure { max_speed(&lanes) } else { 0.0 }
    }
}
