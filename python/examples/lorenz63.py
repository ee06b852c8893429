"""Score-based data assimilation on Lorenz-63, from Python, top to bottom.

    pip install ./python          # from the repository root; compiles the Rust core
    python python/examples/lorenz63.py [--epochs 256] [--output sda-python-demo]

1. simulate trajectories of the noisy Lorenz-63 system;
2. train a score network on windows of 5 states (k = 2);
3. observe a held-out trajectory: every 8th state, first coordinate, noise std 0.4;
4. draw posterior trajectories given those observations;
5. compare them with the particle filter's (the ground truth): exact Wasserstein-1;
6. plot (sda's own PNG, and a matplotlib figure when matplotlib is installed).
"""

import argparse
import pathlib
import time

import numpy as np

import sda

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=256, help="training epochs (paper: 4096)")
parser.add_argument("--output", default="sda-python-demo", help="folder for the files")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
out = pathlib.Path(args.output)

# 1. Simulate 1024 chains of 1024 states (after 1024 of burn-in), split 80/10/10 by chain.
t0 = time.time()
data = sda.simulate("lorenz63", trajectories=1024, length=1024, burn_in=1024, seed=args.seed)
print(f"1. {data} in {time.time() - t0:.1f} s")

# 2. Train the paper's local score network (k = 2, width 256); the paper trains 4096 epochs.
t0 = time.time()
model = sda.train(data, order=2, epochs=args.epochs, seed=args.seed, output=out / "run")
print(f"2. trained {model} for {args.epochs} epochs in {time.time() - t0:.0f} s → {out / 'run'}")

# 3. Observe the first 65 states of a test trajectory: y = A(x) + N(0, 0.4²).
operator, noise, length = "stride:8|select:0", 0.4, 65
truth = data.test[0, :length]  # (65, 3)
y = sda.observe(truth, operator=operator, noise=noise, seed=args.seed)  # (9, 1)
print(f"3. observed {operator!r} with noise std {noise}: y of shape {y.shape}")

# 4. Posterior trajectories: 64 samples of 65 states, T = 256 steps, C = 1 correction.
t0 = time.time()
x = model.assimilate(y, operator=operator, noise=noise, length=length, samples=64,
                     steps=256, corrections=1, seed=args.seed)
print(f"4. drew {x.shape[0]} posterior trajectories in {time.time() - t0:.1f} s")

# 5. The ground truth: a bootstrap particle filter (16384 particles, 1024 paths kept), and a
#    second, independent run for the floor W1 that the filter reaches against itself.
pf = sda.filter(y, system=data, operator=operator, noise=noise, length=length,
                seed=args.seed + 1)
floor = sda.filter(y, system=data, operator=operator, noise=noise, length=length,
                   particles=16384, keep=64, seed=args.seed + 2)
scores = sda.evaluate(x, reference=pf, truth=truth[None], system=data, y=y,
                      operator=operator, noise=noise)
w1_floor = sda.evaluate(floor, reference=pf)["w1"]
print(f"5. W1 to the particle filter: {scores['w1']:.2f} (filter against itself: "
      f"{w1_floor:.2f}); RMSE of the mean to the truth {scores['rmse']:.2f}, "
      f"spread {scores['spread']:.2f}, mean log p(x_2:L | x_1) {scores['log_px']:.1f}")

# 6. Pictures: sda's own, and matplotlib's if installed.
png = sda.plot.trajectories(x, pf, truth[None], y=y, operator=operator,
                            output=out / "posterior.png")
print(f"6. {png}")
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("   (matplotlib is not installed: no matplotlib figure)")
else:
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    t = np.arange(length)
    for d, ax in enumerate(axes):
        ax.plot(t, pf[:64, :, d].T, color="tab:orange", alpha=0.2, lw=0.8)
        ax.plot(t, x[:, :, d].T, color="tab:blue", alpha=0.2, lw=0.8)
        ax.plot(t, truth[:, d], color="black", lw=1.5)
        ax.set_ylabel("xyz"[d])
    axes[0].plot(t[::8], y[:, 0], "kx", ms=7)
    axes[-1].set_xlabel("state index")
    fig.suptitle("posterior samples (blue), particle filter (orange), truth (black)")
    fig.savefig(out / "posterior-matplotlib.png", dpi=100)
    print(f"   {out / 'posterior-matplotlib.png'}")
