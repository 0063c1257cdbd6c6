"""The engine's file work runs on its file worker: a slow file system stalls the component whose
files are being made, not the event loop, so other tasks' ends are recorded when they happen.

The slow file system is real: the worker's ``before_each`` hook sleeps on the worker's thread
before one chosen operation, and the state mirror is made to wait on a named pipe (a read
blocks until a writer comes).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import Engine, Event, EventBus
from sharin.engine._mirror import StateMirror
from sharin.engine._worker import FileWorker
from sharin.executors import ExecutorRegistry

from ..helpers import journal_tasks, read_json

STALL = 2.0

#: B waits (at most 10 s) until the worker is stalled, then ends: its end falls in the stall
B_SCRIPT = (
    "i=0; while [ ! -e ../stalled ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done\n"
    "date +%s.%N > end\n"
)


def _run_stalled(project: Project, op: str) -> tuple[dict[str, Event], float, float]:
    """Run ``project`` with the file worker stalled ``STALL`` s before its first ``op``; the
    events that ended each component, and when the stall began and ended."""
    stall: list[float] = []
    marker = project.root / "stalled"

    def before_each(fn: Callable[..., object]) -> None:
        if getattr(fn, "__name__", "") != op or stall:
            return
        stall.append(time.time())
        marker.touch()
        time.sleep(STALL)
        stall.append(time.time())

    ended: dict[str, Event] = {}

    def on_event(ev: Event) -> None:
        if ev.state in ("finished", "failed") and ev.key not in ended:
            ended[ev.key] = ev

    async def go() -> sharin.RunResult:
        bus = EventBus()
        registry = ExecutorRegistry()
        engine = Engine(project, registry, events=bus)
        engine.files.before_each = before_each
        bus.subscribe(on_event)
        try:
            return await engine.run()
        finally:
            await registry.close()

    result = asyncio.run(asyncio.wait_for(go(), 30))
    assert result.ok, result.failed
    assert len(stall) == 2, f"the file worker never ran {op}"
    return ended, stall[0], stall[1]


def _assert_b_recorded_at_once(project: Project, ended: dict[str, Event], stop: float) -> None:
    b_end = float((project.root / "b" / "end").read_text())
    b_done = ended["b"].time
    # B ended while the worker was stalled, and its end was recorded then, not after the stall
    assert b_done < stop, f"b recorded {b_done - stop:.2f} s after the stall ended"
    assert b_done - b_end < 0.5, f"b recorded {b_done - b_end:.2f} s after its script ended"


@pytest.mark.slow
def test_a_stalled_input_delivery_does_not_hold_up_another_task(project: Project) -> None:
    sharin.add_task(project, "p", "echo data > x\n")
    sharin.add_task(project, "a", "cat x > got\n")
    sharin.connect_files(project, "p", "x", "a", "x")
    sharin.add_task(project, "b", B_SCRIPT)
    ended, start, stop = _run_stalled(project, "_deliver_inputs")
    _assert_b_recorded_at_once(project, ended, stop)
    # a waited for its input: it started after the stall
    assert ended["a"].time > stop
    assert (project.root / "a" / "got").read_text() == "data\n"


@pytest.mark.slow
def test_a_stalled_loop_trip_does_not_hold_up_another_task(project: Project) -> None:
    loop = sharin.add_component(project, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(project, "t", 'echo "$WHEEL_CURRENT_INDEX" >> ../../trips\n', parent=loop)
    sharin.add_task(project, "b", B_SCRIPT)
    ended, start, stop = _run_stalled(project, "_make_trip")
    _assert_b_recorded_at_once(project, ended, stop)
    assert ended["loop"].time > stop
    assert (project.root / "trips").read_text().split() == ["0", "1"]


def test_only_a_component_with_inputs_hands_its_delivery_to_the_worker(project: Project) -> None:
    """A component without input files starts without a hand-over to the worker's thread."""
    sharin.add_task(project, "p", "echo data > x\n")
    sharin.add_task(project, "a", "cat x > got\n")
    sharin.connect_files(project, "p", "x", "a", "x")
    sharin.add_task(project, "b", "true\n")
    ops: list[str] = []

    async def go() -> sharin.RunResult:
        registry = ExecutorRegistry()
        engine = Engine(project, registry)
        engine.files.before_each = lambda fn: ops.append(getattr(fn, "__name__", ""))
        try:
            return await engine.run()
        finally:
            await registry.close()

    result = asyncio.run(asyncio.wait_for(go(), 30))
    assert result.ok, result.failed
    assert ops.count("_deliver_inputs") == 1  # a's; neither p nor b has inputs
    assert (project.root / "a" / "got").read_text() == "data\n"


