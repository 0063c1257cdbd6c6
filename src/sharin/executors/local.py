"""Run task scripts on this machine.

Each attempt's script is started directly, with no shell in between (only a ``sourceScript``
needs ``/bin/sh`` to source it, which then ``exec``s the script), by a small supervisor process
that the executor starts at its first task (:mod:`sharin.executors._supervisor`): it is the
tasks' parent, records each task's pid and start time before the engine hears of it and writes
its exit code to a file before anything else when the task ends. The engine learns of both over
one socket registered with the event loop (no polling, no thread per task).

So an engine started after a crash learns everything the old one would have: a task whose handle
was journaled is re-attached by :meth:`LocalExecutor.attach`, which waits on the pid (checked
against its start time, so a reused pid is not mistaken for it) and reads the exit-code file; a
task started in the instant before its handle could be journaled (the journal says ``queued``)
is found by :meth:`LocalExecutor.recover` from the supervisor's pid record (a line in the
supervisor's record file ``supervisor-<pid>.pids`` in the run's log directory) and re-attached,
not started again. The supervisor outlives a killed engine until its last task has ended. If the
supervisor itself is killed, its tasks run on: they are still found by pid and start time, but
how they ended is not known (a re-attaching engine treats them as lost, the running engine as
failed). Tasks run in sessions of their own; :meth:`LocalExecutor.cancel` signals the process
group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from ..engine import Executor, JobHandle, JobResult, JobStatus, TaskSpec
from ..engine._launch import helper_argv
from ..errors import ExecutorError
from ..model._paths import Bounds, UnsafePathError, find_root, real_inside

__all__ = ["LocalExecutor", "prepare_script", "prepare_task_script", "task_script"]

#: the script after OPEN-WHEEL's ``sourceScript`` (``$1``, a file in the task's directory)
_SOURCING = '. ./"$1" || exit $?; exec ./"$2"'

_SUPERVISOR = str(Path(__file__).with_name("_supervisor.py"))

#: for the crash tests: the key of a task after whose spawn the engine kills itself (SIGKILL),
#: before its handle can be journaled
_KILL_AFTER_SPAWN = "SHARIN_TEST_KILL_AFTER_SPAWN"

#: seconds :meth:`LocalExecutor.close` waits for an idle supervisor to exit
_CLOSE_WAIT = 2.0

#: seconds :meth:`LocalExecutor.cancel` waits after SIGTERM before it sends SIGKILL
_CANCEL_GRACE = 5.0


_msgspec_encode = msgspec.json.Encoder().encode


def _encode(request: dict[str, Any]) -> bytes:
    """A request as one line of JSON: by msgspec (several times faster than json), or by json
    when a text holds what UTF-8 cannot (an environment value of undecodable bytes, kept as
    surrogates), which json escapes and the supervisor reads back unchanged."""
    try:
        return _msgspec_encode(request)
    except UnicodeEncodeError:
        return json.dumps(request).encode()


def _proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_rc(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_pid_record(path: Path) -> tuple[int, int | None] | None:
    try:
        words = path.read_text().split()
    except OSError:
        return None
    try:
        return int(words[0]), (None if words[1] == "None" else int(words[1]))
    except (IndexError, ValueError):
        return None


def _drop_records(log_dir: Path, task: str) -> None:
    """Remove the lines of ``task`` from the record files in ``log_dir`` (each rewritten
    through a temporary file and a rename: a reader sees the old file or the new one). Their
    supervisors append no more: their engines are gone."""
    for path in _record_files(log_dir):
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except OSError:
            continue
        keep = [x for x in lines[:-1] if _task_of(x) != task]
        if len(keep) == len(lines) - 1:
            continue
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(b"".join(x + b"\n" for x in keep))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _task_of(line: bytes) -> str | None:
    try:
        return str(json.loads(line)["task"])
    except (ValueError, KeyError, TypeError):
        return None


def _pid_path(spec: TaskSpec) -> Path:
    """Where a supervisor before the record files kept an attempt's pid record."""
    return spec.rc_path.with_suffix(".pid")


#: the supervisors' record files of pids in a log directory end with this
_RECORDS = ".pids"


