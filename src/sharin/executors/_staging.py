"""WHEEL's staging rules, shared by every transport.

Stage-in sends the whole component directory (symbolic links followed, so their content is sent),
minus WHEEL's own files at its top and sharin's ``.sharin`` directories. Stage-out brings back
what matches a task's ``outputFiles`` and ``include`` globs, minus its ``exclude`` globs and
WHEEL's own files; a pattern ending in ``/`` means the directory's content (``dir/*``), and a
symbolic link leading out of the task's directory is refused (:func:`copy_matching`). Inputs
whose producer left them on the same host are linked there (:func:`link_on_host`), and
``cleanupFlag`` removes a working directory after stage-out (:func:`remove_working_dir`):
every executor that stages to a host calls these.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import os
import posixpath
import secrets
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from ..engine._files import has_magic
from ..engine._protocol import HostLink, TaskSpec
from ..errors import ExecutorError, TransportError
from ..model._paths import Bounds, UnsafePathError, check_real, find_root, name_problem


class _Result(Protocol):
    @property
    def returncode(self) -> int: ...
    @property
    def output(self) -> str: ...


class _Entry(Protocol):
    @property
    def is_dir(self) -> bool: ...
    @property
    def is_link(self) -> bool: ...


class Transport(Protocol):
    """What these rules need of a host (``_transport.Transport`` has it)."""

    where: str

    async def run(self, command: str, *, timeout: float | None = ...) -> _Result: ...
    async def listdir(self, path: str) -> list[str]: ...
    async def stat(self, path: str) -> _Entry | None: ...
    async def put_dir(self, local: Path, remote: str) -> None: ...
    async def get(
        self,
        remote: str,
        patterns: Iterable[str],
        local: Path,
        exclude: Iterable[str] = ...,
        *,
        refused: list[str] | None = ...,
    ) -> list[str]: ...


__all__ = [
    "SYSTEM_FILES",
    "copy_matching",
    "copy_tree",
    "glob_match",
    "files_to_send",
    "host_glob",
    "link_escapes",
    "link_on_host",
    "linked_patterns",
    "refused_link",
    "remove_working_dir",
    "select",
    "stage_in_to_host",
    "stage_out_from_host",
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
        tmp = _temporary_beside(target)
        try:
            shutil.copy2(path, tmp)  # under a temporary name: never half a file under its own
            os.replace(tmp, target)
        except FileNotFoundError:
            continue  # removed meanwhile: nothing to send
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def link_escapes(rel: str, target: str) -> bool:
    """Whether the symbolic link ``rel`` (a path below a task's directory) pointing to
    ``target`` leads out of that directory (an absolute target, or ``..`` too far up)."""
    if not target or target.startswith("/") or "\0" in target:
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return resolved == ".." or resolved.startswith("../")


def refused_link(rel: str, target: str) -> str:
    """The warning for an output that is a symbolic link leading out of the task's directory."""
    return (
        f"{rel!r} is a symbolic link to {target!r}, outside the task's directory; it was not "
        "copied back (neither the link nor what it points to): write the file itself there"
    )


def copy_matching(
    src: Path,
    patterns: list[str],
    dst: Path,
    exclude: list[str],
    *,
    move: bool = False,
    refused: list[str] | None = None,
) -> list[str]:
    """Stage-out on this machine: copy files and directories below ``src`` whose relative path
    matches into ``dst``; the paths brought back.

    A symbolic link below ``src`` comes back as a link when it points inside ``src`` (what it
    points to stays below the task's directory here too); one that leads out is not brought
    back, neither its target's content nor the link: a warning for it is added to ``refused``.
    Nothing is written through a link that leaves the project holding ``dst``, nor over a
    directory with a file: such an entry stops the copy with an error naming it, before any
    file in ``dst`` changed. Every file is first written under a temporary name beside its
    target (``move``: ``src`` is on the same file system and is used up, its files renamed),
    then all are renamed into place, so a failure leaves ``dst`` as it was and no reader ever
    sees half a file under its final name.
    """
    copied: list[str] = []
    if not src.is_dir():
        return copied
    dst_bounds = Bounds.of(find_root(dst))
    wanted = wanted_patterns(patterns)
    files: list[tuple[Path, str]] = []  # (source, relative path) of files to place
    links: list[tuple[str, str]] = []  # (relative path, target) of links to make
    dirs_made: list[str] = []

    def plan(path: Path, rel: str) -> None:
        target = dst / rel
        if path.is_symlink():
            link_to = os.readlink(path)
            if link_escapes(rel, link_to):
                if refused is not None:
                    refused.append(refused_link(rel, link_to))
                return
            check_real(target, dst_bounds, what="output", shown=rel, follow=False)
            # what it will point to here, through the directories there are here
            check_real(target.parent / link_to, dst_bounds, what="output", shown=rel)
            if target.is_dir() and not target.is_symlink():
                raise UnsafePathError(f"output {rel!r} is a directory here; remove it first")
            links.append((rel, link_to))
        elif path.is_dir():
            check_real(target, dst_bounds, what="output", shown=rel, follow=True)
            if target.exists() and not target.is_dir():
                raise UnsafePathError(f"output {rel!r} is a file here, not a directory")
            dirs_made.append(rel)
            for child in sorted(os.listdir(path)):
                plan(path / child, f"{rel}/{child}")
        elif path.is_file():
            check_real(target, dst_bounds, what="output", shown=rel, follow=False)
            if target.is_dir() and not target.is_symlink():
                raise UnsafePathError(f"output {rel!r} is a directory here; remove it first")
            files.append((path, rel))

    try:
        for d, dirs, names in os.walk(src):
            rel_d = os.path.relpath(d, src)
            pre = "" if rel_d == "." else rel_d.replace(os.sep, "/") + "/"
            for name in [*dirs, *names]:
                rel = pre + name
                if not brought_back(rel, wanted, exclude):
                    continue
                plan(Path(d) / name, rel)
                copied.append(rel)
                if name in dirs:
                    dirs[:] = [x for x in dirs if x != name]  # a matched directory comes whole
    except UnsafePathError as e:
        raise ExecutorError(f"{e}; nothing was copied back") from None
    temps: list[tuple[str, Path]] = []
    try:
        for rel in dirs_made:
            (dst / rel).mkdir(parents=True, exist_ok=True)
        for path, rel in files:
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temporary_beside(target)
            temps.append((rel, tmp))
            if move:
                os.replace(path, tmp)
            else:
                shutil.copy2(path, tmp)
        for rel, link_to in links:
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temporary_beside(target)
            temps.append((rel, tmp))
            os.symlink(link_to, tmp)
    except BaseException:
        for _, tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for rel, tmp in temps:
        os.replace(tmp, dst / rel)
    return copied


def _temporary_beside(target: Path) -> Path:
    """A name no other file has, beside ``target``, for a file to be renamed into place."""
    return target.with_name(f".{target.name[:200]}.{secrets.token_hex(4)}.sharin-part")


# ------------------------------------------------------------------------------------ on hosts
async def remove_working_dir(transport: Transport, root: str, directory: str) -> None:
    """``cleanupFlag`` 0: remove a task's working directory on its host after its stage-out.
    Only a directory strictly below the host's ``path`` (``root``) is ever removed."""
    top = posixpath.normpath(root)
    where = posixpath.normpath(directory)
    if not root or not top.startswith("/") or not where.startswith(top.rstrip("/") + "/"):
        raise ExecutorError(
            f"{directory} is not below the host's path {root!r}; it was not removed"
        )
    res = await transport.run(f"rm -rf -- {shlex.quote(where)}", timeout=600)
    if res.returncode != 0:
        raise ExecutorError(
            f"could not remove {where} on {transport.where} after stage-out "
            f"({res.output.strip() or f'exit {res.returncode}'}); check its permissions, or set "
            "cleanupFlag to 1 to keep it"
        )


def _segment_match(name: str, part: str) -> bool:
    """``glob``'s rule for one part: a name starting with ``.`` only when the part does."""
    if name.startswith(".") and not part.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, part)


