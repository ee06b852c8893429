//! The models that classical methods run: a deterministic step plus additive noise, for the
//! systems that have one.

use crate::error::{Error, Result};
use crate::mcs::{DampedSpring, Lorenz63, Lorenz96, System};

/// A model that classical methods can run: a deterministic step and additive isotropic noise.
pub trait Dynamics: Sync {
    /// Values per state.
    fn dim(&self) -> usize;
    /// The deterministic part of one transition, in place.
    fn step(&self, x: &mut [f64]);
    /// Std of the additive Gaussian noise after each step (0: deterministic).
    fn noise(&self) -> f64;
    /// [`step`](Self::step) of every state of `states` (one after the other, `dim` values each).
    fn step_all(&self, states: &mut [f64]) {
        for x in states.chunks_mut(self.dim()) {
            self.step(x);
        }
    }
}

impl Dynamics for Lorenz96 {
    fn dim(&self) -> usize {
        self.n
    }
    fn step(&self, x: &mut [f64]) {
        Lorenz96::step(self, x)
    }
    /// All states at once: a ring of 40 variables is too short for the vector units state by
    /// state, so the states are transposed to variable-major order, where every loop of the
    /// RK4 step runs over the states, compiled for AVX-512 where the CPU has it. The arithmetic
    /// of each state is that of `step`, to the bit.
    fn step_all(&self, states: &mut [f64]) {
        let (n, m) = (self.n, states.len() / self.n);
        if m < 4 {
            return states.chunks_mut(n).for_each(|x| self.step(x));
        }
        thread_local! {
            /// The transposed states and the RK4 stages, kept between steps.
            static BUF: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            if buf.len() < 6 * n * m {
                buf.resize(6 * n * m, 0.0);
            }
            let (x, scratch) = buf.split_at_mut(n * m);
            transpose::transpose(states, x, n, m);
            crate::kernels::simd!(self.step_batch(x, m, scratch));
            transpose::transpose(x, states, m, n);
        });
    }
    fn noise(&self) -> f64 {
        self.noise
    }
}

impl Dynamics for Lorenz63 {
    fn dim(&self) -> usize {
        3
    }
    fn step(&self, x: &mut [f64]) {
        Lorenz63::step(self, x)
    }
    fn noise(&self) -> f64 {
        self.noise
    }
}

impl Dynamics for DampedSpring {
    fn dim(&self) -> usize {
        2
    }
    fn step(&self, x: &mut [f64]) {
        let (w2, c) = (self.omega * self.omega, 2.0 * self.zeta * self.omega);
        let v = x[1] - self.dt * (w2 * x[0] + c * x[1]);
        x[0] += self.dt * v;
        x[1] = v;
    }
    fn noise(&self) -> f64 {
        self.noise
    }
}

/// The model of a system, or why classical methods cannot run it.
pub fn dynamics(system: &System) -> Result<&dyn Dynamics> {
    match system {
        System::Lorenz96(s) => Ok(s),
        System::Lorenz63(s) => Ok(s),
        System::Linear(s) => Ok(s),
        System::Kolmogorov(_) => Err(Error::config(
            "--system",
            "classical methods run lorenz63, lorenz96 and linear systems, not kolmogorov fields",
        )),
        System::External(_) => Err(Error::config(
            "--system",
            "an external (imported) system has no dynamics: classical methods need a model \
             (lorenz63, lorenz96 or linear)",
        )),
    }
}
