"""The Python API: build a project in code, run it (blocking or async), watch and version it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sharin
from sharin import Event, Project, RunOptions
from sharin.engine import Executor, JobHandle, JobResult, JobStatus, TaskSpec
from sharin.errors import ProjectError

from ..helpers import another_engine, edit_json, read_json


def test_build_and_run_a_project_in_code(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "api", "built in Python")
    hello = sharin.add_task(p, "hello", "echo hello > out.txt", outputs=["out.txt"])
    shout = sharin.add_task(p, "shout", "tr a-z A-Z < in.txt > loud.txt", outputs=["loud.txt"])
    sharin.connect_files(p, hello, "out.txt", shout, "in.txt")
    assert sharin.validate(p) == []

    result = sharin.run(p)

    assert result.ok and result.state == "finished"
    assert (result.run, result.resumed, result.failed) == (1, False, [])
    assert result.counts == {"finished": 2}
    assert result.elapsed > 0
    assert (p.root / "shout" / "loud.txt").read_text() == "HELLO\n"
    status = sharin.status(p.root)
    assert (status.project, status.state, status.engine_pid) == ("api", "finished", None)
    assert status.run is not None and status.run.state == "finished"
    assert [t.key for t in status.tasks] == ["hello", "shout"]
    assert not status.interrupted
    assert [r.id for r in sharin.runs(p.root)] == [1]
    out, err = sharin.log_paths(p, "shout")
    assert out.name == "shout.out" and err.name == "shout.err" and out.parent.name == "1"


def test_run_async_reports_events(project: Project) -> None:
    a = sharin.add_task(project, "a", "sleep 0.1; echo a")
    b = sharin.add_task(project, "b", "exit 3", retry=1)
    sharin.connect(project, a, b)
    events: list[Event] = []
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> sharin.RunResult:
        tick = asyncio.ensure_future(ticker())
        try:
            return await sharin.run_async(
                project, on_event=events.append, options=RunOptions(max_local=1)
            )
        finally:
            tick.cancel()

    result = asyncio.run(main())

    assert result.state == "failed" and result.failed == ["b: exit code 3"]
    assert ticks > 3  # the event loop kept running other work during the run
    assert (events[0].kind, events[0].state, events[0].key) == ("run", "running", "")
    assert (events[-1].kind, events[-1].state) == ("run", "failed")
    assert all(e.run == result.run for e in events)
    a_states = [e.state for e in events if e.key == "a"]
    assert a_states == ["stage-in", "waiting", "queued", "running", "stage-out", "finished"]
    b_events = [e for e in events if e.key == "b"]
    assert [e.state for e in b_events if e.state in ("running", "failed")] == [
        "running",
        "running",
        "failed",
    ]
    assert (b_events[-1].attempt, b_events[-1].returncode) == (2, 3)
    assert any("retrying" in e.message for e in b_events)
    order = [(e.key, e.state) for e in events]
    assert order.index(("a", "finished")) < order.index(("b", "stage-in"))
    assert [e.time for e in events] == sorted(e.time for e in events)


def _live_children() -> list[str]:
    """This process's child processes still running (a zombie has ended), as command lines."""
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(" ".join(p.cmdline()))
        except psutil.Error:
            continue  # ended meanwhile
    return out


def test_run_async_refuses_an_invalid_project(project: Project) -> None:
    sharin.add_task(project, "a", None)  # run.sh was never written
    before = _live_children()
    with pytest.raises(sharin.ValidationError, match=r"a/cmp.wheel.json \[script\]"):
        asyncio.run(sharin.run_async(project))
    # the helpers started beside the checks (supervisor, state writer, git) have all ended,
    # and nothing of the project was written
    assert _live_children() == before
    assert not (project.root / ".sharin" / "journal.sqlite").exists()
    assert not (project.root / ".sharin" / "files-pending.json").exists()  # its start list
    assert read_json(project.root / "a" / "cmp.wheel.json").get("state") in (None, "not-started")


