//! The pseudo-spectral solver: its FFT plans, wavenumbers, operators and scratch, the random
//! initial field and whole trajectories.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::aligned::Aligned;
use super::grid::{grid_step, signed};
use super::scheme::STAGES;
use super::{Flow, Kolmogorov};
use crate::mcs::column_fft::ColumnFft;

/// A pseudo-spectral solver for one grid: FFT plans, wavenumbers, the linear operator and the
/// scratch of the time steps, so that stepping allocates nothing.
///
/// Transforms pack two real fields `a`, `b` into one complex `z = a + i b` and use complex
/// FFTs, pruned by the 2/3 rule. The grid (`grid`, `[n, n + GRID_PAD]`) has rows `y` (or
/// `k_y`) and columns `x` (or `k_x`), both in FFT order. The spectrum is written into the rows
/// `k_y ∈ [−K, K]` and transformed down the columns `k_x ∈ [−K, K]` only ([`ColumnFft`],
/// eight columns per SIMD register, no transposes; the other rows are read as zeros); then
/// each grid row is transformed along `x` while it stays in L1, the products `uv`, `v² − u²`
/// are formed, and the row goes back; the forward column transforms bring the kept modes back.
/// The rows `k_y < 0` of `ẑ` come from `ω̂(−k) = conj ω̂(k)`.
pub struct Solver {
    pub(super) config: Kolmogorov,
    /// Grid points per axis.
    pub(super) n: usize,
    /// Largest kept wavenumber per axis, `(n − 1) / 3`.
    pub(super) k_max: usize,
    pub(super) fft: Arc<dyn Fft<f32>>,
    pub(super) ifft: Arc<dyn Fft<f32>>,
    /// The same transforms down the columns.
    pub(super) column_fft: ColumnFft,
    pub(super) column_ifft: ColumnFft,
    /// First columns of the 8-column blocks that hold a kept `k_x`.
    pub(super) column_blocks: Vec<usize>,
    /// `k_x` of each column (FFT order).
    pub(super) kx: Vec<f32>,
    /// Whether a column is kept by the 2/3 rule.
    pub(super) keep: Vec<bool>,
    /// `(k_x + i k_y) / |k|²` on the rows `k_y ∈ [0, K]`, then `(k_x − i k) / |k|²` for
    /// `k_y = −k`, `k = 1, …, K`, `[2K + 1, n]` (zero outside the 2/3 rule and at `k = 0`).
    pub(super) velocity_factor: Aligned<Complex32>,
    /// `(k_y² − k_x²) / (2 n²)` and `k_x k_y / (2 n²)` on the rows `k_y ∈ [0, K]`, `[K + 1, n]`.
    pub(super) advection_factor: Aligned<[f32; 2]>,
    /// `∇×f` in Fourier.
    pub(super) forcing: Aligned<Complex32>,
    /// The step of the cached integrating factors.
    pub(super) factor_step: f64,
    /// Per stage, `e^{L τ}` with `τ = (c_{i+1} − c_i) h` (`c_7 = 1`), which carries the stage's
    /// values to the next stage's time, as `1 + c` per column times `1 + r` per row, with
    /// `c = e^{−ν k_x² τ} − 1` (`[STAGES, n]`) and `r = e^{−(ν k_y² + α) τ} − 1`
    /// (`[STAGES, K + 1]`). Kept minus one, because `e^{L τ}` is within 1e-3 of 1 for the
    /// energetic modes: rounded to float32 itself, its error would be the same every step, and
    /// over hundreds of steps would change the drag by a few tenths of a percent.
    pub(super) transfer_columns: Vec<f32>,
    pub(super) transfer_rows: Vec<f32>,
    // Scratch.
    /// At a 64-byte boundary, so that the column transforms' loads and stores are whole
    /// cache lines.
    pub(super) grid: Aligned<Complex32>,
    pub(super) fft_scratch: Vec<Complex32>,
    pub(super) column_scratch: Vec<f32>,
    /// One grid row reversed in `x` (`k_x → −k_x`).
    pub(super) mirror: Vec<Complex32>,
    pub(super) phys_u: Vec<f32>,
    pub(super) phys_v: Vec<f32>,
    /// The non-linear term of the current stage (the first stage's, `N(ω)`, comes with the
    /// speed before the step is planned).
    pub(super) stage_term: Aligned<Complex32>,
    /// The 2N scheme's `d`.
    pub(super) du: Aligned<Complex32>,
}

