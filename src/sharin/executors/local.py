"""Run task scripts on this machine.

Each attempt is started with ``posix_spawn`` as
``/bin/sh -c 'exec >>OUT 2>>ERR; cd DIR && ./SCRIPT; echo $? > RC; exit with it'`` in a session of its own. The engine learns that it ended from a
pidfd registered with the event loop (no polling, no thread per task). The exit code is written
to a file by the wrapper shell, so an engine started after a crash can still learn how a task that
outlived the old engine ended: :meth:`LocalExecutor.attach` waits on the pid (checked against its
start time, so a reused pid is not mistaken for it) and then reads that file.

An engine killed between starting a wrapper and journaling its handle leaves the intent to submit
(``queued``) and no handle. :meth:`LocalExecutor.recover` finds that attempt again: its exit-code
file if it already ended, else the wrapper shell itself, whose command line names the attempt's
exit-code file (``/proc/PID/cmdline``, read once per recovered task, in a worker thread). The task
is then re-attached instead of started a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from ..engine import Executor, JobHandle, JobResult, JobStatus, TaskSpec
from ..errors import ExecutorError
from ..model._paths import Bounds, UnsafePathError, find_root, real_path, resolve_inside

__all__ = ["LocalExecutor", "prepare_script", "prepare_task_script", "task_script"]

_WRAPPER = (
    'exec </dev/null >>"$4" 2>>"$5" || exit 126; cd "$1" || exit 126; ./"$2"; '
    'set -- $? "$3"; echo $1 > "$2"; exit $1'
)

#: the same with OPEN-WHEEL's ``sourceScript`` (``$6``, a file in the task's directory) sourced
#: first, in a subshell so that an ``exit`` in it still leaves the exit code in the rc file
_WRAPPER_SOURCING = (
    'exec </dev/null >>"$4" 2>>"$5" || exit 126; cd "$1" || exit 126; '
    '( . ./"$6" || exit $?; exec ./"$2" ); '
    'set -- $? "$3"; echo $1 > "$2"; exit $1'
)

#: for the crash tests: the key of a task after whose spawn the engine kills itself (SIGKILL),
#: before its handle can be journaled
_KILL_AFTER_SPAWN = "SHARIN_TEST_KILL_AFTER_SPAWN"

#: seconds :meth:`LocalExecutor.cancel` waits after SIGTERM before it sends SIGKILL
_CANCEL_GRACE = 5.0


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


def _find_wrapper(rc_path: str) -> int | None:
    """The pid of the live wrapper shell of the attempt whose exit-code file is ``rc_path``."""
    want = rc_path.encode()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        # /bin/sh -c WRAPPER sh WORKDIR SCRIPT RC ...
        if len(argv) > 6 and argv[0] == b"/bin/sh" and argv[1] == b"-c" and argv[6] == want:
            if argv[2] in (_WRAPPER.encode(), _WRAPPER_SOURCING.encode()):
                return int(name)
    return None


def task_script(spec: TaskSpec) -> Path:
    """The real path of the task's script, after checking that its name stays inside the task's
    directory and that no symbolic link leads it out of the project (then nothing is touched)."""
    root = spec.project_root if spec.project_root.is_absolute() else None
    bounds = Bounds.of(root or find_root(spec.workdir))
    try:
        path = resolve_inside(spec.workdir, spec.script, bounds, what="script", named_ok=False)
    except UnsafePathError as e:
        raise ExecutorError(f"{spec.key}: {e}; the script was not run") from None
    return Path(real_path(path))


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
        data = path.read_bytes()
    except FileNotFoundError:
        raise ExecutorError(
            f"script {path} does not exist; create it or fix the task's script"
        ) from None
    if b"\r\n" in data:
        path.write_bytes(data.replace(b"\r\n", b"\n"))
    mode = path.stat().st_mode
    if mode & 0o111 != 0o111:
        path.chmod(mode | 0o111)


class LocalExecutor(Executor):
    """Scripts as child processes of the engine, at most ``max_concurrent`` at once."""

    kind = "local"

    def __init__(self, *, max_concurrent: int | None = None) -> None:
        super().__init__(host="localhost", max_concurrent=max_concurrent or os.cpu_count() or 1)
        self._children: dict[int, asyncio.Future[int]] = {}
        self._log_dirs: set[Path] = set()

    async def submit(self, spec: TaskSpec) -> JobHandle:
        prepare_task_script(spec)
        sourced = source_script(spec.workdir, spec.source_script)
        if spec.log_dir not in self._log_dirs:
            spec.log_dir.mkdir(parents=True, exist_ok=True)
            self._log_dirs.add(spec.log_dir)
        rc_path = spec.rc_path
        with contextlib.suppress(FileNotFoundError):
            rc_path.unlink()
        # the wrapper opens the log files itself: with posix_spawn's file actions they would be
        # opened before exec, while the engine waits
        argv = [
            "/bin/sh",
            "-c",
            _WRAPPER if sourced is None else _WRAPPER_SOURCING,
            "sh",
            str(spec.workdir),
            spec.script,
            str(rc_path),
            str(spec.stdout_path),
            str(spec.stderr_path),
            *([sourced] if sourced is not None else []),
        ]
        env = spec.env if isinstance(spec.env, dict) else dict(spec.env)
        try:
            pid = os.posix_spawn("/bin/sh", argv, env, setsid=True)
        except OSError as e:
            raise ExecutorError(f"{spec.key}: cannot start /bin/sh ({e})") from None
        if os.environ.get(_KILL_AFTER_SPAWN) == spec.key:
            os.kill(os.getpid(), signal.SIGKILL)
        fut = self._watch_child(pid)
        self._children[pid] = fut
        return JobHandle(
            "local",
            "localhost",
            str(pid),
            {"start": _proc_start_time(pid), "rc": str(rc_path)},
        )

    async def recover(self, spec: TaskSpec) -> JobHandle | None:
        """The attempt an engine started and died before journaling: ended (its exit-code file
        is there) or still running (its wrapper shell is found by its command line); None when
        it was never started."""
        rc_path = str(spec.rc_path)
        if _read_rc(spec.rc_path) is None:
            pid = await asyncio.to_thread(_find_wrapper, rc_path)
            if pid is not None:
                start = _proc_start_time(pid)
                if start is not None:
                    return JobHandle(
                        "local", "localhost", str(pid), {"start": start, "rc": rc_path}
                    )
            if _read_rc(spec.rc_path) is None:  # it may have ended while we looked
                return None
        # ended: nothing left to signal, the handle only leads attach to the exit code
        return JobHandle("local", "localhost", "0", {"start": None, "rc": rc_path})

    def _watch_child(self, pid: int) -> asyncio.Future[int]:
        """A future with the wait status of our child ``pid``, resolved from a pidfd."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        pidfd = os.pidfd_open(pid)

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
            if not fut.done():
                fut.set_result(status)

        loop.add_reader(pidfd, on_exit)
        return fut

    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        pid = int(handle.native_id)
        fut = self._children.get(pid)
        if fut is None:
            return await self.attach(handle, spec)
        try:
            # shielded: when the engine cancels this wait (on stop), the child's future must
            # stay pending so that cancel() can still wait for the process and escalate
            status = await asyncio.shield(fut)
        finally:
            if fut.done():
                self._children.pop(pid, None)
        # the wrapper exits with the script's exit code (it also wrote it to the rc file, for
        # an engine that re-attaches after a crash)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return JobResult(-sig, f"killed by signal {signal.Signals(sig).name}")
        code = os.waitstatus_to_exitcode(status)
        return JobResult(code, "" if code == 0 else f"exit code {code}")

    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        rc_path = Path(handle.data.get("rc") or spec.rc_path)
        rc = _read_rc(rc_path)
        if rc is not None:
            return JobResult(rc, "" if rc == 0 else f"exit code {rc}")
        pid = int(handle.native_id)
        start = handle.data.get("start")
        if pid > 1 and start is not None and _proc_start_time(pid) == start:
            await self._wait_foreign(pid)
            rc = _read_rc(rc_path)
            if rc is not None:
                return JobResult(rc, "" if rc == 0 else f"exit code {rc}")
        return JobResult(
            None,
            f"process {pid} ended while no engine was watching and left no exit code",
            lost=True,
        )

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
        # the whole process group gets the grace period, not only the wrapper shell (which
        # dies at once): a script that traps SIGTERM may clean up, then it is killed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CANCEL_GRACE
        while loop.time() < deadline and _group_alive(pid):
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        fut = self._children.pop(pid, None)
        if fut is not None:
            await fut

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
