"""Fujitsu TCS job models: step jobs (``stepjob`` + ``stepjobTask``) and bulk jobs (``bulkjobTask``).

A **stepjob** submits its steps, in step-number order, as one step job of the scheduler: the
first step names the job after the stepjob, later steps join it by its id. Each step is submitted
as soon as the one before it was accepted (the scheduler runs them one after another and applies
their dependency statements), and each is then watched like any task. A step the scheduler
deleted because of its dependency statement ends with code 6, which WHEEL counts as success.

A **bulkjobTask** is one job with sub jobs ``start``…``end``. With ``usePSSettingFile`` the
parameter space of its ``parameterSetting.json`` is expanded inside the task's own directory: for
sub job *n* each target file ``f`` is rendered to ``n.f`` and each file parameter copied to
``n.<file>``, and ``parameterSet.wheel.txt`` lists what each sub job got. After the job,
``subjob_status.wheel.txt`` holds every sub job's exit and status codes. The task finished when
any sub job exited 0, unless ``manualFinishCondition`` hands the decision to its ``condition``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ProjectError
from ..model import (
    PARAMETER_FILE,
    Component,
    State,
    expand_space,
    load_parameter_setting,
    render_template,
    step_order,
)
from ._protocol import BulkRequest, JobHandle, JobResult, StepRequest, TaskSpec

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "PARAMETER_SET_FILE",
    "SUBJOB_STATUS_FILE",
    "JobOptions",
    "expand_bulk",
    "run_bulkjob",
    "run_stepjob",
]

SUBJOB_STATUS_FILE = "subjob_status.wheel.txt"
PARAMETER_SET_FILE = "parameterSet.wheel.txt"


@dataclass(frozen=True)
class JobOptions:
    """How a job-like component changes one task's run (see :meth:`Engine._run_task`)."""

    host: str | None = None  #: run on this host with its scheduler (a stepjob's steps)
    queue: str | None = None
    submit_option: str | None = None  #: used when the task has none of its own
    step: StepRequest | None = None
    bulk: BulkRequest | None = None
    #: told the handle once the job was accepted (the caller tells itself None when the task
    #: ends without one)
    on_submitted: Callable[[JobHandle | None], None] | None = None
    #: called at stage-in of each attempt, after the inputs arrived: may change the spec
    prepare: Callable[[TaskSpec], TaskSpec] | None = None
    #: decides how an attempt ended, from the executor's result
    judge: Callable[[JobResult], Awaitable[JobResult]] | None = None


# ---------------------------------------------------------------------- step jobs
def _step_numbers(steps: list[Component]) -> list[int]:
    """``stepnum`` of each step when they are distinct whole numbers, else 0, 1, 2 … in order."""
    nums = [s.data.get("stepnum") for s in steps]
    if all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in nums) and len(
        set(nums)
    ) == len(nums):
        return [int(n) for n in nums]  # type: ignore[arg-type]
    return list(range(len(steps)))


def _told_none(tell: Callable[[JobHandle | None], None], _t: object) -> None:
    tell(None)


def _base_job_id(job_id: str) -> str:
    return job_id.split("_", 1)[0]


