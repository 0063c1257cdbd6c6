"""Small helpers shared by the test modules (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

from sharin import Project
from sharin.engine import Journal, TaskRecord
from sharin.errors import JournalError


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit a JSON file by hand, as a user (or WHEEL) would, bypassing sharin."""
    data = read_json(path)
    change(data)
    write_json(path, data)


def tree_snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root`` with its kind, mode, mtime and content hash (or link target).

    Two equal snapshots mean nothing was created, deleted, rewritten or re-permissioned.
    """
    snap: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                snap[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                snap[rel] = ("dir", st.st_mode)
            else:
                digest = sha256(p.read_bytes()).hexdigest()
                snap[rel] = ("file", st.st_mode, st.st_mtime_ns, digest)
    return snap


def wait_for(
    predicate: Callable[[], object], what: str, timeout: float = 20.0, interval: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def journal_tasks(root: Path, run: int) -> dict[str, TaskRecord]:
    """The task records of ``run``, read without writing (a test that polls while an engine
    runs never waits for the engine's write lock); none when there is no journal yet."""
    path = root / ".sharin" / "journal.sqlite"
    if not path.exists():
        return {}
    deadline = time.monotonic() + 10
    while True:
        try:
            j = Journal.open_readonly(path)
            break
        except JournalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # an engine is making it now: its tables are not there yet
    try:
        return j.tasks(run)
    finally:
        j.close()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3] != b"Z"


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def log_line(name: str) -> str:
    """A task body that appends its name to the project's shared ``ran.log``."""
    return f'echo {name} >> "$SHARIN_PROJECT_DIR/ran.log"\n'


@contextmanager
def another_engine(p: Project) -> Iterator[None]:
    """Hold the project's engine lock as a running engine would."""
    d = p.root / ".sharin"
    d.mkdir(exist_ok=True)
    fd = os.open(d / "engine.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        (d / "engine.pid").write_text(f"{os.getpid()}\n")
        yield
    finally:
        os.close(fd)
