//! Kolmogorov flow: 2-D incompressible Navier–Stokes on the periodic square `[0, 2π]²`
//! (docs/method.md §8), the reference's jax-cfd set-up solved pseudo-spectrally.
//!
//! In vorticity form, with `ω = ∂v/∂x − ∂u/∂y` and density 1,
//!
//! `∂ω/∂t + u·∇ω = ν ∇²ω − α ω + ∇×f`,  `f = (A sin(k_f y), 0)`,  `∇×f = −A k_f cos(k_f y)`,
//!
//! where `ν = 1 / Re` and `α` is the linear drag (jax-cfd's `simple_turbulence_forcing` with
//! `forcing_type='kolmogorov'`, `linear_coefficient=−α`). The velocity is `u = ∂ψ/∂y`,
//! `v = −∂ψ/∂x` with `∇²ψ = −ω`, plus a spatially uniform mean `(U, V)` that only the drag
//! changes, `dU/dt = −α U`; it is kept so that lifted states with a non-zero mean evolve right.
//!
//! - Space: Fourier modes of a `size²` grid, 2/3-rule dealiasing (`|k_x|, |k_y| ≤ (size − 1)/3`),
//!   grid values at cell centres `((i + ½) dx, (j + ½) dx)`, `x` the first axis.
//! - Advection: Basdevant's form for 2-D, `u·∇ω = (∂x² − ∂y²)(uv) + ∂x∂y(v² − u²)`
//!   (Basdevant 1983, *J. Comput. Phys.* 50), four real FFTs per evaluation.
//! - Time: a six-stage, fourth-order Runge–Kutta scheme in 2N-storage (Williamson 1980)
//!   form, in integrating-factor (Lawson 1967) form: exact for the viscosity and drag
//!   `L = −ν|k|² − α`. Its coefficients ([`RK_A`], [`RK_B`]) solve the eight fourth-order
//!   conditions with a stability polynomial chosen for the longest interval of the imaginary
//!   axis, `|y| ≤ 4.886` (classical RK4: 2.828), the axis where dealiased advection's
//!   eigenvalues lie: 0.81 of the interval per evaluation of the non-linear term against RK4's
//!   0.71, so 13 % fewer evaluations at the same margin. The sub-steps of each saved
//!   interval `dt` are planned from the Courant condition
//!   `h (max|u| + max|v|) / dx ≤ courant` at the interval's start, and planned again if the
//!   speed grows past it during the interval (the speed comes free with each sub-step).
//! - Initial state (jax-cfd `filtered_velocity_field`): white noise on each velocity channel
//!   filtered by the log-normal spectral density peaked at `peak_wavenumber`, projected onto
//!   divergence-free fields and scaled to a maximum speed `max_velocity`.
//!
//! Saved states are block-averaged `coarsen×` to `(u, v)` on an `(h, w)` grid, `h = w =
//! size / coarsen`, float32, array layout `(2, h, w)` with axis −2 = x and axis −1 = y.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use super::chain_rng;
use super::column_fft::ColumnFft;
use crate::error::{Error, Result};

/// The 2N-storage Runge–Kutta scheme: stage `i` (time `t + c_i h`) takes
/// `d ← A_i d + h N(u)`, `u ← u + B_i d`, starting from `u = ω`, `d = 0`.
///
/// Found numerically (Gauss–Newton from random starts, `scripts/rk-coefficients.py`): the
/// eight order conditions of order four, and the stability polynomial
/// `1 + z + z²/2 + z³/6 + z⁴/24 + a₅ z⁵ + a₆ z⁶` with `(a₅, a₆) = (0.00555, 0.00091)`, the pair
/// with the longest stable interval of the imaginary axis; of the solutions, the one with the
/// smallest coefficients and `c ∈ [0, 1]`, whose fifth-order error terms are also smaller than
/// RK4's (norm 0.013 against 0.022). The tests check both properties.
pub const RK_A: [f64; 6] = [
    0.0,
    0.17793869057957093,
    -1.1777230492092143,
    1.5554127377536044,
    0.42248171256587397,
    -1.1046328170012574,
];

/// See [`RK_A`].
pub const RK_B: [f64; 6] = [
    0.2023916434663131,
    -0.07831339545758272,
    -0.8631176521863002,
    1.1566686251641287,
    -0.08539765894324516,
    -0.6734228395583742,
];

