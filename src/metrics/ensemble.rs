//! Ensemble metrics: an ensemble against a reference state (CRPS, rank histogram, RMSE,
//! spread, coverage) and the predictive share of observations outside 95 %.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{assert_close, random_points, uniform};

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
