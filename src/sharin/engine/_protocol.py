"""The executor contract. The engine defines it; ``sharin.executors`` implements it.

A task goes through an executor in five steps, each awaited by the engine::

    stage_in(spec)            make the task's files available where it will run
    submit(spec) -> handle    start it; the handle is journaled at once
    wait(handle) -> result    until it ends (event-driven, or one batched status query per host)
    stage_out(spec, result)   bring outputs back (include/exclude globs)
    cancel(handle)            on stop

After a crash the engine never calls ``submit`` again for a task whose handle was journaled:
it calls ``attach(handle)``, which waits for the same process or job and returns its result, or a
result with ``lost=True`` when nothing is left to wait for (the engine then reruns the task or marks
it failed, as configured). ``status`` answers for many handles in one call, so that one scheduler
query covers every job on a host.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ExecutorError
from ._layout import log_stem

__all__ = [
    "BulkRequest",
    "Executor",
    "HostLink",
    "ExecutorProvider",
    "JobHandle",
    "JobResult",
    "JobStatus",
    "StepRequest",
    "SubmitLater",
    "TaskSpec",
]


@dataclass(frozen=True)
class StepRequest:
    """One step of a step job (Fujitsu TCS): the steps run in ``number`` order as one job.

    ``job_id`` is the id of the step job once its first step was accepted (later steps join it);
    ``dependency`` is the step's dependency statement, e.g. ``sd=ec!=0:all``.
    """

    name: str
    number: int
    dependency: str | None = None
    job_id: str | None = None
    #: (number, job id, dependency statement) of each step submitted before this one, in
    #: order: where a step job is a chain of dependent jobs, a step waits for those
    earlier: tuple[tuple[int, str, str | None], ...] = ()


@dataclass(frozen=True)
class BulkRequest:
    """A bulk job (Fujitsu TCS): the same script as sub jobs ``start`` … ``end``."""

    start: int
    end: int


@dataclass(frozen=True)
class HostLink:
    """An input made on the task's host by a symbolic link into the working directory of the
    task that produced it there (the same host, or one that shares its files), instead of
    sending the file from here."""

    producer: str  #: a name for messages
    src_dir: str  #: the producer's working directory on the host
    pattern: str  #: ``srcName``: a name or a glob below ``src_dir``
    dst_name: str  #: ``dstName``, below the task's working directory on the host


@dataclass(frozen=True)
class TaskSpec:
    """Everything an executor needs to run one attempt of one task instance."""

    key: str  #: unique in the run: the instance path below the project root, e.g. ``wf0/train``
    name: str  #: the component name
    workdir: Path  #: the task's directory on this machine
    script: str  #: file name of the script, relative to ``workdir``
    env: Mapping[str, str]  #: the full environment of the script
    log_dir: Path  #: where stdout, stderr and the exit-code file of each attempt go
    attempt: int = 1
    host: str = "localhost"
    use_job_scheduler: bool = False
    queue: str | None = None
    submit_option: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    project_root: Path = Path(".")
    run_tag: str = ""  #: names this run's directory on a host (WHEEL: the start time)
    step: StepRequest | None = None
    bulk: BulkRequest | None = None
    #: OPEN-WHEEL's ``sourceScript``: a file in ``workdir`` sourced before the script
    source_script: str | None = None
    #: remove the task's working directory on its host after stage-out (``cleanupFlag``)
    cleanup: bool = False
    #: inputs linked on the host from where their producer left them (not sent from here)
    host_links: tuple[HostLink, ...] = ()
    #: called by an executor whose jobs wait in a queue (``Executor.queues``) when the
    #: scheduler first reports the attempt running, with a few words on where it runs; the
    #: engine journals it ``running`` then
    on_running: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    @property
    def log_stem(self) -> str:
        return log_stem(self.key)

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.log_stem}.out"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.log_stem}.err"

    @property
    def rc_path(self) -> Path:
        return self.log_dir / f"{self.log_stem}.{self.attempt}.rc"


@dataclass(frozen=True)
class JobHandle:
    """What is journaled right after submit: enough to find the process or job again.

    Handles are compared and hashed by executor, host and native id (``status`` keys its
    answer by handle); ``data`` is extra detail that does not change which job it is.
    """

    executor: str
    host: str
    native_id: str
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        return json.dumps(
            {
                "executor": self.executor,
                "host": self.host,
                "id": self.native_id,
                "data": dict(self.data),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> JobHandle:
        d = json.loads(text)
        return cls(str(d["executor"]), str(d["host"]), str(d["id"]), dict(d.get("data") or {}))


@dataclass(frozen=True)
class JobStatus:
    """One answer of a status query: ``state`` is a sharin state name, ``native`` the scheduler's word."""

    state: str
    native: str = ""
    returncode: int | None = None


