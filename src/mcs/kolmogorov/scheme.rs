//! The time scheme: the coefficients of the six-stage, fourth-order 2N-storage Runge–Kutta
//! scheme and the Courant limits of its sub-steps.

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
pub(super) const STAGES: usize = RK_A.len();

/// How far along the imaginary axis the scheme is stable: `|R(iy)| ≤ 1` for `|y| ≤` this.
pub const RK_STABILITY: f64 = 4.886;

/// The largest Courant number `h (max|u| + max|v|) / dx` for which the scheme is stable on
/// dealiased Fourier modes: [`RK_STABILITY`]` / (k_max dx)` with `k_max dx ≤ 2π/3`.
pub(super) const COURANT_LIMIT: f64 = RK_STABILITY * 3.0 / std::f64::consts::TAU;

/// How far above `courant` a sub-step may start before the rest of its interval is planned
/// again (relative).
pub(super) const REPLAN_SLACK: f64 = 0.05;
