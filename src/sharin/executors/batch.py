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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..engine import Executor, JobHandle, JobResult, JobStatus, TaskSpec
from ..errors import ExecutorError, TransportError
from ..model import HostConfig
from ._scheduler import SchedulerDefinition
from ._transport import CommandResult, Transport
from .local import prepare_task_script

__all__ = ["BatchExecutor"]

#: how many status checks may miss an ended job's record before it counts as unknown, and
#: for how long at least (some schedulers show a job only a second or so after accepting it)
_MISSES = 3
_MISS_SECONDS = 2.0
#: waits between submissions the scheduler refused as over its limit
#: first line of a submission record
_RECORD_TAG = "sharin-submit"
_BACKOFF = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)


@dataclass
class _Watch:
    job_id: str
    bulk: bool
    attach: bool
    future: asyncio.Future[JobResult]
    misses: int = 0
    first_miss: float | None = None
    seen: bool = False


class BatchExecutor(Executor):
    """Submits task scripts as batch jobs on one host and watches them in batches."""

    kind = "batch"

    def __init__(
        self, host: HostConfig, scheduler: SchedulerDefinition, transport: Transport
    ) -> None:
        super().__init__(host=host.name, max_concurrent=host.num_job)
        self.config = host
        self.scheduler = scheduler
        self.transport = transport
        self.interval = max(0.05, float(host.status_check_interval))
        self.max_errors = int(host.raw.get("maxStatusCheckError") or 10)
        self._watches: dict[str, _Watch] = {}
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._errors = 0
        #: how many status queries were run (for tests and benchmarks: one per interval)
        self.queries = 0

    # ------------------------------------------------------------------ files
    def job_dir(self, spec: TaskSpec) -> str:
        """Where the job runs: the task's own directory, or ``<path>/<run>/<task>`` on the host."""
        if not self.config.path:
            return str(spec.workdir)
        return posixpath.join(self.config.path, spec.run_tag or "run", spec.key)

    def _staged(self, spec: TaskSpec) -> bool:
        return self.job_dir(spec) != str(spec.workdir)

    async def stage_in(self, spec: TaskSpec) -> None:
        prepare_task_script(spec)
        if self._staged(spec):
            await self.transport.put_dir(spec.workdir, self.job_dir(spec))

    async def stage_out(self, spec: TaskSpec, result: JobResult) -> None:
        if not self._staged(spec):
            return
        patterns = [*spec.outputs, *spec.include]
        if patterns:
            await self.transport.get(self.job_dir(spec), patterns, spec.workdir, spec.exclude)

    # ------------------------------------------------------------------ submit
    def _record_name(self, spec: TaskSpec) -> str:
        return f".sharin-submit.{spec.log_stem}.{spec.attempt}"

    def submit_command(self, spec: TaskSpec) -> str:
        s = self.scheduler
        parts = [s.submit]
        if spec.queue:
            parts.append(f"{s.queue_opt}{shlex.quote(spec.queue)}")
        if spec.step is not None:
            if s.step_option is None:
                raise ExecutorError(
                    f"host {self.host!r}: scheduler {s.name} has no step jobs; "
                    "use a host whose jobScheduler supports them"
                )
            dep = f",{spec.step.dependency}" if spec.step.dependency else ""
            template = s.step_option
            if spec.step.job_id is not None and s.step_join_option:
                template = s.step_join_option
            parts.append(
                template.format(
                    name=spec.step.name,
                    number=spec.step.number,
                    dependency=dep,
                    jobid=spec.step.job_id or "",
                )
            )
        if spec.bulk is not None:
            if s.bulk_option is None:
                raise ExecutorError(
                    f"host {self.host!r}: scheduler {s.name} has no bulk jobs; "
                    "use a host whose jobScheduler supports them"
                )
            parts.append(s.bulk_option.format(start=spec.bulk.start, end=spec.bulk.end))
        if spec.submit_option:
            parts.append(spec.submit_option)
        parts.append("./" + shlex.quote(spec.script))
        added = {k: v for k, v in spec.env.items() if os.environ.get(k) != v}
        env = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in sorted(added.items()) if k.isidentifier()
        )
        record = shlex.quote(self._record_name(spec))
        # the record starts with what recover() needs besides the id the scheduler prints
        kind = f"{_RECORD_TAG} bulk={int(spec.bulk is not None)}"
        return (
            f"cd {shlex.quote(self.job_dir(spec))} && "
            f"(echo {kind}; exec {'env ' + env + ' ' if env else ''}{' '.join(parts)}) "
            f"> {record} 2>&1; rc=$?; cat {record}; exit $rc"
        )

    async def submit(self, spec: TaskSpec) -> JobHandle:
        command = self.submit_command(spec)
        for delay in (*_BACKOFF, None):
            res = await self.transport.run(command)
            if not self.scheduler.exceeded(res.returncode, res.output) or delay is None:
                break
            _append(
                spec.stdout_path, f"[sharin] the scheduler is full; retrying in {delay:.0f} s\n"
            )
            await asyncio.sleep(delay)
        job_id = self.scheduler.job_id(res.output)
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
        return self._handle(spec, job_id)

    def _handle(self, spec: TaskSpec, job_id: str, *, bulk: bool | None = None) -> JobHandle:
        return JobHandle(
            self.kind,
            self.host,
            job_id,
            {
                "dir": self.job_dir(spec),
                "bulk": spec.bulk is not None if bulk is None else bulk,
                "script": spec.script,
            },
        )

    def describe(self, handle: JobHandle) -> str:
        return f"{self.scheduler.name} job {handle.native_id} on {self.host}"

    async def recover(self, spec: TaskSpec) -> JobHandle | None:
        path = posixpath.join(self.job_dir(spec), self._record_name(spec))
        res = await self.transport.run(f"cat {shlex.quote(path)}")
        if res.returncode != 0:
            return None
        job_id = self.scheduler.job_id(res.stdout)
        if job_id is None:
            return None
        return self._handle(spec, job_id, bulk=f"{_RECORD_TAG} bulk=1" in res.stdout)

    # ------------------------------------------------------------------ wait
    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        return await self._watch(handle, spec, attach=False)

    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        return await self._watch(handle, spec, attach=True)

    async def _watch(self, handle: JobHandle, spec: TaskSpec, *, attach: bool) -> JobResult:
        loop = asyncio.get_running_loop()
        w = _Watch(handle.native_id, bool(handle.data.get("bulk")), attach, loop.create_future())
        self._watches[w.job_id] = w
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())
        try:
            result = await asyncio.shield(w.future)
        finally:
            self._watches.pop(w.job_id, None)
        await self._collect_logs(handle, spec)
        return result

    async def _poll(self) -> None:
        while self._watches:
            try:
                await self._check()
            except Exception as e:  # noqa: BLE001 - every watch must learn of it, not hang
                for w in list(self._watches.values()):
                    if not w.future.done():
                        w.future.set_exception(e)
                return
            if not self._watches:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def _query(self, command: str) -> CommandResult | None:
        self.queries += 1
        try:
            res = await self.transport.run(command)
        except TransportError as e:
            res = CommandResult(255, "", str(e))
        if res.returncode == 0 or res.returncode in self.scheduler.acceptable_rt:
            self._errors = 0
            return res
        self._errors += 1
        if self._errors > self.max_errors:
            msg = (
                f"host {self.host!r}: the status command failed {self._errors} times in a row "
                f"({command.split()[0]}: {res.output.strip() or f'exit {res.returncode}'}); "
                "check the scheduler on the host, then `sharin run` again to re-attach"
            )
            for w in list(self._watches.values()):
                if not w.future.done():
                    w.future.set_result(JobResult(None, msg, unknown=True))
        return None

    async def _ask(
        self, ids: list[str], *, bulk: bool
    ) -> tuple[set[str], dict[str, JobResult | None] | None] | None:
        """One ``stat`` for ``ids``, then one ``statAfter`` for those no longer queued or running.

        Returns the ids still running, and for each ended id its result (None when the
        scheduler has no record of it; the whole dict None when ``statAfter`` failed), or None
        when ``stat`` failed.
        """
        s = self.scheduler
        res = await self._query(s.stat_command(ids, bulk=bulk))
        if res is None:
            return None
        running = {i for i in ids if s.is_running(res.stdout, i, bulk=bulk)}
        ended = [i for i in ids if i not in running]
        if not ended:
            return running, {}
        after = await self._query(s.stat_command(ended, bulk=bulk, after=True))
        if after is None:
            return running, None
        return running, {i: self._result(after, i, bulk=bulk) for i in ended}

    async def _check(self) -> None:
        for bulk in (False, True):
            group = {
                w.job_id: w
                for w in self._watches.values()
                if w.bulk == bulk and not w.future.done()
            }
            if not group:
                continue
            answer = await self._ask(list(group), bulk=bulk)
            if answer is None:
                continue
            running, ended = answer
            for job_id in running:
                group[job_id].seen = True
            for job_id, result in (ended or {}).items():
                w = group[job_id]
                if result is not None:
                    w.future.set_result(result)
                    continue
                w.misses += 1
                now = time.monotonic()
                if w.first_miss is None:
                    w.first_miss = now
                if w.misses >= _MISSES and now - w.first_miss >= _MISS_SECONDS + 2 * self.interval:
                    w.future.set_result(
                        JobResult(
                            None,
                            f"{self.scheduler.name} has no record of job {job_id} on {self.host!r}",
                            lost=w.attach and not w.seen,
                        )
                    )

    def _result(self, res: CommandResult, job_id: str, *, bulk: bool) -> JobResult | None:
        s = self.scheduler
        if res.returncode != 0:  # in acceptableRt: WHEEL takes the job as ended well
            return JobResult(0, f"status command exit {res.returncode} taken as success")
        if bulk:
            found = s.bulk_outcome(res.stdout, job_id)
            if found is None:
                return None
            subjobs = {i: (o.returncode, o.status) for i, o in sorted(found.subjobs.items())}
            good = [
                i for i, o in found.subjobs.items() if o.returncode == 0 and s.status_ok(o.status)
            ]
            n = len(subjobs)
            return JobResult(
                0 if good else 1,
                f"{len(good)} of {n} sub jobs of bulk job {job_id} ended with exit code 0",
                subjobs=subjobs,
            )
        out = s.outcome(res.stdout, job_id)
        if out is None:
            return None
        rc = out.returncode
        status = out.status
        said = f"job {job_id} exit code {rc}"
        if status not in (None, "0"):
            meaning = s.status_meaning.get(str(status))
            said += f", status code {status}" + (f" ({meaning})" if meaning else "")
        if not s.status_ok(status):
            accepted = ", ".join(sorted(s.acceptable_status))
            return JobResult(None, f"{said}; {s.name} accepts status codes {accepted} only")
        if rc == 6:
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
            name = template.format(script=spec.script, jobid=handle.native_id)
            path = posixpath.join(str(handle.data.get("dir") or self.job_dir(spec)), name)
            with contextlib.suppress(TransportError):
                res = await self.transport.run(f"cat {shlex.quote(path)}")
                if res.returncode == 0 and res.stdout:
                    _append(dest, res.stdout)

    # ------------------------------------------------------------------ other calls
    async def cancel(self, handle: JobHandle) -> None:
        res = await self.transport.run(f"{self.scheduler.delete} {shlex.quote(handle.native_id)}")
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
            running, ended = found
            for job_id, h in group.items():
                if job_id in running:
                    answer[h] = JobStatus("running", "queued or running")
                    continue
                r = ended.get(job_id) if ended is not None else None
                if r is None:
                    answer[h] = JobStatus("unknown", "no record")
                else:
                    answer[h] = JobStatus("finished" if r.ok else "failed", r.message, r.returncode)
        return answer

    async def close(self) -> None:
        if self._poller is not None and not self._poller.done():
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.transport.close()


def _said(output: str) -> str:
    """What the submit command printed, without the record's first line."""
    lines = output.splitlines()
    return "\n".join(x for x in lines if not x.startswith(_RECORD_TAG)).strip()


def _append(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
