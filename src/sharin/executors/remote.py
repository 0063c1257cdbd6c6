"""Tasks on a host reached over SSH that has no job scheduler (``useJobScheduler: false``).

Each attempt is staged as a batch job is (:mod:`._hostdir`: ``<path>/<run>/<component>`` on the
host), then started there **detached from the SSH session**: ``setsid``, stdin from
``/dev/null``, so that it survives a dropped connection and a dead engine. A small ``/bin/sh``
wrapper on the host owns it, and keeps its record in ``<path>/<run>/.sharin/<task>.<attempt>/``:

- the wrapper creates that directory with ``mkdir`` (atomic) before anything else, and leaves at
  once when it is there already: starting the same attempt again, after a dropped connection or
  by an engine that died while submitting, never runs the script twice;
- it writes its pid (that of the task's process group) to ``pid``, atomically (a temporary name,
  then a rename), before the command that started it returns, so before the engine learns it
  started;
- the script's stdout and stderr go to ``out`` and ``err``, and its exit code to ``rc`` (again
  atomically) when it ends.

One command per poll interval checks every running task of the host (``rc`` there, else the pid
still the wrapper's). After a crash, :meth:`RemoteShellExecutor.attach` watches the journaled
attempt again, and :meth:`RemoteShellExecutor.recover` finds one whose handle was not journaled
from its record. :meth:`RemoteShellExecutor.cancel` (``sharin stop``) sends SIGTERM to the
task's process group, and SIGKILL to what is left after a grace period.

Commands run as WHEEL runs them (``ssh host command``): by the user's login shell,
non-interactively, so the task has the environment such a session has (bash reads
``~/.bashrc``), plus the WHEEL variables of the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shlex
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine import Executor, JobHandle, JobResult, JobStatus, TaskSpec
from ..errors import ExecutorError, TransportError
from ..model import HostConfig
from . import _hostdir
from ._poller import Polled, Poller, Watch
from ._transport import CommandResult, Transport
from .local import _KILL_AFTER_SPAWN, prepare_task_script, source_script

__all__ = ["RemoteShellExecutor"]

#: the wrapper that owns a task on the host: ``$0`` is its record directory, the rest the
#: command. ``mkdir`` first (exclusive: a second start of the attempt leaves here), then the pid
#: (that of the process group: setsid made the wrapper its leader), then the script, then its
#: exit code. SIGTERM is caught (the script, not the wrapper, is what stop ends), so the exit
#: code is written after a stop too.
_WRAPPER = (
    'r=$0; mkdir "$r" 2>/dev/null || exit 0; trap : TERM INT HUP; '
    'echo $$ >"$r/pid.tmp" && mv -f "$r/pid.tmp" "$r/pid"; '
    '"$@" </dev/null >"$r/out" 2>"$r/err"; '
    'echo $? >"$r/rc.tmp" && mv -f "$r/rc.tmp" "$r/rc"'
)

#: the sourcing form of OPEN-WHEEL's ``sourceScript`` (as on this machine)
_SOURCING = '. ./"$1" || exit $?; exec ./"$2"'

#: what the watch command says of one record: ``<index> <word> [<exit code>]``
_CHECK = (
    "w() { r=$2; "
    'if [ -f "$r/rc" ]; then echo "$1 rc $(cat "$r/rc")"; return; fi; '
    'if [ -f "$r/pid" ]; then p=$(cat "$r/pid"); '
    'case $(ps -ww -o args= -p "$p" 2>/dev/null) in *"$r"*) echo "$1 running"; return;; esac; '
    'if [ -f "$r/rc" ]; then echo "$1 rc $(cat "$r/rc")"; else echo "$1 gone"; fi; '
    'elif [ -d "$r" ]; then echo "$1 starting"; else echo "$1 none"; fi; }'
)

#: seconds the start command waits for the wrapper's pid
_START_WAIT = 20
#: seconds a record may stay without a pid before the attempt counts as gone
_STARTING_GRACE = 30.0
#: seconds :meth:`RemoteShellExecutor.cancel` waits after SIGTERM before it sends SIGKILL
_CANCEL_GRACE = 5


@dataclass
class _Watch(Watch):
    """A task watched: its key is its record directory on the host."""

    first_starting: float | None = None


#: what one check says of a record: a word (``running``, ``rc``, ``starting``, ``gone``,
#: ``none``) and, after ``rc``, the exit code
_Row = tuple[str, int | None]


def _env_words(spec: TaskSpec) -> str:
    """``K=V`` for the task's variables that this process's environment does not already give
    (the host's own environment supplies the rest)."""
    added = {k: v for k, v in spec.env.items() if os.environ.get(k) != v}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(added.items()) if k.isidentifier())


def _code(result: CommandResult) -> str:
    return result.output.strip() or f"exit status {result.returncode}"