/// The stage times `c_i` of [`RK_A`], [`RK_B`]: the Butcher tableau's row sums, i.e. the
/// scheme run on `N = 1` (`d ← A_i d + 1`, `c_{i+1} = c_i + B_i d`).
pub const RK_C: [f64; 6] = {
    let (mut c, mut d, mut i) = ([0.0; 6], 0.0, 0);
    while i + 1 < c.len() {
        d = RK_A[i] * d + 1.0;
        c[i + 1] = c[i] + RK_B[i] * d;
        i += 1;
    }
    c
};

/// Stages per step.
const STAGES: usize = RK_A.len();

/// How far along the imaginary axis the scheme is stable: `|R(iy)| ≤ 1` for `|y| ≤` this.
pub const RK_STABILITY: f64 = 4.886;

/// The largest Courant number `h (max|u| + max|v|) / dx` for which the scheme is stable on
/// dealiased Fourier modes: [`RK_STABILITY`]` / (k_max dx)` with `k_max dx ≤ 2π/3`.
const COURANT_LIMIT: f64 = RK_STABILITY * 3.0 / std::f64::consts::TAU;

/// How far above `courant` a sub-step may start before the rest of its interval is planned
/// again (relative).
const REPLAN_SLACK: f64 = 0.05;

/// The Kolmogorov-flow simulator and its parameters (defaults: the paper's, docs/method.md §8).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Kolmogorov {
    /// Simulation grid points per axis.
    pub size: usize,
    /// Block-averaging factor of the saved states (`size / coarsen` points per axis).
    pub coarsen: usize,
    /// Reynolds number: the viscosity is `1 / reynolds`.
    pub reynolds: f64,
    /// Linear drag coefficient `α` (the forcing includes `−α u`).
    pub drag: f64,
    /// Amplitude `A` of the Kolmogorov forcing `A sin(k_f y)` on `u`.
    pub forcing_amplitude: f64,
    /// Wavenumber `k_f` of the forcing.
    pub forcing_wavenumber: usize,
    /// Physical time between saved states.
    pub dt: f64,
    /// Maximum speed of the initial velocity field.
    pub max_velocity: f64,
    /// Wavenumber where the initial field's spectral filter peaks.
    pub peak_wavenumber: f64,
    /// Courant number `h (max|u| + max|v|) / dx` of the sub-steps.
    pub courant: f64,
}

impl Default for Kolmogorov {
    fn default() -> Self {
        Self {
            size: 256,
            coarsen: 4,
            reynolds: 1e3,
            drag: 0.1,
            forcing_amplitude: 1.0,
            forcing_wavenumber: 4,
            dt: 0.2,
            max_velocity: 3.0,
            peak_wavenumber: 4.0,
            courant: 2.2,
        }
    }
}

