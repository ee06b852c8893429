#!/usr/bin/env python3
"""Trajectories of a system sda does not know, made with numpy alone: Lorenz-96
(dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F, periodic), integrated with RK4.

    python3 scripts/lorenz96_numpy.py --output l96.npy [--trajectories 1024 --length 128 \
        --dim 20 --forcing 8 --dt 0.05 --burn-in 200 --seed 0]

writes a float64 array of shape (trajectories, length, dim): one state every --dt time units
after --burn-in steps from a random start. `sda import --train l96.npy --output DIR` imports it.
"""
import argparse

import numpy as np


def tendency(x, forcing):
    return (np.roll(x, -1, axis=-1) - np.roll(x, 2, axis=-1)) * np.roll(x, 1, axis=-1) - x + forcing


def rk4(x, dt, forcing):
    k1 = tendency(x, forcing)
    k2 = tendency(x + 0.5 * dt * k1, forcing)
    k3 = tendency(x + 0.5 * dt * k2, forcing)
    k4 = tendency(x + dt * k3, forcing)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True)
    p.add_argument("--trajectories", type=int, default=1024)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--dim", type=int, default=20)
    p.add_argument("--forcing", type=float, default=8.0)
    p.add_argument("--dt", type=float, default=0.05)
    p.add_argument("--burn-in", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    x = a.forcing + rng.standard_normal((a.trajectories, a.dim))
    for _ in range(a.burn_in):
        x = rk4(x, a.dt, a.forcing)
    out = np.empty((a.trajectories, a.length, a.dim))
    for t in range(a.length):
        out[:, t] = x
        x = rk4(x, a.dt, a.forcing)
    np.save(a.output, out)
    print(f"{a.output}: {out.shape}, mean {out.mean():.3f}, std {out.std():.3f}")


if __name__ == "__main__":
    main()
