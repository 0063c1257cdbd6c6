"""Executors: where task scripts run.

- :class:`LocalExecutor`: processes on this machine.
- :class:`RemoteShellExecutor`: processes on a host reached over SSH (no scheduler).
- :class:`BatchExecutor`: batch jobs through a scheduler described by data
  (``jobScheduler.json``: the commands and the regular expressions that read their output), over a
  :class:`Transport` to the host.

:class:`ExecutorRegistry` picks one per (host, useJobScheduler) from ``remotehost.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ..errors import ExecutorError, Problem
from ..model import LOCALHOST, HostConfig

if TYPE_CHECKING:
    from ..engine import Executor
    from ..model import Project
    from ._handles import JobRef, job_ref
    from ._scheduler import SchedulerDefinition, load_schedulers
    from ._transport import LocalTransport, Transport
    from .batch import BatchExecutor
    from .local import LocalExecutor, prepare_script
    from .remote import RemoteShellExecutor

__all__ = [
    "BatchExecutor",
    "ExecutorRegistry",
    "JobRef",
    "LocalExecutor",
    "LocalTransport",
    "RemoteShellExecutor",
    "SchedulerDefinition",
    "Transport",
    "job_ref",
    "load_schedulers",
    "prepare_script",
    "step_and_bulk_hosts",
    "step_statement_problems",
]

#: the module (below this package) that defines each name loaded on first use (PEP 562):
#: checking a project's hosts does not import the executors and asyncio
_LAZY: dict[str, str] = {
    "BatchExecutor": "batch",
    "LocalExecutor": "local",
    "prepare_script": "local",
    "RemoteShellExecutor": "remote",
    "LocalTransport": "_transport",
    "Transport": "_transport",
    "SchedulerDefinition": "_scheduler",
    "load_schedulers": "_scheduler",
    "JobRef": "_handles",
    "job_ref": "_handles",
}

if not TYPE_CHECKING:  # type checkers see the imports above; the names exist at run time
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


def step_and_bulk_hosts(
    hosts: Mapping[str, HostConfig], schedulers: Mapping[str, SchedulerDefinition]
) -> tuple[set[str], set[str]]:
    """The hosts that can run step jobs, and those that can run bulk jobs (as WHEEL checks them)."""
    step: set[str] = set()
    bulk: set[str] = set()
    for name, h in hosts.items():
        s = schedulers.get(h.job_scheduler or "")
        if s is None:
            continue
        if s.supports_step and h.raw.get("useStepjob"):
            step.add(name)
        if s.supports_bulk and h.raw.get("useBulkjob"):
            bulk.add(name)
    return step, bulk


def step_statement_problems(
    project: Project,
    hosts: Mapping[str, HostConfig],
    schedulers: Mapping[str, SchedulerDefinition],
) -> list[Problem]:
    """The steps' dependency statements that their stepjob's scheduler cannot keep (where a
    step job is a chain of dependent jobs), each naming the step's file and field."""
    from ..model import COMPONENT_FILE, step_order

    out: list[Problem] = []
    for c in project.components():
        if c.type != "stepjob" or c.host not in hosts:
            continue
        s = schedulers.get(hosts[c.host].job_scheduler or "")
        if s is None or not s.chains_steps:
            continue
        earlier: list[tuple[int, str, str | None]] = []
        for n, step in enumerate(step_order(c)):
            if step.disabled:
                continue
            form = step.data.get("dependencyForm") if step.data.get("useDependency") else None
            statement = str(form).strip() if form else None
            file = f"{step.rel}/{COMPONENT_FILE}"
            try:
                s.step_conditions(statement, earlier, file)
            except ExecutorError as e:
                said = str(e).removeprefix(f"{file} [dependencyForm]: ")
                out.append(Problem(file, "dependencyForm", said))
            earlier.append((n, f"step{n}", statement))
    return out


#: host names of this machine: an SSH entry naming one is told about ``"transport": "local"``
_THIS_MACHINE = frozenset({"localhost", "127.0.0.1", "::1"})


