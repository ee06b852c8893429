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
//!   `L = −ν|k|² − α`. Its coefficients ([`RK_A`](scheme::RK_A), [`RK_B`](scheme::RK_B))
//!   solve the eight fourth-order conditions with a stability polynomial chosen for the
//!   longest interval of the imaginary axis, `|y| ≤ 4.886` (classical RK4: 2.828), the axis
//!   where dealiased advection's eigenvalues lie: 0.81 of the interval per evaluation of the
//!   non-linear term against RK4's 0.71, so 13 % fewer evaluations at the same margin. The
//!   sub-steps of each saved interval `dt` are planned from the Courant condition
//!   `h (max|u| + max|v|) / dx ≤ courant` at the interval's start, and planned again if the
//!   speed grows past it during the interval (the speed comes free with each sub-step).
//! - Initial state (jax-cfd `filtered_velocity_field`): white noise on each velocity channel
//!   filtered by the log-normal spectral density peaked at `peak_wavenumber`, projected onto
//!   divergence-free fields and scaled to a maximum speed `max_velocity`.
//!
//! Saved states are block-averaged `coarsen×` to `(u, v)` on an `(h, w)` grid, `h = w =
//! size / coarsen`, float32, array layout `(2, h, w)` with axis −2 = x and axis −1 = y.

mod aligned;
mod clock;
mod grid;
mod scheme;
mod solver;
mod spectral;
mod statistics;
mod stepping;
#[cfg(test)]
mod tests;

pub use clock::thread_time;
pub use solver::Solver;
pub use statistics::Statistics;

use std::time::Duration;

use rand::rngs::StdRng;
use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use serde::{Deserialize, Serialize};

use super::chain_rng;
use crate::error::{Error, Result};
use scheme::COURANT_LIMIT;

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