def _record_files(log_dir: Path) -> list[str]:
    try:
        with os.scandir(log_dir) as entries:
            return [e.path for e in entries if e.name.endswith(_RECORDS)]
    except OSError:
        return []


def _records(log_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every whole line of the record files in ``log_dir``: (task, record)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in _record_files(log_dir):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for line in data.split(b"\n")[:-1]:  # the last one is not whole (or empty)
            try:
                rec = json.loads(line)
                out.append((str(rec["task"]), rec))
            except (ValueError, KeyError, TypeError):
                continue
    return out


def _find_pid_record(spec: TaskSpec) -> tuple[int, int | None] | None:
    """The record of the attempt's pid: in a supervisor's record file (or, written by a
    supervisor before those files, in a file of its own); None when there is none. (An
    attempt has one record: an earlier one of the same number is dropped before it starts.)"""
    task = f"{spec.log_stem}.{spec.attempt}"
    found = [rec for name, rec in _records(spec.log_dir) if name == task]
    if not found:
        return _read_pid_record(_pid_path(spec))
    rec = found[-1]
    try:
        start = rec.get("start")
        return int(rec["pid"]), (None if start is None else int(start))
    except (KeyError, TypeError, ValueError):
        return None


def _result(code: int | None) -> JobResult:
    if code is None:
        return JobResult(None, "exit code unknown")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return JobResult(code, f"killed by signal {name}")
    return JobResult(code, "" if code == 0 else f"exit code {code}")


#: supervisors this process hung up on, still running their last tasks: reaped when they end,
#: looked at each time another one starts
_hung_up: set[int] = set()


def _reap_hung_up() -> None:
    for pid in list(_hung_up):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _hung_up.discard(pid)


class _Supervisor:
    """The engine's side of one supervisor process: requests out, answers and exits in."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        _reap_hung_up()
        self.loop = loop
        mine, theirs = socket.socketpair()
        try:
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            try:
                argv = helper_argv(_SUPERVISOR)
                self.pid = os.posix_spawn(
                    argv[0],
                    argv,
                    dict(os.environ),
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
                        (os.POSIX_SPAWN_DUP2, null, 1),
                        (os.POSIX_SPAWN_DUP2, null, 2),
                    ],
                    setsid=True,
                )
            finally:
                os.close(null)
        except OSError as e:
            mine.close()
            raise ExecutorError(f"cannot start the supervisor of local tasks ({e})") from None
        finally:
            theirs.close()
        mine.setblocking(False)
        self.sock = mine
        self.alive = True
        self._buf = b""
        self._next = 0
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.limit: int | None = None  #: the limit the supervisor was last told
        self.exits: dict[int, asyncio.Future[int | None]] = {}
        self._pidfd = os.pidfd_open(self.pid)
        loop.add_reader(mine.fileno(), self._on_readable)
        loop.add_reader(self._pidfd, self._on_supervisor_exit)

    def _on_readable(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._gone()
            return
        *lines, self._buf = (self._buf + chunk).split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "exited" in msg:
                fut = self.exits.get(int(msg["exited"]))
                if fut is not None and not fut.done():
                    fut.set_result(int(msg["status"]))
            else:
                if "pid" in msg:  # before the lines after it: its exit may be among them
                    self.exits[int(msg["pid"])] = self.loop.create_future()
                reply = self._replies.pop(int(msg["id"]), None)
                if reply is not None and not reply.done():
                    reply.set_result(msg)

    def _on_supervisor_exit(self) -> None:
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self._on_readable()  # what it said before it ended
        self._gone()

    def _gone(self) -> None:
        if not self.alive:
            return
        self.alive = False
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(ExecutorError("the supervisor of local tasks ended"))
        for fut in self.exits.values():
            if not fut.done():
                fut.set_result(None)

    async def spawn(
        self, request: dict[str, Any], limit: int, ids: dict[str, int], key: str
    ) -> dict[str, Any]:
        """Start ``request`` once fewer than ``limit`` of this supervisor's tasks run; its id
        is in ``ids[key]`` until it has started (or failed to), for :meth:`withdraw`."""
        self._next += 1
        rid = request["id"] = self._next
        reply: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._replies[rid] = reply
        data = _encode(request) + b"\n"
        if limit != self.limit:
            self.limit = limit
            data = _encode({"limit": limit}) + b"\n" + data
        ids[key] = rid
        try:
            await self.loop.sock_sendall(self.sock, data)
            return await reply
        finally:
            ids.pop(key, None)

    async def tell_limit(self, limit: int) -> None:
        if self.alive and limit != self.limit:
            self.limit = limit
            with contextlib.suppress(OSError):
                await self.loop.sock_sendall(self.sock, _encode({"limit": limit}) + b"\n")

    def withdraw(self, rid: int) -> None:
        """Ask that request ``rid`` not be started if it still waits (a few bytes on a socket
        the supervisor reads all the time: sent at once, or not at all when it is full)."""
        if self.alive:
            with contextlib.suppress(OSError):
                self.sock.send(_encode({"withdraw": rid}) + b"\n")

    def __del__(self) -> None:
        # an executor dropped without close(), with its event loop: release the descriptors
        with contextlib.suppress(AttributeError, OSError):
            self.sock.close()
        with contextlib.suppress(AttributeError, OSError):
            if self._pidfd >= 0:
                os.close(self._pidfd)

    async def close(self) -> None:
        """Hang up: the supervisor exits when its last task has ended. With none running, wait
        for it (briefly) and reap it, so that its tasks' CPU time counts as this process's
        children's."""
        if self.alive:
            self.alive = False
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
        if self._pidfd < 0:
            return
        pidfd, self._pidfd = self._pidfd, -1
        self.loop.remove_reader(pidfd)
        try:
            if all(f.done() for f in self.exits.values()):
                ended: asyncio.Future[None] = self.loop.create_future()

                def on_exit() -> None:
                    if not ended.done():
                        ended.set_result(None)

                self.loop.add_reader(pidfd, on_exit)
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ended, _CLOSE_WAIT)
                finally:
                    self.loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        _hung_up.add(self.pid)
        _reap_hung_up()


