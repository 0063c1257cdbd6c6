"""WHEEL's staging rules, shared by every transport.

Stage-in sends the whole component directory (symbolic links followed, so their content is sent),
minus WHEEL's own files at its top and sharin's ``.sharin`` directories. Stage-out brings back
what matches a task's ``outputFiles`` and ``include`` globs, minus its ``exclude`` globs and
WHEEL's own files; a pattern ending in ``/`` means the directory's content (``dir/*``).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..errors import ExecutorError
from ..model._paths import Bounds, UnsafePathError, check_real, find_root

__all__ = [
    "SYSTEM_FILES",
    "copy_matching",
    "copy_tree",
    "glob_match",
    "files_to_send",
    "select",
    "wanted_patterns",
]

#: WHEEL's own files are never sent to, nor brought back from, a host
SYSTEM_FILES = frozenset(
    {
        "prj.wheel.json",
        "cmp.wheel.json",
        "status.wheel.txt",
        "jm.wheel.json",
        "files.wheel.json",
        "parameterSetting.json",
        "wheel.log",
    }
)

#: sharin's own state below a component, never sent
PRIVATE_DIR = ".sharin"


def glob_match(rel: str, pattern: str) -> bool:
    """Glob match of a relative path, ``*`` not crossing ``/`` (``**`` crosses it)."""
    pattern = pattern.rstrip("/")
    if "**" in pattern:
        return fnmatch.fnmatchcase(rel, pattern)
    parts, pparts = rel.split("/"), pattern.split("/")
    return len(parts) == len(pparts) and all(
        fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pparts, strict=True)
    )


def matches(rel: str, patterns: Iterable[str]) -> bool:
    return any(glob_match(rel, p) for p in patterns)


def wanted_patterns(patterns: Iterable[str]) -> list[str]:
    """A trailing ``/`` means the directory's content: ``dir/`` is ``dir/*``."""
    return [p[:-1] + "/*" if p.endswith("/") else p for p in patterns]


def brought_back(rel: str, wanted: list[str], exclude: list[str]) -> bool:
    """Whether stage-out brings back the entry ``rel`` (``wanted`` from :func:`wanted_patterns`)."""
    return rel not in SYSTEM_FILES and matches(rel, wanted) and not matches(rel, exclude)


def select(
    entries: Iterable[tuple[str, bool]], patterns: Iterable[str], exclude: Iterable[str] = ()
) -> list[str]:
    """The relative paths stage-out brings back from a listing of ``(path, is_dir)`` pairs
    (parents before children, as a walk gives them): a matched directory comes back whole, so
    nothing below it is listed again."""
    wanted, excl = wanted_patterns(patterns), list(exclude)
    chosen: list[str] = []
    taken: list[str] = []
    for rel, is_dir in entries:
        if any(rel.startswith(t + "/") for t in taken):
            continue
        if brought_back(rel, wanted, excl):
            chosen.append(rel)
            if is_dir:
                taken.append(rel)
    return chosen


def files_to_send(src: Path) -> list[tuple[str, Path]]:
    """Stage-in: ``(relative path, real path)`` of every file below ``src``, symbolic links
    followed; a link that leads out of the project stops it (its content is not sent). A
    dangling link is skipped; directories appear with a trailing ``/`` (empty ones are sent)."""
    bounds = Bounds.of(find_root(src))
    out: list[tuple[str, Path]] = []
    for d, dirs, files in os.walk(src, followlinks=True):
        dirs[:] = sorted(x for x in dirs if x != PRIVATE_DIR)
        rel = os.path.relpath(d, src)
        pre = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        if pre:
            out.append((pre, Path(d)))
        for name in [*dirs, *files]:
            try:
                check_real(Path(d) / name, bounds, shown=pre + name, named_ok=False)
            except UnsafePathError as e:
                raise ExecutorError(f"{e}; it was not sent to the host") from None
        for name in sorted(files):
            if not pre and name in SYSTEM_FILES:
                continue
            path = Path(d) / name
            if not path.exists():
                continue  # a dangling link: nothing to send
            out.append((pre + name, path))
    return out


def copy_tree(src: Path, dst: Path) -> None:
    """Stage-in on this machine: copy what :func:`files_to_send` lists into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for rel, path in files_to_send(src):
        target = dst / rel
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        try:
            shutil.copy2(path, target)
        except FileNotFoundError:
            continue  # removed meanwhile: nothing to send


def copy_matching(src: Path, patterns: list[str], dst: Path, exclude: list[str]) -> list[str]:
    """Stage-out on this machine: copy files and directories below ``src`` whose relative path
    matches into ``dst``.

    Nothing is read through a symbolic link that leaves ``src``, nor written through one that
    leaves the project holding ``dst``: such a file stops the copy with an error naming it.
    """
    copied: list[str] = []
    if not src.is_dir():
        return copied
    src_bounds = Bounds.of(src)
    dst_bounds = Bounds.of(find_root(dst))
    wanted = wanted_patterns(patterns)
    for d, dirs, files in os.walk(src):
        rel_d = os.path.relpath(d, src)
        pre = "" if rel_d == "." else rel_d.replace(os.sep, "/") + "/"
        for name in [*dirs, *files]:
            rel = pre + name
            if not brought_back(rel, wanted, exclude):
                continue
            path = Path(d) / name
            target = dst / rel
            try:
                check_real(path, src_bounds, what="output", shown=rel, named_ok=False)
                is_dir = path.is_dir()
                # a directory is merged into what is there; a file replaces the entry
                check_real(target, dst_bounds, what="output", shown=rel, follow=is_dir)
            except UnsafePathError as e:
                raise ExecutorError(f"{e}; it was not copied back") from None
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_dir:
                shutil.copytree(path, target, dirs_exist_ok=True)
                dirs[:] = [x for x in dirs if x != name]
            else:
                if target.is_symlink():
                    target.unlink()
                shutil.copy2(path, target)
            copied.append(rel)
    return copied
