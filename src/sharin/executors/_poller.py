"""One poll loop per host, for the executors that watch many jobs or tasks there.

The batch executor and the remote-shell executor both watch what they started with **one**
command per host per interval for all of it. :class:`Poller` is that loop: it keeps the table of
what is watched, starts the loop with the first watch and ends it with the last, waits the
interval between checks, counts the queries (one per interval: tests and benchmarks read
:attr:`Poller.queries`) and the checks in a row that gave no answer, after ``maxStatusCheckError``
of which every watch ends as unknown (the next run re-attaches).

What is asked and what an answer means are the executor's: ``ask`` runs the query for the
watches given (through :meth:`Poller.run`, which counts it) and returns a row per watch it has
an answer for, and ``settle`` reads one row: the watch's result, or None while it goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..engine import JobResult
from ..errors import TransportError
from ..model import HostConfig
from ._transport import CommandResult, Transport

__all__ = ["Polled", "Poller", "Watch"]


@dataclass
class Watch:
    """One job or task watched: its key in the table (a job id, a record directory) and the
    future its waiter awaits."""

    key: str
    #: watched again after a restart (an attempt that turns out gone was then lost)
    attach: bool
    future: asyncio.Future[JobResult]


W = TypeVar("W", bound=Watch)
R = TypeVar("R")


class Poller(Generic[W, R]):
    """The watch table and poll loop of one host's executor."""

    def __init__(
        self,
        host: HostConfig,
        *,
        ask: Callable[[list[W]], Awaitable[Mapping[str, R]]],
        settle: Callable[[W, R], JobResult | None],
        what: str,
        check: str,
    ) -> None:
        self.host = host.name
        #: the host's ``statusCheckInterval`` (at least 0.05 s) and ``maxStatusCheckError``
        self.interval = max(0.05, float(host.status_check_interval))
        self.max_errors = int(host.raw.get("maxStatusCheckError") or 10)
        self._ask = ask
        self._settle = settle
        #: for the message after too many failed checks: what failed, what to look at
        self._what = what
        self._check_what = check
        self.watches: dict[str, W] = {}
        self._task: asyncio.Task[None] | None = None
        #: how many queries were run (one per interval for all watches, plus any history one)
        self.queries = 0
        #: checks in a row that gave no answer
        self.errors = 0

    async def watch(self, w: W) -> JobResult:
        """Watch ``w`` until it settles (or the checks give up on it)."""
        self.watches[w.key] = w
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())
        try:
            return await asyncio.shield(w.future)
        finally:
            self.watches.pop(w.key, None)

    def pending(self) -> list[W]:
        """The watches not settled yet."""
        return [w for w in self.watches.values() if not w.future.done()]

    async def run(
        self, transport: Transport, command: str, *, timeout: float | None = 120.0
    ) -> CommandResult:
        """Run one query on the host, counted; a transport error is an answer with exit
        status 255 and the error as its stderr (the check then fails, and the transport
        opens a new connection for the next one)."""
        self.queries += 1
        try:
            return await transport.run(command, idempotent=True, timeout=timeout)
        except TransportError as e:
            return CommandResult(255, "", str(e))

    def answered(self) -> None:
        """A check gave an answer: the count of failures in a row starts again."""
        self.errors = 0

    def failed(self, said: str) -> None:
        """One more check that gave no answer; past ``max_errors`` every watch ends unknown."""
        self.errors += 1
        if self.errors <= self.max_errors:
            return
        msg = (
            f"host {self.host!r}: {self._what} failed {self.errors} times in a row ({said}); "
            f"check {self._check_what}, then `sharin run` again to re-attach"
        )
        for w in self.pending():
            w.future.set_result(JobResult(None, msg, unknown=True))

    async def _loop(self) -> None:
        while self.watches:
            try:
                await self._once()
            except Exception as e:  # noqa: BLE001 - every watch must learn of it, not hang
                for w in self.pending():
                    w.future.set_exception(e)
                return
            if not self.watches:
                return
            await asyncio.sleep(self.interval)

    async def _once(self) -> None:
        group = self.pending()
        if not group:
            return
        rows = await self._ask(group)
        for w in group:
            if w.key in rows and not w.future.done():
                result = self._settle(w, rows[w.key])
                if result is not None:
                    w.future.set_result(result)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Polled:
    """What an executor that watches through a :class:`Poller` shows of it (a mixin)."""

    _poller: Poller[Any, Any]

    @property
    def interval(self) -> float:
        """Seconds between two checks of the host's jobs or tasks."""
        return self._poller.interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        self._poller.interval = seconds

    @property
    def queries(self) -> int:
        """How many queries the checks ran (for tests and benchmarks: one per interval for
        all that is watched, and for batch jobs at most one history query after each)."""
        return self._poller.queries
