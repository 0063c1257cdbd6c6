"""A project is a git repository of its own: save = commit, revert = reset, clean = reset + clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import ProjectError

__all__ = [
    "add",
    "clean",
    "clone",
    "commit_all",
    "init",
    "is_dirty",
    "is_repo",
    "revert",
    "unsaved",
]

_IDENT = [
    "-c",
    "user.name=sharin",
    "-c",
    "user.email=sharin@localhost",
    "-c",
    "commit.gpgsign=false",
]


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise ProjectError("git is not installed; install git (e.g. `apt-get install git`)")
    proc = subprocess.run(
        ["git", *_IDENT, *args], cwd=root, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise ProjectError(
            f"`git {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}",
            path=root,
        )
    return proc


def is_repo(root: Path) -> bool:
    """True when ``root`` is itself the top of a git work tree (not a folder inside another one)."""
    return (root / ".git").exists()


def _require_repo(root: Path) -> None:
    if not is_repo(root):
        raise ProjectError(
            "the project is not a git repository of its own; run `git init` in it "
            "(or copy it with `sharin copy`) to use save, revert and clean",
            path=root,
        )


def init(root: Path) -> None:
    _git(root, "init", "-q")


def is_dirty(root: Path) -> bool:
    _require_repo(root)
    return bool(_git(root, "status", "--porcelain").stdout.strip())


def commit_all(root: Path, message: str) -> bool:
    """Stage everything (respecting .gitignore) and commit; False when there was nothing to commit."""
    _require_repo(root)
    _git(root, "add", "-A", ".")
    if not _git(root, "status", "--porcelain").stdout.strip():
        return False
    _git(root, "commit", "-q", "-m", message)
    return True


def revert(root: Path) -> None:
    """Throw away every change since the last save (``git reset --hard``)."""
    _require_repo(root)
    _git(root, "reset", "-q", "--hard", "HEAD")


def clean(root: Path, subdir: str = "") -> None:
    """Restore the last save and delete untracked files (run outputs); .sharin/ and wheel.log stay."""
    _require_repo(root)
    target = subdir or "."
    if subdir:
        _git(root, "checkout", "-q", "HEAD", "--", target)
    else:
        _git(root, "reset", "-q", "--hard", "HEAD")
    _git(root, "clean", "-q", "-d", "-f", "-e", "wheel.log", "-e", ".sharin", "--", target)


def clone(src: Path, dst: Path) -> None:
    """A copy of ``src``'s last commit at ``dst`` (a repository of its own, no remote)."""
    _require_repo(src)
    dst = dst.absolute()
    dst.parent.mkdir(parents=True, exist_ok=True)
    _git(dst.parent, "clone", "-q", "--no-hardlinks", str(src.resolve()), str(dst))
    _git(dst, "remote", "remove", "origin")


def add(root: Path, paths: list[Path]) -> None:
    """Stage ``paths`` (in chunks, so that 10,000 of them fit on command lines)."""
    rel = [str(p.relative_to(root)) if p.is_absolute() else str(p) for p in paths]
    for i in range(0, len(rel), 1000):
        _git(root, "add", "--", *rel[i : i + 1000])


def unsaved(root: Path, subdir: str) -> dict[str, bool]:
    """Files below ``subdir`` that differ from the last save: path -> whether the last save
    has the file at all (False: never saved, so `revert` cannot bring it back)."""
    _require_repo(root)
    out = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", subdir).stdout
    found: dict[str, bool] = {}
    for entry in out.split("\0"):
        if len(entry) > 3 and entry[2] == " ":
            found[entry[3:]] = entry[0] not in "?A"
    return found
