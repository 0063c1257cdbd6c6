"""Job arrays and chains of dependent jobs, for :class:`~sharin.executors.BatchExecutor`.

Outside PJM a bulk job is one job array and a step job a chain of dependent jobs: the array is
read through its family's reader (every sub job's row in the one status query per poll, then
one history query), and a step that its scheduler never started because a step it waits for
ended the wrong way counts as deleted by its dependency statement (WHEEL counts PJM's code 6 as
success). On PJM, a step whose step job ended before it could join is decided here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import posixpath
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..engine import JobHandle, JobResult, TaskSpec
from ..model import COMPONENT_FILE
from ._poller import Poller
from ._scheduler import (
    JobState,
    Outcome,
    SchedulerDefinition,
    StatusOutputError,
    parse_statement,
)
from ._schedulers import DONE, RUNNING
from ._transport import CommandResult

__all__ = ["JobSets"]


class JobSets:
    """What :class:`BatchExecutor` adds for job arrays and chains (a mixin: it uses the
    executor's scheduler, status queries and watches)."""

    kind: str
    host: str
    scheduler: SchedulerDefinition
    _poller: Poller[Any, Any]
    #: how each job watched here ended: (ok, deleted by a dependency statement)
    _outcomes: dict[str, tuple[bool, bool]]
    #: PJM steps decided here, never submitted (their step job had ended): their codes
    _decided: dict[str, Outcome]

    def job_dir(self, spec: TaskSpec) -> str:
        raise NotImplementedError

    async def _query(self, command: str) -> CommandResult | None:
        raise NotImplementedError

    def _failed(self, command: str, said: str) -> None:
        raise NotImplementedError

    def _set_data(self, spec: TaskSpec) -> dict[str, object]:
        """What a handle keeps for a bulk job (its sub jobs' numbers) and a step of a chain
        (what it waits for)."""
        data: dict[str, object] = {}
        if spec.bulk is not None:
            data["range"] = [spec.bulk.start, spec.bulk.end]
        if spec.step is not None and self.scheduler.chains_steps:
            where = posixpath.join(spec.key, COMPONENT_FILE)
            wait = self.scheduler.step_conditions(spec.step.dependency, spec.step.earlier, where)
            data["after"] = [list(x) for x in wait]
        return data

    def _ended(self, handle: JobHandle, result: JobResult) -> JobResult:
        """The result of a watched job, with a step deleted by its chain taken as WHEEL takes
        it; remembered for the steps after it."""
        result = self._deleted_step(handle, result)
        self._outcomes[handle.native_id] = (result.ok, "dependency statement" in result.message)
        return result

    def _decided_result(self, handle: JobHandle) -> JobResult | None:
        """The result of a PJM step decided here without submitting it."""
        deleted = handle.data.get("deleted")
        if not deleted:
            return None
        return JobResult(
            0,
            f"step {handle.native_id} did not run: {deleted}; deleted by its step dependency "
            "statement",
        )

    def _cancel_id(self, handle: JobHandle) -> str | None:
        """The id to delete, or None: never submitted. A whole array goes by its array id,
        and a step of a PJM step job by the step job's id: deleting the steps one by one,
        the scheduler could start a later step in the moment after the one before it was
        deleted and before its own deletion arrived."""
        if handle.data.get("deleted"):
            return None
        s = self.scheduler
        job = handle.native_id
        if handle.data.get("bulk") and s.arrays and s.family is not None:
            return s.family.array_id(job)
        if s.supports_step and not s.chains_steps and "_" in job:
            return job.split("_", 1)[0]
        return job

    def _joined_too_late(self, spec: TaskSpec, output: str) -> bool:
        """Whether PJM refused a step because its step job had already ended (the steps
        before it ended before this one could join: a slow submission)."""
        step = spec.step
        return (
            step is not None
            and step.job_id is not None
            and bool(step.earlier)
            and not self.scheduler.chains_steps
            and _STEP_JOB_ENDED.search(output) is not None
        )

    async def _step_after_its_job(self, spec: TaskSpec) -> JobHandle | TaskSpec:
        """A step whose step job ended before it joined: its dependency statement is decided
        here from the ended steps' codes, as PJM would have decided it, and the step is
        submitted as the start of a new step job (the spec returned), or counted deleted
        without running (the handle returned)."""
        step = spec.step
        assert step is not None
        _note(
            spec.stdout_path,
            "[sharin] the step job had ended before this step could join it; deciding its "
            "dependency statement from the steps that ended\n",
        )
        verdict = await self._statement_verdict(step.dependency, step.earlier)
        if verdict is not None:
            data = {"dir": self.job_dir(spec), "bulk": False, "deleted": verdict}
            fake = f"{step.job_id}_{step.number}"
            self._decided[fake] = Outcome(0, "6")  # as PJM records a deleted step
            return JobHandle(self.kind, self.host, fake, data)
        alone = dataclasses.replace(step, job_id=None, dependency=None, earlier=())
        return dataclasses.replace(spec, step=alone)

    async def _statement_verdict(
        self, statement: str | None, earlier: Sequence[tuple[int, str, str | None]]
    ) -> str | None:
        """Why PJM would delete a step with ``statement`` after the ended ``earlier`` steps
        (None: it would run it)."""
        s = self.scheduler
        ids = [job for _, job, _ in earlier]
        command = s.history_command(ids)
        res = await self._query(command) if command else None
        if res is None:
            return None
        ended = {
            num: self._decided.get(job) or s.outcome(res.stdout, job) for num, job, _ in earlier
        }
        for num, _, stmt in earlier:
            o = ended.get(num)
            with contextlib.suppress(ValueError):
                if (
                    stmt
                    and o is not None
                    and o.status == "6"
                    and parse_statement(stmt).deletes_later
                ):
                    return f"step {num} was deleted by its statement {stmt}, which deletes the later steps"
        if not statement:
            return None
        try:
            st = parse_statement(statement)
        except ValueError:
            return None
        for num in st.steps or (earlier[-1][0],):
            o = ended.get(num)
            if o is None:
                continue
            value = o.returncode if st.field == "ec" else o.status
            if value is not None and str(value).isdigit() and _holds(int(value), st.op, st.value):
                return f"step {num} ended with {st.field} {value} ({statement})"
        return None

    def _deleted_step(self, handle: JobHandle, result: JobResult) -> JobResult:
        """A step of a chain that did not start because a step it waits for ended the wrong
        way: the scheduler deleted it, which WHEEL counts as success (PJM's code 6)."""
        after = handle.data.get("after")
        f = self.scheduler.family
        if result.ok or result.unknown or not isinstance(after, list) or f is None:
            return result
        for kind, job in after:
            ended = self._outcomes.get(str(job))
            if ended is None:
                continue
            ok, deleted = ended
            if (
                (kind == "ok" and (not ok or deleted))
                or (kind == "notok" and ok and not deleted)
                or (kind == "any" and deleted and not f.any_after_deleted)
            ):
                why = {"ok": "did not succeed", "notok": "succeeded"}.get(kind, "did not run")
                return JobResult(
                    0,
                    f"job {handle.native_id} did not run: job {job} {why}, so its "
                    "dependency statement deleted it",
                )
        return result

    async def _ask_arrays(
        self, ids: list[str]
    ) -> tuple[dict[str, JobState], dict[str, JobResult | None] | None] | None:
        """Job arrays: one status query for every array (its sub jobs' rows), then one
        history query for those whose sub jobs all left the queue."""
        s = self.scheduler
        f = s.family
        assert f is not None and s.bulkstat is not None
        names = {f.array_id(i): i for i in ids}

        async def table(command: str | None, group: list[str]) -> dict[str, JobState] | None:
            if command is None:
                return {}
            res = await self._query(command)
            if res is None:
                return None
            try:
                return await asyncio.to_thread(f.parse, res.stdout)
            except StatusOutputError as e:
                self._failed(command, str(e))
                return None

        def joined(group: list[str]) -> str:
            return s.stat_delimiter.join(shlex.quote(x) for x in group)

        group = list(names)
        now = await table(f.status_command(s.bulkstat, "", group, joined(group)), group)
        if now is None:
            return None
        live: dict[str, JobState] = {}
        ended: dict[str, JobResult | None] = {}
        history: list[str] = []
        for name, i in names.items():
            st = now.get(name) or now.get(i)
            subs = f.subjobs(now, i)
            if (st is not None and st.live) or any(x.live for x in subs.values()):
                live[i] = st if st is not None and st.live else JobState(RUNNING)
                continue
            found = self._array_result(i, subs)
            if found is not None:
                ended[i] = found
            else:
                history.append(name)
        if not history:
            return live, ended
        after_cmd = f.history_command(s.bulkstat_after or s.bulkstat, history, joined(history))
        then = await table(after_cmd, history)
        if then is None:
            return live, None
        for name in history:
            i = names[name]
            subs = {**f.subjobs(now, i), **f.subjobs(then, i)}
            if any(x.live for x in subs.values()):
                live[i] = JobState(RUNNING)
                continue
            ended[i] = self._array_result(i, subs, complete=False)
        return live, ended

    def _array_result(
        self, job_id: str, subs: dict[int, JobState], *, complete: bool = True
    ) -> JobResult | None:
        """How an array ended, from its sub jobs' states (indices as the scheduler gives
        them); None while a sub job's exit code is missing (or, with ``complete``, a sub
        job of its known range)."""
        s = self.scheduler
        assert s.family is not None
        base = s.family.array_base
        span = getattr(self._poller.watches.get(job_id), "span", None)
        if not subs or any(x.state != DONE for x in subs.values()):
            return None
        if any(x.returncode is None and s.status_ok(x.status) for x in subs.values()):
            return None
        if complete and span is not None:
            start, end = span
            if any(n + base not in subs for n in range(start, end + 1)):
                return None
        subjobs = {n - base: (x.returncode, x.status) for n, x in sorted(subs.items())}
        good = [n for n, x in subs.items() if x.returncode == 0 and s.status_ok(x.status)]
        return JobResult(
            0 if good else 1,
            f"{len(good)} of {len(subjobs)} sub jobs of job array {job_id} ended with exit code 0",
            subjobs=subjobs,
        )


#: what PJM says when a step joins a step job that has already ended
_STEP_JOB_ENDED = re.compile(r"\bhas already ended\b")


def _holds(value: int, op: str, text: str) -> bool:
    """PJM's comparison of a step's code with a statement's value (``1``, ``1,2``, ``1-3``)."""
    wanted: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            wanted.update(range(int(lo), int(hi if hi.isdigit() else lo) + 1))
    if not wanted:
        return False
    if op == "==":
        return value in wanted
    if op == "!=":
        return value not in wanted
    first = min(wanted)
    return {"<": value < first, ">": value > first, "<=": value <= first, ">=": value >= first}[op]


def _note(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
