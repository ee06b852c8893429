"""Slurm job arrays of sda commands, from Python: the same as ``sda slurm`` on the command line.

    import sda.slurm
    jobs = sda.slurm.submit(
        ["study", "lorenz63", "--output", "study", "--trajectories", "8"],
        array=8, throttle=4, time="2:00:00", partition="cpu",
    )
    sda.slurm.status("study")["tasks"]      # [{"task": 0, "state": "done", "host": ...}, ...]
    sda.slurm.resubmit("study")             # the shards that failed or never ran

Each call runs the ``sda`` program (the one on the PATH, or ``program=``, which the jobs run
too: it must be reachable from the cluster's nodes) and returns what it printed as JSON. Errors
it reports raise ``sda.SdaError`` with its one-line message.
"""

import json
import shutil
import subprocess

from ._sda import SdaError

__all__ = ["submit", "status", "resubmit"]


def _program(program):
    found = shutil.which(program or "sda")
    if found is None:
        raise SdaError(
            f"{program or 'sda'}: not found on the PATH (build it with `cargo build --release` "
            "and add target/release to the PATH, or pass program=)"
        )
    return found


def _run(program, args):
    done = subprocess.run([program, *args], capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise SdaError(lines[-1].removeprefix("error: ") if lines else f"{program} failed")
    return done.stdout


def submit(
    command,
    *,
    array=1,
    throttle=None,
    time=None,
    partition=None,
    account=None,
    gpus_per_task=None,
    cpus_per_task=None,
    force=False,
    dry_run=False,
    program=None,
):
    """Submits the sda ``command`` (a list of words after ``sda``) as ``sda slurm submit`` does.

    With ``array=N``, a command that splits (simulate, assimilate, sample, study lorenz63) runs
    as N shards and a merge job; a command holding ``{i}`` runs N times with ``{i}`` replaced by
    the task's index. Returns ``{"array", "merge", "tasks", "folder", "output"}`` (job ids and
    where the scripts and logs are), or with ``dry_run=True`` the batch scripts as a string.
    """
    exe = _program(program)
    args = ["slurm", "submit", "--array", str(array)]
    for flag, value in [
        ("--throttle", throttle),
        ("--time-limit", time),
        ("--partition", partition),
        ("--account", account),
        ("--gpus-per-task", gpus_per_task),
        ("--cpus-per-task", cpus_per_task),
    ]:
        if value is not None:
            args += [flag, str(value)]
    if force:
        args.append("--force")
    if dry_run:
        return _run(exe, [*args, "--dry-run", "--", exe, *map(str, command)])
    return json.loads(_run(exe, [*args, "--json", "--", exe, *map(str, command)]))


def status(output, *, program=None):
    """Where a submission stands: ``{"tasks": [{"task", "state", "host", "detail"}], "merge",
    "merge_state", "merged", "failed"}``; ``state`` is done, pending, running, failed or
    missing."""
    return json.loads(_run(_program(program), ["slurm", "status", str(output), "--json"]))


def resubmit(output, *, program=None):
    """Submits again the shards that failed or never ran, and a new merge job; returns what
    ``sda slurm resubmit`` printed."""
    return _run(_program(program), ["slurm", "resubmit", str(output)])
