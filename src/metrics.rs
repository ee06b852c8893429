//! Ensemble and distribution metrics for data assimilation.
//!
//! Every function works on sets of points (for example flattened trajectories)
//! stored as flat row-major `f64` slices: a set of `n` points of dimension
//! `dim` is a slice of length `n * dim` whose row `i` is
//! `&x[i * dim..(i + 1) * dim]`. Ensembles are row-major
//! `(n_members, n_vars)` arrays. Callers holding `f32` data convert with
//! `x.iter().map(|&v| f64::from(v))`.
//!
//! Distribution metrics (comparing two sets of samples):
//!
//! * [`wasserstein1`]: exact Wasserstein-1 distance between two uniform
//!   empirical measures with Euclidean ground cost (Villani, *Optimal
//!   Transport: Old and New*, 2009; Peyré & Cuturi, *Computational Optimal
//!   Transport*, 2019, §2–3). Equal-size problems are linear assignment
//!   problems by Birkhoff's theorem and are solved with the shortest
//!   augmenting path method of Jonker & Volgenant (*Computing* 38, 1987) in
//!   the form of Crouse (*IEEE Trans. Aerospace and Electronic Systems*
//!   52(4), 2016). Unequal-size problems are integer transportation problems
//!   (masses scaled by `lcm(n, m)`) and are solved by successive shortest
//!   paths with reduced costs (Ahuja, Magnanti & Orlin, *Network Flows*,
//!   1993, §9.7).
//! * [`mmd`]: squared maximum mean discrepancy with a Gaussian kernel, biased
//!   V-statistic (Gretton et al., "A Kernel Two-Sample Test", *JMLR* 13,
//!   2012), with the median heuristic for the bandwidth (Gretton et al. 2012;
//!   Garreau, Jitkrittum & Kanagawa, "Large sample analysis of the median
//!   heuristic", 2017).
//!
//! Ensemble metrics (comparing an ensemble with a reference state):
//!
//! * [`crps`]: continuous ranked probability score in its kernel (energy)
//!   form `E|X − y| − ½ E|X − X'|` (Gneiting & Raftery, "Strictly Proper
//!   Scoring Rules, Prediction, and Estimation", *JASA* 102, 2007), using the
//!   standard (not the "fair", Ferro 2014) empirical estimator.
//! * [`rank_histogram`]: Talagrand / verification rank histogram (Anderson,
//!   *J. Climate* 9, 1996; Hamill, *Mon. Wea. Rev.* 129, 2001).
//! * [`rmse`], [`ensemble_mean`], [`ensemble_spread`]: the usual skill and
//!   spread diagnostics (e.g. Fortin et al., "Why should ensemble spread match
//!   the RMSE of the ensemble mean?", *J. Hydrometeorology* 15, 2014).
//!
//! These are the metrics used to evaluate score-based data assimilation
//! (Rozet & Louppe, "Score-based Data Assimilation", NeurIPS 2023).
//!
//! Functions panic (via `assert!`) with a descriptive message when the
//! shapes of their arguments are inconsistent; callers validate user input
//! beforehand.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;

/// Marker for "no index" in the optimal transport solvers.
const NONE: usize = usize::MAX;

/// Exact Wasserstein-1 distance between two uniform empirical distributions.
///
/// `a` holds `n = a.len() / dim` points and `b` holds `m = b.len() / dim`
/// points of dimension `dim` (row-major); each point of `a` has mass `1/n` and
/// each point of `b` mass `1/m`. The ground cost is the Euclidean distance
/// between rows, and the result is
///
/// `W1 = min_{π ∈ Π(a, b)} Σ_ij π_ij ‖a_i − b_j‖₂`,
///
/// solved exactly (no entropic regularisation):
///
/// * if `n == m`, an optimal plan is a permutation (Birkhoff), found with the
///   Jonker–Volgenant shortest augmenting path assignment algorithm,
///   `O(n³)` worst case;
/// * otherwise, with `g = gcd(n, m)`, the problem is the integer
///   transportation problem with supply `m/g` at every point of `a` and
///   demand `n/g` at every point of `b` (total mass `lcm(n, m)`), solved by
///   successive shortest paths on the bipartite network. This is faster than
///   replicating points into an `lcm × lcm` assignment problem even when
///   that one is small (e.g. 64 vs 1024 points).
///
/// The `n × m` cost matrix is computed in parallel with rayon; the solvers
/// are sequential. Single-core timings in dimension 195: 1024 × 1024 and
/// 64 × 1024 take well under a second; awkward near-square unequal sizes
/// with a small gcd (e.g. 1000 × 1024) take a few seconds.
///
/// # Panics
///
/// If `dim == 0`, if a slice is empty or its length is not a multiple of
/// `dim`, or if an input value is not finite.
pub fn wasserstein1(a: &[f64], b: &[f64], dim: usize) -> f64 {
    let (n, m) = point_counts("wasserstein1", a, b, dim);
    assert!(
        a.iter().chain(b).all(|v| v.is_finite()),
        "wasserstein1: inputs must be finite"
    );
    let cost = distance_matrix(a, b, dim);
    w1_from_cost(&cost, n, m)
}

/// Squared maximum mean discrepancy with a Gaussian kernel.
///
/// With `k(x, y) = exp(−‖x − y‖² / (2h²))`, `a` holding `n` points and `b`
/// holding `m` points (row-major, dimension `dim`), returns the biased
/// V-statistic
///
/// `MMD² = 1/n² Σ_ij k(a_i, a_j) + 1/m² Σ_ij k(b_i, b_j) − 2/(nm) Σ_ij k(a_i, b_j)`,
///
/// which includes the diagonal terms and is therefore non-negative (tiny
/// negative rounding errors are clamped to 0).
///
/// If `bandwidth` is `None`, `h` is chosen by the median heuristic: the median
/// of the Euclidean distances `‖z_i − z_j‖` over all pairs `i < j` of the
/// pooled sample `z = a ∪ b` (for an even number of pairs, the mean of the two
/// middle values). If that median is 0 (more than half of the pairs
/// coincide), the mean pairwise distance is used instead, and if all pooled
/// points coincide, `h = 1`. The heuristic stores all `(n+m)(n+m−1)/2`
/// pairwise distances (16 MiB for `n + m = 2048`).
///
/// The kernel sums cost `O((n + m)² · dim)` and run in parallel with rayon.
///
/// # Panics
///
/// If `dim == 0`, if a slice is empty or its length is not a multiple of
/// `dim`, or if the bandwidth is not finite and positive.
pub fn mmd(a: &[f64], b: &[f64], dim: usize, bandwidth: Option<f64>) -> f64 {
    let (n, m) = point_counts("mmd", a, b, dim);
    let h = bandwidth.unwrap_or_else(|| median_heuristic(a, b, dim));
    assert!(
        h.is_finite() && h > 0.0,
        "mmd: bandwidth must be finite and positive, got {h}"
    );
    let gamma = 1.0 / (2.0 * h * h);
    let kaa = kernel_sum(a, a, dim, gamma) / (n * n) as f64;
    let kbb = kernel_sum(b, b, dim, gamma) / (m * m) as f64;
    let kab = kernel_sum(a, b, dim, gamma) / (n * m) as f64;
    (kaa + kbb - 2.0 * kab).max(0.0)
}

