//! A bootstrap particle filter (Gordon, Salmond & Smith, "Novel approach to nonlinear/non-Gaussian
//! Bayesian state estimation", IEE Proceedings F, 1993): the ground truth of the Lorenz-63
//! evaluation (docs/method.md §7: 16384 particles, 64 prior transitions of burn-in before the first
//! state, 1024 trajectories kept).
//!
//! Particles are drawn from the prior `p(x_1)` of the chain, moved `burn_in` times by its
//! transition, then carried along a trajectory of `length` states. At every observed state they
//! are weighted by the Gaussian likelihood of the observation and resampled (multinomially) as
//! *whole paths*, so that the surviving paths are draws from the joint smoothing distribution
//! `p(x_{1:L} | y)` — exact as the number of particles grows, although the paths share their
//! ancestors further back in time (path degeneracy), so that early states are represented by
//! fewer distinct values than late ones.
//!
//! Every particle slot has its own random stream ([`chain_rng`]) and resampling uses one more,
//! so that a seed gives the same trajectories whatever the number of threads.

use burn::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::{MarkovChain, chain_rng, splitmix64};
use crate::nn::{tensor, to_vec};
use crate::score::operator::Operator;

/// Settings of a particle filter run.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterConfig {
    /// Number of particles (16384 in the paper).
    pub particles: usize,
    /// Number of trajectories returned, drawn from the final weighted particles (1024 in the
    /// paper); at most `particles`.
    pub keep: usize,
    /// Prior transitions before the first state of the trajectory (64 in the paper).
    pub burn_in: usize,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            particles: 16384,
            keep: 1024,
            burn_in: 64,
            seed: 0,
        }
    }
}

/// What a filter run gives: the trajectories and how well the particles represented them.
#[derive(Clone, Debug)]
pub struct FilterOutput {
    /// `keep` trajectories, shape `(keep, length, *state_shape)`, f32, physical units.
    pub samples: Array,
    /// The effective sample size `(Σ w)² / Σ w²` of the particles at each observed state, after
    /// weighting and before resampling (one per row of `y`).
    pub ess: Vec<f64>,
    /// The filter's estimate of the log evidence `log p(y)`.
    pub log_evidence: f64,
}

/// Draws `config.keep` trajectories of `length` states from `p(x | y)` with a bootstrap particle
/// filter; `y = A(x) + N(0, noise²)` where `A` is `operator`.
///
/// See [`run_particle_filter`] for the details; this returns only the trajectories.
///
/// # Shapes
/// - y: `operator.output_shape(length, state_shape)`; noise: one std per value of `y`
/// - returns: `(keep, length, *state_shape)`
pub fn particle_filter(
    chain: &dyn MarkovChain,
    operator: &Operator,
    y: &Array,
    noise: &[f32],
    state_shape: &[usize],
    length: usize,
    config: &FilterConfig,
) -> Result<Array> {
    Ok(run_particle_filter(
        chain,
        operator,
        y,
        noise,
        state_shape,
        length,
        config,
        |_| {},
    )?
    .samples)
}

/// Checks the inputs of a filter run; returns the observed state indices.
fn check(
    chain: &dyn MarkovChain,
    operator: &Operator,
    y: &Array,
    noise: &[f32],
    state_shape: &[usize],
    length: usize,
    config: &FilterConfig,
) -> Result<Vec<usize>> {
    if config.particles == 0 {
        return Err(Error::config("--particles", "must be at least 1"));
    }
    if config.keep == 0 {
        return Err(Error::config("--keep", "must be at least 1"));
    }
    if config.keep > config.particles {
        return Err(Error::config(
            "--keep",
            format!(
                "{} trajectories cannot be kept from {} particles (keep ≤ particles)",
                config.keep, config.particles
            ),
        ));
    }
    if length == 0 {
        return Err(Error::config("--length", "must be at least 1"));
    }
    if state_shape.is_empty() || state_shape.iter().product::<usize>() != chain.dim() {
        return Err(Error::Shape {
            what: "state shape".into(),
            expected: format!("{} values per state for this system", chain.dim()),
            got: state_shape.to_vec(),
        });
    }
    operator.check_observations(y, noise, length, state_shape, "observations")?;
    operator.times(length)
}

