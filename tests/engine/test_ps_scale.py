"""Parameter studies with many instances: memory stays flat, WHEEL's bookkeeping stays right,
and a study killed half-way resumes without running a finished instance again.

The engine keeps nothing per instance once the instance ended (its journal records are the
record); the lists of the project's files written around a run are written as they are walked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

import sharin
from sharin import Component, Project
from sharin.engine import Engine, EventBus, JobHandle, _fingerprint
from sharin.executors import ExecutorRegistry
from sharin.model import cleaning

from ..conftest import Processes
from ..helpers import journal_tasks, lines, read_json, wait_for, write_json

LOG = 'echo "$SHARIN_TASK" >> "$SHARIN_PROJECT_DIR/ran.log"\n'


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "demo", git=False)


def study(project: Project, n: int, *, script: str = "cat in.txt > out.txt") -> Component:
    """A study ``ps`` over K = 1..n holding task ``t``, whose ``in.txt`` is rendered and whose
    ``out.txt`` is gathered into ``out/<K>.txt``."""
    ps = sharin.add_component(project, "parameterStudy", "ps")
    t = sharin.add_task(project, "t", LOG + script, parent=ps)
    (t.directory / "in.txt").write_text("k={{ K }}\n")
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [{"targetNode": t.id, "targetName": "in.txt"}],
            "params": [{"keyword": "K", "min": 1, "max": n, "step": 1}],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "out/{{ K }}.txt"}],
        },
    )
    return ps


def run_engine(project: Project) -> tuple[Engine, sharin.RunResult]:
    async def go() -> tuple[Engine, sharin.RunResult]:
        registry = ExecutorRegistry(max_local=2)
        engine = Engine(sharin.open_project(project.root), registry, events=EventBus())
        try:
            return engine, await engine.run()
        finally:
            await registry.close()

    return asyncio.run(asyncio.wait_for(go(), 120))


def test_the_engine_keeps_nothing_per_instance_once_it_ended(project: Project) -> None:
    study(project, 30)
    engine, result = run_engine(project)
    assert result.state == "finished", result.failed
    kept = [*engine._ran, *engine._stamped, *engine._prev]
    assert [k for k in kept if k.startswith("ps_K_")] == []
    # what the journal and WHEEL's files say is unchanged by it
    tasks = journal_tasks(project.root, result.run)
    assert sum(k.startswith("ps_K_") and k.endswith("/t") for k in tasks) == 30
    assert all(tasks[f"ps_K_{k}/t"].state == "finished" for k in range(1, 31))
    data = read_json(project.root / "ps" / "cmp.wheel.json")
    assert (data["numTotal"], data["numFinished"], data["numFailed"]) == (30, 30, 0)
    assert read_json(project.root / "ps_K_7" / "t" / "cmp.wheel.json")["state"] == "finished"
    assert sorted(os.listdir(project.root / "ps" / "out")) == sorted(
        f"{k}.txt" for k in range(1, 31)
    )


def test_delete_loop_instance_removes_every_instance_after_the_study(project: Project) -> None:
    ps = study(project, 12)
    sharin.set_property(project, ps, "deleteLoopInstance", True)
    _, result = run_engine(project)
    assert result.state == "finished", result.failed
    assert [n for n in os.listdir(project.root) if n.startswith("ps_K_")] == []
    assert len(os.listdir(project.root / "ps" / "out")) == 12


def test_the_streamed_file_list_is_the_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "a b" / "ü").mkdir(parents=True)
    (root / "a b" / "ü" / 'q"uote\\.txt').write_text("x")
    (root / "f.txt").write_text("hello")
    os.symlink("f.txt", root / "link")
    (root / ".sharin").mkdir()
    (root / ".sharin" / "journal.sqlite").write_text("")
    streamed, whole = tmp_path / "streamed.json", tmp_path / "whole.json"
    cleaning.write_snapshot(streamed, root)
    cleaning.write_manifest(whole, cleaning.snapshot(root))
    got, want = cleaning.read_manifest(streamed), cleaning.read_manifest(whole)
    assert got is not None and want is not None
    assert got[1] == want[1] and 'a b/ü/q"uote\\.txt' in got[1] and ".sharin" not in got[1]
    assert abs(got[0] - want[0]) < 60
    json.loads(streamed.read_text())  # one JSON document
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")] == []


@pytest.mark.slow
def test_a_study_of_hundreds_killed_half_way_resumes_only_what_did_not_finish(
    project: Project, procs: Processes
) -> None:
    n = 300
    # 20 ms each: the 200 instances after the first third take 2 s at -j 2, so the kill below
    # lands half way even when reading the journal to see the third done takes a while
    study(project, n, script="sleep 0.02\ncat in.txt > out.txt")
    keys = [f"ps_K_{k}/t" for k in range(1, n + 1)]
    engine = procs.start("run", project.root, "-j", "2")
    journal = project.root / ".sharin" / "journal.sqlite"

    def half_done() -> bool:
        if engine.poll() is not None:
            raise AssertionError(f"the engine ended first: {engine.communicate()}")
        if not journal.exists():
            return False
        tasks = journal_tasks(project.root, 1)
        return sum(tasks[k].state == "finished" for k in keys if k in tasks) >= n // 3

    wait_for(half_done, "a third of the instances to finish", timeout=120)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    left = journal_tasks(project.root, 1)
    for record in left.values():
        if record.kind == "task" and record.handle is not None:
            procs.track_group(int(JobHandle.from_json(record.handle).native_id))
    finished_before = sum(left[k].state == "finished" for k in keys if k in left)
    assert n // 3 <= finished_before < n

    second = procs.run("run", project.root, "-j", "2")
    assert "resumed run 1 finished" in second.stdout, second.stdout
    ran = Counter(lines(project.root / "ran.log"))
    assert sorted(k for k, c in ran.items() if c > 1) == []
    assert sorted(ran) == sorted(keys)
    tasks = journal_tasks(project.root, 1)
    # finished, each run once (ran.log above); a task whose engine died after journaling the
    # intent to submit but before starting it counts that attempt (it never ran): attempt 2
    assert {k: tasks[k].state for k in keys if tasks[k].state != "finished"} == {}
    data = read_json(project.root / "ps" / "cmp.wheel.json")
    assert (data["numTotal"], data["numFinished"], data["numFailed"]) == (n, n, 0)
    assert "initialized" not in data
    gathered = project.root / "ps" / "out"
    assert sorted(os.listdir(gathered)) == sorted(f"{k}.txt" for k in range(1, n + 1))
    assert (gathered / "123.txt").read_text() == "k=123\n"


def test_an_instance_says_running_in_its_json_from_the_moment_it_is_made(
    project: Project,
) -> None:
    """What WHEEL reads while the instance's task runs: the instance is running (its JSON is
    written so when it is made, not later by the state mirror)."""
    study(project, 5, script='grep -q \'"state": "running"\' ../cmp.wheel.json || exit 3')
    result = sharin.run(project.root, options=sharin.RunOptions(max_local=1, launch_window=1))
    assert result.state == "finished", result.failed
    assert read_json(project.root / "ps_K_3" / "cmp.wheel.json")["state"] == "finished"


def test_instances_are_made_ahead_of_the_runners_but_never_more_than_the_window(
    project: Project,
) -> None:
    study(project, 40)
    in_flight: set[str] = set()
    most = 0

    def on_event(ev: sharin.Event) -> None:
        nonlocal most
        if ev.kind != "parameterStudy" or not ev.key.startswith("ps_K_"):
            return
        if ev.state == "running":
            in_flight.add(ev.key)
            most = max(most, len(in_flight))
        elif ev.state in ("finished", "failed", "stopped"):
            in_flight.discard(ev.key)

    result = sharin.run(
        project.root, on_event=on_event, options=sharin.RunOptions(max_local=1, launch_window=6)
    )
    assert result.state == "finished", result.failed
    # made while the one runner is busy, up to the window, not all 40 at once
    assert 2 <= most <= 6
    assert in_flight == set()


@pytest.fixture
def gathered(tmp_path: Path) -> Path:
    """A study's directory after 3,000 instances were gathered into it."""
    ps = tmp_path / "p" / "ps"
    (ps / "out").mkdir(parents=True)
    for k in range(3000):
        (ps / "out" / f"{k}.txt").write_bytes(b"")
    return ps


def test_fingerprinting_a_gathered_directory_does_not_list_it_in_memory(gathered: Path) -> None:
    """The directory is read entry by entry: what the fingerprint keeps, and little more (a list
    of the 3,000 entries with their stat results took 2.7 MB more)."""
    files: dict[str, str] = {}
    tracemalloc.start()
    try:
        _fingerprint._walk(str(gathered), "", _fingerprint.DigestCache(), files, True)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(files) == 3000
    assert peak - kept < 1_000_000


def test_the_file_list_of_a_large_project_is_written_in_little_memory(
    gathered: Path, tmp_path: Path
) -> None:
    tracemalloc.start()
    try:
        cleaning.write_snapshot(tmp_path / "files.json", gathered.parent)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    listed = cleaning.read_manifest(tmp_path / "files.json")
    assert listed is not None and len(listed[1]) == 3002  # ps, ps/out and the 3,000 files
    assert peak < 500_000