/// Continuous ranked probability score of an ensemble, averaged over variables.
///
/// `ensemble` is row-major `(n_members, n_vars)` and `truth` has `n_vars`
/// entries. For each variable with members `x_1..x_N` and truth `y`, the
/// standard (not "fair") empirical CRPS
///
/// `CRPS = 1/N Σ_i |x_i − y| − 1/(2N²) Σ_ij |x_i − x_j|`
///
/// is computed, i.e. `E|X − y| − ½ E|X − X'|` under the empirical
/// distribution of the ensemble (this equals the integral of the squared
/// difference between the ensemble's empirical CDF and the step function at
/// `y`). The double sum is evaluated in `O(N log N)` by sorting:
/// `Σ_ij |x_i − x_j| = 2 Σ_k (2k − N − 1) x_(k)` with `x_(1) ≤ … ≤ x_(N)`.
/// The result is the mean over variables. For a single member it reduces to
/// the mean absolute error.
///
/// # Panics
///
/// If `n_members == 0`, `truth` is empty, or
/// `ensemble.len() != n_members * truth.len()`.
pub fn crps(ensemble: &[f64], n_members: usize, truth: &[f64]) -> f64 {
    let n_vars = check_ensemble("crps", ensemble, n_members, truth.len());
    let n = n_members as f64;
    let mut column = vec![0.0; n_members];
    let mut total = 0.0;
    for (var, &y) in truth.iter().enumerate() {
        for (c, member) in column.iter_mut().zip(ensemble.chunks_exact(n_vars)) {
            *c = member[var];
        }
        column.sort_unstable_by(f64::total_cmp);
        let abs_err: f64 = column.iter().map(|&x| (x - y).abs()).sum();
        // Σ_{i<j} (x_(j) − x_(i)) = Σ_k (2k − N − 1) x_(k) (k one-based), which is
        // half of Σ_ij |x_i − x_j|.
        let half_pair_sum: f64 = column
            .iter()
            .enumerate()
            .map(|(k, &x)| (2.0 * k as f64 + 1.0 - n) * x)
            .sum();
        total += abs_err / n - half_pair_sum / (n * n);
    }
    total / n_vars as f64
}

/// Rank histogram of the truth within the ensemble.
///
/// `ensemble` is row-major `(n_members, n_vars)` and `truth` has `n_vars`
/// entries. For each variable the rank of the truth is the number of members
/// strictly smaller than it (ties are not randomised), a value in
/// `0..=n_members`. Returns the counts of each rank (length `n_members + 1`),
/// which sum to `n_vars`. A calibrated ensemble gives a flat histogram.
///
/// # Panics
///
/// If `n_members == 0`, `truth` is empty, or
/// `ensemble.len() != n_members * truth.len()`.
pub fn rank_histogram(ensemble: &[f64], n_members: usize, truth: &[f64]) -> Vec<usize> {
    let n_vars = check_ensemble("rank_histogram", ensemble, n_members, truth.len());
    let mut counts = vec![0; n_members + 1];
    for (var, &y) in truth.iter().enumerate() {
        let rank = ensemble
            .chunks_exact(n_vars)
            .filter(|member| member[var] < y)
            .count();
        counts[rank] += 1;
    }
    counts
}

/// Root mean squared error `sqrt(1/L Σ_k (a_k − b_k)²)` between two slices.
///
/// # Panics
///
/// If the slices are empty or have different lengths.
pub fn rmse(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "rmse: slices have different lengths ({} vs {})",
        a.len(),
        b.len()
    );
    assert!(!a.is_empty(), "rmse: slices are empty");
    let sum_sq: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (sum_sq / a.len() as f64).sqrt()
}

