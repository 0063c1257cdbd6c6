"""The writer of the WHEEL state mirror (:mod:`sharin.engine._mirror`): the code that rewrites
``cmp.wheel.json`` and ``status.wheel.txt``, and the small process of its own it runs in.

It imports only the standard library and is started as a file,
``python -I -S _mirrorwriter.py SPARE_DIR`` (an empty ``SPARE_DIR``: no spare files; a file
it makes gets the mode the engine's umask, which it inherits, gives), in a session of its own
and ignoring SIGINT, SIGHUP and SIGPIPE, so that a Ctrl-C of the terminal does not stop it
in the middle of a write. It reads one JSON object a line on its standard input and, single
threaded, does what each says, in order:

``{"p": DIR, "f": {KEY: VALUE}, "d": [KEY], "t": TEXT or null}``
    set the keys ``f`` and remove the keys ``d`` of ``DIR/cmp.wheel.json`` (the file as it is
    now; written only when that changes it) and, when ``t`` is a text and the component file
    is there, write it to ``DIR/status.wheel.txt``;
``{"forget": DIR, "ack": N}``
    write nothing below ``DIR`` from now on, then answer ``{"ack": N}`` on standard output;
``{"ack": N}``
    answer ``{"ack": N}``: everything asked before it is written;
``{"close": true}``
    remove the spare files and exit (status 0).

An answer means that no write asked before it is under way. At the end of its input without a
``close`` (the engine was killed: a new engine may own the project already, and the resumed run
writes the states again) it exits at once, status 1, writing nothing more; it also stops before
a write when its parent is no longer the engine that started it (killed after it sent lines the
writer had not read yet).

**Recycled files.** Creating a file costs far more than anything else the mirror does (on a
local ext4 file system tens to hundreds of microseconds of CPU; on a shared file system a
metadata server's round trip), and an atomic replacement needs a new file each time. So when
the mirror has a directory for spare files (the engine gives it one in ``.sharin/``), the file a
replacement displaces is kept there under a name of its own (a hard link) and becomes the
temporary file of a later replacement: no component file's replacement creates a file while
there are spares. (A task's first ``status.wheel.txt`` is a new file, made where it belongs:
that costs less than a new file renamed over a component file, and a spare spent on it would
leave the next replacement without one.) A spare is written only while the writer holds a
write lease on it (``fcntl(F_SETLEASE)``), which the kernel grants only when no other
process (nor any other descriptor) has the file open: someone still reading the old version of
a component file never sees it change. A spare with another name elsewhere (a hard-linked
copy of the project) is not used; where leases or hard links are not available (another owner,
a file system without them), files are made new, as without spares.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import stat
import sys

# what only the annotations name is not imported when the writer runs: each module costs the
# writer's start-up milliseconds (mypy takes the name TYPE_CHECKING as true wherever it is set)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

#: the files the writer writes in a component's directory (``sharin.model``'s names)
COMPONENT_FILE: Final = "cmp.wheel.json"
STATUS_FILE: Final = "status.wheel.txt"


class _Delete:
    """A value that removes its key from the file."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()

#: spare files kept at most (more are removed as they come)
MAX_SPARES = 64


class _Spares:
    """Files displaced by replacements, kept (hard links in ``directory``) to be written again
    as the temporary file of another replacement. Used by one thread."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = os.fspath(directory)
        self._free: list[str] = []
        self._made = 0
        #: False once this file system refused a link, a lease or a rename (leases: Linux)
        self._ok = hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_SETSIG")

    def keep(self, path: str, ino: int) -> None:
        """Keep the file ``path`` names now (the inode ``ino``, about to be replaced) as a
        spare; nothing happens when it is another file by then, or when there are enough."""
        if not self._ok or len(self._free) >= MAX_SPARES:
            return
        if self._made == 0:
            try:
                os.makedirs(self.dir, exist_ok=True)
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

    def place(self, text: bytes, mode: int, path: str, displaced: int) -> bool:
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
                os.rmdir(self.dir)
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


_encode_str = json.encoder.encode_basestring  # the C function json.dumps uses for a str
_float_repr = float.__repr__


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False)``, the same text, in a fraction of
    the time: with an indent, json encodes in Python, one generator step per item (most of
    a component file's rewrite). Values as ``json.loads`` makes them (keys are strings)."""
    out: list[str] = []
    _put(value, out, "\n")
    return "".join(out)