def _run_with(
    project: Project, before_each: Callable[[Callable[..., object]], None]
) -> sharin.RunResult:
    async def go() -> sharin.RunResult:
        registry = ExecutorRegistry()
        engine = Engine(project, registry)
        engine.files.before_each = before_each
        try:
            return await engine.run()
        finally:
            await registry.close()

    return asyncio.run(asyncio.wait_for(go(), 30))


def _disk_full(fn: Callable[..., object]) -> None:
    if getattr(fn, "__name__", "") == "_deliver_inputs":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["task", "workflow", "viewer", "storage"])
def test_a_file_system_error_while_delivering_fails_the_component_on_record(
    project: Project, where: str, tmp_path: Path
) -> None:
    """The component that could not get its inputs ends failed in the journal and in its
    file, with the file system's words, not as an error of the run alone."""
    sharin.add_task(project, "p", "echo data > x\n")
    if where == "workflow":
        sharin.add_component(project, "workflow", "a")
        sharin.add_task(project, "inner", "true\n", parent="a")
    elif where == "viewer":
        sharin.add_component(project, "viewer", "a")
    elif where == "storage":
        sharin.add_component(project, "storage", "a", storagePath=str(tmp_path / "store"))
    else:
        sharin.add_task(project, "a", "cat x > got\n")
    sharin.connect_files(project, "p", "x", "a", "x")
    result = _run_with(project, _disk_full)
    assert result.state == "failed"
    record = journal_tasks(project.root, result.run)["a"]
    assert record.state == "failed"
    assert record.message is not None and "No space left on device" in record.message
    assert "Errno" not in record.message
    assert read_json(project.root / "a" / "cmp.wheel.json")["state"] == "failed"
    assert not (project.root / "a" / "got").exists()


@pytest.mark.parametrize("op", ["_make_trip", "_copy_back"])
def test_a_file_system_error_making_a_loop_trip_fails_the_loop_on_record(
    project: Project, op: str
) -> None:
    loop = sharin.add_component(project, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(project, "t", "true\n", parent=loop)
    sharin.add_task(project, "after", "true\n")
    sharin.connect(project, "loop", "after")

    def disk_full(fn: Callable[..., object]) -> None:
        if getattr(fn, "__name__", "") == op:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "loop_0/t/run.sh")

    result = _run_with(project, disk_full)
    assert result.state == "failed"
    record = journal_tasks(project.root, result.run)["loop"]
    assert record.state == "failed"
    assert record.message is not None
    assert "loop_0/t/run.sh: No space left on device" in record.message
    assert read_json(project.root / "loop" / "cmp.wheel.json")["state"] == "failed"
    assert "after" not in journal_tasks(project.root, result.run)


def test_the_hook_runs_on_the_worker_thread_before_each_operation() -> None:
    seen: list[tuple[str, str]] = []

    def hook(fn: Callable[..., object]) -> None:
        seen.append((getattr(fn, "__name__", ""), threading.current_thread().name))

    def work(x: int) -> int:
        seen.append(("work-ran", threading.current_thread().name))
        return x * 2

    async def go() -> int:
        worker = FileWorker("fw-test", before_each=hook)
        try:
            return await worker.call(work, 21)
        finally:
            worker.close()

    assert asyncio.run(go()) == 42
    assert [name for name, _ in seen] == ["work", "work-ran"]
    assert all(thread.startswith("fw-test") for _, thread in seen)


