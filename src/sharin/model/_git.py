"""A project is a git repository of its own: save = commit, revert = reset.

Every git call runs nothing a project (or an archive it came from) carries: hooks, the
fsmonitor, pagers, editors, external diff tools, and filter, diff and merge drivers that the
repository's own configuration defines are all switched off on the command line, and the git
directory and work tree are given explicitly (``core.worktree`` or a ``.git`` file cannot point
git elsewhere). Drivers from the user's own (global, system) configuration, such as git-lfs,
stay usable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import ProjectError
from ._component import RUN_FIELDS

__all__ = [
    "add",
    "changed_paths",
    "clone",
    "commit_all",
    "discard",
    "index_blobs",
    "index_paths",
    "init",
    "is_dirty",
    "is_repo",
    "require_repo",
    "restore_staged",
    "revert",
    "run_changes_and_unsaved",
    "unsaved",
]

_IDENT = [
    "-c",
    "user.name=sharin",
    "-c",
    "user.email=sharin@localhost",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "tag.gpgsign=false",
]

#: settings that would make git run a program the repository names
_SAFE = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=true",
    "sequence.editor=true",
    "core.askPass=",
    "core.sshCommand=",
    "credential.helper=",
    "diff.external=",
    "core.attributesFile=/dev/null",
    "diff.ignoreSubmodules=all",
    "status.submoduleSummary=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "init.templateDir=",
    "advice.detachedHead=false",
]

#: per-driver keys that name a program
_DRIVER_KEYS = {
    "filter": ("clean", "smudge", "process"),
    "diff": ("command", "textconv"),
    "merge": ("driver",),
}

_driver_cache: dict[Path, tuple[int, list[str]]] = {}


def _env() -> dict[str, str]:
    """The environment without variables that redirect git (GIT_DIR, GIT_CONFIG_* …)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def _safe_args() -> list[str]:
    out = []
    for item in _SAFE:
        out += ["-c", item]
    return out


