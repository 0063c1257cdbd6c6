"""What runs made in a project, and a clean that removes exactly that.

Before a run starts, the files of the project are listed (path, kind, size, modification time)
in a *manifest*; when it ends, again. A file a run made is one the list at its end has and the
list at its start has not. Clean removes such a file only when git does not know it (tracked or
staged files are the user's) and it is still as the run left it (a file changed since is
someone's work). Files there before a run are never removed. Besides, clean removes what only a
run makes whatever the manifests say: ``status.wheel.txt`` files and the directories of loop
trips and parameter-study instances (``subComponent: true``), and sets every ``state`` back to
``not-started``.

Each attempt of a run (the ``sharin run`` that started it, each that resumed it) has its own
pair of lists, so files the user makes between attempts are not taken for the run's. An attempt
whose engine died has no list at its end: before the next attempt or clean it gets one with the
files made before the last record the engine wrote (later ones may be the user's, and stay).

Clean plans first and then acts: what it removes is moved aside (a rename within the project)
and deleted only when every move succeeded, so a failure leaves the project as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProjectError
from . import _git
from ._component import COMPONENT_FILE, PROJECT_FILE, RUN_FIELDS, STATUS_FILE, State
from ._jsonio import write_json_atomic

__all__ = [
    "CleanPlan",
    "RunFiles",
    "apply_plan",
    "attempt_manifests",
    "move_aside",
    "next_before",
    "plan_clean",
    "put_back",
    "remove_emptied",
    "read_manifest",
    "settle",
    "snapshot",
    "write_manifest",
    "write_snapshot",
]

#: an entry of a manifest: kind ("f" file, "l" link, "d" directory), size, mtime in ns
Entry = tuple[str, int, int]

#: top-level entries that are never part of a manifest nor touched by clean
_TOP_SKIP = frozenset({".git", ".sharin", "wheel.log"})


def _entry(st: os.stat_result) -> Entry:
    if stat.S_ISLNK(st.st_mode):
        return ("l", st.st_size, st.st_mtime_ns)
    if stat.S_ISDIR(st.st_mode):
        return ("d", 0, 0)
    return ("f", st.st_size, st.st_mtime_ns)


def _walk(root: Path, top: str = "") -> Iterable[tuple[str, os.stat_result]]:
    """(relative path, lstat) of everything below ``root/top``, links not followed."""
    stack = [top]
    while stack:
        rel = stack.pop()
        try:
            # iterated, not listed: a project of 100,000 instances has as many entries at its top
            entries = os.scandir(root / rel if rel else root)
        except OSError:
            continue
        with entries:
            while True:
                try:
                    e = next(entries)
                except StopIteration:
                    break
                except OSError:
                    break  # the directory went away while it was read
                if not rel and e.name in _TOP_SKIP:
                    continue
                path = f"{rel}/{e.name}" if rel else e.name
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield path, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)


def snapshot(root: Path) -> dict[str, Entry]:
    """Every file, link and directory of the project (``.git``, ``.sharin``, ``wheel.log`` left out)."""
    return {p: _entry(st) for p, st in _walk(root)}


def write_manifest(path: Path, files: Mapping[str, Entry], **meta: Any) -> None:
    """Write a manifest atomically (a crash leaves the old one or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"time": time.time(), **meta, "files": {k: list(v) for k, v in files.items()}}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_snapshot(path: Path, root: Path) -> None:
    """``write_manifest(path, snapshot(root))`` without the list in memory: each entry is
    written as it is walked (a project holding a study of 100,000 instances lists about a
    million files). Atomic as :func:`write_manifest`; the time is taken after the walk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    # each entry as json.dumps(..., separators=(",", ":")) writes it, put together here: that
    # call makes an encoder each time, most of the walk's cost (twice per run, for every file)
    quote = json.encoder.encode_basestring_ascii
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write('{"files":{')
            sep = ""
            for rel, st in _walk(root):
                kind, size, mtime = _entry(st)
                f.write(f'{sep}{quote(rel)}:["{kind}",{size},{mtime}]')
                sep = ","
            f.write(f'}},"time":{json.dumps(time.time())}}}')
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_manifest(path: Path) -> tuple[float, dict[str, Entry]] | None:
    """(time written, files) of a manifest, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {str(k): (str(v[0]), int(v[1]), int(v[2])) for k, v in data["files"].items()}
        return float(data["time"]), files
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


