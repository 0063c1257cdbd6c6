"""The supervisor of local tasks: their parent, which records exit codes for a later engine."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import sharin
from sharin.engine import JobHandle, JobResult, TaskSpec, _mirror
from sharin.executors import LocalExecutor

from ..helpers import pid_alive, wait_for


def make_spec(tmp_path: Path, body: str, *, shebang: bool = True) -> TaskSpec:
    workdir = tmp_path / "task"
    workdir.mkdir(exist_ok=True)
    (workdir / "run.sh").write_text(("#!/bin/sh\n" if shebang else "") + body + "\n")
    return TaskSpec(
        key="wf/t",
        name="t",
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"]},
        log_dir=tmp_path / "logs",
    )


def test_the_script_is_the_supervisors_child_with_no_shell_between(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, 'echo "$PPID $$ $0 $(pwd)"; exit 7')

    async def go() -> tuple[JobHandle, JobResult]:
        ex = LocalExecutor()
        handle = await ex.submit(spec)
        result = await ex.wait(handle, spec)
        sup = ex._sup
        assert sup is not None
        assert spec.stdout_path.read_text().split() == [
            str(sup.pid),
            handle.native_id,
            "./run.sh",
            str(spec.workdir),
        ]
        await ex.close()
        return handle, result

    handle, result = asyncio.run(asyncio.wait_for(go(), 15))
    assert result == JobResult(7, "exit code 7")
    assert spec.rc_path.read_text() == "7\n"
    (records,) = spec.log_dir.glob("supervisor-*.pids")
    (line,) = records.read_text().splitlines()
    record = json.loads(line)
    assert (record["task"], record["pid"], record["start"]) == (
        "wf%2Ft.1",
        int(handle.native_id),
        handle.data["start"],
    )
    assert not list(spec.log_dir.glob("*.pid"))  # no file per task


def test_recover_finds_the_record_of_the_attempt(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")
    spec = dataclasses.replace(spec, attempt=2)
    spec.log_dir.mkdir()
    lines = [
        {"task": "wf%2Ft.1", "pid": 12, "start": 6, "time": 300.0},
        {"task": "wf%2Ft.2", "pid": 13, "start": None, "time": 200.0},
    ]
    text = "".join(json.dumps(x) + "\n" for x in lines)
    # the last line is not whole: a supervisor killed while it wrote it
    (spec.log_dir / "supervisor-1.pids").write_text(text + '{"task": "wf%2Ft.3", "pid": 1')
    ex = LocalExecutor()
    handle = asyncio.run(ex.recover(spec))
    assert handle is not None and (handle.native_id, handle.data["start"]) == ("13", None)
    assert asyncio.run(ex.recover(dataclasses.replace(spec, attempt=3))) is None


def test_an_attempt_named_in_an_earlier_record_starts_afresh(tmp_path: Path) -> None:
    """After a journal that lost its last records, an attempt may run again under a number
    an earlier supervisor recorded: the next engine must find the new process, never the old."""
    spec = make_spec(tmp_path, "true")
    spec.log_dir.mkdir()
    old = {"task": "wf%2Ft.1", "pid": 1, "start": 1, "time": time.time() + 3600}
    (spec.log_dir / "supervisor-1.pids").write_text(json.dumps(old) + "\n")

    async def go() -> JobHandle:
        ex = LocalExecutor()
        handle = await ex.submit(spec)
        await ex.wait(handle, spec)
        await ex.close()
        return handle

    handle = asyncio.run(asyncio.wait_for(go(), 15))
    found = asyncio.run(LocalExecutor().recover(spec))
    assert found is not None and found.native_id == handle.native_id


def test_a_script_without_a_shebang_runs_in_sh(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "echo plain", shebang=False)

    async def go() -> JobResult:
        ex = LocalExecutor()
        return await ex.wait(await ex.submit(spec), spec)

    assert asyncio.run(asyncio.wait_for(go(), 15)) == JobResult(0, "")
    assert spec.stdout_path.read_text() == "plain\n"


def test_a_killed_supervisor_leaves_no_task_unnoticed(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "sleep 0.7")

    async def go() -> tuple[JobHandle, str, JobResult]:
        ex = LocalExecutor()
        handle = await ex.submit(spec)
        sup = ex._sup
        assert sup is not None
        os.kill(sup.pid, signal.SIGKILL)
        waiting = asyncio.ensure_future(ex.wait(handle, spec))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the task still runs, and is still waited for
        state = (await ex.status([handle]))[handle].state
        result = await waiting
        assert not pid_alive(int(handle.native_id))
        return handle, state, result

    handle, state, result = asyncio.run(asyncio.wait_for(go(), 15))
    assert state == "running"
    assert result.returncode is None and not result.ok
    assert "exit code is unknown" in result.message


def test_the_supervisor_outlives_the_engine_until_its_tasks_end(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "sleep 0.5; exit 3")

    async def start() -> tuple[JobHandle, int]:
        ex = LocalExecutor()
        handle = await ex.submit(spec)
        assert ex._sup is not None
        sup_pid = ex._sup.pid
        await ex.close()  # the engine hangs up (as when it dies)
        return handle, sup_pid

    handle, sup_pid = asyncio.run(asyncio.wait_for(start(), 15))
    assert not spec.rc_path.exists()
    assert pid_alive(sup_pid)
    result = asyncio.run(asyncio.wait_for(LocalExecutor().attach(handle, spec), 15))
    assert result == JobResult(3, "exit code 3")
    assert spec.rc_path.read_text() == "3\n"
    wait_for(
        lambda: not pid_alive(sup_pid), "the supervisor to exit after its last task", timeout=5
    )


def test_cancel_reaches_the_task_through_the_supervisor(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "sleep 30")

    async def go() -> tuple[JobHandle, JobResult]:
        ex = LocalExecutor()
        handle = await ex.submit(spec)
        waiting = asyncio.ensure_future(ex.wait(handle, spec))
        await ex.cancel(handle)
        return handle, await waiting

    handle, result = asyncio.run(asyncio.wait_for(go(), 15))
    assert result == JobResult(-signal.SIGTERM, "killed by signal SIGTERM")
    wait_for(lambda: not pid_alive(int(handle.native_id)), "the task to go", timeout=5)
    assert not spec.rc_path.exists()


def test_close_reaps_an_idle_supervisor(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")

    async def go() -> int:
        ex = LocalExecutor()
        await ex.wait(await ex.submit(spec), spec)
        assert ex._sup is not None
        pid = ex._sup.pid
        await ex.close()
        return pid

    pid = asyncio.run(asyncio.wait_for(go(), 15))
    # reaped: its tasks' CPU time is counted among this process's children's
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    raise AssertionError(f"supervisor {pid} was not reaped")


def test_a_task_ignores_no_signal_the_engine_or_supervisor_ignore(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "grep SigIgn /proc/$$/status")

    async def go() -> JobResult:
        ex = LocalExecutor()
        return await ex.wait(await ex.submit(spec), spec)

    assert asyncio.run(asyncio.wait_for(go(), 15)) == JobResult(0, "")
    ignored = int(spec.stdout_path.read_text().split()[1], 16)
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGXFSZ):
        assert not ignored & (1 << (sig - 1)), sig


def test_prepare_starts_the_supervisor_before_the_first_submission(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")

    async def go() -> tuple[int, int]:
        ex = LocalExecutor()
        try:
            assert ex._sup is None  # nothing started before it is asked for
            ex.prepare()
            assert ex._sup is not None
            ready = ex._sup.pid
            assert psutil.Process(ready).ppid() == os.getpid()
            await ex.wait(await ex.submit(spec), spec)
            return ready, ex._sup.pid
        finally:
            await ex.close()

    ready, used = asyncio.run(asyncio.wait_for(go(), 15))
    assert used == ready  # the first task went to the supervisor started ahead


def test_a_run_starts_its_supervisor_and_mirror_writer_as_it_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both processes are started as the run begins: their start-up overlaps the run's own
    (git, the journal) instead of delaying the first task and the first state written."""
    proj = sharin.new_project(tmp_path / "p.wheel")
    sharin.add_task(proj, "t", "true")
    order: list[str] = []
    submit, start, send = (
        LocalExecutor.submit,
        _mirror.StateMirror._start,
        _mirror.StateMirror._send,
    )

    async def spy_submit(self: LocalExecutor, spec: TaskSpec) -> JobHandle:
        order.append("submit, supervisor ready" if self._sup is not None else "submit")
        return await submit(self, spec)

    def spy_start(self: _mirror.StateMirror) -> Any:
        order.append("writer started")
        return start(self)

    def spy_send(self: _mirror.StateMirror, lines: list[str], last: int) -> None:
        order.append("states sent")
        send(self, lines, last)

    monkeypatch.setattr(LocalExecutor, "submit", spy_submit)
    monkeypatch.setattr(_mirror.StateMirror, "_start", spy_start)
    monkeypatch.setattr(_mirror.StateMirror, "_send", spy_send)
    assert sharin.run(proj.root).ok
    assert "submit, supervisor ready" in order, order
    assert "submit" not in order, "the supervisor was started only by the first submission"
    assert order.index("writer started") < order.index("states sent"), order