/// `log Σ exp(v)`, stable; `-inf` for an empty slice or all `-inf`.
fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Normalised cumulative weights of log-weights (the last entry is 1), and the effective sample
/// size `(Σ w)² / Σ w²`.
fn cumulative(log_w: &[f64]) -> (Vec<f64>, f64) {
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|x| (x - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let sq: f64 = w.iter().map(|x| x * x).sum();
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = w
        .iter()
        .map(|x| {
            acc += x / total;
            acc
        })
        .collect();
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    (cdf, total * total / sq)
}

/// `n` independent draws from the categorical distribution of cumulative weights `cdf`.
fn multinomial(cdf: &[f64], n: usize, rng: &mut StdRng) -> Vec<usize> {
    (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
        })
        .collect()
}

/// Transitions per particle in one parallel task: few enough that progress is reported often.
const STATES_PER_TASK: usize = 16;

/// Moves every particle of `paths` (`[P, length, F]`) from state `from` to state `to` by the
/// chain's transition, filling states `from + 1..=to`, with particle `p`'s random stream
/// `rngs[p]`; `progress` gets the index of the last state filled.
fn advance(
    chain: &dyn MarkovChain,
    paths: &mut [f64],
    rngs: &mut [StdRng],
    length: usize,
    from: usize,
    to: usize,
    mut progress: impl FnMut(usize),
) {
    let f = chain.dim();
    let mut start = from;
    while start < to {
        let end = to.min(start + STATES_PER_TASK);
        paths
            .par_chunks_mut(length * f)
            .zip(rngs.par_iter_mut())
            .for_each(|(path, rng)| {
                for i in start + 1..=end {
                    let (filled, next) = path.split_at_mut(i * f);
                    let x = &mut next[..f];
                    x.copy_from_slice(&filled[(i - 1) * f..]);
                    chain.transition(x, rng);
                }
            });
        progress(end);
        start = end;
    }
}

/// Mixed into the seed, so that particle `p` of seed `s` does not replay the noise of chain `p`
/// of `sda simulate --seed s`.
const STREAM_TAG: u64 = 0x5041_5254_4943_4C45; // "PARTICLE"

