"""The remote-shell executor's commands (start, watch, stop) run by a real ``/bin/sh`` on this
machine, through the local transport: what the SSH host runs, without the SSH host
(``tests/remote/test_remote_shell.py`` runs them there)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from sharin.engine import JobHandle, JobResult, TaskSpec
from sharin.errors import TransportError
from sharin.executors import LocalTransport, RemoteShellExecutor
from sharin.executors._transport import CommandResult
from sharin.model import HostConfig


def _spec(tmp_path: Path, name: str, script: str, attempt: int = 1) -> TaskSpec:
    root = tmp_path / "prj"
    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    (root / "prj.wheel.json").touch()
    (work / "run.sh").write_text("#!/bin/sh\n" + script + "\n")
    return TaskSpec(
        key=name,
        name=name,
        workdir=work,
        script="run.sh",
        env={**os.environ, "WHEEL_VALUE": "it's $HOME"},
        log_dir=root / ".sharin" / "logs",
        attempt=attempt,
        project_root=root,
        run_tag="r1",
        outputs=("made.txt",),
    )


def _executor(tmp_path: Path) -> RemoteShellExecutor:
    host = tmp_path / "host"
    host.mkdir(exist_ok=True)
    cfg = HostConfig(name="h", host="h", path=str(host), status_check_interval=0.1)
    return RemoteShellExecutor(cfg, LocalTransport())


async def _run(ex: RemoteShellExecutor, spec: TaskSpec) -> tuple[JobHandle, int | None]:
    await ex.stage_in(spec)
    handle = await ex.submit(spec)
    result = await ex.wait(handle, spec)
    if result.ok:
        await ex.stage_out(spec, result)
    return handle, result.returncode


def test_tasks_run_in_the_hosts_path_with_their_variables_and_exit_codes(tmp_path: Path) -> None:
    ex = _executor(tmp_path)
    ok = _spec(tmp_path, "ok", 'printf %s "$WHEEL_VALUE" > made.txt; echo out; echo err >&2')
    bad = _spec(tmp_path, "bad", "sleep 0.5; exit 3")

    async def both() -> list[tuple[JobHandle, int | None]]:
        try:
            return list(await asyncio.gather(_run(ex, ok), _run(ex, bad)))
        finally:
            await ex.close()

    started = time.monotonic()
    (_, rc_ok), (_, rc_bad) = asyncio.run(both())
    elapsed = time.monotonic() - started

    assert (rc_ok, rc_bad) == (0, 3)
    assert (ok.workdir / "made.txt").read_text() == "it's $HOME"  # quoted, not expanded
    assert (tmp_path / "host" / "r1" / "ok" / "made.txt").is_file()  # it ran in the copy
    assert ok.stdout_path.read_text() == "out\n" and ok.stderr_path.read_text() == "err\n"
    # both were watched together: one check a round, not one per task
    assert 1 <= ex.queries <= elapsed / ex.interval + 1, (ex.queries, elapsed)


def test_a_second_start_of_an_attempt_starts_nothing(tmp_path: Path) -> None:
    ex = _executor(tmp_path)
    count = tmp_path / "count"
    spec = _spec(tmp_path, "t", f"echo ran >> {count}; sleep 0.5")

    async def go() -> tuple[str, str, str | None, int | None]:
        try:
            assert await ex.recover(spec) is None
            await ex.stage_in(spec)
            first = await ex.submit(spec)
            again = await ex.submit(spec)
            found = await ex.recover(spec)
            done = await ex.wait(first, spec)
            return first.native_id, again.native_id, found and found.native_id, done.returncode
        finally:
            await ex.close()

    first, again, found, rc = asyncio.run(go())
    assert first == again == found and rc == 0
    assert count.read_text() == "ran\n"


def test_cancel_ends_the_process_group_and_status_tells(tmp_path: Path) -> None:
    ex = _executor(tmp_path)
    spec = _spec(tmp_path, "long", "sleep 60 & echo $! > child.pid; wait")

    async def go() -> tuple[str, str, str, int | None]:
        try:
            await ex.stage_in(spec)
            handle = await ex.submit(spec)
            child = tmp_path / "host" / "r1" / "long" / "child.pid"
            while not child.exists() or not child.read_text().strip():
                await asyncio.sleep(0.05)
            before = (await ex.status([handle]))[handle].state
            await ex.cancel(handle)
            after = await ex.status([handle])
            return before, child.read_text().strip(), after[handle].state, after[handle].returncode
        finally:
            await ex.close()

    before, child_pid, after, rc = asyncio.run(go())
    assert before == "running"
    assert after == "failed" and rc == 143  # SIGTERM, recorded by the wrapper
    with pytest.raises(ProcessLookupError):
        os.kill(int(child_pid), 0)


def test_an_attempt_whose_wrapper_was_killed_is_lost_on_attach(tmp_path: Path) -> None:
    ex = _executor(tmp_path)
    spec = _spec(tmp_path, "t", "sleep 60")

    async def go() -> tuple[bool, str]:
        try:
            await ex.stage_in(spec)
            handle = await ex.submit(spec)
            os.killpg(int(handle.native_id), 9)  # wrapper and script: no exit code is left
            result = await ex.attach(handle, spec)
            return result.lost, result.message
        finally:
            await ex.close()

    lost, message = asyncio.run(go())
    assert lost and "without an exit code" in message


class _Silent(LocalTransport):
    """This machine, until it stops answering the checks (a host whose link went down)."""

    answering = True

    async def run(self, command: str, **kwargs: Any) -> CommandResult:
        if not self.answering and command.startswith("w() {"):
            raise TransportError("connection lost", host="h", transient=True)
        return await super().run(command, **kwargs)


def test_checks_that_fail_past_max_status_check_error_leave_the_tasks_unknown(
    tmp_path: Path,
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    transport = _Silent()
    cfg = HostConfig(
        name="h",
        host="h",
        path=str(host),
        status_check_interval=0.05,
        raw={"maxStatusCheckError": 3},
    )
    ex = RemoteShellExecutor(cfg, transport)
    specs = [_spec(tmp_path, n, "sleep 30") for n in ("a", "b")]

    async def go() -> list[JobResult]:
        try:
            handles = []
            for spec in specs:
                await ex.stage_in(spec)
                handles.append(await ex.submit(spec))
            transport.answering = False
            results = await asyncio.gather(
                *(ex.wait(h, s) for h, s in zip(handles, specs, strict=True))
            )
            for h in handles:
                await ex.cancel(h)
            return list(results)
        finally:
            await ex.close()

    results = asyncio.run(go())

    assert all(r.unknown for r in results), results
    assert "checking its tasks failed 4 times in a row" in results[0].message
    assert "connection lost" in results[0].message
    assert "`sharin run` again to re-attach" in results[0].message
    assert ex.queries == 4  # one check a round for both tasks
