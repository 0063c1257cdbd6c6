"""What a component handler sees of the run it is part of.

The handlers of control components (``_control``) and of job models (``_jobs``) are written
against :class:`RunContext` alone; :class:`~sharin.engine.Engine` implements it. This module
imports neither the engine nor the handlers, so the handlers never depend on the engine's
internals, and :func:`start_component` is the one place a component's start sequence is
written: the finished-before check, its state recorded, its inputs delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import SharinError, describe_error
from ..model import Component, ComponentType, State
from ..model._paths import Bounds
from ._journal import TaskRecord
from ._mirror import StateMirror
from ._protocol import BulkRequest, JobHandle, JobResult, StepRequest, TaskSpec
from ._worker import FileWorker

__all__ = ["JobOptions", "RunContext", "Start", "TripControl", "start_component"]


@dataclass
class TripControl:
    """What ``break`` and ``continue`` tell the loop trip they are in."""

    stop: bool = False  #: start no more components in this trip
    broke: bool = False  #: and end the loop after it


@dataclass(frozen=True)
class JobOptions:
    """How a job-like component changes one task's run (see :meth:`RunContext.run_task`)."""

    host: str | None = None  #: run on this host with its scheduler (a stepjob's steps)
    queue: str | None = None
    submit_option: str | None = None  #: used when the task has none of its own
    step: StepRequest | None = None
    bulk: BulkRequest | None = None
    #: told the handle once the job was accepted (the caller tells itself None when the task
    #: ends without one)
    on_submitted: Callable[[JobHandle | None], None] | None = None
    #: called at stage-in of each attempt, after the inputs arrived: may change the spec
    prepare: Callable[[TaskSpec], Awaitable[TaskSpec]] | None = None
    #: decides how an attempt ended, from the executor's result
    judge: Callable[[JobResult], Awaitable[JobResult]] | None = None


class RunContext(Protocol):
    """The run, as the component handlers use it."""

    @property
    def project_root(self) -> Path:
        """The project's directory."""

    @property
    def mirror(self) -> StateMirror:
        """Where states and WHEEL's bookkeeping are written into the components' files."""

    @property
    def files(self) -> FileWorker:
        """The engine's file worker: blocking file work goes there, off the event loop."""

    @property
    def halted(self) -> bool:
        """No new component is to start (a stop, or a failure without ``keep_going``)."""

    @property
    def stopping(self) -> bool:
        """The user stopped the run."""

    @property
    def from_wheel(self) -> bool:
        """The run continues what WHEEL left unfinished."""

    @property
    def launch_window(self) -> int:
        """Components a container starts ahead of free executor slots."""

    def before(self, key: str) -> TaskRecord | None:
        """This run's record of ``key`` from an earlier attempt (None: it has none)."""

    def forget_below(self, key: str) -> None:
        """Forget the records of what ran inside ``key`` (a trip or instance made again)."""

    def release_keys(self, keys: list[str]) -> None:
        """``keys`` (an instance that ended and what ran in it) are done with for this run:
        what the run keeps in memory per key for them is dropped (their journal records stay),
        so that a study of 100,000 instances keeps nothing per instance."""

    def finished_before(self, c: Component, key: str) -> TaskRecord | None:
        """The record of ``key`` when it finished before (subscribers are told), else None."""

    def record(self, c: Component, key: str, state: State, *, persist: bool, **kw: object) -> None:
        """Journal a state of ``key``, tell subscribers, and mirror it where WHEEL reads it."""

    def finish(
        self,
        c: Component,
        key: str,
        state: State,
        persist: bool,
        attempt: int,
        rc: int | None,
        message: str,
    ) -> str:
        """End ``key`` in ``state``: counted, a failure kept for the run's result; the state."""

    def emit(self, key: str, kind: str, state: State, *, message: str = "") -> None:
        """Tell subscribers of a state without journaling it (skipped, not started)."""

    def fail_note(self, message: str) -> None:
        """Keep a failure for the run's result without ending a component."""

    def ignored_failure(self) -> None:
        """A failure that ``ignoreFailure`` let the run go past (it still fails the run)."""

    def set_branch(self, key: str, taken: bool) -> None:
        """Which branch the ``if`` ``key`` took (``next``: True, ``else``: False)."""

    async def deliver_inputs(self, c: Component, cdir: Path) -> None:
        """Bring ``c``'s input files into ``cdir`` from the components that produce them (on
        the file worker; a component without inputs returns at once)."""

    def run_bounds(self) -> Bounds:
        """The places a run may read and write: the project and those the user named."""

    def run_container(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        ctx: TripControl | None = None,
    ) -> Awaitable[bool]:
        """Run ``c``'s children in ``cdir``; True when every one finished (or was skipped)."""

    def run_task(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        job: JobOptions | None = None,
    ) -> Awaitable[str]:
        """Run one task (through its executor), a job model's options applied; its state."""

    def track(self, task: asyncio.Task[str]) -> None:
        """Cancel ``task`` when the run is stopped (until it ends)."""


@dataclass(frozen=True)
class Start:
    """How :func:`start_component` went."""

    persist: bool
    """``c`` runs in its own directory (not a copy in a loop trip or an instance)."""
    done: str | None
    """The state to end with at once (it finished before, or its inputs failed); None: go on."""


async def start_component(
    run: RunContext,
    c: Component,
    cdir: Path,
    key: str,
    *,
    stage_in: bool = False,
    failed: str = "",
    before: bool = True,
) -> Start:
    """A component's start: skipped when it finished before (an ``if`` keeps its branch;
    ``before=False``: not asked), else its state running and its inputs delivered.

    ``stage_in``: a container's start (``stage-in`` while its inputs arrive; a failure is
    recorded, not counted as a component's end). Otherwise a failure ends ``c`` with its
    message after ``failed`` (``"condition: "``).
    """
    persist = cdir == c.directory
    prev = run.finished_before(c, key) if before else None
    if prev is not None:
        if c.type == ComponentType.IF:
            run.set_branch(key, prev.message != "else")
        return Start(persist, State.FINISHED.value)
    run.record(c, key, State.STAGE_IN if stage_in else State.RUNNING, persist=persist, started=True)
    try:
        await run.deliver_inputs(c, cdir)
    except (SharinError, OSError) as e:  # a file system error too: it ends c, not the run
        why = describe_error(e)
        if not stage_in:
            return Start(
                persist, run.finish(c, key, State.FAILED, persist, 0, None, f"{failed}{why}")
            )
        run.fail_note(f"{key}: {why}")
        run.record(c, key, State.FAILED, persist=persist, message=why, ended=True)
        return Start(persist, State.FAILED.value)
    if stage_in:
        run.record(c, key, State.RUNNING, persist=persist)
    return Start(persist, None)
