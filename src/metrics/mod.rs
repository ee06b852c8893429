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

mod ensemble;
mod transport;

use rayon::prelude::*;

pub use ensemble::{
    coverage, crps, ensemble_mean, ensemble_spread, normal_cdf, predictive_outside, rank_histogram,
    rmse,
};
pub use transport::wasserstein1;

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

// ---------------------------------------------------------------------------
// Shape checks
// ---------------------------------------------------------------------------

/// Checks two point sets of dimension `dim` and returns their sizes.
pub(super) fn point_counts(name: &str, a: &[f64], b: &[f64], dim: usize) -> (usize, usize) {
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
pub(super) fn distance_matrix(a: &[f64], b: &[f64], dim: usize) -> Vec<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of the splitmix64 generator (Steele, Lea & Flood 2014).
    pub(super) fn splitmix64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform sample in [0, 1) from the top 53 bits.
    pub(super) fn uniform(state: &mut u64) -> f64 {
        (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` points of dimension `dim`, uniform in [-1, 1)^dim.
    pub(super) fn random_points(n: usize, dim: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n * dim)
            .map(|_| 2.0 * uniform(&mut state) - 1.0)
            .collect()
    }

    pub(super) fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
        assert!(
            (got - want).abs() <= rel * want.abs().max(1.0),
            "{what}: got {got}, want {want}"
        );
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
}