async def host_glob(transport: Transport, root: str, pattern: str) -> list[str]:
    """The matches of ``pattern`` below the directory ``root`` of a host, relative and sorted,
    by the rules :func:`glob.glob` follows here (``*`` does not cross ``/`` nor match a
    leading ``.``; a name without glob characters matches when it exists, a dangling link
    too)."""
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
    found = [""]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[str] = []
        for rel in found:
            base = posixpath.join(root, rel) if rel else root
            if glob.has_magic(part):
                try:
                    names = await transport.listdir(base)
                except TransportError:
                    continue
                picked = [n for n in names if _segment_match(n, part)]
            else:
                picked = [part]
            for n in picked:
                child = f"{rel}/{n}" if rel else n
                st = await transport.stat(posixpath.join(root, child))
                if st is None:
                    continue
                if last or st.is_dir or st.is_link:
                    nxt.append(child)
        found = nxt
        if not found:
            break
    return sorted(found) if parts else []


def linked_patterns(links: Iterable[HostLink]) -> list[str]:
    """Where :func:`link_on_host` puts each input, as globs below the task's directory: the
    stage-out leaves these links there (they lead to the producer's directory)."""
    out = []
    for link in links:
        dst_name = link.dst_name.replace("\\", "/")
        as_dir = (
            has_magic(link.pattern)
            or dst_name.endswith("/")
            or posixpath.normpath(dst_name or ".") == "."
        )
        if not as_dir:
            out.append(posixpath.normpath(dst_name))
        elif posixpath.normpath(dst_name or ".") == ".":
            out.append(link.pattern)
        else:
            out.append(posixpath.normpath(dst_name) + "/" + link.pattern)
    return out


