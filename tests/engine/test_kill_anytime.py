"""``kill -9`` of the engine at any moment, then ``sharin run`` again: no finished task runs again.

50 trials on copies of one project of 30 short tasks (a chain, a fan-out and a fan-in). The
engine is killed at a random moment of its run, including after the last task ended, when the
run is already recorded finished and the engine is still exiting; then the project is run
again. Each task appends its name to ``ran.log`` in the project, which counts its executions.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

import sharin
from sharin import Project

from ..conftest import Processes
from ..helpers import lines

TRIALS = 50


def build(p: Project) -> list[str]:
    names: list[str] = []

    def task(name: str, after: list[str]) -> None:
        sharin.add_task(p, name, f'echo {name} >> "$SHARIN_PROJECT_DIR/ran.log"')
        for a in after:
            sharin.connect(p, a, name)
        names.append(name)

    for i in range(5):
        task(f"c{i}", [f"c{i - 1}"] if i else [])
    for i in range(20):
        task(f"f{i}", ["c4"])
    for i in range(5):
        task(f"g{i}", [f"f{j}" for j in range(i * 4, i * 4 + 4)])
    return names


def run_state(root: Path) -> str | None:
    path = root / ".sharin" / "journal.sqlite"
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)
        try:
            row = db.execute("SELECT state FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def finished_tasks(root: Path) -> set[str]:
    path = root / ".sharin" / "journal.sqlite"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT key FROM tasks WHERE state='finished'").fetchall()
    except sqlite3.Error:
        rows = []
    finally:
        db.close()
    return {r[0] for r in rows}


def run_when_free(root: Path) -> sharin.RunResult:
    """``sharin.run``, once the killed engine's lock is free: a process it was starting at
    that instant (between fork and exec) holds the lock for a moment longer."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return sharin.run(root)
        except sharin.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_at_any_moment_reruns_no_finished_task(tmp_path: Path, procs: Processes) -> None:
    template = Project.create(tmp_path / "template", git=False)
    names = build(template)
    # how long a whole run takes in an engine process, start-up included
    probe = tmp_path / "probe.wheel"
    shutil.copytree(template.root, probe)
    t0 = time.monotonic()
    procs.run("run", probe, "-q")
    whole = time.monotonic() - t0
    rng = random.Random(20261201)
    reruns: dict[int, list[str]] = {}
    for trial in range(TRIALS):
        root = tmp_path / f"trial{trial}.wheel"
        shutil.copytree(template.root, root)
        engine = procs.start("run", root, "-q")
        if trial % 5 == 4:
            # the last moments: every task ended, the run recorded finished, the engine exiting
            deadline = time.monotonic() + 30
            while run_state(root) != "finished" and engine.poll() is None:
                assert time.monotonic() < deadline, "the run did not finish"
                time.sleep(0.002)
        else:
            time.sleep(rng.uniform(0.0, whole * 1.1))
        try:
            os.kill(engine.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        engine.wait()
        done = finished_tasks(root)
        before = Counter(lines(root / "ran.log"))
        result = run_when_free(root)
        assert result.ok, (trial, result.failed)
        after = Counter(lines(root / "ran.log"))
        assert set(after) == set(names), trial
        # a task that had finished when the engine died never runs again (one that was being
        # started may: the local executor cannot yet find a process whose handle it had not
        # journaled when it died)
        again = sorted(k for k in done if after[k] > before[k] or after[k] != 1)
        if again:
            reruns[trial] = again
        if len(done) == len(names) and run_state(root) == "finished":
            assert result.nothing_to_do or result.resumed, trial
        shutil.rmtree(root)
    assert reruns == {}