impl Kolmogorov {
    /// Checks the parameters: one named error per rule.
    pub fn check(&self) -> Result<()> {
        if self.size < 8 || !self.size.is_multiple_of(2) {
            return Err(Error::config(
                "--size",
                format!("must be even and at least 8, got {}", self.size),
            ));
        }
        if self.coarsen == 0 || !self.size.is_multiple_of(self.coarsen) {
            return Err(Error::config(
                "--coarsen",
                format!(
                    "must divide --size {} (got {}): states are block-averaged",
                    self.size, self.coarsen
                ),
            ));
        }
        let positive = [
            ("reynolds", self.reynolds),
            ("dt", self.dt),
            ("max_velocity", self.max_velocity),
            ("peak_wavenumber", self.peak_wavenumber),
        ];
        for (name, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::config(
                    format!("kolmogorov.{name}"),
                    format!("must be positive and finite, got {v}"),
                ));
            }
        }
        if !(self.drag >= 0.0 && self.drag.is_finite()) {
            return Err(Error::config(
                "kolmogorov.drag",
                format!("must be non-negative, got {}", self.drag),
            ));
        }
        if !self.forcing_amplitude.is_finite() {
            return Err(Error::config(
                "kolmogorov.forcing_amplitude",
                "must be finite",
            ));
        }
        if self.forcing_wavenumber > (self.size - 1) / 3 {
            return Err(Error::config(
                "kolmogorov.forcing_wavenumber",
                format!(
                    "{} is not resolved by a {}² grid",
                    self.forcing_wavenumber, self.size
                ),
            ));
        }
        if !(self.courant > 0.0 && self.courant <= COURANT_LIMIT) {
            return Err(Error::config(
                "kolmogorov.courant",
                format!(
                    "must be in (0, {COURANT_LIMIT}] for a stable time step, got {}",
                    self.courant
                ),
            ));
        }
        Ok(())
    }

    /// Grid points per axis of a saved state.
    pub fn resolution(&self) -> usize {
        self.size / self.coarsen
    }

    /// The shape of one saved state: `[2, size / coarsen, size / coarsen]`.
    pub fn state_shape(&self) -> [usize; 3] {
        let h = self.resolution();
        [2, h, h]
    }

    /// The values of one saved state.
    pub fn state_len(&self) -> usize {
        self.state_shape().iter().product()
    }

    /// A solver with its FFT plans and scratch; panics on invalid parameters (call
    /// [`Kolmogorov::check`] first).
    pub fn solver(&self) -> Solver {
        Solver::new(self)
    }

    /// One trajectory from the random initial field: `burn_in` saved intervals dropped, then
    /// `length` saved states.
    ///
    /// # Shapes
    /// - returns: `[length, 2, h, w]`, `h = w = size / coarsen`
    pub fn trajectory(&self, rng: &mut StdRng, length: usize, burn_in: usize) -> Vec<f32> {
        self.solver().trajectory(rng, length, burn_in)
    }

    /// `n` independent trajectories in parallel, trajectory `i` drawn with
    /// [`chain_rng`]`(seed, i)`, so that a seed gives the same bits whatever the thread count.
    ///
    /// # Shapes
    /// - returns: `[n, length, 2, h, w]`
    pub fn trajectories(&self, n: usize, length: usize, burn_in: usize, seed: u64) -> Vec<f32> {
        self.trajectories_with(n, length, burn_in, seed, &|_| {})
    }

    /// [`Kolmogorov::trajectories`], calling `done` with the CPU time each trajectory took on
    /// its thread (for progress bars and CPU-time accounting; see [`thread_time`]).
    pub fn trajectories_with(
        &self,
        n: usize,
        length: usize,
        burn_in: usize,
        seed: u64,
        done: &(dyn Fn(Duration) + Sync),
    ) -> Vec<f32> {
        self.trajectories_from(0, n, length, burn_in, seed, done)
    }

    /// Chains `first .. first + n` of [`Kolmogorov::trajectories_with`] with more chains (each
    /// chain's randomness depends on the seed and its index only).
    pub fn trajectories_from(
        &self,
        first: usize,
        n: usize,
        length: usize,
        burn_in: usize,
        seed: u64,
        done: &(dyn Fn(Duration) + Sync),
    ) -> Vec<f32> {
        let per = length * self.state_len();
        let mut out = vec![0.0; n * per];
        if per == 0 {
            return out;
        }
        out.par_chunks_mut(per).enumerate().for_each_init(
            || self.solver(),
            |solver, (i, traj)| {
                let t0 = thread_time();
                let mut rng = chain_rng(seed, (first + i) as u64);
                traj.copy_from_slice(&solver.trajectory(&mut rng, length, burn_in));
                done(thread_time().saturating_sub(t0));
            },
        );
        out
    }

    /// Re-simulates from one saved state: lifts `first` to the simulation grid (spectral
    /// interpolation that undoes the block average, then projection onto divergence-free
    /// fields), then simulates `length − 1` further saved intervals. The first returned state
    /// is the lifted field block-averaged again (equal to `first` up to its divergent part and
    /// its Nyquist modes).
    ///
    /// # Shapes
    /// - first: `[2, h, w]`
    /// - returns: `[length, 2, h, w]`
    pub fn resimulate(&self, first: &[f32], length: usize) -> Vec<f32> {
        let mut solver = self.solver();
        let mut flow = solver.lift(first);
        let d = self.state_len();
        let mut out = vec![0.0; length * d];
        for (i, state) in out.chunks_mut(d).enumerate() {
            if i > 0 {
                solver.advance(&mut flow, self.dt);
            }
            solver.coarse(&flow, state);
        }
        out
    }

    /// Statistics of `(n, l, 2, h, w)` saved states, the profile taken against
    /// `sin(forcing_wavenumber · y)`.
    pub fn statistics(&self, data: &[f32], n: usize, l: usize, h: usize, w: usize) -> Statistics {
        Statistics::of(data, [n, l, h, w], self.forcing_wavenumber)
    }
}

