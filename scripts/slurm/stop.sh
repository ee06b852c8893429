#!/usr/bin/env bash
# Stops the test cluster of scripts/slurm/start.sh: every daemon by the PID it recorded.
dir=${SDA_SLURM_DIR:-/tmp/sda-slurm}
for pid_file in "$dir"/run/slurmd-*.pid "$dir"/run/slurmctld.pid "$dir"/munge/munged.pid; do
    [ -s "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pid_file"
done
# Job state of this run only: a new cluster starts empty.
rm -rf "$dir"/ctld "$dir"/spool-*
