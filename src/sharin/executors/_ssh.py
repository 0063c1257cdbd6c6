"""A host reached over SSH (asyncssh), and the process-wide pool of connections.

Every caller that names the same host shares one connection (:data:`POOL`): it is opened on first
use, kept alive by keep-alive messages, opened anew after ``renewInterval`` minutes when idle, and
re-opened with back-off when it dropped. At most ``maxSessions`` channels are open at once (one is
kept for SFTP). ``~/.ssh/config`` (HostName, User, Port, IdentityFile, ProxyJump ...), ssh-agent
and known_hosts are honoured as OpenSSH does. Passphrases, passwords and one-time codes come from
an ``ask(prompt, echo)`` callback the caller gives; they are never stored.

Operations that can be repeated without harm (stat, listdir, read, write of a whole file, status
queries run with ``idempotent=True``) are retried on a transient network error until
``retry_for`` seconds have passed; anything else is reported as one :class:`TransportError`
naming the host and what to check.
"""

from __future__ import annotations

import asyncio
import io
import os
import posixpath
import secrets
import shlex
import shutil
import socket
import tarfile
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import asyncssh

from ..errors import ExecutorError, SharinError, TransportError
from ..model import HostConfig
from ._staging import copy_matching, files_to_send, link_escapes, refused_link, select
from ._transport import CommandResult, FileStat, Input, Transport, check_env

__all__ = ["POOL", "Ask", "HostCheck", "SSHPool", "SSHTransport", "check_host"]

#: ``ask(prompt, echo)``: the answer to a passphrase, password or one-time-code prompt
Ask = Callable[[str, bool], str]

T = TypeVar("T")

_CHUNK = 1 << 16
#: a host not reached yet in this process is tried for this long (a refusal or an unreachable
#: address there is more likely a wrong entry than an outage), and once a caller gave up on it
#: the next callers fail at once for _UNREACHED_HOLD seconds instead of each waiting again
_FIRST_CONTACT = 10.0
_UNREACHED_HOLD = 30.0


# ------------------------------------------------------------------------------------ errors
def _describe(e: BaseException, cfg: HostConfig) -> TransportError:
    """One clear error for what asyncssh or the network said."""
    name = cfg.name
    addr = f"{cfg.user + '@' if cfg.user else ''}{cfg.host}:{cfg.port}"
    if isinstance(e, TransportError):
        return e
    if isinstance(e, asyncssh.HostKeyNotVerifiable):
        known = cfg.known_hosts or "~/.ssh/known_hosts"
        return TransportError(
            f"the key {cfg.host} presented is not the one in {known}, or it is not there "
            f"({e.reason}); if the host was reinstalled, check its new key with its "
            f"administrator and replace the old line (ssh-keygen -R {cfg.host}); if it is new, "
            f"connect once with `ssh {cfg.host}` to record it",
            host=name,
            transient=False,
        )
    if isinstance(e, asyncssh.PermissionDenied):
        key = f"the key {cfg.key_file}" if cfg.key_file else "your keys (ssh-agent, ~/.ssh)"
        return TransportError(
            f"{addr} refused the login ({e.reason}); check the user name, that {key} is in "
            "~/.ssh/authorized_keys on the host, or the password or code you gave",
            host=name,
            transient=False,
        )
    if isinstance(e, asyncssh.KeyEncryptionError | asyncssh.KeyImportError):
        return TransportError(
            f"cannot use the key {cfg.key_file or '(default)'}: {e}; check the file and its "
            "passphrase",
            host=name,
            transient=False,
        )
    if isinstance(e, asyncssh.ConfigParseError):
        return TransportError(
            f"~/.ssh/config cannot be read: {e}; fix the line it names", host=name, transient=False
        )
    if isinstance(e, asyncssh.ChannelOpenError):
        return TransportError(
            f"{addr} refused a new session ({e.reason}); lower maxSessions in remotehost.json "
            "to the server's MaxSessions",
            host=name,
            transient=True,
        )
    if isinstance(e, asyncssh.DisconnectError):
        return TransportError(
            f"the connection to {addr} was lost ({e.reason or 'closed'}); check that the host "
            "is up and reachable, then try again",
            host=name,
            transient=True,
        )
    if isinstance(e, socket.gaierror):
        return TransportError(
            f"the host name {cfg.host!r} is not known here ({e.strerror}); check `host` in "
            "remotehost.json or HostName in ~/.ssh/config",
            host=name,
            transient=False,
        )
    if isinstance(e, TimeoutError):
        return TransportError(
            f"{addr} did not answer within {cfg.ready_timeout:g} s; check that the host is up "
            "and reachable from here (network, VPN, ProxyJump), or raise readyTimeout",
            host=name,
            transient=True,
        )
    if isinstance(e, OSError) and e.filename:
        return TransportError(
            f"cannot read {e.filename}: {e.strerror}; check keyFile and knownHostsFile in "
            "remotehost.json, and ~/.ssh/config",
            host=name,
            transient=False,
        )
    if isinstance(e, OSError):
        return TransportError(
            f"cannot connect to {addr} ({e.strerror or e}); check that the host is up and "
            "reachable from here (host name, port, network), then try again",
            host=name,
            transient=True,
        )
    if isinstance(e, asyncssh.Error):
        return TransportError(f"{addr}: {e.reason}", host=name, transient=False)
    return TransportError(f"{addr}: {e}", host=name, transient=False)


