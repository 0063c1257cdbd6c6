"""States written where WHEEL reads them: ``cmp.wheel.json`` and ``status.wheel.txt``.

The journal is the record; these files are a mirror for WHEEL and for people. The mirror never
writes a whole component file it loaded earlier: it re-reads the file as it is now, changes only
the keys the engine owns (``state`` and WHEEL's run bookkeeping: ``initialized``,
``currentIndex``, ``ancestorsName`` ...) and replaces the file atomically, so an edit the user
made to another field while the run went on is kept.

**Recycled files.** Creating a file costs far more than anything else the mirror does (on a
local ext4 file system tens to hundreds of microseconds of CPU; on a shared file system a
metadata server's round trip), and an atomic replacement needs a new file each time. So when
the mirror has a directory for spare files (the engine gives it one in ``.sharin/``), the file a
replacement displaces is kept there under a name of its own (a hard link) and becomes the
temporary file of a later replacement, or a new ``status.wheel.txt``: no file is created while
there are spares. A spare is written only while the mirror holds a write lease on it
(``fcntl(F_SETLEASE)``), which the kernel grants only when no other process (nor any other
descriptor) has the file open: someone still reading the old version of a component file never
sees it change. A spare with another name elsewhere (a hard-linked copy of the project) is not
used; where leases or hard links are not available (another owner, a file system without
them), files are made new, as without spares.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..model import COMPONENT_FILE, STATUS_FILE, write_json_atomic
from ..model._jsonio import current_umask

__all__ = ["DELETE", "StateMirror", "update_json"]


class _Delete:
    """A value that removes its key from the file."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()

#: seconds the mirror waits so that quick successive states of a component are written once
MIRROR_DELAY = 0.1

#: spare files kept at most (more are removed as they come)
MAX_SPARES = 64


