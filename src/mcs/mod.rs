//! Markov chains: the dynamical systems whose trajectories `sda` learns and assimilates.
//!
//! A system is a first-order Markov chain `p(x_1) ∏ p(x_{i+1} | x_i)` (docs/method.md §1). Each
//! implements [`MarkovChain`]; trajectories are simulated in parallel, one seeded RNG per chain,
//! so that a seed gives the same data whatever the number of threads.

mod column_fft;
mod external;
mod kolmogorov;
mod linear;
mod lorenz63;
mod lorenz96;

pub use external::{External, Provenance, Source, checksum};
pub use kolmogorov::{Flow, Kolmogorov, Solver, Statistics, thread_time};
pub use linear::DampedSpring;
pub use lorenz63::Lorenz63;
pub use lorenz96::Lorenz96;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A first-order Markov chain with a sampleable prior and transition.
pub trait MarkovChain: Sync {
    /// The dimension of one state.
    fn dim(&self) -> usize;

    /// Draws `x_1` from the prior.
    fn prior(&self, rng: &mut StdRng) -> Vec<f64>;

    /// Draws `x_{i+1} ~ p(x_{i+1} | x_i)`, in place.
    fn transition(&self, x: &mut [f64], rng: &mut StdRng);

    /// `log p(x_{i+1} | x_i)`, where the transition has a density.
    fn log_transition(&self, x: &[f64], x_next: &[f64]) -> Option<f64>;

    /// Simulates `n` independent chains of `burn_in + length` transitions from the prior and
    /// keeps the last `length` states: a row-major `[n, length, dim]` array.
    fn trajectories(&self, n: usize, length: usize, burn_in: usize, seed: u64) -> Vec<f64> {
        self.trajectories_from(0, n, length, burn_in, seed)
    }

    /// Chains `first .. first + n` of [`MarkovChain::trajectories`] with more chains: each
    /// chain's randomness depends on the seed and its index only, so that a run cut into
    /// pieces gives the same chains.
    fn trajectories_from(
        &self,
        first: usize,
        n: usize,
        length: usize,
        burn_in: usize,
        seed: u64,
    ) -> Vec<f64> {
        let d = self.dim();
        let mut out = vec![0.0; n * length * d];
        out.par_chunks_mut(length * d)
            .enumerate()
            .for_each(|(i, traj)| {
                let mut rng = chain_rng(seed, (first + i) as u64);
                let mut x = self.prior(&mut rng);
                for _ in 0..burn_in {
                    self.transition(&mut x, &mut rng);
                }
                for (i, state) in traj.chunks_mut(d).enumerate() {
                    if i > 0 {
                        self.transition(&mut x, &mut rng);
                    }
                    state.copy_from_slice(&x);
                }
            });
        out
    }

    /// Mean of `log p(x_{2:L} | x_1)` over trajectories (`[n, L, dim]`), if the chain has a
    /// transition density.
    fn log_prob_trajectories(&self, x: &[f64], length: usize) -> Option<Vec<f64>> {
        let d = self.dim();
        x.par_chunks(length * d)
            .map(|traj| {
                (1..length)
                    .map(|i| {
                        self.log_transition(&traj[(i - 1) * d..i * d], &traj[i * d..(i + 1) * d])
                    })
                    .sum::<Option<f64>>()
            })
            .collect()
    }
}

/// The RNG of chain `chain` for a given seed: independent streams, reproducible.
pub fn chain_rng(seed: u64, chain: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(chain.wrapping_add(0x9E37))))
}

/// The splitmix64 mixer, to derive seeds.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One step of the classical fourth-order Runge–Kutta scheme for `dx/dt = f(x)`.
pub fn rk4(f: impl Fn(&[f64], &mut [f64]), x: &mut [f64], dt: f64) {
    let mut scratch = vec![0.0; 5 * x.len()];
    rk4_in(f, x, dt, &mut scratch);
}

/// [`rk4`] for states of a size known at compile time: scratch on the stack, no allocation
/// (the inner loop of simulators and particle filters).
pub fn rk4_fixed<const N: usize>(f: impl Fn(&[f64], &mut [f64]), x: &mut [f64; N], dt: f64) {
    let mut scratch = [[0.0; N]; 5];
    rk4_in(f, x, dt, scratch.as_flattened_mut());
}

/// RK4 with caller-provided scratch space of `5 · x.len()` values.
pub(crate) fn rk4_in(f: impl Fn(&[f64], &mut [f64]), x: &mut [f64], dt: f64, scratch: &mut [f64]) {
    let n = x.len();
    let (k1, rest) = scratch.split_at_mut(n);
    let (k2, rest) = rest.split_at_mut(n);
    let (k3, rest) = rest.split_at_mut(n);
    let (k4, tmp) = rest.split_at_mut(n);
    f(x, k1);
    for j in 0..n {
        tmp[j] = x[j] + 0.5 * dt * k1[j];
    }
    f(tmp, k2);
    for j in 0..n {
        tmp[j] = x[j] + 0.5 * dt * k2[j];
    }
    f(tmp, k3);
    for j in 0..n {
        tmp[j] = x[j] + dt * k3[j];
    }
    f(tmp, k4);
    for j in 0..n {
        x[j] += dt / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
    }
}

/// Adds `N(0, std²)` noise to every coordinate.
pub fn add_noise(x: &mut [f64], std: f64, rng: &mut StdRng) {
    for v in x {
        let z: f64 = StandardNormal.sample(rng);
        *v += std * z;
    }
}

/// `log N(x; mean, std² I)` summed over coordinates.
pub fn log_normal(x: &[f64], mean: &[f64], std: f64) -> f64 {
    let n = x.len() as f64;
    let sq: f64 = x.iter().zip(mean).map(|(a, b)| (a - b).powi(2)).sum();
    -0.5 * sq / (std * std) - n * (std.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln())
}

