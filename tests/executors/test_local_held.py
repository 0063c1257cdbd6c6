"""Submissions beyond the local executor's limit: held by the supervisor and started the moment a
task ends, never more than the limit at once, withdrawn on a stop, never started once the engine
has hung up."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import sharin
from sharin.engine import JobResult, TaskSpec
from sharin.errors import ExecutorError
from sharin.executors import LocalExecutor

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def make_spec(tmp_path: Path, name: str, body: str) -> TaskSpec:
    workdir = tmp_path / name
    workdir.mkdir()
    (workdir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    return TaskSpec(
        key=f"wf/{name}",
        name=name,
        workdir=workdir,
        script="run.sh",
        env={"PATH": os.environ["PATH"]},
        log_dir=tmp_path / "logs",
        attempt=1,
    )


def _stamps(spec: TaskSpec) -> tuple[float, float]:
    start, end = (spec.workdir / "stamps").read_text().split()
    return float(start), float(end)


STAMPED = "date +%s.%N > stamps.tmp; sleep 0.3; date +%s.%N >> stamps.tmp; mv stamps.tmp stamps"


def test_more_submissions_than_the_limit_run_one_after_another(tmp_path: Path) -> None:
    specs = [make_spec(tmp_path, f"t{i}", STAMPED) for i in range(4)]

    async def go() -> list[JobResult]:
        ex = LocalExecutor(max_concurrent=1)
        assert ex.queue_ahead == 2
        try:

            async def one(spec: TaskSpec) -> JobResult:
                return await ex.wait(await ex.submit(spec), spec)

            return list(await asyncio.gather(*(one(s) for s in specs)))
        finally:
            await ex.close()

    assert all(r.ok for r in run(go()))
    spans = sorted(_stamps(s) for s in specs)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"two tasks ran at once with a limit of one: {spans}"


def test_a_held_submission_withdrawn_is_never_started(tmp_path: Path) -> None:
    first = make_spec(tmp_path, "first", "sleep 0.5")
    held = make_spec(tmp_path, "held", "touch ran")

    async def go() -> None:
        ex = LocalExecutor(max_concurrent=1)
        try:
            handle = await ex.submit(first)
            submitting = asyncio.ensure_future(ex.submit(held))
            await asyncio.sleep(0.1)
            assert not submitting.done(), "a second task started beside the first"
            ex.withdraw(held)
            with pytest.raises(ExecutorError, match="withdrawn"):
                await submitting
            assert (await ex.wait(handle, first)).ok
            await asyncio.sleep(0.3)
        finally:
            await ex.close()

    run(go())
    assert not (held.workdir / "ran").exists()


def test_withdrawing_a_started_submission_changes_nothing(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "t", "touch ran")

    async def go() -> JobResult:
        ex = LocalExecutor(max_concurrent=1)
        try:
            handle = await ex.submit(spec)
            ex.withdraw(spec)  # nothing under way any more
            return await ex.wait(handle, spec)
        finally:
            await ex.close()

    assert run(go()).ok
    assert (spec.workdir / "ran").exists()


def test_held_submissions_are_dropped_when_the_engine_hangs_up(tmp_path: Path) -> None:
    first = make_spec(tmp_path, "first", "sleep 0.5")
    held = make_spec(tmp_path, "held", "touch ran")

    async def go() -> int:
        ex = LocalExecutor(max_concurrent=1)
        await ex.submit(first)
        sup = ex._supervisor()
        submitting = asyncio.ensure_future(ex.submit(held))
        await asyncio.sleep(0.1)
        # the engine's end of the socket closes, as when the engine is killed
        asyncio.get_running_loop().remove_reader(sup.sock.fileno())
        sup.sock.close()
        submitting.cancel()
        return sup.pid

    pid = run(go())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert not (held.workdir / "ran").exists(), "a request held for a dead engine was started"


def test_a_limit_of_zero_holds_everything_until_it_is_raised(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "t", "touch ran")

    async def go() -> JobResult:
        ex = LocalExecutor(max_concurrent=1)
        try:
            ex._foreign = 1  # one task of an earlier supervisor runs: no room for another
            submitting = asyncio.ensure_future(ex.submit(spec))
            await asyncio.sleep(0.3)
            assert not submitting.done() and not (spec.workdir / "ran").exists()
            ex._foreign = 0  # it ended
            await ex._supervisor().tell_limit(ex._limit())
            handle = await submitting
            return await ex.wait(handle, spec)
        finally:
            await ex.close()

    assert run(go()).ok


def test_a_stopped_run_starts_none_of_the_held_tasks(tmp_path: Path) -> None:
    """A run with -j 1: the first task runs, the others are held by the supervisor; a stop
    kills the first and starts none of the others."""
    proj = sharin.new_project(tmp_path / "p.wheel")
    for i in range(4):
        sharin.add_task(proj, f"t{i}", "touch ran; sleep 30")

    async def go() -> Any:
        handle = await sharin.start_run(proj.root, options=sharin.RunOptions(max_local=1))
        deadline = time.monotonic() + 15
        while not any((proj.root / f"t{i}" / "ran").exists() for i in range(4)):
            assert time.monotonic() < deadline, "no task started"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        handle.stop()
        return await handle.result()

    result = run(go())
    assert result.state == "stopped"
    # the supervisor records every task it starts, before anything else
    started = [
        json.loads(line)["task"]
        for records in proj.root.glob(".sharin/**/supervisor-*.pids")
        for line in records.read_text().splitlines()
    ]
    assert len(started) == 1, f"{started} started; one may run at once, and a stop starts none"