class ExecutorRegistry:
    """Chooses (and keeps one of) each executor a run needs, from the host definitions."""

    def __init__(
        self,
        hosts: Mapping[str, HostConfig] | None = None,
        *,
        max_local: int | None = None,
        schedulers: Mapping[str, SchedulerDefinition] | None = None,
        ask: Callable[[str, bool], str] | None = None,
    ) -> None:
        self.hosts = dict(hosts or {})
        #: answers a passphrase, password or one-time-code prompt of an SSH login (None: no
        #: prompts, only keys that need none)
        self._ask = ask
        self._schedulers = dict(schedulers) if schedulers is not None else None
        self._max_local = max_local
        self._local_executor: LocalExecutor | None = None
        self._remote: dict[tuple[str, bool], Executor] = {}
        self._ssh_used = False  #: an SSH transport was made: close the pool's connections

    @property
    def _local(self) -> LocalExecutor:
        """The executor of this machine's processes, made when a task first needs it."""
        if self._local_executor is None:
            from .local import LocalExecutor

            self._local_executor = LocalExecutor(max_concurrent=self._max_local)
        return self._local_executor

    @property
    def schedulers(self) -> dict[str, SchedulerDefinition]:
        if self._schedulers is None:
            from ._scheduler import load_schedulers

            self._schedulers = load_schedulers()
        return self._schedulers

    def executor_for(self, host: str, use_job_scheduler: bool) -> Executor:
        if host in (LOCALHOST, "", None):
            if use_job_scheduler:
                raise ExecutorError(
                    "a batch job needs a remote host with a jobScheduler; set the task's host "
                    "(for this machine's own scheduler: an entry of remotehost.json with "
                    '"transport": "local" and its jobScheduler)'
                )
            return self._local
        cfg = self.hosts.get(host)
        if cfg is None:
            known = ", ".join(sorted([LOCALHOST, *self.hosts]))
            raise ExecutorError(
                f"unknown host {host!r} (known: {known}); add it to remotehost.json"
            )
        ex = self._remote.get((host, use_job_scheduler))
        if ex is None:
            ex = self._remote[(host, use_job_scheduler)] = self._make(cfg, use_job_scheduler)
        return ex

    def _transport(self, cfg: HostConfig) -> Transport:
        kind = cfg.transport
        if kind == "local":
            from ._transport import LocalTransport

            return LocalTransport()
        if kind == "ssh":
            from ._ssh import SSHTransport

            self._ssh_used = True
            # the process's one pooled connection to the host
            return SSHTransport(cfg, ask=self._ask)
        raise ExecutorError(
            f"host {cfg.name!r}: unknown transport {kind!r} in remotehost.json; use ssh or local"
        )

    def _make(self, cfg: HostConfig, use_job_scheduler: bool) -> Executor:
        if cfg.transport == "ssh" and not cfg.path and cfg.host in _THIS_MACHINE:
            # over SSH to this very machine, into the login directory: meant is almost always
            # this machine's own scheduler
            raise ExecutorError(
                f"host {cfg.name!r} has no path in remotehost.json; set it to the directory "
                "where its jobs are to run (sharin copies each task there); or, to use this "
                'machine\'s scheduler without SSH, set "transport": "local"'
            )
        transport = self._transport(cfg)
        if not use_job_scheduler and cfg.transport == "ssh":
            from .remote import RemoteShellExecutor

            return RemoteShellExecutor(cfg, transport)  # a process on the host, no scheduler
        if not use_job_scheduler:
            # a host reached without SSH is this machine: its tasks are local processes
            return self._local
        name = cfg.job_scheduler
        if not name:
            raise ExecutorError(
                f"host {cfg.name!r} has no jobScheduler in remotehost.json; set one "
                f"({', '.join(sorted(self.schedulers))}) or set the task's useJobScheduler to false"
            )
        scheduler = self.schedulers.get(name)
        if scheduler is None:
            raise ExecutorError(
                f"host {cfg.name!r}: unknown jobScheduler {name!r} (known: "
                f"{', '.join(sorted(self.schedulers))}); define it in jobScheduler.json"
            )
        from .batch import BatchExecutor

        return BatchExecutor(cfg, scheduler, transport)

    async def close(self) -> None:
        for ex in self._remote.values():
            if ex is not self._local_executor:
                await ex.close()
        if self._local_executor is not None:
            await self._local_executor.close()
        if self._ssh_used:
            from ._ssh import POOL

            await POOL.close()  # this loop's connections; another loop's stay with it