_NETWORK = (OSError, asyncssh.Error, TimeoutError)


def _sftp_error(e: asyncssh.SFTPError, cfg: HostConfig, what: str, path: str) -> TransportError:
    return TransportError(
        f"cannot {what} {path}: {e.reason}; check the path and its permissions on the host",
        host=cfg.name,
        transient=False,
    )


# ------------------------------------------------------------------------------------ the pool
class _Client(asyncssh.SSHClient):
    """Answers keyboard-interactive and password prompts through ``ask``."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._conn: asyncssh.SSHClientConnection | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        self._link.lost(self._conn)

    def kbdint_auth_requested(self) -> str | None:
        return "" if self._link.ask is not None else None

    async def kbdint_challenge_received(  # type: ignore[override]
        self, name: str, instructions: str, lang: str, prompts: list[tuple[str, bool]]
    ) -> list[str] | None:
        ask = self._link.ask
        if ask is None:
            return None
        head = "\n".join(x for x in (name, instructions) if x)
        answers = []
        for i, (prompt, echo) in enumerate(prompts):
            shown = f"{head}\n{prompt}" if head and i == 0 else prompt
            answers.append(await asyncio.to_thread(ask, shown, echo))
        return answers

    def password_auth_requested(self) -> Awaitable[str] | None:
        ask = self._link.ask
        if ask is None:
            return None
        cfg = self._link.cfg
        return asyncio.to_thread(ask, f"password for {cfg.user or ''}@{cfg.host}: ", False)


class _Link:
    """One host's shared connection, its SFTP session and its channel limit."""

    def __init__(self, cfg: HostConfig, ask: Ask | None, traffic: list[int] | None = None) -> None:
        self.cfg = cfg
        self.ask = ask
        #: bytes of file content sent and received (the pool's count for the host)
        self.traffic = traffic if traffic is not None else [0, 0]
        self.loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()
        self.sftp_lock = asyncio.Lock()
        self.channels = asyncio.Semaphore(max(1, cfg.max_sessions - 1))  # one for SFTP
        self.conn: asyncssh.SSHClientConnection | None = None
        self.sftp: asyncssh.SFTPClient | None = None
        self.sftp_of: asyncssh.SSHClientConnection | None = None
        self.opened = 0  #: connections opened so far
        self.opened_at = 0.0
        self.busy = 0
        self.failures = 0
        self.next_try = 0.0
        self.unreached_until = 0.0  #: never reached, and given up on until then
        self.last_error: Exception | None = None

    def lost(self, conn: asyncssh.SSHClientConnection | None) -> None:
        """The connection ``conn`` closed (a renewed one's old connection changes nothing)."""
        if conn is self.conn:
            self.conn = None
            self.sftp = None

    def drop(self, conn: asyncssh.SSHClientConnection | None) -> None:
        """Forget ``conn`` (a broken connection): the next call opens another."""
        if conn is not None and conn is self.conn:
            self.conn = None
            self.sftp = None
            conn.abort()

    def _passphrase(self, filename: str) -> str | None:
        """Asked (in asyncssh's worker thread) only for a key that is encrypted."""
        try:
            asyncssh.read_private_key(filename)
            return None
        except asyncssh.KeyImportError:
            assert self.ask is not None
            return self.ask(f"passphrase for {filename}: ", False)

    async def _open(self) -> asyncssh.SSHClientConnection:
        cfg = self.cfg
        options: dict[str, Any] = {
            "connect_timeout": cfg.ready_timeout,
            "keepalive_interval": cfg.keepalive_interval,
            "keepalive_count_max": 3,
        }
        if cfg.user:
            options["username"] = cfg.user
        if cfg.port != 22:
            options["port"] = cfg.port
        if cfg.key_file:
            options["client_keys"] = [os.path.expanduser(cfg.key_file)]
        if cfg.known_hosts:
            options["known_hosts"] = os.path.expanduser(cfg.known_hosts)
        if self.ask is not None:
            options["passphrase"] = self._passphrase
        else:
            options["kbdint_auth"] = False
            options["password_auth"] = False
        return await asyncssh.connect(cfg.host, client_factory=lambda: _Client(self), **options)

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self.lock:
            conn = self.conn
            now = self.loop.time()
            if conn is not None and not conn.is_closed():
                renew = self.cfg.renew_interval * 60
                if not (renew and self.busy == 0 and now - self.opened_at > renew):
                    return conn
                self.drop(conn)
            if self.opened == 0 and self.last_error is not None and now < self.unreached_until:
                raise self.last_error
            wait = self.next_try - now
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                conn = await self._open()
            except BaseException as e:
                if isinstance(e, Exception):
                    self.last_error = e
                self.failures += 1
                self.next_try = self.loop.time() + min(0.25 * 2**self.failures, 8.0)
                raise
            self.failures = 0
            self.conn, self.sftp = conn, None
            self.opened += 1
            self.opened_at = self.loop.time()
            return conn

    async def sftp_client(self) -> asyncssh.SFTPClient:
        conn = await self.connection()
        async with self.sftp_lock:
            if self.sftp is None or self.sftp_of is not conn:
                self.sftp = await conn.start_sftp_client()
                self.sftp_of = conn
            return self.sftp

    async def close(self) -> None:
        conn, self.conn, self.sftp = self.conn, None, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()


