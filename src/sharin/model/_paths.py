"""File names that project files give: the one place that decides whether a name is safe.

Every name a ``cmp.wheel.json`` or ``parameterSetting.json`` holds (a script, a file edge's
names, include/exclude patterns, templates, scatter and gather names …) is relative to a
component's directory and must stay inside it: no absolute path, no ``..`` part, no NUL, no part
longer than the file system allows. That is checked on the text alone by :func:`name_problem`
(validation, edits) and again, just before sharin touches the file system, on the real path:
:func:`resolve_inside` follows the symbolic links on the way and refuses a path whose real
target leaves the project, unless it leads into a place the user named (a storage component's
``storagePath``, a host's ``path``), described by :class:`Bounds`.

Globs (``*.txt``, ``sub/*.dat``) and directory names (``dir/``) are names like any other here;
their matches are checked one by one with :func:`glob_inside`.
"""

from __future__ import annotations

import glob as _glob
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..errors import ProjectError

__all__ = [
    "NAME_MAX",
    "PATH_MAX",
    "Bounds",
    "UnsafePathError",
    "check_real",
    "condition_script",
    "find_root",
    "glob_inside",
    "is_inside",
    "name_problem",
    "real_inside",
    "real_path",
    "real_path_below",
    "resolve_inside",
]

#: the longest part of a name, in bytes (the NAME_MAX of Linux file systems)
NAME_MAX: Final = 255
#: the longest name, in bytes (well below Linux's PATH_MAX, leaving room for the directory)
PATH_MAX: Final = 1024

_DRIVE: Final = re.compile(r"[A-Za-z]:[\\/]")


class UnsafePathError(ProjectError):
    """A name would reach outside the component's directory or the project."""


def name_problem(name: object, *, empty_ok: bool = False) -> str | None:
    """What is wrong with ``name`` as a relative name inside a directory, or None when it is safe.

    The message completes a sentence that starts with the name (``'../x' must not …``). Glob
    characters and a trailing ``/`` are allowed; ``\\`` counts as a separator too, so a name
    written on Windows cannot climb out either. Never raises.
    """
    if not isinstance(name, str):
        return "is not a file name (it must be text)"
    if name == "":
        return None if empty_ok else "is empty; give a file name"
    if "\0" in name:
        return "contains a NUL character, which no file name may hold"
    try:
        encoded = os.fsencode(name)
    except UnicodeError:
        return "holds characters that cannot be part of a file name"
    if len(encoded) > PATH_MAX:
        return f"is {len(encoded)} bytes long; a name may have at most {PATH_MAX}"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        return (
            "is an absolute path; give a name relative to the component's directory "
            "(copy the file into the project first)"
        )
    parts = posix.split("/")
    if ".." in parts:
        return "goes up with '..'; give a name inside the component's directory"
    for part in parts:
        if len(os.fsencode(part)) > NAME_MAX:
            return f"has a part longer than {NAME_MAX} bytes, which no file system allows"
    return None


def real_path(path: Path | str) -> str:
    """``path`` with every symbolic link on the way followed (parts that do not exist are kept)."""
    return os.path.realpath(path)


def real_path_below(top: str, top_real: str, path: str) -> str:
    """:func:`real_path` of ``path``, which lies below the directory ``top`` whose real path
    ``top_real`` the caller already knows: only the parts below ``top`` are looked at (one
    ``lstat`` each), as :func:`os.path.realpath` would walk them. Any symbolic link, ``.``,
    ``..`` or empty part on the way, or a ``path`` not below ``top``, takes the full
    :func:`real_path` instead, so the answer is the same as :func:`real_path`'s as long as
    ``top`` still resolves to ``top_real``."""
    prefix = top.rstrip(os.sep) + os.sep
    if not path.startswith(prefix) or not top_real.startswith(os.sep):
        return real_path(path)
    rest = path[len(prefix) :]
    real = top_real.rstrip(os.sep)
    missing = False
    for part in rest.split(os.sep):
        if part in ("", ".", ".."):
            return real_path(path)
        real = real + os.sep + part
        if missing:
            continue
        try:
            mode = os.lstat(real).st_mode
        except OSError:
            missing = True  # as realpath: what does not exist is kept as it is written
            continue
        if stat.S_ISLNK(mode):
            return real_path(path)
    return real


def is_inside(real: str, top: str) -> bool:
    """True when the real path ``real`` is ``top`` or below it (both already real)."""
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class Bounds:
    """Where paths may lead: the project (``root``) and the places the user named (``named``:
    storage paths, host paths). All are kept as real paths."""

    root: str
    named: tuple[str, ...] = ()
    #: the project directory as it was given (not resolved): paths below it are resolved from
    #: ``root`` on (:func:`real_path_below`), so that its own parts are not walked again
    given: str = field(default="", compare=False)

    @classmethod
    def of(cls, root: Path | str, named: Iterable[Path | str] = ()) -> Bounds:
        extra = {real_path(Path(p).expanduser()) for p in named if str(p)}
        return cls(real_path(root), tuple(sorted(extra)), os.fspath(root))

    def real(self, path: Path | str) -> str:
        """:func:`real_path` of ``path``, through :func:`real_path_below` when it lies in the
        project as it was given."""
        if self.given:
            return real_path_below(self.given, self.root, os.fspath(path))
        return real_path(path)

    def contains(self, real: str, *, named_ok: bool = True) -> bool:
        if is_inside(real, self.root):
            return True
        return named_ok and any(is_inside(real, top) for top in self.named)

    def where(self, real: str) -> str:
        """``real`` as it is named in messages: relative to the project when it is inside."""
        if is_inside(real, self.root):
            return os.path.relpath(real, self.root)
        return real


