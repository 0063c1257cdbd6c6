"""The state mirror never makes the event loop wait on its file I/O.

The slow file system is real: the mirror is made to wait on a named pipe (a read blocks until
a writer comes).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sharin.engine._mirror import StateMirror


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


def _writer_blocked(fifo: Path) -> bool:
    """The mirror's thread has ``fifo`` open too (and waits in its read)."""
    opened = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            opened += os.readlink(f"/proc/self/fd/{fd}") == str(fifo)
        except OSError:
            continue
    return opened >= 2


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
        _wait_until(lambda: _writer_blocked(fifo))

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
        _wait_until(lambda: _writer_blocked(fifo))
        remover.start()
        assert not removed.wait(0.3)  # the write below it is still under way
        assert trip.exists()
    finally:
        _unblock(fd)
    assert removed.wait(5)
    remover.join()
    mirror.close()
    assert not trip.exists()