class SSHPool:
    """One connection per host for the whole process (per event loop)."""

    def __init__(self) -> None:
        self._links: dict[tuple[Any, ...], _Link] = {}
        self._traffic: dict[tuple[Any, ...], list[int]] = {}

    @staticmethod
    def _key(cfg: HostConfig) -> tuple[Any, ...]:
        return (cfg.name, cfg.host, cfg.port, cfg.user, cfg.key_file, cfg.known_hosts)

    def link(self, cfg: HostConfig, ask: Ask | None = None) -> _Link:
        loop = asyncio.get_running_loop()
        key = self._key(cfg)
        link = self._links.get(key)
        if link is None or link.loop is not loop or link.loop.is_closed():
            traffic = self._traffic.setdefault(key, [0, 0])
            link = self._links[key] = _Link(cfg, ask, traffic)
        elif ask is not None and link.ask is None:
            link.ask = ask
        return link

    def traffic(self, cfg: HostConfig) -> tuple[int, int]:
        """Bytes of file content sent to and received from the host by this process (files,
        trees and staging; commands and their output not counted)."""
        sent, received = self._traffic.get(self._key(cfg), (0, 0))
        return sent, received

    def connections_opened(self, cfg: HostConfig) -> int:
        """How many connections to the host were opened (in this event loop)."""
        link = self._links.get(self._key(cfg))
        return link.opened if link is not None else 0

    async def close(self) -> None:
        """Close every connection of the running event loop."""
        loop = asyncio.get_running_loop()
        for key, link in list(self._links.items()):
            if link.loop is loop:
                del self._links[key]
                await link.close()