/// Which system, with its parameters: what `system.json` records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "name", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // one per run, read from system.json: size does not matter
pub enum System {
    /// Noisy Lorenz-63 (docs/method.md §7).
    Lorenz63(Lorenz63),
    /// Lorenz-96 with additive noise.
    Lorenz96(Lorenz96),
    /// A damped spring: linear-Gaussian, with an exact Kalman answer.
    Linear(DampedSpring),
    /// Kolmogorov flow: 2-D Navier–Stokes, deterministic (docs/method.md §8).
    Kolmogorov(Kolmogorov),
    /// Trajectories imported with `sda import`: no simulator, no transition density.
    External(External),
}

/// How the values of a vector state sit in space, which says what networks suit it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Values with no spatial order (Lorenz-63, stations anywhere): MLP networks.
    #[default]
    Vector,
    /// Values on a periodic 1-D grid, neighbours next to each other and the last next to the
    /// first (the Lorenz-96 ring): ring networks, weights shared along the ring.
    Ring,
}

impl Layout {
    /// Whether this is the default layout (for serialisation).
    pub fn is_vector(&self) -> bool {
        *self == Layout::Vector
    }
}

impl System {
    /// How a state's values are laid out: Lorenz-96 on its ring, imported data as imported,
    /// the rest as vectors (Kolmogorov's fields have their own 2-D shape).
    pub fn layout(&self) -> Layout {
        match self {
            System::Lorenz96(_) => Layout::Ring,
            System::External(e) => e.layout,
            _ => Layout::Vector,
        }
    }

    /// The system of a given name with its default parameters.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "lorenz63" => Ok(System::Lorenz63(Lorenz63::default())),
            "lorenz96" => Ok(System::Lorenz96(Lorenz96::default())),
            "linear" => Ok(System::Linear(DampedSpring::default())),
            "kolmogorov" => Ok(System::Kolmogorov(Kolmogorov::default())),
            other => Err(Error::UnknownSystem(other.into())),
        }
    }

    /// The states kept per simulated chain, and the transitions dropped before them, when none
    /// are asked for: 64 of each for Kolmogorov flow (a state every 0.2 time units), 1024 for
    /// the others.
    pub fn default_length(&self) -> usize {
        match self {
            System::Kolmogorov(_) => 64,
            _ => 1024,
        }
    }

    /// The system's name.
    pub fn name(&self) -> &'static str {
        match self {
            System::Lorenz63(_) => "lorenz63",
            System::Lorenz96(_) => "lorenz96",
            System::Linear(_) => "linear",
            System::Kolmogorov(_) => "kolmogorov",
            System::External(_) => "external",
        }
    }

    /// The system as a [`MarkovChain`]; an error for Kolmogorov flow, which is deterministic
    /// and has no transition density.
    pub fn chain(&self) -> Result<&dyn MarkovChain> {
        match self {
            System::Lorenz63(s) => Ok(s),
            System::Lorenz96(s) => Ok(s),
            System::Linear(s) => Ok(s),
            System::Kolmogorov(_) => Err(Error::config(
                "system",
                "kolmogorov has no transition density (it is a deterministic simulator)",
            )),
            System::External(_) => Err(Error::config(
                "system",
                "an external (imported) system has no transition density: log p(x) and the \
                 particle filter need a simulator",
            )),
        }
    }

    /// Whether the transition is deterministic (no noise), so that it has no density: a
    /// particle filter and `log p(x)` are then undefined.
    pub fn deterministic(&self) -> bool {
        match self {
            System::Lorenz96(l) => l.noise <= 0.0,
            System::Lorenz63(l) => l.noise <= 0.0,
            System::Linear(l) => l.noise <= 0.0,
            System::Kolmogorov(_) | System::External(_) => true,
        }
    }

    /// The shape of one state: `[dim]` for the chains, `[2, h, w]` for Kolmogorov flow.
    pub fn state_shape(&self) -> Vec<usize> {
        match self {
            System::Kolmogorov(k) => k.state_shape().to_vec(),
            System::External(e) => e.state_shape.clone(),
            other => vec![other.chain().expect("a Markov chain").dim()],
        }
    }

    /// A fixed normalisation `(mean, scale)`, one per value of a state, when the system
    /// prescribes one (Lorenz-63, docs/method.md §7; Kolmogorov flow: none, §8); otherwise `None`
    /// and the data's own statistics are used.
    pub fn fixed_normalisation(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        match self {
            System::Lorenz63(_) => Some((vec![0.0, 0.0, 25.0], vec![8.0, 9.0, 8.6])),
            // The reference trains on the raw velocities.
            System::Kolmogorov(k) => Some((vec![0.0; k.state_len()], vec![1.0; k.state_len()])),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rk4_is_exact_to_fourth_order_on_exponential_decay() {
        // dx/dt = -x: one RK4 step multiplies x by 1 - h + h²/2 - h³/6 + h⁴/24.
        let h = 0.1f64;
        let mut x = [2.0];
        rk4(|x, dx| dx[0] = -x[0], &mut x, h);
        let factor = 1.0 - h + h * h / 2.0 - h.powi(3) / 6.0 + h.powi(4) / 24.0;
        assert!((x[0] - 2.0 * factor).abs() < 1e-15);
    }

    #[test]
    fn same_seed_gives_same_trajectories() {
        let s = Lorenz63::default();
        assert_eq!(s.trajectories(3, 5, 10, 7), s.trajectories(3, 5, 10, 7));
        assert_ne!(s.trajectories(3, 5, 10, 7), s.trajectories(3, 5, 10, 8));
    }
}
