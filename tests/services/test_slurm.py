"""The real Slurm (slurmctld, slurmd, slurmdbd on MariaDB) of scripts/services."""

from __future__ import annotations

import pytest

from .conftest import Services, Slurm, wait_for

pytestmark = pytest.mark.slurm


def test_partitions_debug_is_the_default(services: Services) -> None:
    out = services.run(["sinfo", "-h", "-o", "%P %a"]).stdout.split()
    assert out == ["debug*", "up", "long", "up"]
    assert services.env["TEST_SLURM_PARTITIONS"].split(",") == ["debug", "long"]


def test_job_in_squeue_then_in_sacct_with_its_exit_code(slurm: Slurm) -> None:
    job = slurm.sbatch("-p", "long", "--wrap", "sleep 1; echo out; exit 3")
    assert slurm.squeue_state(job) in {"PENDING", "CONFIGURING", "RUNNING", "FAILED"}
    assert slurm.finished(job) == {job: ("FAILED", "3:0")}
    assert slurm.squeue_state(job) == "FAILED"  # finished jobs stay MinJobAge seconds
    assert (slurm.workdir / f"slurm-{job}.out").read_text() == "out\n"


def test_array_job(slurm: Slurm) -> None:
    job = slurm.sbatch(
        "--array=1-5", "--wrap", "echo $SLURM_ARRAY_TASK_ID > task.$SLURM_ARRAY_TASK_ID"
    )
    tasks = {f"{job}_{i}" for i in range(1, 6)}
    assert slurm.finished(job, tasks) == dict.fromkeys(tasks, ("COMPLETED", "0:0"))
    for i in range(1, 6):
        assert (slurm.workdir / f"task.{i}").read_text() == f"{i}\n"


def test_scancel(slurm: Slurm, services: Services) -> None:
    job = slurm.sbatch("--wrap", "sleep 300")
    wait_for("the job to run", lambda: slurm.squeue_state(job) == "RUNNING" or None)
    services.run(["scancel", job])
    # the exit code is 0:15 or 0:0, depending on when the step's end reaches the accounting
    assert slurm.finished(job)[job][0] == "CANCELLED"


@pytest.mark.slow
def test_slurmctld_restart_keeps_the_queue(slurm: Slurm, services: Services) -> None:
    job = slurm.sbatch("--wrap", "sleep 300")
    wait_for("the job to run", lambda: slurm.squeue_state(job) == "RUNNING" or None)
    services.helper("slurm.sh", "restart", "slurmctld")
    assert slurm.squeue_state(job) == "RUNNING"
    services.run(["scancel", job])
    assert slurm.finished(job)[job][0] == "CANCELLED"