impl Solver {
    /// Plans the FFTs and precomputes wavenumbers and the forcing for `config`'s grid.
    pub fn new(config: &Kolmogorov) -> Self {
        config.check().expect("valid Kolmogorov parameters");
        let n = config.size;
        let k_max = (n - 1) / 3;
        let modes = (k_max + 1) * n;
        let mut planner = FftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(n);
        let ifft = planner.plan_fft_inverse(n);
        let kx: Vec<f32> = (0..n).map(|i| signed(i, n) as f32).collect();
        let keep = (0..n)
            .map(|i| signed(i, n).unsigned_abs() <= k_max)
            .collect();
        let column_fft = ColumnFft::new(n, false);
        let fft_scratch_len = fft
            .get_inplace_scratch_len()
            .max(ifft.get_inplace_scratch_len());
        let mut solver = Self {
            config: config.clone(),
            n,
            k_max,
            fft,
            ifft,
            column_scratch: vec![0.0; column_fft.scratch_len()],
            column_fft,
            column_ifft: ColumnFft::new(n, true),
            column_blocks: (0..n.div_ceil(8))
                .map(|b| 8 * b)
                .filter(|&c| (c..c + 8).any(|i| signed(i, n).unsigned_abs() <= k_max))
                .collect(),
            kx,
            keep,
            velocity_factor: Aligned::new((2 * k_max + 1) * n),
            advection_factor: Aligned::new(modes),
            forcing: Aligned::new(modes),
            factor_step: f64::NAN,
            transfer_columns: vec![0.0; STAGES * n],
            transfer_rows: vec![0.0; STAGES * (k_max + 1)],
            grid: Aligned::new(n * (n + GRID_PAD)),
            fft_scratch: vec![Complex32::ZERO; fft_scratch_len],
            mirror: vec![Complex32::ZERO; n],
            phys_u: vec![0.0; n * n],
            phys_v: vec![0.0; n * n],
            stage_term: Aligned::new(modes),
            du: Aligned::new(modes),
        };
        // ∇×f = −A k_f cos(k_f y), sampled at the cell centres and transformed once.
        let (a, kf, dx) = (
            config.forcing_amplitude,
            config.forcing_wavenumber as f64,
            grid_step(n),
        );
        let mut curl = vec![0.0f32; n * n];
        for row in curl.chunks_mut(n) {
            for (j, c) in row.iter_mut().enumerate() {
                *c = (-a * kf * (kf * (j as f64 + 0.5) * dx).cos()) as f32;
            }
        }
        let rows = 2 * k_max + 1;
        let scale = 0.5 / (n * n) as f32;
        for r in 0..rows {
            // Rows past K are those of k_y = −(r − K).
            let ky = if r <= k_max {
                r as f32
            } else {
                -((r - k_max) as f32)
            };
            for i in 0..n {
                let kx = solver.kx[i];
                let k2 = kx * kx + ky * ky;
                let kept = solver.keep[i] && k2 > 0.0;
                let f = if kept { 1.0 / k2 } else { 0.0 };
                solver.velocity_factor[r * n + i] = Complex32::new(kx * f, ky * f);
                if r <= k_max {
                    solver.advection_factor[r * n + i] =
                        [(ky * ky - kx * kx) * scale, kx * ky * scale];
                }
            }
        }
        let mut forcing = vec![Complex32::ZERO; modes];
        let mut unused = vec![Complex32::ZERO; modes];
        solver.forward_pair(&curl, &vec![0.0; n * n], &mut forcing, &mut unused);
        solver.forcing.copy_from_slice(&forcing);
        solver
    }

