"""Races of PJM step jobs. A step that joins its step job after the steps before it have all
ended (a loaded machine, a slow pjsub): PJM refuses the join ("the step job has already
ended"), and sharin decides the step's dependency statement itself, from the ended steps' exit
codes, and submits the step as the start of a new step job or counts it deleted — instead of
failing it. A stop deletes the step job as a whole, so no later step starts in between."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.engine import JobHandle

from ..conftest import Pjm, Processes
from ..helpers import journal_tasks, lines, log_line, wait_for


@pytest.fixture
def slow_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pjm: Pjm) -> None:
    """pjsub takes 3 s to join a step job (``jid=``): by then the step before has ended."""
    shims = tmp_path / "slow-shims"
    shims.mkdir()
    inner = tmp_path / "pjm-shims" / "pjsub"
    (shims / "pjsub").write_text(
        f'#!/bin/sh\ncase "$*" in *jid=*) sleep 3 ;; esac\nexec {shlex.quote(str(inner))} "$@"\n'
    )
    (shims / "pjsub").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PJM_STANDIN_START_DELAY", "0")


def steps(p: Project, bodies: dict[str, str]) -> None:
    sharin.add_component(p, "stepjob", "sj", host="fugaku")
    for n, body in bodies.items():
        c = sharin.add_component(p, "stepjobTask", n, parent="sj", script="run.sh")
        (c.directory / "run.sh").write_text("#!/bin/sh\n" + log_line(n) + body + "\n")
        (c.directory / "run.sh").chmod(0o755)
    names = list(bodies)
    for a, b in zip(names, names[1:], strict=False):
        sharin.connect(p, f"sj/{a}", f"sj/{b}")


@pytest.mark.slow
def test_a_step_joining_an_ended_step_job_still_runs(
    project: Project, pjm: Pjm, slow_join: None
) -> None:
    steps(project, {"s0": "exit 0", "s1": "exit 0"})
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec!=0")  # s0 succeeded: run

    result = sharin.run(project)

    assert result.state == "finished", result.failed
    assert lines(project.root / "ran.log") == ["s0", "s1"]
    joins = [a for a in pjm.call_lines("pjsub") if any("jid=" in x for x in a)]
    assert len(joins) == 1  # refused: the step job had ended; then submitted as a new one
    tasks = journal_tasks(project.root, 1)
    assert tasks["sj/s1"].state == "finished"


@pytest.mark.slow
def test_a_step_whose_statement_holds_after_the_step_job_ended_counts_deleted(
    project: Project, pjm: Pjm, slow_join: None
) -> None:
    steps(project, {"s0": "exit 3", "s1": "exit 0"})
    sharin.set_property(project, "sj/s0", "ignoreFailure", True)
    sharin.set_property(project, "sj/s1", "useDependency", True)
    sharin.set_property(project, "sj/s1", "dependencyForm", "sd=ec==3")

    sharin.run(project)

    assert lines(project.root / "ran.log") == ["s0"]  # s1 never ran
    tasks = journal_tasks(project.root, 1)
    assert tasks["sj/s1"].state == "finished", tasks["sj/s1"].message
    assert "dependency statement" in (tasks["sj/s1"].message or "")
    assert tasks["sj"].state == "finished"


def test_stop_deletes_a_step_job_as_a_whole(project: Project, pjm: Pjm, procs: Processes) -> None:
    # deleting step 0 and then step 1, PJM could start step 1 in between (its turn comes when
    # step 0 ends): `sharin stop` deletes the step job itself, every step at once
    steps(project, {"s0": "sleep 30", "s1": "true"})
    engine = procs.start("run", project.root)
    wait_for(lambda: "s0" in lines(project.root / "ran.log"), "s0 to run", timeout=30)

    procs.run("stop", project.root)
    engine.wait(timeout=30)

    tasks = journal_tasks(project.root, 1)
    base = JobHandle.from_json(tasks["sj/s0"].handle or "").native_id.split("_")[0]
    assert {tuple(a) for a in pjm.call_lines("pjdel")} == {(base,)}
    assert lines(project.root / "ran.log") == ["s0"]
    assert (tasks["sj/s0"].state, tasks["sj/s1"].state) == ("stopped", "stopped")