#: the process-wide pool
POOL = SSHPool()


# ------------------------------------------------------------------------------------ tar pipes
class _ToChannel(io.RawIOBase):
    """A file a worker thread writes a tar stream to; it goes to a channel's stdin."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        writer: asyncssh.SSHWriter[bytes],
        traffic: list[int] | None = None,
    ) -> None:
        self.loop, self.writer = loop, writer
        self.traffic = traffic if traffic is not None else [0, 0]

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        asyncio.run_coroutine_threadsafe(self._send(data), self.loop).result()
        self.traffic[0] += len(data)
        return len(data)

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class _FromChannel(io.RawIOBase):
    """A file a worker thread reads a tar stream from; it comes from a channel's stdout."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        reader: asyncssh.SSHReader[bytes],
        traffic: list[int] | None = None,
    ) -> None:
        self.loop, self.reader = loop, reader
        self.traffic = traffic if traffic is not None else [0, 0]

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        size = n if n and n > 0 else _CHUNK
        data = asyncio.run_coroutine_threadsafe(self.reader.read(size), self.loop).result()
        self.traffic[1] += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _write_tar(out: IO[bytes], items: list[tuple[str, Path]], *, follow: bool) -> None:
    with tarfile.open(fileobj=out, mode="w|", dereference=follow, format=tarfile.PAX_FORMAT) as tar:
        for rel, path in items:
            tar.add(path, arcname=rel.rstrip("/") or ".", recursive=False)


def _tree_items(root: Path) -> list[tuple[str, Path]]:
    items: list[tuple[str, Path]] = [(".", root)]
    for d, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(d, root)
        pre = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        items += [(pre + n, Path(d) / n) for n in sorted([*dirs, *files])]
    return items


