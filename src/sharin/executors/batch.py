"""Batch jobs through a scheduler whose commands and output formats come from its definition.

One :class:`BatchExecutor` serves one host. Every job it watches is checked by **one** status
command per interval (all job ids in one ``stat`` call), then, for the jobs that left the queue,
one ``statAfter`` call that reads their exit and status codes. The submission itself is recorded
in a file in the job's directory before its output is read, so an engine that dies between the
scheduler accepting a job and the journal learning its id finds the job again
(:meth:`BatchExecutor.recover`) instead of submitting it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine import Executor, JobHandle, JobResult, JobStatus, SubmitLater, TaskSpec
from ..errors import ExecutorError, TransportError
from ..model import COMPONENT_FILE, HostConfig, read_json_object
from . import _hostdir
from ._jobsets import JobSets
from ._poller import Polled, Poller, Watch
from ._scheduler import (
    JobState,
    Outcome,
    SchedulerDefinition,
    StatusOutputError,
    directives_from,
    job_script_name,
)
from ._schedulers import DONE, QUEUED, RUNNING
from ._transport import CommandResult, Transport
from .local import prepare_task_script

__all__ = ["BatchExecutor"]

#: how many status checks may miss an ended job's record before it counts as unknown, and
#: for how long at least (some schedulers show a job only a second or so after accepting it)
_MISSES = 3
_MISS_SECONDS = 2.0
#: ... and for a job seen in the queue whose scheduler keeps a history: its accounting may lag
#: behind the queue (slurmdbd writes a big array's rows a while after they left squeue)
_SEEN_MISS_SECONDS = 60.0
#: first line of a submission record; the last one, ``<tag>-end <exit status>``, says that the
#: submit command has ended
_RECORD_TAG = "sharin-submit"
_RECORD_END = f"{_RECORD_TAG}-end"
#: how long a submission whose command is still running on the host is waited for (it is
#: never submitted again while it may still get its job in)
_RECORD_WAIT = 120.0
#: waits between submissions the scheduler refused as over its limit while it held no job of
#: this host's executor (with jobs of its own there, a submission waits for one of them to end)
_BACKOFF = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
#: the longest a submission waits for a job of its host to end before it asks the scheduler
#: again (its limit may count other users' jobs, or have been raised)
_PROBE = 60.0


@dataclass
class _Watch(Watch):
    """A job watched: its key is its job id."""

    bulk: bool = False
    #: told when the scheduler first reports the job running (it is queued until then)
    on_running: Callable[[], None] | None = None
    misses: int = 0
    first_miss: float | None = None
    seen: bool = False
    #: a bulk job's sub job numbers, when known
    span: tuple[int, int] | None = None


#: what one check says of a job: its state while queued or running, how it ended, or None when
#: it left the queue and the scheduler has no record of it (yet)
_Row = JobState | JobResult | None


class BatchExecutor(JobSets, Polled, Executor):
    """Submits task scripts as batch jobs on one host and watches them in batches."""

    kind = "batch"
    queues = True

    def __init__(
        self, host: HostConfig, scheduler: SchedulerDefinition, transport: Transport
    ) -> None:
        super().__init__(host=host.name, max_concurrent=host.num_job)
        self.config = host
        self.scheduler = scheduler
        self.transport = transport
        self._poller: Poller[_Watch, _Row] = Poller(
            host,
            ask=self._rows,
            settle=self._settle,
            what="the status command",
            check="the scheduler on the host",
        )
        #: per task key: the script submitted (with directives added) and whether it sets its queue
        self._scripts: dict[str, tuple[str, bool]] = {}
        #: how each job watched here ended: (ok, deleted by a dependency statement)
        self._outcomes: dict[str, tuple[bool, bool]] = {}
        #: steps decided here, never submitted (their step job had ended): their codes
        self._decided: dict[str, Outcome] = {}
        #: after the scheduler refused a job as over its limit: how many jobs of this host it
        #: took (submissions wait while that many are in it); None until a refusal
        self.room: int | None = None
        self._submitting = 0
        self._refused: dict[str, int] = {}  #: per task: refusals while no job of ours was held
        self._not_before = 0.0  #: monotonic time before which no submission is tried
        self._job_end = asyncio.Event()  #: set (and replaced) whenever a watched job ends

    # ------------------------------------------------------------------ files
    def job_dir(self, spec: TaskSpec) -> str:
        """Where the job runs: the task's own directory, or ``<path>/<run>/<task>`` on the host."""
        return _hostdir.job_dir(self.config, spec)

    async def stage_in(self, spec: TaskSpec) -> None:
        prepare_task_script(spec)
        self._scripts[spec.key] = await asyncio.to_thread(self._job_script, spec)
        await _hostdir.stage_in(self.transport, self.config, spec)

    async def stage_out(self, spec: TaskSpec, result: JobResult) -> None:
        await _hostdir.stage_out(self.transport, self.config, spec)

    def _job_script(self, spec: TaskSpec) -> tuple[str, bool]:
        """The script to submit, and whether it chooses its queue itself. With resource
        properties (``nodes``, ``cores``, ``elapsedTime``, ``memory``, ``jobDirectives``) in
        the task's ``cmp.wheel.json``, a copy of the script with those directives added."""
        path = spec.workdir / spec.script
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        queue_set = self.scheduler.script_sets_queue(text)
        component = spec.workdir / COMPONENT_FILE
        props = read_json_object(component) if component.is_file() else {}
        wanted = directives_from(props, str(component))
        if spec.bulk is not None and self.scheduler.arrays:
            found: str | None = self.scheduler.array_script(text, spec.script, wanted)
        else:
            found = self.scheduler.with_directives(text, wanted)
        if found is None:
            return spec.script, queue_set
        name = job_script_name(spec.script)
        target = spec.workdir / name
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)  # never written through: a link there is replaced
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(found)
        os.replace(tmp, target)
        return name, queue_set

    # ------------------------------------------------------------------ submit
    def _record_name(self, spec: TaskSpec) -> str:
        return f".sharin-submit.{spec.log_stem}.{spec.attempt}"

    def submit_command(self, spec: TaskSpec) -> str:
        s = self.scheduler
        script, queue_set = self._scripts.get(spec.key, (spec.script, False))
        parts = [s.submit]
        if spec.queue and not queue_set:
            parts.append(f"{s.queue_opt}{shlex.quote(spec.queue)}")
        if spec.step is not None:
            if s.step_option is None:
                raise ExecutorError(
                    f"host {self.host!r}: scheduler {s.name} has no step jobs; "
                    "use a host whose jobScheduler supports them"
                )
            dep = f",{spec.step.dependency}" if spec.step.dependency else ""
            template = s.step_option
            if s.chains_steps and s.family is not None:
                # a chain of dependent jobs: each step waits for the ones before it
                where = posixpath.join(spec.key, COMPONENT_FILE)
                wait = s.step_conditions(spec.step.dependency, spec.step.earlier, where)
                dep = s.family.dependency_option(wait) if wait else ""
            elif spec.step.job_id is not None and s.step_join_option:
                template = s.step_join_option
            option = template.format(
                name=spec.step.name,
                number=spec.step.number,
                dependency=dep,
                jobid=spec.step.job_id or "",
            )
            if option:
                parts.append(option)
        if spec.bulk is not None:
            if s.bulk_option is None:
                raise ExecutorError(
                    f"host {self.host!r}: scheduler {s.name} has no bulk jobs; "
                    "use a host whose jobScheduler supports them"
                )
            base = s.family.array_base if s.arrays and s.family is not None else 0
            name = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in spec.name)
            parts.append(
                s.bulk_option.format(
                    start=spec.bulk.start + base, end=spec.bulk.end + base, name=name
                )
            )
        if spec.submit_option:
            parts.append(spec.submit_option)
        parts.append(s.script_argument.format(script=shlex.quote(script)))
        added = {k: v for k, v in spec.env.items() if os.environ.get(k) != v}
        env = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in sorted(added.items()) if k.isidentifier()
        )
        record = shlex.quote(self._record_name(spec))
        # the record starts with what recover() needs besides the id the scheduler prints
        kind = f"{_RECORD_TAG} bulk={int(spec.bulk is not None)}"
        if script != spec.script:
            kind += " directives=1"  # the copy with directives was submitted
        # braces: nothing is written when the directory cannot be entered
        return (
            f"cd {shlex.quote(self.job_dir(spec))} && {{ "
            f"(echo {kind}; exec {'env ' + env + ' ' if env else ''}{' '.join(parts)}) "
            f"> {record} 2>&1; rc=$?; echo {_RECORD_END} $rc >> {record}; cat {record}; "
            "exit $rc; }"
        )

    def _held(self) -> int:
        """Jobs of this executor the scheduler holds (watched and not seen ending)."""
        return len(self._poller.pending())

    def _job_ended(self) -> None:
        self._job_end.set()
        self._job_end = asyncio.Event()

    async def ready(self, spec: TaskSpec) -> None:
        """After the scheduler refused a job as over its limit, wait until one of this host's
        jobs ends (at most ``_PROBE`` s) or the back-off has passed, so that the waiting
        submissions do not keep asking a full scheduler, and each freed place takes one."""
        probe = time.monotonic() + _PROBE
        while True:
            now = time.monotonic()
            full = self.room is not None and self._held() + self._submitting >= self.room
            if (not full or now >= probe) and now >= self._not_before:
                self._submitting += 1  # until submit() has its answer: no await in between
                return
            ended = self._job_end
            # time alone frees the way at this moment; a job's end may free it before
            wait = (max(probe, self._not_before) if full else self._not_before) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), max(0.01, wait))

    async def submit(self, spec: TaskSpec) -> JobHandle:
        command = self.submit_command(spec)
        try:
            res = await self._submit_once(spec, command)
        finally:
            self._submitting = max(0, self._submitting - 1)
        if self.scheduler.exceeded(res.returncode, res.output):
            self._full(spec, res)
        self._refused.pop(spec.key, None)
        job_id = self.scheduler.job_id(res.output)
        if (res.returncode != 0 or job_id is None) and self._joined_too_late(spec, res.output):
            decided = await self._step_after_its_job(spec)
            return decided if isinstance(decided, JobHandle) else await self.submit(decided)
        if res.returncode != 0 or job_id is None:
            text = _said(res.output) or f"exit status {res.returncode}, no output"
            hint = ""
            if res.returncode == 127:
                command = self.scheduler.submit.split()[0]
                hint = (
                    f"; {command} was not found on {self.transport.where}: is {self.scheduler.name} "
                    "installed there, and on the PATH of non-interactive shells?"
                )
            raise ExecutorError(
                f"host {self.host!r}: {self.scheduler.name} did not accept {spec.key}: {text}{hint}"
            )
        _append(spec.stdout_path, f"[sharin] {_said(res.output)}\n")
        held = self._held() + 1  # this one is watched next
        if self.room is not None and held > self.room:
            self.room = held  # the scheduler took more than before: its limit was raised
        return self._handle(spec, job_id)

    async def _submit_once(self, spec: TaskSpec, command: str) -> CommandResult:
        """Run the submit command once. When the connection drops while it runs, the job may
        have got in all the same: what the command did is read from its record on the host
        (waiting for it to end there), and the command runs again only if it never started."""
        lost: TransportError | None = None
        for _ in range(3):
            try:
                return await self.transport.run(command)
            except TransportError as e:
                if not e.transient:
                    raise
                lost = e
            found = await self._read_record(spec, through_outages=True)
            if found is not None:
                text, rc = found
                if rc is None:  # still running after _RECORD_WAIT: it is not run again
                    rc = 0 if self.scheduler.job_id(text) is not None else 1
                return CommandResult(rc, text, "")
        assert lost is not None
        raise lost

    async def _read_record(
        self, spec: TaskSpec, *, through_outages: bool = False
    ) -> tuple[str, int | None] | None:
        """The submission record of ``spec`` on the host and the submit command's exit status:
        None when there is none (the command never ran); the status is None when the command
        has not ended after ``_RECORD_WAIT`` seconds. A record with the job's id is taken at
        once; one without it and not yet ended is read again until it ends."""
        path = shlex.quote(posixpath.join(self.job_dir(spec), self._record_name(spec)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RECORD_WAIT
        while True:
            try:
                res = await self.transport.run(f"cat {path}", idempotent=True)
            except TransportError as e:
                if not (through_outages and e.transient) or loop.time() > deadline:
                    raise
                await asyncio.sleep(1.0)
                continue
            if res.returncode != 0:
                return None
            text = res.stdout
            ends = [x for x in text.splitlines() if x.startswith(_RECORD_END + " ")]
            rc = int(ends[-1].split()[1]) if ends and ends[-1].split()[1].isdigit() else None
            if ends or self.scheduler.job_id(text) is not None or loop.time() > deadline:
                return text, rc if ends else None
            await asyncio.sleep(0.5)

    def _full(self, spec: TaskSpec, res: CommandResult) -> None:
        """The scheduler refused ``spec``'s job as over its limit: learn how many it takes and
        raise :class:`SubmitLater` (or, refused again and again with no job of ours in it, fall
        through to the refusal's error)."""
        held = self._held() + self._submitting
        said = _said(res.output).splitlines()[-1:] or [f"exit status {res.returncode}"]
        if held:
            self.room = held
            jobs = "its job" if held == 1 else f"one of its {held} jobs"
            why = (
                f"the scheduler is full ({said[0]}); submitting again when {jobs} "
                f"on host {self.host!r} ends"
            )
            _append(spec.stdout_path, f"[sharin] {why}\n")
            raise SubmitLater(why)
        tries = self._refused.get(spec.key, 0)
        if tries >= len(_BACKOFF):
            self._refused.pop(spec.key, None)
            return  # reported as not accepted, with what the scheduler said
        self._refused[spec.key] = tries + 1
        delay = _BACKOFF[tries]
        self._not_before = max(self._not_before, time.monotonic() + delay)
        _append(spec.stdout_path, f"[sharin] the scheduler is full; retrying in {delay:.0f} s\n")
        raise SubmitLater(f"the scheduler is full ({said[0]}); retrying in {delay:.0f} s")

    def _handle(self, spec: TaskSpec, job_id: str, *, bulk: bool | None = None) -> JobHandle:
        data: dict[str, object] = {
            "dir": self.job_dir(spec),
            "bulk": spec.bulk is not None if bulk is None else bulk,
            "script": self._scripts.get(spec.key, (spec.script, False))[0],
            **self._set_data(spec),
        }
        return JobHandle(self.kind, self.host, job_id, data)

    def describe(self, handle: JobHandle) -> str:
        return f"{self.scheduler.name} job {handle.native_id} on {self.host}"

    async def recover(self, spec: TaskSpec) -> JobHandle | None:
        # a submission still running on the host (the engine died during it) is waited for
        found = await self._read_record(spec, through_outages=True)
        if found is None:
            return None
        text = found[0]
        job_id = self.scheduler.job_id(text)
        if job_id is None:
            return None
        first = text.splitlines()[0] if text else ""
        if " directives=1" in first:
            self._scripts.setdefault(spec.key, (job_script_name(spec.script), False))
        return self._handle(spec, job_id, bulk=f"{_RECORD_TAG} bulk=1" in text)

    # ------------------------------------------------------------------ wait
    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        return await self._watch(handle, spec, attach=False)

    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        return await self._watch(handle, spec, attach=True)

    async def _watch(self, handle: JobHandle, spec: TaskSpec, *, attach: bool) -> JobResult:
        decided = self._decided_result(handle)
        if decided is not None:
            return decided
        loop = asyncio.get_running_loop()
        w = _Watch(
            handle.native_id,
            attach,
            loop.create_future(),
            bulk=bool(handle.data.get("bulk")),
            on_running=_once(spec.on_running, self.describe(handle)),
        )
        span = handle.data.get("range")
        if isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span):
            w.span = (span[0], span[1])
        try:
            result = await self._poller.watch(w)
        finally:
            self._job_ended()
        result = self._ended(handle, result)
        await self._collect_logs(handle, spec)
        return result

    async def _query(self, command: str) -> CommandResult | None:
        res = await self._poller.run(self.transport, command)
        if self.scheduler.answered(res.returncode, res.stderr):
            self._poller.answered()
            return res
        self._failed(command, res.output.strip() or f"exit {res.returncode}")
        return None

    def _failed(self, command: str, said: str) -> None:
        """One more status check that gave no answer; past ``maxStatusCheckError`` every
        watched job becomes unknown (the engine re-attaches on the next run)."""
        self._poller.failed(f"{command.split()[0]}: {said}")

    async def _table(
        self, command: str | None, ids: list[str], *, after: bool
    ) -> dict[str, JobState] | None:
        """Run one status command and read its output once; None when it gave no answer."""
        if command is None:
            return {}
        res = await self._query(command)
        if res is None:
            return None
        try:
            return await _read(self.scheduler, res.stdout, ids, after=after)
        except StatusOutputError as e:
            self._failed(command, str(e))
            return None

    async def _tables(self, ids: list[str], *, after: bool) -> dict[str, JobState] | None:
        """The states of ``ids``: one query for all of them, or one per job where the
        definition's expressions cannot tell the jobs of one output apart."""
        s = self.scheduler
        one_each = s.history_per_job if after else s.per_job
        groups = [[i] for i in ids] if one_each and len(ids) > 1 else [ids]
        table: dict[str, JobState] = {}
        for group in groups:
            command = s.history_command(group) if after else s.status_command(group)
            part = await self._table(command, group, after=after)
            if part is None:
                return None
            table.update(part)
        return table

    async def _ask(
        self, ids: list[str], *, bulk: bool
    ) -> tuple[dict[str, JobState], dict[str, JobResult | None] | None] | None:
        """One status query for ``ids``, then one history query for those no longer queued
        or running whose exit code it did not give.

        Returns the queued or running ids with their state, and for each ended id its
        result (None when the scheduler has no record of it; the whole dict None when the
        history query failed), or None when the status query failed.
        """
        if bulk:
            return await self._ask_bulk(ids)
        s = self.scheduler
        table = await self._tables(ids, after=False)
        if table is None:
            return None
        live: dict[str, JobState] = {}
        ended: dict[str, JobResult | None] = {}
        history: list[str] = []
        for i in ids:
            st = table.get(i)
            if st is not None and st.live:
                live[i] = st
            elif st is not None and st.state == DONE and st.returncode is not None:
                ended[i] = self._result(i, st)
            else:
                history.append(i)
        if not history:
            return live, ended
        after = await self._tables(history, after=True)
        if after is None:
            return live, None
        for i in history:
            st = after.get(i)
            if st is not None and st.live:  # requeued, or the accounting runs ahead of the queue
                live[i] = st
                continue
            if st is None or st.state != DONE:
                before = table.get(i)
                # the queue said how it ended (e.g. TIMEOUT) but the record lacks the code
                st = before if before is not None and not s.status_ok(before.status) else st
            ended[i] = self._result(i, st) if st is not None and st.state == DONE else None
        return live, ended

    async def _ask_bulk(
        self, ids: list[str]
    ) -> tuple[dict[str, JobState], dict[str, JobResult | None] | None] | None:
        s = self.scheduler
        if s.arrays:
            return await self._ask_arrays(ids)
        res = await self._query(s.stat_command(ids, bulk=True))
        if res is None:
            return None
        live = {i: JobState(RUNNING) for i in ids if s.is_running(res.stdout, i, bulk=True)}
        ended = [i for i in ids if i not in live]
        if not ended:
            return live, {}
        after = await self._query(s.stat_command(ended, bulk=True, after=True))
        if after is None:
            return live, None
        return live, {i: self._bulk_result(after, i) for i in ended}

    async def _rows(self, group: list[_Watch]) -> dict[str, _Row]:
        """The poller's query: the plain jobs' states in one status query (and one history
        query for those that left the queue), then the bulk jobs' likewise."""
        rows: dict[str, _Row] = {}
        for bulk in (False, True):
            ids = [w.key for w in group if w.bulk == bulk and not w.future.done()]
            if not ids:
                continue
            answer = await self._ask(ids, bulk=bulk)
            if answer is None:
                continue
            live, ended = answer
            rows.update(live)
            rows.update(ended or {})
        return rows

    def _settle(self, w: _Watch, row: _Row) -> JobResult | None:
        """What a job's row means: how it ended, or None while it is queued or running, or
        while a job that left the queue may still get its record."""
        if isinstance(row, JobState):
            w.seen = True
            if row.state == RUNNING and w.on_running is not None:
                w.on_running()
                w.on_running = None
            return None
        if row is not None:
            return row
        w.misses += 1
        now = time.monotonic()
        if w.first_miss is None:
            w.first_miss = now
        patience = (
            _SEEN_MISS_SECONDS
            if w.seen and self.scheduler.history_command([w.key]) is not None
            else _MISS_SECONDS
        )
        if w.misses >= _MISSES and now - w.first_miss >= patience + 2 * self.interval:
            return JobResult(None, self._no_record(w.key), lost=w.attach and not w.seen)
        return None

    def _no_record(self, job_id: str) -> str:
        s = self.scheduler
        said = f"{s.name} has no record of job {job_id} on {self.host!r}"
        if s.history_command([job_id]) is None:
            said += (
                f" ({s.name} keeps no finished jobs, so how it ended is unknown: enable the "
                "scheduler's job history and use a definition that reads it)"
            )
        return said

    def _bulk_result(self, res: CommandResult, job_id: str) -> JobResult | None:
        s = self.scheduler
        found = s.bulk_outcome(res.stdout, job_id)
        if found is None:
            return None
        subjobs = {i: (o.returncode, o.status) for i, o in sorted(found.subjobs.items())}
        good = [i for i, o in found.subjobs.items() if o.returncode == 0 and s.status_ok(o.status)]
        n = len(subjobs)
        return JobResult(
            0 if good else 1,
            f"{len(good)} of {n} sub jobs of bulk job {job_id} ended with exit code 0",
            subjobs=subjobs,
        )

    def _result(self, job_id: str, st: JobState) -> JobResult | None:
        """How an ended job ended, from its row in a status output; None when the row does
        not say (no exit code, and a status that is not a failure)."""
        s = self.scheduler
        rc = st.returncode
        status = st.status
        said = f"job {job_id}" + (f" exit code {rc}" if rc is not None else "")
        if status not in (None, "0"):
            meaning = s.status_meaning.get(str(status)) or st.reason
            word = "status code" if status.lstrip("-").isdigit() else "state"
            said += f", {word} {status}" + (f" ({meaning})" if meaning else "")
        if not s.status_ok(status):
            accepted = ", ".join(sorted(s.acceptable_status))
            # a failure whatever the exit code says: 0 (a TIMEOUT's, say) is no success
            return JobResult(rc or None, f"{said}; {s.name} accepts {accepted} only")
        if rc is None:
            return None
        if rc == 6 and s.supports_step:
            # WHEEL's reading: a step deleted by its dependency statement ends with code 6
            return JobResult(0, f"{said}: taken as a step deleted by its dependency statement")
        return JobResult(rc, said)

    async def _collect_logs(self, handle: JobHandle, spec: TaskSpec) -> None:
        """Append the job's own stdout/stderr files (when the definition names them) to the logs."""
        if handle.data.get("bulk"):
            return
        for template, dest in (
            (self.scheduler.stdout_file, spec.stdout_path),
            (self.scheduler.stderr_file, spec.stderr_path),
        ):
            if not template:
                continue
            script = str(handle.data.get("script") or spec.script)
            name = template.format(script=script, jobid=handle.native_id)
            path = posixpath.join(str(handle.data.get("dir") or self.job_dir(spec)), name)
            with contextlib.suppress(TransportError):
                res = await self.transport.run(f"cat {shlex.quote(path)}", idempotent=True)
                if res.returncode == 0 and res.stdout:
                    _append(dest, res.stdout)

    # ------------------------------------------------------------------ other calls
    async def cancel(self, handle: JobHandle) -> None:
        job = self._cancel_id(handle)
        if job is None:
            return  # never submitted
        res = await self.transport.run(self.scheduler.cancel_command(job))
        if res.returncode != 0:
            raise ExecutorError(
                f"host {self.host!r}: {self.scheduler.delete} {handle.native_id} failed: "
                f"{res.output.strip()}"
            )

    async def status(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        answer: dict[JobHandle, JobStatus] = {}
        for bulk in (False, True):
            group = {h.native_id: h for h in handles if bool(h.data.get("bulk")) == bulk}
            if not group:
                continue
            found = await self._ask(list(group), bulk=bulk)
            if found is None:
                continue
            live, ended = found
            for job_id, h in group.items():
                st = live.get(job_id)
                if st is not None:
                    word = st.status or ("queued" if st.state == QUEUED else "queued or running")
                    answer[h] = JobStatus(st.state, word)
                    continue
                r = ended.get(job_id) if ended is not None else None
                if r is None:
                    answer[h] = JobStatus("unknown", "no record")
                else:
                    answer[h] = JobStatus("finished" if r.ok else "failed", r.message, r.returncode)
        return answer

    async def close(self) -> None:
        await self._poller.close()
        await self.transport.close()


#: outputs longer than this are read in a worker thread, off the event loop
_BIG_OUTPUT = 200_000


async def _read(
    s: SchedulerDefinition, text: str, ids: list[str], *, after: bool
) -> dict[str, JobState]:
    if len(text) < _BIG_OUTPUT:
        return s.parse_status(text, ids, after=after)
    return await asyncio.to_thread(s.parse_status, text, ids, after=after)


def _once(told: Callable[[str], None] | None, where: str) -> Callable[[], None] | None:
    if told is None:
        return None
    return lambda: told(where)


def _said(output: str) -> str:
    """What the submit command printed, without the record's first line."""
    lines = output.splitlines()
    return "\n".join(x for x in lines if not x.startswith(_RECORD_TAG)).strip()


def _append(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
