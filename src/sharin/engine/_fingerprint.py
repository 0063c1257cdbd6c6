"""Fingerprints: what a component's result depends on, so that a finished project is not run
again for nothing.

A component's fingerprint is taken when it finishes, after its outputs are in place, and kept
in the journal. Before the component would run again, the same fingerprint is taken of what is
there now; when both are equal the component is reused, else it runs, and the difference says
why ("script changed", "input in.txt changed", "output out.txt missing"). A fingerprint is

* ``def``: the component's properties (its ``cmp.wheel.json`` without what runs write there:
  ``state``, ``pos`` and WHEEL's bookkeeping);
* ``files``: every file below the component's directory (the script, templates, data, the
  outputs the last run left, delivered inputs as the links they are), each by its content;
* ``inputs``: the content of each input file as delivered (links followed).

Taking the fingerprint after the run means that the outputs are part of it: a component whose
outputs were deleted (by hand or by ``sharin clean``) runs again. Contents are hashed with
BLAKE2b; a file's digest is cached by (device, inode, size, modification time), so a file is
read once however often it is fingerprinted, and large files are not read again between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..model import COMPONENT_FILE, RUN_FIELDS, STATUS_FILE, Component, ComponentType

__all__ = [
    "ATOMIC_TYPES",
    "VOLATILE_FIELDS",
    "DigestCache",
    "definition",
    "explain",
    "fingerprint",
]

#: fields of cmp.wheel.json that runs write (sharin's state mirror, WHEEL's dispatcher): they
#: are not part of what a component is
VOLATILE_FIELDS = RUN_FIELDS | {
    "state",
    "pos",
    "subComponent",
}

#: environment variables WHEEL's dispatcher writes into a loop's ``env``
_VOLATILE_ENV = frozenset({"WHEEL_CURRENT_INDEX", "WHEEL_PREV_INDEX", "WHEEL_NEXT_INDEX"})

#: containers fingerprinted (and reused) as one unit, their whole directory tree: their children
#: run in copies (loop trips, instances) or as one job (a step job)
ATOMIC_TYPES = frozenset(
    {
        ComponentType.FOR,
        ComponentType.FOREACH,
        ComponentType.WHILE,
        ComponentType.PARAMETER_STUDY,
        ComponentType.STEPJOB,
    }
)

#: files a run writes beside a component that are not its result
_SKIPPED_NAMES = frozenset({STATUS_FILE, ".sharin", ".git"})

#: a digest is cached only for a file last modified this long before it was read (a change
#: within the file system's timestamp granularity could keep size and time alike)
_RACY_NS = 100_000_000

#: files at least this large keep their digest in the journal between runs
PERSISTED_MIN_SIZE = 1 << 20

_Key = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


class TooMuchToRead(Exception):
    """A quick fingerprint would read more than its budget: take it in a worker thread."""


class DigestCache:
    """Digests of file contents by (device, inode, size, mtime_ns).

    The event loop's thread and one worker thread may use it at once (single dictionary and
    list operations). A cache made by :meth:`limited` shares the digests and raises
    :class:`TooMuchToRead` once it would read more than its budget (bytes) of files."""

    def __init__(self, persisted: Iterable[tuple[int, int, int, int, str]] = ()) -> None:
        self._digests: dict[_Key, str] = {(d, i, s, m): h for d, i, s, m, h in persisted}
        self.new: list[tuple[int, int, int, int, str]] = []
        self.budget: int | None = None

    def limited(self, budget: int) -> DigestCache:
        view = DigestCache.__new__(DigestCache)
        view._digests, view.new, view.budget = self._digests, self.new, budget
        return view

    def digest(self, path: str, st: os.stat_result) -> str:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._digests.get(key)
        if cached is not None:
            return cached
        if self.budget is not None:
            self.budget -= st.st_size + 4096
            if self.budget < 0:
                raise TooMuchToRead
        h = hashlib.blake2b(digest_size=16)
        try:
            with open(path, "rb", buffering=0) as f:
                if st.st_size < 1 << 20:
                    h.update(f.readall())  # one read for a script or a small file
                else:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
        except OSError as e:
            return f"unreadable: {e.strerror}"
        value = h.hexdigest()
        if time.time_ns() - st.st_mtime_ns > _RACY_NS:
            self._digests[key] = value
            if st.st_size >= PERSISTED_MIN_SIZE:
                self.new.append((*key, value))
        return value


def definition(data: Mapping[str, Any]) -> str:
    """The digest of a component's properties, without the fields runs write."""
    d = {k: v for k, v in data.items() if k not in VOLATILE_FIELDS}
    env = d.get("env")
    if isinstance(env, dict) and any(k in _VOLATILE_ENV for k in env):
        d["env"] = {k: v for k, v in env.items() if k not in _VOLATILE_ENV}
    text = json.dumps(d, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _transient(name: str) -> bool:
    return name.startswith(".tmp-") and name.endswith(".json")


def _walk(base: str, pre: str, cache: DigestCache, out: dict[str, str], top: bool) -> None:
    try:
        # iterated, not listed: a directory of 100,000 gathered results would otherwise hold
        # 100,000 entries (with their stat results) in memory at once
        entries = os.scandir(base)
    except OSError:
        return
    try:
        with entries:
            _walk_entries(entries, pre, cache, out, top)
    except OSError:
        return  # the directory went away while it was read, as when it cannot be listed


def _walk_entries(
    entries: Iterable[os.DirEntry[str]],
    pre: str,
    cache: DigestCache,
    out: dict[str, str],
    top: bool,
) -> None:
    for e in entries:
        name = e.name
        if name in _SKIPPED_NAMES or _transient(name):
            continue
        rel = pre + name
        try:
            if e.is_symlink():
                out[rel] = "link:" + os.readlink(e.path)
                continue
            if top and name == COMPONENT_FILE and e.is_file(follow_symlinks=False):
                continue  # the component's own properties: ``def`` (known without a stat)
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(e.path, rel + "/", cache, out, False)
        elif stat.S_ISREG(st.st_mode):
            if name == COMPONENT_FILE:
                if top:
                    continue  # the component's own properties: ``def``
                try:
                    with open(e.path, encoding="utf-8") as f:
                        data = json.load(f)
                except (OSError, ValueError):
                    out[rel] = cache.digest(e.path, st)
                    continue
                out[rel] = "cmp:" + (definition(data) if isinstance(data, dict) else "")
                continue
            out[rel] = cache.digest(e.path, st)
        else:
            out[rel] = f"special:{stat.S_IFMT(st.st_mode)}"


def _content(path: Path, cache: DigestCache) -> str:
    """The content of a delivered input, links followed: a file's digest, a directory's
    listing with the digests of its files, or ``missing``."""
    try:
        st = path.stat()
    except OSError:
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        h = hashlib.blake2b(digest_size=16)
        for d, dirs, files in os.walk(path, followlinks=True):
            dirs.sort()
            rel = os.path.relpath(d, path)
            for f in sorted(files):
                p = os.path.join(d, f)
                try:
                    fst = os.stat(p)
                except OSError:
                    continue
                h.update(f"{rel}/{f}\0{cache.digest(p, fst)}\0".encode())
        return "dir:" + h.hexdigest()
    return cache.digest(str(path), st)


#: what a quick fingerprint may read (on the event loop: a script and small files)
QUICK_BUDGET = 256 << 10


def quick_fingerprint(c: Component, cdir: Path, cache: DigestCache) -> dict[str, Any] | None:
    """:func:`fingerprint`, or None when that would read more than :data:`QUICK_BUDGET` of
    files whose digests are not cached (then it belongs in a worker thread)."""
    try:
        return fingerprint(c, cdir, cache.limited(QUICK_BUDGET))
    except TooMuchToRead:
        return None


def fingerprint(c: Component, cdir: Path, cache: DigestCache) -> dict[str, Any]:
    """What ``c``'s result in ``cdir`` depends on and consists of (see the module's docstring)."""
    files: dict[str, str] = {}
    _walk(str(cdir), "", cache, files, True)
    inputs: dict[str, str] = {}
    for inp in c.input_files:
        name = inp.name.rstrip("/")
        if name:
            inputs[inp.name] = _content(cdir / name, cache)
    return {"def": definition(c.data), "files": files, "inputs": inputs}


def _names(items: Iterable[str], limit: int = 3) -> str:
    items = sorted(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def explain(c: Component, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """Why ``c`` must run again, comparing its last finished fingerprint with the present
    one; None when nothing changed."""
    reasons: list[str] = []
    old_files: Mapping[str, str] = old.get("files") or {}
    new_files: Mapping[str, str] = new.get("files") or {}
    old_inputs: Mapping[str, str] = old.get("inputs") or {}
    new_inputs: Mapping[str, str] = new.get("inputs") or {}
    input_names = {n.rstrip("/") for n in (*old_inputs, *new_inputs)}

    def delivered(rel: str) -> bool:
        return rel in input_names or rel.split("/", 1)[0] in input_names

    script = c.script or ""
    if old.get("def") != new.get("def"):
        reasons.append("properties changed")
    if script and old_files.get(script) != new_files.get(script):
        reasons.append("script changed" if script in new_files else "script missing")
    changed_inputs = [n for n in new_inputs if old_inputs.get(n) != new_inputs[n]]
    changed_inputs += [n for n in old_inputs if n not in new_inputs]
    if changed_inputs:
        reasons.append(f"input {_names(changed_inputs)} changed")
    outputs = {o.name for o in c.output_files}
    missing = [r for r in old_files if r not in new_files and r != script and not delivered(r)]
    gone_outputs = [r for r in missing if r in outputs]
    if gone_outputs:
        reasons.append(f"output {_names(gone_outputs)} missing")
    others = [r for r in missing if r not in outputs]
    if others:
        reasons.append(f"{_names(others)} removed")
    edited = [
        r
        for r, d in new_files.items()
        if r != script and not delivered(r) and old_files.get(r, d) != d
    ]
    if edited:
        reasons.append(f"{_names(edited)} changed")
    added = [r for r in new_files if r not in old_files and r != script and not delivered(r)]
    if added:
        reasons.append(f"{_names(added)} added")
    if not reasons and dict(old) != dict(new):
        reasons.append("delivered inputs changed")
    return "; ".join(reasons) or None


def dumps(fp: Mapping[str, Any]) -> str:
    return json.dumps(fp, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