/// Draws trajectories from `p(x | y)` with a bootstrap particle filter, with diagnostics.
///
/// 1. Each of `config.particles` particles draws `x ~ chain.prior`, then makes `config.burn_in`
///    prior transitions: that is state 0 of the trajectory (the state that `stride:8` observes
///    first); states `1..length` follow by `chain.transition`.
/// 2. At each observed state `i = times[r]` (`operator.times(length)`, row `r` of `y`, or the
///    rows of time `i` of a table), the particles' log-weights grow by
///    `Σ_j log N(y[r, j]; A(x_i)[j], noise[r, j]²)` where `A` is the operator's per-state map
///    (a table's `points` of that time), evaluated on all particles at once. Unless `i` is the last
///    state, whole paths (states `0..=i`) are then resampled multinomially and the weights reset.
/// 3. After the last state, `config.keep` paths are drawn multinomially from the final weights.
///
/// States are `f64` throughout; only `A(x)` is evaluated in `f32` (through burn), which moves a
/// log-weight by about `|y − A(x)| · 1e-7 |x| / σ²`, negligible at any sensible noise.
/// `progress` is called with the number of transitions done so far (out of
/// `burn_in + length − 1`). Memory: two `f64` buffers of `particles × length × dim` (50 MB for
/// the paper's Lorenz-63 setting).
///
/// # Errors
/// Invalid settings (`keep > particles`, no particle, zero length), a state shape that is not the
/// chain's, `y` not of `operator.output_shape(length, state_shape)` or not finite, noise stds
/// not positive or not one per value of `y`, or every particle of zero likelihood.
#[allow(clippy::too_many_arguments)]
pub fn run_particle_filter(
    chain: &dyn MarkovChain,
    operator: &Operator,
    y: &Array,
    noise: &[f32],
    state_shape: &[usize],
    length: usize,
    config: &FilterConfig,
    mut progress: impl FnMut(usize),
) -> Result<FilterOutput> {
    let times = check(chain, operator, y, noise, state_shape, length, config)?;
    let (p, l, f) = (config.particles, length, chain.dim());
    let observed = operator.observed_states(length, state_shape)?;
    let device = Device::flex();
    let base = splitmix64(config.seed ^ STREAM_TAG);
    let mut rngs: Vec<StdRng> = (0..p as u64).map(|i| chain_rng(base, i)).collect();
    let mut resample_rng = chain_rng(base, u64::MAX);

    // Paths [P, L, F]; row p holds particle p's states 0..=i at step i.
    let mut paths = vec![0.0f64; p * l * f];
    let mut spare = vec![0.0f64; p * l * f];
    paths
        .par_chunks_mut(l * f)
        .zip(rngs.par_iter_mut())
        .for_each(|(path, rng)| path[..f].copy_from_slice(&chain.prior(rng)));
    // Burn-in: transitions in place on state 0, a few per parallel task.
    let mut burnt = 0;
    while burnt < config.burn_in {
        let n = STATES_PER_TASK.min(config.burn_in - burnt);
        paths
            .par_chunks_mut(l * f)
            .zip(rngs.par_iter_mut())
            .for_each(|(path, rng)| {
                for _ in 0..n {
                    chain.transition(&mut path[..f], rng);
                }
            });
        burnt += n;
        progress(burnt);
    }

    // Normalised up to a constant: uniform after each resampling.
    let mut log_w = vec![0.0f64; p];
    let mut ess = Vec::with_capacity(times.len());
    let mut log_evidence = 0.0;
    // Constant of the Gaussian log-density of each observed value: −log σ − ½ log 2π.
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let mut done = 0;
    for (&i, (_, values, map)) in times.iter().zip(&observed) {
        // Between observations particles do not interact: each moves to state i in one task.
        advance(chain, &mut paths, &mut rngs, l, done, i, |d| {
            progress(config.burn_in + d)
        });
        done = i;
        // A(x_i) on all particles at once: [P, F] → [P, F'].
        let xi: Vec<f32> = paths
            .chunks(l * f)
            .flat_map(|path| path[i * f..(i + 1) * f].iter().map(|&v| v as f32))
            .collect();
        let map = map.as_ref().unwrap_or(operator);
        let ax = to_vec(map.apply_states(tensor(xi, [p, f], &device), state_shape));
        let (yr, sr) = (&y.data[values.clone()], &noise[values.clone()]);
        let fo = yr.len();
        let constant: f64 = sr.iter().map(|&s| -(s as f64).ln() - half_log_2pi).sum();
        let before = log_sum_exp(&log_w);
        log_w
            .par_iter_mut()
            .zip(ax.par_chunks(fo))
            .for_each(|(lw, a)| {
                let sq: f64 = a
                    .iter()
                    .zip(yr.iter().zip(sr))
                    .map(|(&a, (&y, &s))| ((y as f64 - a as f64) / s as f64).powi(2))
                    .sum();
                let ll = constant - 0.5 * sq;
                // A non-finite state (a diverged particle) has zero likelihood.
                *lw += if ll.is_nan() { f64::NEG_INFINITY } else { ll };
            });
        let after = log_sum_exp(&log_w);
        if !after.is_finite() {
            return Err(Error::NonFinite {
                what: format!("particle weights at state {i} (every particle has zero likelihood)"),
                count: p,
            });
        }
        log_evidence += after - before;
        let (cdf, e) = cumulative(&log_w);
        ess.push(e);
        if i + 1 < l {
            // Resample whole paths, states 0..=i, into the spare buffer.
            let ancestors = multinomial(&cdf, p, &mut resample_rng);
            spare
                .par_chunks_mut(l * f)
                .zip(ancestors.par_iter())
                .for_each(|(dst, &a)| {
                    dst[..(i + 1) * f].copy_from_slice(&paths[a * l * f..(a * l + i + 1) * f]);
                });
            std::mem::swap(&mut paths, &mut spare);
            log_w.fill(0.0);
        }
    }
    advance(chain, &mut paths, &mut rngs, l, done, l - 1, |d| {
        progress(config.burn_in + d)
    });

    let (cdf, _) = cumulative(&log_w);
    let kept = multinomial(&cdf, config.keep, &mut resample_rng);
    let data: Vec<f32> = kept
        .iter()
        .flat_map(|&a| paths[a * l * f..(a + 1) * l * f].iter().map(|&v| v as f32))
        .collect();
    let mut shape = vec![config.keep, l];
    shape.extend_from_slice(state_shape);
    Ok(FilterOutput {
        samples: Array::new(shape, data),
        ess,
        log_evidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_the_same_measurements_gives_the_same_filter_output() {
        // `stride:3|select:0,2` on 10 states of Lorenz-63, and the table of the same rows
        // (listed out of order): the same weights, so the same trajectories, bit for bit.
        let chain = crate::mcs::Lorenz63::default();
        let op = Operator::parse("stride:3|select:0,2").unwrap();
        let y: Vec<f32> = (0..8).map(|k| (k as f32 * 1.7).sin() * 8.0).collect();
        let noise = vec![1.5f32; 8];
        let mut csv = String::from("std,time,value,index\n");
        for r in (0..4).rev() {
            for (c, comp) in [0, 2].into_iter().enumerate() {
                csv.push_str(&format!("1.5,{},{},{comp}\n", 3 * r, y[2 * r + c]));
            }
        }
        let table = crate::score::table::Table::parse(&csv, "obs.csv").unwrap();
        let config = FilterConfig {
            particles: 400,
            keep: 40,
            burn_in: 8,
            seed: 5,
        };
        let a = particle_filter(
            &chain,
            &op,
            &Array::new(vec![4, 2], y.clone()),
            &noise,
            &[3],
            10,
            &config,
        )
        .unwrap();
        let t = Operator::from_table(&table);
        let b = particle_filter(
            &chain,
            &t,
            &Array::new(vec![8], table.values()),
            &table.stds(),
            &[3],
            10,
            &config,
        )
        .unwrap();
        assert_eq!(table.values(), y);
        assert_eq!(a, b);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        // log(e^1000 + e^1000) = 1000 + log 2, without overflow.
        let v = log_sum_exp(&[1000.0, 1000.0]);
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY]), f64::NEG_INFINITY);
    }

    #[test]
    fn cumulative_weights_and_ess() {
        // w ∝ (1, 1, 2): cdf (¼, ½, 1); ESS = (Σw)²/Σw² = 16/6.
        let (cdf, ess) = cumulative(&[0.0, 0.0, 2f64.ln()]);
        for (c, e) in cdf.iter().zip([0.25, 0.5, 1.0]) {
            assert!((c - e).abs() < 1e-12);
        }
        assert!((ess - 16.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn multinomial_frequencies_follow_the_weights() {
        // 40000 draws from (¼, ¼, ½): counts within 5 binomial standard errors.
        let cdf = [0.25, 0.5, 1.0];
        let mut rng = chain_rng(1, 2);
        let n = 40_000;
        let draws = multinomial(&cdf, n, &mut rng);
        for (k, p) in [0.25, 0.25, 0.5].into_iter().enumerate() {
            let c = draws.iter().filter(|&&d| d == k).count() as f64;
            let se = (n as f64 * p * (1.0 - p)).sqrt();
            assert!((c - n as f64 * p).abs() < 5.0 * se, "{k}: {c}");
        }
    }
}