def _put(v: Any, out: list[str], nl: str) -> None:
    if isinstance(v, str):
        out.append(_encode_str(v))
    elif v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, float):
        out.append(_float(v))
    elif isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{" + inner
        for k, item in v.items():
            out.append(sep)
            out.append(_key(k))
            out.append(": ")
            _put(item, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    elif isinstance(v, list | tuple):
        if not v:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        for item in v:
            out.append(sep)
            _put(item, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    else:
        raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")


def _float(v: float) -> str:
    if v != v:
        return "NaN"
    if v == float("inf"):
        return "Infinity"
    if v == -float("inf"):
        return "-Infinity"
    return _float_repr(v)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return _encode_str(k)
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return _encode_str(int.__repr__(k))
    if isinstance(k, float):
        return _encode_str(_float(k))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _update(
    path: str | os.PathLike[str], fields: Mapping[str, Any], spares: _Spares | None
) -> bool:
    """Set (or, with :data:`DELETE`, remove) ``fields`` in the JSON object in ``path``, keeping
    every other key as the file holds it now, and replace the file atomically (through a spare
    file, when there is one: the replaced file becomes a spare). False when the file is missing
    or is not a JSON object; the file is written only if it changes."""
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
    text = (dumps_indented(data) + "\n").encode("utf-8")
    mode = st.st_mode & 0o7777
    if spares is None or not spares.place(text, mode, name, st.st_ino):
        # no spare yet: a new temporary file, as write_json_atomic makes; the file it
        # replaces is the next spare
        import tempfile  # here: imported only when a file is made new (no spare at hand)

        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(name))
        try:
            try:
                _write_all(fd, text)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            if spares is not None:
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


def _write_status(path: str | os.PathLike[str], text: str) -> None:
    """``status.wheel.txt``: written into the file there, or into a new one, as WHEEL does.

    Not through a spare: those are kept for the component files, whose replacement would
    otherwise need a new file renamed over the old one, which costs several times what a new
    file of a name not yet taken does (ext4 allocates a file's blocks at once when it replaces
    another: measured here, 150 µs a rename against 25 µs for a spare). A symbolic link of
    that name is replaced by the file, not followed."""
    name = os.fspath(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o666)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        # a symbolic link is there: replaced by the file, never written through (it may lead
        # outside the project)
        os.unlink(name)
        fd = os.open(name, flags | os.O_EXCL, 0o666)
    try:
        _write_all(fd, text.encode())
    finally:
        os.close(fd)


def write_state(
    directory: str, fields: Mapping[str, Any], status: str | None, spares: _Spares | None
) -> None:
    """Change ``fields`` of ``directory``'s component file and, when that file is there, write
    ``status`` to its status file. A failed write is left as it is: the journal holds the
    truth, and a write may fail on a full disk."""
    try:
        written = _update(os.path.join(directory, COMPONENT_FILE), fields, spares)
        if written and status is not None:
            _write_status(os.path.join(directory, STATUS_FILE), status)
    except OSError:
        pass


def below(path: str, gone: set[str] | frozenset[str]) -> bool:
    """``path`` is one of the directories ``gone`` or below one of them."""
    while True:
        if path in gone:
            return True
        parent = os.path.dirname(path)
        if parent == path or not parent:
            return False
        path = parent


def state_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a state message: ``f``'s values and :data:`DELETE` for ``d``'s keys."""
    fields: dict[str, Any] = dict(message.get("f") or {})
    for key in message.get("d") or ():
        fields[key] = DELETE
    return fields


def main() -> int:
    engine = os.getppid()
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    spare_dir = sys.argv[1]
    spares = _Spares(spare_dir) if spare_dir else None
    gone: set[str] = set()
    buf = b""
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return 1  # no close: the engine was killed; a new one may own the project now
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "p" in msg:
                if below(msg["p"], gone):
                    continue
                if os.getppid() != engine:
                    return 1  # killed after it sent this: not written, as above
                write_state(msg["p"], state_fields(msg), msg.get("t"), spares)
                continue
            if "forget" in msg:
                gone.add(msg["forget"])
            if "ack" in msg:
                try:
                    _write_all(1, b'{"ack": %d}\n' % int(msg["ack"]))
                except OSError:
                    return 1  # nobody reads the answers: the engine is gone
            if msg.get("close"):
                if spares is not None:
                    spares.close()
                return 0


if __name__ == "__main__":
    sys.exit(main())