def _read_tar(src: IO[bytes], dst: Path, refused: list[str] | None = None) -> None:
    """Unpack a stream into ``dst`` with tar's ``data`` filter (a link leading out of the
    archive's directory stops it); with ``refused``, such a link is left out instead and
    named there, and the rest is unpacked."""
    if refused is None:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            tar.extractall(dst, filter="data")
        return

    def keep(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        if member.issym() and link_escapes(member.name, member.linkname):
            refused.append(refused_link(member.name, member.linkname))
            return None
        try:
            return tarfile.data_filter(member, path)
        except tarfile.FilterError as e:
            refused.append(f"{member.name!r} was not copied back: {e}")
            return None

    with tarfile.open(fileobj=src, mode="r|") as tar:
        tar.extractall(dst, filter=keep)


# ------------------------------------------------------------------------------------ transport
class SSHTransport(Transport):
    """A remote host's shell and files over the pool's shared connection."""

    def __init__(
        self,
        cfg: HostConfig,
        *,
        ask: Ask | None = None,
        pool: SSHPool | None = None,
        retry_for: float = 60.0,
        op_timeout: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.ask = ask
        self.pool = pool or POOL
        self.retry_for = retry_for
        self.op_timeout = op_timeout
        self.where = f"{cfg.user + '@' if cfg.user else ''}{cfg.host}:{cfg.port}"

    def _link(self) -> _Link:
        return self.pool.link(self.cfg, self.ask)

    async def _retrying(
        self,
        op: Callable[[_Link], Awaitable[T]],
        *,
        idempotent: bool,
        timeout: float | None = None,
    ) -> T:
        """Run ``op``; a transient error before the operation started (no connection, no
        channel) is always tried again, one during it only when ``idempotent``."""
        link = self._link()
        loop = asyncio.get_running_loop()
        budget = self.retry_for
        if not link.opened:
            given_up = loop.time() < link.unreached_until
            budget = 0.0 if given_up else min(budget, _FIRST_CONTACT)
        deadline = loop.time() + budget
        delay = 0.25
        while True:
            started = False
            conn = None
            try:
                conn = await link.connection()
                started = True
                if timeout is None:
                    return await op(link)
                return await asyncio.wait_for(op(link), timeout)
            except SharinError:
                raise
            except asyncssh.SFTPError:
                raise
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as e:
                raise _describe(e, self.cfg) from None
            except _NETWORK as e:
                if isinstance(e, TimeoutError) and started:
                    link.drop(conn)  # a connection that hangs is given up
                elif conn is not None and conn.is_closed():
                    link.drop(conn)
                err = _describe(e, self.cfg)
                if isinstance(e, asyncssh.ChannelOpenError):
                    started = False  # nothing ran
                retry = err.transient and (idempotent or not started)
                if not retry or loop.time() + delay > deadline:
                    if not link.opened:
                        link.unreached_until = loop.time() + _UNREACHED_HOLD
                    raise err from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    # -------------------------------------------------------------- commands
    @staticmethod
    def _script(command: str, cwd: str | None, env: Mapping[str, str] | None) -> str:
        lines = [f"export {k}={shlex.quote(v)}" for k, v in (env or {}).items()]
        if cwd:
            lines.append(f"cd {shlex.quote(cwd)} || exit 1")
        lines.append(command)
        return "/bin/sh -c " + shlex.quote("\n".join(lines))

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
        check_env(env, self.cfg.name)
        script = self._script(command, cwd, env)
        data = stdin.encode() if isinstance(stdin, str) else stdin

        async def op(link: _Link) -> CommandResult:
            conn = await link.connection()
            async with link.channels:
                link.busy += 1
                proc = None
                try:
                    proc = await conn.create_process(script, encoding=None)
                    if data:
                        proc.stdin.write(data)
                    proc.stdin.write_eof()
                    try:
                        done = await asyncio.wait_for(proc.wait(), timeout)
                    except TimeoutError:
                        try:
                            proc.send_signal("KILL")
                        except (OSError, asyncssh.Error):
                            pass
                        word = command.split()[0] if command.split() else repr(command)
                        raise TransportError(
                            f"{word} did not answer within {timeout:g} s on {self.where}",
                            host=self.cfg.name,
                            transient=True,
                        ) from None
                finally:
                    link.busy -= 1
                    await _closed(proc)  # the server counts a session until it is closed
            code = done.exit_status
            if code is None and done.exit_signal is None:
                # the session ended with neither an exit status nor a signal: the host's end
                # of the connection went away while the command ran, which may or may not
                # have finished
                raise asyncssh.ConnectionLost("the session ended without an exit status")
            return CommandResult(
                code if code is not None and code >= 0 else -1,
                _text(done.stdout),
                _text(done.stderr),
            )

        return await self._retrying(op, idempotent=idempotent)

    async def stream(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> AsyncIterator[str]:
        check_env(env, self.cfg.name)
        # stderr joins stdout on the host, so that the lines keep their order
        script = self._script(f"exec 2>&1\n{command}", cwd, env)
        link = self._link()

        async def start(lk: _Link) -> asyncssh.SSHClientProcess[bytes]:
            conn = await lk.connection()
            await lk.channels.acquire()
            try:
                return await conn.create_process(script, encoding=None, stderr=asyncssh.STDOUT)
            except BaseException:
                lk.channels.release()
                raise

        proc = await self._retrying(start, idempotent=True)
        link.busy += 1
        try:
            proc.stdin.write_eof()
            while True:
                try:
                    line = await proc.stdout.readline()
                except _NETWORK as e:
                    raise _describe(e, self.cfg) from None
                if not line:
                    break
                yield _text(line).rstrip("\r\n")
        finally:
            link.busy -= 1
            await _closed(proc)
            link.channels.release()

    # -------------------------------------------------------------- files (SFTP)
    async def _sftp(
        self, what: str, path: str, op: Callable[[asyncssh.SFTPClient], Awaitable[T]]
    ) -> T:
        async def run(link: _Link) -> T:
            return await op(await link.sftp_client())

        try:
            return await self._retrying(run, idempotent=True, timeout=self.op_timeout)
        except asyncssh.SFTPError as e:
            raise _sftp_error(e, self.cfg, what, path) from None

    async def read_bytes(self, path: str) -> bytes:
        async def op(sftp: asyncssh.SFTPClient) -> bytes:
            async with sftp.open(path, "rb") as f:
                return cast(bytes, await f.read())

        data = await self._sftp("read", path, op)
        self._link().traffic[1] += len(data)
        return data

    async def write_bytes(self, path: str, data: bytes) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            tmp = _temporary(path)
            try:
                async with sftp.open(tmp, "wb") as f:
                    await f.write(data)
                await sftp.posix_rename(tmp, path)
            except BaseException:
                await _remove_quietly(sftp, tmp)
                raise

        await self._sftp("write", path, op)
        self._link().traffic[0] += len(data)

    async def stat(self, path: str) -> FileStat | None:
        async def op(sftp: asyncssh.SFTPClient) -> FileStat | None:
            try:
                a = await sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                return None
            return FileStat(a.size or 0, float(a.mtime or 0), a.permissions or 0)

        return await self._sftp("stat", path, op)

    async def listdir(self, path: str) -> list[str]:
        async def op(sftp: asyncssh.SFTPClient) -> list[str]:
            names = await sftp.listdir(path)
            return sorted(str(n) for n in names if n not in (".", ".."))

        return await self._sftp("list", path, op)

    async def mkdir(self, path: str) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(path, exist_ok=True)

        await self._sftp("make the directory", path, op)

    async def put_file(self, local: Path, remote: str) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            tmp = _temporary(remote)
            try:
                await sftp.put(str(local), tmp, preserve=True)
                await sftp.posix_rename(tmp, remote)
            except BaseException:
                await _remove_quietly(sftp, tmp)
                raise

        await self._sftp("write", remote, op)
        self._link().traffic[0] += (await asyncio.to_thread(local.stat)).st_size

    async def get_file(self, remote: str, local: Path) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".part", dir=local.parent)
            os.close(fd)
            try:
                await sftp.get(remote, tmp, preserve=True)
                os.replace(tmp, local)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

        await self._sftp("read", remote, op)
        self._link().traffic[1] += (await asyncio.to_thread(local.stat)).st_size

    async def _walk(self, root: str) -> list[tuple[str, bool]]:
        """``(relative path, is_dir)`` below ``root``, parents first; links are not followed."""

        async def op(sftp: asyncssh.SFTPClient) -> list[tuple[str, bool]]:
            out: list[tuple[str, bool]] = []
            todo = [""]
            while todo:
                rel = todo.pop(0)
                names = await sftp.readdir(posixpath.join(root, rel) if rel else root)
                for n in sorted(names, key=lambda x: str(x.filename)):
                    name = str(n.filename)
                    if name in (".", ".."):
                        continue
                    child = f"{rel}/{name}" if rel else name
                    is_dir = n.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
                    out.append((child, is_dir))
                    if is_dir:
                        todo.append(child)
            return out

        try:
            return await self._sftp("list", root, op)
        except TransportError:
            if await self.stat(root) is None:
                return []
            raise

    # -------------------------------------------------------------- trees (tar)
    async def _tar_in(self, remote: str, items: list[tuple[str, Path]], *, follow: bool) -> None:
        command = _unpack_beside(remote)
        script = self._script(command, None, None)
        loop = asyncio.get_running_loop()

        async def op(link: _Link) -> None:
            conn = await link.connection()
            async with link.channels:
                proc = await conn.create_process(script, encoding=None)
                try:
                    out = _ToChannel(loop, proc.stdin, link.traffic)
                    try:
                        await asyncio.to_thread(
                            _write_tar, cast(IO[bytes], out), items, follow=follow
                        )
                        proc.stdin.write_eof()
                    except OSError as e:
                        if e.filename:  # a local file could not be read
                            raise ExecutorError(
                                f"{e.filename}: {e.strerror}; it was not sent"
                            ) from None
                        # the host's end closed: its tar says why, below
                    except asyncssh.Error:
                        pass
                    done = await asyncio.wait_for(proc.wait(), self.op_timeout)
                finally:
                    await _closed(proc)
            if done.exit_status != 0:
                raise TransportError(
                    f"tar could not unpack into {remote}: {_text(done.stderr).strip()}; check "
                    "the path, its permissions and the free space on the host",
                    host=self.cfg.name,
                    transient=False,
                )

        await self._retrying(op, idempotent=True)

    async def _tar_out(
        self, remote: str, names: list[str] | None, local: Path, refused: list[str] | None = None
    ) -> None:
        q = shlex.quote(remote)
        command = f"tar -cf - -C {q} --null -T -" if names is not None else f"tar -cf - -C {q} ."
        script = self._script(command, None, None)
        loop = asyncio.get_running_loop()
        listing = b"".join(n.encode() + b"\0" for n in names or [])

        async def op(link: _Link) -> None:
            conn = await link.connection()
            async with link.channels:
                proc = await conn.create_process(script, encoding=None)
                proc.stdin.write(listing)
                proc.stdin.write_eof()
                src = _FromChannel(loop, proc.stdout, link.traffic)
                failed: BaseException | None = None
                try:
                    try:
                        await asyncio.to_thread(_read_tar, cast(IO[bytes], src), local, refused)
                    except (tarfile.TarError, OSError) as e:
                        failed = e
                    # after a failure, what the host's tar still sends is not waited for long
                    limit = self.op_timeout if failed is None else 2.0
                    try:
                        done = await asyncio.wait_for(proc.wait(), limit)
                        err = done.stderr
                        status = done.exit_status
                    except TimeoutError:
                        err, status = b"", 0
                finally:
                    await _closed(proc)
            if status != 0:
                raise TransportError(
                    f"tar could not pack {remote}: {_text(err).strip()}; check the path and its "
                    "permissions on the host",
                    host=self.cfg.name,
                    transient=False,
                )
            if isinstance(failed, tarfile.FilterError):
                raise ExecutorError(
                    f"{remote}: {failed}; a link leading out of the directory was not copied back"
                )
            if failed is not None:
                raise ExecutorError(f"{local}: {failed}; check the directory and the free space")

        await self._retrying(op, idempotent=True)

    async def put_tree(self, local: Path, remote: str) -> None:
        items = await asyncio.to_thread(_tree_items, local)
        await self._tar_in(remote, items, follow=False)

    async def get_tree(self, remote: str, local: Path) -> None:
        await asyncio.to_thread(local.mkdir, parents=True, exist_ok=True)
        await self._tar_out(remote, None, local)

    async def put_dir(self, local: Path, remote: str) -> None:
        items = await asyncio.to_thread(files_to_send, local)
        await self._tar_in(remote, items, follow=True)

    async def get(
        self,
        remote: str,
        patterns: Iterable[str],
        local: Path,
        exclude: Iterable[str] = (),
        *,
        refused: list[str] | None = None,
    ) -> list[str]:
        pats, excl = list(patterns), list(exclude)
        chosen = select(await self._walk(remote), pats, excl)
        if not chosen:
            return []
        await asyncio.to_thread(local.mkdir, parents=True, exist_ok=True)
        staging = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".sharin-get-", dir=local))
        try:
            # everything arrives in the staging directory first: a transfer that breaks
            # changes no file here; then each file is renamed into place
            await self._tar_out(remote, chosen, staging, refused)
            return await asyncio.to_thread(
                copy_matching, staging, pats, local, excl, move=True, refused=refused
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    async def close(self) -> None:
        """The connection is the pool's: it stays open for other callers."""


async def _closed(proc: asyncssh.SSHClientProcess[bytes] | None) -> None:
    """Close a channel and wait (briefly) until the server has closed it too."""
    if proc is None:
        return
    proc.close()
    try:
        await asyncio.wait_for(proc.wait_closed(), 5.0)
    except (TimeoutError, OSError, asyncssh.Error):
        pass


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data or "")


