#!/usr/bin/env bash
# The fault test at length: SIGKILL `sda simulate`, `sda train` and `sda assimilate` at random
# (seeded) moments, KILLS times each (default 30), check that no output is corrupt or
# half-written and that finishing each run gives the uninterrupted run's bits, and print the
# table (kills per command, corrupt outputs, resumed runs bit-identical).
#   scripts/fault-test.sh [KILLS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
SDA_FAULT_KILLS="${1:-30}" SDA_FAULT_SEED="${2:-13}" \
    cargo test --release --test faults -- --nocapture 2>&1 | grep -E '^\||test result'
