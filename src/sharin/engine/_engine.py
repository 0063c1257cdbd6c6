"""The engine: runs a project's components in dependency order, journaling every step.

One coroutine per container (the root workflow and each nested workflow) keeps the counts of
unfinished dependencies of its children and starts each child when its count reaches zero; a
child's end is reported through a queue, so nothing polls. Tasks go through an
:class:`~sharin.engine.Executor`; at most ``max_concurrent`` of them per executor run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import BusyError, SharinError
from ..model import (
    COMPONENT_FILE,
    STATUS_FILE,
    Component,
    ComponentType,
    Project,
    State,
    read_json_object,
    write_json_atomic,
)
from . import _control, _jobs
from ._control import TripControl, condition_true
from ._events import Event, EventBus
from ._files import Delivery, deliver, resolve_sources
from ._jobs import JobOptions
from ._journal import Journal, TaskRecord
from ._protocol import (
    Executor,
    ExecutorProvider,
    JobHandle,
    JobResult,
    TaskSpec,
)

__all__ = ["Engine", "RunOptions", "RunResult", "SUPPORTED_TYPES", "sharin_dir"]

#: component types this engine runs
SUPPORTED_TYPES = frozenset(
    t.value
    for t in (
        ComponentType.TASK,
        ComponentType.WORKFLOW,
        ComponentType.IF,
        ComponentType.FOR,
        ComponentType.FOREACH,
        ComponentType.WHILE,
        ComponentType.BREAK,
        ComponentType.CONTINUE,
        ComponentType.PARAMETER_STUDY,
        ComponentType.SOURCE,
        ComponentType.VIEWER,
        ComponentType.STORAGE,
        ComponentType.STEPJOB,
        ComponentType.STEPJOB_TASK,
        ComponentType.BULKJOB_TASK,
    )
)

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

_RESUMABLE_RUN_STATES = {"running", "stopped", "failed"}


def sharin_dir(project_root: Path) -> Path:
    """sharin's own files in a project: the journal, logs of every run, the engine lock."""
    return project_root / ".sharin"


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

    @property
    def ok(self) -> bool:
        return self.state == State.FINISHED


#: seconds the mirror waits so that quick successive states of a component are written once
_MIRROR_DELAY = 0.1


