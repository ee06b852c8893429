#!/usr/bin/env python3
"""How the Kolmogorov solver's time-stepping coefficients (`RK_A`, `RK_B` in
src/mcs/kolmogorov.rs) were found. Needs numpy and scipy; not part of the build.

A six-stage Runge–Kutta scheme in Williamson's 2N-storage form,
    d <- A_i d + h N(u),   u <- u + B_i d,   i = 1..6,  A_1 = 0,
has 11 free coefficients. We ask for
  * the eight conditions of order four, and
  * the stability polynomial 1 + z + z^2/2 + z^3/6 + z^4/24 + a5 z^5 + a6 z^6 with the
    (a5, a6) that maximises the stable interval of the imaginary axis, where the eigenvalues
    of dealiased spectral advection lie,
and solve by Gauss–Newton from random starts; among the solutions we keep the one with the
smallest coefficients whose stage times c lie in [0, 1].

Usage: python3 scripts/rk-coefficients.py
"""

from math import factorial

import numpy as np
from scipy.optimize import least_squares

STAGES = 6
Y = 1j * np.linspace(1e-4, 8.0, 80001)


def stable_interval(coefficients):
    """The largest y with |R(iy)| <= 1 on [0, y]."""
    r = sum(c * Y**k for k, c in enumerate(coefficients))
    bad = np.abs(r) > 1 + 1e-9
    return Y[np.argmax(bad)].imag if bad.any() else np.inf


def tableau(x):
    """Butcher (a, b) of the 2N scheme with A = (0, x[:5]), B = x[5:]."""
    big_a, big_b = np.concatenate([[0.0], x[: STAGES - 1]]), x[STAGES - 1 :]
    a, d, u = np.zeros((STAGES, STAGES)), np.zeros(STAGES), np.zeros(STAGES)
    for i in range(STAGES):
        a[i] = u
        d = big_a[i] * d + np.eye(STAGES)[i]
        u = u + big_b[i] * d
    return a, u


def order_conditions(a, b):
    c = a.sum(1)
    return np.array([
        b.sum() - 1, b @ c - 1 / 2, b @ c**2 - 1 / 3, b @ (a @ c) - 1 / 6,
        b @ c**3 - 1 / 4, b @ (c * (a @ c)) - 1 / 8, b @ (a @ c**2) - 1 / 12,
        b @ (a @ (a @ c)) - 1 / 24,
    ])


def stability_coefficient(a, b, k):
    v = np.ones(STAGES)
    for _ in range(k - 1):
        v = a @ v
    return b @ v


def main():
    taylor = [1 / factorial(k) for k in range(5)]
    print(f"classical RK4: stable for |y| <= {stable_interval(taylor):.4f}")
    best = max(
        (stable_interval(taylor + [a5, a6]), a5, a6)
        for a5 in np.linspace(0.004, 0.008, 81)
        for a6 in np.linspace(0.0004, 0.0014, 101)
    )
    interval, a5, a6 = best
    print(f"(a5, a6) = ({a5:.5f}, {a6:.5f}): stable for |y| <= {interval:.4f}")

    def residual(x):
        a, b = tableau(x)
        return np.concatenate([
            order_conditions(a, b),
            [100 * (stability_coefficient(a, b, 5) - a5),
             1000 * (stability_coefficient(a, b, 6) - a6)],
        ])

    rng = np.random.default_rng(0)
    solutions = []
    for _ in range(40):
        fit = least_squares(residual, rng.uniform(-1.5, 1.5, 2 * STAGES - 1),
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=600)
        c = tableau(fit.x)[0].sum(1)
        if np.abs(fit.fun).max() < 1e-11 and c.min() >= 0 and c.max() <= 1:
            solutions.append(fit.x)
    x = min(solutions, key=lambda x: np.abs(x).max())
    a, b = tableau(x)
    print("RK_A", [0.0] + [float(v) for v in x[: STAGES - 1]])
    print("RK_B", [float(v) for v in x[STAGES - 1 :]])
    print("RK_C", [float(v) for v in a.sum(1)])


if __name__ == "__main__":
    main()
