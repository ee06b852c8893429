"""sda.slurm from Python: the same submissions as ``sda slurm``, with JSON answers; against a
real Slurm where one is reachable (scripts/slurm/start.sh), skipped otherwise."""

import os
import pathlib
import shutil
import subprocess
import time

import pytest

import sda
import sda.slurm

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "target" / "release" / "sda"
SIM = ["simulate", "lorenz63", "--trajectories", "40", "--length", "32", "--seed", "9"]

needs_program = pytest.mark.skipif(
    not PROGRAM.exists(), reason="the sda binary is not built (cargo build --release)"
)


def slurm_up():
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return out.returncode == 0 and "idle" in out.stdout


@needs_program
def test_a_dry_run_gives_the_array_and_merge_scripts(tmp_path):
    scripts = sda.slurm.submit(
        [*SIM, "--output", tmp_path / "data"], array=4, throttle=2, dry_run=True,
        program=str(PROGRAM),
    )
    assert "#SBATCH --array=0-3%2" in scripts
    assert '--shard "${SLURM_ARRAY_TASK_ID}/4"' in scripts
    assert f"merge {tmp_path / 'data'}" in scripts
    assert not (tmp_path / "data.slurm").exists()


@needs_program
def test_refusals_are_sda_errors_with_the_one_line_message(tmp_path):
    with pytest.raises(sda.SdaError, match="leave it out of the command"):
        sda.slurm.submit([*SIM, "--output", tmp_path / "d", "--shard", "0/2"],
                         program=str(PROGRAM))
    with pytest.raises(sda.SdaError, match="not found on the PATH"):
        sda.slurm.submit(SIM, program="no-such-sda-program")
    with pytest.raises(sda.SdaError, match="no submission here"):
        sda.slurm.status(tmp_path / "nothing", program=str(PROGRAM))


@needs_program
def test_a_submitted_array_merges_into_the_single_run_bits(tmp_path):
    if not slurm_up():
        if os.environ.get("SDA_SLURM_REQUIRED") == "1":
            pytest.fail("SDA_SLURM_REQUIRED=1 but no Slurm cluster is reachable")
        pytest.skip("no Slurm cluster reachable (scripts/slurm/start.sh starts one)")
    subprocess.run([PROGRAM, *SIM, "--output", tmp_path / "whole"], check=True,
                   capture_output=True)
    jobs = sda.slurm.submit([*SIM, "--output", tmp_path / "data"], array=4, throttle=2,
                            program=str(PROGRAM))
    assert jobs["tasks"] == 4 and jobs["merge"]
    t0 = time.time()
    while True:
        s = sda.slurm.status(tmp_path / "data", program=str(PROGRAM))
        if s["merged"] or s["merge_state"] in ("cancelled", "failed"):
            break
        assert time.time() - t0 < 300, s
        time.sleep(0.5)
    assert s["merged"], s
    assert [t["state"] for t in s["tasks"]] == ["done"] * 4
    for f in ["system.json", "train.npy", "valid.npy", "test.npy"]:
        assert (tmp_path / "whole" / f).read_bytes() == (tmp_path / "data" / f).read_bytes(), f
