"""States written where WHEEL reads them: ``cmp.wheel.json`` and ``status.wheel.txt``.

The journal is the record; these files are a mirror for WHEEL and for people. The mirror never
writes a whole component file it loaded earlier: it re-reads the file as it is now, changes only
the keys the engine owns (``state`` and WHEEL's run bookkeeping: ``initialized``,
``currentIndex``, ``ancestorsName`` ...) and replaces the file atomically, so an edit the user
made to another field while the run went on is kept. With a directory for spare files, replaced
files are recycled instead of new ones made (see :mod:`sharin.engine._mirrorwriter`).

**A process of its own.** The writes happen in a small child process,
:mod:`sharin.engine._mirrorwriter` (standard library only, started as a file), not in the
engine's: the reading, JSON and system calls of a write would otherwise take the engine's GIL
from its event loop. :meth:`StateMirror.set` only records the change (under a lock, without
waiting for the file system); the mirror's *sender* thread waits :data:`MIRROR_DELAY` so that
the quick successive states of a task coalesce, then hands the batch to the child as JSON
lines in one ``write`` (a ``json.dumps`` per change is all the JSON left in the engine), and
reads the child's answer that the batch is written. The child is started by the sender at the
first batch, or earlier when the engine asks for it (:meth:`StateMirror.start`, as a run
begins: the child's start-up then overlaps the run's own); a mirror that is never asked to
write nor to start starts no process. :meth:`StateMirror.remove_tree`
has the sender tell the child to forget the directory and waits for its answer, after which no
write below it is under way. When the child cannot be started or dies, the sender writes
itself, in-process, with the same functions, beginning with the batch the child had not
answered: no state is lost while the engine lives. When the engine is killed, the child exits
at the end of its input, writing nothing more (a new engine may own the project already; the
resumed run writes the states again).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..model import write_json_atomic
from ._launch import helper_argv
from ._mirrorwriter import (
    DELETE,
    _apply,
    _Spares,
    _update,
    _write_all,
    _write_status,
    below,
    write_state,
)

# with the writer's functions the tests use
__all__ = ["DELETE", "StateMirror", "_Spares", "_update", "_write_status", "update_json"]

#: seconds the mirror waits so that quick successive states of a component are written once:
#: long enough for a short task's ``running`` and ``finished`` to fall into one batch, short
#: enough that what is pending when the run ends (written before it returns) is little
MIRROR_DELAY = 0.025

#: the writer's process: this file run on its own
_WRITER = str(Path(__file__).with_name("_mirrorwriter.py"))


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
    if _apply(data, fields):
        write_json_atomic(path, data)
    return True


class _Lost(Exception):
    """The writer's process is gone (or answered nonsense)."""


