"""The parent of local tasks: one small process per :class:`~sharin.executors.LocalExecutor`.

It is started as a file (``python -I -S _supervisor.py``), imports only the standard library and
talks to the engine over a socket on its standard input, one JSON object a line:

engine → supervisor: ``{"id", "exe", "argv", "cwd", "env", "out", "err", "rc", "pids", "task"}``
    — start ``exe`` with ``argv`` in ``cwd`` (a session of its own, stdin ``/dev/null``, stdout
    and stderr appended to ``out`` and ``err``), no shell in between;
    ``{"limit": n}`` — from now on at most ``n`` of its tasks run at once: a request beyond
    that waits, in order, and starts the moment one of them has ended, without a round trip
    to the engine (none until the first ``limit``);
    ``{"withdraw": id}`` — the request ``id`` is not wanted any more: not started if it waits.
supervisor → engine: ``{"id", "pid", "start"}`` once it runs (or ``{"id", "error"}``; a
    request withdrawn before it started is answered ``{"id", "error", "withdrawn": true}``),
    then ``{"exited": pid, "status": wait_status}`` when it ended.

Before it answers, the supervisor records the task's pid and start time: one line of JSON
``{"task", "pid", "start", "time"}`` appended to the record file ``pids`` (one such file per
supervisor and log directory, so no file is made per task; a line is written whole, by one
``write`` of a file opened for appending, and a reader takes only lines that end). When the task
exits it writes the exit code to the file ``rc`` before anything else (a task killed by a signal
leaves none: how it ended is then told only to the engine that watches); that file is written
to a temporary name and renamed, so a reader sees all or nothing, and an exit code the
supervisor already wrote in that directory is instead a hard link to that file (the same
content, a new name at once, and much cheaper than a new file). So an engine that is killed learns nothing less: the next one finds the pid record
(``recover``), waits on the pid and reads the exit code (``attach``). When the engine's end of
the socket closes, the supervisor goes on until its last task has ended, then exits; a request
it reads or still holds after the engine died is not carried out (that engine never learnt of
the task, and the next one starts it).
"""

from __future__ import annotations

import collections
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time

#: signals Python or the supervisor ignore, which a task would otherwise inherit ignored
_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)


def _start_time(pid: int) -> int | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return int(data[data.rfind(b")") + 2 :].split()[19])
    except (IndexError, ValueError):
        return None


#: the record files of pids (path → a descriptor open for appending)
_records: dict[str, int] = {}


def _append_record(path: str, line: bytes) -> None:
    fd = _records.get(path)
    if fd is not None and os.fstat(fd).st_nlink == 0:  # removed (a clean): a new file
        os.close(fd)
        del _records[path]
        fd = None
    if fd is None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        _records[path] = fd
    os.write(fd, line)


#: empty files made ahead in the directories tasks' logs and records go to, while the supervisor
#: has nothing else to do: creating a file costs much more than renaming or linking one, and
#: that cost is then not paid between a request and the task's start, or a task's end and the
#: engine hearing of it. Named ``.spare-<supervisor pid>-<n>``; removed when the supervisor ends
_spares: dict[str, list[str]] = {}
#: spare files kept ready in each directory
_SPARES = 8
_made = [0]


def _take_spare(path: str) -> str | None:
    pool = _spares.get(os.path.dirname(path))
    if pool is None:
        _spares[os.path.dirname(path)] = []  # made from now on, when there is time
        return None
    return pool.pop() if pool else None


def _make_spare() -> bool:
    """Make one spare file where one is missing; False when none is."""
    for directory, pool in _spares.items():
        if len(pool) < _SPARES:
            _made[0] += 1
            spare = os.path.join(directory, f".spare-{os.getpid()}-{_made[0]}")
            try:
                os.close(os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
            except OSError:
                del _spares[directory]  # gone (cleaned), or not writable: no spares there
                return True
            pool.append(spare)
            return True
    return False


def _wanting() -> bool:
    return any(len(pool) < _SPARES for pool in _spares.values())


def _remove_spares() -> None:
    for pool in _spares.values():
        for spare in pool:
            try:
                os.unlink(spare)
            except OSError:
                pass
        pool.clear()


def _create(path: str) -> None:
    """Give ``path`` a spare file, unless it exists (a log a retry appends to): what the task's
    file actions then open is there already."""
    spare = _take_spare(path)
    if spare is None:
        return  # the file actions create it
    try:
        os.link(spare, path)
    except FileExistsError:
        _spares[os.path.dirname(path)].append(spare)  # still unused
        return
    except OSError:
        pass
    try:
        os.unlink(spare)
    except OSError:
        pass


def _write_record(path: str, text: str) -> None:
    tmp = _take_spare(path) or path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


#: (directory, exit code) → a descriptor of an exit-code file this supervisor wrote there
_codes: dict[tuple[str, int], int] = {}
#: this process's descriptors as a directory (``/proc/self/fd``), to link a file by descriptor
_fd_dir: list[int] = []


def _write_exit_code(path: str, code: int) -> None:
    """Write ``code`` to the file ``path`` as :func:`_write_record` would. Exit-code files with
    the same code in one directory are one file with several names (hard links to the first one
    this supervisor wrote, reached through its open descriptor, so whatever else now has its
    name does not matter): a link is made in a fraction of the time a new file takes, and
    appears all at once. Nothing ever writes to an exit-code file after it was written; its
    modification time is that of the last exit written to it."""
    key = (os.path.dirname(path), code)
    fd = _codes.get(key)
    if fd is not None and _fd_dir:
        try:
            os.link(str(fd), path, src_dir_fd=_fd_dir[0])
            # the file's time is when the last of its tasks ended, as if it had been written
            os.utime(fd)
            return
        except OSError:
            # its directory is gone, the name is taken, too many links: a file of its own
            del _codes[key]
            os.close(fd)
    _write_record(path, f"{code}\n")
    if not _fd_dir:
        try:
            _fd_dir.append(os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError:
            return  # no /proc: every exit code gets a file of its own
    if len(_codes) >= 64:
        for old in _codes.values():
            os.close(old)
        _codes.clear()
    try:
        _codes[key] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        pass


def _spawn(req: dict[str, object]) -> tuple[int, int | None]:
    exe = str(req["exe"])
    argv = [str(a) for a in req["argv"]]  # type: ignore[attr-defined]
    env = {str(k): str(v) for k, v in req["env"].items()}  # type: ignore[attr-defined]
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(req["out"]), flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(req["err"]), flags, 0o644),
    ]
    _create(str(req["out"]))
    _create(str(req["err"]))
    # single-threaded: the working directory is the child's for the instant of the spawn
    os.chdir(str(req["cwd"]))
    try:
        try:
            pid = os.posix_spawn(
                exe, argv, env, file_actions=actions, setsid=True, setsigdef=_DEFAULT_SIGNALS
            )
        except OSError as e:
            if e.errno != errno.ENOEXEC:
                raise
            # a script without a #! line runs in sh, as a shell runs it
            pid = os.posix_spawn(
                "/bin/sh",
                ["/bin/sh", *argv],
                env,
                file_actions=actions,
                setsid=True,
                setsigdef=_DEFAULT_SIGNALS,
            )
    finally:
        os.chdir("/")
    start = _start_time(pid)
    # the line json.dumps would write for {"task", "pid", "start", "time"}, put together here
    # (one of the supervisor's larger costs per task, through json's encoder)
    begun = "null" if start is None else str(start)
    record = f'{{"task": {_quote(str(req["task"]))}, "pid": {pid}, "start": {begun}, '
    record += f'"time": {time.time()!r}}}\n'
    _append_record(str(req["pids"]), record.encode())
    return pid, start


