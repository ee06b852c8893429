"""The divergence grid (docs/guard.md) for the Kolmogorov-flow prior.

The Kolmogorov variant of scripts/divergence_grid.py: priors x observation noise x
operators x likelihoods. Each cell observes the first test trajectory of the data folder
(LENGTH states of (2, 32, 32) fields) with an operator and a noise (in data stds), assimilates it
with a likelihood setting and the default sampler (256 steps, guard on), and scores the samples
against the truth (`sda evaluate --json`). A cell the guard refuses is rerun with --no-guard to
record what its samples would have been. One JSON line per cell goes to OUT/rows.jsonl (the row
format of divergence_grid.py, plus refused_step/refused_t); a second run skips the cells done.

    python scripts/divergence_grid_kolmogorov.py --out kgrid --data kdata \
        --prior e16=k16 --prior e96=k96 --noise 0.05 0.3 1

Needs numpy, and the `sda` binary on PATH (or SDA=path/to/sda).

Operators: stride:4|coarsen:4 (8x8 block means of every 4th state), space-stride:4 (one grid
point in 16 of both channels, every state) and a table (`sda observe --table`, 32 stations at 4
of the 8 states, per-row stds uniform in 0.5-1.5x the noise).
"""
import argparse, json, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from divergence_grid import S, cell, observe  # noqa: E402  (the same runs, rows and scores)
NOISES = [0.05, 0.3, 1.0]  # in data stds
LIKELIHOODS = {
    "sda-g0.03": ["--likelihood", "sda", "--gamma", "0.03"],
    "mmps-k1": ["--likelihood", "mmps", "--iterations", "1"],
    "dps": ["--likelihood", "dps"],
}
OPERATORS = [  # (label, operator or None for a table)
    ("coarsen", "stride:4|coarsen:4"),
    ("space-stride", "space-stride:4"),
    ("table", None),
]
SAMPLES, SEED = 4, 0
TABLE_TIMES, TABLE_STATIONS = 4, 32


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--system", default="kolmogorov")
    ap.add_argument("--data", required=True)
    ap.add_argument("--length", type=int, default=8)
    ap.add_argument("--prior", action="append", required=True, help="LABEL=MODEL_DIR")
    ap.add_argument("--noise", type=float, nargs="+", default=NOISES)
    ap.add_argument("--operators", nargs="+", default=[o for o, _ in OPERATORS])
    ap.add_argument("--likelihoods", nargs="+", default=list(LIKELIHOODS))
    ap.add_argument("--observe-only", action="store_true", help="write the observations only")
    ap.add_argument("--max-cells", type=int, default=None, help="stop after this many new cells")
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    train = np.load(f"{data}/train.npy")  # (N, L, 2, H, W)
    # The data std: the std of u and v over every value of the training set, averaged over the
    # two channels (what `sda simulate` prints as "std of u, v").
    std = float(train.std(axis=(0, 1, 3, 4)).mean())
    priors = {p.split("=", 1)[0]: os.path.abspath(p.split("=", 1)[1]) for p in args.prior}
    os.makedirs(args.out, exist_ok=True)
    os.chdir(args.out)
    name = args.system
    done = set()
    if os.path.exists("rows.jsonl"):
        for line in open("rows.jsonl"):
            r = json.loads(line)
            done.add((r["system"], r["prior"], r["noise"], r["operator"], r["likelihood"]))
    new = 0
    for prior, model in priors.items():
        for noise in args.noise:
            for op_label, op in OPERATORS:
                if op_label not in args.operators:
                    continue
                sig = noise * std
                obs = f"obs/{name}-{op_label}-{noise}"
                table = ["--times", str(TABLE_TIMES), "--stations", str(TABLE_STATIONS)]
                oflags = observe(obs, data, args.length, op, sig, table)
                for lik, lflags in LIKELIHOODS.items():
                    if args.observe_only or lik not in args.likelihoods:
                        continue
                    if (name, prior, noise, op_label, lik) in done:
                        continue
                    if args.max_cells is not None and new >= args.max_cells:
                        return
                    base = [S, "assimilate", "--model", model, "--length", str(args.length),
                            "--samples", str(SAMPLES), "--seed", str(SEED), "--force"] + oflags + lflags
                    row = dict(system=name, prior=prior, noise=noise, operator=op_label,
                               likelihood=lik, data_std=std)
                    cell(base, f"x/{name}-{prior}-{op_label}-{noise}-{lik}.npy", obs, oflags, std, row)
                    new += 1
                    print(json.dumps(row)[:300], flush=True)

if __name__ == "__main__":
    main()
