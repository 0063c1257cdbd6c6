"""How an executor reaches a host: run a shell command there, and move a directory's files.

The batch executor speaks to its scheduler through a :class:`Transport` only, so the same
scheduler definitions work on this machine (sharin started on a cluster's login node) and, through
an SSH transport, on remote hosts.
"""

from __future__ import annotations

import abc
import asyncio
import fnmatch
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExecutorError, TransportError
from ..model._paths import Bounds, UnsafePathError, check_real, find_root

__all__ = ["CommandResult", "LocalTransport", "Transport"]


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and its exit status."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Transport(abc.ABC):
    """A host's shell and file system, as seen from the engine."""

    #: a label for messages ("this machine", "user@host:22")
    where: str = "host"

    @abc.abstractmethod
    async def run(self, command: str, *, timeout: float | None = 120.0) -> CommandResult:
        """Run ``command`` with ``/bin/sh -c`` on the host."""

    @abc.abstractmethod
    async def put_dir(self, local: Path, remote: str) -> None:
        """Copy the files of ``local`` (symbolic links followed) into the directory ``remote``."""

    @abc.abstractmethod
    async def get(
        self, remote: str, patterns: Iterable[str], local: Path, exclude: Iterable[str] = ()
    ) -> list[str]:
        """Copy what matches ``patterns`` below ``remote`` (minus ``exclude``) into ``local``."""

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the connection."""


class LocalTransport(Transport):
    """This machine: commands run as child processes, files are copied."""

    where = "this machine"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env

    async def run(self, command: str, *, timeout: float | None = 120.0) -> CommandResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
            )
        except OSError as e:
            raise TransportError(
                f"cannot start /bin/sh on {self.where}: {e}", host="localhost", transient=False
            ) from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TransportError(
                f"{command.split()[0] if command.split() else command!r} did not answer within "
                f"{timeout:.0f} s on {self.where}",
                host="localhost",
                transient=True,
            ) from None
        return CommandResult(
            proc.returncode if proc.returncode is not None else -1,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )

    async def put_dir(self, local: Path, remote: str) -> None:
        dst = Path(remote)
        if dst.resolve() == local.resolve():
            return
        await asyncio.to_thread(_copy_tree, local, dst)

    async def get(
        self, remote: str, patterns: Iterable[str], local: Path, exclude: Iterable[str] = ()
    ) -> list[str]:
        src = Path(remote)
        if src.resolve() == local.resolve():
            return []
        return await asyncio.to_thread(_copy_matching, src, list(patterns), local, list(exclude))


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


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy the task's directory to the host, symbolic links followed; a link that leads out of
    the project stops the copy (its content is not sent)."""
    bounds = Bounds.of(find_root(src))
    for d, dirs, files in os.walk(src, followlinks=True):
        dirs[:] = [x for x in dirs if x != ".sharin"]
        rel = os.path.relpath(d, src)
        target = dst if rel == "." else dst / rel
        target.mkdir(parents=True, exist_ok=True)
        for name in [*dirs, *files]:
            shown = name if rel == "." else f"{rel}/{name}"
            try:
                check_real(Path(d) / name, bounds, shown=shown, named_ok=False)
            except UnsafePathError as e:
                raise ExecutorError(f"{e}; it was not sent to the host") from None
        for name in files:
            if rel == "." and name in SYSTEM_FILES:
                continue
            try:
                shutil.copy2(os.path.join(d, name), target / name)
            except FileNotFoundError:
                continue  # a dangling link: nothing to send


def _glob(rel: str, pattern: str) -> bool:
    """Glob match of a relative path, ``*`` not crossing ``/`` (``**`` crosses it)."""
    pattern = pattern.rstrip("/")
    if "**" in pattern:
        return fnmatch.fnmatchcase(rel, pattern)
    parts, pparts = rel.split("/"), pattern.split("/")
    return len(parts) == len(pparts) and all(
        fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pparts, strict=True)
    )


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(_glob(rel, p) for p in patterns)


def _copy_matching(src: Path, patterns: list[str], dst: Path, exclude: list[str]) -> list[str]:
    """Copy files and directories below ``src`` whose relative path matches (as WHEEL's stage-out).

    Nothing is read through a symbolic link that leaves ``src``, nor written through one that
    leaves the project holding ``dst``: such a file stops the copy with an error naming it.
    """
    copied: list[str] = []
    if not src.is_dir():
        return copied
    src_bounds = Bounds.of(src)
    dst_bounds = Bounds.of(find_root(dst))
    wanted = [p[:-1] + "/*" if p.endswith("/") else p for p in patterns]
    for d, dirs, files in os.walk(src):
        rel_d = os.path.relpath(d, src)
        pre = "" if rel_d == "." else rel_d.replace(os.sep, "/") + "/"
        for name in [*dirs, *files]:
            rel = pre + name
            if rel in SYSTEM_FILES or not _matches(rel, wanted) or _matches(rel, exclude):
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