def task_script(spec: TaskSpec, roots: dict[Path, Bounds] | None = None) -> Path:
    """The real path of the task's script, after checking that its name stays inside the task's
    directory and that no symbolic link leads it out of the project (then nothing is touched).

    ``roots`` keeps the projects' resolved directories between calls (an executor's run):
    then only the parts below the project directory are resolved for each task."""
    root = spec.project_root if spec.project_root.is_absolute() else find_root(spec.workdir)
    bounds = roots.get(root) if roots is not None else None
    if bounds is None:
        bounds = Bounds.of(root)
        if roots is not None:
            roots[root] = bounds
    try:
        return Path(real_inside(spec.workdir, spec.script, bounds, what="script", named_ok=False))
    except UnsafePathError as e:
        raise ExecutorError(f"{spec.key}: {e}; the script was not run") from None


def prepare_task_script(spec: TaskSpec) -> None:
    """:func:`prepare_script` for the task's script, checked by :func:`task_script` first."""
    prepare_script(task_script(spec))


def source_script(workdir: Path, name: str | None) -> str | None:
    """OPEN-WHEEL's ``sourceScript`` of a task, checked: a file inside the task's directory."""
    if not name:
        return None
    target = (workdir / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(workdir.resolve()):
        raise ExecutorError(
            f"sourceScript {name!r} is outside the task's directory {workdir}; put the file "
            "in the task's directory and name it relative to it"
        )
    if not target.is_file():
        raise ExecutorError(
            f"sourceScript {name!r} does not exist in {workdir}; create it or clear sourceScript"
        )
    return name


def prepare_script(path: Path) -> None:
    """As WHEEL does before a run: CRLF line ends become LF and the script is made executable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ExecutorError(
            f"script {path} does not exist; create it or fix the task's script"
        ) from None
    try:
        st = os.fstat(fd)
        chunks = []
        while chunk := os.read(fd, max(st.st_size + 1, 1 << 16)):
            chunks.append(chunk)
            if len(chunk) == st.st_size and stat.S_ISREG(st.st_mode):
                break  # the whole file at once: no second read to see its end
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if b"\r\n" in data:
        path.write_bytes(data.replace(b"\r\n", b"\n"))
    mode = st.st_mode
    if mode & 0o111 != 0o111:
        path.chmod(mode | 0o111)


class LocalExecutor(Executor):
    """Scripts as child processes of a supervisor process, at most ``max_concurrent`` at once.

    The engine may have ``queue_ahead`` (twice ``max_concurrent``) more submissions under
    way: the supervisor holds them and starts the next the moment a task ends, so no task
    waits for the engine to hear of the last one's end and to answer."""

    kind = "local"
    #: the supervisor records each task's pid before the handle is returned (:meth:`recover`)
    recovers_started = True

    def __init__(self, *, max_concurrent: int | None = None) -> None:
        super().__init__(host="localhost", max_concurrent=max_concurrent or os.cpu_count() or 1)
        self.queue_ahead = 2 * self.max_concurrent
        #: keys of the submissions under way → their request ids (for withdraw)
        self._submitting: dict[str, int] = {}
        #: re-attached tasks of an earlier supervisor running now: they count against the limit
        self._foreign = 0
        self._sup: _Supervisor | None = None
        self._children: dict[int, tuple[_Supervisor, asyncio.Future[int | None]]] = {}
        #: log directories seen, each with the names of the record files it held then
        self._log_dirs: dict[Path, set[str]] = {}
        #: resolved project directories (see :func:`task_script`)
        self._roots: dict[Path, Bounds] = {}

    def _supervisor(self) -> _Supervisor:
        loop = asyncio.get_running_loop()
        sup = self._sup
        if sup is None or not sup.alive or sup.loop is not loop:
            sup = self._sup = _Supervisor(loop)
        return sup

    def prepare(self) -> None:
        """Start the supervisor now: its Python's start-up (tens of milliseconds) then
        overlaps the run's start instead of delaying the first task."""
        with contextlib.suppress(ExecutorError):
            self._supervisor()

    async def submit(self, spec: TaskSpec) -> JobHandle:
        script = task_script(spec, self._roots)
        prepare_script(script)
        sourced = source_script(spec.workdir, spec.source_script)
        stale = self._log_dirs.get(spec.log_dir)
        if stale is None:
            spec.log_dir.mkdir(parents=True, exist_ok=True)
            # what an earlier engine left there: an attempt's record files are removed before
            # it starts only when they were there before (those this executor's attempts write
            # have names no earlier attempt had), which spares two lookups a task
            with os.scandir(spec.log_dir) as entries:
                stale = self._log_dirs[spec.log_dir] = {
                    e.name for e in entries if e.name.endswith((".rc", ".pid"))
                }
            # the attempts an earlier supervisor's record files name
            stale.update(f"{task}.pid" for task, _ in _records(spec.log_dir))
        # the names as strings: spec.rc_path and the others each build a Path
        logs = os.fspath(spec.log_dir) + os.sep
        stem = spec.log_stem
        task = f"{stem}.{spec.attempt}"
        rc_name = f"{task}.rc"
        rc_path = logs + rc_name
        sup = self._supervisor()
        pids = f"{logs}supervisor-{sup.pid}{_RECORDS}"
        for name in (rc_name, f"{task}.pid"):
            if name in stale:
                stale.discard(name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(logs + name)
                if name.endswith(".pid"):
                    # an earlier record of this attempt's number (after a journal that lost
                    # its last records): the next engine must find this attempt's or none
                    _drop_records(spec.log_dir, task)
        if sourced is None:
            exe = "./" + spec.script  # in cwd, as a shell runs it: $0 is ./SCRIPT
            argv = [exe]
        else:
            exe, argv = "/bin/sh", ["/bin/sh", "-c", _SOURCING, "sh", sourced, spec.script]
        reply = await sup.spawn(
            {
                "exe": exe,
                "argv": argv,
                "cwd": str(spec.workdir),
                "env": dict(spec.env),
                "out": f"{logs}{stem}.out",
                "err": f"{logs}{stem}.err",
                "rc": rc_path,
                "pids": pids,
                "task": task,
            },
            self._limit(),
            self._submitting,
            spec.key,
        )
        if "pid" not in reply:
            raise ExecutorError(f"{spec.key}: cannot start {spec.script}: {reply.get('error')}")
        pid = int(reply["pid"])
        if os.environ.get(_KILL_AFTER_SPAWN) == spec.key:
            os.kill(os.getpid(), signal.SIGKILL)
        self._children[pid] = (sup, sup.exits[pid])
        return JobHandle(
            "local",
            "localhost",
            str(pid),
            {"start": reply.get("start"), "rc": rc_path},
        )

    def _limit(self) -> int:
        return max(0, self.max_concurrent - self._foreign)

    def withdraw(self, spec: TaskSpec) -> None:
        rid = self._submitting.get(spec.key)
        sup = self._sup
        if rid is not None and sup is not None:
            sup.withdraw(rid)

    async def recover(self, spec: TaskSpec) -> JobHandle | None:
        """The attempt an engine started and died before journaling: found by the pid record
        the supervisor wrote before it answered; None when it was never started."""
        # reads every record file of the run: not on the event loop
        record = await asyncio.to_thread(_find_pid_record, spec)
        if record is None:
            return None
        pid, start = record
        return JobHandle("local", "localhost", str(pid), {"start": start, "rc": str(spec.rc_path)})

    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        pid = int(handle.native_id)
        child = self._children.get(pid)
        if child is None:
            return await self.attach(handle, spec)
        sup, fut = child
        try:
            # shielded: when the engine cancels this wait (on stop), the child's future must
            # stay pending so that cancel() can still wait for the process and escalate
            status = await asyncio.shield(fut)
        finally:
            if fut.done():
                self._children.pop(pid, None)
                sup.exits.pop(pid, None)
        if status is None:  # the supervisor was killed: wait for the task, its end is unknown
            await self._wait_gone(handle)
            code = _read_rc(Path(handle.data.get("rc") or spec.rc_path))
            if code is None:
                return JobResult(
                    None,
                    f"process {pid} outlived the supervisor of local tasks; its exit code is "
                    "unknown",
                )
            return _result(code)
        if os.WIFSIGNALED(status):
            return _result(-os.WTERMSIG(status))
        return _result(os.waitstatus_to_exitcode(status))

    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        rc_path = Path(handle.data.get("rc") or spec.rc_path)
        rc = _read_rc(rc_path)
        if rc is not None:
            return _result(rc)
        pid = int(handle.native_id)
        if await self._wait_gone(handle):
            rc = _read_rc(rc_path)
            if rc is not None:
                return _result(rc)
        return JobResult(
            None,
            f"process {pid} ended while no engine was watching and left no exit code",
            lost=True,
        )

    async def _wait_gone(self, handle: JobHandle) -> bool:
        """Wait until the handle's process has ended and been reaped (its supervisor writes the
        exit code before it reaps it). False when it was not there to wait for."""
        pid = int(handle.native_id)
        start = handle.data.get("start")
        if pid <= 1 or start is None or _proc_start_time(pid) != start:
            return False
        self._foreign += 1
        try:
            await self._wait_foreign(pid)
        finally:
            self._foreign -= 1
            if self._sup is not None:
                await self._sup.tell_limit(self._limit())
        # ended: a zombie until its supervisor has written the exit code and reaped it
        while _proc_start_time(pid) == start:
            await asyncio.sleep(0.01)
        return True

    async def _wait_foreign(self, pid: int) -> None:
        """Wait for a process that is not our child (pidfd turns readable when it exits)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(pidfd, on_exit)
        try:
            await done
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)

    async def cancel(self, handle: JobHandle) -> None:
        pid = int(handle.native_id)
        start = handle.data.get("start")
        if pid <= 1 or (start is not None and _proc_start_time(pid) != start):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        # the whole process group gets the grace period: a script that traps SIGTERM may
        # clean up, then it is killed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CANCEL_GRACE
        while loop.time() < deadline and _group_alive(pid):
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        child = self._children.pop(pid, None)
        if child is not None:
            await child[1]
            child[0].exits.pop(pid, None)

    async def status(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        out: dict[JobHandle, JobStatus] = {}
        for h in handles:
            rc = _read_rc(Path(h.data.get("rc", "")))
            if rc is not None:
                out[h] = JobStatus("finished" if rc == 0 else "failed", "exited", rc)
            elif int(h.native_id) > 1 and _proc_start_time(int(h.native_id)) == h.data.get("start"):
                out[h] = JobStatus("running", "alive")
            else:
                out[h] = JobStatus("unknown", "gone")
        return out

    async def close(self) -> None:
        sup, self._sup = self._sup, None
        if sup is not None:
            await sup.close()
