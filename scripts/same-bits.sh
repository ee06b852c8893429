#!/usr/bin/env bash
# Checksums of what a refactoring must leave unchanged: the demo, the Lorenz-63 study's rows, the
# classical Lorenz-96 table and the Python example, each run small with a fixed seed. Run it before
# and after a change and compare the lines; wall-clock columns are cut before hashing.
#
#   scripts/same-bits.sh [SDA-BINARY] [PYTHON]     # defaults: target/release/sda, python3
#
# The Python example needs `pip install ./python` done in PYTHON's environment; it is skipped with
# a message where `import sda` fails.
set -euo pipefail
sda=$(realpath "${1:-target/release/sda}")
py=${2:-python3}
case $py in */*) py=$(realpath -s "$py") ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sum() { sha256sum | cut -c1-16; }
npys() { find "$1" -name '*.npy' | sort | xargs cat | sum; }
cd "$work"

"$sda" demo --output demo --epochs 16 --samples 8 --seed 0 > demo.log 2>&1
echo "demo                 $(npys demo)"

"$sda" study lorenz63 --output s63 --orders 2 --corrections 0,1 --cases lo --trajectories 2 \
    --samples 8 --steps 64 --epochs 64 --particles 512 --keep 256 --seed 0 > s63.log 2>&1
# rows.csv without its `seconds` column (the 11th).
echo "lorenz63 study rows  $(cut -d, -f1-10,12- s63/rows.csv | sum)"

"$sda" study lorenz96 --output s96 --no-sda --cases sakov2008,sakov2008-dko4,spantini2019 --cycles 500 --truth-seeds 3000 \
    > s96.log 2>&1
# lorenz96.csv without cpu_seconds and ms_per_cycle (the 8th and 9th columns).
echo "classical table      $(cut -d, -f1-7,10- s96/lorenz96.csv | sum)"

if "$py" -c 'import sda' 2> /dev/null; then
    "$py" "$root/python/examples/lorenz63.py" --epochs 8 --output py --seed 0 > py.log 2>&1
    echo "python example       $(npys py)"
else
    echo "python example       skipped: \`import sda\` fails in $py (pip install ./python first)"
fi
