"""How an executor reaches a host: run commands there, and read, write and move its files.

The batch executor speaks to its scheduler through a :class:`Transport` only, so the same
scheduler definitions work on this machine (sharin started on a cluster's login node) and, through
:class:`~sharin.executors._ssh.SSHTransport`, on remote hosts. What stage-in sends and stage-out
brings back is decided in :mod:`._staging`, the same for every transport.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import os
import shutil
import stat as _stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import TransportError
from ._staging import copy_matching, copy_tree

__all__ = ["CommandResult", "FileStat", "LocalTransport", "Transport", "check_env"]


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and its exit status."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class FileStat:
    """An entry of a host's file system (a symbolic link is described, not followed)."""

    size: int
    mtime: float
    mode: int

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    @property
    def is_link(self) -> bool:
        return _stat.S_ISLNK(self.mode)

    @property
    def is_file(self) -> bool:
        return _stat.S_ISREG(self.mode)


def check_env(env: Mapping[str, str] | None, where: str) -> None:
    """Variable names a shell can set (``A_1``, not ``1A`` or ``A-B``)."""
    for k in env or {}:
        if (
            not k
            or not (k[0].isalpha() or k[0] == "_")
            or not all(c.isalnum() or c == "_" for c in k)
        ):
            raise TransportError(
                f"{k!r} is not a variable name a shell can set; use letters, digits and _",
                host=where,
                transient=False,
            )


Input = bytes | str | None


