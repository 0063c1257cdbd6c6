"""The WHEEL state mirror after ``kill -9`` of the engine: the journal holds states the mirror
had not written yet (its writer gets them a moment later, so that quick successive states are
written once); the resumed run writes them, and at its end every component file shows its
final state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import sharin
from sharin import Project

from ..conftest import Processes
from ..helpers import journal_tasks, lines, log_line


def state(root: Path, name: str) -> object:
    return json.loads((root / name / "cmp.wheel.json").read_text())["state"]


def test_a_finished_state_the_killed_engine_did_not_mirror_is_written_by_the_resumed_run(
    project: Project, procs: Processes
) -> None:
    sharin.add_task(project, "t1", log_line("t1") + "exit 0")
    sharin.add_task(project, "t2", log_line("t2"))
    sharin.connect(project, "t1", "t2")
    env = dict(os.environ, SHARIN_TEST_KILL_AFTER_SPAWN="t2")
    first = subprocess.run(
        Processes.argv("run", project.root), env=env, capture_output=True, timeout=60, check=False
    )
    assert first.returncode == -signal.SIGKILL
    root = project.root
    assert journal_tasks(root, 1)["t1"].state == "finished"
    # what the mirror had not written when the engine died (it waits a moment to
    # write a component's successive states once): t1 still shows running, without a status
    data = json.loads((root / "t1" / "cmp.wheel.json").read_text())
    data["state"] = "running"
    (root / "t1" / "cmp.wheel.json").write_text(json.dumps(data, indent=2))
    (root / "t1" / "status.wheel.txt").unlink(missing_ok=True)

    second = procs.run("run", root)

    assert "resumed run 1 finished" in second.stdout, second.stdout
    assert sorted(lines(root / "ran.log")) == ["t1", "t2"]  # t1 not run again
    assert state(root, "t1") == "finished"
    assert (root / "t1" / "status.wheel.txt").read_text() == "finished\n0\n0\n"
    assert json.loads((root / "t1" / "cmp.wheel.json").read_text())["rt"] == 0
    assert state(root, "t2") == "finished"