class _StateMirror:
    """Writes states where WHEEL reads them (``cmp.wheel.json``, ``status.wheel.txt``).

    The journal is the record; this is a mirror for WHEEL and people, written by a thread so
    the event loop never waits on the file system. Writes coalesce: a task that goes from
    running to finished before the thread gets to it is written once.
    """

    def __init__(self) -> None:
        self._pending: dict[int, tuple[Component, str, str | None]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sharin-state-mirror", daemon=True)
        self._thread.start()

    def set(self, c: Component, state: str, status: str | None) -> None:
        with self._cond:
            old = self._pending.get(id(c))
            if status is None and old is not None and old[2] is not None:
                status = old[2]
            self._pending[id(c)] = (c, state, status)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                closing = self._closed
            if not closing:
                # let the states of short tasks coalesce: one write instead of two or three
                # (close() cuts the wait short)
                self._closing.wait(_MIRROR_DELAY)
            with self._cond:
                batch, self._pending = self._pending, {}
                closed = self._closed
            for c, state, status in batch.values():
                c.data["state"] = state
                try:
                    write_json_atomic(c.file, c.data)
                    if status is not None:
                        (c.directory / STATUS_FILE).write_text(status)
                except OSError:
                    pass  # the journal holds the truth; a mirror write may fail on a full disk
            if closed and not batch:
                return

    def close(self) -> None:
        self._closing.set()
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()


class Engine:
    """Runs one project. Use :meth:`run` once per Engine object."""

    def __init__(
        self,
        project: Project,
        executors: ExecutorProvider,
        *,
        options: RunOptions | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.project = project
        self.executors = executors
        self.options = options or RunOptions()
        self.events = events or EventBus()
        self.dir = sharin_dir(project.root)
        self.journal: Journal | None = None
        self.run_id = 0
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._halt = False
        self._branches: dict[str, bool] = {}
        self._stopping = False
        self._prev: dict[str, TaskRecord] = {}
        self._task_futs: set[asyncio.Task[str]] = set()
        self._counts: dict[str, int] = {}
        self._failed: list[str] = []
        self._ignored_failures = 0  #: failures ignoreFailure let the run go past
        self._base_env: dict[str, str] = {}
        self._log_dir = self.dir
        self._run_tag = ""
        self._lock_fd: int | None = None
        self._mirror = _StateMirror()

    # ------------------------------------------------------------------ public
    def stop(self) -> None:
        """Stop the run: no new tasks start, running ones are cancelled. Safe to call from signal handlers."""
        self._stopping = True
        self._halt = True
        for t in list(self._task_futs):
            t.cancel()

    async def run(self) -> RunResult:
        t0 = time.monotonic()
        try:
            self._lock()
            try:
                return await self._run(t0)
            finally:
                self._unlock()
        finally:
            self._mirror.close()  # also when the run never started (busy, bad journal)

    # ------------------------------------------------------------------ setup
    def _lock(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "engine.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _read_int(self.dir / "engine.pid")
            raise BusyError(
                f"{self.project.root}: the project is already running (engine pid {pid}); "
                "wait for it, watch it with `sharin status`, or stop it with `sharin stop`"
            ) from None
        self._lock_fd = fd
        (self.dir / "engine.pid").write_text(f"{os.getpid()}\n")

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "engine.pid").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def _start_run(self) -> bool:
        """Open the journal and choose: resume the last run, or begin a new one."""
        self.journal = Journal(self.dir / "journal.sqlite")
        last = self.journal.last_run()
        if self.options.resume and last is not None and last.state in _RESUMABLE_RUN_STATES:
            self.run_id = last.id
            self.journal.reopen_run(last.id)
            self._prev = self.journal.tasks(last.id)
            resumed = True
        else:
            seeded = self._wheel_states() if self.options.resume else {}
            resumed = bool(seeded)
            self.run_id = self.journal.new_run(
                {"git": _git_head(self.project.root), "resumed_from_wheel": resumed}
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
            if not resumed:
                self._reset_component_states()
        record = self.journal.run(self.run_id)
        started = record.started if record is not None else time.time()
        self._run_tag = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
        self._log_dir = self.dir / "runs" / str(self.run_id)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return resumed

    def _wheel_states(self) -> dict[str, str]:
        """Components (and loop trips, instances) a run left ``finished`` in ``cmp.wheel.json``.

        When the project did not finish (a run WHEEL, or sharin before its journal, stopped),
        ``sharin run`` continues from these, as WHEEL's own restart does.
        """
        if self.project.state == State.FINISHED:
            return {}
        done: dict[str, str] = {}
        for c in self.project.components():
            if c.state == State.FINISHED and c.type != ComponentType.IF:
                done[c.rel] = c.type
        root = self.project.root
        for inst in self.project.instance_dirs:
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

    def _reset_component_states(self) -> None:
        for c in self.project.root_component.walk():
            if c.data.get("state") not in (None, State.NOT_STARTED.value):
                c.data["state"] = State.NOT_STARTED.value
                write_json_atomic(c.file, c.data)
                with contextlib.suppress(FileNotFoundError):
                    (c.directory / STATUS_FILE).unlink()

    async def _run(self, t0: float) -> RunResult:
        resumed = self._start_run()
        assert self.journal is not None
        root = self.project.root
        self._base_env = dict(os.environ)
        self._base_env.update(self.project.root_component.env)
        self._base_env.update(
            WHEEL_LOCAL_PRJDIR=str(root),
            SHARIN_PROJECT_DIR=str(root),
            SHARIN_RUN_ID=str(self.run_id),
        )
        self.project.set_project_state(State.RUNNING.value)
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
            # also reached on an unexpected error or KeyboardInterrupt: record what we know
            self._mirror.close()
            self.journal.end_run(self.run_id, state.value)
            self.project.set_project_state(state.value)
            self._emit("", "run", state)
            self.events.close()
            self.journal.close()
        return RunResult(
            self.run_id,
            state.value,
            resumed,
            dict(self._counts),
            list(self._failed),
            time.monotonic() - t0,
        )

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
        if state not in _PASSING:
            self.journal.set_task(self.run_id, key, c.type, state.value, **kw)  # type: ignore[arg-type]
        attempt = kw.get("attempt")
        rc = kw.get("rc")
        msg = kw.get("message")
        self._emit(
            key,
            c.type,
            state,
            attempt=attempt if isinstance(attempt, int) else 0,
            rc=rc if isinstance(rc, int) else None,
            message=msg if isinstance(msg, str) else "",
        )
        if persist and state in _MIRRORED:
            status = None
            if state.final and c.type != ComponentType.WORKFLOW:
                code = "" if not isinstance(rc, int) else str(rc)
                status = f"{state.value}\n{code}\n{code}\n"
            self._mirror.set(c, state.value, status)

    def _finished_before(self, c: Component, key: str) -> TaskRecord | None:
        """The journal's record of ``key`` if it finished in an earlier attempt of this run
        (or WHEEL left it finished); subscribers are told, and the caller skips it."""
        prev = self._prev.get(key)
        if prev is None or prev.state != State.FINISHED:
            return None
        self._emit(key, c.type, State.FINISHED, message=prev.message or "finished before")
        return prev

    # ------------------------------------------------------------------ containers
    async def _run_component(
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

    def _enter_container(self, c: Component, cdir: Path, key: str) -> str | None:
        """Start a container: its inputs delivered, its state running. Returns the state to end
        with at once (it finished before, or its inputs failed), or None to go on."""
        persist = cdir == c.directory
        if self._finished_before(c, key) is not None:
            return State.FINISHED.value
        self._record(c, key, State.STAGE_IN, persist=persist, started=True)
        try:
            self._deliver_inputs(c, cdir)
        except SharinError as e:
            self._failed.append(f"{key}: {e}")
            self._record(c, key, State.FAILED, persist=persist, message=str(e), ended=True)
            return State.FAILED.value
        self._record(c, key, State.RUNNING, persist=persist)
        return None

    async def _run_workflow(
        self, c: Component, cdir: Path, key: str, env: Mapping[str, str]
    ) -> str:
        persist = cdir == c.directory
        early = self._enter_container(c, cdir, key)
        if early is not None:
            return early
        sub_env = dict(env)
        sub_env.update(c.env)
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
                self._task_futs.add(t)
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
        self._task_futs.discard(fut)
        if fut.cancelled():
            state = State.STOPPED.value
        elif (exc := fut.exception()) is not None:
            self._failed.append(f"{x.rel}: internal error: {exc!r}")
            state = State.FAILED.value
        else:
            state = fut.result()
        q.put_nowait((x, state))

    # ------------------------------------------------------------------ files
    def _deliver_inputs(self, c: Component, cdir: Path) -> None:
        parent = c.parent
        if parent is None:
            return
        pdir = cdir.parent
        for inp in c.input_files:
            for link in inp.src:
                for producer, sdir, pattern, copy in resolve_sources(
                    parent, pdir, link.node, link.name
                ):
                    deliver(Delivery(producer, sdir, pattern, cdir, inp.name, copy))

    # ------------------------------------------------------------------ tasks
    def _executor(self, host: str, use_job_scheduler: bool) -> tuple[Executor, asyncio.Semaphore]:
        ex = self.executors.executor_for(host, use_job_scheduler)
        slots = self._slots.get(id(ex))
        if slots is None:
            n = ex.max_concurrent
            if ex.kind == "local" and self.options.max_local:
                n = self.options.max_local
            slots = self._slots[id(ex)] = asyncio.Semaphore(n)
        return ex, slots

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
        full_env = dict(env)
        full_env.update(c.env)
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
            outputs=tuple(o.name for o in c.output_files),
            project_root=self.project.root,
            run_tag=self._run_tag,
            step=job.step if job is not None else None,
            bulk=job.bulk if job is not None else None,
        )

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
                            c, key, State.RUNNING, persist=persist, handle=handle.to_json()
                        )
                if handle is not None:
                    if submitted is not None:
                        submitted(handle)
                    async with slots:
                        where = ex.describe(handle)
                        self._record(
                            c,
                            key,
                            State.RUNNING,
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
                        self._deliver_inputs(c, cdir)
                        if job is not None and job.prepare is not None:
                            spec = job.prepare(spec)
                        await ex.stage_in(spec)
                    except SharinError as e:
                        return self._finish(c, key, State.FAILED, persist, attempt, None, str(e))
                    self._record(c, key, State.WAITING, persist=persist)
                    async with slots:
                        self._record(
                            c,
                            key,
                            State.QUEUED,
                            persist=persist,
                            attempt=attempt,
                            started=True,
                            message="submitting",
                        )
                        submitting = asyncio.ensure_future(ex.submit(spec))
                        try:
                            handle = await asyncio.shield(submitting)
                        except asyncio.CancelledError:
                            # stopped mid-submission: let it end, so the job can be cancelled
                            with contextlib.suppress(SharinError, OSError, asyncio.CancelledError):
                                handle = await submitting
                            raise
                        except SharinError as e:
                            return self._finish(
                                c, key, State.FAILED, persist, attempt, None, str(e)
                            )
                        self._record(
                            c,
                            key,
                            State.RUNNING,
                            persist=persist,
                            handle=handle.to_json(),
                            message=ex.describe(handle) or None,
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
                if result.ok:
                    self._record(c, key, State.STAGE_OUT, persist=persist)
                    await ex.stage_out(spec, result)
                    return self._finish(c, key, State.FINISHED, persist, attempt, 0, result.message)
                if attempt <= c.retry and await self._should_retry(c, cdir, env):
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

    async def _should_retry(self, c: Component, cdir: Path, env: Mapping[str, str]) -> bool:
        cond = c.retry_condition
        if cond is None:
            return True
        return await condition_true(cond, cdir, env)


#: the wait before the first re-run of a failed task (``retry``), doubled for each further one
RETRY_DELAY = 0.1
#: the longest wait between two attempts of a task
RETRY_DELAY_MAX = 10.0

#: a WHEEL condition: a script in the component's directory (exit 0 = true) or a safe expression
evaluate_condition = condition_true


def _placement(c: Component, job: JobOptions | None) -> tuple[str, bool, str | None]:
    """Host, useJobScheduler and queue of a task (a stepjob's steps take the stepjob's)."""
    if job is not None and job.host is not None:
        return job.host, True, job.queue
    return c.host, c.use_job_scheduler, c.queue


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


def install_signal_handlers(engine: Engine) -> None:
    """SIGINT/SIGTERM stop the run cleanly (tasks cancelled, state journaled)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.stop)