/// The state of the simulation: the vorticity's Fourier modes and the mean velocity.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// `ω̂(k_x, k_y)` for `0 ≤ k_y ≤ K` (rows) and all `k_x` in FFT order (columns), zero where
    /// `|k_x| > K`: `[K + 1, size]`, normalised so that `ω(x) = Σ_k ω̂_k e^{i k·x}`.
    pub omega: Vec<Complex32>,
    /// The uniform mean velocity `(U, V)`.
    pub mean: [f64; 2],
}

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
    config: Kolmogorov,
    /// Grid points per axis.
    n: usize,
    /// Largest kept wavenumber per axis, `(n − 1) / 3`.
    k_max: usize,
    fft: Arc<dyn Fft<f32>>,
    ifft: Arc<dyn Fft<f32>>,
    /// The same transforms down the columns.
    column_fft: ColumnFft,
    column_ifft: ColumnFft,
    /// First columns of the 8-column blocks that hold a kept `k_x`.
    column_blocks: Vec<usize>,
    /// `k_x` of each column (FFT order).
    kx: Vec<f32>,
    /// Whether a column is kept by the 2/3 rule.
    keep: Vec<bool>,
    /// `(k_x + i k_y) / |k|²` on the rows `k_y ∈ [0, K]`, then `(k_x − i k) / |k|²` for
    /// `k_y = −k`, `k = 1, …, K`, `[2K + 1, n]` (zero outside the 2/3 rule and at `k = 0`).
    velocity_factor: Aligned<Complex32>,
    /// `(k_y² − k_x²) / (2 n²)` and `k_x k_y / (2 n²)` on the rows `k_y ∈ [0, K]`, `[K + 1, n]`.
    advection_factor: Aligned<[f32; 2]>,
    /// `∇×f` in Fourier.
    forcing: Aligned<Complex32>,
    /// The step of the cached integrating factors.
    factor_step: f64,
    /// Per stage, `e^{L τ}` with `τ = (c_{i+1} − c_i) h` (`c_7 = 1`), which carries the stage's
    /// values to the next stage's time, as `1 + c` per column times `1 + r` per row, with
    /// `c = e^{−ν k_x² τ} − 1` (`[STAGES, n]`) and `r = e^{−(ν k_y² + α) τ} − 1`
    /// (`[STAGES, K + 1]`). Kept minus one, because `e^{L τ}` is within 1e-3 of 1 for the
    /// energetic modes: rounded to float32 itself, its error would be the same every step, and
    /// over hundreds of steps would change the drag by a few tenths of a percent.
    transfer_columns: Vec<f32>,
    transfer_rows: Vec<f32>,
    // Scratch.
    /// At a 64-byte boundary, so that the column transforms' loads and stores are whole
    /// cache lines.
    grid: Aligned<Complex32>,
    fft_scratch: Vec<Complex32>,
    column_scratch: Vec<f32>,
    /// One grid row reversed in `x` (`k_x → −k_x`).
    mirror: Vec<Complex32>,
    phys_u: Vec<f32>,
    phys_v: Vec<f32>,
    /// The non-linear term of the current stage (the first stage's, `N(ω)`, comes with the
    /// speed before the step is planned).
    stage_term: Aligned<Complex32>,
    /// The 2N scheme's `d`.
    du: Aligned<Complex32>,
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

    /// Writes `ẑ = û + i v̂ = (k_x + i k_y) ψ̂`, `ψ̂ = ω̂ / |k|²`, into the grid rows
    /// `k_y ∈ [0, K]` and, from `ω̂(−k) = conj ω̂(k)`, the rows `k_y ∈ [−K, −1]` (zeros in the
    /// columns `|k_x| > K`; the mean `U + i V` at `k = 0`), then transforms down the kept columns
    /// (the rows `K < |k_y|` read as zeros): the grid holds `z` along `y`, `ẑ` along `x`.
    #[inline(always)]
    fn spectral_to_grid(&mut self, omega: &[Complex32], mean: [f64; 2]) {
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
    fn velocity_in_place(&mut self, flow: &Flow) -> f64 {
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
    fn forward_pair(&mut self, a: &[f32], b: &[f32], sa: &mut [Complex32], sb: &mut [Complex32]) {
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
    fn curl(&self, su: &[Complex32], sv: &[Complex32]) -> Flow {
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
fn clear_dropped_columns(row: &mut [Complex32], y: usize, k: usize) {
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
fn mirror_kept(src: &[Complex32], k: usize, dst: &mut [Complex32]) {
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
const SPEED_LANES: usize = 32;

/// Folds `|re| + |im|` of a row of `u + i v` into `lanes`.
#[inline(always)]
fn fold_speed(row: &[Complex32], lanes: &mut [f32; SPEED_LANES]) {
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
fn max_speed(lanes: &[f32; SPEED_LANES]) -> f32 {
    lanes.iter().fold(0.0f32, |m, &l| {
        if l.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(l)
        }
    })
}

/// A buffer whose values start at a 64-byte boundary (a cache line, an AVX-512 register), so
/// that the loops over the spectra load and store whole lines.
#[derive(Default)]
struct Aligned<T> {
    buf: Vec<T>,
    at: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    /// `len` default values.
    fn new(len: usize) -> Self {
        let spare = 64 / size_of::<T>().max(1);
        let buf = vec![T::default(); len + spare];
        let at = buf.as_ptr().align_offset(64).min(spare);
        Self { buf, at, len }
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.at..self.at + self.len]
    }
}

impl<T> std::ops::DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.at..self.at + self.len]
    }
}

impl<'a, T> IntoIterator for &'a Aligned<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Aligned<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// Padding of the grid's rows (in complex numbers): the rows of a column transform, `n +
/// GRID_PAD` apart, do not all fall in the same cache sets when `n` is a power of two, and the
/// last 8-column block may reach past column `n` when 8 does not divide it.
const GRID_PAD: usize = 8;

/// Time this thread has spent on a CPU, from Linux's `/proc/thread-self/schedstat` (so that
/// timings stay honest on a loaded machine); elsewhere, wall-clock time since a fixed instant.
pub fn thread_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| START.get_or_init(Instant::now).elapsed())
}

