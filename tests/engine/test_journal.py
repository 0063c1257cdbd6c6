"""The run journal, the event bus and the executor protocol's data types."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharin.engine import Event, EventBus, JobHandle, JobResult, Journal, TaskSpec
from sharin.errors import JournalError


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / ".sharin" / "journal.sqlite")
    yield j
    j.close()


def test_runs_are_numbered_and_reopened(journal: Journal) -> None:
    assert journal.last_run() is None and journal.runs() == []
    one = journal.new_run({"git": "abc"})
    journal.end_run(one, "failed")
    two = journal.new_run({})
    assert (one, two) == (1, 2)
    assert [r.state for r in journal.runs()] == ["failed", "running"]
    rec = journal.run(one)
    assert rec is not None and rec.info == {"git": "abc"} and rec.ended is not None
    journal.reopen_run(one)
    rec = journal.run(one)
    assert rec is not None and (rec.state, rec.ended) == ("running", None)
    assert journal.run(99) is None
    last = journal.last_run()
    assert last is not None and last.id == two


def test_task_updates_change_only_given_fields(journal: Journal) -> None:
    run = journal.new_run({})
    journal.set_task(run, "wf/t", "task", "stage-in", attempt=1, started=True)
    journal.set_task(run, "wf/t", "task", "running", handle='{"id": 1}')
    journal.set_task(run, "wf/t", "task", "waiting", message="retrying")
    t = journal.tasks(run)["wf/t"]
    assert (t.state, t.attempt, t.handle, t.rc, t.message) == (
        "waiting",
        1,
        '{"id": 1}',
        None,
        "retrying",
    )
    assert t.started is not None and t.ended is None
    journal.set_task(run, "wf/t", "task", "failed", attempt=2, rc=3, ended=True)
    t = journal.tasks(run)["wf/t"]
    assert (t.state, t.attempt, t.rc, t.handle) == ("failed", 2, 3, '{"id": 1}')
    assert t.ended is not None and t.ended >= t.started  # type: ignore[operator]
    journal.clear_handle(run, "wf/t")
    assert journal.tasks(run)["wf/t"].handle is None
    journal.set_task(run, "a", "task", "running", started=True)
    assert [x.key for x in journal.task_list(run)] == ["wf/t", "a"]


def test_journal_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    run = j.new_run({})
    j.set_task(run, "t", "task", "finished", rc=0, ended=True)
    j.close()
    j = Journal(path)
    try:
        assert j.tasks(run)["t"].state == "finished"
    finally:
        j.close()


def test_a_journal_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.close()
    with pytest.raises(JournalError, match="schema 99 is not 1; move .sharin/ away"):
        Journal(path)


def test_a_corrupt_journal_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="cannot open the run journal"):
        Journal(path)


def test_event_bus_callbacks_and_streams() -> None:
    async def go() -> tuple[list[str], list[str]]:
        bus = EventBus()
        seen: list[str] = []
        unsubscribe = bus.subscribe(lambda e: seen.append(e.state))
        streamed: list[str] = []

        async def consume() -> None:
            async for ev in bus.stream():
                streamed.append(ev.state)

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        bus.publish(Event(1, "t", "task", "running"))
        unsubscribe()
        bus.publish(Event(1, "t", "task", "finished"))
        bus.close()
        await consumer
        return seen, streamed

    seen, streamed = asyncio.run(go())
    assert seen == ["running"]
    assert streamed == ["running", "finished"]


def test_job_handle_round_trip_and_identity() -> None:
    h = JobHandle("local", "localhost", "42", {"start": 7, "rc": "/x"})
    back = JobHandle.from_json(h.to_json())
    assert back == h and back.data == {"start": 7, "rc": "/x"}
    assert {h: 1}[back] == 1  # usable as a dict key, as Executor.status needs
    assert JobHandle("local", "localhost", "43") != h
    assert JobResult(0).ok and not JobResult(0, lost=True).ok and not JobResult(None).ok


def test_task_spec_log_names_escape_paths(tmp_path: Path) -> None:
    spec = TaskSpec("wf/a%b", "a%b", tmp_path, "run.sh", {}, tmp_path / "logs", attempt=2)
    assert spec.stdout_path.name == "wf%2Fa%25b.out"
    assert spec.stderr_path.name == "wf%2Fa%25b.err"
    assert spec.rc_path.name == "wf%2Fa%25b.2.rc"
