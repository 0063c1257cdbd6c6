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
from collections.abc import Callable, Mapping
from pathlib import Path

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
from ._context import JobOptions, RunContext, start_component
from ._control import condition_true
from ._protocol import BulkRequest, JobHandle, JobResult, StepRequest, TaskSpec

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
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    start = await start_component(run, c, cdir, key, stage_in=True)
    if start.done is not None:
        return start.done
    persist = start.persist
    sub_env = {**env, **c.env}
    steps = step_order(c)
    numbers = _step_numbers(steps)
    base: str | None = None
    for s in steps:
        prev = run.before(f"{key}/{s.name}" if key else s.name)
        if prev is not None and prev.handle:
            base = _base_job_id(JobHandle.from_json(prev.handle).native_id)
            break
    futures: list[asyncio.Task[str]] = []
    launched: list[Component] = []
    #: (number, job id, statement) of each step accepted so far: a scheduler without step
    #: jobs chains each step to those before it
    earlier: list[tuple[int, str, str | None]] = []
    refused = False
    loop = asyncio.get_running_loop()
    for i, s in enumerate(steps):
        skey = f"{key}/{s.name}" if key else s.name
        if s.disabled or refused or run.halted:
            if s.disabled:
                run.emit(skey, s.type, State.SKIPPED, message="disabled")
            else:
                why = "the run is stopping" if run.halted else "an earlier step was not accepted"
                run.emit(skey, s.type, State.NOT_STARTED, message=why)
            continue
        accepted: asyncio.Future[JobHandle | None] = loop.create_future()

        def tell(h: JobHandle | None, fut: asyncio.Future[JobHandle | None] = accepted) -> None:
            if not fut.done():
                fut.set_result(h)

        dependency = None
        if s.data.get("useDependency") and s.data.get("dependencyForm"):
            dependency = str(s.data["dependencyForm"]).strip()
        request = StepRequest(c.name, numbers[i], dependency, base, tuple(earlier))
        options = JobOptions(
            host=c.host,
            queue=c.queue,
            submit_option=c.submit_option,
            step=request,
            on_submitted=tell,
        )
        t = asyncio.ensure_future(run.run_task(s, cdir / s.name, skey, sub_env, options))
        run.track(t)
        t.add_done_callback(functools.partial(_told_none, tell))  # also when cancelled unstarted
        futures.append(t)
        launched.append(s)
        handle = await accepted
        if handle is not None:
            base = base or _base_job_id(handle.native_id)
            earlier.append((numbers[i], handle.native_id, dependency))
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
            run.ignored_failure()
        elif x != State.FINISHED.value:
            ok = False
    if run.stopping:
        run.record(c, key, State.STOPPED, persist=persist, ended=True)
        return State.STOPPED.value
    if not ok:
        return run.finish(c, key, State.FAILED, persist, 0, None, "a step did not finish")
    run.record(c, key, State.FINISHED, persist=persist, ended=True)
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
    """The sub jobs' numbers, their files made first when they come from a parameter file (on
    the file worker: ``c.data`` is only read here, the caller sets the numbers on the loop)."""
    if c.data.get("usePSSettingFile", True):
        start, end = expand_bulk(c, cdir)
    else:
        start, end = _int_field(c, "startBulkNumber"), _int_field(c, "endBulkNumber")
        if start < 0 or end < start:
            raise ProjectError(
                f"{c.rel}: startBulkNumber {start} … endBulkNumber {end} is not a range",
                path=c.file,
            )
    return start, end


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


async def run_bulkjob(
    run: RunContext, c: Component, cdir: Path, key: str, env: Mapping[str, str]
) -> str:
    async def prepare(spec: TaskSpec) -> TaskSpec:
        start, end = await run.files.call(_bulk_range, c, cdir)
        c.data["startBulkNumber"], c.data["endBulkNumber"] = start, end
        return dataclasses.replace(spec, bulk=BulkRequest(start, end))

    async def judge(result: JobResult) -> JobResult:
        lines = []
        for n, (rc, status) in sorted(result.subjobs.items()):
            lines += [f"RT_{n}={'' if rc is None else rc}", f"JOBSTATUS_{n}={status or ''}"]
        if lines:
            await run.files.call(_write_text, cdir / SUBJOB_STATUS_FILE, "\n".join(lines) + "\n")
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
    return await run.run_task(c, cdir, key, env, options)