class Transport(abc.ABC):
    """A host's shell and file system, as seen from the engine.

    Paths are the host's. ``write_bytes`` and the ``get_*``/``put_*`` of files never leave a
    half-written file under the final name: they write a temporary name and rename it.
    """

    #: a label for messages ("this machine", "user@host:22")
    where: str = "host"

    @abc.abstractmethod
    async def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Input = None,
        timeout: float | None = 120.0,
        idempotent: bool = False,
    ) -> CommandResult:
        """Run ``command`` with ``/bin/sh -c`` on the host, in ``cwd``, with ``env`` added to
        the environment and ``stdin`` as its input; a TransportError past ``timeout`` seconds.
        ``idempotent`` (a status query, a listing) lets a transport that can lose its
        connection run it again after a transient error."""

    @abc.abstractmethod
    def stream(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> AsyncIterator[str]:
        """Run ``command`` and yield its output (stdout and stderr) line by line, newline
        removed, as it comes (``tail -f`` a log); leaving the loop ends the command."""

    @abc.abstractmethod
    async def read_bytes(self, path: str) -> bytes:
        """The content of a file."""

    @abc.abstractmethod
    async def write_bytes(self, path: str, data: bytes) -> None:
        """Replace a file's content at once (a temporary name, then a rename)."""

    @abc.abstractmethod
    async def stat(self, path: str) -> FileStat | None:
        """The entry ``path`` (a link not followed), or None when there is none."""

    @abc.abstractmethod
    async def listdir(self, path: str) -> list[str]:
        """The names in a directory, sorted."""

    @abc.abstractmethod
    async def mkdir(self, path: str) -> None:
        """Make a directory and its parents (``mkdir -p``)."""

    @abc.abstractmethod
    async def put_file(self, local: Path, remote: str) -> None:
        """Copy a local file to the host."""

    @abc.abstractmethod
    async def get_file(self, remote: str, local: Path) -> None:
        """Copy a file of the host here."""

    @abc.abstractmethod
    async def put_tree(self, local: Path, remote: str) -> None:
        """Copy a local directory to the host as it is (symbolic links kept as links)."""

    @abc.abstractmethod
    async def get_tree(self, remote: str, local: Path) -> None:
        """Copy a directory of the host here (links kept; none may lead out of ``local``)."""

    @abc.abstractmethod
    async def put_dir(self, local: Path, remote: str) -> None:
        """Stage-in: copy the files of ``local`` (symbolic links followed) into ``remote``."""

    @abc.abstractmethod
    async def get(
        self,
        remote: str,
        patterns: Iterable[str],
        local: Path,
        exclude: Iterable[str] = (),
        *,
        refused: list[str] | None = None,
    ) -> list[str]:
        """Stage-out: copy what matches ``patterns`` below ``remote`` (minus ``exclude``) into
        ``local`` (see :func:`~._staging.copy_matching`; a warning for each entry left out,
        a link leading out of ``remote``, goes to ``refused``)."""

    async def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the connection."""


def _replace_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Write through ``write(tmp)`` to a temporary name beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_file(path: Path, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    _replace_atomically(path, write)


class LocalTransport(Transport):
    """This machine: commands run as child processes, files are copied."""

    where = "this machine"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str] | None:
        check_env(extra, "localhost")
        if not extra:
            return self.env
        return {**(self.env if self.env is not None else os.environ), **extra}

    async def _start(
        self,
        command: str,
        cwd: str | None,
        env: Mapping[str, str] | None,
        *,
        stdin: int,
        stdout: int,
        stderr: int,
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                cwd=cwd,
                env=self._env(env),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )
        except OSError as e:
            what = f"{cwd}: {e.strerror}" if cwd and e.filename == cwd else str(e)
            raise TransportError(
                f"cannot start /bin/sh on {self.where}: {what}", host="localhost", transient=False
            ) from None

    async def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Input = None,
        timeout: float | None = 120.0,
        idempotent: bool = False,
    ) -> CommandResult:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = await self._start(
            command,
            cwd,
            env,
            stdin=asyncio.subprocess.DEVNULL if data is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout)
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

    async def stream(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> AsyncIterator[str]:
        proc = await self._start(
            command,
            cwd,
            env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        try:
            async for line in proc.stdout:
                yield line.decode(errors="replace").rstrip("\r\n")
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def read_bytes(self, path: str) -> bytes:
        return await asyncio.to_thread(Path(path).read_bytes)

    async def write_bytes(self, path: str, data: bytes) -> None:
        await asyncio.to_thread(_write_file, Path(path), data)

    async def stat(self, path: str) -> FileStat | None:
        try:
            st = await asyncio.to_thread(os.lstat, path)
        except FileNotFoundError:
            return None
        return FileStat(st.st_size, st.st_mtime, st.st_mode)

    async def listdir(self, path: str) -> list[str]:
        return sorted(await asyncio.to_thread(os.listdir, path))

    async def mkdir(self, path: str) -> None:
        await asyncio.to_thread(Path(path).mkdir, parents=True, exist_ok=True)

    async def put_file(self, local: Path, remote: str) -> None:
        await asyncio.to_thread(_replace_atomically, Path(remote), lambda t: shutil.copy2(local, t))

    async def get_file(self, remote: str, local: Path) -> None:
        await asyncio.to_thread(_replace_atomically, local, lambda t: shutil.copy2(remote, t))

    async def put_tree(self, local: Path, remote: str) -> None:
        await asyncio.to_thread(shutil.copytree, local, remote, symlinks=True, dirs_exist_ok=True)

    async def get_tree(self, remote: str, local: Path) -> None:
        await asyncio.to_thread(shutil.copytree, remote, local, symlinks=True, dirs_exist_ok=True)

    async def put_dir(self, local: Path, remote: str) -> None:
        dst = Path(remote)
        if dst.resolve() == local.resolve():
            return
        await asyncio.to_thread(copy_tree, local, dst)

    async def get(
        self,
        remote: str,
        patterns: Iterable[str],
        local: Path,
        exclude: Iterable[str] = (),
        *,
        refused: list[str] | None = None,
    ) -> list[str]:
        src = Path(remote)
        if src.resolve() == local.resolve():
            return []
        return await asyncio.to_thread(
            functools.partial(copy_matching, refused=refused),
            src,
            list(patterns),
            local,
            list(exclude),
        )
