"""State events: the engine publishes, the CLI progress view and the web server subscribe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

__all__ = ["Event", "EventBus"]


@dataclass(frozen=True)
class Event:
    """A change of a task, a container or the run itself (``key`` is empty for the run)."""

    run: int
    key: str
    kind: str  #: component type, or "run"
    state: str
    attempt: int = 0
    returncode: int | None = None
    message: str = ""
    time: float = field(default_factory=time.time)


class EventBus:
    """Fan-out of events to callbacks (called in the engine's loop) and async iterators."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Event], None]] = []
        self._queues: list[asyncio.Queue[Event | None]] = []

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback`` for every event; returns a function that unsubscribes."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    async def stream(self) -> AsyncIterator[Event]:
        """Iterate over events until the run ends."""
        q: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues.append(q)
        try:
            while (ev := await q.get()) is not None:
                yield ev
        finally:
            self._queues.remove(q)

    def publish(self, event: Event) -> None:
        for cb in list(self._callbacks):
            cb(event)
        for q in self._queues:
            q.put_nowait(event)

    def close(self) -> None:
        for q in self._queues:
            q.put_nowait(None)
