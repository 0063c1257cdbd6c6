"""Crash and resume of loops and parameter studies: the engine is killed with SIGKILL mid-run.

``sharin run`` runs in a subprocess. Every task appends its instance key (``$SHARIN_TASK``,
e.g. ``loop_2/b``) to ``ran.log`` in the project and sleeps, so the log tells exactly which
trips and instances ran, and how often. The engine (only the engine: tasks run in sessions of
their own and outlive it) is killed once some trips or instances have finished and a task of
the next one runs; a second ``sharin run`` must finish the run without running anything twice.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle, Journal, TaskRecord
from sharin.errors import JournalError

from ..conftest import Processes
from ..helpers import journal_tasks, lines, wait_for, write_json

SLEEP = 0.3
LOG = f'echo "$SHARIN_TASK" >> "$SHARIN_PROJECT_DIR/ran.log"\nsleep {SLEEP}\n'

Tasks = dict[str, TaskRecord]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project without git: these tests never save, and ``git init`` is slow."""
    return Project.create(tmp_path / "demo", git=False)


def running_with_handle(tasks: Tasks, key: str) -> bool:
    record = tasks.get(key)
    return record is not None and record.state == "running" and record.handle is not None


def kill_engine_when(
    procs: Processes, p: Project, ready: Callable[[Tasks], bool], what: str
) -> Tasks:
    """Start ``sharin run``; SIGKILL the engine process once ``ready(journal)``; return the
    journal as the engine left it. Tasks still running are left alone (and reaped at teardown)."""
    engine = procs.start("run", p.root, "-j", "2")
    journal = p.root / ".sharin" / "journal.sqlite"

    def check() -> bool:
        if engine.poll() is not None:
            out, err = engine.communicate()
            raise AssertionError(f"the engine ended before {what}:\n{out}\n{err}")
        return journal.exists() and ready(journal_tasks(p.root, 1))

    wait_for(check, what)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    left = journal_tasks(p.root, 1)
    for record in left.values():
        if record.kind == "task" and record.handle is not None:
            procs.track_group(int(JobHandle.from_json(record.handle).native_id))
    return left


def resume(procs: Processes, p: Project) -> Tasks:
    status = sharin.status(p.root)
    assert status.interrupted and status.engine_pid is None
    second = procs.run("run", p.root, "-j", "2")
    assert "resuming the unfinished run" in second.stdout
    assert "resumed run 1 finished" in second.stdout, second.stdout
    assert [r.id for r in sharin.runs(p.root)] == [1]
    assert sharin.open_project(p.root).state == "finished"
    return journal_tasks(p.root, 1)


def assert_each_ran_once(p: Project, expected: list[str]) -> None:
    ran = Counter(lines(p.root / "ran.log"))
    twice = sorted(k for k, n in ran.items() if n > 1)
    assert twice == [], f"ran more than once: {twice}"
    assert sorted(ran) == sorted(expected)


def assert_tasks_ran_once(tasks: Tasks, expected: list[str]) -> None:
    assert {k: (tasks[k].state, tasks[k].attempt) for k in expected} == {
        k: ("finished", 1) for k in expected
    }


def two_step_body(p: Project, loop: sharin.Component) -> None:
    """a → b in each trip; b appends the index to hist.txt, which each trip inherits."""
    a = sharin.add_task(p, "a", LOG, parent=loop)
    b = sharin.add_task(p, "b", LOG + 'echo "$WHEEL_CURRENT_INDEX" >> hist.txt', parent=loop)
    sharin.connect(p, a, b)


def test_for_loop_resumes_in_the_interrupted_trip(project: Project, procs: Processes) -> None:
    loop = sharin.add_component(project, "for", "loop", start=1, end=3, step=1)
    two_step_body(project, loop)
    after = sharin.add_task(project, "after", LOG)
    sharin.connect(project, loop, after)

    left = kill_engine_when(
        procs,
        project,
        lambda tasks: running_with_handle(tasks, "loop_2/b"),
        "trip 2 to run its second task",
    )
    assert left["loop_1"].state == "finished" and left["loop_2"].state == "running"
    assert left["loop_2/a"].state == "finished"
    assert "loop_3" not in left

    tasks = resume(procs, project)

    trips = [f"loop_{i}" for i in (1, 2, 3)]
    expected = [f"{t}/{x}" for t in trips for x in ("a", "b")] + ["after"]
    assert_each_ran_once(project, expected)
    assert lines(project.root / "ran.log")[-1] == "after"
    assert_tasks_ran_once(tasks, expected)
    assert all(tasks[t].state == "finished" for t in trips)
    assert tasks["loop"].state == "finished"
    # the interrupted trip was not copied again: the history holds every index once
    assert (project.root / "loop" / "b" / "hist.txt").read_text() == "1\n2\n3\n"


