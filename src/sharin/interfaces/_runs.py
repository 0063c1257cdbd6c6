"""Engines running in this process: a handle per run, found again by project.

:func:`sharin.interfaces.api.start_run` makes a :class:`RunHandle` and registers it here, so that
``api.stop`` of a project whose engine is this very process asks that engine to stop instead of
sending SIGTERM to itself (which, inside a server, would stop the server).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine, EventBus, RunResult

__all__ = ["RunHandle", "local_run", "local_runs"]

_RUNS: dict[str, RunHandle] = {}
_GUARD = threading.Lock()


def _name(root: Path) -> str:
    return str(root.resolve())


def local_run(root: Path) -> RunHandle | None:
    """The run of the project at ``root`` that an engine of this process is running, if any."""
    with _GUARD:
        h = _RUNS.get(_name(root))
    return h if h is not None and not h.done else None


def local_runs() -> list[RunHandle]:
    with _GUARD:
        return [h for h in _RUNS.values() if not h.done]


class RunHandle:
    """One engine run in this process: stop it, watch its events, await its result.

    The run goes on whether anyone holds the handle or not (a browser tab that closes does not
    stop it); it ends when the engine ends.
    """

    def __init__(
        self,
        root: Path,
        engine: Engine,
        bus: EventBus,
        finish: Callable[[], Awaitable[None]],
    ) -> None:
        self.root = root
        self.engine = engine
        self.events = bus  #: subscribe to it, or attach an EventHub
        self._finish = finish
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._task: asyncio.Task[RunResult] | None = None

    def start(self) -> None:
        """Begin the run (in the current event loop) and register it."""
        name = _name(self.root)
        with _GUARD:
            old = _RUNS.get(name)
            if old is not None and not old.done:
                from ..errors import BusyError

                raise BusyError(
                    f"{self.root}: the project is already running (in this process); stop it "
                    "or wait for it"
                )
            _RUNS[name] = self
        self._task = self._loop.create_task(self._drive(), name=f"sharin run {self.root}")

    async def _drive(self) -> RunResult:
        try:
            return await self.engine.run()
        finally:
            try:
                await self._finish()
            finally:
                with _GUARD:
                    if _RUNS.get(_name(self.root)) is self:
                        del _RUNS[_name(self.root)]

    @property
    def run_id(self) -> int:
        """The run's number in the journal (0 until the engine has begun it)."""
        return self.engine.run_id

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def in_loop_thread(self) -> bool:
        """True when called from the thread whose event loop runs this engine."""
        return threading.get_ident() == self._thread

    def stop(self) -> None:
        """Ask the engine to stop (no new task starts, running ones are cancelled, jobs deleted);
        returns at once, from any thread. Await :meth:`result` to wait for the end."""
        if self.in_loop_thread():
            self.engine.stop()
        else:
            self._loop.call_soon_threadsafe(self.engine.stop)

    async def result(self) -> RunResult:
        """The run's result, once it ended (awaiting it does not stop it when cancelled)."""
        if self._task is None:
            raise RuntimeError("the run was not started")
        return await asyncio.shield(self._task)

    def wait_blocking(self, timeout: float) -> bool:
        """From another thread than the engine's: wait for the end; False on timeout."""
        if self._task is None:
            return True
        done = threading.Event()
        self._loop.call_soon_threadsafe(
            lambda: (
                done.set()
                if self._task is None or self._task.done()
                else self._task.add_done_callback(lambda _t: done.set())
            )
        )
        return done.wait(timeout)
