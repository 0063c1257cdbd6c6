"""The list view's rows: every journal key of a run joined with the project's components.

A run journals each component it entered under its path (``wf/task``), each loop trip and
parameter-study instance under the loop's name and its index or parameters (``loop_0``,
``ps_K_1``), and what ran inside a trip below that (``loop_0/task``). :func:`task_rows` gives one
row per key, with the component the key maps to, and a row for each component no key maps to
(not reached yet, or a project never run) with the state its file says. Everything comes from
the journal (one query) and the project as already read: no file is read per row.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from ...engine import Journal, RunRecord, TaskRecord
from ...engine._layout import RunLayout
from ...executors import job_ref
from ...model import Component, Project
from ._state import NotFound

__all__ = ["task_rows"]

#: components whose runs are trips or instances journaled as ``<name>_<label>``
_REPEATING = frozenset({"for", "while", "foreach", "parameterStudy"})


@dataclass(frozen=True)
class _Place:
    """What a journal key (or a prefix of one) stands for."""

    component: Component | None
    trip: str | None  #: the trip's index or the instance's parameters (``0``, ``K_1``)
    parent: str  #: the key of the row this one is shown under ("" for the top)
    #: the component's id, name, type and host, read once for all its trips' rows
    fields: tuple[str | None, str | None, str | None, str]


def _fields(c: Component | None) -> tuple[str | None, str | None, str | None, str]:
    if c is None:
        return (None, None, None, "localhost")
    return (c.id, c.name, c.type, c.host)


class _Resolver:
    """Maps journal keys to components, each prefix once (a study's thousands of instances
    share their template's lookups)."""

    def __init__(self, project: Project) -> None:
        self.root = project.root_component
        self._memo: dict[str, _Place] = {}
        #: a container's children by name, and its repeating ones as (``name_``, child)
        self._kids: dict[int, tuple[dict[str, _Place], list[tuple[str, Component]]]] = {}
        self._fields: dict[int, tuple[str | None, str | None, str | None, str]] = {}

    def fields(self, c: Component | None) -> tuple[str | None, str | None, str | None, str]:
        got = self._fields.get(id(c))
        if got is None:
            got = self._fields[id(c)] = _fields(c)
        return got

    def _children(self, c: Component) -> tuple[dict[str, _Place], list[tuple[str, Component]]]:
        got = self._kids.get(id(c))
        if got is None:
            kids = c.children
            # the longest name first: `a_b_1` is a trip of `a_b`, not of `a`
            repeating = sorted(
                ((k.name + "_", k) for k in kids if k.type in _REPEATING),
                key=lambda x: -len(x[0]),
            )
            named = {k.name: _Place(k, None, "", self.fields(k)) for k in kids}
            got = self._kids[id(c)] = (named, repeating)
        return got

    def place(self, key: str) -> _Place:
        found = self._memo.get(key)
        if found is not None:
            return found
        head, _, name = key.rpartition("/")
        container = self.root if not head else self.place(head).component
        place = _Place(None, None, head, self.fields(None))
        if container is not None:
            named, repeating = self._children(container)
            child = named.get(name)
            if child is not None:
                place = _Place(child.component, None, head, child.fields)
            else:
                for prefix, r in repeating:
                    if name.startswith(prefix) and len(name) > len(prefix):
                        loop_key = f"{head}/{prefix[:-1]}" if head else prefix[:-1]
                        place = _Place(r, name[len(prefix) :], loop_key, self.fields(r))
                        break
        self._memo[key] = place
        return place


def _run_json(rec: RunRecord | None) -> dict[str, Any] | None:
    if rec is None:
        return None
    return {"id": rec.id, "state": rec.state, "started": rec.started, "ended": rec.ended}


def _component_row(c: Component) -> dict[str, Any]:
    """A component no journal record stands for: its state as its file says, no times."""
    parent = c.parent.rel if c.parent is not None else ""
    return {
        "key": c.rel,
        "parent": parent,
        "id": c.id,
        "name": c.name,
        "type": c.type,
        "trip": None,
        "state": c.state,
        "attempt": 0,
        "host": c.host,
        "job_id": None,
        "returncode": None,
        "started": None,
        "ended": None,
        "message": None,
    }


def _record_row(t: TaskRecord, place: _Place) -> dict[str, Any]:
    cid, name, ctype, host = place.fields
    ref = job_ref(t.handle) if t.handle else None
    return {
        "key": t.key,
        "parent": place.parent,
        "id": cid,
        "name": name if name is not None else posixpath.basename(t.key),
        "type": ctype if ctype is not None else t.kind,
        "trip": place.trip,
        "state": t.state,
        "attempt": t.attempt,
        "host": ref.host if ref is not None else host,
        "job_id": ref.job_id if ref is not None else None,
        "returncode": t.rc,
        "started": t.started,
        "ended": t.ended,
        "message": t.message,
    }


def task_rows(project: Project, run_id: int | None = None) -> dict[str, Any]:
    """The run (default: the last) and its rows, parents before the rows shown under them
    only where the journal's order (by start) has them so; ``parent`` says where each goes.

    With no run named, a run that a clean of the whole project came after gives the
    components' states from their files (as a project never run does); a key a clean of its
    component came after likewise. A run named that the journal does not have is NotFound."""
    path = RunLayout(project.root).journal
    rec: RunRecord | None = None
    records: list[TaskRecord] = []
    cleaned = False
    journal: Journal | None = None
    if path.exists():
        journal = Journal.open_readonly(path)
    try:
        if journal is not None:
            if run_id is None:
                rec = journal.last_run()
            elif 0 < run_id < 1 << 63:  # what SQLite can hold (a larger one is no run either)
                rec = journal.run(run_id)
        if run_id is not None and rec is None:
            have = [r.id for r in journal.runs()] if journal is not None else []
            said = (
                f"its runs are {have[0]} to {have[-1]}"
                if len(have) > 1
                else f"its only run is {have[0]}"
                if have
                else "it has not been run yet"
            )
            raise NotFound(
                f"project {project.name}: there is no run {run_id}; {said} "
                "(leave out run= for the last one)"
            )
        if journal is not None and rec is not None:
            cleaned = journal.cleaned_after("", rec.started)
            if not cleaned or run_id is not None:
                records = journal.task_list(rec.id)
                if run_id is None and any(at > rec.started for at, _ in journal.cleans()):
                    # a component cleaned since the run began: its records count no more
                    records = [
                        t
                        for t in records
                        if not journal.cleaned_after(t.key, t.started or rec.started)
                    ]
    finally:
        if journal is not None:
            journal.close()
    resolver = _Resolver(project)
    rows: list[dict[str, Any]] = []
    covered: set[str | None] = set()
    for t in records:
        if not t.key:
            continue  # the run itself
        place = resolver.place(t.key)
        covered.add(place.fields[0])
        rows.append(_record_row(t, place))
    for c in project.components():
        if c.id not in covered:
            rows.append(_component_row(c))
    return {"run": _run_json(rec), "cleaned": cleaned, "rows": rows}
