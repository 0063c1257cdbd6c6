"""Executors: where task scripts run. Local processes now; SSH and batch schedulers plug in here."""

from __future__ import annotations

from collections.abc import Mapping

from ..engine import Executor
from ..errors import ExecutorError
from ..model import LOCALHOST, HostConfig
from .local import LocalExecutor, prepare_script

__all__ = ["ExecutorRegistry", "LocalExecutor", "prepare_script"]


class ExecutorRegistry:
    """Chooses (and keeps one of) each executor a run needs, from the host definitions."""

    def __init__(
        self, hosts: Mapping[str, HostConfig] | None = None, *, max_local: int | None = None
    ) -> None:
        self.hosts = dict(hosts or {})
        self._local = LocalExecutor(max_concurrent=max_local)
        self._remote: dict[tuple[str, bool], Executor] = {}

    def executor_for(self, host: str, use_job_scheduler: bool) -> Executor:
        if host in (LOCALHOST, "", None):
            if use_job_scheduler:
                raise ExecutorError(
                    "a batch job needs a remote host with a jobScheduler; set the task's host"
                )
            return self._local
        if host not in self.hosts:
            known = ", ".join(sorted([LOCALHOST, *self.hosts]))
            raise ExecutorError(
                f"unknown host {host!r} (known: {known}); add it to remotehost.json"
            )
        raise ExecutorError(
            f"host {host!r}: remote execution (SSH and batch schedulers) is not available in this "
            "version of sharin; run the task on localhost"
        )

    async def close(self) -> None:
        for ex in self._remote.values():
            await ex.close()
        await self._local.close()
