"""Signals a foreground ``sharin run`` gets: a closed terminal (SIGHUP) does not end the run."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import time

import sharin
from sharin import Project
from sharin.engine import HANGUP_MESSAGE

from ..conftest import Processes
from ..helpers import journal_tasks, wait_for
from .test_cli_edits import track_task


def test_a_closed_terminal_leaves_the_run_going_in_the_background(
    procs: Processes, project: Project
) -> None:
    root = project.root
    sharin.add_task(
        project, "long", "touch started; while [ ! -e ../go ]; do sleep 0.05; done; echo done"
    )
    sharin.add_task(project, "after", "touch ran")
    sharin.connect(project, "long", "after")
    engine = procs.start("run", root)
    wait_for((root / "long" / "started").exists, "the task to start")
    track_task(procs, root, "long")
    log = root / ".sharin" / "engine.log"

    engine.send_signal(signal.SIGHUP)  # what a closed SSH session sends
    wait_for(lambda: log.exists() and HANGUP_MESSAGE in log.read_text(), "the engine to detach")
    assert engine.stdout is not None and engine.stderr is not None
    engine.stdout.close()  # the terminal is gone: a write to it now would fail
    engine.stderr.close()
    time.sleep(0.3)
    assert engine.poll() is None, "the engine ended on SIGHUP"
    assert journal_tasks(root, 1)["long"].state == "running"
    assert sharin.status(root).engine_pid == engine.pid

    (root / "go").touch()
    assert engine.wait(timeout=30) == 0
    assert (root / "after" / "ran").exists()
    assert {k: t.state for k, t in journal_tasks(root, 1).items()} == {
        "long": "finished",
        "after": "finished",
    }
    text = log.read_text()
    assert "run 1 finished" in text and "Traceback" not in text
    assert sharin.status(root).engine_pid is None


def test_sigterm_still_stops_the_run(procs: Processes, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "long", "touch started; sleep 30")
    engine = procs.start("run", root)
    wait_for((root / "long" / "started").exists, "the task to start")
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=30) == 3
    assert journal_tasks(root, 1)["long"].state == "stopped"


def test_on_a_terminal_the_progress_bar_stops_drawing(procs: Processes, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "long", "touch started; while [ ! -e ../go ]; do sleep 0.05; done")
    master, slave = pty.openpty()
    engine = subprocess.Popen(
        procs.argv("run", root), stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    procs.track_pid(engine.pid)
    os.close(slave)
    try:
        wait_for((root / "long" / "started").exists, "the task to start")
        track_task(procs, root, "long")
        time.sleep(0.3)  # the live bar draws on the terminal
        engine.send_signal(signal.SIGHUP)
        log = root / ".sharin" / "engine.log"
        wait_for(lambda: log.exists() and HANGUP_MESSAGE in log.read_text(), "the engine to detach")
    finally:
        os.close(master)  # the terminal is gone
    size = log.stat().st_size
    time.sleep(1.0)
    assert log.stat().st_size == size  # nothing redrawn into the log
    (root / "go").touch()
    assert engine.wait(timeout=30) == 0
    assert "\nrun 1 finished in " in log.read_text()  # plain text, no colour codes