_BEFORE, _AFTER = "files-{}-before.json", "files-{}-after.json"


def attempt_manifests(run_dir: Path) -> list[tuple[int, Path, Path]]:
    """(attempt, before list, after list) of every attempt of a run (each ``sharin run`` that
    started or resumed it), in order; the after list may be missing."""
    out = []
    try:
        names = os.listdir(run_dir)
    except OSError:
        return []
    for name in names:
        if name.startswith("files-") and name.endswith("-before.json"):
            n = name[len("files-") : -len("-before.json")]
            if n.isdigit():
                k = int(n)
                out.append((k, run_dir / name, run_dir / _AFTER.format(k)))
    return sorted(out)


def next_before(run_dir: Path) -> Path:
    """Where the before list of a new attempt of a run goes."""
    have = attempt_manifests(run_dir)
    return run_dir / _BEFORE.format(have[-1][0] + 1 if have else 1)


def settle(root: Path, run_dir: Path, last_activity: float) -> None:
    """Give every attempt of a run whose engine died an after list: the files its before list
    lacks that were made before ``last_activity`` (the engine's last record) — later ones may
    be the user's."""
    for _, before_path, after_path in attempt_manifests(run_dir):
        if after_path.exists():
            continue
        got = read_manifest(before_path)
        if got is None:
            continue
        before = got[1]
        after = {
            p: _entry(st)
            for p, st in _walk(root)
            if p in before or st.st_ctime <= last_activity + 1.0
        }
        write_manifest(after_path, after, settled=True)


@dataclass
class RunFiles:
    """What a recorded run found and left: its manifests, and when it last did anything."""

    run: int
    attempt: int
    before: dict[str, Entry]
    after: dict[str, Entry]
    ended: float  #: when the after list was written


@dataclass
class CleanPlan:
    root: Path
    prefix: str
    remove: list[str] = field(default_factory=list)  #: files and links, relative paths
    remove_dirs: list[str] = field(default_factory=list)  #: removed when empty, deepest first
    #: component JSON files whose ``state`` goes back to not-started
    reset: list[str] = field(default_factory=list)
    #: files a run made that were changed since (kept)
    changed_since: list[str] = field(default_factory=list)
    #: untracked files no recorded run made (kept)
    unknown: list[str] = field(default_factory=list)
    #: component JSON files that could not be read (their state is left as it is)
    unreadable: list[str] = field(default_factory=list)
    #: subtrees cleaned: the prefix and the loop trips / instances of the cleaned component
    prefixes: list[str] = field(default_factory=list)


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _ancestors(path: str) -> Iterable[str]:
    """``path`` and every directory above it, up to "" (the project)."""
    yield path
    while path:
        path = path.rpartition("/")[0]
        yield path