/// Grid spacing of an `n`-point periodic axis on `[0, 2π]`.
fn grid_step(n: usize) -> f64 {
    2.0 * std::f64::consts::PI / n as f64
}

/// The signed wavenumber of FFT index `i` of an `n`-point transform.
fn signed(i: usize, n: usize) -> isize {
    if i <= n / 2 {
        i as isize
    } else {
        i as isize - n as isize
    }
}

/// The unnormalised log-normal density of jax-cfd's filter: mode `mode`, log-variance `var`.
fn log_normal_pdf(k: f64, mode: f64, var: f64) -> f64 {
    let mean = mode.ln() + var;
    let lk = k.ln();
    (-(mean - lk).powi(2) / 2.0 / var - lk).exp()
}

/// Block average of an `[n, n]` field by `c` into `[n/c, n/c]`.
fn block_average(fine: &[f32], n: usize, c: usize, out: &mut [f32]) {
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
fn fft2(x: &[f32], h: usize, fft: &Arc<dyn Fft<f32>>) -> Vec<Complex32> {
    let mut a: Vec<Complex32> = x.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft.process(&mut a); // along the second axis, row by row
    let mut t = vec![Complex32::ZERO; h * h];
    transpose(&a, &mut t, h);
    fft.process(&mut t); // along the first axis
    transpose(&t, &mut a, h);
    a
}

fn transpose(a: &[Complex32], t: &mut [Complex32], h: usize) {
    for i in 0..h {
        for j in 0..h {
            t[j * h + i] = a[i * h + j];
        }
    }
}

/// One-point and two-point statistics of saved Kolmogorov states, to compare a data set with
/// the reference (and assimilated samples with the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// Number of states.
    pub states: usize,
    /// Mean kinetic energy `½⟨u² + v²⟩`.
    pub energy: f64,
    /// One-point standard deviations of `u` and `v`.
    pub std: [f64; 2],
    /// `a` of the least-squares fit `⟨u⟩(y) ≈ a sin(k_f y)` over the cell centres.
    pub profile_amplitude: f64,
    /// Correlation between `⟨u⟩(y)` and `sin(k_f y)`.
    pub profile_correlation: f64,
    /// Isotropic energy spectrum `E(k)`, `k = 0, 1, …, h/2`: `½(|û|² + |v̂|²)` summed over the
    /// modes with `round(|k|) = k` and averaged over states, so that `Σ E(k) ≈ energy`.
    pub spectrum: Vec<f64>,
    /// Time autocorrelation of `u − ⟨u⟩(y)` at lags of 1 to 8 saved states.
    pub autocorrelation: Vec<f64>,
}