class StateMirror:
    """Writes component states and WHEEL's bookkeeping fields from a process of its own (see the
    module's docstring), so the event loop never waits on the file system nor shares its GIL
    with the writes. Writes coalesce: a task that goes from running to finished before the
    sender hands it over is written once. With ``spare_dir``, replaced files are kept there and
    written again instead of new ones."""

    def __init__(self, spare_dir: Path | None = None) -> None:
        self._spare_dir = spare_dir
        #: the in-process writer's spares (made when the child cannot write)
        self._spares: _Spares | None = None
        #: directory → (fields, status text) not handed over yet
        self._pending: dict[str, tuple[dict[str, Any], str | None]] = {}
        # one lock, never held during a write: set() and forget() never wait on the file system
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  #: something pending, a forget, closing
        self._answered = threading.Condition(self._lock)  #: ``_done`` went up, or stopped
        self._gone: set[str] = set()  #: directories about to be removed: never written again
        self._forgets: list[tuple[str, int]] = []  #: (directory, ack number) to send
        self._asked = 0  #: the last ack number handed out
        self._done = 0  #: everything up to this ack number is written
        self._closed = False
        self._start_now = False  #: start the child before the first batch (:meth:`start`)
        self._stopped = False  #: the sender has ended
        self._hurry = threading.Event()  #: cuts the sender's wait short (close, forget)
        #: everything is written and the writer told to end (or the sender has stopped)
        self._written = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._in_process = False  #: the child could not be started, or died
        self._thread = threading.Thread(target=self._loop, name="sharin-state-mirror", daemon=True)
        self._thread.start()

    @property
    def writer_pid(self) -> int | None:
        """The pid of the writer's process; None before the first write, after :meth:`close`
        and when the mirror writes in-process."""
        proc = self._proc
        return None if proc is None or self._in_process else proc.pid

    def set(self, directory: Path, fields: Mapping[str, Any], status: str | None = None) -> None:
        """Change ``fields`` of ``directory/cmp.wheel.json`` (and write ``status.wheel.txt``)."""
        key = os.fspath(directory)
        with self._cond:
            old = self._pending.get(key)
            if old is None:
                self._pending[key] = (dict(fields), status)
                self._cond.notify()
            else:
                old[0].update(fields)
                if status is not None:
                    self._pending[key] = (old[0], status)

    def start(self) -> None:
        """Have the writer's process started now, before anything is written (returns at once;
        the sender thread starts it)."""
        with self._cond:
            self._start_now = True
            self._cond.notify()

    def forget(self, directory: Path) -> None:
        """``directory`` is about to be removed (an old loop trip, an instance): nothing below it
        is written from now on. Returns at once; a write below it already under way may still
        be finishing: remove the directory with :meth:`remove_tree`, which waits for it."""
        with self._lock:
            self._forget(os.fspath(directory))

    def _forget(self, d: str) -> None:
        for key in [k for k in self._pending if below(k, {d})]:
            del self._pending[key]
        self._gone.add(d)

    def remove_tree(self, directory: Path) -> None:
        """Forget ``directory`` and remove it (what is left of it, when some of it cannot be
        removed), once a write below it under way has ended, so that the removal does not race
        the write. Blocks on the file system: run it on the engine's file worker."""
        d = os.fspath(directory)
        with self._lock:
            self._forget(d)
            if not self._stopped:
                self._asked += 1
                n = self._asked
                self._forgets.append((d, n))
                self._cond.notify()
                self._hurry.set()
                while self._done < n and not self._stopped:
                    self._answered.wait()
        shutil.rmtree(directory, ignore_errors=True)

    def finish(self) -> None:
        """Write what is pending and tell the writer's process to end; returns once all is
        written, without waiting for that process to exit (its clean-up and exit then overlap
        what the caller does next). Nothing may be set afterwards; :meth:`close` waits for the
        end."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            self._hurry.set()
        self._written.wait()

    def close(self) -> None:
        """Write what is pending, end the writer's process and stop the thread (idempotent)."""
        self.finish()
        self._thread.join()

    # ------------------------------------------------------------------ the sender thread
    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not (self._pending or self._closed or self._forgets or self._start_now):
                        self._cond.wait()
                    hurry = self._closed or bool(self._forgets)
                    start, self._start_now = self._start_now, False
                if start and self._proc is None and not self._in_process and not hurry:
                    try:
                        self._start()
                    except _Lost:
                        self._lose_child()
                    continue
                if not hurry:
                    # let the states of short tasks coalesce: one write instead of two or three
                    # (close() and remove_tree() cut the wait short)
                    self._hurry.wait(MIRROR_DELAY)
                with self._cond:
                    self._hurry.clear()
                    batch, self._pending = self._pending, {}
                    forgets, self._forgets = self._forgets, []
                    closed = self._closed
                    if self._gone:
                        batch = {k: v for k, v in batch.items() if not below(k, self._gone)}
                    last = forgets[-1][1] if forgets else 0
                    if batch and not forgets:
                        self._asked += 1
                        last = self._asked
                if batch or forgets:
                    self._deliver(batch, forgets, last)
                    with self._lock:
                        self._done = max(self._done, last)
                        self._answered.notify_all()
                elif closed:
                    self._end()
                    return
        finally:
            with self._lock:
                self._stopped = True
                self._answered.notify_all()
            self._written.set()

    def _deliver(
        self,
        batch: dict[str, tuple[dict[str, Any], str | None]],
        forgets: list[tuple[str, int]],
        last: int,
    ) -> None:
        """Have ``batch`` written and ``forgets`` answered (the last answer is ``last``), by the
        child or, when it cannot, here."""
        if not self._in_process:
            lines = []
            for d, (fields, status) in batch.items():
                f = {k: v for k, v in fields.items() if v is not DELETE}
                msg: dict[str, Any] = {"p": d, "f": f, "t": status}
                if len(f) < len(fields):
                    msg["d"] = [k for k, v in fields.items() if v is DELETE]
                try:
                    lines.append(json.dumps(msg, ensure_ascii=False))
                except (TypeError, ValueError):
                    continue  # not JSON: it could not be written to the file either
            lines.extend(json.dumps({"forget": d, "ack": n}) for d, n in forgets)
            if not forgets:
                lines.append(json.dumps({"ack": last}))
            try:
                self._send(lines, last)
                return
            except _Lost:
                self._lose_child()
        # in-process: the batch the child did not answer is written here (again, it may be:
        # a state already written is not written twice, the file does not change)
        spares = self._own_spares()
        for d, (fields, status) in batch.items():
            try:
                write_state(d, fields, status, spares)
            except (TypeError, ValueError):
                continue  # not JSON (see above)

    def _send(self, lines: list[str], last: int) -> None:
        """Write ``lines`` to the child (started now if it is not yet) and read its answers up
        to ``last``; :class:`_Lost` when it is gone."""
        proc = self._proc
        if proc is None:
            proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _write_all(proc.stdin.fileno(), ("\n".join(lines) + "\n").encode())
        except OSError as e:  # BrokenPipeError: it died
            raise _Lost from e
        while True:
            answer = proc.stdout.readline()
            try:
                n = int(json.loads(answer)["ack"])
            except (ValueError, KeyError, TypeError) as e:  # b"": it died
                raise _Lost from e
            if n >= last:
                return

    def _start(self) -> subprocess.Popen[bytes]:
        spare_dir = os.fspath(self._spare_dir) if self._spare_dir is not None else ""
        if not sys.executable:
            raise _Lost("no Python to run the writer with (sys.executable is empty)")
        try:
            # a session of its own: a Ctrl-C of the terminal does not stop it mid-write (it
            # ends when the engine closes its input)
            proc = subprocess.Popen(
                helper_argv(_WRITER, spare_dir),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise _Lost from e
        self._proc = proc
        return proc

    def _lose_child(self) -> None:
        """From now on the sender writes itself."""
        self._in_process = True
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            _close(f)
        try:
            proc.kill()  # dead already, or answering nonsense
        except OSError:
            pass
        proc.wait()

    def _own_spares(self) -> _Spares | None:
        if self._spares is None and self._spare_dir is not None:
            self._spares = _Spares(self._spare_dir)
        return self._spares

    def _end(self) -> None:
        """Close the child (after what was sent before) and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            try:
                _write_all(proc.stdin.fileno(), b'{"close": true}\n')
            except OSError:
                pass  # it died after its last answer: nothing is lost
            for f in (proc.stdin, proc.stdout):
                _close(f)
            self._written.set()  # all was answered before: finish() may return
            proc.wait()
        if self._spares is not None:
            self._spares.close()


def _close(f: IO[bytes] | None) -> None:
    if f is not None:
        try:
            f.close()
        except OSError:
            pass