def _unpack_beside(remote: str) -> str:
    """A shell command unpacking a tar stream from stdin into ``remote`` so that no file is
    ever half-written under its final name: into a directory beside it first, which becomes
    ``remote`` by one rename when there was none, or whose files are renamed one by one into
    it; a broken stream leaves ``remote`` as it was."""
    q, tmp = shlex.quote(remote), shlex.quote(_temporary(remote.rstrip("/") or "/"))
    merge = (
        f"cd {tmp} && find . -mindepth 1 -type d -exec sh -c "
        "'for d; do mkdir -p -- \"$0/$d\" || exit 1; done' "
        f"{q} {{}} + && find . -mindepth 1 ! -type d -exec sh -c "
        '\'for f; do mv -f -- "$f" "$0/$f" || exit 1; done\' '
        f"{q} {{}} +"
    )
    return (
        f"mkdir -p -- {tmp} && tar -xf - -C {tmp} && "
        f"if [ -d {q} ]; then ({merge}); else mv -- {tmp} {q}; fi; "
        f"rc=$?; cd / && rm -rf -- {tmp}; exit $rc"
    )


def _temporary(path: str) -> str:
    d, name = posixpath.split(path)
    return posixpath.join(d, f".{name}.{secrets.token_hex(4)}.part")


async def _remove_quietly(sftp: asyncssh.SFTPClient, path: str) -> None:
    try:
        await asyncio.shield(sftp.remove(path))
    except (asyncssh.Error, OSError, asyncio.CancelledError):
        pass


