"""The divergence grid of docs/guard.md: priors x observation noise x operators x likelihoods.

Each cell observes the first test trajectory of the data folder with an operator and a noise
(in data standard deviations), assimilates it with a likelihood setting and the default sampler
(the guard on), and scores the samples against the truth (`sda evaluate`). A cell the guard
refuses is run again with --no-guard to record what its samples would have been. One JSON line
per cell goes to OUT/rows.jsonl; a second run skips the cells already there.

    python scripts/divergence_grid.py --out grid --system lorenz63 --data data --length 65 \
        --stride 8 --prior e100=run100 --prior e4096=run --noise 0.05 0.3 1 2

Needs numpy, and the `sda` binary on PATH (or SDA=path/to/sda).
"""
import argparse, json, os, re, subprocess, sys, time
import numpy as np

S = os.path.abspath(os.environ["SDA"]) if "SDA" in os.environ else "sda"
NOISES = [0.05, 0.3, 1.0, 2.0]  # in data stds
LIKELIHOODS = {
    "sda-g0.03": ["--likelihood", "sda", "--gamma", "0.03"],
    "mmps-k1": ["--likelihood", "mmps", "--iterations", "1"],
    "mmps-k3": ["--likelihood", "mmps", "--iterations", "3"],
    "dps": ["--likelihood", "dps"],
}
SAMPLES = 16


def operators(name, sy):
    """(label, operator or None for a table, extra files) for this system."""
    d, k = sy["dim"], sy["stride"]
    os.makedirs("ops", exist_ok=True)
    half = np.arange(0, d, 2, dtype=np.int64)  # every other value
    np.save(f"ops/{name}-half.npy", half)
    r = 2 if d > 3 else 3
    m = d // r if d > 3 else 1
    coarse = np.zeros((m, d), dtype=np.float32)
    for i in range(m):
        coarse[i, i * r:(i + 1) * r] = 1.0 / r
    np.save(f"ops/{name}-coarse.npy", coarse)
    return [
        ("stride", f"stride:{k}"),
        ("points", f"stride:{k}|points:ops/{name}-half.npy"),
        ("table", None),
        ("coarsen", f"stride:{k}|linear:ops/{name}-coarse.npy"),
    ]


def run(cmd, log):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "a") as f:
        f.write(" ".join(cmd) + "\n" + p.stdout + p.stderr + "\n")
    return p, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder of the grid's files")
    ap.add_argument("--system", required=True, help="a label for the rows")
    ap.add_argument("--data", required=True, help="data folder (its test.npy is observed)")
    ap.add_argument("--length", type=int, required=True, help="states assimilated")
    ap.add_argument("--stride", type=int, required=True, help="observe every STRIDE-th state")
    ap.add_argument("--prior", action="append", required=True, help="LABEL=MODEL_DIR")
    ap.add_argument("--noise", type=float, nargs="+", default=NOISES, help="in data stds")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    train = np.load(f"{data}/train.npy")
    std = float(train.reshape(-1, train.shape[-1]).std(0).mean())
    dim = int(np.prod(train.shape[2:]))
    priors = {p.split("=", 1)[0]: os.path.abspath(p.split("=", 1)[1]) for p in args.prior}
    os.makedirs(args.out, exist_ok=True)
    os.chdir(args.out)
    name = args.system
    sy = dict(data=data, std=std, length=args.length, stride=args.stride, dim=dim, priors=priors)
    done = set()
    if os.path.exists("rows.jsonl"):
        for line in open("rows.jsonl"):
            r = json.loads(line)
            done.add((r["system"], r["prior"], r["noise"], r["operator"], r["likelihood"]))
    for op_label, op in operators(name, sy):
        for noise in args.noise:
            sig = noise * sy["std"]
            obs = f"obs/{name}-{op_label}-{noise}"
            oflags = observe(obs, sy["data"], sy["length"], op, sig)
            for prior, model in sy["priors"].items():
                for lik, lflags in LIKELIHOODS.items():
                    if (name, prior, noise, op_label, lik) in done:
                        continue
                    base = [S, "assimilate", "--model", model, "--length", str(sy["length"]),
                            "--samples", str(SAMPLES), "--seed", "3", "--force"] + oflags + lflags
                    row = dict(system=name, prior=prior, noise=noise, operator=op_label,
                               likelihood=lik)
                    cell(base, f"x/{name}-{prior}-{op_label}-{noise}-{lik}.npy", obs, oflags,
                         sy["std"], row)
                    print(json.dumps(row)[:200], flush=True)


def observe(obs, data, length, op, sig, table=()):
    """Observes test trajectory 0 of DATA into OBS (once) with operator `op` (None: a table,
    `sda observe --table` with the flags `table`) and noise std `sig`; returns the flags that
    give `sda assimilate` these observations."""
    if not os.path.isdir(obs):
        cmd = [S, "observe", "--trajectories", f"{data}/test.npy", "--index", "0",
               "--length", str(length), "--output", obs, "--seed", "1"]
        if op is None:
            cmd += ["--table", *table, "--noise", f"{sig * 0.5:.4f}:{sig * 1.5:.4f}"]
        else:
            cmd += ["--operator", op, "--noise", f"{sig:.4f}"]
        p, _ = run(cmd, "observe.log")
        assert p.returncode == 0, p.stderr
    if op is None:
        return ["--observations", f"{obs}/obs.csv"]
    return ["--observations", f"{obs}/y.npy", "--operator", op, "--noise", f"{sig:.4f}"]


def cell(base, out, obs, oflags, std, row):
    """Runs the assimilation `base` into OUT and records in `row`, appended to rows.jsonl, its
    scores against the truth, or its refusal (with the step and t it names) and what its samples
    would have been without the guard; max |x| in data stds `std`."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    p, secs = run(base + ["--output", out], "assimilate.log")
    row["seconds"] = round(secs, 1)
    if p.returncode != 0:
        msg = [l for l in p.stderr.splitlines() if "error" in l]
        row["refused"] = msg[-1] if msg else p.stderr[-300:]
        m = re.search(r"step (\d+) of (\d+) \(noise level t = ([0-9.]+)\)", row["refused"])
        if m:
            row["refused_step"] = int(m.group(1))
            row["refused_t"] = float(m.group(3))
        if "diverged" not in row["refused"]:
            row["failed"] = True
        # What the samples would have been without the guard.
        nog = out.replace(".npy", "-noguard.npy")
        q, qsecs = run(base + ["--no-guard", "--output", nog], "assimilate.log")
        row["noguard_seconds"] = round(qsecs, 1)
        if q.returncode == 0:
            x = np.load(nog)
            fin = np.isfinite(x)
            row["noguard_max_abs_std"] = float(np.abs(x[fin]).max() / std) if fin.any() else None
            row["noguard_nonfinite"] = int((~fin).sum())
            row["noguard_eval"] = evaluate(nog, obs, oflags)
            os.remove(nog)
        else:
            row["noguard_error"] = q.stderr.strip()[-300:]
    else:
        x = np.load(out)
        row["max_abs_std"] = float(np.abs(x).max() / std)
        row["eval"] = evaluate(out, obs, oflags)
    with open("rows.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def evaluate(samples, obs, oflags):
    p = subprocess.run([S, "evaluate", "--samples", samples, "--truth", f"{obs}/truth.npy", "--json"]
                       + oflags, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-300:]}
    e = json.loads(p.stdout)
    return {k: e.get(k) for k in ["rmse", "spread", "spread_error", "coverage_50", "coverage_90",
                                  "crps", "residual_z", "residual_outside"]}


if __name__ == "__main__":
    main()
