"""States written where WHEEL reads them: ``cmp.wheel.json`` and ``status.wheel.txt``.

The journal is the record; these files are a mirror for WHEEL and for people. The mirror never
writes a whole component file it loaded earlier: it re-reads the file as it is now, changes only
the keys the engine owns (``state`` and WHEEL's run bookkeeping: ``initialized``,
``currentIndex``, ``ancestorsName`` ...) and replaces the file atomically, so an edit the user
made to another field while the run went on is kept.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..model import COMPONENT_FILE, STATUS_FILE, write_json_atomic

__all__ = ["DELETE", "StateMirror", "update_json"]


class _Delete:
    """A value that removes its key from the file."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()

#: seconds the mirror waits so that quick successive states of a component are written once
MIRROR_DELAY = 0.1


def update_json(path: Path, fields: Mapping[str, Any]) -> bool:
    """Set (or, with :data:`DELETE`, remove) ``fields`` in the JSON object in ``path``, keeping
    every other key as the file holds it now. False when the file is missing or is not a JSON
    object (the caller's record stays the journal); the file is written only if it changes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(data, dict):
        return False
    changed = False
    for key, value in fields.items():
        if value is DELETE:
            if key in data:
                del data[key]
                changed = True
        elif key not in data or data[key] != value:
            data[key] = value
            changed = True
    if changed:
        write_json_atomic(path, data)
    return True


class StateMirror:
    """Writes component states and WHEEL's bookkeeping fields from a thread of its own, so the
    event loop never waits on the file system. Writes coalesce: a task that goes from running to
    finished before the thread gets to it is written once."""

    def __init__(self) -> None:
        self._pending: dict[Path, tuple[dict[str, Any], str | None]] = {}
        # one lock, never held during a write: set() and forget() never wait on the file system
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  #: something is pending, or closing
        self._idle = threading.Condition(self._lock)  #: the file being written is done
        self._writing: Path | None = None  #: the file being written now
        self._gone: set[Path] = set()  #: directories about to be removed: never written again
        self._closed = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sharin-state-mirror", daemon=True)
        self._thread.start()

    def set(self, directory: Path, fields: Mapping[str, Any], status: str | None = None) -> None:
        """Change ``fields`` of ``directory/cmp.wheel.json`` (and write ``status.wheel.txt``)."""
        path = directory / COMPONENT_FILE
        with self._cond:
            old = self._pending.get(path)
            if old is None:
                self._pending[path] = (dict(fields), status)
            else:
                old[0].update(fields)
                self._pending[path] = (old[0], status if status is not None else old[1])
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                closing = self._closed
            if not closing:
                # let the states of short tasks coalesce: one write instead of two or three
                # (close() cuts the wait short)
                self._closing.wait(MIRROR_DELAY)
            with self._cond:
                batch, self._pending = self._pending, {}
                closed = self._closed
            for path, (fields, status) in batch.items():
                with self._lock:
                    if self._gone and any(d in self._gone for d in path.parents):
                        continue
                    self._writing = path
                try:
                    if update_json(path, fields) and status is not None:
                        (path.parent / STATUS_FILE).write_text(status)
                except OSError:
                    pass  # the journal holds the truth; a write may fail on a full disk
                finally:
                    with self._lock:
                        self._writing = None
                        self._idle.notify_all()
            if closed and not batch:
                return

    def forget(self, directory: Path) -> None:
        """``directory`` is about to be removed (an old loop trip, an instance): nothing below it
        is written from now on. Returns at once; a write below it already under way may still
        be finishing: remove the directory with :meth:`remove_tree`, which waits for it."""
        with self._lock:
            for path in [p for p in self._pending if directory in p.parents]:
                del self._pending[path]
            self._gone.add(directory)

    def remove_tree(self, directory: Path) -> None:
        """Forget ``directory`` and remove it (what is left of it, when some of it cannot be
        removed), once a write below it under way has ended, so that the removal does not race
        the write. Blocks on the file system: run it on the engine's file worker."""
        self.forget(directory)
        with self._lock:
            while self._writing is not None and directory in self._writing.parents:
                self._idle.wait()
        shutil.rmtree(directory, ignore_errors=True)

    def close(self) -> None:
        """Write what is pending and stop the thread (idempotent)."""
        self._closing.set()
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