def _in_any(path: str, dirs: set[str]) -> bool:
    """Whether ``path`` is one of ``dirs`` or below one (in O(depth), for many dirs)."""
    return any(a in dirs for a in _ancestors(path))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def plan_clean(
    root: Path,
    prefix: str,
    runs: Iterable[RunFiles],
    *,
    known: set[str],
    last_clean: Mapping[str, float] | None = None,
    instance_of: str | None = None,
) -> CleanPlan:
    """Plan a clean of ``prefix`` ("" = the whole project).

    ``known``: the paths git knows (tracked or staged), never removed. ``last_clean``: prefix →
    time of its last clean; a run that ended before the last clean covering a path does not
    count for it. ``instance_of``: the ID of the cleaned component, whose loop trips and
    parameter-study instances (siblings of its directory) are removed with it.
    """
    plan = CleanPlan(root, prefix)
    cleans = dict(last_clean or {})
    tops = [prefix]
    instance_dirs: list[str] = []
    if prefix and instance_of:
        parent = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        pdir = root / parent if parent else root
        name = prefix.rsplit("/", 1)[-1]
        try:
            siblings = sorted(os.scandir(pdir), key=lambda e: e.name)
        except OSError:
            siblings = []
        for e in siblings:
            if e.name.startswith(name + "_") and e.is_dir(follow_symlinks=False):
                data = _read(Path(e.path) / COMPONENT_FILE)
                if data and data.get("subComponent") and data.get("ID") == instance_of:
                    rel = f"{parent}/{e.name}" if parent else e.name
                    tops.append(rel)
                    instance_dirs.append(rel)
    plan.prefixes = list(tops)
    current: dict[str, os.stat_result] = {}
    real_root = os.path.realpath(root)
    for top in tops:
        if top and os.path.realpath(root / top) != os.path.join(real_root, top):
            continue  # reached through a symbolic link: not the project's own directory
        if top:
            try:
                st = os.lstat(root / top)
            except OSError:
                continue
            current[top] = st
            if not stat.S_ISDIR(st.st_mode):
                continue
        for p, st in _walk(root, top):
            current[p] = st

    # component directories, storage places inside the project, instance directories
    storage: list[str] = []
    for p in current:
        if not p.endswith(COMPONENT_FILE) or p.rsplit("/", 1)[-1] != COMPONENT_FILE:
            continue
        d = p[: -len(COMPONENT_FILE)].rstrip("/")
        data = _read(root / p)
        if data is None:
            plan.unreadable.append(p)
            continue
        if data.get("subComponent"):
            instance_dirs.append(d)
            continue
        if data.get("type") == "storage" and data.get("storagePath"):
            sp = Path(str(data["storagePath"])).expanduser()
            try:
                rel = os.path.relpath(os.path.realpath(sp), os.path.realpath(root))
            except ValueError:
                rel = ".."
            if not rel.startswith(".."):
                storage.append("" if rel == "." else rel)
        if _ran(data):
            plan.reset.append(p)
    if not prefix and (root / PROJECT_FILE).exists():
        data = _read(root / PROJECT_FILE)
        if data is None:
            plan.unreadable.append(PROJECT_FILE)
        elif _ran(data):
            plan.reset.append(PROJECT_FILE)

    def cleaned_at(path: str) -> float:
        return max((cleans.get(a, 0.0) for a in _ancestors(path)), default=0.0)

    top_set = set(tops)
    instances = set(instance_dirs)
    storage_set = set(storage)
    made: dict[str, Entry] = {}  #: path → as the latest counting run left it
    made_dirs: set[str] = set()
    for r in sorted(runs, key=lambda r: (r.run, r.attempt)):
        for p, ent in r.after.items():
            if prefix and not _in_any(p, top_set):
                continue
            if r.ended <= cleaned_at(p):
                continue
            if p not in r.before:
                if ent[0] == "d":
                    made_dirs.add(p)
                else:
                    made[p] = ent
            elif p in made:
                made[p] = ent  # a later run changed a file an earlier one made

    def protected(p: str) -> bool:
        return p in known or _in_any(p, storage_set)

    removable: set[str] = set()
    for p, st in current.items():
        kind = _entry(st)
        if kind[0] == "d" or protected(p):
            continue
        name = p.rsplit("/", 1)[-1]
        in_instance = _in_any(p, instances)
        if name == STATUS_FILE or in_instance:
            removable.add(p)
        elif p in made:
            if made[p] == kind:
                removable.add(p)
            else:
                plan.changed_since.append(p)
        else:
            plan.unknown.append(p)
    plan.remove = sorted(removable)
    dirs = {p for p, st in current.items() if stat.S_ISDIR(st.st_mode)}
    gone = made_dirs | {d for d in dirs if _in_any(d, instances)}
    plan.remove_dirs = sorted(
        (d for d in gone & dirs if not protected(d)), key=lambda d: (-d.count("/"), d)
    )
    plan.changed_since.sort()
    plan.unknown.sort()
    plan.unreadable.sort()
    return plan


