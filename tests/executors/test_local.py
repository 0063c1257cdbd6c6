"""The local executor: processes, exit-code files, re-attaching and cancelling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sharin.engine import JobHandle, JobResult, TaskSpec
from sharin.errors import ExecutorError
from sharin.executors import (
    ExecutorRegistry,
    LocalExecutor,
    RemoteShellExecutor,
    local,
    prepare_script,
)
from sharin.model import HostConfig

from ..helpers import pid_alive, wait_for

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 15))


def make_spec(tmp_path: Path, body: str, *, key: str = "wf/t", attempt: int = 1) -> TaskSpec:
    workdir = tmp_path / "task"
    workdir.mkdir(exist_ok=True)
    (workdir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    return TaskSpec(
        key=key,
        name="t",
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"], "GREETING": "hello"},
        log_dir=tmp_path / "logs",
        attempt=attempt,
    )


def test_success_output_and_exit_code_file(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, 'echo "$GREETING from $(pwd)"; echo oops >&2')

    async def go() -> tuple[JobHandle, JobResult]:
        ex = LocalExecutor(max_concurrent=2)
        handle = await ex.submit(spec)
        return handle, await ex.wait(handle, spec)

    handle, result = run(go())
    assert result == JobResult(0, "")
    assert result.ok
    assert handle.executor == "local" and handle.data["rc"] == str(spec.rc_path)
    assert spec.stdout_path == tmp_path / "logs" / "wf%2Ft.out"
    assert spec.stdout_path.read_text() == f"hello from {spec.workdir}\n"
    assert spec.stderr_path.read_text() == "oops\n"
    assert spec.rc_path.name == "wf%2Ft.1.rc" and spec.rc_path.read_text() == "0\n"


def test_failure_exit_code(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "exit 7")

    async def go() -> JobResult:
        ex = LocalExecutor()
        return await ex.wait(await ex.submit(spec), spec)

    result = run(go())
    assert (result.returncode, result.message, result.ok) == (7, "exit code 7", False)


def test_output_of_attempts_is_appended(tmp_path: Path) -> None:
    async def go() -> None:
        ex = LocalExecutor()
        for attempt in (1, 2):
            spec = make_spec(tmp_path, f"echo attempt {attempt}", attempt=attempt)
            await ex.wait(await ex.submit(spec), spec)

    run(go())
    logs = tmp_path / "logs"
    assert (logs / "wf%2Ft.out").read_text() == "attempt 1\nattempt 2\n"
    assert sorted(p.name for p in logs.glob("*.rc")) == ["wf%2Ft.1.rc", "wf%2Ft.2.rc"]


def test_attach_reads_the_exit_code_of_an_ended_task(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "exit 5")

    async def go() -> tuple[JobHandle, JobResult]:
        first = LocalExecutor()
        handle = await first.submit(spec)
        await first.wait(handle, spec)
        # a new executor (a new engine process) knows nothing of the child
        return handle, await LocalExecutor().attach(JobHandle.from_json(handle.to_json()), spec)

    handle, result = run(go())
    assert (result.returncode, result.lost) == (5, False)


def test_attach_waits_for_a_task_still_running(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "sleep 0.3; exit 0")

    async def go() -> JobResult:
        first = LocalExecutor()
        handle = await first.submit(spec)
        attached = asyncio.ensure_future(LocalExecutor().attach(handle, spec))
        await asyncio.sleep(0.1)
        assert not attached.done()
        await first.wait(handle, spec)
        return await attached

    result = run(go())
    assert result.ok and not spec.rc_path.with_name("wf%2Ft.2.rc").exists()


def test_attach_to_a_vanished_process_is_lost(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")
    gone = subprocess.Popen(["true"])
    gone.wait()
    handle = JobHandle("local", "localhost", str(gone.pid), {"start": 1, "rc": str(spec.rc_path)})
    result = run(LocalExecutor().attach(handle, spec))
    assert result.lost and not result.ok and result.returncode is None
    assert f"process {gone.pid} ended while no engine was watching" in result.message


def test_attach_does_not_mistake_a_reused_pid(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")
    # our own pid is alive, but its start time is not the one journaled: not the task
    handle = JobHandle("local", "localhost", str(os.getpid()), {"start": -1, "rc": "/nope"})
    result = run(LocalExecutor().attach(handle, spec))
    assert result.lost


async def wait_then_cancel(ex: LocalExecutor, spec: TaskSpec, started: Path) -> JobHandle:
    """What the engine does on stop: its wait() is cancelled, then it calls cancel()."""
    handle = await ex.submit(spec)
    waiter = asyncio.ensure_future(ex.wait(handle, spec))
    while not started.exists() or not started.read_text().strip():
        await asyncio.sleep(0.01)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    await ex.cancel(handle)
    # cancel() returns once the process has ended and was reaped
    assert not Path(f"/proc/{handle.native_id}").exists()
    return handle


def test_cancel_stops_the_whole_process_group(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "sleep 30 & echo $! > child.pid; wait")
    child = spec.workdir / "child.pid"
    run(wait_then_cancel(LocalExecutor(), spec, child))
    wait_for(lambda: not pid_alive(int(child.read_text())), "the task's child to go", timeout=5)
    assert not spec.rc_path.exists()


def test_cancel_escalates_to_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_CANCEL_GRACE", 0.2)
    spec = make_spec(tmp_path, "echo $$ > pid; sleep 30")
    ex = LocalExecutor()
    t0 = time.monotonic()

    async def go() -> JobHandle:
        # the task ignores SIGTERM (an ignored signal is inherited by the spawned shell)
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            return await wait_then_cancel(ex, spec, spec.workdir / "pid")
        finally:
            signal.signal(signal.SIGTERM, previous)

    run(go())
    assert time.monotonic() - t0 < 5
    wait_for(lambda: not pid_alive(int((spec.workdir / "pid").read_text())), "the script to go")


def test_status_of_many_handles(tmp_path: Path) -> None:
    for d in ("o", "b", "s"):
        (tmp_path / d).mkdir()
    ok, bad, slow = (
        make_spec(tmp_path / d, b) for d, b in [("o", "true"), ("b", "exit 2"), ("s", "sleep 5")]
    )

    async def go() -> dict[str, str]:
        ex = LocalExecutor(max_concurrent=3)
        handles = {}
        for name, spec in (("ok", ok), ("bad", bad), ("slow", slow)):
            handles[name] = await ex.submit(spec)
        await ex.wait(handles["ok"], ok)
        await ex.wait(handles["bad"], bad)
        gone = JobHandle("local", "localhost", "999999999", {"start": 1, "rc": "/nope"})
        states = await ex.status([*handles.values(), gone])
        await ex.cancel(handles["slow"])
        await ex.wait(handles["slow"], slow)
        by_name = {n: states[h].state for n, h in handles.items()}
        by_name["gone"] = states[gone].state
        return by_name

    assert run(go()) == {"ok": "finished", "bad": "failed", "slow": "running", "gone": "unknown"}


def test_prepare_script_fixes_crlf_and_mode(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\r\necho hi\r\n")
    script.chmod(0o644)
    prepare_script(script)
    assert script.read_bytes() == b"#!/bin/sh\necho hi\n"
    assert script.stat().st_mode & 0o777 == 0o755
    with pytest.raises(ExecutorError, match="does not exist"):
        prepare_script(tmp_path / "missing.sh")


def test_submit_of_a_missing_script_fails(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "true")
    (spec.workdir / "run.sh").unlink()
    with pytest.raises(ExecutorError, match="run.sh does not exist"):
        run(LocalExecutor().submit(spec))


def test_default_concurrency_is_the_number_of_cpus() -> None:
    assert LocalExecutor().max_concurrent == (os.cpu_count() or 1)
    assert LocalExecutor(max_concurrent=3).max_concurrent == 3


def test_registry_chooses_executors() -> None:
    reg = ExecutorRegistry({"cluster": HostConfig(name="cluster", host="c")}, max_local=2)
    local = reg.executor_for("localhost", False)
    assert isinstance(local, LocalExecutor) and local.max_concurrent == 2
    assert reg.executor_for("", False) is local
    with pytest.raises(ExecutorError, match="needs a remote host with a jobScheduler"):
        reg.executor_for("localhost", True)
    with pytest.raises(ExecutorError, match=r"unknown host 'x' \(known: cluster, localhost\)"):
        reg.executor_for("x", False)
    # without a path, a host's tasks run in the login directory there (as in WHEEL)
    assert isinstance(reg.executor_for("cluster", False), RemoteShellExecutor)
    with pytest.raises(ExecutorError, match="has no jobScheduler in remotehost.json"):
        reg.executor_for("cluster", True)
    run(reg.close())
    # a plain task on an SSH host with a path: a process there, started over SSH
    reg = ExecutorRegistry({"cluster": HostConfig(name="cluster", host="c", path="/w", num_job=3)})
    remote = reg.executor_for("cluster", False)
    assert isinstance(remote, RemoteShellExecutor) and remote.max_concurrent == 3
    assert reg.executor_for("cluster", False) is remote
    run(reg.close())
