#!/usr/bin/env bash
# The Python package's checks against the binary: the same bits from the same settings and
# seed (simulate, filter, assimilate), and the wall time of the demo's assimilation (64
# samples of 65 states, T = 256, C = 1) by `sda assimilate` and by `model.assimilate`,
# measured in alternation. Usage: scripts/python-checks.sh [ROUNDS] [DIR] with the package
# installed in the active Python and target/release/sda built.
set -euo pipefail
ROUNDS=${1:-3}
DIR=${2:-target/python-checks}
SDA=${SDA:-target/release/sda}
mkdir -p "$DIR"
op='stride:8|select:0'

$SDA simulate lorenz63 --output "$DIR/data" --trajectories 256 --length 256 --burn-in 256 --seed 4 --force >/dev/null
$SDA train --data "$DIR/data" --output "$DIR/run" --epochs 64 --seed 0 --force >/dev/null
$SDA observe "$DIR/data/test.npy" --index 0 --length 65 --operator "$op" \
    --noise 0.4 --seed 0 --output "$DIR/obs" >/dev/null
$SDA filter --system "$DIR/data" --observations "$DIR/obs/y.npy" --operator "$op" --noise 0.4 \
    --length 65 --particles 4096 --keep 256 --seed 0 --output "$DIR/pf.npy" >/dev/null

for r in $(seq 1 "$ROUNDS"); do
    t0=$(date +%s.%N)
    $SDA assimilate --model "$DIR/run" --observations "$DIR/obs/y.npy" --operator "$op" \
        --noise 0.4 --length 65 --samples 64 --steps 256 --corrections 1 --seed 0 \
        --output "$DIR/x-cli.npy" >/dev/null 2>&1
    t1=$(date +%s.%N)
    echo "round $r cli $(echo "$t1 - $t0" | bc)"
    python - "$DIR" "$r" <<'PY'
import sys, time
import numpy as np
import sda
d, r = sys.argv[1], sys.argv[2]
model = sda.Model.load(f"{d}/run")
y = np.load(f"{d}/obs/y.npy")
t0 = time.perf_counter()
x = model.assimilate(y, operator="stride:8|select:0", noise=0.4, length=65, samples=64,
                     steps=256, corrections=1, seed=0, progress=False)
print(f"round {r} python {time.perf_counter() - t0:.3f}")
np.save(f"{d}/x-py.npy", x)
PY
done

python - "$DIR" <<'PY'
import sys
import numpy as np
import sda
d = sys.argv[1]
op = "stride:8|select:0"
cli = sda.Data.load(f"{d}/data")
py = sda.simulate("lorenz63", trajectories=256, length=256, burn_in=256, seed=4, progress=False)
print("simulate: same bits:", all(np.array_equal(getattr(cli, s), getattr(py, s))
                                  for s in ("train", "valid", "test")))
y = np.load(f"{d}/obs/y.npy")
print("observe: same bits:",
      np.array_equal(y, sda.observe(cli.test[0, :65], operator=op, noise=0.4, seed=0)))
pf = sda.filter(y, system=f"{d}/data", operator=op, noise=0.4, length=65, particles=4096,
                keep=256, seed=0, progress=False)
print("filter: same bits:", np.array_equal(pf, np.load(f"{d}/pf.npy")))
a, b = np.load(f"{d}/x-cli.npy"), np.load(f"{d}/x-py.npy")
print("assimilate: same bits:", a.dtype == b.dtype and a.shape == b.shape
      and a.tobytes() == b.tobytes(), a.shape)
PY