def _run(
    argv: list[str], cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise ProjectError("git is not installed; install git (e.g. `apt-get install git`)")
    proc = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        check=False,
        env=_env(),
        **({"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}),
    )
    # decoded as file names are (no newline translation: a name may hold "\r")
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, os.fsdecode(proc.stdout), os.fsdecode(proc.stderr)
    )


def _repo_drivers(root: Path) -> list[str]:
    """``-c`` arguments that switch off the drivers the repository's own config defines."""
    config = root / ".git" / "config"
    try:
        mtime = config.stat().st_mtime_ns
    except OSError:
        return []
    cached = _driver_cache.get(root)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    proc = _run(
        [
            "git",
            *_safe_args(),
            f"--git-dir={root / '.git'}",
            "config",
            "--show-scope",
            "--get-regexp",
            r"^(filter|diff|merge)\.",
        ],
        root,
    )
    names: set[tuple[str, str]] = set()
    for line in proc.stdout.splitlines():
        scope, _, rest = line.partition("\t")
        key = rest.split(" ", 1)[0]
        if scope in ("global", "system"):
            continue
        kind, _, tail = key.partition(".")
        driver = tail.rsplit(".", 1)[0]
        if kind in _DRIVER_KEYS and driver and driver != tail:
            names.add((kind, driver))
    out: list[str] = []
    for kind, driver in sorted(names):
        for k in _DRIVER_KEYS[kind]:
            out += ["-c", f"{kind}.{driver}.{k}="]
        if kind == "filter":
            out += ["-c", f"filter.{driver}.required=false"]
    _driver_cache[root] = (mtime, out)
    return out


def _git(
    root: Path, *args: str, check: bool = True, repo: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run git in ``root``; with ``repo``, on the repository ``root/.git`` and no other."""
    argv = ["git", *_IDENT, *_safe_args()]
    if repo and is_repo(root):
        argv += [*_repo_drivers(root), f"--git-dir={root / '.git'}", f"--work-tree={root}"]
    proc = _run([*argv, *args], root, stdin)
    if check and proc.returncode != 0:
        raise ProjectError(
            f"`git {' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}",
            path=root,
        )
    return proc


def is_repo(root: Path) -> bool:
    """True when ``root`` is itself the top of a git work tree (not a folder inside another one).

    Only a real ``.git`` directory counts: a ``.git`` file or link may point outside the project.
    """
    git = root / ".git"
    return git.is_dir() and not git.is_symlink()


def require_repo(root: Path) -> None:
    """A clear error unless ``root`` is a git repository of its own."""
    if not is_repo(root):
        raise ProjectError(
            "the project is not a git repository of its own; run `git init` in it "
            "(or copy it with `sharin copy`) to use save, revert and clean",
            path=root,
        )


_require_repo = require_repo  # the older name, still used by some callers


def init(root: Path) -> None:
    """A fresh repository in ``root``: no hooks, no configuration beyond git's own."""
    git = root / ".git"
    if git.exists() or git.is_symlink():
        raise ProjectError(
            f"{git} is already there ({'a link' if git.is_symlink() else 'not a directory'}"
            " or a repository); remove it to make the project a repository of its own",
            path=root,
        )
    _git(root, "init", "-q", "--template=", str(root), repo=False)


def is_dirty(root: Path) -> bool:
    require_repo(root)
    return bool(_git(root, "status", "--porcelain", "--ignore-submodules").stdout.strip())


def commit_all(root: Path, message: str) -> bool:
    """Stage everything (respecting .gitignore) and commit; False when there was nothing to commit.

    sharin's own ``.sharin/`` (journal, logs) is never committed, .gitignore or not (a project
    WHEEL made has no such line)."""
    require_repo(root)
    _exclude_run_history(root)
    _git(root, "add", "-A", ".")
    if not _git(root, "status", "--porcelain", "--ignore-submodules").stdout.strip():
        return False
    _git(root, "commit", "-q", "--no-verify", "-m", message)
    return True


def _exclude_run_history(root: Path) -> None:
    """List ``/.sharin/`` in the repository's own exclude file (``.git/info/exclude``)."""
    exclude = root / ".git" / "info" / "exclude"
    try:
        lines = exclude.read_text().splitlines() if exclude.exists() else []
        if "/.sharin/" not in lines:
            exclude.parent.mkdir(exist_ok=True)
            exclude.write_text("\n".join([*lines, "/.sharin/"]) + "\n")
    except OSError as e:
        raise ProjectError(f"cannot write {exclude} ({e.strerror or e})", path=root) from None


def revert(root: Path) -> None:
    """Throw away every change since the last save (``git reset --hard``); untracked files stay."""
    require_repo(root)
    _git(root, "reset", "-q", "--hard", "HEAD")


def discard(root: Path, subdir: str = "") -> None:
    """Throw away unsaved changes below ``subdir`` ("" = the whole project), as ``git reset
    --hard`` does: tracked files back to the last save, files staged since removed. Untracked
    files are not touched."""
    require_repo(root)
    if not subdir:
        revert(root)
        return
    _git(root, "restore", "--source=HEAD", "--staged", "--worktree", "--", subdir)


def index_paths(root: Path) -> set[str]:
    """Every path git knows (tracked or staged), relative to ``root``."""
    if not is_repo(root):
        return set()
    out = _git(root, "ls-files", "-z", "--cached").stdout.split("\0")
    return {p for p in out if p}


def changed_paths(root: Path, subdir: str = "") -> dict[str, str]:
    """Paths below ``subdir`` whose index or work-tree content differs from the last save,
    with git's two-letter status (``" M"``, ``"A "``, ``" D"`` …). Untracked files are left out."""
    require_repo(root)
    args = ["status", "--porcelain=v1", "-z", "--untracked-files=no", "--ignore-submodules"]
    if subdir:
        args += ["--", subdir]
    raw = _git(root, *args).stdout.split("\0")
    out: dict[str, str] = {}
    i = 0
    while i < len(raw):
        entry = raw[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            i += 1  # the original name of a rename follows
        out[path] = code
    return out


def index_blobs(root: Path, paths: list[str]) -> dict[str, bytes | None]:
    """The staged content of each of ``paths`` (None when git does not know it); one git call."""
    if not paths:
        return {}
    argv = ["git", *_IDENT, *_safe_args(), *_repo_drivers(root), f"--git-dir={root / '.git'}"]
    if shutil.which("git") is None:
        raise ProjectError("git is not installed; install git (e.g. `apt-get install git`)")
    proc = subprocess.run(
        [*argv, "cat-file", "--batch"],
        cwd=root,
        input=b"".join(b":" + os.fsencode(p) + b"\n" for p in paths),
        capture_output=True,
        check=False,
        env=_env(),
    )
    out: dict[str, bytes | None] = {}
    data, pos = proc.stdout, 0
    for p in paths:
        nl = data.find(b"\n", pos)
        if nl < 0:
            out[p] = None
            continue
        header = data[pos:nl].split()
        pos = nl + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            out[p] = data[pos : pos + size]
            pos += size + 1
        else:
            out[p] = None
    return out


def _same_but_state(saved: bytes | None, current: Path) -> bool:
    if saved is None:
        return False
    try:
        old = json.loads(saved.decode("utf-8"))
        new = json.loads(current.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    bulk = old.get("usePSSettingFile", True) and new.get("usePSSettingFile", True)
    for d in (old, new):
        for key in _RUN_FIELDS:
            d.pop(key, None)
        if bulk:  # a bulk job's range, expanded from its parameterSetting.json by the run
            d.pop("startBulkNumber", None)
            d.pop("endBulkNumber", None)
    return bool(old == new)


#: fields of a component's or the project's JSON that runs write: the state and WHEEL's run
#: bookkeeping (the project's readOnly, progress counters, a task's times and exit code …)
_RUN_FIELDS = RUN_FIELDS | {"state"}


#: files whose changes a run makes: states in the JSON files, status.wheel.txt
_RUN_WRITTEN = ("cmp.wheel.json", "prj.wheel.json")
_STATUS = "status.wheel.txt"


def run_changes_and_unsaved(root: Path, subdir: str = "") -> tuple[list[str], list[str]]:
    """Split the changes git sees below ``subdir`` into those runs make (a component's or the
    project's JSON that differs from its staged content only in fields runs write; a tracked
    ``status.wheel.txt``) and unsaved edits (everything else: changed, staged or deleted files).
    Untracked files are in neither list."""
    changed = changed_paths(root, subdir)
    maybe = [
        p
        for p, code in changed.items()
        if code[0] in " ?" and code[1] == "M" and p.rsplit("/", 1)[-1] in _RUN_WRITTEN
    ]
    blobs = index_blobs(root, maybe)
    run: list[str] = []
    unsaved: list[str] = []
    for p, code in sorted(changed.items()):
        if code[0] in " ?" and code[1] == "M" and p.rsplit("/", 1)[-1] == _STATUS:
            run.append(p)
        elif p in blobs and _same_but_state(blobs[p], root / p):
            run.append(p)
        else:
            unsaved.append(p)
    return run, unsaved


def restore_staged(root: Path, paths: list[str]) -> None:
    """Put the staged content of ``paths`` back in the work tree."""
    for i in range(0, len(paths), 1000):
        _git(root, "checkout", "-q", "--", *paths[i : i + 1000])


def clone(src: Path, dst: Path) -> None:
    """A copy of ``src``'s last commit at ``dst`` (a repository of its own, no remote)."""
    require_repo(src)
    dst = dst.absolute()
    dst.parent.mkdir(parents=True, exist_ok=True)
    _git(
        dst.parent,
        "clone",
        "-q",
        "--no-hardlinks",
        "--template=",
        str(src.resolve()),
        str(dst),
        repo=False,
    )
    _git(dst, "remote", "remove", "origin")


#: from this many paths on, :func:`add` lists the files itself (below: one ``git add``)
ADD_BY_LIST = 64


def add(root: Path, paths: list[Path]) -> None:
    """Stage ``paths`` (files, and directories with every file below them) as ``git add``
    does within a directory: ignored files that are not tracked yet are left out (also when
    named: ``git add`` would refuse them), names are taken as they are (no wildcards).

    A few paths go to one ``git add``. Many (a batch of new components) are listed here and
    given to one ``git update-index`` on its standard input: ``git add`` matches every
    pathspec against every file it looks at, and staging 10,000 new components' directories
    with it takes ~1.6 s (this, ~0.1 s). A directory holding a ``.git`` (a repository of its
    own) is left to ``git add``, which knows what to make of it.
    """
    if len(paths) < ADD_BY_LIST:
        given = [str(p.relative_to(root)) if p.is_absolute() else str(p) for p in paths]
        if not given:
            return
        if _git(root, "--literal-pathspecs", "add", "--", *given, check=False).returncode == 0:
            return
        # refused: an ignored file named (git add stages none then), or another error, which
        # the listed way below reports; an ignored file is left out there, as within a directory
    files: list[str] = []
    nested: list[str] = []
    base = os.fspath(root).rstrip(os.sep) + os.sep
    cut = len(base)  # a path below the root, made relative to it
    for p in paths:
        top = os.fspath(p if p.is_absolute() else root / p)
        rel = top[cut:] if top.startswith(base) else os.path.relpath(top, root)
        if os.path.islink(top) or not os.path.isdir(top):
            files.append(rel)
            continue
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            if ".git" in dirnames or ".git" in filenames:
                found = []
                nested.append(rel)
                break
            here = rel + dirpath[len(top) :]
            for d in dirnames:  # a link to a directory is staged as the link
                if os.path.islink(os.path.join(dirpath, d)):
                    found.append(f"{here}/{d}")
            found.extend(f"{here}/{f}" for f in filenames)
        files.extend(found)
    files = list(dict.fromkeys(files))
    if files:
        listed = b"".join(os.fsencode(f) + b"\0" for f in files)
        # exit 1: none of them is ignored
        ask = _git(root, "check-ignore", "-z", "--stdin", check=False, stdin=listed)
        if ask.returncode not in (0, 1):
            raise ProjectError(f"`git check-ignore` failed: {ask.stderr.strip()}", path=root)
        ignored = set(ask.stdout.split("\0")) - {""}
        if ignored:
            listed = b"".join(os.fsencode(f) + b"\0" for f in files if f not in ignored)
        _git(root, "update-index", "--add", "-z", "--stdin", stdin=listed)
    for i in range(0, len(nested), 1000):
        _git(root, "--literal-pathspecs", "add", "--", *nested[i : i + 1000])


def unstage(root: Path, path: Path) -> None:
    """Take ``path`` (and all below it) out of the index again, as if never staged."""
    rel = os.path.relpath(path, root)
    _git(root, "--literal-pathspecs", "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", rel)


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
