"""What a run starts before its project has been read.

A run's helpers take tens of milliseconds of CPU to start: the WHEEL state writer's process, the
local supervisor, and git's look at the work tree (whether the project has unsaved changes,
kept with the run). Only the project's directory is needed to start them, so they start while
the project is read and checked, on the CPU those leave free. Nothing of the project is written
and nothing it carries runs (git runs as every git call of sharin does).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ..errors import SharinError
from ..model import git
from ._layout import RunLayout
from ._mirror import StateMirror
from ._protocol import ExecutorProvider

__all__ = ["Prelude", "end_start", "git_dirty"]


async def git_dirty(root: Path) -> bool | None:
    """Whether the project has unsaved changes (None: not a git repository, or no git).
    git runs as every git call of sharin does: nothing the project carries runs."""
    if not git.is_repo(root):
        return None
    try:
        return await asyncio.to_thread(git.is_dirty, root)
    except SharinError:
        return None


class Prelude:
    """The start of a run of the project in ``root``, before an
    :class:`~sharin.engine.Engine` exists: its state writer, git's look and, given
    ``executors``, the local supervisor (most runs have local tasks; one that has none ends it
    with the executors). Call in a running event loop; hand it to the engine
    (``Engine(..., prelude=...)``), or end it with :meth:`discard`."""

    def __init__(self, root: Path, executors: ExecutorProvider | None = None) -> None:
        self.root = root
        self.mirror = StateMirror(RunLayout(root).mirror_spares)
        self.mirror.start()
        self.dirty: asyncio.Future[bool | None] = asyncio.ensure_future(git_dirty(root))
        if executors is not None:
            with contextlib.suppress(SharinError):
                executors.executor_for("localhost", False).prepare()

    async def discard(self) -> None:
        """End what was started, for a run that will not take place (the executors' helpers
        end with the executors)."""
        await end_start(self.dirty, self.mirror)


async def end_start(dirty: asyncio.Future[bool | None] | None, mirror: StateMirror) -> None:
    """End git's look (when it was started) and the state writer of a run that will not take
    place."""
    if dirty is not None:
        dirty.cancel()
        with contextlib.suppress(asyncio.CancelledError, SharinError, OSError):
            await dirty
    await asyncio.to_thread(mirror.close)