/// Mean of the ensemble members, one value per variable.
///
/// `ensemble` is row-major `(n_members, n_vars)`; returns the `n_vars` values
/// `1/N Σ_i x_i`.
///
/// # Panics
///
/// If `n_members == 0`, the ensemble is empty, or its length is not a
/// multiple of `n_members`.
pub fn ensemble_mean(ensemble: &[f64], n_members: usize) -> Vec<f64> {
    let n_vars = ensemble_vars("ensemble_mean", ensemble, n_members);
    let mut mean = vec![0.0; n_vars];
    for member in ensemble.chunks_exact(n_vars) {
        for (m, &x) in mean.iter_mut().zip(member) {
            *m += x;
        }
    }
    let n = n_members as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

/// Ensemble spread: square root of the mean over variables of the unbiased
/// member variance, `sqrt(1/V Σ_v 1/(N−1) Σ_i (x_iv − x̄_v)²)`.
///
/// `ensemble` is row-major `(n_members, n_vars)`. For a calibrated ensemble
/// the spread matches the RMSE of the ensemble mean (up to a factor
/// `sqrt((N+1)/N)`).
///
/// # Panics
///
/// If `n_members < 2` (the unbiased variance is undefined), the ensemble is
/// empty, or its length is not a multiple of `n_members`.
pub fn ensemble_spread(ensemble: &[f64], n_members: usize) -> f64 {
    assert!(
        n_members >= 2,
        "ensemble_spread: need at least 2 members, got {n_members}"
    );
    ensemble_vars("ensemble_spread", ensemble, n_members);
    let mean = ensemble_mean(ensemble, n_members);
    let n_vars = mean.len();
    let sum_sq: f64 = ensemble
        .chunks_exact(n_vars)
        .map(|member| {
            member
                .iter()
                .zip(&mean)
                .map(|(x, m)| (x - m) * (x - m))
                .sum::<f64>()
        })
        .sum();
    (sum_sq / ((n_members - 1) * n_vars) as f64).sqrt()
}

/// Coverage of the ensemble's central `level` intervals: the share of variables whose truth
/// lies within the interval between the ensemble's `(1 − level)/2` and `(1 + level)/2`
/// quantiles.
///
/// `ensemble` is row-major `(n_members, n_vars)` and `truth` has `n_vars` entries. Quantiles
/// interpolate the sorted members linearly at the plotting positions `(N + 1) p` (one-based,
/// clamped to the first and last member; Hyndman & Fan 1996, type 6), so that a truth drawn
/// from the ensemble's own distribution falls inside with probability `level` for any ensemble
/// size. A calibrated ensemble covers `level` of the truths; an over-confident one less.
///
/// # Panics
///
/// If `n_members == 0`, `truth` is empty, `level` is outside `(0, 1)`, or
/// `ensemble.len() != n_members * truth.len()`.
pub fn coverage(ensemble: &[f64], n_members: usize, truth: &[f64], level: f64) -> f64 {
    let n_vars = check_ensemble("coverage", ensemble, n_members, truth.len());
    assert!(
        level > 0.0 && level < 1.0,
        "coverage: level must lie in (0, 1), got {level}"
    );
    let quantile = |sorted: &[f64], p: f64| {
        let h = ((n_members + 1) as f64 * p).clamp(1.0, n_members as f64) - 1.0;
        let (lo, frac) = (h.floor() as usize, h - h.floor());
        let hi = (lo + 1).min(n_members - 1);
        sorted[lo] + frac * (sorted[hi] - sorted[lo])
    };
    let mut column = vec![0.0; n_members];
    let mut inside = 0;
    for (var, &y) in truth.iter().enumerate() {
        for (c, member) in column.iter_mut().zip(ensemble.chunks_exact(n_vars)) {
            *c = member[var];
        }
        column.sort_unstable_by(f64::total_cmp);
        let (a, b) = (
            quantile(&column, (1.0 - level) / 2.0),
            quantile(&column, (1.0 + level) / 2.0),
        );
        if a <= y && y <= b {
            inside += 1;
        }
    }
    inside as f64 / n_vars as f64
}

/// The standard normal CDF `Φ(x) = ½ erfc(−x/√2)`, with the complementary error function of
/// Press et al. (*Numerical Recipes*, §6.2, `erfcc`: Chebyshev fit, relative error < 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let erfc = |x: f64| {
        let z = x.abs();
        let t = 1.0 / (1.0 + 0.5 * z);
        let poly = -z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77))))))));
        let r = t * poly.exp();
        if x >= 0.0 { r } else { 2.0 - r }
    };
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The share of observations outside the central 95 % interval of the samples' predictive
/// distribution `y ~ (1/N) Σ_i N(A(x_i), σ_y²)`: for each observed value the probability
/// integral transform `u = (1/N) Σ_i Φ((y − A(x_i)) / σ_y)` is computed, and the value counts
/// as outside where `u < 0.025` or `u > 0.975`. About 0.05 for calibrated samples (a little more
/// for few samples, whose mixture estimates the predictive with an error of its own: about
/// 0.065 for 32); more where the samples miss the observations, less where they fit the noise.
///
/// `predicted` is row-major `(n_members, n_obs)`: `A(x_i)` per sample; `y` and `std` have
/// `n_obs` entries.
///
/// # Panics
///
/// If `n_members == 0`, `y` is empty, `std.len() != y.len()`, or
/// `predicted.len() != n_members * y.len()`.
pub fn predictive_outside(predicted: &[f64], n_members: usize, y: &[f64], std: &[f64]) -> f64 {
    let m = check_ensemble("predictive_outside", predicted, n_members, y.len());
    assert_eq!(std.len(), m, "predictive_outside: one std per observation");
    let outside = (0..m)
        .filter(|&j| {
            let u = predicted
                .chunks_exact(m)
                .map(|a| normal_cdf((y[j] - a[j]) / std[j]))
                .sum::<f64>()
                / n_members as f64;
            !(0.025..=0.975).contains(&u)
        })
        .count();
    outside as f64 / m as f64
}

// ---------------------------------------------------------------------------
// Shape checks
// ---------------------------------------------------------------------------

/// Checks two point sets of dimension `dim` and returns their sizes.
fn point_counts(name: &str, a: &[f64], b: &[f64], dim: usize) -> (usize, usize) {
    assert!(dim > 0, "{name}: dim must be positive");
    assert!(
        !a.is_empty() && !b.is_empty(),
        "{name}: point sets must be non-empty"
    );
    assert!(
        a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim),
        "{name}: slice lengths ({}, {}) are not multiples of dim = {dim}",
        a.len(),
        b.len()
    );
    (a.len() / dim, b.len() / dim)
}

/// Checks an ensemble against a truth with `n_vars` entries; returns `n_vars`.
fn check_ensemble(name: &str, ensemble: &[f64], n_members: usize, n_vars: usize) -> usize {
    assert!(n_members > 0, "{name}: n_members must be positive");
    assert!(n_vars > 0, "{name}: truth is empty");
    assert_eq!(
        ensemble.len(),
        n_members * n_vars,
        "{name}: ensemble length {} != n_members ({n_members}) * n_vars ({n_vars})",
        ensemble.len()
    );
    n_vars
}

/// Checks an ensemble of `n_members` rows; returns the row length.
fn ensemble_vars(name: &str, ensemble: &[f64], n_members: usize) -> usize {
    assert!(n_members > 0, "{name}: n_members must be positive");
    assert!(!ensemble.is_empty(), "{name}: ensemble is empty");
    assert!(
        ensemble.len().is_multiple_of(n_members),
        "{name}: ensemble length {} is not a multiple of n_members = {n_members}",
        ensemble.len()
    );
    ensemble.len() / n_members
}

// ---------------------------------------------------------------------------
// Distances and kernels
// ---------------------------------------------------------------------------

