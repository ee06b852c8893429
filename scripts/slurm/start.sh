#!/usr/bin/env bash
# Starts a real Slurm cluster on this machine, for the Slurm tests: munged, slurmctld and one
# slurmd per node (several `slurmd -N` on one host fake several nodes). Needs root and Debian's
# slurmctld, slurmd, slurm-client and munge packages (installed here when missing and the
# package registry is reachable). Everything lives under $SDA_SLURM_DIR (default
# /tmp/sda-slurm); scripts/slurm/stop.sh stops every daemon by its PID.
#
#   scripts/slurm/start.sh [NODES]     # NODES: 1 (default) or more fake nodes
#
# Exits 0 with the cluster up (sinfo shows the nodes idle), or 2 with a one-line reason when
# Slurm cannot be had here (not root, packages unavailable): callers skip their tests then.
set -euo pipefail
nodes=${1:-1}
dir=${SDA_SLURM_DIR:-/tmp/sda-slurm}
skip() { echo "slurm: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || skip "not root: the one-node test cluster runs its daemons as root"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "no apt-get to install slurmctld, slurmd, slurm-client, munge"
    if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
        slurmctld slurmd slurm-client munge >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
            slurmctld slurmd slurm-client munge >/dev/null 2>&1 \
            || skip "could not install slurmctld, slurmd, slurm-client and munge from Debian"
    fi
fi
"$(dirname "$0")/stop.sh" >/dev/null 2>&1 || true
mkdir -p "$dir"/{ctld,log,run}

# munge: the package made the key; the daemon runs as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
    command -v mungekey >/dev/null && mungekey --create --force >/dev/null 2>&1 \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
    chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
# munged writes its PID file as the munge user, in a folder of its own.
install -d -o munge -g munge "$dir/munge"
su -s /bin/sh munge -c "munged --pid-file=$dir/munge/munged.pid" \
    || skip "munged did not start"
for _ in $(seq 50); do [ -s "$dir/munge/munged.pid" ] && break; sleep 0.1; done

# The machine's cores shared among the fake nodes, so that an array spreads over all of them.
cpus=$(( $(nproc) / nodes )); [ "$cpus" -ge 1 ] || cpus=1
{
    cat <<CONF
ClusterName=sda-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldPort=16817
CONF
    for n in $(seq "$nodes"); do
        echo "NodeName=node$n NodeHostname=$(hostname) NodeAddr=127.0.0.1 Port=$((17000 + n)) CPUs=$cpus RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
} > "$dir/slurm.conf"
mkdir -p /etc/slurm
ln -sf "$dir/slurm.conf" /etc/slurm/slurm.conf

slurmctld -i -f "$dir/slurm.conf" || skip "slurmctld did not start (see $dir/log/slurmctld.log)"
for n in $(seq "$nodes"); do
    mkdir -p "$dir/spool-node$n"
    slurmd -N "node$n" -f "$dir/slurm.conf" || skip "slurmd -N node$n did not start (see $dir/log/slurmd-node$n.log)"
done
for _ in $(seq 60); do
    idle=$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle' || true)
    [ "$idle" -ge "$nodes" ] && { echo "slurm: $nodes node(s) idle (config $dir/slurm.conf)"; exit 0; }
    sleep 0.5
done
sinfo -N >&2 || true
skip "the nodes did not come up (see $dir/log/)"
