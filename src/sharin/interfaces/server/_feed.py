"""The hub's view of projects that no engine of this server runs: read from their journals.

A client that opens a project gets, in its first snapshot, the states of the project's last run
as the journal holds them (a server started after a run still shows it). While an engine of
another process (`sharin run` in a terminal) runs a watched project, its journal is read every
half second and what changed is published to the hub, so the tabs follow that run live too.

The project's own files are looked at in the same beat: ``prj.wheel.json`` and, for each
component, its ``cmp.wheel.json`` and its directory (``stat`` only; a directory's time changes
when an entry in it is made, removed or replaced, so an added component or a file saved by an
editor shows there). A change that no edit of this server made — the CLI, an editor — is
published as an ``external`` edit. While an engine runs the project its state writes are not
edits and are passed over, and so are those of a run that the journal says began or ended since
the files were last looked at (on a busy machine a short run may fall between two looks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ...engine import Event
from ...engine._layout import RunLayout
from ...errors import JournalError, SharinError
from ...model import COMPONENT_FILE, PROJECT_FILE, Project
from .._hub import EventHub
from .._runs import local_run

if TYPE_CHECKING:
    from ...engine import Journal

__all__ = ["JournalFeed", "journal_events"]

#: seconds between two reads of the journal of a run another process's engine runs
POLL = 0.5


@contextlib.contextmanager
def _journal(root: Path) -> Iterator[Journal | None]:
    """The project's journal opened read-only, closed on leaving; None if there is none to read
    (never run, or a file that is no journal)."""
    from ...engine import Journal

    path = RunLayout(root).journal
    if not path.exists():
        yield None
        return
    try:
        j = Journal.open_readonly(path)
    except JournalError:
        yield None
        return
    try:
        yield j
    finally:
        j.close()


def journal_events(root: Path) -> list[Event]:
    """The last run and each of its tasks as events (run first), from the journal; [] if none."""
    with _journal(root) as j:
        run = j.last_run() if j is not None else None
        if j is None or run is None:
            return []
        tasks = j.tasks(run.id)
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


#: what is looked at of a project's files: each path with its inode, size and modification time
_Stamp = tuple[tuple[str, int, int, int], ...]


def _project_paths(root: Path) -> list[str]:
    """The files and directories whose stamps tell that the project was edited."""
    paths = [str(root / PROJECT_FILE)]
    try:
        p = Project.open(root, cached=True)
    except (SharinError, OSError):
        return [*paths, str(root), str(root / COMPONENT_FILE)]
    for c in p.root_component.walk():
        paths += [str(c.directory), str(c.directory / COMPONENT_FILE)]
    return paths


def _project_stamp(paths: list[str]) -> _Stamp:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, 0, 0, 0))
        else:
            out.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _running(root: Path) -> bool:
    from .. import api

    if local_run(root) is not None:
        return True
    pid = api.engine_pid(root)
    return pid is not None and pid > 0  # a negative one: the lock of an edit (the CLI's), no run


def _ran_since(root: Path, since: float) -> bool:
    """Whether the journal's last run began or ended at ``since`` (a wall-clock time) or later:
    it was going at some moment since then, however short it was."""
    with _journal(root) as j:
        run = j.last_run() if j is not None else None
    return run is not None and (run.started >= since or (run.ended or 0.0) >= since)


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
        #: edits of this server under way, by project, and how many have ended
        self._editing: dict[str, int] = {}
        self._edits_done: dict[str, int] = {}

    @contextlib.contextmanager
    def editing(self, root: Path) -> Iterator[None]:
        """Around an edit this server makes (and publishes itself): the file changes it makes
        are not taken for an edit from outside."""
        name = self.hub.name(root)
        self._editing[name] = self._editing.get(name, 0) + 1
        try:
            yield
        finally:
            self._editing[name] -= 1
            self._edits_done[name] = self._edits_done.get(name, 0) + 1

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

    async def follow(self, root: Path) -> None:
        """While watched, follow a run that another process's engine runs and edits made
        outside the server: the journal's and the project's files are looked at (``stat``)
        every half second, the journal read when it changed. Returns once they were first
        looked at: what changes after that is seen."""
        name = self.hub.name(root)
        t = self._polls.get(name)
        if t is None or t.done():
            stamp = await asyncio.to_thread(_journal_stamp, root)
            stamped = time.time()
            paths = await asyncio.to_thread(_project_paths, root)
            files = await asyncio.to_thread(_project_stamp, paths)
            t = self._polls.get(name)
            if t is None or t.done():  # another client did not start one meanwhile
                self._polls[name] = asyncio.ensure_future(
                    self._poll(root, stamp, paths, files, stamped)
                )

    async def _poll(
        self,
        root: Path,
        stamp: tuple[tuple[int, int], ...],
        paths: list[str],
        files: _Stamp,
        stamped: float,
    ) -> None:
        name = self.hub.name(root)
        # told apart by beats, not by time (a beat may take long on a busy machine): a change is
        # this server's own while one of its edits is under way or ended since the last beat
        # began, and a run's while an engine runs the project or ran it at the last beat, or
        # when the journal's last run was going at some moment since ``files`` were stamped
        # (``stamped``: a whole run may fall between two beats while the loop is busy)
        ran = await asyncio.to_thread(_running, root)
        mark = self._edits_done.get(name, 0)
        while self.hub.watchers(root):
            await asyncio.sleep(POLL)
            since, mark = mark, self._edits_done.get(name, 0)  # edits ended before the last beat
            ran_before, ran = ran, await asyncio.to_thread(_running, root)
            now = await asyncio.to_thread(_journal_stamp, root)
            if now != stamp:  # something wrote to the journal: an engine here or elsewhere
                stamp = now
                await self.sync(root)
            seen = await asyncio.to_thread(_project_stamp, paths)
            if seen == files:
                continue
            own = self._editing.get(name, 0) > 0 or self._edits_done.get(name, 0) != since
            ran = ran or await asyncio.to_thread(
                _running, root
            )  # a run begun since the beat's start
            looked, stamped = stamped, time.time()
            paths = await asyncio.to_thread(_project_paths, root)  # components may have come
            files = await asyncio.to_thread(_project_stamp, paths)
            if own or ran or ran_before:
                continue
            if not await asyncio.to_thread(_ran_since, root, looked):  # nor a run's last writes
                self.hub.edited(name, "external")

    async def close(self) -> None:
        for t in self._polls.values():
            t.cancel()
        for t in self._polls.values():
            with contextlib.suppress(asyncio.CancelledError):
                await t
