"""The engine: runs a project's components in dependency order, journaling every step.

One coroutine per container (the root workflow and each nested workflow) keeps the counts of
unfinished dependencies of its children and starts each child when its count reaches zero; a
child's end is reported through a queue, so nothing polls. Tasks go through an
:class:`~sharin.engine.Executor`; at most ``max_concurrent`` of them per executor run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import os
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import BusyError, SharinError, describe_error
from ..model import (
    COMPONENT_FILE,
    PROJECT_FILE,
    STATUS_FILE,
    Component,
    ComponentType,
    HostConfig,
    Project,
    State,
    read_json_object,
)
from ..model._paths import Bounds
from . import _control, _fingerprint, _jobs
from ._context import JobOptions, TripControl, start_component
from ._control import condition_true, own_env
from ._events import Event, EventBus
from ._files import (
    Delivery,
    deliver,
    host_links,
    left_on_host,
    removes_host_dir,
    resolve_sources,
    run_bounds,
)
from ._journal import FingerprintRecord, Journal, TaskRecord
from ._layout import SUPPORTED_TYPES, RunLayout, sharin_dir
from ._mirror import DELETE, StateMirror, update_json
from ._prelude import Prelude, end_start, git_dirty
from ._protocol import (
    Executor,
    ExecutorProvider,
    HostLink,
    JobHandle,
    JobResult,
    SubmitLater,
    TaskSpec,
)
from ._taskfields import check_mandatory_inputs, component_file, rt_env, run_checker
from ._worker import FileWorker

__all__ = [
    "Engine",
    "PlannedStep",
    "RunOptions",
    "RunResult",
    "SUPPORTED_TYPES",
    "plan",
    "sharin_dir",
]


#: components that run one script as one process or job (stopped by cancelling their coroutine)
_TASK_TYPES = frozenset(
    {
        ComponentType.TASK,
        ComponentType.BULKJOB_TASK,
        ComponentType.STEPJOB_TASK,
    }
)

#: journaled states of an attempt that was under way when an engine died
_IN_FLIGHT = frozenset({State.RUNNING, State.QUEUED, State.WAITING, State.STAGE_OUT, State.UNKNOWN})

_PASSING = frozenset({State.STAGE_IN, State.WAITING, State.STAGE_OUT})
_MIRRORED = frozenset({State.RUNNING, State.FINISHED, State.FAILED, State.STOPPED, State.UNKNOWN})

#: the message of a task's record while its submission is under way (no handle yet)
_SUBMITTING = "submitting"

_RESUMABLE_RUN_STATES = {"running", "stopped", "failed"}

#: never reused as a whole: a workflow's children decide for themselves; break and continue
#: evaluate their condition again, for the trip they end
_ALWAYS_RUN = frozenset({ComponentType.WORKFLOW, ComponentType.BREAK, ComponentType.CONTINUE})


@dataclass
class RunOptions:
    """How a run behaves. Every field has the default a user of WHEEL expects."""

    keep_going: bool = False
    """Go on with independent components after a failure (default: stop starting new ones)."""
    resume: bool = True
    """Continue the last run if it did not finish (finished tasks are not run again)."""
    lost_task: Literal["rerun", "fail"] = "rerun"
    """What to do with a task whose process vanished while no engine watched it."""
    max_local: int | None = None
    """Concurrent local tasks (WHEEL's numJobOnLocal); default: the number of CPUs."""
    launch_window: int = 512
    """Tasks a container starts ahead of free executor slots; bounds memory for huge workflows."""


@dataclass
class RunResult:
    run: int
    state: str
    resumed: bool
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    reasons: dict[str, str] = field(default_factory=dict)
    """Why each component that had finished before ran again (``"script changed"``, ``"after a"``)."""
    reused: int = 0
    """Components not run again because nothing they depend on changed since they finished."""
    since: int | None = None
    """The last run whose results this run reused."""

    @property
    def nothing_to_do(self) -> bool:
        """Nothing changed since an earlier run finished: this run ran nothing."""
        return self.since is not None and self.ok and not self.reasons and self.reused > 0

    @property
    def ok(self) -> bool:
        return self.state == State.FINISHED


class Engine:
    """Runs one project. Use :meth:`run` once per Engine object.

    It is the :class:`~sharin.engine._context.RunContext` of the component handlers.
    """

    def __init__(
        self,
        project: Project,
        executors: ExecutorProvider,
        *,
        options: RunOptions | None = None,
        events: EventBus | None = None,
        prelude: Prelude | None = None,
    ) -> None:
        if prelude is not None and prelude.root != project.root:
            raise ValueError(f"the prelude is of {prelude.root}, not of {project.root}")
        self.project = project
        self.executors = executors
        self.options = options or RunOptions()
        self.events = events or EventBus()
        self.layout = RunLayout(project.root)
        self.dir = self.layout.dir
        self.journal: Journal | None = None
        self.run_id = 0
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._halt = False
        self._branches: dict[str, bool] = {}
        self._stopping = False
        self._prev: dict[str, TaskRecord] = {}
        #: running tasks in the order they started (a dict as an ordered set)
        self._task_futs: dict[asyncio.Task[str], None] = {}
        self._counts: dict[str, int] = {}
        self._failed: list[str] = []
        self._ignored_failures = 0  #: failures ignoreFailure let the run go past
        self._base_env: dict[str, str] = {}
        self._log_dir = self.dir
        self._run_tag = ""
        self._lock_fd: int | None = None
        self._mirror = (
            prelude.mirror if prelude is not None else StateMirror(self.layout.mirror_spares)
        )
        self._stamped: set[str] = set()  #: tasks whose dispatch WHEEL's way is written
        self._failed_tasks: list[str] = []  #: WHEEL's failedTasks: tasks that failed the run
        #: the last finished fingerprint of each component (since the last clean)
        self._fps: dict[str, FingerprintRecord] = {}
        #: components whose last finished fingerprint a later clean made void
        self._cleaned: set[str] = set()
        self._digests = _fingerprint.DigestCache()
        #: per task directory: the inputs its last delivery left to be linked on its host
        self._host_links: dict[Path, tuple[HostLink, ...]] = {}
        self._files = FileWorker()  #: the blocking file work of this engine's run
        #: keys (and their containers' keys) that ran in this run, not reused
        self._ran: set[str] = set()
        self._reasons: dict[str, str] = {}
        self._reused = 0
        self._dirty: bool | None = None
        #: git's look at the work tree, started by the prelude or by :meth:`prepare`
        self._dirty_check: asyncio.Future[bool | None] | None = (
            prelude.dirty if prelude is not None else None
        )
        self._prepared = False
        self._below: dict[str, list[str]] | None = None  #: ``_prev``'s keys by container
        self._from_wheel = False  #: the run continues what WHEEL left unfinished

    # ------------------------------------------------------------------ public
    def stop(self) -> None:
        """Stop the run: no new tasks start, running ones are cancelled. Safe to call from signal handlers."""
        self._stopping = True
        self._halt = True
        # the latest first: a later step of a step job is deleted before the one it waits for,
        # so that the scheduler does not start it when the earlier one ends
        for t in reversed(list(self._task_futs)):
            t.cancel()

    def _forget_task(self, t: asyncio.Task[str]) -> None:
        self._task_futs.pop(t, None)

    def prepare(self) -> None:
        """Start what the run will need: the WHEEL state writer's process, the executors'
        helpers (a local supervisor) and git's look at the work tree (whether the project has
        unsaved changes, kept with the run), those a :class:`Prelude` did not start already.
        Returns at once; their start-up then overlaps what the caller does before :meth:`run`
        (its checks of the project: on one CPU, while these take another). Nothing of the
        project is written. :meth:`run` does it when it was not done; an engine prepared and
        then not run is ended with :meth:`discard`."""
        if self._prepared:
            return
        self._prepared = True
        self._mirror.start()
        self._prepare_executors()
        if self._dirty_check is None:
            self._dirty_check = asyncio.ensure_future(git_dirty(self.project.root))

    async def discard(self) -> None:
        """End what :meth:`prepare` started, for an engine that will not run."""
        await end_start(self._dirty_check, self._mirror)
        self._files.close()

    async def run(self) -> RunResult:
        t0 = time.monotonic()
        try:
            self._lock()
            try:
                return await self._run(t0)
            finally:
                self._mirror.close()  # its writer has exited before the project is unlocked
                self._unlock()
        finally:
            self._mirror.close()  # also when the run never started (busy, bad journal)
            if self._dirty_check is not None and not self._dirty_check.done():
                self._dirty_check.cancel()  # the lock was refused before it was awaited

    # ------------------------------------------------------------------ run context
    @property
    def project_root(self) -> Path:
        return self.project.root

    @property
    def mirror(self) -> StateMirror:
        return self._mirror

    @property
    def files(self) -> FileWorker:
        return self._files

    @property
    def halted(self) -> bool:
        return self._halt

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def from_wheel(self) -> bool:
        return self._from_wheel

    @property
    def launch_window(self) -> int:
        return self.options.launch_window

    def before(self, key: str) -> TaskRecord | None:
        return self._prev.get(key)

    def forget_below(self, key: str) -> None:
        self._forget_below(key)

    def release_keys(self, keys: list[str]) -> None:
        for k in keys:
            self._prev.pop(k, None)
            self._ran.discard(k)
            self._stamped.discard(k)

    def finished_before(self, c: Component, key: str) -> TaskRecord | None:
        return self._finished_before(c, key)

    def record(self, c: Component, key: str, state: State, *, persist: bool, **kw: object) -> None:
        self._record(c, key, state, persist=persist, **kw)

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
        return self._finish(c, key, state, persist, attempt, rc, message)

    def emit(self, key: str, kind: str, state: State, *, message: str = "") -> None:
        self._emit(key, kind, state, message=message)

    def fail_note(self, message: str) -> None:
        self._failed.append(message)

    def ignored_failure(self) -> None:
        self._ignored_failures += 1

    def set_branch(self, key: str, taken: bool) -> None:
        self._branches[key] = taken

    async def deliver_inputs(self, c: Component, cdir: Path) -> None:
        # nothing to deliver nor to check: no hand-over to the file worker
        self._host_links.pop(cdir, None)  # what an earlier attempt left
        if c.parent is not None and c.data.get("inputFiles"):
            hosts = self._hosts()
            on_host = host_links(c, self.project.root, cdir, hosts, self._host_dir) if hosts else {}
            if on_host:
                self._host_links[cdir] = tuple(on_host.values())
            await self._files.call(self._deliver_inputs, c, cdir, frozenset(on_host))

    def run_bounds(self) -> Bounds:
        return run_bounds(self.project, getattr(self.executors, "hosts", None))

    def _hosts(self) -> Mapping[str, HostConfig]:
        hosts: Mapping[str, HostConfig] | None = getattr(self.executors, "hosts", None)
        return hosts or {}

    def _host_dir(self, key: str) -> str | None:
        """The working directory on its host of the task ``key`` when it last finished (this
        run's record, or that of the run whose fingerprint it reuses)."""
        assert self.journal is not None
        runs = [self.run_id]
        fp = self._fps.get(key)
        if fp is not None and fp.run != self.run_id:
            runs.append(fp.run)
        for run in runs:
            rec = self.journal.task(run, key)
            if rec is not None and rec.handle and rec.state == State.FINISHED:
                where = JobHandle.from_json(rec.handle).data.get("dir")
                if isinstance(where, str) and where:
                    return where
        return None

    def run_container(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        ctx: TripControl | None = None,
    ) -> Awaitable[bool]:
        return self._run_container(c, cdir, key, env, ctx)

    def run_task(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        job: JobOptions | None = None,
    ) -> Awaitable[str]:
        return self._run_task(c, cdir, key, env, job)

    def track(self, task: asyncio.Task[str]) -> None:
        self._task_futs[task] = None
        task.add_done_callback(self._forget_task)

    # ------------------------------------------------------------------ setup
    def _lock(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _read_int(self.layout.pid)
            if pid is None:
                raise BusyError(
                    f"{self.project.root}: another sharin command is changing the project now; "
                    "run it again when that is done"
                ) from None
            raise BusyError(
                f"{self.project.root}: the project is already running (engine pid {pid}); "
                "wait for it, watch it with `sharin status`, or stop it with `sharin stop`"
            ) from None
        self._lock_fd = fd
        self.layout.pid.write_text(f"{os.getpid()}\n")

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.layout.pid.unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def _start_run(self) -> bool:
        """Open the journal and choose: resume the last run, or begin a new one."""
        self.journal = Journal(self.layout.journal)
        last = self.journal.last_run()
        if self.options.resume:
            # what finished before and may be reused (``--restart``: nothing)
            self._fps = valid_fingerprints(self.journal)
            self._cleaned = set(self.journal.fingerprints()) - set(self._fps)
            self._digests = _fingerprint.DigestCache(self.journal.digests())
        if (
            self.options.resume
            and last is not None
            and last.state in _RESUMABLE_RUN_STATES
            and not self.journal.cleaned_after("", last.started)  # a clean starts afresh
        ):
            self.run_id = last.id
            self.journal.reopen_run(last.id)
            self._prev = {
                k: r
                for k, r in self.journal.tasks(last.id).items()
                if not self.journal.cleaned_after(k, r.ended or r.started or last.started)
            }
            resumed = True
        else:
            seeded = self._wheel_states() if self.options.resume else {}
            resumed = self._from_wheel = bool(seeded)
            self.run_id = self.journal.new_run(
                {
                    "git": _git_head(self.project.root),
                    "dirty": self._dirty,
                    "resumed_from_wheel": resumed,
                }
            )
            for rel, kind in seeded.items():
                self.journal.set_task(
                    self.run_id,
                    rel,
                    kind,
                    State.FINISHED.value,
                    message="finished before (WHEEL state)",
                )
            self._prev = self.journal.tasks(self.run_id)
            if not resumed and not self._fps:
                self._reset_component_states()
        record = self.journal.run(self.run_id)
        started = record.started if record is not None else time.time()
        self._run_tag = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
        self._log_dir = self.layout.run_dir(self.run_id)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return resumed

    def _wheel_states(self) -> dict[str, str]:
        """Components (and loop trips, instances) a run left ``finished`` in ``cmp.wheel.json``.

        When the project did not finish (a run WHEEL, or sharin before its journal, stopped),
        ``sharin run`` continues from these, as WHEEL's own restart does.
        """
        return wheel_states(self.project)

    def _reset_component_states(self) -> None:
        """A new run: every component back to not-started, WHEEL's loop progress dropped (only
        those keys are written; the rest of each file stays as it is now)."""
        for c in self.project.root_component.walk():
            if c.data.get("state") not in (None, State.NOT_STARTED.value) or any(
                k in c.data for k in _LOOP_PROGRESS
            ):
                c.data["state"] = State.NOT_STARTED.value
                for k in _LOOP_PROGRESS:
                    c.data.pop(k, None)
                update_json(
                    c.file,
                    {"state": State.NOT_STARTED.value, **dict.fromkeys(_LOOP_PROGRESS, DELETE)},
                )
                with contextlib.suppress(FileNotFoundError):
                    (c.directory / STATUS_FILE).unlink()

    async def _run(self, t0: float) -> RunResult:
        self.prepare()  # a no-op when the caller did it
        assert self._dirty_check is not None
        self._dirty = await self._dirty_check
        # off the event loop: a new run resets the states of every component file
        resumed = await self._files.call(self._start_run)
        assert self.journal is not None
        root = self.project.root
        self._base_env = dict(os.environ)
        self._base_env.update(own_env(self.project.root_component))
        self._base_env.update(
            WHEEL_LOCAL_PRJDIR=str(root),
            SHARIN_PROJECT_DIR=str(root),
            SHARIN_RUN_ID=str(self.run_id),
        )
        # as WHEEL: read-only while it runs, the failures of an earlier run forgotten
        self._project_fields(state=State.RUNNING.value, readOnly=True, failedTasks=DELETE)
        self._emit("", "run", State.RUNNING, message="resumed" if resumed else "")
        state = State.FAILED
        try:
            ok = await self._run_container(self.project.root_component, root, "", self._base_env)
            if self._stopping:
                state = State.STOPPED
            else:
                # as WHEEL: a failure that ignoreFailure let the run go past still fails the run
                state = State.FINISHED if ok and not self._ignored_failures else State.FAILED
        finally:
            # also reached on an unexpected error or KeyboardInterrupt: record what we know,
            # the WHEEL states first (the writer's process exits while the journal is closed;
            # run() waits for it)
            self._mirror.finish()
            self._files.close()
            with contextlib.suppress(sqlite3.DatabaseError):
                self.journal.add_digests(self._digests.new)
            since = self._since() if state == State.FINISHED else None
            if since is not None:
                self.journal.update_run_info(
                    self.run_id, {"nothing_to_do": not self._ran, "reused_from": since}
                )
            self.journal.end_run(self.run_id, state.value)
            self._end_project_state(state)
            message = ""
            if since is not None and not self._ran:
                message = f"nothing changed since run {since}; nothing to do"
            self._emit("", "run", state, message=message)
            self.events.close()
            self.journal.close()
        return RunResult(
            self.run_id,
            state.value,
            resumed,
            dict(self._counts),
            list(self._failed),
            time.monotonic() - t0,
            dict(self._reasons),
            self._reused,
            self._since(),
        )

    def _since(self) -> int | None:
        """The last earlier run whose results this run reused, if it reused any."""
        runs = [r.run for r in self._fps.values() if r.run != self.run_id]
        return max(runs) if runs and self._reused else None

    def _project_fields(self, **fields: object) -> None:
        """Change only these keys of ``prj.wheel.json`` (and of the loaded project)."""
        for k, v in fields.items():
            if v is DELETE:
                self.project.data.pop(k, None)
            else:
                self.project.data[k] = v
        if not update_json(self.project.root / PROJECT_FILE, fields):
            self.project.set_project_state(str(self.project.data.get("state")))

    def _end_project_state(self, state: State) -> None:
        """The end of a run where WHEEL reads it (``projectController.js`` ``runProject`` and
        ``unlockIfFinished``): the project's and the root workflow's ``state``; ``readOnly``
        cleared only when it finished; ``failedTasks`` (OPEN-WHEEL ``addFailedTask``) lists the
        tasks that failed the run."""
        failed: object = sorted(set(self._failed_tasks)) if self._failed_tasks else DELETE
        self._project_fields(
            state=state.value, readOnly=state != State.FINISHED, failedTasks=failed
        )
        root = self.project.root_component
        root.data["state"] = wheel_state(state)
        with contextlib.suppress(OSError):
            update_json(root.file, {"state": root.data["state"]})

    # ------------------------------------------------------------------ events
    def _emit(
        self,
        key: str,
        kind: str,
        state: State,
        *,
        attempt: int = 0,
        rc: int | None = None,
        message: str = "",
    ) -> None:
        self.events.publish(Event(self.run_id, key, kind, state.value, attempt, rc, message))

    def _record(
        self,
        c: Component,
        key: str,
        state: State,
        *,
        persist: bool,
        **kw: object,
    ) -> None:
        """Journal first, then tell subscribers, then (for WHEEL) the component's own JSON.

        Passing states (stage-in, waiting, stage-out) are not journaled: after a crash a task in
        one of them is treated by what the journal says before it (no handle: start; a handle:
        attach), which is correct for each.
        """
        assert self.journal is not None
        kind = c.type
        if state not in _PASSING:
            self.journal.set_task(self.run_id, key, kind, state.value, **kw)  # type: ignore[arg-type]
        attempt = kw.get("attempt")
        rc = kw.get("rc")
        msg = kw.get("message")
        self._emit(
            key,
            kind,
            state,
            attempt=attempt if isinstance(attempt, int) else 0,
            rc=rc if isinstance(rc, int) else None,
            message=msg if isinstance(msg, str) else "",
        )
        if state in _MIRRORED or (state == State.QUEUED and msg != _SUBMITTING):
            # a job in a scheduler's queue shows WHEEL's `queued` (the intent to submit does not)
            self._mirror_state(c, key, state, rc if isinstance(rc, int) else None, persist)

    def _mirror_state(
        self, c: Component, key: str, state: State, rc: int | None, persist: bool
    ) -> None:
        """Write a state where WHEEL reads it: the ``cmp.wheel.json`` of the component, trip or
        instance ``key`` (its directory below the project root), with WHEEL's bookkeeping."""
        shown = wheel_state(state)
        if persist:
            c.data["state"] = shown  # the loaded view follows what the file says
        fields: dict[str, object] = {"state": shown}
        own = key.rpartition("/")[2] == c.name  # not a loop trip or instance record
        kind = c.type
        if own and kind in _TASK_TYPES:
            fields.update(_mirror_task_fields(c, key, state, self.project.root, self._stamped))
            if state.final and rc is not None:
                fields["rt"] = rc  # the exit code, as WHEEL's executer keeps it
        status = None
        if own and state.final and kind != ComponentType.WORKFLOW:
            code = "" if rc is None else str(rc)
            status = f"{shown}\n{code}\n{code}\n"
        self._mirror.set(self.project.root / key, fields, status)

    def _finished_before(self, c: Component, key: str) -> TaskRecord | None:
        """The journal's record of ``key`` if it finished in an earlier attempt of this run
        (or WHEEL left it finished); subscribers are told, and the caller skips it."""
        prev = self._prev.get(key)
        if prev is None or prev.state != State.FINISHED or c.type == ComponentType.WORKFLOW:
            return None  # a workflow is entered: its children decide whether they run again
        self._emit(key, c.type, State.FINISHED, message=prev.message or "finished before")
        return prev

    # ------------------------------------------------------------------ reuse
    async def _reuse(self, c: Component, cdir: Path, key: str) -> bool:
        """True when ``c`` is not to run: it finished before and nothing it depends on changed.

        A record of this run that did not finish: it runs (or is re-attached). A fingerprint
        from when it last finished (in any run since the last clean, ``_fingerprint``): reused
        when no component it depends on (or its containers depend on) ran in this run and the
        present fingerprint is the same. Without a fingerprint (a journal or a WHEEL state
        from before fingerprints, a loop trip): reused when this run's journal, or WHEEL, says
        it finished.
        """
        assert self.journal is not None
        prev = self._prev.get(key)
        own = cdir == c.directory  # not a copy in a loop trip or an instance
        if prev is not None and prev.state != State.FINISHED:
            if own and self._fps:
                self._reasons[key] = _unfinished_reason(prev)
            self._mark_ran(key)
            return False
        cand = self._fps.get(key) if own else None
        if cand is not None and prev is not None and _newer(prev, cand):
            cand = None  # it finished in this run after that fingerprint (its own was not kept)
        if cand is None:
            if prev is not None:
                self._finished_before(c, key)
                self._mirror_finished(c, key, prev, own)
                self._reused_if(c, key, prev.message)
                if c.type in _TASK_TYPES:
                    self._count(State.FINISHED)
                return True
            if own and key in self._cleaned:
                self._reasons[key] = "cleaned since it last ran"
            elif own and self._fps:
                self._reasons[key] = "not run before"
            self._mark_ran(key)
            return False
        reason = self._after(c, key)
        if reason is None:
            now = await self._fingerprint(c, cdir)
            old = _fingerprint.loads(cand.fingerprint)
            reason = "no usable record" if old is None else _fingerprint.explain(c, old, now)
        if reason is None:
            message = prev.message if prev is not None else None
            if prev is not None:
                self._mirror_finished(c, key, prev, own)
            if prev is None:
                old_rec = self.journal.task(cand.run, key) if c.type == ComponentType.IF else None
                message = old_rec.message if old_rec is not None else None
                if c.type != ComponentType.IF:
                    message = f"unchanged since run {cand.run}"
                self.journal.set_task(
                    self.run_id, key, c.type, State.FINISHED.value, message=message
                )
                if c.state != State.FINISHED:
                    c.data["state"] = State.FINISHED.value
                    self._mirror.set(self.project.root / key, {"state": State.FINISHED.value})
            self._emit(key, c.type, State.FINISHED, message=message or "unchanged")
            self._reused_if(c, key, message)
            self._reused += 1
            self._count(State.FINISHED)
            return True
        self._reasons[key] = reason
        if prev is not None:
            self._prev[key] = dataclasses.replace(prev, state=State.NOT_STARTED.value, handle=None)
        self._mark_ran(key)
        return False

    def _mirror_finished(self, c: Component, key: str, prev: TaskRecord, own: bool) -> None:
        """A component this run's journal has finished while its file does not say so: the
        mirror writes a state from its thread a moment after the journal has it, so an engine
        killed in between left the file behind the journal. Written as the run would have."""
        shown = wheel_state(State.FINISHED)
        if not own or c.data.get("state") == shown or c.type == ComponentType.WORKFLOW:
            return
        c.data["state"] = shown
        fields: dict[str, object] = {"state": shown}
        code = ""
        if c.type in _TASK_TYPES and prev.rc is not None:
            fields["rt"] = prev.rc
            code = str(prev.rc)
        self._mirror.set(self.project.root / key, fields, f"{shown}\n{code}\n{code}\n")

    def _forget_below(self, key: str) -> None:
        """Forget this run's records of what ran inside ``key`` (a trip or instance made again)."""
        if self._below is None:
            self._below = {}
            for k in self._prev:
                parts = k.split("/")
                for i in range(1, len(parts)):
                    self._below.setdefault("/".join(parts[:i]), []).append(k)
        for k in self._below.pop(key, []):
            self._prev.pop(k, None)

    def _reused_if(self, c: Component, key: str, message: str | None) -> None:
        if c.type == ComponentType.IF:
            self._branches[key] = message != "else"

    def _mark_ran(self, key: str) -> None:
        while key not in self._ran:
            self._ran.add(key)
            if "/" not in key:
                break
            key = key.rsplit("/", 1)[0]

    def _after(self, c: Component, key: str) -> str | None:
        return _after(self.project, c, key, self._ran)

    async def _keep_fingerprint(self, c: Component, cdir: Path, key: str) -> None:
        """Record what ``c`` is now that it finished (in its own directory only)."""
        if cdir != c.directory or c.type == ComponentType.WORKFLOW or self.journal is None:
            return
        try:
            fp = await self._fingerprint(c, cdir)
        except RuntimeError:
            return  # the pool was shut down: the run is ending
        self.journal.set_fingerprint(key, self.run_id, _fingerprint.dumps(fp))

    async def _fingerprint(self, c: Component, cdir: Path) -> dict[str, object]:
        """``c``'s fingerprint: taken at once when that reads little (a script, small files:
        tens of microseconds, less than a hand-over to a thread), else in a worker thread."""
        fp = _fingerprint.quick_fingerprint(c, cdir, self._digests)
        if fp is not None:
            return fp
        return await self._files.call(_fingerprint.fingerprint, c, cdir, self._digests)

    # ------------------------------------------------------------------ containers
    async def _run_component(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        ctx: TripControl | None = None,
    ) -> str:
        if c.type not in _ALWAYS_RUN and await self._reuse(c, cdir, key):
            return State.FINISHED.value
        state = await self._dispatch(c, cdir, key, env, ctx)
        if state == State.FINISHED:
            await self._keep_fingerprint(c, cdir, key)
        return state

    async def _dispatch(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        ctx: TripControl | None = None,
    ) -> str:
        t = c.type
        if t == ComponentType.TASK:
            return await self._run_task(c, cdir, key, env)
        if t == ComponentType.BULKJOB_TASK:
            return await _jobs.run_bulkjob(self, c, cdir, key, env)
        if t == ComponentType.STEPJOB:
            return await _jobs.run_stepjob(self, c, cdir, key, env)
        if t == ComponentType.WORKFLOW:
            return await self._run_workflow(c, cdir, key, env)
        if t == ComponentType.IF:
            return await _control.run_if(self, c, cdir, key, env)
        if t in (ComponentType.FOR, ComponentType.FOREACH, ComponentType.WHILE):
            return await _control.run_loop(self, c, cdir, key, env)
        if t == ComponentType.PARAMETER_STUDY:
            return await _control.run_ps(self, c, cdir, key, env)
        if t in (ComponentType.BREAK, ComponentType.CONTINUE):
            return await _control.run_jump(self, c, cdir, key, env, ctx)
        if t == ComponentType.SOURCE:
            return await _control.run_source(self, c, cdir, key, env)
        if t == ComponentType.VIEWER:
            return await _control.run_viewer(self, c, cdir, key, env)
        if t == ComponentType.STORAGE:
            return await _control.run_storage(self, c, cdir, key, env)
        return self._finish(
            c,
            key,
            State.FAILED,
            cdir == c.directory,
            0,
            None,
            f"component type {t!r} is not supported by this version of sharin",
        )

    async def _run_workflow(
        self, c: Component, cdir: Path, key: str, env: Mapping[str, str]
    ) -> str:
        start = await start_component(self, c, cdir, key, stage_in=True)
        if start.done is not None:
            return start.done
        persist = start.persist
        sub_env = dict(env)
        sub_env.update(own_env(c))
        ok = await self._run_container(c, cdir, key, sub_env)
        state = State.STOPPED if self._stopping else (State.FINISHED if ok else State.FAILED)
        self._record(c, key, state, persist=persist, ended=True)
        return state.value

    async def _run_container(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        ctx: TripControl | None = None,
    ) -> bool:
        """Run ``c``'s children in ``cdir``; True when every one finished (or was skipped).

        A child starts when each of its dependencies has finished, or failed with
        ``ignoreFailure``, or was skipped, provided at least one of them was not skipped; a child
        whose every dependency was skipped (the branch an ``if`` did not take) is skipped too.
        As in WHEEL, a child behind an ``if`` (a flow edge from it) runs only when an ``if`` took
        the branch to it, whatever file edges from other components it has.
        """
        children = list(c.children)
        ids = {x.id for x in children}
        by_id = {x.id: x for x in children}
        waiting: dict[str, int] = {}
        live: dict[str, int] = {}
        successors: dict[str, list[str]] = {x.id: [] for x in children}
        for x in children:
            deps = set(x.previous) & ids
            for inp in x.input_files:
                deps.update(link.node for link in inp.src if link.node in ids)
            waiting[x.id] = len(deps)
            live[x.id] = 0
            for d in deps:
                successors[d].append(x.id)
        # behind an if: started only by an if that took the branch to it (WHEEL's rule)
        gated = {
            x.id
            for x in children
            if any(by_id[d].type == ComponentType.IF for d in x.previous if d in by_id)
        }
        chosen: set[str] = set()
        ready = deque(x for x in children if waiting[x.id] == 0)
        done_q: asyncio.Queue[tuple[Component, str]] = asyncio.Queue()
        in_flight = 0
        ok = True
        resolved = 0

        def launch(x: Component) -> None:
            child_key = f"{key}/{x.name}" if key else x.name
            coro = self._run_component(x, cdir / x.name, child_key, env, ctx)
            t: asyncio.Task[str] = asyncio.ensure_future(coro)
            if x.type in _TASK_TYPES:
                self._task_futs[t] = None
            t.add_done_callback(functools.partial(self._report, x=x, q=done_q))

        def release(x: Component, state: str) -> None:
            """Tell x's successors that x is done; skip those left with only skipped deps."""
            nonlocal resolved
            taken: set[str] | None = None
            if x.type == ComponentType.IF and state == State.FINISHED:
                child_key = f"{key}/{x.name}" if key else x.name
                branch = self._branches.pop(child_key, True)
                taken = set(x.next if branch else x.else_)
                not_taken = set(x.else_ if branch else x.next) - taken
            for sid in successors[x.id]:
                waiting[sid] -= 1
                skipped = state == State.SKIPPED or (taken is not None and sid in not_taken)
                if not skipped:
                    live[sid] += 1
                if taken is not None and sid in taken:
                    chosen.add(sid)
                if waiting[sid] == 0:
                    s = by_id[sid]
                    if live[sid] > 0 and (sid not in gated or sid in chosen):
                        ready.append(s)
                    else:
                        resolved += 1
                        child_key = f"{key}/{s.name}" if key else s.name
                        self._emit(child_key, s.type, State.SKIPPED, message="branch not taken")
                        release(s, State.SKIPPED)

        while True:
            while (
                ready
                and not self._halt
                and not (ctx is not None and ctx.stop)
                and in_flight < self.options.launch_window
            ):
                x = ready.popleft()
                if x.disabled:
                    # as OPEN-WHEEL: a disabled component is skipped, and so is what depends
                    # on it alone
                    resolved += 1
                    self._emit(
                        f"{key}/{x.name}" if key else x.name,
                        x.type,
                        State.SKIPPED,
                        message="disabled",
                    )
                    release(x, State.SKIPPED)
                    continue
                launch(x)
                in_flight += 1
                if in_flight % _LAUNCH_BATCH == 0 and ready:
                    # let those launched take their first steps: the first of them are handed
                    # to their executors now, not after hundreds of others have been launched
                    await asyncio.sleep(0)
            if in_flight == 0:
                break
            x, state = await done_q.get()
            in_flight -= 1
            resolved += 1
            if state == State.FINISHED or (state == State.FAILED and x.ignore_failure):
                if state == State.FAILED:
                    self._ignored_failures += 1
                release(x, State.FINISHED if state == State.FINISHED else State.FAILED)
            else:
                ok = False
                if not self.options.keep_going:
                    self._halt = True
        if ctx is not None and ctx.stop:
            return ok  # break/continue ended the trip early: what did not start is not a failure
        return ok and resolved == len(children)

    def _report(
        self, fut: asyncio.Task[str], *, x: Component, q: asyncio.Queue[tuple[Component, str]]
    ) -> None:
        self._task_futs.pop(fut, None)
        if fut.cancelled():
            state = State.STOPPED.value
        elif (exc := fut.exception()) is not None:
            self._failed.append(f"{x.rel}: {describe_error(exc)}")
            state = State.FAILED.value
        else:
            state = fut.result()
        q.put_nowait((x, state))

    # ------------------------------------------------------------------ files
    def _deliver_inputs(
        self, c: Component, cdir: Path, on_host: frozenset[tuple[str, str, str]] = frozenset()
    ) -> None:
        """Deliver ``c``'s inputs (blocks on the file system: runs on the file worker), but
        those linked on its host (``on_host``: input name, source node and name)."""
        parent = c.parent
        if parent is None:
            return
        pdir = cdir.parent
        # the project and the places the user named (storage paths, hosts' paths)
        bounds = self.run_bounds()
        keep = frozenset([c.script] if c.script else [])  # a delivery never replaces the script
        for inp in c.input_files:
            for link in inp.src:
                if (inp.name, link.node, link.name) in on_host:
                    continue
                for producer, sdir, pattern, copy in resolve_sources(
                    parent, pdir, link.node, link.name
                ):
                    delivery = Delivery(producer, sdir, pattern, cdir, inp.name, copy, keep)
                    deliver(delivery, bounds)
        check_mandatory_inputs(c, cdir, frozenset(name for name, _, _ in on_host))

    # ------------------------------------------------------------------ tasks
    def _executor(self, host: str, use_job_scheduler: bool) -> tuple[Executor, asyncio.Semaphore]:
        ex = self.executors.executor_for(host, use_job_scheduler)
        slots = self._slots.get(id(ex))
        if slots is None:
            n = ex.max_concurrent
            if ex.kind == "local" and self.options.max_local:
                n = ex.max_concurrent = self.options.max_local
            slots = self._slots[id(ex)] = asyncio.Semaphore(n + ex.queue_ahead)
        return ex, slots

    def _prepare_executors(self) -> None:
        """:meth:`Executor.prepare` of each executor the project's tasks name."""
        seen: set[tuple[str, bool]] = set()
        for c in self.project.components():
            if c.type != ComponentType.TASK:
                continue
            where = (c.host, c.use_job_scheduler)
            if where in seen:
                continue
            seen.add(where)
            try:
                ex, _ = self._executor(*where)
            except SharinError:
                continue  # said when the task is run
            ex.prepare()

    def _spec(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        attempt: int,
        job: JobOptions | None = None,
    ) -> TaskSpec:
        host, use_job_scheduler, queue = _placement(c, job)
        hosts = self._hosts()
        left = left_on_host(c, hosts) if hosts else frozenset()
        full_env = dict(env)
        full_env.update(own_env(c))
        full_env["SHARIN_TASK"] = key
        full_env["SHARIN_ATTEMPT"] = str(attempt)
        return TaskSpec(
            key=key,
            name=c.name,
            workdir=cdir,
            script=c.script or "",
            env=full_env,
            log_dir=self._log_dir,
            attempt=attempt,
            host=host,
            use_job_scheduler=use_job_scheduler,
            queue=queue,
            submit_option=c.submit_option or (job.submit_option if job is not None else None),
            include=tuple(c.include),
            exclude=tuple(c.exclude),
            outputs=tuple(o.name for o in c.output_files if o.name not in left),
            project_root=self.project.root,
            run_tag=self._run_tag,
            step=job.step if job is not None else None,
            bulk=job.bulk if job is not None else None,
            source_script=c.data.get("sourceScript") or None,
            cleanup=removes_host_dir(c),
            on_running=self._job_running(c, key, cdir == c.directory),
        )

    def _job_running(self, c: Component, key: str, persist: bool) -> Callable[[str], None]:
        """What a queued job's executor calls when the scheduler first reports it running."""

        def running(message: str) -> None:
            self._record(c, key, State.RUNNING, persist=persist, message=message or None)

        return running

    async def _run_task(
        self,
        c: Component,
        cdir: Path,
        key: str,
        env: Mapping[str, str],
        job: JobOptions | None = None,
    ) -> str:
        persist = cdir == c.directory
        prev = self._prev.get(key)
        if self._finished_before(c, key) is not None:
            self._count(State.FINISHED)
            return State.FINISHED.value
        attempt = prev.attempt if prev is not None else 0
        try:
            host, use_job_scheduler, _ = _placement(c, job)
            ex, slots = self._executor(host, use_job_scheduler)
        except SharinError as e:
            return self._finish(c, key, State.FAILED, persist, attempt, None, str(e))
        handle: JobHandle | None = None
        result: JobResult | None = None
        submitted = job.on_submitted if job is not None else None
        try:
            if prev is not None and prev.state in _IN_FLIGHT:
                spec = self._spec(c, cdir, key, env, attempt, job)
                if prev.handle:
                    # the task was started by an engine that died: find it again, never resubmit
                    handle = JobHandle.from_json(prev.handle)
                elif prev.state == State.QUEUED:
                    # it died while submitting: the executor may know whether the job got in
                    handle = await ex.recover(spec)
                    if handle is not None:
                        self._record(
                            c, key, _submitted(ex), persist=persist, handle=handle.to_json()
                        )
                if handle is not None:
                    if submitted is not None:
                        submitted(handle)
                    async with slots:
                        where = ex.describe(handle)
                        self._record(
                            c,
                            key,
                            _submitted(ex),
                            persist=persist,
                            message="re-attached" + (f" to {where}" if where else ""),
                        )
                        result = await ex.attach(handle, spec)
                    if result.lost:
                        if self.options.lost_task == "fail":
                            return self._finish(
                                c, key, State.FAILED, persist, attempt, None, result.message
                            )
                        result = None  # run it again below
                        handle = None
            while True:
                if result is None:
                    attempt += 1
                    spec = self._spec(c, cdir, key, env, attempt, job)
                    self._record(
                        c, key, State.STAGE_IN, persist=persist, attempt=attempt, started=True
                    )
                    try:
                        await self.deliver_inputs(c, cdir)
                        links = self._host_links.pop(cdir, ())
                        if links:
                            spec = dataclasses.replace(spec, host_links=links)
                        if job is not None and job.prepare is not None:
                            spec = await job.prepare(spec)
                        await ex.stage_in(spec)
                    except (SharinError, OSError) as e:
                        why = describe_error(e)
                        return self._finish(c, key, State.FAILED, persist, attempt, None, why)
                    self._record(c, key, State.WAITING, persist=persist)
                    handle = None
                    async with slots:
                        while handle is None:
                            await ex.ready(spec)  # a full scheduler: until it may take one more
                            self._record(
                                c,
                                key,
                                State.QUEUED,
                                persist=persist,
                                attempt=attempt,
                                started=True,
                                message=_SUBMITTING,
                            )
                            submitting = asyncio.ensure_future(ex.submit(spec))
                            try:
                                handle = await asyncio.shield(submitting)
                            except asyncio.CancelledError:
                                # stopped mid-submission: let it end, so the job can be
                                # cancelled (one the executor holds unstarted is not started)
                                ex.withdraw(spec)
                                with contextlib.suppress(
                                    SharinError, OSError, asyncio.CancelledError
                                ):
                                    handle = await submitting
                                raise
                            except SubmitLater as e:
                                self._record(c, key, State.WAITING, persist=persist, message=str(e))
                            except SharinError as e:
                                return self._finish(
                                    c, key, State.FAILED, persist, attempt, None, str(e)
                                )
                        self._record(
                            c,
                            key,
                            _submitted(ex),
                            persist=persist,
                            handle=handle.to_json(),
                            message=ex.describe(handle) or None,
                            recoverable=ex.recovers_started,
                        )
                        if submitted is not None:
                            submitted(handle)
                        result = await ex.wait(handle, spec)
                if result.unknown:
                    # the executor lost sight of the job, which may still run: keep its handle
                    # so that the next `sharin run` re-attaches instead of submitting it again
                    return self._finish(
                        c, key, State.UNKNOWN, persist, attempt, None, result.message
                    )
                if job is not None and job.judge is not None:
                    result = await job.judge(result)
                result = await self._check(c, cdir, env, spec, ex, result)
                if result.ok:
                    self._record(c, key, State.STAGE_OUT, persist=persist)
                    try:
                        await ex.stage_out(spec, result)
                    except SharinError as e:
                        return self._finish(c, key, State.FAILED, persist, attempt, None, str(e))
                    return self._finish(c, key, State.FINISHED, persist, attempt, 0, result.message)
                if attempt <= c.retry and await self._should_retry(c, cdir, env, result):
                    # a short wait, doubling with each attempt, capped: a task that fails at once
                    # is not re-run in a tight loop
                    delay = min(RETRY_DELAY_MAX, RETRY_DELAY * 2 ** (attempt - 1))
                    self._record(
                        c,
                        key,
                        State.WAITING,
                        persist=persist,
                        message=f"attempt {attempt} failed (exit {result.returncode}); "
                        f"retrying in {delay:g} s",
                    )
                    await asyncio.sleep(delay)
                    result = None
                    handle = None
                    continue
                return self._finish(
                    c, key, State.FAILED, persist, attempt, result.returncode, result.message
                )
        except asyncio.CancelledError:
            if handle is not None:
                with contextlib.suppress(SharinError, OSError):
                    await asyncio.shield(ex.cancel(handle))
            return self._finish(
                c, key, State.STOPPED, persist, attempt, None, "stopped by the user"
            )

    def _count(self, state: State) -> None:
        self._counts[state.value] = self._counts.get(state.value, 0) + 1

    def _finish(
        self,
        c: Component,
        key: str,
        state: State,
        persist: bool,
        attempt: int,
        rc: int | None,
        message: str,
    ) -> str:
        self._count(state)
        if state in (State.FAILED, State.UNKNOWN):
            self._failed.append(f"{key}: {message or f'exit code {rc}'}")
            if c.type in _TASK_TYPES and not c.ignore_failure:
                self._failed_tasks.append(key)
        self._record(
            c,
            key,
            state,
            persist=persist,
            attempt=attempt,
            rc=rc,
            message=message or None,
            ended=True,
        )
        return state.value

    async def _should_retry(
        self, c: Component, cdir: Path, env: Mapping[str, str], result: JobResult | None = None
    ) -> bool:
        cond = c.retry_condition
        if cond is None:
            return True
        rc = result.returncode if result is not None else None
        return await condition_true(cond, cdir, {**env, **own_env(c), **rt_env(rc)})

    async def _check(
        self,
        c: Component,
        cdir: Path,
        env: Mapping[str, str],
        spec: TaskSpec,
        ex: Executor,
        result: JobResult,
    ) -> JobResult:
        """A task's ``checker`` decides whether it finished (see ``_taskfields``); it runs in
        the task's directory here, after the task's outputs were brought back."""
        if result.unknown or result.lost or c.data.get("checker") in (None, ""):
            return result
        rc = result.returncode
        try:
            checker = component_file(c, "checker", cdir)
            if checker is None:
                return result
            if ex.kind != "local":
                # the checker reads the outputs; the working directory stays until it passed
                await ex.stage_out(dataclasses.replace(spec, cleanup=False), result)
            crc = await run_checker(
                checker, cdir, {**spec.env, **rt_env(rc)}, spec.stdout_path, spec.stderr_path
            )
        except (SharinError, OSError) as e:
            return JobResult(rc if rc else 1, f"checker: {e}")
        ran = f"the script exited {rc}"
        if crc == 0:
            return JobResult(0, f"checker {checker} passed ({ran})" if rc else "")
        return JobResult(crc, f"checker {checker} exited {crc} ({ran})")


#: the wait before the first re-run of a failed task (``retry``), doubled for each further one
RETRY_DELAY = 0.1
#: the longest wait between two attempts of a task
RETRY_DELAY_MAX = 10.0

#: a WHEEL condition: a script in the component's directory (exit 0 = true) or a safe expression
evaluate_condition = condition_true


#: WHEEL's progress keys of a loop (``loopInitialize`` in OPEN-WHEEL's ``loopUtils.js``): a new
#: run drops them, or WHEEL would resume the loop where an older run left it
_LOOP_PROGRESS = ("initialized", "currentIndex", "prevIndex")


def wheel_state(state: State) -> str:
    """A state as a component's file shows it. WHEEL has no ``stopped`` component: what a stop
    interrupted is ``not-started`` again (as in the projects OPEN-WHEEL left stopped), which is
    also what WHEEL's restart of a loop or a study looks for; the project itself is ``stopped``."""
    return State.NOT_STARTED.value if state == State.STOPPED else state.value


def wheel_time() -> str:
    """WHEEL's time stamps in component files: ``getDateString(true, true)``, local time."""
    t = time.time()
    return time.strftime("%Y/%m/%d-%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def ancestors_type(c: Component) -> str | None:
    """WHEEL's ``ancestorsType``: the types of the containers a component sits in, outermost
    first, joined by ``/`` (``for/workflow``); None at the top level (``dispatcher.js``)."""
    types: list[str] = []
    p = c.parent
    while p is not None and p.parent is not None:
        types.append(p.type)
        p = p.parent
    return "/".join(reversed(types)) or None


def _mirror_task_fields(
    c: Component, key: str, state: State, root: Path, stamped: set[str]
) -> dict[str, object]:
    """What OPEN-WHEEL's ``_dispatchTask`` and executer write into a task's JSON and its task
    list reads (``taskStateFilter`` in ``taskUtil.js``): where it ran, its ancestors, times."""
    fields: dict[str, object] = {}
    if key not in stamped:
        stamped.add(key)
        now = wheel_time()
        fields.update(
            ancestorsName=key.rsplit("/", 1)[0] if "/" in key else "",
            parentType=c.parent.type if c.parent is not None else ComponentType.WORKFLOW.value,
            workingDir=str(root / key),
            dispatchedTime=now,
            startTime=now,
            endTime="not finished",
        )
        kinds = ancestors_type(c)
        fields["ancestorsType"] = kinds if kinds is not None else DELETE
    if state.final:
        fields["endTime"] = wheel_time()
    if c.type == ComponentType.BULKJOB_TASK:
        # the sub job range a parameter file gave (WHEEL's ``_bulkjobHandler`` writes it too)
        for k in ("startBulkNumber", "endBulkNumber"):
            if k in c.data:
                fields[k] = c.data[k]
    return fields


def _submitted(ex: Executor) -> State:
    """The state of an attempt just submitted: ``queued`` while a scheduler's queue holds it
    (its executor says when it runs), else ``running``."""
    return State.QUEUED if ex.queues else State.RUNNING


def _placement(c: Component, job: JobOptions | None) -> tuple[str, bool, str | None]:
    """Host, useJobScheduler and queue of a task (a stepjob's steps take the stepjob's)."""
    if job is not None and job.host is not None:
        return job.host, True, job.queue
    return c.host, c.use_job_scheduler, c.queue


def wheel_states(project: Project) -> dict[str, str]:
    """Components (and loop trips, instances) a run left ``finished`` in ``cmp.wheel.json``,
    unless the whole project finished."""
    if project.state == State.FINISHED:
        return {}
    done: dict[str, str] = {}
    for c in project.components():
        if c.state == State.FINISHED and c.type != ComponentType.IF:
            done[c.rel] = c.type
    root = project.root
    for inst in project.instance_dirs:
        for d, dirs, files in os.walk(inst):
            dirs[:] = [x for x in dirs if not x.startswith(".")]
            if COMPONENT_FILE not in files:
                continue
            try:
                data = read_json_object(Path(d) / COMPONENT_FILE)
            except SharinError:
                continue
            if data.get("state") == State.FINISHED and data.get("type") != ComponentType.IF:
                done[os.path.relpath(d, root)] = str(data.get("type"))
    return done


@dataclass(frozen=True)
class PlannedStep:
    """What ``sharin run`` would do with one component (see :func:`plan`)."""

    key: str
    type: str
    reason: str | None
    """Why it would run (``"script changed"``, ``"after a"``, ``"not run before"``); None: reused."""

    @property
    def runs(self) -> bool:
        return self.reason is not None


def plan(project: Project, journal: Journal | None, *, restart: bool = False) -> list[PlannedStep]:
    """What ``sharin run`` (``--restart``) would run and why, in the order it would start
    them, without running anything or changing any file. Loops, parameter studies and step
    jobs are one step each; the components of a workflow are listed, not the workflow.
    A component that would run makes everything after it run ("after ..."), as in a run; a
    component behind an ``if`` that would run is listed too (its branch is not known yet).
    """
    last = journal.last_run() if journal is not None else None
    fps = valid_fingerprints(journal) if journal is not None and not restart else {}
    resuming = not restart and last is not None and last.state in _RESUMABLE_RUN_STATES
    prev: dict[str, TaskRecord] = {}
    if resuming and journal is not None and last is not None:
        prev = journal.tasks(last.id)
    seeded = wheel_states(project) if not restart and not resuming else {}
    digests = _fingerprint.DigestCache(journal.digests() if journal is not None else ())
    ran: set[str] = set()
    out: list[PlannedStep] = []

    def mark(key: str) -> None:
        while key and key not in ran:
            ran.add(key)
            key = key.rsplit("/", 1)[0] if "/" in key else ""

    def decide(c: Component, key: str) -> str | None:
        p = prev.get(key)
        if p is not None and p.state != State.FINISHED:
            return _unfinished_reason(p)
        cand = fps.get(key)
        if cand is not None and p is not None and _newer(p, cand):
            cand = None
        if cand is None:
            if p is not None or key in seeded:
                return None
            return "not run before"
        after = _after(project, c, key, ran)
        if after is not None:
            return after
        old = _fingerprint.loads(cand.fingerprint)
        if old is None:
            return "no usable record"
        return _fingerprint.explain(c, old, _fingerprint.fingerprint(c, c.directory, digests))

    def walk(container: Component, key: str) -> None:
        for x in _in_order(container.children):
            if x.disabled:
                continue
            k = f"{key}/{x.name}" if key else x.name
            if x.type == ComponentType.WORKFLOW:
                walk(x, k)
                continue
            reason = decide(x, k)
            if reason is not None:
                mark(k)
            out.append(PlannedStep(k, x.type, reason))

    walk(project.root_component, "")
    return out


def _in_order(children: list[Component]) -> list[Component]:
    """Siblings in an order in which each comes after those it depends on."""
    ids = {x.id for x in children}
    waiting = {x.id: len(_dependencies(x) & ids) for x in children}
    after: dict[str, list[Component]] = {x.id: [] for x in children}
    for x in children:
        for d in _dependencies(x) & ids:
            after[d].append(x)
    ready = deque(x for x in children if waiting[x.id] == 0)
    out: list[Component] = []
    while ready:
        x = ready.popleft()
        out.append(x)
        for y in after[x.id]:
            waiting[y.id] -= 1
            if waiting[y.id] == 0:
                ready.append(y)
    seen = {x.id for x in out}
    return out + [x for x in children if x.id not in seen]  # a cycle: validation names it


def _after(project: Project, c: Component, key: str, ran: set[str]) -> str | None:
    """``"after X"`` when a component ``c`` (or a container of it) depends on ran."""
    names: list[str] = []
    x: Component | None = c
    k = key
    while x is not None and x.parent is not None:
        pkey = k.rsplit("/", 1)[0] if "/" in k else ""
        for dep in _dependencies(x):
            d = project.by_id.get(dep)
            if d is None or d.parent is not x.parent:
                continue
            if (f"{pkey}/{d.name}" if pkey else d.name) in ran:
                names.append(d.name)
        x, k = x.parent, pkey
    return f"after {', '.join(sorted(set(names)))}" if names else None


def _unfinished_reason(prev: TaskRecord) -> str:
    if prev.state in _IN_FLIGHT:
        return "was under way when its engine ended"
    return f"{prev.state} before"


def _newer(prev: TaskRecord, cand: FingerprintRecord) -> bool:
    """The record says it finished (in another run) after the fingerprint was kept."""
    return prev.ended is not None and prev.ended > cand.ended + 1e-3 and cand.run != prev.run


def _dependencies(c: Component) -> set[str]:
    """IDs of the components ``c`` waits for: flow edges and producers of its input files."""
    deps = set(c.previous)
    for inp in c.input_files:
        deps.update(link.node for link in inp.src)
    return deps


def valid_fingerprints(journal: Journal) -> dict[str, FingerprintRecord]:
    """The journal's fingerprints, without those a later ``sharin clean`` invalidated."""
    fps = journal.fingerprints()
    if fps:
        fps = {k: r for k, r in fps.items() if not journal.cleaned_after(k, r.ended)}
    return fps


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _git_head(root: Path) -> str | None:
    """The commit the project's work tree is based on (read from .git, no git process)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        path = git / ref
        if path.exists():
            return path.read_text().strip() or None
        packed = git / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


#: components a container launches before it lets them take their first steps (see
#: ``_run_container``)
_LAUNCH_BATCH = 8

#: the message of the run event published when the terminal went away
HANGUP_MESSAGE = "the terminal closed; the run goes on in the background"


def install_signal_handlers(engine: Engine) -> None:
    """SIGINT/SIGTERM stop the run cleanly (tasks cancelled, state journaled).

    SIGHUP (a closed terminal or SSH session) does not stop it: the engine detaches from the
    terminal as ``--detach`` does (stdin from /dev/null, stdout and stderr appended to
    ``.sharin/engine.log``) and the run goes on; subscribers get a run event with
    :data:`HANGUP_MESSAGE` so that they stop drawing on the terminal.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.stop)
    loop.add_signal_handler(signal.SIGHUP, _hang_up, engine)


def _hang_up(engine: Engine) -> None:
    # the first thing: anything written to the dead terminal from now on would fail (EIO)
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    try:
        log = os.open(
            engine.layout.engine_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644
        )
    except OSError:
        log = os.open(os.devnull, os.O_WRONLY)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    for std in (sys.stdout, sys.stderr):  # what they still buffer goes to the log now
        with contextlib.suppress(OSError, ValueError):
            std.flush()
    engine._emit("", "run", State.RUNNING, message=HANGUP_MESSAGE)
