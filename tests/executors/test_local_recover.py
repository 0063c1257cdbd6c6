"""An engine killed after starting a task and before journaling its handle: the task is found
again by ``LocalExecutor.recover`` and re-attached, never started a second time."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle, JobResult, TaskSpec
from sharin.executors import LocalExecutor

from ..conftest import Processes
from ..helpers import journal_tasks, lines, log_line, pid_alive, wait_for


def make_spec(tmp_path: Path, body: str, attempt: int = 1) -> TaskSpec:
    workdir = tmp_path / "task"
    workdir.mkdir(exist_ok=True)
    (workdir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    return TaskSpec(
        key="wf/t",
        name="t",
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"]},
        log_dir=tmp_path / "logs",
        attempt=attempt,
    )


def test_recover_finds_nothing_for_an_attempt_never_started(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")
    assert asyncio.run(LocalExecutor().recover(spec)) is None


def test_recover_finds_a_running_attempt_and_attach_waits_for_it(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "sleep 0.5; exit 3")

    async def go() -> tuple[JobHandle, JobHandle | None, JobHandle | None, JobResult]:
        started = await LocalExecutor().submit(spec)
        # another attempt of the same task is not mistaken for it
        other = await LocalExecutor().recover(dataclasses.replace(spec, attempt=2))
        found = await LocalExecutor().recover(spec)  # a fresh executor: not its child
        assert found is not None
        return started, other, found, await LocalExecutor().attach(found, spec)

    started, other, found, result = asyncio.run(asyncio.wait_for(go(), 15))
    assert other is None
    assert found is not None and found.native_id == started.native_id
    assert found.data["start"] == started.data["start"]
    assert result == JobResult(3, "exit code 3")


def test_recover_of_an_ended_attempt_gives_its_exit_code(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "exit 4")

    async def go() -> tuple[JobHandle | None, JobResult]:
        ex = LocalExecutor()
        handle = await ex.submit(spec)
        await ex.wait(handle, spec)
        found = await LocalExecutor().recover(spec)
        assert found is not None
        fresh = LocalExecutor()
        await fresh.cancel(found)  # nothing left to signal; must not signal anything else
        return found, await fresh.attach(found, spec)

    found, result = asyncio.run(asyncio.wait_for(go(), 15))
    assert result == JobResult(4, "exit code 4")
    assert found is not None
    assert asyncio.run(LocalExecutor().status([found]))[found].state == "failed"


@pytest.mark.parametrize("running", [True, False], ids=["task-running", "task-ended"])
def test_engine_killed_between_spawn_and_journal_runs_the_task_once(
    project: Project, procs: Processes, running: bool
) -> None:
    sharin.add_task(project, "t1", log_line("t1") + ("sleep 1" if running else "true"))
    sharin.add_task(project, "t2", log_line("t2"))
    sharin.connect(project, "t1", "t2")
    env = dict(os.environ, SHARIN_TEST_KILL_AFTER_SPAWN="t1")
    first = subprocess.run(
        Processes.argv("run", project.root), env=env, capture_output=True, timeout=60, check=False
    )
    assert first.returncode == -signal.SIGKILL
    record = journal_tasks(project.root, 1)["t1"]
    assert (record.state, record.handle) == ("queued", None)
    rc_file = project.root / ".sharin" / "runs" / "1" / "t1.1.rc"
    if not running:
        wait_for(rc_file.exists, "t1 to end and leave its exit code")

    second = procs.run("run", project.root)

    assert "resumed run 1 finished" in second.stdout, second.stdout
    assert lines(project.root / "ran.log") == ["t1", "t2"]  # t1 exactly once
    tasks = journal_tasks(project.root, 1)
    assert {k: (t.state, t.attempt) for k, t in tasks.items()} == {
        "t1": ("finished", 1),
        "t2": ("finished", 1),
    }
    handle = tasks["t1"].handle
    assert handle is not None
    pid = int(JobHandle.from_json(handle).native_id)
    assert pid == 0 or not pid_alive(pid)
    assert not rc_file.with_name("t1.2.rc").exists()
