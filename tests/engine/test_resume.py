"""Crash and resume: the engine process is killed with SIGKILL in the middle of a run.

Each task appends its name to ``$SHARIN_PROJECT_DIR/ran.log`` and then sleeps, so the log tells
exactly which tasks were started, and how often.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle

from ..conftest import Processes
from ..helpers import journal_tasks, lines, log_line, pid_alive, wait_for


def chain(p: Project, n: int, sleep: float, slow: dict[str, float] | None = None) -> list[str]:
    names = [f"t{i}" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        sharin.add_task(p, name, log_line(name) + f"sleep {(slow or {}).get(name, sleep)}")
        if i:
            sharin.connect(p, names[i - 1], name)
    return names


def kill_engine_while_running(procs: Processes, p: Project, victim: str) -> JobHandle:
    """Start ``sharin run``, SIGKILL the engine (only) while ``victim`` runs; return its handle."""
    engine = procs.start("run", p.root)
    ran_log = p.root / "ran.log"

    def victim_running() -> bool:
        if victim not in lines(ran_log) or not (p.root / ".sharin" / "journal.sqlite").exists():
            return False
        record = journal_tasks(p.root, 1).get(victim)
        return record is not None and record.state == "running" and record.handle is not None

    wait_for(victim_running, f"{victim} to run")
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    record = journal_tasks(p.root, 1)[victim]
    assert record.handle is not None
    handle = JobHandle.from_json(record.handle)
    procs.track_group(int(handle.native_id))  # tasks run in sessions of their own
    assert pid_alive(int(handle.native_id)), "the task must outlive the engine"
    return handle


@pytest.mark.slow
@pytest.mark.parametrize("task_done_first", [True, False], ids=["task-ended", "task-running"])
def test_killed_engine_resumes_and_reattaches(
    project: Project, procs: Processes, task_done_first: bool
) -> None:
    # in the task-running case t3 runs long enough to outlive the start of the second engine
    if task_done_first:
        names = chain(project, 6, 0.5)
    else:
        names = chain(project, 6, 0.3, slow={"t3": 2.0})
    handle = kill_engine_while_running(procs, project, "t3")
    rc_file = Path(handle.data["rc"])
    assert not rc_file.exists()
    assert lines(project.root / "ran.log") == ["t1", "t2", "t3"]
    status = sharin.status(project.root)
    assert status.interrupted and status.engine_pid is None
    assert status.run is not None and status.run.state == "running"
    if task_done_first:
        wait_for(rc_file.exists, "t3 to end and leave its exit code")

    started = time.time()
    second = procs.run("run", project.root)

    assert "resuming the unfinished run" in second.stdout
    assert "resumed run 1 finished" in second.stdout
    assert lines(project.root / "ran.log") == names  # every task exactly once, in order
    assert [r.id for r in sharin.runs(project.root)] == [1]
    tasks = journal_tasks(project.root, 1)
    assert {k: (t.state, t.attempt) for k, t in tasks.items()} == {
        name: ("finished", 1) for name in names
    }
    assert rc_file.read_text().strip() == "0"
    assert not rc_file.with_name("t3.2.rc").exists()
    # t3's one process ended before (task-ended) or after (task-running) the second engine began
    assert (rc_file.stat().st_mtime < started) is task_done_first
    assert sharin.open_project(project.root).state == "finished"


def kill_task(handle: JobHandle) -> None:
    pid = int(handle.native_id)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), "the task process to die")
    assert not Path(handle.data["rc"]).exists()


def test_a_lost_task_is_rerun_by_default(project: Project, procs: Processes) -> None:
    names = chain(project, 4, 0.3)
    handle = kill_engine_while_running(procs, project, "t2")
    kill_task(handle)

    second = procs.run("run", project.root)

    assert "resumed run 1 finished" in second.stdout
    assert lines(project.root / "ran.log") == ["t1", "t2", "t2", "t3", "t4"]
    tasks = journal_tasks(project.root, 1)
    assert (tasks["t2"].state, tasks["t2"].attempt) == ("finished", 2)
    assert all(tasks[n].state == "finished" for n in names)


def test_a_lost_task_fails_with_lost_fail(project: Project, procs: Processes) -> None:
    chain(project, 4, 0.3)
    handle = kill_engine_while_running(procs, project, "t2")
    kill_task(handle)

    second = procs.run("run", project.root, "--lost", "fail", code=1)

    assert "resumed run 1 failed" in second.stdout
    assert "t2: process" in second.stderr and "left no exit code" in second.stderr
    assert lines(project.root / "ran.log") == ["t1", "t2"]
    tasks = journal_tasks(project.root, 1)
    assert tasks["t2"].state == "failed"
    assert "ended while no engine was watching" in (tasks["t2"].message or "")
    assert "t3" not in tasks
