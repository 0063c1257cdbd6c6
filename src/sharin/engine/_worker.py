"""The engine's file worker: the thread that does an engine's blocking file work.

Copying and deleting loop trips, making, gathering and deleting parameter-study instances,
delivering inputs, expanding bulk jobs, checking and fingerprinting component trees and the
files of sources, viewers and storages all block on the file system.
Run on the event loop, a slow file system would stall every task's progress (and a server
sharing the loop with it); here they run in order on one thread of the engine's own, and the
loop only awaits their result. Each engine has its own worker (made with the engine, closed when
its run ends), so two engines in one process never wait for each other's files.

``before_each`` is called on the worker's thread before each operation, with the function about
to run: a slow or failing file system can be played by it (a test makes one operation sleep)
without changing what the engine does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["FileWorker"]

P = ParamSpec("P")
T = TypeVar("T")


class FileWorker:
    """Runs blocking file operations of one engine off its event loop, one at a time."""

    def __init__(
        self,
        name: str = "sharin-files",
        *,
        before_each: Callable[[Callable[..., object]], None] | None = None,
    ) -> None:
        self._name = name
        #: called on the worker's thread before each operation, with its function
        self.before_each = before_each
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def _executor(self) -> ThreadPoolExecutor:
        if self._closed:
            raise RuntimeError("the file worker is closed: the run has ended")
        if self._pool is None:  # made on first use: a run without file work starts no thread
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        return self._pool

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the worker's thread; its result or its exception."""
        loop = asyncio.get_running_loop()
        op = functools.partial(fn, *args, **kwargs)
        hook = self.before_each
        if hook is not None:
            op = functools.partial(_hooked, hook, fn, op)
        return await loop.run_in_executor(self._executor(), op)

    def close(self) -> None:
        """Wait for the operations already given and stop the thread (idempotent); a later
        :meth:`call` raises :class:`RuntimeError`."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _hooked(
    hook: Callable[[Callable[..., object]], None], fn: Callable[..., object], op: Callable[[], T]
) -> T:
    hook(fn)
    return op()
