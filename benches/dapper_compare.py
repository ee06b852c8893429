"""DAPPER 1.8.1 beside `sda filter --method` on Lorenz-96 sakov2008: CPU time per cycle.

Run through benches/dapper_compare.sh (venv, one BLAS thread). For each case DAPPER simulates
the truth and the observations once (seed 3000); the same arrays go to `sda filter`.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

import dapper as dpr
import dapper.da_methods as da
import dapper.mods as modelling
from dapper.mods.Lorenz96.sakov2008 import HMM as HMM0

# DAPPER 1.6-1.8.1's Var4D calls the time-indexed observation operator twice (docs/baselines.md
# §4); an operator called with an integer returns itself, which is what Var4D means.
_call = modelling.Operator.__call__


def _operator_call(self, *args, **kwargs):
    if len(args) == 1 and isinstance(args[0], (int, np.integer)) and not kwargs:
        return self
    return _call(self, *args, **kwargs)


modelling.Operator.__call__ = _operator_call

# (label, DAPPER method, sda flags, dko, cycles divisor, smoother)
METHODS = [
    ("climatology", lambda: da.Climatology(), "--method climatology", 1, 1, False),
    ("oi", lambda: da.OptInterp(), "--method oi", 1, 1, False),
    ("var3d xB=0.02", lambda: da.Var3D(xB=0.02), "--method var3d --background-scale 0.02", 1, 1, False),
    ("enkf N=40 infl=1.06", lambda: da.EnKF("PertObs", N=40, infl=1.06),
     "--method enkf --members 40 --inflation 1.06", 1, 1, False),
    ("denkf N=40 infl=1.01", lambda: da.EnKF("DEnKF", N=40, infl=1.01),
     "--method denkf --members 40 --inflation 1.01", 1, 1, False),
    ("etkf N=24 infl=1.02 rot", lambda: da.EnKF("Sqrt", N=24, infl=1.02, rot=True),
     "--method etkf --members 24 --inflation 1.02 --rotate", 1, 1, False),
    ("letkf N=7 infl=1.04 rot r=4", lambda: da.LETKF(N=7, rot=True, infl=1.04, loc_rad=4),
     "--method letkf --members 7 --inflation 1.04 --rotate --radius 4 --batch 2", 1, 1, False),
    ("enks N=24 infl=1.02 lag=10", lambda: da.EnKS("Sqrt", N=24, infl=1.02, rot=False, Lag=10),
     "--method enks --members 24 --inflation 1.02 --lag 10", 1, 1, True),
    ("ienks N=20 infl=1.01 rot lag=10", lambda: da.iEnKS("Sqrt", N=20, Lag=10, infl=1.01, rot=True),
     "--method ienks --members 20 --inflation 1.01 --rotate --lag 10", 1, 4, True),
    ("ienks N=20 xN=2 lag=4 (dko 4)", lambda: da.iEnKS("Sqrt", N=20, Lag=4, xN=2),
     "--method ienks --members 20 --finite-size 2 --lag 4", 4, 4, True),
    ("var4d xB=0.02 lag=4 (dko 4)", lambda: da.Var4D(Lag=4, xB=0.02, B="eye"),
     "--method var4d --background-scale 0.02 --lag 4", 4, 8, True),
]


def hmm(dko, cycles):
    h = HMM0.copy()
    h.tseq = modelling.Chronology(0.05, dko=dko, Ko=cycles - 1, BurnIn=min(20, 0.5 * 0.05 * dko * cycles))
    return h


def avrg(xp, sub):
    try:
        return float(getattr(xp.avrgs.err.rms, sub).val)
    except Exception:
        return float("nan")


def best_time(make, h, xx, yy, seed, repeats):
    """The fastest process time of `repeats` runs of DAPPER's `make()` on (xx, yy), and the last run."""
    best = float("inf")
    for _ in range(repeats):
        dpr.set_seed(seed)
        xp = make()
        t0 = time.process_time()
        xp.assimilate(h, xx, yy, liveplots=False)
        best = min(best, time.process_time() - t0)
    return best, xp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sda", required=True)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5,
                    help="runs of each timing, DAPPER's and sda's alike; the table gives the fastest")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dapper-compare-")
    system = os.path.join(work, "l96")
    subprocess.run([a.sda, "simulate", "lorenz96", "--size", "40", "--forcing", "8", "--dt", "0.05",
                    "--noise", "0", "--trajectories", "10", "--length", "2", "--burn-in", "0",
                    "--output", system], check=True, capture_output=True)
    x0 = np.zeros(40, dtype=np.float32)
    x0[0] = 1.0
    np.save(os.path.join(work, "x0.npy"), x0)
    data = {}
    rows = []
    for label, make, flags, dko, div, smoother in METHODS:
        cycles = max(a.cycles // div, 20)
        key = (dko, cycles)
        if key not in data:
            h = hmm(dko, cycles)
            dpr.set_seed(a.seed)
            xx, yy = h.simulate()
            base = os.path.join(work, f"dko{dko}-{cycles}")
            np.save(base + "-truth.npy", xx.astype(np.float32))
            np.save(base + "-y.npy", np.stack([np.asarray(v, dtype=float) for v in yy]).astype(np.float32))
            data[key] = (h, xx, yy, base)
        h, xx, yy, base = data[key]
        # DAPPER, as it runs (statistics on); the rmse from its run.
        dapper_cpu, xp = best_time(make, h, xx, yy, a.seed + 1, a.repeats)
        xp.stats.average_in_time()
        d_rmse = avrg(xp, "s" if smoother else "a")
        # DAPPER again with its statistics switched off (assess a no-op): the method's own time.
        import dapper.stats as dstats
        assess = dstats.Stats.assess
        dstats.Stats.assess = lambda self, *args, **kwargs: None
        try:
            bare_cpu, _ = best_time(make, h, xx, yy, a.seed + 1, a.repeats)
        except Exception as e:  # noqa: BLE001
            print(f"DAPPER without statistics failed on {label}: {e}", file=sys.stderr)
            bare_cpu = float("nan")
        finally:
            dstats.Stats.assess = assess
        sda_ms, s_rmse = float("inf"), float("nan")
        # sda
        out = os.path.join(work, "x.npy")
        cmd = [a.sda, "filter", "--system", system, "--operator", f"stride:{dko}@{dko}", "--noise", "1",
               "--observations", base + "-y.npy", "--length", str(xx.shape[0]), "--initial",
               os.path.join(work, "x0.npy"), "--initial-std", str(0.001 ** 0.5), "--climatology",
               base + "-truth.npy", "--seed", str(a.seed + 1), "--output", out] + flags.split()
        for _ in range(a.repeats):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"sda failed on {label}: {r.stderr.strip()}", file=sys.stderr)
                sda_ms = float("nan")
                break
            sda_ms = min(sda_ms, float(re.search(r"\(([0-9.]+) ms of CPU time", r.stdout).group(1)))
        if r.returncode == 0:
            x = np.load(out)
            mean = x.mean(axis=0)
            burn = int(round(20 / 0.05))
            ks = [k for k in range(dko, xx.shape[0], dko) if k > burn] or list(range(dko, xx.shape[0], dko))
            s_rmse = float(np.mean([np.sqrt(np.mean((mean[k] - xx[k]) ** 2)) for k in ks]))
        dapper_ms = 1e3 * dapper_cpu / cycles
        bare_ms = 1e3 * bare_cpu / cycles
        rows.append((label, cycles, dapper_ms, bare_ms, sda_ms, d_rmse, s_rmse))
        print(f"{label}: DAPPER {dapper_ms:.3f} ms/cycle, sda {sda_ms:.4f} ms/cycle", file=sys.stderr, flush=True)
    print(f"\nLorenz-96 sakov2008, truth seed {a.seed}, one core each, fastest of {a.repeats} runs "
          f"(python {sys.version.split()[0]}, dapper {dpr.__version__}, numpy {np.__version__})\n")
    print("| method | cycles | DAPPER ms/cycle (with its statistics) | DAPPER, statistics off | sda ms/cycle "
          "| speed-up (statistics off) | DAPPER rmse | sda rmse |")
    print("|---|---|---|---|---|---|---|---|")
    for label, cycles, dm, bm, sm, dr, sr in rows:
        speed = f"{bm / sm:.1f}× ({dm / sm:.0f}×)" if sm > 0 else "(sda below timer resolution)"
        print(f"| {label} | {cycles} | {dm:.3f} | {bm:.3f} | {sm:.4f} | {speed} | {dr:.3f} | {sr:.3f} |")
    print("\n(rmse: analysis, or smoothed for smoothers, at observed states with t > 20; sda's time is "
          "the method alone, scoring is a separate `sda evaluate`; speed-up against DAPPER without, "
          "and in brackets with, its statistics)")


if __name__ == "__main__":
    main()