def test_while_loop_resumes_without_evaluating_its_condition_again(
    project: Project, procs: Processes
) -> None:
    loop = sharin.add_component(project, "while", "loop", condition="more.sh")
    (loop.directory / "more.sh").write_text(
        '#!/bin/sh\necho "$WHEEL_CURRENT_INDEX" >> "$SHARIN_PROJECT_DIR/cond.log"\n'
        '[ "$WHEEL_CURRENT_INDEX" -lt 3 ]\n'
    )
    two_step_body(project, loop)

    kill_engine_when(
        procs,
        project,
        lambda tasks: running_with_handle(tasks, "loop_1/b"),
        "trip 1 to run its second task",
    )
    assert lines(project.root / "cond.log") == ["0", "1"]

    tasks = resume(procs, project)

    trips = [f"loop_{i}" for i in range(3)]
    expected = [f"{t}/{x}" for t in trips for x in ("a", "b")]
    assert_each_ran_once(project, expected)
    assert_tasks_ran_once(tasks, expected)
    # evaluated once per trip, and once more to end the loop; never for a trip that ran
    assert lines(project.root / "cond.log") == ["0", "1", "2", "3"]
    assert not (project.root / "loop_3").exists()
    assert (project.root / "loop" / "b" / "hist.txt").read_text() == "0\n1\n2\n"


def test_foreach_loop_resumes_in_the_interrupted_trip(project: Project, procs: Processes) -> None:
    loop = sharin.add_component(project, "foreach", "each", indexList=["red", "green", "blue"])
    two_step_body(project, loop)

    kill_engine_when(
        procs,
        project,
        lambda tasks: running_with_handle(tasks, "each_green/b"),
        "trip green to run its second task",
    )

    tasks = resume(procs, project)

    trips = ["each_red", "each_green", "each_blue"]
    expected = [f"{t}/{x}" for t in trips for x in ("a", "b")]
    assert_each_ran_once(project, expected)
    assert_tasks_ran_once(tasks, expected)
    assert (project.root / "each" / "b" / "hist.txt").read_text() == "red\ngreen\nblue\n"


def test_parameter_study_resumes_only_unfinished_instances(
    project: Project, procs: Processes
) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    t = sharin.add_task(project, "t", LOG + "cat in.txt > out.txt", parent=ps)
    (t.directory / "in.txt").write_text("k={{ K }}\n")
    keys = ["a", "b", "c", "d", "e", "f"]
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [{"targetNode": t.id, "targetName": "in.txt"}],
            "params": [{"keyword": "K", "list": keys}],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "out/{{ K }}.txt"}],
        },
    )
    after = sharin.add_task(project, "after", LOG + "cat in/*.txt > got")
    sharin.connect_files(project, ps, "out", after, "in")
    instance_tasks = [f"ps_K_{k}/t" for k in keys]

    def two_done_two_running(tasks: Tasks) -> bool:
        mine = [tasks[k] for k in instance_tasks if k in tasks]
        done = sum(r.state == "finished" for r in mine)
        running = sum(r.state == "running" and r.handle is not None for r in mine)
        return done >= 2 and running == 2 and done + running == len(mine)

    left = kill_engine_when(
        procs, project, two_done_two_running, "two instances to finish and two to run"
    )
    assert sum(left[k].state == "finished" for k in instance_tasks if k in left) < len(keys)

    tasks = resume(procs, project)

    assert_each_ran_once(project, [*instance_tasks, "after"])
    assert_tasks_ran_once(tasks, [*instance_tasks, "after"])
    assert all(tasks[f"ps_K_{k}"].state == "finished" for k in keys)
    assert (project.root / "after" / "got").read_text() == "".join(f"k={k}\n" for k in keys)
    data = sharin.open_project(project.root).component("ps").data
    assert (data["numTotal"], data["numFinished"], data["numFailed"]) == (6, 6, 0)


def test_the_journal_can_be_opened_while_another_process_creates_it(tmp_path: Path) -> None:
    """What the tests above do, and ``sharin status`` may do: open the journal at the moment
    the engine creates it. Neither side may fail ("UNIQUE constraint failed", "locked")."""
    errors: list[JournalError] = []

    def open_journal(path: Path, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            Journal(path).close()
        except JournalError as e:
            errors.append(e)

    for i in range(30):
        barrier = threading.Barrier(8)
        path = tmp_path / str(i) / "journal.sqlite"
        threads = [threading.Thread(target=open_journal, args=(path, barrier)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