class RemoteShellExecutor(Polled, Executor):
    """Task scripts as detached processes on one SSH host, watched in one command per poll."""

    kind = "remote"

    def __init__(self, host: HostConfig, transport: Transport) -> None:
        super().__init__(host=host.name, max_concurrent=host.num_job)
        self.config = host
        self.transport = transport
        self._poller: Poller[_Watch, _Row] = Poller(
            host,
            ask=self._rows,
            settle=self._settle,
            what="checking its tasks",
            check="the host",
        )

    # ------------------------------------------------------------------ files
    def job_dir(self, spec: TaskSpec) -> str:
        return _hostdir.job_dir(self.config, spec)

    def record_dir(self, spec: TaskSpec) -> str:
        """The attempt's record on the host: beside the run's task directories, never staged."""
        base = self.config.path or str(spec.project_root)
        return posixpath.join(
            base, spec.run_tag or "run", ".sharin", f"{spec.log_stem}.{spec.attempt}"
        )

    async def stage_in(self, spec: TaskSpec) -> None:
        prepare_task_script(spec)
        await _hostdir.stage_in(self.transport, self.config, spec)

    async def stage_out(self, spec: TaskSpec, result: JobResult) -> None:
        await _hostdir.stage_out(self.transport, self.config, spec)

    # ------------------------------------------------------------------ start
    def start_command(self, spec: TaskSpec) -> str:
        """One shell command that starts the attempt detached (unless its record is there
        already) and prints its pid once the wrapper has recorded it. Running it again is
        harmless: the second wrapper finds the record and leaves."""
        record = self.record_dir(spec)
        sourced = source_script(spec.workdir, spec.source_script)
        if sourced is None:
            command = shlex.quote("./" + spec.script)
        else:
            command = " ".join(
                shlex.quote(x) for x in ("/bin/sh", "-c", _SOURCING, "sh", sourced, spec.script)
            )
        env = _env_words(spec)
        r = shlex.quote(record)
        start = (
            f"setsid /bin/sh -c {shlex.quote(_WRAPPER)} {r} "
            f"{'env ' + env + ' ' if env else ''}{command} </dev/null >/dev/null 2>&1 &"
        )
        return (
            f"cd {shlex.quote(self.job_dir(spec))} || exit 1\n"
            f"mkdir -p {shlex.quote(posixpath.dirname(record))} || exit 1\n"
            f"[ -d {r} ] || {start}\n"
            f"i=0; while [ ! -f {r}/pid ] && [ $i -lt {_START_WAIT * 10} ]; do "
            "sleep 0.1; i=$((i+1)); done\n"
            f"cat {r}/pid"
        )

    async def submit(self, spec: TaskSpec) -> JobHandle:
        # idempotent: a start cut off by a dropped connection is run again, and starts nothing
        # a second time
        res = await self.transport.run(self.start_command(spec), idempotent=True, timeout=60)
        # the last line: what the login shell's start-up files print comes before it
        pid = res.stdout.strip().splitlines()[-1:] if res.returncode == 0 else []
        if not pid or not pid[0].isdigit():
            hint = ""
            if "setsid" in res.output:
                hint = "; setsid (util-linux) must be on the host's PATH"
            raise ExecutorError(
                f"host {self.host!r}: cannot start {spec.script} of {spec.key} in "
                f"{self.job_dir(spec)}: {_code(res)}{hint}"
            )
        if os.environ.get(_KILL_AFTER_SPAWN) == spec.key:  # the crash tests: die unjournaled
            os.kill(os.getpid(), signal.SIGKILL)
        return self._handle(spec, pid[0])

    def _handle(self, spec: TaskSpec, pid: str) -> JobHandle:
        return JobHandle(
            self.kind,
            self.host,
            pid,
            {"record": self.record_dir(spec), "dir": self.job_dir(spec)},
        )

    def describe(self, handle: JobHandle) -> str:
        return f"process {handle.native_id} on {self.host}"

    async def recover(self, spec: TaskSpec) -> JobHandle | None:
        """The attempt an engine started and died before journaling: found by its record (the
        pid is awaited while the wrapper is writing it); None when it was never started."""
        r = shlex.quote(self.record_dir(spec))
        res = await self.transport.run(
            f"[ -d {r} ] || exit 3\n"
            f"i=0; while [ ! -f {r}/pid ] && [ $i -lt {_START_WAIT * 10} ]; do "
            "sleep 0.1; i=$((i+1)); done\n"
            f"cat {r}/pid",
            idempotent=True,
            timeout=60,
        )
        # the last line: what the login shell's start-up files print comes before it
        pid = (res.stdout.strip().splitlines() or [""])[-1]
        if res.returncode != 0 or not pid.isdigit():
            return None
        return self._handle(spec, pid)

    # ------------------------------------------------------------------ wait
    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        return await self._watch(handle, spec, attach=False)

    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        return await self._watch(handle, spec, attach=True)

    def _record(self, handle: JobHandle) -> str:
        record = handle.data.get("record")
        if not isinstance(record, str) or not record:
            raise ExecutorError(
                f"host {self.host!r}: the journaled handle of process {handle.native_id} has no "
                "record directory; the task cannot be watched"
            )
        return record

    async def _watch(self, handle: JobHandle, spec: TaskSpec, *, attach: bool) -> JobResult:
        loop = asyncio.get_running_loop()
        w = _Watch(self._record(handle), attach, loop.create_future())
        result = await self._poller.watch(w)
        if not result.unknown:
            await self._collect_logs(w.key, spec)
        return result

    async def _ask(self, records: list[str]) -> list[_Row] | None:
        """One command for every record: ``(word, exit code)`` for each, in order; None when
        the host did not answer."""
        lines = [_CHECK, *(f"w {i} {shlex.quote(r)}" for i, r in enumerate(records))]
        res = await self._poller.run(self.transport, "\n".join(lines), timeout=60)
        found: dict[int, _Row] = {}
        for line in res.stdout.splitlines():
            words = line.split()
            if len(words) < 2 or not words[0].isdigit():
                continue
            rc: int | None = None
            if words[1] == "rc":
                try:
                    rc = int(words[2])
                except (IndexError, ValueError):
                    rc = None
            found[int(words[0])] = (words[1], rc)
        if res.returncode != 0 or len(found) != len(records):
            self._poller.failed(res.output.strip() or f"exit {res.returncode}")
            return None
        self._poller.answered()
        return [found[i] for i in range(len(records))]

    async def _rows(self, group: list[_Watch]) -> dict[str, _Row]:
        """The poller's query: one command for all the watched tasks, a row per record."""
        records = [w.key for w in group]
        answer = await self._ask(records)
        return dict(zip(records, answer, strict=True)) if answer is not None else {}

    def _settle(self, w: _Watch, row: _Row) -> JobResult | None:
        """What a task's row means: its result, or None while it runs (or starts)."""
        word, rc = row
        if word == "running":
            return None
        if word == "rc":
            return _result(rc)
        if word == "starting":
            now = time.monotonic()
            if w.first_starting is None:
                w.first_starting = now
            if now - w.first_starting > _STARTING_GRACE:
                return self._gone(w, "never recorded its pid")
            return None
        if word == "gone":
            return self._gone(w, "ended without an exit code (killed?)")
        return self._gone(w, f"left no record in {w.key}")

    def _gone(self, w: _Watch, why: str) -> JobResult:
        return JobResult(None, f"the task on {self.host!r} {why}", lost=w.attach)

    async def _collect_logs(self, record: str, spec: TaskSpec) -> None:
        """Append the script's stdout and stderr, kept on the host, to the task's logs."""
        for name, dest in (("out", spec.stdout_path), ("err", spec.stderr_path)):
            with contextlib.suppress(TransportError):
                data = await self.transport.read_bytes(posixpath.join(record, name))
                if data:
                    await asyncio.to_thread(_append, dest, data)

    # ------------------------------------------------------------------ other calls
    async def cancel(self, handle: JobHandle) -> None:
        """SIGTERM to the task's process group, SIGKILL after a grace period (only while the
        pid is still the wrapper's: a reused pid is left alone)."""
        r = shlex.quote(self._record(handle))
        pid = handle.native_id
        if not pid.isdigit():
            return
        command = (
            f"case $(ps -ww -o args= -p {pid} 2>/dev/null) in *{r}*) ;; *) exit 0;; esac\n"
            f"kill -TERM -{pid} 2>/dev/null\n"
            f"i=0; while kill -0 -{pid} 2>/dev/null && [ $i -lt {_CANCEL_GRACE * 10} ]; do "
            "sleep 0.1; i=$((i+1)); done\n"
            f"kill -KILL -{pid} 2>/dev/null; exit 0"
        )
        res = await self.transport.run(command, idempotent=True, timeout=_CANCEL_GRACE + 60)
        if res.returncode != 0:
            raise ExecutorError(f"host {self.host!r}: stopping process {pid} failed: {_code(res)}")

    async def status(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        usable = [h for h in handles if isinstance(h.data.get("record"), str)]
        out = {h: JobStatus("unknown", "no record") for h in handles if h not in usable}
        if not usable:
            return out
        answer = await self._ask([self._record(h) for h in usable])
        for h, found in zip(usable, answer or [("unknown", None)] * len(usable), strict=True):
            word, rc = found
            if word == "running":
                out[h] = JobStatus("running", f"process {h.native_id} running")
            elif word == "starting":
                out[h] = JobStatus("queued", "starting")
            elif word == "rc":
                out[h] = JobStatus("finished" if rc == 0 else "failed", "exited", rc)
            else:
                out[h] = JobStatus("unknown", word if word != "unknown" else "no answer")
        return out

    async def close(self) -> None:
        await self._poller.close()
        await self.transport.close()


def _result(code: int | None) -> JobResult:
    if code is None:
        return JobResult(None, "exit code unknown")
    return JobResult(code, "" if code == 0 else f"exit code {code}")


def _append(path: Path, data: bytes) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.write(data)