_quote = json.encoder.encode_basestring_ascii  # a str as json.dumps writes it


def main() -> int:
    engine = os.getppid()
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.close(devnull)
    sock.setblocking(False)
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sel.register(rfd, selectors.EVENT_READ)
    rc_files: dict[int, str] = {}
    #: requests waiting for one of the running tasks to end (at most ``limit`` run at once)
    held: collections.OrderedDict[int, dict[str, object]] = collections.OrderedDict()
    limit = 1 << 30
    buf = b""
    out = bytearray()
    connected = True

    def send_line(line: bytes) -> None:
        if connected:
            out.extend(line)

    def send(obj: dict[str, object]) -> None:
        send_line(json.dumps(obj).encode() + b"\n")

    def flush() -> None:
        nonlocal connected
        while out and connected:
            try:
                n = sock.send(out)
            except BlockingIOError:
                sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                return
            except OSError:
                connected = False
                out.clear()
                return
            del out[:n]
        if connected:
            sel.modify(sock, selectors.EVENT_READ)

    def reap() -> None:
        while True:
            # WNOWAIT: the exit code is on disk before the task is reaped, so whoever sees its
            # pid gone finds the exit code
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            rc_path = rc_files.pop(pid, None)
            # a task killed by a signal leaves no exit code, as it would in a shell wrapper
            # killed with it: an engine that was not watching treats it as lost
            if rc_path is not None and info.si_code == os.CLD_EXITED:
                try:
                    _write_exit_code(rc_path, info.si_status)
                except OSError:
                    pass  # its directory is gone (cleaned): the engine still hears it below
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            if rc_path is not None:  # a line of fixed shape, put together without json
                send_line(b'{"exited": %d, "status": %d}\n' % (pid, status))

    def start_held() -> None:
        while held and len(rc_files) < limit:
            rid, req = held.popitem(last=False)
            if os.getppid() != engine:
                # the engine died after it asked: it never heard of this task, so the next
                # engine starts it; starting it here too would run it twice
                held.clear()
                return
            try:
                pid, start = _spawn(req)
            except OSError as e:
                send({"id": req["id"], "error": f"{e.strerror or e} ({e.filename or ''})"})
                continue
            rc_files[pid] = str(req["rc"])
            begun = b"null" if start is None else b"%d" % start
            send_line(b'{"id": %d, "pid": %d, "start": %s}\n' % (rid, pid, begun))

    while connected or rc_files:
        ready = sel.select(0 if connected and _wanting() else None)
        if not ready and connected:
            _make_spare()  # nothing else to do just now
        for key, events in ready:
            if key.fileobj is sock:
                if events & selectors.EVENT_WRITE:
                    flush()
                if not events & selectors.EVENT_READ or not connected:
                    continue
                try:
                    chunk = sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    connected = False
                    sel.unregister(sock)
                    out.clear()
                    held.clear()  # never started: the next engine starts them
                    continue
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    req = json.loads(line)
                    if "limit" in req:
                        limit = max(0, int(req["limit"]))
                    elif "withdraw" in req:
                        rid = int(req["withdraw"])
                        if held.pop(rid, None) is not None:
                            send(
                                {
                                    "id": rid,
                                    "error": "withdrawn before it started",
                                    "withdrawn": True,
                                }
                            )
                    else:
                        held[int(req["id"])] = req
                start_held()
            else:
                try:
                    while os.read(rfd, 512):
                        pass
                except BlockingIOError:
                    pass
            reap()
        reap()
        if connected:
            start_held()  # a task ended: the next one starts at once
        flush()
    _remove_spares()
    return 0


if __name__ == "__main__":
    sys.exit(main())