@dataclass(frozen=True)
class JobResult:
    """How an attempt ended. ``returncode`` None means it is not known."""

    returncode: int | None
    message: str = ""
    lost: bool = False  #: the process or job vanished without a trace (only from ``attach``)
    #: the executor lost sight of the job (e.g. the scheduler stopped answering); it may still
    #: run, so the engine keeps its handle and re-attaches on the next run instead of resubmitting
    unknown: bool = False
    #: a bulk job's sub jobs: index → (exit code, the scheduler's job status code)
    subjobs: Mapping[int, tuple[int | None, str | None]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.lost and not self.unknown


class SubmitLater(ExecutorError):
    """``submit`` was refused for now (the scheduler is full): the engine waits for
    ``Executor.ready`` and submits again."""


class Executor(abc.ABC):
    """Runs task attempts somewhere. Subclasses implement submit/wait/attach/cancel/status."""

    #: short name journaled with each handle ("local", "ssh", "slurm" ...)
    kind: str = "executor"
    #: a submitted attempt waits in a scheduler's queue first: the engine journals it
    #: ``queued`` (with its handle) until the executor calls ``spec.on_running``
    queues: bool = False
    #: submissions taken beyond ``max_concurrent``, each held by the executor until one of its
    #: running attempts ends and then started without waiting for the engine (the engine keeps
    #: that many more ``submit`` calls under way; :meth:`withdraw` takes one back on a stop)
    queue_ahead: int = 0
    #: :meth:`recover` finds every attempt this executor started from records of its own,
    #: written before :meth:`submit` returned its handle (a local supervisor's pid records):
    #: the engine then journals the handle with the reports of its loop step instead of
    #: committing it before it goes on
    recovers_started: bool = False

    def __init__(self, *, host: str = "localhost", max_concurrent: int = 1) -> None:
        self.host = host
        self.max_concurrent = max(1, int(max_concurrent))

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """A run that may submit here has begun (called on the event loop, must not block):
        start what a first submission waits for, such as a local supervisor process, so that
        its start-up overlaps the run's own. Errors are left for :meth:`submit` to raise."""

    async def stage_in(self, spec: TaskSpec) -> None:  # noqa: B027 - optional hook
        """Make ``spec.workdir`` available where the task runs (no-op for the local machine)."""

    async def ready(self, spec: TaskSpec) -> None:  # noqa: B027 - optional hook
        """Wait until the host may take another submission (a stop cancels this wait; the
        submission after it is seen through)."""

    @abc.abstractmethod
    async def submit(self, spec: TaskSpec) -> JobHandle:
        """Start the attempt and return at once with a handle."""

    def withdraw(self, spec: TaskSpec) -> None:  # noqa: B027 - optional hook
        """The ``submit`` of ``spec`` under way is not wanted any more (the run is stopping):
        an attempt held and not started yet is not started, and that ``submit`` raises
        :class:`~sharin.errors.ExecutorError`; one already started returns its handle as
        usual. Returns at once."""

    @abc.abstractmethod
    async def wait(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        """Wait until the attempt started by this engine ends."""

    def describe(self, handle: JobHandle) -> str:
        """A few words on where the attempt runs, for progress and ``sharin status`` ("" for none)."""
        return ""

    async def recover(self, spec: TaskSpec) -> JobHandle | None:
        """The handle of an attempt whose submit was under way when the engine died, if any.

        Called instead of a second ``submit`` when the intent to submit was journaled but no
        handle was; executors that leave a record of each submission find the job again here.
        """
        return None

    @abc.abstractmethod
    async def attach(self, handle: JobHandle, spec: TaskSpec) -> JobResult:
        """Wait for an attempt started by an earlier engine process (after a crash)."""

    @abc.abstractmethod
    async def cancel(self, handle: JobHandle) -> None:
        """Stop the attempt; returns when it has been told to stop."""

    @abc.abstractmethod
    async def status(self, handles: Sequence[JobHandle]) -> dict[JobHandle, JobStatus]:
        """The state of many attempts in one query."""

    async def stage_out(self, spec: TaskSpec, result: JobResult) -> None:  # noqa: B027
        """Bring outputs back to ``spec.workdir`` (no-op for the local machine)."""

    async def close(self) -> None:  # noqa: B027
        """Release connections."""


class ExecutorProvider(Protocol):
    """Chooses the executor for a task; the interfaces build one from the host definitions."""

    def executor_for(self, host: str, use_job_scheduler: bool) -> Executor: ...

    async def close(self) -> None: ...