def test_the_helpers_start_while_the_project_is_read(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state writer and the local supervisor start from the project's directory alone, so
    their start-up overlaps reading the project (which the first task waits for)."""
    import sharin.interfaces.api as api

    sharin.add_task(project, "a", "true\n")
    read = api._project
    seen: list[list[str]] = []

    def reading(p: object) -> Project:
        # the helpers are started by other threads: wait for them, before the project is read
        deadline = time.monotonic() + 10
        while True:
            children = _live_children()
            started = any("_mirrorwriter" in cmd for cmd in children) and any(
                "_supervisor" in cmd for cmd in children
            )
            if started or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        seen.append(children)
        return read(p)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "_project", reading)
    result = asyncio.run(sharin.run_async(str(project.root)))
    assert result.ok
    assert len(seen) == 1
    assert any("_mirrorwriter" in cmd for cmd in seen[0]), seen[0]
    assert any("_supervisor" in cmd for cmd in seen[0]), seen[0]


def test_a_project_that_cannot_be_read_leaves_no_helper_running(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sharin.interfaces.api as api

    sharin.add_task(project, "a", "true\n")
    before = _live_children()

    def unreadable(p: object) -> Project:
        raise ProjectError("cannot list directory (Permission denied)", path=project.root / "a")

    monkeypatch.setattr(api, "_project", unreadable)
    with pytest.raises(ProjectError, match="cannot list directory"):
        asyncio.run(sharin.run_async(str(project.root)))
    assert _live_children() == before
    assert not (project.root / ".sharin" / "journal.sqlite").exists()
    assert read_json(project.root / "a" / "cmp.wheel.json").get("state") in (None, "not-started")


class Recorder(Executor):
    """An executor that runs nothing and records the calls the engine makes."""

    kind = "recorder"

    def __init__(self) -> None:
        super().__init__(host="localhost", max_concurrent=1)
        self.calls: list[tuple[str, str]] = []
        self.specs: dict[str, TaskSpec] = {}

    def prepare(self) -> None:
        self.calls.append(("prepare", ""))

    async def stage_in(self, spec: TaskSpec) -> None:
        self.calls.append(("stage_in", spec.key))
        self.specs[spec.key] = spec

    async def submit(self, spec: TaskSpec) -> JobHandle:
        self.calls.append(("submit", spec.key))
        return JobHandle(self.kind, "localhost", spec.key)

    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        self.calls.append(("wait", handle.native_id))
        return JobResult(0)

    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        raise AssertionError("nothing to re-attach to in a fresh run")

    async def cancel(self, handle: JobHandle) -> None:
        self.calls.append(("cancel", handle.native_id))

    async def status(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        return {h: JobStatus("finished") for h in handles}

    async def stage_out(self, spec: TaskSpec, result: JobResult) -> None:
        self.calls.append(("stage_out", spec.key))


class Provider:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.asked: list[tuple[str, bool]] = []
        self.closed = False

    def executor_for(self, host: str, use_job_scheduler: bool) -> Executor:
        self.asked.append((host, use_job_scheduler))
        return self.executor

    async def close(self) -> None:
        self.closed = True


def test_a_custom_executor_gets_the_protocol_calls(project: Project) -> None:
    sharin.add_task(project, "a", "exit 1", outputs=["out.dat"], include=["*.log"])
    sharin.add_task(project, "b", "exit 1")
    sharin.connect(project, "a", "b")
    recorder = Recorder()
    provider = Provider(recorder)

    result = sharin.run(project, executors=provider)

    assert result.ok  # the scripts would fail, but the recorder runs nothing
    assert not provider.closed  # the caller's provider: the caller closes it
    # once as the run begins (prepare: both tasks' one executor), then once for each task
    assert provider.asked == [("localhost", False)] * 3
    assert recorder.calls == [
        ("prepare", ""),
        ("stage_in", "a"),
        ("submit", "a"),
        ("wait", "a"),
        ("stage_out", "a"),
        ("stage_in", "b"),
        ("submit", "b"),
        ("wait", "b"),
        ("stage_out", "b"),
    ]
    spec = recorder.specs["a"]
    assert spec.workdir == project.root / "a" and spec.script == "run.sh"
    assert spec.outputs == ("out.dat",) and spec.include == ("*.log",)
    assert spec.env["SHARIN_TASK"] == "a" and spec.attempt == 1
    assert spec.log_dir == project.root / ".sharin" / "runs" / str(result.run)


def test_a_busy_project_cannot_be_run_saved_reverted_or_cleaned(project: Project) -> None:
    sharin.add_task(project, "a", "true")
    with another_engine(project):
        assert sharin.status(project).engine_pid == os.getpid()
        with pytest.raises(sharin.BusyError, match="already running"):
            sharin.run(project)
        for op in (sharin.save, sharin.revert, sharin.clean):
            with pytest.raises(sharin.BusyError, match="while the project runs"):
                op(project)
    assert sharin.status(project).engine_pid is None
    assert sharin.save(project) is True
    assert sharin.run(project).ok


def test_stop_when_nothing_runs(project: Project) -> None:
    assert sharin.stop(project) is False


def test_save_revert_clean(project: Project) -> None:
    t = sharin.add_task(project, "t", "echo out > out.txt")
    assert sharin.save(project, "add t") is True
    assert sharin.save(project) is False
    sharin.set_property(project, t, "description", "edited")
    sharin.revert(project)
    assert read_json(t.file)["description"] is None
    assert sharin.run(project.root).ok
    sharin.clean(project, "t")
    assert not (t.directory / "out.txt").exists()
    assert read_json(t.file)["state"] == "not-started"


def test_status_of_an_interrupted_run(project: Project) -> None:
    sharin.add_task(project, "t", "true")
    assert sharin.run(project).ok
    # what a killed engine leaves: the run still "running" in the journal, no engine
    import sqlite3

    db = sqlite3.connect(project.root / ".sharin" / "journal.sqlite")
    with db:
        db.execute("UPDATE runs SET state='running', ended=NULL")
    db.close()
    status = sharin.status(project)
    assert status.interrupted and status.engine_pid is None
    with pytest.raises(sharin.ProjectError, match="there is no run 7"):
        sharin.status(project, 7)


def test_log_paths_before_a_run(project: Project) -> None:
    sharin.add_task(project, "t", "true")
    with pytest.raises(sharin.ProjectError, match="has not been run yet"):
        sharin.log_paths(project, "t")


def test_open_a_project_wheel_wrote(project: Project) -> None:
    t = sharin.add_task(project, "t", "true")
    edit_json(t.file, lambda d: d.update(retry="", retryTimes=2, host=""))
    reopened = sharin.open_project(project.root / "prj.wheel.json")
    c = reopened.component("t")
    assert (c.retry, c.host) == (2, "localhost")
    assert sharin.validate(reopened) == []


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory) -> Project:
    p = sharin.new_project(tmp_path_factory.mktemp("once") / "p")
    sharin.add_task(p, "t", "echo hi")
    assert sharin.run(p).ok
    return p


@given(run=st.integers())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_run_number_is_a_run_or_the_error_that_there_is_none(
    ran_once: sharin.Project, run: int
) -> None:
    """A run number from a user (``--run``, ``?run=``) of any size: the run, or one clear
    error, never SQLite's OverflowError."""
    for ask in (sharin.status, lambda root, run: sharin.log_paths(root, "t", run)):
        try:
            ask(ran_once.root, run)
        except ProjectError as e:
            assert f"there is no run {run}" in str(e)
        else:
            assert run == 1