/// Squared Euclidean distance, with four accumulators so that it vectorises.
fn squared_distance(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(p, q)| (p - q) * (p - q))
        .sum();
    for (p, q) in xc.zip(yc) {
        for k in 0..4 {
            let d = p[k] - q[k];
            acc[k] += d * d;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Row-major `n × m` matrix of Euclidean distances between the rows of `a`
/// and `b`.
fn distance_matrix(a: &[f64], b: &[f64], dim: usize) -> Vec<f64> {
    let m = b.len() / dim;
    let mut cost = vec![0.0; (a.len() / dim) * m];
    cost.par_chunks_mut(m)
        .zip(a.par_chunks_exact(dim))
        .for_each(|(row, x)| {
            for (c, y) in row.iter_mut().zip(b.chunks_exact(dim)) {
                *c = squared_distance(x, y).sqrt();
            }
        });
    cost
}

/// `Σ_ij exp(−γ ‖x_i − y_j‖²)` over the rows of `x` and `y`.
fn kernel_sum(x: &[f64], y: &[f64], dim: usize, gamma: f64) -> f64 {
    x.par_chunks_exact(dim)
        .map(|xi| {
            y.chunks_exact(dim)
                .map(|yj| (-gamma * squared_distance(xi, yj)).exp())
                .sum::<f64>()
        })
        .sum()
}

/// Median heuristic bandwidth over the pooled sample (see [`mmd`]).
fn median_heuristic(a: &[f64], b: &[f64], dim: usize) -> f64 {
    let pooled: Vec<&[f64]> = a.chunks_exact(dim).chain(b.chunks_exact(dim)).collect();
    let mut dists: Vec<f64> = (0..pooled.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let zi = pooled[i];
            pooled[i + 1..]
                .iter()
                .map(move |zj| squared_distance(zi, zj).sqrt())
        })
        .collect();
    // n, m >= 1, so there is at least one pair.
    let len = dists.len();
    let mid = len / 2;
    let (lower, &mut upper_mid, _) = dists.select_nth_unstable_by(mid, f64::total_cmp);
    let median = if len % 2 == 1 {
        upper_mid
    } else {
        let lower_mid = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower_mid + upper_mid)
    };
    if median > 0.0 {
        return median;
    }
    let mean = dists.iter().sum::<f64>() / len as f64;
    if mean > 0.0 { mean } else { 1.0 }
}

// ---------------------------------------------------------------------------
// Exact optimal transport
// ---------------------------------------------------------------------------

fn gcd(mut x: usize, mut y: usize) -> usize {
    while y != 0 {
        (x, y) = (y, x % y);
    }
    x
}

/// W1 between uniform measures on `n` and `m` points from their row-major
/// `n × m` cost matrix.
fn w1_from_cost(cost: &[f64], n: usize, m: usize) -> f64 {
    if n == m {
        return assignment_cost(cost, n) / n as f64;
    }
    // Integer masses: each of the n points carries m/g units and each of the
    // m points n/g units, for a total mass of lcm(n, m). The transportation
    // solver is fastest with the larger set as rows (its row scans cost
    // O(columns)), so transpose if needed.
    let g = gcd(n, m);
    let total = (n / g * m) as f64;
    if n >= m {
        transportation_cost(cost, &vec![(m / g) as u64; n], &vec![(n / g) as u64; m]) / total
    } else {
        let mut transposed = vec![0.0; n * m];
        for (i, row) in cost.chunks_exact(m).enumerate() {
            for (j, &c) in row.iter().enumerate() {
                transposed[j * n + i] = c;
            }
        }
        transportation_cost(
            &transposed,
            &vec![(n / g) as u64; m],
            &vec![(m / g) as u64; n],
        ) / total
    }
}

/// Minimum total cost of a perfect matching in the `size × size` assignment
/// problem with row-major cost matrix `cost`.
///
/// Shortest augmenting path algorithm of Jonker & Volgenant as formulated
/// by Crouse (2016), which is also the algorithm behind SciPy's
/// `linear_sum_assignment`: rows are inserted one at a time, each by a
/// Dijkstra search on reduced costs `c_ij − u_i − v_j ≥ 0` for the shortest
/// alternating path to a free column, after which the dual variables are
/// updated so that complementary slackness holds on the new matching.
/// `O(size³)` in the worst case, much less in practice.
fn assignment_cost(cost: &[f64], size: usize) -> f64 {
    debug_assert_eq!(cost.len(), size * size);
    let mut u = vec![0.0f64; size];
    let mut v = vec![0.0f64; size];
    let mut shortest = vec![f64::INFINITY; size];
    let mut path = vec![NONE; size];
    let mut col4row = vec![NONE; size];
    let mut row4col = vec![NONE; size];
    let mut remaining = vec![0usize; size];
    let mut visited_rows = Vec::with_capacity(size);
    let mut visited_cols = Vec::with_capacity(size);

    for cur in 0..size {
        shortest.fill(f64::INFINITY);
        for (k, r) in remaining.iter_mut().enumerate() {
            *r = size - 1 - k;
        }
        visited_rows.clear();
        visited_cols.clear();
        let mut num_remaining = size;
        let mut min_val = 0.0f64;
        let mut i = cur;

        // Dijkstra over alternating paths until a free column is reached.
        let sink = loop {
            visited_rows.push(i);
            let costs = &cost[i * size..][..size];
            let ui = u[i];
            let mut lowest = f64::INFINITY;
            let mut index = NONE;
            for (it, &j) in remaining[..num_remaining].iter().enumerate() {
                let reduced = min_val + costs[j] - ui - v[j];
                if reduced < shortest[j] {
                    path[j] = i;
                    shortest[j] = reduced;
                }
                // Ties are broken in favour of free columns, which ends the
                // search sooner.
                if shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == NONE) {
                    lowest = shortest[j];
                    index = it;
                }
            }
            // Finite costs always give a finite shortest path.
            min_val = lowest;
            let j = remaining[index];
            visited_cols.push(j);
            num_remaining -= 1;
            remaining[index] = remaining[num_remaining];
            if row4col[j] == NONE {
                break j;
            }
            i = row4col[j];
        };

        // Dual update.
        u[cur] += min_val;
        for &r in &visited_rows[1..] {
            u[r] += min_val - shortest[col4row[r]];
        }
        for &c in &visited_cols {
            v[c] -= min_val - shortest[c];
        }

        // Augment along the alternating path ending at `sink`.
        let mut j = sink;
        loop {
            let r = path[j];
            row4col[j] = r;
            std::mem::swap(&mut col4row[r], &mut j);
            if r == cur {
                break;
            }
        }
    }

    col4row
        .iter()
        .enumerate()
        .map(|(i, &j)| cost[i * size + j])
        .sum()
}

