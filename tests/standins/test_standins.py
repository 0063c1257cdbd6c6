"""What sharin does the same way through the LSF and the PBS Pro stand-ins."""

from __future__ import annotations

import sharin
from sharin import Project
from sharin.engine import RunOptions

from ..helpers import journal_tasks
from .conftest import StandIn


def test_a_task_runs_as_a_job(project: Project, standin: StandIn) -> None:
    standin.host()
    sharin.add_task(project, "t", standin.prologue + "echo made > made.txt", host=standin.name)
    sharin.set_property(project, "t", "useJobScheduler", True)
    sharin.add_task(project, "bad", "exit 4", host=standin.name)
    sharin.set_property(project, "bad", "useJobScheduler", True)

    result = sharin.run(project, options=RunOptions(keep_going=True))

    tasks = journal_tasks(project.root, 1)
    assert tasks["t"].state == "finished" and (project.root / "t" / "made.txt").exists()
    assert tasks["bad"].state == "failed" and "exit code 4" in (tasks["bad"].message or "")
    assert result.state == "failed"
