#!/usr/bin/env bash
# Speed of sda's classical methods beside DAPPER 1.8.1 on Lorenz-96 (sakov2008), same truth,
# observations and settings, one core each (one BLAS thread, one rayon thread), in one run.
#
#   benches/dapper_compare.sh [CYCLES]        (default 1000 observation cycles at dko = 1)
#
# Makes a Python ≥ 3.12 virtual environment in target/dapper-venv (PYTHON=... to choose the
# interpreter), installs dapper==1.8.1 from PyPI, builds sda, and prints a markdown table of
# CPU milliseconds per observation cycle (DAPPER: process time of `assimilate`, its statistics
# included, as it cannot run without them; sda: process time of the method) and rmse of both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.12 python3.13 "$HOME/.pyenv/versions/3.12.1/bin/python" python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "error: DAPPER 1.8.1 needs Python >= 3.12 (set PYTHON=...)" >&2; exit 1; }
VENV=target/dapper-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import dapper' 2>/dev/null; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q dapper==1.8.1
fi
cargo build --release --quiet
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1
export DAPPER_DATA_ROOT=${DAPPER_DATA_ROOT:-$(mktemp -d)}
export MPLBACKEND=agg
exec "$VENV/bin/python" benches/dapper_compare.py --sda target/release/sda --cycles "${1:-1000}"