def test_results_come_back_to_their_callers_and_errors_are_raised_there() -> None:
    gate = threading.Event()

    def first() -> str:
        gate.wait(5)
        return "first"

    def fails() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "x/y")

    async def go() -> list[object]:
        worker = FileWorker("fw-test")
        try:
            # three operations end while the loop waits: all come back, each to its caller
            calls = [
                asyncio.ensure_future(worker.call(first)),
                asyncio.ensure_future(worker.call(str.upper, "second")),
                asyncio.ensure_future(worker.call(fails)),
            ]
            await asyncio.sleep(0.05)
            gate.set()
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            worker.close()

    first_result, second, error = asyncio.run(go())
    assert (first_result, second) == ("first", "SECOND")
    assert isinstance(error, OSError) and error.filename == "x/y"


def test_an_operation_whose_caller_was_cancelled_before_it_started_is_not_run() -> None:
    gate = threading.Event()
    ran: list[str] = []

    async def go() -> None:
        worker = FileWorker("fw-test")
        busy = asyncio.ensure_future(worker.call(gate.wait, 5))
        later = asyncio.ensure_future(worker.call(ran.append, "later"))
        await asyncio.sleep(0.05)
        later.cancel()
        await asyncio.sleep(0)
        gate.set()
        await busy
        worker.close()  # waits for what was queued
        with pytest.raises(RuntimeError, match="closed"):
            await worker.call(ran.append, "after close")

    asyncio.run(go())
    assert ran == []


# ---------------------------------------------------------------- the state mirror
def _blocked_component(directory: Path) -> tuple[Path, int]:
    """A component directory whose ``cmp.wheel.json`` is a named pipe, held open for writing
    here: the mirror's read of it blocks until :func:`_unblock` writes and closes the pipe."""
    directory.mkdir(parents=True)
    fifo = directory / "cmp.wheel.json"
    os.mkfifo(fifo)
    return fifo, os.open(fifo, os.O_RDWR)  # O_RDWR: opened without waiting for a reader


def _unblock(fd: int) -> None:
    os.write(fd, b"{}")
    os.close(fd)  # the last writer gone: the reader gets its end of file


def _writer_blocked(mirror: StateMirror, fifo: Path) -> bool:
    """The mirror's writer process has ``fifo`` open (and waits in its read)."""
    pid = mirror.writer_pid
    if pid is None:
        return False  # not started yet
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(fifo):
                return True
        except OSError:
            continue
    return False


def _wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_set_and_forget_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    fifo, fd = _blocked_component(tmp_path / "slow")
    other = tmp_path / "loop_0"
    other.mkdir()
    (other / "cmp.wheel.json").write_text("{}")
    mirror = StateMirror()
    try:
        mirror.set(tmp_path / "slow", {"state": "running"})
        _wait_until(lambda: _writer_blocked(mirror, fifo))

        def calls() -> None:
            mirror.set(other, {"state": "finished"})
            mirror.forget(other)
            mirror.set(tmp_path / "slow", {"state": "finished"})

        caller = threading.Thread(target=calls)
        caller.start()
        caller.join(0.5)
        assert not caller.is_alive(), "the mirror's callers waited for its write"
    finally:
        _unblock(fd)
        mirror.close()
    assert json.loads((other / "cmp.wheel.json").read_text()) == {}  # forgotten: not written
    assert json.loads((tmp_path / "slow" / "cmp.wheel.json").read_text()) == {"state": "finished"}


def test_remove_tree_waits_for_a_write_below_it_then_removes_it(tmp_path: Path) -> None:
    trip = tmp_path / "loop_0"
    fifo, fd = _blocked_component(trip / "t")
    mirror = StateMirror()
    removed = threading.Event()
    remover = threading.Thread(target=lambda: (mirror.remove_tree(trip), removed.set()))
    try:
        mirror.set(trip / "t", {"state": "running"})
        _wait_until(lambda: _writer_blocked(mirror, fifo))
        remover.start()
        assert not removed.wait(0.3)  # the write below it is still under way
        assert trip.exists()
    finally:
        _unblock(fd)
    assert removed.wait(5)
    remover.join()
    mirror.close()
    assert not trip.exists()