/// Tentative column label in the transportation solver's Dijkstra search
/// (used in a min-heap through [`Reverse`]).
#[derive(Clone, Copy, PartialEq)]
struct Label {
    dist: f64,
    /// Whether the column had no remaining demand when labelled; on equal
    /// distances, columns that can end the search are popped first.
    full: bool,
    col: usize,
}

impl Eq for Label {}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.full.cmp(&other.full))
            .then(self.col.cmp(&other.col))
    }
}

/// Minimum cost of the balanced transportation problem with row-major
/// `n × m` cost matrix, integer row supplies and column demands (equal
/// totals).
///
/// Successive shortest paths: rows with remaining supply are drained one at a
/// time; each step runs Dijkstra from the row on the residual bipartite
/// network (forward edges row → column with unbounded capacity, backward
/// edges column → row where flow is positive) using reduced costs
/// `c_ij + p_i − q_j ≥ 0`, pushes the bottleneck amount along the shortest
/// path to a column with remaining demand, and adds the distances (capped at
/// the sink's) to the node potentials `p`, `q`, which keeps every residual
/// reduced cost non-negative (Ahuja, Magnanti & Orlin 1993, §9.7). The
/// final flow satisfies complementary slackness, hence is optimal.
fn transportation_cost(cost: &[f64], supply: &[u64], demand: &[u64]) -> f64 {
    let (n, m) = (supply.len(), demand.len());
    debug_assert_eq!(cost.len(), n * m);
    debug_assert_eq!(supply.iter().sum::<u64>(), demand.iter().sum::<u64>());

    let mut rem_supply = supply.to_vec();
    let mut rem_demand = demand.to_vec();
    let mut flow = vec![0u64; n * m];
    // Rows that send positive flow to each column (the backward edges).
    let mut senders: Vec<Vec<usize>> = vec![Vec::new(); m];
    let mut p = vec![0.0f64; n];
    let mut q = vec![0.0f64; m];

    let mut dist_row = vec![f64::INFINITY; n];
    // Tentative labels of unsettled columns; settled columns hold −∞ so that
    // row scans never relabel them (their distances are kept in `settled`).
    let mut label = vec![f64::INFINITY; m];
    let mut settled: Vec<(usize, f64)> = Vec::with_capacity(m);
    let mut pred_row = vec![NONE; n];
    let mut pred_col = vec![NONE; m];
    let mut heap = BinaryHeap::new();

    for source in 0..n {
        while rem_supply[source] > 0 {
            dist_row.fill(f64::INFINITY);
            label.fill(f64::INFINITY);
            settled.clear();
            heap.clear();

            // Scanning a row relaxes its forward edges to all unsettled columns.
            let scan = |i: usize,
                        dist_i: f64,
                        label: &mut [f64],
                        pred_col: &mut [usize],
                        heap: &mut BinaryHeap<Reverse<Label>>| {
                let base = dist_i + p[i];
                let costs = &cost[i * m..][..m];
                for (j, ((&c, &qj), lj)) in costs.iter().zip(&q).zip(label.iter_mut()).enumerate() {
                    let d = base + c - qj;
                    if d < *lj {
                        *lj = d;
                        pred_col[j] = i;
                        heap.push(Reverse(Label {
                            dist: d,
                            full: rem_demand[j] == 0,
                            col: j,
                        }));
                    }
                }
            };

            dist_row[source] = 0.0;
            scan(source, 0.0, &mut label, &mut pred_col, &mut heap);
            let sink = loop {
                // Some column always has remaining demand and every column is
                // reachable from the source, so the heap cannot run dry.
                let Reverse(Label { dist, col: j, .. }) =
                    heap.pop().expect("transportation: no augmenting path");
                if dist > label[j] {
                    continue; // stale entry, or column already settled
                }
                label[j] = f64::NEG_INFINITY;
                settled.push((j, dist));
                if rem_demand[j] > 0 {
                    break j;
                }
                // Backward edges have zero reduced cost.
                for &k in &senders[j] {
                    if dist_row[k] == f64::INFINITY {
                        dist_row[k] = dist;
                        pred_row[k] = j;
                        scan(k, dist, &mut label, &mut pred_col, &mut heap);
                    }
                }
            };

            // Potentials: add the distances, capped at the sink's. Unsettled
            // columns have labels ≥ the sink distance. Rounding can make the
            // settled distances very slightly non-monotone, so settled ones
            // are capped too: without the cap such errors would accumulate
            // in the potentials and break the optimality conditions.
            let cap = settled.last().map_or(0.0, |&(_, d)| d);
            for (pi, &d) in p.iter_mut().zip(&dist_row) {
                *pi += d.min(cap);
            }
            for (qj, &l) in q.iter_mut().zip(&label) {
                if l != f64::NEG_INFINITY {
                    *qj += cap;
                }
            }
            for &(j, d) in &settled {
                q[j] += d.min(cap);
            }

            // Bottleneck along the path sink ← row ← column ← … ← source.
            let mut delta = rem_supply[source].min(rem_demand[sink]);
            let mut j = sink;
            loop {
                let i = pred_col[j];
                if i == source {
                    break;
                }
                j = pred_row[i];
                delta = delta.min(flow[i * m + j]);
            }

            // Push `delta` units along it.
            let mut j = sink;
            loop {
                let i = pred_col[j];
                if flow[i * m + j] == 0 {
                    senders[j].push(i);
                }
                flow[i * m + j] += delta;
                if i == source {
                    break;
                }
                j = pred_row[i];
                flow[i * m + j] -= delta;
                if flow[i * m + j] == 0 {
                    senders[j].retain(|&k| k != i);
                }
            }
            rem_supply[source] -= delta;
            rem_demand[sink] -= delta;
        }
    }

    senders
        .iter()
        .enumerate()
        .flat_map(|(j, rows)| rows.iter().map(move |&i| (i, j)))
        .map(|(i, j)| flow[i * m + j] as f64 * cost[i * m + j])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of the splitmix64 generator (Steele, Lea & Flood 2014).
    fn splitmix64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform sample in [0, 1) from the top 53 bits.
    fn uniform(state: &mut u64) -> f64 {
        (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` points of dimension `dim`, uniform in [-1, 1)^dim.
    fn random_points(n: usize, dim: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n * dim)
            .map(|_| 2.0 * uniform(&mut state) - 1.0)
            .collect()
    }

    /// Euclidean distance, written independently of the module's helpers.
    fn naive_dist(x: &[f64], y: &[f64]) -> f64 {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// Calls `f` on every permutation of `perm[k..]` (with `perm[..k]` fixed).
    fn for_each_permutation(perm: &mut [usize], k: usize, f: &mut impl FnMut(&[usize])) {
        if k == perm.len() {
            f(perm);
            return;
        }
        for i in k..perm.len() {
            perm.swap(k, i);
            for_each_permutation(perm, k + 1, f);
            perm.swap(k, i);
        }
    }

    /// Brute-force W1 for equal sizes: by Birkhoff's theorem the optimal plan
    /// between two uniform n-point measures is a permutation, so
    /// W1 = min_σ 1/n Σ_i ‖a_i − b_σ(i)‖.
    fn brute_force_w1(a: &[f64], b: &[f64], dim: usize) -> f64 {
        let n = a.len() / dim;
        let mut perm: Vec<usize> = (0..n).collect();
        let mut best = f64::INFINITY;
        for_each_permutation(&mut perm, 0, &mut |p| {
            let total: f64 = p
                .iter()
                .enumerate()
                .map(|(i, &j)| naive_dist(&a[i * dim..][..dim], &b[j * dim..][..dim]))
                .sum();
            best = best.min(total);
        });
        best / n as f64
    }

    /// 1-D closed form W1 = ∫₀¹ |F_a⁻¹(u) − F_b⁻¹(u)| du. With sorted samples,
    /// F_a⁻¹ is constant (= a_(i)) on [i/n, (i+1)/n) and F_b⁻¹ on
    /// [j/m, (j+1)/m); the integral is a sum over the merged breakpoints,
    /// tracked exactly in units of 1/(nm).
    fn quantile_w1_1d(a: &[f64], b: &[f64]) -> f64 {
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (n, m) = (a.len(), b.len());
        let (mut i, mut j, mut t) = (0, 0, 0);
        let mut total = 0.0;
        while i < n && j < m {
            let next = ((i + 1) * m).min((j + 1) * n);
            total += (next - t) as f64 * (a[i] - b[j]).abs();
            t = next;
            if next == (i + 1) * m {
                i += 1;
            }
            if next == (j + 1) * n {
                j += 1;
            }
        }
        total / (n * m) as f64
    }

    fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
        assert!(
            (got - want).abs() <= rel * want.abs().max(1.0),
            "{what}: got {got}, want {want}"
        );
    }

    #[test]
    fn w1_matches_brute_force_on_small_equal_sets() {
        // W1 (assignment solver) = min over permutations of the mean distance.
        for n in 2..=6 {
            for seed in 0..8 {
                let a = random_points(n, 3, 1000 * n as u64 + seed);
                let b = random_points(n, 3, 5000 * n as u64 + seed);
                let want = brute_force_w1(&a, &b, 3);
                assert_close(wasserstein1(&a, &b, 3), want, 1e-9, "w1 vs brute force");
                // The transportation solver (unit supplies and demands) solves
                // the same problem.
                let cost = distance_matrix(&a, &b, 3);
                let via_flow = transportation_cost(&cost, &vec![1; n], &vec![1; n]) / n as f64;
                assert_close(via_flow, want, 1e-9, "transportation vs brute force");
            }
        }
    }

    #[test]
    fn w1_matches_brute_force_with_ties() {
        // Points on the {0, 1}² grid give many equal costs (degenerate
        // assignment problems); W1 must still equal the brute-force minimum.
        for n in 2..=6 {
            for seed in 0..8 {
                let mut state = 77 * n as u64 + seed;
                let mut grid = |_| (splitmix64(&mut state) % 2) as f64;
                let a: Vec<f64> = (0..2 * n).map(&mut grid).collect();
                let b: Vec<f64> = (0..2 * n).map(&mut grid).collect();
                let want = brute_force_w1(&a, &b, 2);
                assert_close(wasserstein1(&a, &b, 2), want, 1e-9, "w1 with ties");
            }
        }
    }

    #[test]
    fn w1_unequal_sizes_match_1d_quantile_formula() {
        // In 1-D, W1 = ∫|F_a⁻¹ − F_b⁻¹| for any sizes n, m (unequal sizes go
        // through the transportation solver, in both orientations).
        let sizes = [
            (3, 6),
            (6, 3),
            (4, 10),
            (5, 7),
            (64, 1024),
            (67, 71),
            (1, 5),
        ];
        for (k, &(n, m)) in sizes.iter().enumerate() {
            let a = random_points(n, 1, 11 + k as u64);
            let b: Vec<f64> = random_points(m, 1, 97 + k as u64)
                .iter()
                .map(|x| 0.5 * x + 0.3)
                .collect();
            let want = quantile_w1_1d(&a, &b);
            assert_close(
                wasserstein1(&a, &b, 1),
                want,
                1e-9,
                &format!("w1 1-D {n} vs {m}"),
            );
        }
    }

    /// W1 by replication: with g = gcd(n, m), copying each point of `a`
    /// m/g times and each point of `b` n/g times gives two uniform measures
    /// on lcm(n, m) points equal to the originals, whose W1 is an assignment
    /// problem (Birkhoff) on the replicated cost matrix.
    fn replicated_assignment_w1(cost: &[f64], n: usize, m: usize) -> f64 {
        let g = gcd(n, m);
        let (rep_a, rep_b) = (m / g, n / g);
        let size = n * rep_a;
        let replicated: Vec<f64> = (0..size * size)
            .map(|k| cost[(k / size / rep_a) * m + (k % size) / rep_b])
            .collect();
        assignment_cost(&replicated, size) / size as f64
    }

    #[test]
    fn transportation_solver_matches_replicated_assignment() {
        // The transportation solver (both orientations, via w1_from_cost and
        // directly) and the assignment solver on replicated points compute
        // the same optimal transport cost between uniform measures.
        for (k, &(n, m)) in [(3, 6), (4, 10), (12, 18), (30, 45), (7, 13), (40, 8)]
            .iter()
            .enumerate()
        {
            let a = random_points(n, 3, 300 + k as u64);
            let b = random_points(m, 3, 400 + k as u64);
            let cost = distance_matrix(&a, &b, 3);
            let want = replicated_assignment_w1(&cost, n, m);
            let label = format!("{n} vs {m}");
            assert_close(w1_from_cost(&cost, n, m), want, 1e-9, &label);
            let g = gcd(n, m);
            let direct =
                transportation_cost(&cost, &vec![(m / g) as u64; n], &vec![(n / g) as u64; m])
                    / (n / g * m) as f64;
            assert_close(direct, want, 1e-9, &label);
        }
    }

    #[test]
    fn w1_unequal_sizes_with_ties_match_1d_quantile_formula() {
        // Same closed form on coarse 1-D grids (many equal costs and
        // degenerate optimal plans), over many size pairs in both
        // orientations; this stresses the transportation solver's potential
        // updates under rounding.
        let mut state = 2024;
        for n in [1, 2, 3, 5, 8, 13, 16, 31, 64, 100] {
            for m in [4, 7, 12, 64, 96, 257] {
                if n == m {
                    continue;
                }
                let levels = 1 + splitmix64(&mut state) % 20;
                let mut grid = |_| (splitmix64(&mut state) % levels) as f64 / levels as f64;
                let a: Vec<f64> = (0..n).map(&mut grid).collect();
                let b: Vec<f64> = (0..m).map(&mut grid).collect();
                let want = quantile_w1_1d(&a, &b);
                assert_close(wasserstein1(&a, &b, 1), want, 1e-9, &format!("{n} vs {m}"));
                assert_close(wasserstein1(&b, &a, 1), want, 1e-9, &format!("{m} vs {n}"));
            }
        }
    }

    #[test]
    fn w1_is_zero_on_identical_sets_and_symmetric() {
        // W1(a, a) = 0 (identity plan); W1(a, b) = W1(b, a) (transpose plan).
        let a = random_points(50, 4, 1);
        let b = random_points(20, 4, 2);
        let c = random_points(50, 4, 3);
        assert_eq!(wasserstein1(&a, &a, 4), 0.0);
        assert_close(
            wasserstein1(&a, &b, 4),
            wasserstein1(&b, &a, 4),
            1e-12,
            "symmetry (unequal sizes)",
        );
        assert_close(
            wasserstein1(&a, &c, 4),
            wasserstein1(&c, &a, 4),
            1e-12,
            "symmetry (equal sizes)",
        );
        // A set against itself listed twice is the same measure: W1 = 0.
        let aa = [a.clone(), a.clone()].concat();
        assert!(wasserstein1(&a, &aa, 4).abs() < 1e-12);
    }

    #[test]
    fn w1_of_translated_single_points() {
        // δ_x vs δ_y: W1 = ‖x − y‖ = 5 for a 3-4-5 triangle.
        assert_eq!(wasserstein1(&[0.0, 0.0], &[3.0, 4.0], 2), 5.0);
    }

    #[test]
    fn mmd_identical_sets_is_zero() {
        // All three kernel means coincide when a = b, so MMD² = 0.
        let a = random_points(30, 5, 9);
        assert_eq!(mmd(&a, &a, 5, None), 0.0);
        assert_eq!(mmd(&a, &a, 5, Some(0.7)), 0.0);
    }

    #[test]
    fn mmd_hand_computed_examples() {
        // a = {0, 1}, b = {0, 2} in 1-D, h = 1, k(d) = exp(−d²/2):
        //   K_aa = (1 + 1 + 2e^{−1/2}) / 4,  K_bb = (1 + 1 + 2e^{−2}) / 4,
        //   K_ab = (k(0) + k(2) + k(1) + k(1)) / 4 = (1 + e^{−2} + 2e^{−1/2}) / 4,
        //   MMD² = K_aa + K_bb − 2 K_ab = (1 − e^{−1/2}) / 2.
        let want = (1.0 - (-0.5f64).exp()) / 2.0;
        assert_close(
            mmd(&[0.0, 1.0], &[0.0, 2.0], 1, Some(1.0)),
            want,
            1e-14,
            "2-point",
        );
        // Median heuristic: pooled {0, 1, 0, 2} has pairwise distances
        // {1, 0, 2, 1, 1, 2} → sorted 0, 1, 1, 1, 2, 2 → median 1 → h = 1.
        assert_close(
            mmd(&[0.0, 1.0], &[0.0, 2.0], 1, None),
            want,
            1e-14,
            "median",
        );
        // a = {0}, b = {1}, h = 1 (also the median): MMD² = 1 + 1 − 2e^{−1/2}.
        let want = 2.0 - 2.0 * (-0.5f64).exp();
        assert_close(mmd(&[0.0], &[1.0], 1, None), want, 1e-14, "1-point");
        // h = 2 in 2-D, a = {(0,0)}, b = {(3,4)}: MMD² = 2 − 2 exp(−25/8).
        let want = 2.0 - 2.0 * (-25.0f64 / 8.0).exp();
        assert_close(
            mmd(&[0.0, 0.0], &[3.0, 4.0], 2, Some(2.0)),
            want,
            1e-14,
            "2-D",
        );
    }

    #[test]
    fn crps_hand_computed_examples() {
        // Ensemble {0, 1}, truth 0.5:
        //   1/N Σ|x_i − y| = (0.5 + 0.5) / 2 = 0.5,
        //   1/(2N²) Σ_ij |x_i − x_j| = (0 + 1 + 1 + 0) / 8 = 0.25,
        //   CRPS = 0.5 − 0.25 = 0.25.
        assert_eq!(crps(&[0.0, 1.0], 2, &[0.5]), 0.25);
        // Ensemble {0, 1}, truth 2: (2 + 1)/2 − 0.25 = 1.25.
        assert_eq!(crps(&[0.0, 1.0], 2, &[2.0]), 1.25);
        // Two variables, rows are members: var 0 has {0, 1} with truth 0.5
        // (0.25), var 1 has {3, 3} with truth 1 (2 − 0 = 2); mean = 1.125.
        assert_eq!(crps(&[0.0, 3.0, 1.0, 3.0], 2, &[0.5, 1.0]), 1.125);
        // A single member: the spread term vanishes and CRPS = |x − y|,
        // averaged over variables: (|1.5 − 0.5| + |−2 − 1|) / 2 = 2.
        assert_eq!(crps(&[1.5, -2.0], 1, &[0.5, 1.0]), 2.0);
    }

    #[test]
    fn crps_sorted_formula_matches_double_sum() {
        // The O(N log N) sorted form equals the literal definition
        // 1/N Σ|x_i − y| − 1/(2N²) Σ_ij |x_i − x_j|, averaged over variables.
        let (n_members, n_vars) = (17, 5);
        let ens = random_points(n_members, n_vars, 42);
        let truth = random_points(1, n_vars, 43);
        let mut want = 0.0;
        for v in 0..n_vars {
            let x: Vec<f64> = (0..n_members).map(|i| ens[i * n_vars + v]).collect();
            let n = n_members as f64;
            let err: f64 = x.iter().map(|xi| (xi - truth[v]).abs()).sum::<f64>() / n;
            let pairs: f64 = x
                .iter()
                .flat_map(|xi| x.iter().map(move |xj| (xi - xj).abs()))
                .sum();
            want += err - pairs / (2.0 * n * n);
        }
        want /= n_vars as f64;
        assert_close(crps(&ens, n_members, &truth), want, 1e-12, "crps");
    }

    #[test]
    fn rank_histogram_counts() {
        // Members (rows) {0, 10}, {1, 20}, {2, 30}; truths 1.5 and 35:
        // var 0: members < 1.5 are 0, 1 → rank 2; var 1: all three → rank 3.
        let ens = [0.0, 10.0, 1.0, 20.0, 2.0, 30.0];
        assert_eq!(rank_histogram(&ens, 3, &[1.5, 35.0]), vec![0, 0, 1, 1]);
        // Ties count as "not less": truth 0 equals the smallest member → rank 0.
        assert_eq!(rank_histogram(&ens, 3, &[0.0, 10.0]), vec![2, 0, 0, 0]);
        // Counts always sum to n_vars, and there are n_members + 1 bins.
        let ens = random_points(9, 40, 5);
        let truth = random_points(1, 40, 6);
        let hist = rank_histogram(&ens, 9, &truth);
        assert_eq!(hist.len(), 10);
        assert_eq!(hist.iter().sum::<usize>(), 40);
    }

    #[test]
    fn rmse_mean_and_spread() {
        // rmse([0, 0], [3, 4]) = sqrt((9 + 16) / 2) = sqrt(12.5).
        assert_eq!(rmse(&[0.0, 0.0], &[3.0, 4.0]), 12.5f64.sqrt());
        // Members (rows) {1, 2}, {3, 6}: mean = (2, 4); unbiased variances
        // (1² + 1²)/1 = 2 and (2² + 2²)/1 = 8; spread = sqrt((2 + 8)/2) = sqrt(5).
        let ens = [1.0, 2.0, 3.0, 6.0];
        assert_eq!(ensemble_mean(&ens, 2), vec![2.0, 4.0]);
        assert_eq!(ensemble_spread(&ens, 2), 5.0f64.sqrt());
        // A constant ensemble has zero spread.
        assert_eq!(ensemble_spread(&[1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 3), 0.0);
    }

    #[test]
    #[should_panic(expected = "not multiples of dim")]
    fn w1_rejects_ragged_input() {
        wasserstein1(&[0.0, 1.0, 2.0], &[0.0, 1.0], 2);
    }

    #[test]
    #[should_panic(expected = "ensemble length")]
    fn crps_rejects_shape_mismatch() {
        crps(&[0.0, 1.0, 2.0], 2, &[0.0]);
    }

    /// `n` standard normal values (Box–Muller on the module's uniform generator).
    fn normals(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                let (u, v) = (1.0 - uniform(&mut state), uniform(&mut state));
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    #[test]
    fn oracle_test_for_coverage_of_a_calibrated_and_an_overconfident_ensemble() {
        // Truth and 32 members uniform on [−1, 1) for each of 20 000 variables. The truth is
        // exchangeable with the members and E[U_(k)] = −1 + 2k/(N + 1) is linear in k, so the
        // interval between the plotting-position quantiles holds it with probability `level`
        // exactly. Monte-Carlo std: √(0.9 · 0.1 / 20 000) ≈ 0.0021 (0.0035 at 0.5).
        let (n, v) = (32, 20_000);
        let truth = random_points(v, 1, 1);
        let ensemble = random_points(n * v, 1, 2);
        let c50 = coverage(&ensemble, n, &truth, 0.5);
        let c90 = coverage(&ensemble, n, &truth, 0.9);
        assert!((c50 - 0.5).abs() < 0.012, "{c50}");
        assert!((c90 - 0.9).abs() < 0.008, "{c90}");
        // Members shrunk by half: the 90 % interval is [−0.45, 0.45] in expectation, which
        // holds a truth uniform on [−1, 1) with probability 0.45.
        let narrow: Vec<f64> = ensemble.iter().map(|x| 0.5 * x).collect();
        let c = coverage(&narrow, n, &truth, 0.9);
        assert!((c - 0.45).abs() < 0.012, "{c}");
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        // Φ(0) = 0.5, Φ(1.959964) = 0.975, Φ(−1) = 0.158655.
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    #[test]
    fn oracle_test_for_the_predictive_share_outside_95_percent() {
        // y = truth + σ z with truth and samples from N(0, 1): y is drawn from the predictive
        // distribution N(0, 1) ∗ N(0, σ²), which the mixture of 256 samples estimates, so about
        // 5 % fall outside its central 95 % (MC std √(0.05 · 0.95 / 8000) ≈ 0.0024; the
        // mixture's own sampling error adds a little, about 1.5 points at 32 samples).
        let (n, m, sigma) = (256, 8000, 0.5);
        let truth = normals(m, 3);
        let z = normals(m, 4);
        let y: Vec<f64> = truth.iter().zip(&z).map(|(t, z)| t + sigma * z).collect();
        let std = vec![sigma; m];
        let samples = normals(n * m, 5);
        let share = predictive_outside(&samples, n, &y, &std);
        assert!((share - 0.05).abs() < 0.01, "{share}");
        // Samples all at a point 3 noise stds away from every observation: all outside.
        let off: Vec<f64> = (0..n * m).map(|i| y[i % m] + 3.0 * sigma).collect();
        assert_eq!(predictive_outside(&off, n, &y, &std), 1.0);
    }
}