    /// Grid points per axis of the simulation.
    pub fn size(&self) -> usize {
        self.n
    }

    /// A zero flow.
    pub fn zero(&self) -> Flow {
        Flow {
            omega: vec![Complex32::ZERO; (self.k_max + 1) * self.n],
            mean: [0.0; 2],
        }
    }

    /// The random initial field of jax-cfd's `filtered_velocity_field`: white noise `(u, v)`
    /// (all of `u`'s `size²` draws, then `v`'s) filtered by `p(k) / k`, `p` the log-normal
    /// density of mode `peak_wavenumber` and log-variance ¼, made divergence-free (the curl
    /// keeps only the solenoidal part) and scaled to a maximum speed of `max_velocity`.
    pub fn initial(&mut self, rng: &mut StdRng) -> Flow {
        let n = self.n;
        let mut u = std::mem::take(&mut self.phys_u);
        let mut v = std::mem::take(&mut self.phys_v);
        for x in u.iter_mut().chain(v.iter_mut()) {
            *x = StandardNormal.sample(rng);
        }
        let mut su = self.zero().omega;
        let mut sv = su.clone();
        self.forward_pair(&u, &v, &mut su, &mut sv);
        self.phys_u = u;
        self.phys_v = v;
        let mut flow = self.zero();
        let peak = self.config.peak_wavenumber;
        for ky in 0..=self.k_max {
            for i in 0..n {
                let (kx, kyf) = (self.kx[i], ky as f32);
                let k = (kx * kx + kyf * kyf).sqrt() as f64;
                if k == 0.0 {
                    continue;
                }
                let filter = (log_normal_pdf(k, peak, 0.25) / k) as f32;
                let m = ky * n + i;
                // ω̂ = i k_x v̂ − i k_y û
                flow.omega[m] = Complex32::i() * (kx * sv[m] - kyf * su[m]) * filter;
            }
        }
        self.velocity_in_place(&flow);
        let speed = self
            .phys_u
            .iter()
            .zip(&self.phys_v)
            .map(|(u, v)| u * u + v * v)
            .fold(0.0f32, f32::max)
            .sqrt();
        let scale = (self.config.max_velocity / speed as f64) as f32;
        for w in &mut flow.omega {
            *w *= scale;
        }
        flow
    }

    /// One trajectory: a random initial field, `burn_in` saved intervals dropped, then
    /// `length` coarse states `[length, 2, h, w]`.
    pub fn trajectory(&mut self, rng: &mut StdRng, length: usize, burn_in: usize) -> Vec<f32> {
        let d = self.config.state_len();
        let mut out = vec![0.0; length * d];
        let mut flow = self.initial(rng);
        for _ in 0..burn_in {
            self.advance(&mut flow, self.config.dt);
        }
        for (i, state) in out.chunks_mut(d).enumerate() {
            if i > 0 {
                self.advance(&mut flow, self.config.dt);
            }
            self.coarse(&flow, state);
        }
        out
    }
}

/// The unnormalised log-normal density of jax-cfd's filter: mode `mode`, log-variance `var`.
fn log_normal_pdf(k: f64, mode: f64, var: f64) -> f64 {
    let mean = mode.ln() + var;
    let lk = k.ln();
    (-(mean - lk).powi(2) / 2.0 / var - lk).exp()
}

/// Padding of the grid's rows (in complex numbers): the rows of a column transform, `n +
/// GRID_PAD` apart, do not all fall in the same cache sets when `n` is a power of two, and the
/// last 8-column block may reach past column `n` when 8 does not divide it.
pub(super) const GRID_PAD: usize = 8;