# ------------------------------------------------------------------------------------ host test
#: the commands whose presence says which scheduler a host has
SCHEDULER_COMMANDS = ("sbatch", "qsub", "bsub", "pjsub")


@dataclass(frozen=True)
class HostCheck:
    """What ``sharin host test`` found: the round trip of ``true``, and the scheduler commands
    on the login shell's PATH (command → its path)."""

    host: str
    where: str
    round_trip: float
    connect_time: float
    commands: dict[str, str]


async def check_host(cfg: HostConfig, *, ask: Ask | None = None) -> HostCheck:
    """Connect (through the pool), run ``true`` and look for the scheduler commands."""
    loop = asyncio.get_running_loop()
    transport: Transport
    if cfg.transport == "local":
        from ._transport import LocalTransport

        transport = LocalTransport()
    else:
        transport = SSHTransport(cfg, ask=ask, retry_for=min(10.0, cfg.ready_timeout))
    started = loop.time()
    first = await transport.run("true", timeout=cfg.ready_timeout + 30, idempotent=True)
    connected = loop.time() - started
    started = loop.time()
    first = await transport.run("true", timeout=30, idempotent=True)
    rtt = loop.time() - started
    if first.returncode != 0:
        raise TransportError(
            f"`true` failed there (exit {first.returncode}: {first.stderr.strip()}); check the "
            "login shell's start-up files",
            host=cfg.name,
            transient=False,
        )
    probe = "; ".join(f"command -v {c} || true" for c in SCHEDULER_COMMANDS)
    found = await transport.run(probe, timeout=30, idempotent=True)
    commands = {}
    for line in found.stdout.splitlines():
        path = line.strip()
        name = posixpath.basename(path)
        if name in SCHEDULER_COMMANDS:
            commands[name] = path
    return HostCheck(cfg.name, transport.where, rtt, connected, commands)