def _ran(data: Mapping[str, Any]) -> bool:
    """Whether a run left its marks in a component's or the project's JSON."""
    return data.get("state", State.NOT_STARTED.value) != State.NOT_STARTED.value or any(
        k in data for k in RUN_FIELDS
    )


def _reset_state(path: Path, saved: bytes | None) -> None:
    """``state`` back to not-started and the fields runs write taken back: to their value in
    ``saved`` (the staged or last saved content of the file) when it has them, else removed.
    When that leaves the file as saved, the saved bytes are written back exactly."""
    data = _read(path)
    if data is None:
        return
    base: dict[str, Any] | None = None
    if saved is not None:
        with contextlib.suppress(ValueError):
            loaded = json.loads(saved)
            base = loaded if isinstance(loaded, dict) else None
    new = dict(data)
    fields = set(RUN_FIELDS)
    if data.get("type") == "bulkjobTask" and data.get("usePSSettingFile", True):
        fields |= {"startBulkNumber", "endBulkNumber"}  # expanded by the run
    for k in fields:
        if base is not None and k in base:
            new[k] = base[k]
        else:
            new.pop(k, None)
    new["state"] = State.NOT_STARTED.value
    if new == data:
        return
    if saved is not None and base == new:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sharin-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(saved)
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return
    write_json_atomic(path, new)


def move_aside(root: Path, paths: list[str], trash: Path) -> list[tuple[Path, Path]]:
    """Rename ``paths`` into ``trash`` (same file system); on a failure put back what moved
    and raise. Returns the moves done."""
    if not paths:
        return []
    trash.mkdir(parents=True, exist_ok=True)
    moved: list[tuple[Path, Path]] = []
    try:
        for i, rel in enumerate(paths):
            src = root / rel
            dst = trash / str(i)
            os.rename(src, dst)
            moved.append((src, dst))
    except OSError as e:
        put_back(moved, trash)
        raise ProjectError(
            f"cannot remove {rel} ({e.strerror or e}); nothing was removed — fix the "
            "permissions and clean again",
            path=root,
        ) from None
    return moved


def put_back(moved: list[tuple[Path, Path]], trash: Path | None = None) -> None:
    """Undo :func:`move_aside` (and :func:`remove_emptied`); the trash goes when emptied."""
    for src, dst in reversed(moved):
        try:
            src.parent.mkdir(parents=True, exist_ok=True)
            os.rename(dst, src)
        except OSError:
            pass  # still in the trash directory, which is then kept
    if trash is not None:
        with contextlib.suppress(OSError):
            trash.rmdir()


def remove_emptied(plan: CleanPlan) -> None:
    """Remove the directories runs made that are empty now (files moved aside)."""
    for d in plan.remove_dirs:
        with contextlib.suppress(OSError):  # not empty: it holds something that is kept
            os.rmdir(plan.root / d)


def apply_plan(plan: CleanPlan, trash: Path) -> None:
    """Finish a plan whose files were moved aside: states reset, emptied directories
    removed, the trash deleted."""
    saved: dict[str, bytes | None] = {}
    if plan.reset and _git.is_repo(plan.root):
        with contextlib.suppress(ProjectError):
            saved = _git.index_blobs(plan.root, [str(r) for r in plan.reset])
    for rel in plan.reset:
        p = plan.root / rel
        if p.exists():
            _reset_state(p, saved.get(str(rel)))
    remove_emptied(plan)
    shutil.rmtree(trash, ignore_errors=True)
