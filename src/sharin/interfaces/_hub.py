"""The event hub: every engine's state changes, numbered, for any number of watchers.

A watcher (a browser tab through the web server, the CLI's progress view, a notebook) first gets a
:class:`Snapshot` of a project — the last state of each component and of the run, with the number
of the last change in it — and then each :class:`Change` after that number, in order. Edits of the
project (a component added, a property set, a file written: :meth:`EventHub.edited`) are numbered
in the same sequence as :class:`Edit` changes, so a watcher that misses one sees the gap. The hub
outlives runs: a watcher that connects after a run ended still gets its final states, and one that
stays connected sees the next run begin.

The engine never waits for a watcher. :meth:`EventHub.publish` appends to each watcher's bounded
buffer and returns; a watcher whose buffer is full is *lagging*: its buffer is dropped and its next
read returns a fresh snapshot instead (it re-syncs). A slow or stuck client costs the engine one
append, never a wait, and never more memory than its buffer.

Events may be published from any thread: a call from outside the hub's event loop is handed to
it (``call_soon_threadsafe``), so that an engine running in a worker thread can feed a server.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import Event, EventBus

__all__ = ["Change", "Edit", "EventHub", "Snapshot", "Watcher"]

#: changes a watcher may have unread before it is made to re-sync from a snapshot
DEFAULT_BUFFER = 2000


@dataclass(frozen=True)
class Change:
    """One state change of one project: ``seq`` numbers the changes of that project from 1."""

    seq: int
    project: str
    event: Event


@dataclass(frozen=True)
class Edit:
    """One edit of a project's files: ``what`` was done (``"add"``, ``"properties"``, ``"file"``,
    ``"external"`` for one made outside the server …) to ``component`` (its ID, or None for the
    project), by the client ``by`` (the id a browser tab sends, or None). Numbered with the
    project's state changes."""

    seq: int
    project: str
    what: str
    component: str | None = None
    by: str | None = None
    #: the project's new id after a rename (what == "rename"), else None
    moved: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The last known state of every component of a project (by key) and of its run (``run``).

    ``seq`` is the number of the last change included: the changes a watcher reads next follow it.
    A change of another run than the snapshot's replaces the states (they start empty), as the
    hub does.
    """

    seq: int
    project: str
    states: dict[str, Event]
    run: Event | None
    edit: int = 0  #: the number of the last edit (0: none since the hub began)


@dataclass
class _Project:
    seq: int = 0
    edit: int = 0  #: the number of the last edit
    current: int = 0  #: the run the states are of
    states: dict[str, Event] = field(default_factory=dict)
    run: Event | None = None
    watchers: list[Watcher] = field(default_factory=list)

    def snapshot(self, name: str) -> Snapshot:
        return Snapshot(self.seq, name, dict(self.states), self.run, self.edit)


class Watcher:
    """One reader of one project's changes (see :meth:`EventHub.watch`)."""

    def __init__(self, hub: EventHub, project: str, buffer: int) -> None:
        self._hub = hub
        self.project = project
        self._limit = buffer
        self._items: deque[Change | Edit] = deque()
        self._wake = asyncio.Event()
        self._lagging = False
        self.resyncs = 0  #: how often this watcher fell behind and was given a snapshot
        self.closed = False

    def _offer(self, change: Change | Edit) -> None:
        if self.closed:
            return
        if self._lagging:
            return  # a snapshot is due anyway
        if len(self._items) >= self._limit:
            self._items.clear()
            self._lagging = True
            self.resyncs += 1
        else:
            self._items.append(change)
        self._wake.set()

    def pending(self) -> int:
        """Changes published and not yet read."""
        return len(self._items)

    async def next(self, timeout: float | None = None) -> Change | Edit | Snapshot | None:
        """The next change, or a snapshot after falling behind; None on ``timeout`` or once
        closed."""
        while not self._items and not self._lagging:
            if self.closed:
                return None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None
        if self._lagging:
            self._lagging = False
            return self._hub.snapshot(self.project)
        return self._items.popleft()

    def close(self) -> None:
        """Stop watching (the hub forgets this watcher)."""
        if not self.closed:
            self.closed = True
            self._hub._forget(self)
            self._wake.set()


class EventHub:
    """Numbers the events of every project's runs and fans them out to watchers.

    Make it inside the event loop that its watchers read from (a server's loop).
    """

    def __init__(self, *, buffer: int = DEFAULT_BUFFER) -> None:
        self.buffer = buffer
        self._projects: dict[str, _Project] = {}
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    @staticmethod
    def name(project: str | Path) -> str:
        """The key of a project: its resolved root directory."""
        return str(Path(project).resolve())

    def _project(self, name: str) -> _Project:
        p = self._projects.get(name)
        if p is None:
            p = self._projects[name] = _Project()
        return p

    def publish(self, project: str | Path, event: Event) -> None:
        """Record ``event`` of ``project`` and hand it to every watcher; never waits, never
        raises because of a watcher."""
        name = self.name(project) if isinstance(project, Path) else project
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._publish, name, event)
        else:
            self._publish(name, event)

    def _publish(self, name: str, event: Event) -> None:
        p = self._project(name)
        if event.run != p.current:  # a new run: its components start from scratch
            p.states.clear()
            p.run = None
            p.current = event.run
        if event.kind == "run" and not event.key:
            p.run = event
        else:
            p.states[event.key] = event
        p.seq += 1
        change = Change(p.seq, name, event)
        for w in p.watchers:
            w._offer(change)

    def edited(
        self,
        project: str | Path,
        what: str,
        *,
        component: str | None = None,
        by: str | None = None,
        moved: str | None = None,
    ) -> None:
        """Record an edit of ``project``'s files and hand it to every watcher (from any thread;
        never waits)."""
        name = self.name(project) if isinstance(project, Path) else project
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._edited, name, what, component, by, moved)
        else:
            self._edited(name, what, component, by, moved)

    def _edited(
        self, name: str, what: str, component: str | None, by: str | None, moved: str | None
    ) -> None:
        p = self._project(name)
        p.seq += 1
        p.edit = p.seq
        edit = Edit(p.seq, name, what, component, by, moved)
        for w in p.watchers:
            w._offer(edit)

    def attach(self, bus: EventBus, project: str | Path) -> Callable[[], None]:
        """Feed ``bus``'s events of ``project`` into the hub; returns the function that stops it."""
        name = self.name(project)

        def forward(event: Event) -> None:
            self.publish(name, event)

        return bus.subscribe(forward)

    def snapshot(self, project: str | Path) -> Snapshot:
        name = self.name(project)
        return self._project(name).snapshot(name)

    def watch(self, project: str | Path, *, buffer: int | None = None) -> tuple[Snapshot, Watcher]:
        """A snapshot of ``project`` and a watcher of the changes after it (nothing is missed or
        seen twice between the two: both are taken in the hub's loop without a pause)."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("EventHub.watch() must be called in the hub's event loop")
        name = self.name(project)
        p = self._project(name)
        w = Watcher(self, name, self.buffer if buffer is None else buffer)
        p.watchers.append(w)
        return p.snapshot(name), w

    def last(self, project: str | Path, key: str) -> Event | None:
        """The last event of component ``key`` (``""``: of the run) in the current run."""
        p = self._projects.get(self.name(project))
        if p is None:
            return None
        return p.run if key == "" else p.states.get(key)

    def watchers(self, project: str | Path) -> int:
        p = self._projects.get(self.name(project))
        return len(p.watchers) if p else 0

    def _forget(self, w: Watcher) -> None:
        p = self._projects.get(w.project)
        if p is not None and w in p.watchers:
            p.watchers.remove(w)
