"""The run journal, the event bus and the executor protocol's data types."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
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


# ------------------------------------------------------------------ commits


def committed(path: Path) -> dict[str, str]:
    """What another process sees: the committed task states, by key."""
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT key, state FROM tasks").fetchall())
    finally:
        db.close()


def test_without_an_event_loop_every_record_is_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    try:
        run = j.new_run({})
        j.set_task(run, "a", "task", "running", started=True)
        j.set_task(run, "b", "task", "finished", ended=True)
        assert committed(path) == {"a": "running", "b": "finished"}
    finally:
        j.close()


def test_reports_wait_for_the_end_of_the_loop_step_and_the_intent_to_submit_does_not(
    tmp_path: Path,
) -> None:
    """In a running loop, a report (running, finished, ...) is committed at the loop's next step;
    ``queued`` (written before the executor starts anything) and a record with a handle are
    committed before ``set_task`` returns, together with every record written before them."""
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    run = j.new_run({})
    seen: dict[str, dict[str, str]] = {}

    async def go() -> None:
        j.set_task(run, "ps_K_1", "parameterStudy", "running", started=True)
        seen["report"] = committed(path)
        assert j.tasks(run)["ps_K_1"].state == "running"  # the writer sees its own records
        await asyncio.sleep(0)
        seen["next step"] = committed(path)
        j.set_task(run, "ps_K_2", "parameterStudy", "running", started=True)
        j.set_task(run, "ps_K_2/t", "task", "queued", attempt=1, started=True)
        seen["queued"] = committed(path)
        j.set_task(run, "ps_K_2/t", "task", "running", handle='{"id": 1}')
        seen["handle"] = committed(path)
        j.set_task(run, "ps_K_2/t", "task", "finished", rc=0, ended=True)
        j.set_task(run, "ps_K_2", "parameterStudy", "finished", ended=True)
        seen["finished"] = committed(path)
        j.set_task(run, "ps_K_2/t", "task", "waiting", message="retrying")
        seen["waiting"] = committed(path)
        j.set_task(run, "ps_K_3", "parameterStudy", "running", started=True)
        j.clear_handle(run, "ps_K_2/t")
        seen["cleared"] = committed(path)

    try:
        asyncio.run(go())
    finally:
        j.close()
    assert seen["report"] == {}
    assert seen["next step"] == {"ps_K_1": "running"}
    assert seen["queued"] == {"ps_K_1": "running", "ps_K_2": "running", "ps_K_2/t": "queued"}
    assert seen["handle"]["ps_K_2/t"] == "running"
    assert seen["finished"]["ps_K_2/t"] == "running"  # not yet: at the loop's next step
    assert seen["waiting"] == {"ps_K_1": "running", "ps_K_2": "finished", "ps_K_2/t": "waiting"}
    assert seen["cleared"]["ps_K_3"] == "running"
    assert committed(path)["ps_K_2/t"] == "waiting"


def test_a_handle_its_executor_recovers_waits_for_the_loop_step_and_another_does_not(
    tmp_path: Path,
) -> None:
    """A local attempt's handle (the supervisor's pid record is on disk already) is committed
    with the loop step's reports; any other handle before ``set_task`` returns."""
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    run = j.new_run({})
    seen: dict[str, dict[str, str]] = {}

    async def go() -> None:
        j.set_task(run, "a", "task", "queued", attempt=1, started=True)
        j.set_task(run, "a", "task", "running", handle='{"id": 1}', recoverable=True)
        seen["recoverable"] = committed(path)
        await asyncio.sleep(0)
        seen["next step"] = committed(path)
        j.set_task(run, "b", "task", "queued", attempt=1, started=True)
        j.set_task(run, "b", "task", "running", handle='{"id": 2}')
        seen["other"] = committed(path)

    try:
        asyncio.run(go())
    finally:
        j.close()
    assert seen["recoverable"] == {"a": "queued"}  # an engine dying now recovers it from queued
    assert seen["next step"] == {"a": "running"}
    assert seen["other"]["b"] == "running"
    again = Journal(path)
    try:
        assert again.tasks(run)["a"].handle == '{"id": 1}'
    finally:
        again.close()


def test_closing_or_ending_the_run_commits_the_waiting_reports(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    run = j.new_run({})

    async def go() -> None:
        j.set_task(run, "a", "task", "finished", ended=True)
        j.end_run(run, "finished")
        assert committed(path) == {"a": "finished"}
        j.set_task(run, "b", "task", "failed", ended=True)
        j.close()  # before the loop's next step

    asyncio.run(go())
    assert committed(path) == {"a": "finished", "b": "failed"}
    j = Journal(path)
    try:
        run_record = j.run(run)
        assert run_record is not None and run_record.state == "finished"
    finally:
        j.close()


def test_a_killed_writer_leaves_a_prefix_of_its_records(tmp_path: Path) -> None:
    """An engine killed with reports waiting loses exactly those, never a record written (and
    committed) after them: the journal is what a crash a moment earlier would have left."""
    path = tmp_path / "j.sqlite"
    script = f"""
import asyncio, os, signal
from pathlib import Path
from sharin.engine import Journal
j = Journal(Path({str(path)!r}))
run = j.new_run({{}})
async def go():
    j.set_task(run, "i1", "parameterStudy", "running", started=True)
    j.set_task(run, "i1/t", "task", "queued", attempt=1, started=True)
    j.set_task(run, "i1/t", "task", "running", handle="h1")
    await asyncio.sleep(0)
    j.set_task(run, "i1/t", "task", "finished", rc=0, ended=True)
    j.set_task(run, "i1", "parameterStudy", "finished", ended=True)
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(go())
"""
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    j = Journal(path)
    try:
        tasks = j.tasks(1)
    finally:
        j.close()
    assert {k: (t.state, t.handle) for k, t in tasks.items()} == {
        "i1": ("running", None),
        "i1/t": ("running", "h1"),
    }