impl Statistics {
    /// The statistics of `[n, l, 2, h, w]` states, the profile against `sin(k_f y)`.
    pub fn of(data: &[f32], [n, l, h, w]: [usize; 4], k_f: usize) -> Self {
        let d = 2 * h * w;
        assert_eq!(data.len(), n * l * d, "data of shape [n, l, 2, h, w]");
        let states = n * l;
        let count = (states * h * w) as f64;
        let (mut su, mut sv, mut su2, mut sv2) = (0.0, 0.0, 0.0, 0.0);
        let mut profile = vec![0.0; w];
        for s in data.chunks(d) {
            let (u, v) = s.split_at(h * w);
            for (j, (a, b)) in u.iter().zip(v).enumerate() {
                let (a, b) = (*a as f64, *b as f64);
                su += a;
                sv += b;
                su2 += a * a;
                sv2 += b * b;
                profile[j % w] += a;
            }
        }
        for p in &mut profile {
            *p /= (states * h) as f64;
        }
        let std = [
            (su2 / count - (su / count).powi(2)).max(0.0).sqrt(),
            (sv2 / count - (sv / count).powi(2)).max(0.0).sqrt(),
        ];
        let energy = 0.5 * (su2 + sv2) / count;

        // Profile against sin(k_f y), y at the cell centres.
        let basis: Vec<f64> = (0..w)
            .map(|j| (k_f as f64 * (j as f64 + 0.5) * grid_step(w)).sin())
            .collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let profile_amplitude = dot(&profile, &basis) / dot(&basis, &basis);
        let pm = profile.iter().sum::<f64>() / w as f64;
        let bm = basis.iter().sum::<f64>() / w as f64;
        let pc: Vec<f64> = profile.iter().map(|p| p - pm).collect();
        let bc: Vec<f64> = basis.iter().map(|b| b - bm).collect();
        let profile_correlation =
            dot(&pc, &bc) / (dot(&pc, &pc) * dot(&bc, &bc)).sqrt().max(1e-300);

        // Energy spectrum.
        let bins = h.min(w) / 2 + 1;
        let spectrum = if h == w && h > 0 {
            let fft = FftPlanner::<f32>::new().plan_fft_forward(h);
            let norm = 1.0 / (h * w) as f64;
            let sum = data
                .par_chunks(d)
                .map(|s| {
                    let mut e = vec![0.0; bins];
                    for ch in 0..2 {
                        let g = fft2(&s[ch * h * w..(ch + 1) * h * w], h, &fft);
                        for (a, row) in g.chunks(w).enumerate() {
                            for (b, z) in row.iter().enumerate() {
                                let (kx, ky) = (signed(a, h) as f64, signed(b, w) as f64);
                                let k = (kx * kx + ky * ky).sqrt().round() as usize;
                                if k < bins {
                                    e[k] += 0.5 * (z.norm_sqr() as f64) * norm * norm;
                                }
                            }
                        }
                    }
                    e
                })
                .reduce(
                    || vec![0.0; bins],
                    |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
                );
            sum.into_iter().map(|e| e / states as f64).collect()
        } else {
            vec![]
        };

        // Autocorrelation of u' = u − ⟨u⟩(y) along each trajectory.
        let lags = 8.min(l.saturating_sub(1));
        let mut autocorrelation = Vec::with_capacity(lags);
        let fluct = |t: &[f32], i: usize, p: usize| t[i * d + p] as f64 - profile[p % w];
        let var: f64 = data
            .chunks(l * d)
            .map(|t| {
                (0..l)
                    .map(|i| (0..h * w).map(|p| fluct(t, i, p).powi(2)).sum::<f64>())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / count;
        for lag in 1..=lags {
            let pairs = (n * (l - lag) * h * w) as f64;
            let cov: f64 = data
                .chunks(l * d)
                .map(|t| {
                    (0..l - lag)
                        .map(|i| {
                            (0..h * w)
                                .map(|p| fluct(t, i, p) * fluct(t, i + lag, p))
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                })
                .sum::<f64>()
                / pairs;
            autocorrelation.push(cov / var.max(1e-300));
        }
        Self {
            states,
            energy,
            std,
            profile_amplitude,
            profile_correlation,
            spectrum,
            autocorrelation,
        }
    }
}

impl fmt::Display for Statistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "statistics over {} states:", self.states)?;
        writeln!(f, "  mean kinetic energy ½⟨u²+v²⟩  {:.4}", self.energy)?;
        writeln!(
            f,
            "  std of u, v                    {:.4}, {:.4}",
            self.std[0], self.std[1]
        )?;
        writeln!(
            f,
            "  ⟨u⟩(y) ≈ a sin(k_f y): a       {:.4} (correlation {:.3})",
            self.profile_amplitude, self.profile_correlation
        )?;
        let spectrum: Vec<String> = self.spectrum.iter().map(|e| format!("{e:.2e}")).collect();
        writeln!(f, "  E(k), k = 0..                  {}", spectrum.join(" "))?;
        let acf: Vec<String> = self
            .autocorrelation
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect();
        write!(f, "  autocorrelation of u, lag 1..  {}", acf.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustfft::num_complex::Complex64;

    /// The Butcher tableau `(a, b)` of the 2N scheme: stage `i` sees
    /// `u = ω + Σ_j a_ij h N_j`, the step ends at `ω + Σ_j b_j h N_j`.
    fn butcher() -> ([[f64; STAGES]; STAGES], [f64; STAGES]) {
        let (mut a, mut d, mut u) = ([[0.0; STAGES]; STAGES], [0.0; STAGES], [0.0; STAGES]);
        for i in 0..STAGES {
            a[i] = u;
            for j in 0..STAGES {
                d[j] = RK_A[i] * d[j] + if i == j { 1.0 } else { 0.0 };
                u[j] += RK_B[i] * d[j];
            }
        }
        (a, u)
    }

    #[test]
    fn the_runge_kutta_scheme_has_order_four_and_its_stability_interval() {
        let (a, b) = butcher();
        let mul = |v: &[f64; STAGES]| -> [f64; STAGES] {
            std::array::from_fn(|i| (0..STAGES).map(|j| a[i][j] * v[j]).sum())
        };
        let dot = |v: [f64; STAGES]| -> f64 { (0..STAGES).map(|i| b[i] * v[i]).sum() };
        let c: [f64; STAGES] = std::array::from_fn(|i| a[i].iter().sum());
        for (got, want) in c.iter().zip(RK_C) {
            assert!((got - want).abs() < 1e-14, "c {c:?}");
        }
        let pow = |p: i32| c.map(|c| c.powi(p));
        let (ac, ac2) = (mul(&c), mul(&pow(2)));
        let conditions = [
            (dot([1.0; STAGES]), 1.0),
            (dot(c), 1.0 / 2.0),
            (dot(pow(2)), 1.0 / 3.0),
            (dot(ac), 1.0 / 6.0),
            (dot(pow(3)), 1.0 / 4.0),
            (dot(std::array::from_fn(|i| c[i] * ac[i])), 1.0 / 8.0),
            (dot(ac2), 1.0 / 12.0),
            (dot(mul(&ac)), 1.0 / 24.0),
        ];
        for (i, (got, want)) in conditions.iter().enumerate() {
            assert!(
                (got - want).abs() < 1e-13,
                "order condition {i}: {got} vs {want}"
            );
        }
        // R(z) = 1 + Σ_k z^k bᵀ a^{k−1} 1 on the imaginary axis.
        let mut coefficients = vec![1.0];
        let mut v = [1.0; STAGES];
        for _ in 0..STAGES {
            coefficients.push(dot(v));
            v = mul(&v);
        }
        let gain = |y: f64| {
            let z = Complex64::new(0.0, y);
            let mut power = Complex64::new(1.0, 0.0);
            let mut r = Complex64::new(0.0, 0.0);
            for c in &coefficients {
                r += power * c;
                power *= z;
            }
            r.norm()
        };
        for i in 0..=4000 {
            let y = RK_STABILITY * i as f64 / 4000.0;
            assert!(gain(y) <= 1.0 + 1e-9, "|R({y} i)| = {}", gain(y));
        }
        assert!(gain(RK_STABILITY + 0.01) > 1.0);
        // RK4's interval, 2√2, for comparison: 6 stages go further per stage than its 4.
        assert!(RK_STABILITY / STAGES as f64 > 1.13 * 8f64.sqrt() / 4.0);
    }

    fn small() -> Kolmogorov {
        Kolmogorov {
            size: 32,
            coarsen: 2,
            ..Kolmogorov::default()
        }
    }

    #[test]
    fn check_rejects_a_coarsening_that_does_not_divide_the_grid() {
        let k = Kolmogorov {
            size: 64,
            coarsen: 3,
            ..Kolmogorov::default()
        };
        assert!(matches!(k.check(), Err(Error::Config { name, .. }) if name == "--coarsen"));
        assert!(small().check().is_ok());
    }

    #[test]
    fn forward_pair_gives_the_fourier_coefficients_of_both_fields() {
        // a = cos(3x + 5y) has â(3, 5) = ½ (and its conjugate at −k, not stored);
        // b = sin(x − 2y) has b̂(1, −2) = −i/2, stored as its conjugate partner b̂(−1, 2) = i/2.
        let mut s = small().solver();
        let n = s.size();
        let dx = grid_step(n);
        let (mut a, mut b) = (vec![0.0; n * n], vec![0.0; n * n]);
        for p in 0..n * n {
            let (x, y) = ((p / n) as f64 * dx, (p % n) as f64 * dx);
            a[p] = (3.0 * x + 5.0 * y).cos() as f32;
            b[p] = (x - 2.0 * y).sin() as f32;
        }
        let (mut sa, mut sb) = (s.zero().omega, s.zero().omega);
        s.forward_pair(&a, &b, &mut sa, &mut sb);
        let mut want_a = s.zero().omega;
        let mut want_b = s.zero().omega;
        want_a[5 * n + 3] = Complex32::new(0.5, 0.0);
        want_b[2 * n + n - 1] = Complex32::new(0.0, 0.5);
        for m in 0..sa.len() {
            assert!((sa[m] - want_a[m]).norm() < 1e-6, "â at {m}: {}", sa[m]);
            assert!((sb[m] - want_b[m]).norm() < 1e-6, "b̂ at {m}: {}", sb[m]);
        }
    }

    #[test]
    fn lift_recovers_a_band_limited_field_from_its_block_average() {
        // u = sin(2y + 1) + 0.3, v = cos(3x − 0.5) is divergence-free with modes below the
        // coarse Nyquist: block-averaging multiplies each mode by H(k_x) H(k_y) and moves it
        // to the coarse cell centres, which the lift undoes exactly.
        let k = small();
        let n = k.size;
        let dx = grid_step(n);
        let mut uv = vec![0.0f32; 2 * n * n];
        for p in 0..n * n {
            let (x, y) = (((p / n) as f64 + 0.5) * dx, ((p % n) as f64 + 0.5) * dx);
            uv[p] = ((2.0 * y + 1.0).sin() + 0.3) as f32;
            uv[n * n + p] = (3.0 * x - 0.5).cos() as f32;
        }
        let mut s = k.solver();
        let flow = s.from_velocity(&uv);
        let mut x = vec![0.0; k.state_len()];
        s.coarse(&flow, &mut x);
        assert!((x[0] - x[1]).abs() > 0.1, "u varies along y");
        let lifted = s.lift(&x);
        let back = s.velocity(&lifted);
        let err = uv
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-5, "max error {err}");
    }

    #[test]
    fn initial_field_has_the_requested_maximum_speed() {
        let k = small();
        let mut s = k.solver();
        let flow = s.initial(&mut chain_rng(0, 0));
        let uv = s.velocity(&flow);
        let nn = k.size * k.size;
        let vmax = (0..nn)
            .map(|p| (uv[p].powi(2) + uv[nn + p].powi(2)).sqrt())
            .fold(0.0, f32::max);
        assert!((vmax - 3.0).abs() < 1e-4, "max speed {vmax}");
    }

    #[test]
    #[should_panic(expected = "blew up")]
    fn a_blown_up_flow_stops_with_a_message() {
        let k = small();
        let mut s = k.solver();
        let mut flow = s.initial(&mut chain_rng(0, 0));
        // One NaN mode spreads over the whole grid in the first evaluation.
        flow.omega[k.size + 1] = Complex32::new(f32::NAN, 0.0);
        s.advance(&mut flow, k.dt);
    }
}