async def run_stepjob(
    self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    persist = cdir == c.directory
    early = self._enter_container(c, cdir, key)
    if early is not None:
        return early
    sub_env = {**env, **c.env}
    steps = step_order(c)
    numbers = _step_numbers(steps)
    base: str | None = None
    for s in steps:
        prev = self._prev.get(f"{key}/{s.name}" if key else s.name)
        if prev is not None and prev.handle:
            base = _base_job_id(JobHandle.from_json(prev.handle).native_id)
            break
    futures: list[asyncio.Task[str]] = []
    launched: list[Component] = []
    refused = False
    loop = asyncio.get_running_loop()
    for i, s in enumerate(steps):
        skey = f"{key}/{s.name}" if key else s.name
        if s.disabled or refused or self._halt:
            if s.disabled:
                self._emit(skey, s.type, State.SKIPPED, message="disabled")
            else:
                why = "the run is stopping" if self._halt else "an earlier step was not accepted"
                self._emit(skey, s.type, State.NOT_STARTED, message=why)
            continue
        accepted: asyncio.Future[JobHandle | None] = loop.create_future()

        def tell(h: JobHandle | None, fut: asyncio.Future[JobHandle | None] = accepted) -> None:
            if not fut.done():
                fut.set_result(h)

        dependency = None
        if s.data.get("useDependency") and s.data.get("dependencyForm"):
            dependency = str(s.data["dependencyForm"]).strip()
        request = StepRequest(c.name, numbers[i], dependency, base)
        options = JobOptions(
            host=c.host,
            queue=c.queue,
            submit_option=c.submit_option,
            step=request,
            on_submitted=tell,
        )
        t = asyncio.ensure_future(self._run_task(s, cdir / s.name, skey, sub_env, options))
        self._task_futs.add(t)
        t.add_done_callback(self._task_futs.discard)
        t.add_done_callback(functools.partial(_told_none, tell))  # also when cancelled unstarted
        futures.append(t)
        launched.append(s)
        handle = await accepted
        if handle is not None:
            base = base or _base_job_id(handle.native_id)
            continue
        await asyncio.wait([t])
        if t.cancelled() or t.result() != State.FINISHED.value:
            refused = True  # later steps cannot join a step job that never started
    states = await asyncio.gather(*futures, return_exceptions=True)
    # as in a workflow: a step that failed with ignoreFailure does not fail the stepjob (the
    # run still ends failed)
    ok = not refused
    for x, s in zip(states, launched, strict=True):
        if x == State.FAILED.value and s.ignore_failure:
            self._ignored_failures += 1
        elif x != State.FINISHED.value:
            ok = False
    if self._stopping:
        self._record(c, key, State.STOPPED, persist=persist, ended=True)
        return State.STOPPED.value
    if not ok:
        return self._finish(c, key, State.FAILED, persist, 0, None, "a step did not finish")
    self._record(c, key, State.FINISHED, persist=persist, ended=True)
    return State.FINISHED.value


# ---------------------------------------------------------------------- bulk jobs
def _shown(value: object) -> str:
    """A value as the JSON file shows it (``null``, ``true``, ``"x"``)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _int_field(c: Component, name: str) -> int:
    value = c.data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProjectError(f"[{name}]: {_shown(value)} is not a whole number", path=c.file)
    try:
        return int(value)
    except ValueError:
        raise ProjectError(
            f"[{name}]: {_shown(value)} is not a whole number", path=c.file
        ) from None


def _numbered(cdir: Path, rel: str, n: int) -> Path:
    """Sub job ``n``'s copy of ``rel``: ``dir/name`` becomes ``dir/<n>.name`` (as WHEEL names it)."""
    head, _, base = rel.rpartition("/")
    return cdir / head / f"{n}.{base}"


def expand_bulk(c: Component, cdir: Path) -> tuple[int, int]:
    """Write sub job *n*'s files (``n.<target>``) and ``parameterSet.wheel.txt``; return 0, N-1."""
    setting = load_parameter_setting(cdir / str(c.data.get("parameterFile") or PARAMETER_FILE))
    space = expand_space(setting, cdir)
    targets = [t.path() for t in setting.target_files]
    sources = {rel: (cdir / rel).read_text() for rel in targets}
    lines: list[str] = []
    n = -1
    for n, vector in enumerate(space):
        for rel in targets:
            out = _numbered(cdir, rel, n)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render_template(sources[rel], vector, source=cdir / rel))
        for f in vector.files:
            dst = _numbered(cdir, f, n)
            src = cdir / f
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
        params = list(vector.params.items())
        # WHEEL's format: the k-th target file with the k-th parameter
        for k, rel in enumerate(targets):
            label = f"BULKNUM_{n}_TARGETNUM_{k}"
            pkey, pval = params[k] if k < len(params) else ("", "")
            lines += [f'{label}_FILE="./{rel}"', f'{label}_KEY="{pkey}"', f'{label}_VALUE="{pval}"']
    if n < 0:
        raise ProjectError(f"{c.rel}: the parameter space is empty; no sub job to submit")
    if lines:
        (cdir / PARAMETER_SET_FILE).write_text("\n".join(lines) + "\n")
    return 0, n


def _bulk_range(c: Component, cdir: Path) -> tuple[int, int]:
    if c.data.get("usePSSettingFile", True):
        start, end = expand_bulk(c, cdir)
    else:
        start, end = _int_field(c, "startBulkNumber"), _int_field(c, "endBulkNumber")
        if start < 0 or end < start:
            raise ProjectError(
                f"{c.rel}: startBulkNumber {start} … endBulkNumber {end} is not a range",
                path=c.file,
            )
    c.data["startBulkNumber"], c.data["endBulkNumber"] = start, end
    return start, end


async def run_bulkjob(
    self: Engine, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    from ._control import condition_true

    def prepare(spec: TaskSpec) -> TaskSpec:
        start, end = _bulk_range(c, cdir)
        return dataclasses.replace(spec, bulk=BulkRequest(start, end))

    async def judge(result: JobResult) -> JobResult:
        lines = []
        for n, (rc, status) in sorted(result.subjobs.items()):
            lines += [f"RT_{n}={'' if rc is None else rc}", f"JOBSTATUS_{n}={status or ''}"]
        if lines:
            (cdir / SUBJOB_STATUS_FILE).write_text("\n".join(lines) + "\n")
        cond = c.data.get("condition")
        if not c.data.get("manualFinishCondition") or cond in (None, ""):
            return result
        ok = await condition_true(str(cond), cdir, {**env, **c.env})
        return JobResult(
            0 if ok else 1,
            f"{result.message}; finish condition {'held' if ok else 'did not hold'}",
            subjobs=result.subjobs,
        )

    options = JobOptions(prepare=prepare, judge=judge)
    return await self._run_task(c, cdir, key, env, options)
