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
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, ParamSpec, TypeVar

__all__ = ["FileWorker"]

P = ParamSpec("P")
T = TypeVar("T")

#: one operation: the loop and future that wait for it, the function, its arguments
_Op = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
]
#: one result on its way back: the future and the result or the exception
_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]


class FileWorker:
    """Runs blocking file operations of one engine off its event loop, one at a time.

    One thread of its own takes the operations from a queue and hands each result back to the
    waiting loop. The results that end while the loop is busy go back together, in one wake-up
    of the loop (a parameter study makes and gathers tens of thousands of instances through
    here, two operations each).
    """

    def __init__(
        self,
        name: str = "sharin-files",
        *,
        before_each: Callable[[Callable[..., object]], None] | None = None,
    ) -> None:
        self._name = name
        #: called on the worker's thread before each operation, with its function
        self.before_each = before_each
        self._queue: SimpleQueue[_Op | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        #: per loop: the results not yet handed back, and whether a hand-back is on its way
        self._done: dict[asyncio.AbstractEventLoop, deque[_Done]] = {}

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the worker's thread; its result or its exception. An
        operation whose caller was cancelled before it started is not run."""
        if self._closed:
            raise RuntimeError("the file worker is closed: the run has ended")
        if self._thread is None:  # made on first use: a run without file work starts no thread
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, fut, fn, args, kwargs))
        return await fut

    def _run(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            loop, fut, fn, args, kwargs = op
            if fut.cancelled():  # its caller is gone (a stopped run): nothing to do
                continue
            try:
                hook = self.before_each
                if hook is not None:
                    hook(fn)
                done: _Done = (fut, fn(*args, **kwargs), None)
            except BaseException as e:  # noqa: BLE001 - handed to the caller, who re-raises it
                done = (fut, None, e)
            with self._lock:
                pending = self._done.get(loop)
                post = pending is None
                if post:
                    pending = self._done[loop] = deque()
                assert pending is not None
                pending.append(done)
            if post:
                try:
                    loop.call_soon_threadsafe(self._hand_back, loop)
                except RuntimeError:  # the loop was closed: nobody waits any more
                    with self._lock:
                        self._done.pop(loop, None)

    def _hand_back(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: set the futures of every result that came back since the last time."""
        with self._lock:
            pending = self._done.pop(loop, deque())
        for fut, result, exc in pending:
            if fut.cancelled():
                continue
            if exc is None:
                fut.set_result(result)
            else:
                fut.set_exception(exc)

    def close(self) -> None:
        """Wait for the operations already given and stop the thread (idempotent); a later
        :meth:`call` raises :class:`RuntimeError`."""
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