class _Spares:
    """Files displaced by replacements, kept (hard links in ``directory``) to be written again
    as the temporary file of another replacement or as a new file. Used by one thread."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._free: list[str] = []
        self._made = 0
        #: False once this file system refused a link, a lease or a rename (leases: Linux)
        self._ok = hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_SETSIG")
        self.new_mode = 0o666 & ~current_umask()  #: the mode a new file gets

    def keep(self, path: str, ino: int) -> None:
        """Keep the file ``path`` names now (the inode ``ino``, about to be replaced) as a
        spare; nothing happens when it is another file by then, or when there are enough."""
        if not self._ok or len(self._free) >= MAX_SPARES:
            return
        if self._made == 0:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                self._ok = False
                return
            self._remove_left()
        self._made += 1
        spare = os.path.join(self.dir, f"{os.getpid()}-{self._made}")
        try:
            os.link(path, spare, follow_symlinks=False)
        except OSError:
            self._ok = False  # another file system, no hard links there: files are made new
            return
        try:
            same = os.lstat(spare).st_ino == ino
        except OSError:
            same = False
        if same:
            self._free.append(spare)
        else:
            _unlink(spare)

    def place(self, text: bytes, mode: int, path: str, displaced: int | None = None) -> bool:
        """Write ``text`` into a spare with ``mode`` and rename it to ``path`` (replacing what
        is there at once); the file it replaces, the inode ``displaced``, is kept as a spare.
        False when no spare could be used: then nothing changed at ``path``."""
        while self._free:
            spare = self._free.pop()
            try:
                fd = os.open(spare, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # removed meanwhile (a clean of .sharin/)
            try:
                if not self._write(fd, text, mode):
                    _unlink(spare)
                    continue
            finally:
                os.close(fd)
            if displaced is not None:
                self.keep(path, displaced)
            try:
                os.rename(spare, path)
            except OSError:
                _unlink(spare)
                self._ok = False  # another file system (a linked directory): files made new
                return False
            return True
        return False

    def _write(self, fd: int, text: bytes, mode: int) -> bool:
        """Rewrite the spare open at ``fd`` under a write lease: False when another process
        (or another descriptor) has it open, when it has another name too, or when leases are
        not available here."""
        try:
            # a lease broken by someone opening the file signals this process: SIGURG is
            # ignored unless handled (the opener waits until the lease is released below)
            fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as e:
            if e.errno != errno.EAGAIN:  # open elsewhere; anything else: no leases here
                self._ok = False
            return False
        try:
            st = os.fstat(fd)
            if st.st_nlink != 1:
                return False  # a hard-linked copy has it too
            # nobody else has it open (the lease): written over from the start, then cut
            # where the text ends (no truncation when it is as long as the old content)
            _write_all(fd, text)
            if st.st_size > len(text):
                os.ftruncate(fd, len(text))
            if st.st_mode & 0o7777 != mode:
                os.fchmod(fd, mode)
            return True
        except OSError:
            return False
        finally:
            try:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            except OSError:
                pass

    def _remove_left(self) -> None:
        """Remove the spares an engine that was killed left (the engine that owns the
        directory holds the project's lock: no other one uses it now)."""
        try:
            with os.scandir(self.dir) as entries:
                for e in entries:
                    _unlink(e.path)
        except OSError:
            pass

    def close(self) -> None:
        for spare in self._free:
            _unlink(spare)
        self._free.clear()
        if self._made:
            try:
                self.dir.rmdir()
            except OSError:
                pass  # another engine's spares, or something else the user keeps there


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _update(path: Path, fields: Mapping[str, Any], spares: _Spares) -> bool:
    """:func:`update_json` through spare files: the replaced file becomes a spare."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        chunks = []
        while chunk := os.read(fd, max(st.st_size + 1, 1 << 14)):
            chunks.append(chunk)
            if len(chunk) == st.st_size and stat.S_ISREG(st.st_mode):
                break  # the whole file at once: no second read to see its end
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        data = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(data, dict) or not _apply(data, fields):
        return isinstance(data, dict)
    text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    mode = st.st_mode & 0o7777
    if not spares.place(text, mode, name, st.st_ino):
        # no spare yet: a new temporary file, as write_json_atomic makes; the file it
        # replaces is the next spare
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            try:
                _write_all(fd, text)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            spares.keep(name, st.st_ino)
            os.replace(tmp, name)
        except BaseException:
            _unlink(tmp)
            raise
    return True


def _apply(data: dict[str, Any], fields: Mapping[str, Any]) -> bool:
    """Set or remove ``fields`` in ``data``; True when something changed."""
    changed = False
    for key, value in fields.items():
        if value is DELETE:
            if key in data:
                del data[key]
                changed = True
        elif key not in data or data[key] != value:
            data[key] = value
            changed = True
    return changed


def _write_status(path: Path, text: str, spares: _Spares | None) -> None:
    """``status.wheel.txt``: written into the file there (as WHEEL does), or, when there is
    none, a spare renamed to its name."""
    name = os.fspath(path)
    data = text.encode()
    if spares is not None:
        try:
            fd = os.open(name, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        except FileNotFoundError:
            if spares.place(data, spares.new_mode, name):
                return
        else:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            return
    path.write_bytes(data)


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


class StateMirror:
    """Writes component states and WHEEL's bookkeeping fields from a thread of its own, so the
    event loop never waits on the file system. Writes coalesce: a task that goes from running to
    finished before the thread gets to it is written once. With ``spare_dir``, replaced files
    are kept there and written again instead of new ones (see the module's docstring)."""

    def __init__(self, spare_dir: Path | None = None) -> None:
        self._spares = _Spares(spare_dir) if spare_dir is not None else None
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
                    if self._spares is None:
                        written = update_json(path, fields)
                    else:
                        written = _update(path, fields, self._spares)
                    if written and status is not None:
                        _write_status(path.parent / STATUS_FILE, status, self._spares)
                except OSError:
                    pass  # the journal holds the truth; a write may fail on a full disk
                finally:
                    with self._lock:
                        self._writing = None
                        self._idle.notify_all()
            if closed and not batch:
                if self._spares is not None:
                    self._spares.close()
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
