"""The Son of Grid Engine of scripts/services: qsub, qstat, qacct, qdel."""

from __future__ import annotations

import pytest

from .conftest import Services, Sge, wait_for

pytestmark = pytest.mark.sge


def test_qsub_then_qacct_has_the_exit_status(sge: Sge) -> None:
    job = sge.qsub("#!/bin/sh\necho out\nexit 3\n", "-N", "exit3", "-o", "job.out")
    record = sge.qacct(job)
    assert record["jobnumber"] == job
    assert record["exit_status"] == "3"
    assert record["failed"] == "0"
    assert job not in sge.live()
    assert (sge.workdir / "job.out").read_text() == "out\n"


def test_qdel(sge: Sge, services: Services) -> None:
    job = sge.qsub("#!/bin/sh\nsleep 300\n", "-N", "sleeper")
    assert job in sge.live()
    services.run(["qdel", job])
    wait_for("the job to leave qstat", lambda: job not in sge.live() or None)