def _outside(shown: str, real: str, bounds: Bounds, named_ok: bool) -> str:
    places = "the project" + (
        " or a storage path or host path named in the project" if named_ok and bounds.named else ""
    )
    hint = (
        "replace the link by a copy of the file, or keep the file in a storage component"
        if named_ok
        else "replace the link by a copy of the file"
    )
    return (
        f"{shown!r} leads through a symbolic link to {real}, outside {places}; "
        f"sharin reads and writes only inside the project: {hint}"
    )


def resolve_inside(
    base: Path,
    name: str,
    bounds: Bounds,
    *,
    what: str = "file",
    follow: bool = True,
    named_ok: bool = True,
    empty_ok: bool = False,
) -> Path:
    """``base / name`` after checking that it stays inside.

    ``name`` must pass :func:`name_problem`; then the real path (symbolic links followed; with
    ``follow`` False, all but the last part, for a name sharin is about to replace rather than
    write through) must lie inside ``bounds`` (``named_ok``: the named places count). Raises
    :class:`UnsafePathError` naming ``what`` otherwise. Returns the path as given (not the
    real one), so that relative links made to it stay relative.
    """
    path = base / name if name else base
    _check_inside(path, name, bounds, what, follow, named_ok, empty_ok)
    return path


def real_inside(
    base: Path,
    name: str,
    bounds: Bounds,
    *,
    what: str = "file",
    named_ok: bool = True,
) -> str:
    """:func:`resolve_inside`, returning the real path it checked instead (every symbolic
    link on the way followed)."""
    return _check_inside(base / name if name else base, name, bounds, what, True, named_ok, False)


def _check_inside(
    path: Path,
    name: str,
    bounds: Bounds,
    what: str,
    follow: bool,
    named_ok: bool,
    empty_ok: bool,
) -> str:
    problem = name_problem(name, empty_ok=empty_ok)
    if problem is not None:
        raise UnsafePathError(f"{what} {_shown(name)} {problem}")
    return check_real(path, bounds, what=what, shown=name, follow=follow, named_ok=named_ok)


def check_real(
    path: Path,
    bounds: Bounds,
    *,
    what: str = "file",
    shown: str | None = None,
    follow: bool = True,
    named_ok: bool = True,
) -> str:
    """The real path of ``path`` (see :func:`resolve_inside`); raises when it leaves ``bounds``."""
    if follow:
        real = bounds.real(path)
    else:
        parent = path.parent if path.name else path
        real = os.path.join(bounds.real(parent), path.name) if path.name else bounds.real(parent)
    if not bounds.contains(real, named_ok=named_ok):
        raise UnsafePathError(
            f"{what} " + _outside(shown if shown is not None else str(path), real, bounds, named_ok)
        )
    return real


def glob_inside(
    base: Path, pattern: str, bounds: Bounds, *, what: str = "file", recursive: bool = False
) -> list[str]:
    """The matches of the glob ``pattern`` in ``base`` (relative, sorted), each checked to lead
    inside ``bounds``; one that leaves raises :class:`UnsafePathError` before anything is done."""
    problem = name_problem(pattern)
    if problem is not None:
        raise UnsafePathError(f"{what} {_shown(pattern)} {problem}")
    matches = sorted(_glob.glob(pattern, root_dir=base, recursive=recursive))
    for m in matches:
        check_real(base / m, bounds, what=what, shown=m)
    return matches


def _shown(name: object) -> str:
    text = repr(name)
    return text if len(text) <= 80 else text[:60] + "…" + text[-10:]


def find_root(path: Path, default: Path | None = None) -> Path:
    """The project directory holding ``path``: the nearest directory upwards with a
    ``prj.wheel.json``; ``default`` (or ``path`` itself) when there is none."""
    for p in (path, *path.parents):
        if (p / _PROJECT_FILE).is_file():
            return p
    return default if default is not None else path


_PROJECT_FILE: Final = "prj.wheel.json"


def condition_script(cdir: Path, text: str, bounds: Bounds | None = None) -> Path | None:
    """The script file a condition names, or None when it is an expression.

    A condition is a script when it is a safe name of a file in ``cdir`` whose real path stays
    in the project (``bounds``, by default the project holding ``cdir``); one that names a file
    outside — an absolute path, ``..``, a symbolic link leaving the project — raises
    :class:`UnsafePathError` instead of being run or read as an expression.
    """
    text = text.strip()
    if not text:
        return None
    problem = name_problem(text)
    if problem is None:
        path = cdir / text
        if not path.is_file():
            return None
        check_real(
            path,
            bounds or Bounds.of(find_root(cdir)),
            what="condition script",
            shown=text,
            named_ok=False,
        )
        return path
    if os.path.isfile(os.path.join(cdir, text)):
        raise UnsafePathError(f"condition script {_shown(text)} {problem}")
    return None
