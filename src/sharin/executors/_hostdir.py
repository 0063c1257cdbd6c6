"""Where a task runs on a host with a ``path``, and how its files get there and back.

Shared by the batch executor and the remote-shell executor: each attempt runs in
``<path>/<run>/<component path>`` on the host (the component's directory sent there, WHEEL's own
files left out) and its ``outputFiles`` and ``include`` globs come back (minus ``exclude``).
Without a ``path`` the task runs in its own directory (a host reached as this machine).
"""

from __future__ import annotations

import posixpath

from ..engine import TaskSpec
from ..model import HostConfig
from ._staging import stage_in_to_host, stage_out_from_host
from ._transport import Transport

__all__ = ["job_dir", "stage_in", "stage_out", "staged"]


def job_dir(cfg: HostConfig, spec: TaskSpec) -> str:
    """The task's directory: its own, or ``<path>/<run>/<task>`` on the host (over SSH without
    a ``path``, ``<run>/<task>`` in the login directory, as in WHEEL)."""
    if not cfg.path:
        if cfg.transport == "ssh":
            return posixpath.join(spec.run_tag or "run", spec.key)
        return str(spec.workdir)
    return posixpath.join(cfg.path, spec.run_tag or "run", spec.key)


def staged(cfg: HostConfig, spec: TaskSpec) -> bool:
    """Whether the task runs in a copy of its directory (files are sent and brought back)."""
    return job_dir(cfg, spec) != str(spec.workdir)


async def stage_in(transport: Transport, cfg: HostConfig, spec: TaskSpec) -> None:
    """The task's directory sent, then the inputs its producers left on the host linked there
    (:func:`._staging.stage_in_to_host`)."""
    if staged(cfg, spec):
        await stage_in_to_host(transport, spec, job_dir(cfg, spec))


async def stage_out(transport: Transport, cfg: HostConfig, spec: TaskSpec) -> None:
    """Outputs and ``include`` brought back, links leading out refused, the directory removed
    as ``cleanupFlag`` says (:func:`._staging.stage_out_from_host`)."""
    if staged(cfg, spec):
        await stage_out_from_host(transport, spec, job_dir(cfg, spec), cfg.path)
