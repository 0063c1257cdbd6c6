"""PBS/Torque's qsub, qstat and qdel (the slurm-wlm-torque wrappers) on the Slurm of
scripts/services."""

from __future__ import annotations

import pytest

from .conftest import Pbs, Slurm, wait_for

pytestmark = [pytest.mark.pbs, pytest.mark.slurm]


def test_qsub_qstat(pbs: Pbs, slurm: Slurm) -> None:
    job = pbs.qsub("job.sh", "#!/bin/sh\necho $PBS_JOBID $PBS_O_WORKDIR\nexit 4\n")
    assert pbs.state(job) in {"Q", "R", "C"}
    assert slurm.finished(job) == {job: ("FAILED", "4:0")}
    assert pbs.state(job) == "C"
    assert (pbs.workdir / f"job.sh.o{job}").read_text() == f"{job} {pbs.workdir}\n"


def test_qdel(pbs: Pbs, slurm: Slurm) -> None:
    job = pbs.qsub("sleep.sh", "#!/bin/sh\nsleep 300\n")
    wait_for("the job to run", lambda: pbs.state(job) == "R" or None)
    pbs.run("qdel", job)
    assert slurm.finished(job)[job][0] == "CANCELLED"


def test_unknown_job(pbs: Pbs) -> None:
    assert pbs.run("qstat", "999999", code=None).returncode != 0
