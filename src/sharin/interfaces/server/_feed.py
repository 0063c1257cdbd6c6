"""The hub's view of projects that no engine of this server runs: read from their journals.

A client that opens a project gets, in its first snapshot, the states of the project's last run
as the journal holds them (a server started after a run still shows it). While an engine of
another process (`sharin run` in a terminal) runs a watched project, its journal is read every
half second and what changed is published to the hub, so the tabs follow that run live too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from ...engine import Event
from ...engine._layout import RunLayout
from ...errors import JournalError
from .._hub import EventHub
from .._runs import local_run

__all__ = ["JournalFeed", "journal_events"]

#: seconds between two reads of the journal of a run another process's engine runs
POLL = 0.5


def journal_events(root: Path) -> list[Event]:
    """The last run and each of its tasks as events (run first), from the journal; [] if none."""
    from ...engine import Journal

    path = RunLayout(root).journal
    if not path.exists():
        return []
    try:
        j = Journal.open_readonly(path)
    except JournalError:
        return []
    try:
        run = j.last_run()
        if run is None:
            return []
        tasks = j.tasks(run.id)
    finally:
        j.close()
    out = [Event(run.id, "", "run", run.state, time=run.ended or run.started)]
    for t in sorted(tasks.values(), key=lambda t: (t.started or 0.0, t.key)):
        out.append(
            Event(
                run.id,
                t.key,
                t.kind,
                t.state,
                attempt=t.attempt,
                returncode=t.rc,
                message=t.message or "",
                time=t.ended or t.started or run.started,
            )
        )
    return out


def _journal_stamp(root: Path) -> tuple[tuple[int, int], ...]:
    """Size and modification time of the journal and its write-ahead log (a write changes one)."""
    path = RunLayout(root).journal
    out = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            out.append((0, 0))
        else:
            out.append((st.st_size, st.st_mtime_ns))
    return tuple(out)


def _differs(a: Event | None, b: Event) -> bool:
    return a is None or (a.run, a.state, a.attempt, a.returncode) != (
        b.run,
        b.state,
        b.attempt,
        b.returncode,
    )


class JournalFeed:
    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self._polls: dict[str, asyncio.Task[None]] = {}

    async def sync(self, root: Path) -> None:
        """Publish what the journal says that the hub does not know yet (nothing while an engine
        of this process runs the project: its events are the hub's)."""
        if local_run(root) is not None:
            return
        events = await asyncio.to_thread(journal_events, root)
        if local_run(root) is not None:
            return
        if not events:
            return
        run, tasks = events[0], events[1:]
        current = self.hub.last(root, "")
        new_run = current is None or current.run != run.run
        if new_run:  # a run's first event starts its states afresh
            self.hub.publish(root, run)
        for e in tasks:
            if _differs(self.hub.last(root, e.key), e):
                self.hub.publish(root, e)
        if not new_run and _differs(current, run):  # its end after its tasks' ends
            self.hub.publish(root, run)

    def follow(self, root: Path) -> None:
        """While watched, follow a run that another process's engine runs: the journal's files
        are looked at (``stat``) every half second and read when they changed."""
        name = self.hub.name(root)
        t = self._polls.get(name)
        if t is None or t.done():
            self._polls[name] = asyncio.ensure_future(self._poll(root))

    async def _poll(self, root: Path) -> None:
        stamp = await asyncio.to_thread(_journal_stamp, root)
        while self.hub.watchers(root):
            await asyncio.sleep(POLL)
            now = await asyncio.to_thread(_journal_stamp, root)
            if now != stamp:  # something wrote to the journal: an engine here or elsewhere
                stamp = now
                await self.sync(root)

    async def close(self) -> None:
        for t in self._polls.values():
            t.cancel()
        for t in self._polls.values():
            with contextlib.suppress(asyncio.CancelledError):
                await t