async def link_on_host(
    transport: Transport, job_dir: str, links: Iterable[HostLink], keep: Iterable[str] = ()
) -> list[str]:
    """Make inputs on the host by symbolic links (relative, as WHEEL's ``ln -sf``) from the
    task's working directory ``job_dir`` into its producers' working directories, with the
    delivery rules of this machine (a glob or a name ending in ``/`` delivers into a
    directory, otherwise a rename); the paths made. Nothing is sent over the connection but
    the commands. A missing named file, or a name that would leave ``job_dir`` or replace the
    task's own files (``keep``: its script), raises :class:`ExecutorError`."""
    own = SYSTEM_FILES | frozenset(keep)
    commands: list[str] = []
    made: list[str] = []
    for link in links:
        what = f"input {link.dst_name or link.pattern!r}"
        for name, role, empty_ok in (
            (link.pattern, "source", False),
            (link.dst_name, "name", True),
        ):
            problem = name_problem(name, empty_ok=empty_ok)
            if problem is not None:
                raise ExecutorError(f"{what}: the {role} {name!r} {problem}; nothing was linked")
        magic = has_magic(link.pattern)
        matches = await host_glob(transport, link.src_dir, link.pattern)
        if not matches and not magic:
            raise ExecutorError(
                f"{what}: {link.producer} has no file {link.pattern!r} on {transport.where} "
                f"(looked in {link.src_dir}, where it ran); run {link.producer} again "
                "(`sharin run --restart`) if its working directory there was removed"
            )
        dst_name = link.dst_name.replace("\\", "/")
        as_dir = magic or dst_name.endswith("/") or posixpath.normpath(dst_name or ".") == "."
        for m in matches:
            rel = posixpath.normpath(posixpath.join(dst_name, m) if as_dir else dst_name)
            if rel in own or posixpath.basename(m) in SYSTEM_FILES and "/" not in m:
                if magic:
                    continue
                raise ExecutorError(
                    f"{what}: {rel!r} is the task's own file (its JSON, status or script) and "
                    "is not replaced by an input; give the input another name"
                )
            dst = posixpath.join(job_dir, rel)
            target = posixpath.relpath(posixpath.join(link.src_dir, m), posixpath.dirname(dst))
            q = shlex.quote(dst)
            commands.append(
                f"mkdir -p -- {shlex.quote(posixpath.dirname(dst))} && rm -rf -- {q} && "
                f"ln -s -- {shlex.quote(target)} {q} || exit 1"
            )
            made.append(rel)
    if commands:
        res = await transport.run("\n".join(commands), timeout=600)
        if res.returncode != 0:
            raise ExecutorError(
                f"could not link the inputs in {job_dir} on {transport.where}: "
                f"{res.output.strip() or f'exit {res.returncode}'}"
            )
    return made


# ------------------------------------------------------------------------------ a task's staging
async def stage_in_to_host(transport: Transport, spec: TaskSpec, job_dir: str) -> None:
    """A task's stage-in to its working directory on a host: its directory's files sent, then
    the inputs its producers left on the host linked there."""
    await transport.put_dir(spec.workdir, job_dir)
    if spec.host_links:
        keep = [spec.script] if spec.script else []
        await link_on_host(transport, job_dir, spec.host_links, keep)


async def stage_out_from_host(
    transport: Transport, spec: TaskSpec, job_dir: str, host_path: str
) -> list[str]:
    """A task's stage-out from its working directory on a host (``job_dir``, below the
    host's ``path``): its outputs and ``include`` brought back (the inputs linked there stay),
    a warning in its log for each link refused, then its working directory removed when its
    ``cleanupFlag`` says so. The paths brought back."""
    patterns = [*spec.outputs, *spec.include]
    got: list[str] = []
    if patterns:
        refused: list[str] = []
        exclude = [*spec.exclude, *linked_patterns(spec.host_links)]
        got = await transport.get(job_dir, patterns, spec.workdir, exclude, refused=refused)
        if refused:
            text = "".join(f"[sharin] warning: {w}\n" for w in refused)
            await asyncio.to_thread(_append_log, spec.stdout_path, text)
    if spec.cleanup:
        await remove_working_dir(transport, host_path, job_dir)
    return got


def _append_log(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
