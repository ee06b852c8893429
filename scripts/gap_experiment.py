#!/usr/bin/env python3
"""Training with gaps: the masked loss against dropping incomplete windows, on a complete record.

A complete Lorenz-96 record (40 variables, F = 8, dt = 0.05, deterministic) is cut into windows;
station outages are cut into its training and validation windows at random (runs of missing
steps per variable, the truth kept aside). Three priors are trained on the same ring network and
scored on the same complete test windows, observed the same way:

- complete: every value;
- masked: every window, the missing values filled with the variable's mean and the denoising
  loss counted on the observed values only (`{split}-observed.npy`, as `sda import --gaps keep`
  writes them);
- dropped: only the windows without a gap (what `sda import --gaps drop` keeps), trained for as
  many optimizer steps as the others (more epochs over fewer windows).

Usage: scripts/gap_experiment.py [--sda target/release/sda] [--out target/gap-experiment]
       [--missing 0.01,0.1] [--epochs 100] [--tests 8] [--seed 0]
Prints one table row per prior; the numbers are those of docs/real-data.md.
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

OPERATOR = "stride:4@4"  # every variable at every 4th state, as the benchmark's dko = 4


def run(sda, *args):
    out = subprocess.run([str(sda), *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"sda {' '.join(map(str, args))}: {out.stderr.strip()}")
    return out.stdout


def outages(rng, shape, share, mean_length=4.0):
    """0/1 observed flags `(N, L, D)`: outages starting at random, geometric lengths."""
    n, length, d = shape
    start = share / (mean_length * (1.0 - share))  # starts per observed step for that share
    observed = np.ones(shape, np.float32)
    for i in range(n):
        for j in range(d):
            t = 0
            while t < length:
                if rng.random() < start:
                    k = rng.geometric(1.0 / mean_length)
                    observed[i, t : t + k, j] = 0.0
                    t += k
                else:
                    t += 1
    return observed


def filled(x, observed):
    """Missing values set to each variable's mean over the observed training values."""
    mean = (x * observed).sum((0, 1)) / observed.sum((0, 1))
    return np.where(observed > 0, x, mean).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sda", default="target/release/sda")
    p.add_argument("--out", default="target/gap-experiment")
    p.add_argument("--missing", default="0.01,0.1", help="shares of missing training values")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--tests", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    sda, out = Path(a.sda).resolve(), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)

    sim = out / "sim"
    if not (sim / "system.json").exists():
        run(sda, "simulate", "lorenz96", "--size", 40, "--forcing", 8, "--dt", 0.05, "--noise", 0,
            "--trajectories", 1280, "--length", 16, "--seed", a.seed + 11, "--output", sim)
    train, valid, test = (np.load(sim / f"{s}.npy") for s in ("train", "valid", "test"))
    np.save(out / "test.npy", test)
    obs = []
    for i in range(a.tests):
        o = out / f"obs{i}"
        if not (o / "y.npy").exists():
            run(sda, "observe", "--trajectories", out / "test.npy", "--index", i, "--length", 16,
                "--operator", OPERATOR, "--noise", 1, "--seed", i, "--output", o)
        obs.append(o)

    arms = [("complete", 0.0, train, valid, None, None)]
    for share in map(float, a.missing.split(",")):
        tw, vw = outages(rng, train.shape, share), outages(rng, valid.shape, share)
        arms.append((f"masked {share:.0%}", share, filled(train, tw), filled(valid, vw), tw, vw))
        tk, vk = tw.min((1, 2)) > 0, vw.min((1, 2)) > 0
        arms.append((f"dropped {share:.0%}", share, train[tk], valid[vk], None, None))

    rows = []
    for name, share, tr, va, tw, vw in arms:
        tag = name.replace(" ", "-").replace("%", "")
        data, model = out / f"data-{tag}", out / f"run-{tag}"
        row = {"prior": name, "missing": share, "windows": len(tr), "valid windows": len(va)}
        if len(tr) < 8 or len(va) < 1:
            row["note"] = "no training (too few complete windows left)"
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        if not (model / "model.safetensors").exists():
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(model, ignore_errors=True)
            np.save(out / "train.npy", tr)
            np.save(out / "valid.npy", va)
            run(sda, "import", "--train", out / "train.npy", "--valid", out / "valid.npy",
                "--test", out / "test.npy", "--layout", "ring", "--output", data)
            if tw is not None:
                np.save(data / "train-observed.npy", tw)
                np.save(data / "valid-observed.npy", vw)
            # As many optimizer steps as the complete record's training (one window per
            # training chain per epoch).
            epochs = math.ceil(a.epochs * len(train) / len(tr))
            log = run(sda, "train", "--data", data, "--output", model, "--epochs", epochs,
                      "--seed", a.seed + 1)
            (model / "train.log").write_text(log)
        scores = []
        for i, o in enumerate(obs):
            x = model / f"x{i}.npy"
            if not x.exists():
                run(sda, "assimilate", "--model", model, "--observations", o / "y.npy",
                    "--operator", OPERATOR, "--noise", 1, "--length", 16, "--samples", 16,
                    "--steps", 64, "--corrections", 1, "--seed", i, "--output", x)
            scores.append(json.loads(run(sda, "evaluate", "--samples", x, "--truth",
                                         o / "truth.npy", "--json")))
        for key in ("rmse", "crps", "spread", "coverage_90"):
            row[key] = float(np.mean([s[key] for s in scores]))
        row["spread/rmse"] = row["spread"] / row["rmse"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    print("\n| prior | missing | training windows | RMSE | CRPS | spread/RMSE | truth in 90 % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "rmse" not in r:
            print(f"| {r['prior']} | {r['missing']:.0%} | {r['windows']} | {r['note']} | | | |")
            continue
        print(f"| {r['prior']} | {r['missing']:.0%} | {r['windows']} | {r['rmse']:.3f} | "
              f"{r['crps']:.3f} | {r['spread/rmse']:.2f} | {r['coverage_90']:.2f} |")


if __name__ == "__main__":
    main()
