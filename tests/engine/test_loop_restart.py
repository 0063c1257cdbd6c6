"""A project stopped in the middle of a loop or a parameter study, its template edited, run again.

As OPEN-WHEEL's restart: finished trips (instances) are kept and not run again; the others are
made again from the loop's current template, so the edit takes effect. Stopped two ways: by
``sharin stop`` while a trip runs, and by hand-crafting the state WHEEL leaves (trip directories
``<loop>_<i>`` with their ``cmp.wheel.json`` states, the loop's ``currentIndex``).

Every task appends ``<version> $SHARIN_TASK`` to ``ran.log`` in the project.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

import sharin
from sharin import Component, Project

from ..conftest import Processes
from ..helpers import edit_json, wait_for, write_json


def body(version: str, slow_index: str = "") -> str:
    """Log the task; trip ``slow_index`` sleeps long enough to be stopped in."""
    line = f'echo "{version} $SHARIN_TASK" >> "$SHARIN_PROJECT_DIR/ran.log"\n'
    if slow_index:
        line += f'[ "$WHEEL_CURRENT_INDEX" = "{slow_index}" ] && sleep 30\n'
    return line + "true\n"


def write_script(c: Component, text: str, name: str = "run.sh") -> None:
    path = c.directory / name
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)


def ran(p: Project) -> list[str]:
    path = p.root / "ran.log"
    return path.read_text().splitlines() if path.exists() else []


def stop_when(procs: Processes, p: Project, started: str) -> None:
    """Run the project in an engine process and stop it (``sharin stop``) once ``started`` logged."""
    engine = procs.start("run", p.root)
    wait_for(lambda: any(started in x for x in ran(p)), f"{started} to start")
    assert sharin.stop(p.root)
    engine.wait()
    assert sharin.runs(p.root)[-1].state == "stopped"


def loop_project(p: Project, kind: str) -> tuple[Component, Component, list[str]]:
    """A loop with one task ``a``; the trip names, in order."""
    if kind == "for":
        loop = sharin.add_component(p, "for", "loop", start=1, end=3, step=1)
        trips = ["loop_1", "loop_2", "loop_3"]
    elif kind == "foreach":
        loop = sharin.add_component(p, "foreach", "loop", indexList=["1", "2", "3"])
        trips = ["loop_1", "loop_2", "loop_3"]
    else:
        loop = sharin.add_component(p, "while", "loop", condition="Number(WHEEL_CURRENT_INDEX) < 3")
        trips = ["loop_0", "loop_1", "loop_2"]
    a = sharin.add_task(p, "a", None, parent=loop)
    return loop, a, trips


@pytest.mark.parametrize("kind", ["for", "foreach", "while"])
def test_a_loop_stopped_by_sharin_runs_the_edited_template(
    project: Project, procs: Processes, kind: str
) -> None:
    loop, a, trips = loop_project(project, kind)
    middle = trips[1]
    write_script(a, body("v1", slow_index=middle.rsplit("_", 1)[1]))
    stop_when(procs, project, f"v1 {middle}/a")
    assert ran(project) == [f"v1 {trips[0]}/a", f"v1 {middle}/a"]

    # the template gets a new script that only it has (the trips' copies do not)
    write_script(a, body("v2"), name="run2.sh")
    sharin.set_property(project, a, "script", "run2.sh")
    r = sharin.run(sharin.open_project(project.root))
    assert r.ok and r.resumed
    assert ran(project)[2:] == [f"v2 {middle}/a", f"v2 {trips[2]}/a"]  # trip 1 not again
    assert (project.root / trips[2] / "a" / "run2.sh").exists()


def wheel_left(p: Project, loop: Component, done: list[str], stopped_in: str, index: Any) -> None:
    """What WHEEL leaves when it stops in trip ``stopped_in`` after trips ``done``."""
    for trip in [*done, stopped_in]:
        tdir = p.root / trip
        shutil.copytree(loop.directory, tdir)
        state = "finished" if trip in done else "running"
        edit_json(
            tdir / "cmp.wheel.json",
            lambda d, s=state, t=trip: d.update(state=s, subComponent=True, name=t),
        )
        edit_json(tdir / "a" / "cmp.wheel.json", lambda d, s=state: d.update(state=s))
    edit_json(loop.file, lambda d: d.update(state="running", currentIndex=index, initialized=True))
    edit_json(p.root / "prj.wheel.json", lambda d: d.update(state="stopped"))


@pytest.mark.parametrize("kind", ["for", "foreach", "while"])
def test_a_loop_wheel_stopped_runs_the_edited_template(project: Project, kind: str) -> None:
    loop, a, trips = loop_project(project, kind)
    write_script(a, body("v1"))
    index: Any = 1 if kind == "while" else (2 if kind == "for" else "2")
    wheel_left(project, loop, [trips[0]], trips[1], index)
    write_script(a, body("v2"))
    r = sharin.run(sharin.open_project(project.root))
    assert r.ok
    assert ran(project) == [f"v2 {trips[1]}/a", f"v2 {trips[2]}/a"]


def test_a_while_wheel_stopped_resumes_at_its_current_index(project: Project) -> None:
    """The trips before ``currentIndex`` ran, even when ``keep`` removed their directories:
    its condition is not evaluated for them and they do not run again."""
    loop, a, trips = loop_project(project, "while")
    write_script(a, body("v1"))
    wheel_left(project, loop, [trips[1]], trips[2], 2)  # loop_0 pruned by keep
    write_script(a, body("v2"))
    assert sharin.run(sharin.open_project(project.root)).ok
    assert ran(project) == ["v2 loop_2/a"]


def test_a_foreach_whose_list_was_edited_runs_the_new_values(project: Project) -> None:
    loop, a, trips = loop_project(project, "foreach")
    write_script(a, body("v1"))
    wheel_left(project, loop, [trips[0]], trips[1], "2")
    edit_json(loop.file, lambda d: d.update(indexList=["1", "2", "5", "6"]))
    assert sharin.run(sharin.open_project(project.root)).ok
    assert ran(project) == ["v1 loop_2/a", "v1 loop_5/a", "v1 loop_6/a"]


def ps_project(p: Project) -> tuple[Component, Component, list[str]]:
    ps = sharin.add_component(p, "parameterStudy", "ps")
    t = sharin.add_task(p, "t", None, parent=ps)
    keys = ["a", "b", "c", "d"]
    write_json(
        ps.directory / "parameterSetting.json",
        {"version": 2, "targetFiles": [], "params": [{"keyword": "K", "list": keys}]},
    )
    return ps, t, [f"ps_K_{k}" for k in keys]


def test_a_parameter_study_stopped_by_sharin_runs_the_edited_template(
    project: Project, procs: Processes
) -> None:
    ps, t, instances = ps_project(project)
    write_script(
        t,
        'echo "v1 $SHARIN_TASK" >> "$SHARIN_PROJECT_DIR/ran.log"\n'
        '[ "$WHEEL_PS_PARAM_K" = c ] && sleep 30\ntrue\n',
    )
    engine = procs.start("run", project.root, "-j", "1")
    wait_for(lambda: "v1 ps_K_c/t" in ran(project), "instance c to start")
    assert sharin.stop(project.root)
    engine.wait()
    done = [x.split()[1].split("/")[0] for x in ran(project) if "ps_K_c" not in x]
    write_script(t, body("v2"))
    r = sharin.run(sharin.open_project(project.root))
    assert r.ok
    again = ran(project)[len(done) + 1 :]
    assert sorted(again) == sorted(f"v2 {i}/t" for i in instances if i not in done)
    assert "v2 ps_K_c/t" in again


def test_a_parameter_study_wheel_stopped_runs_the_edited_template(project: Project) -> None:
    ps, t, instances = ps_project(project)
    write_script(t, body("v1"))
    for i, inst in enumerate(instances[:2]):
        idir = project.root / inst
        shutil.copytree(ps.directory, idir)
        state = "finished" if i == 0 else "running"
        edit_json(idir / "cmp.wheel.json", lambda d, s=state: d.update(state=s, subComponent=True))
        edit_json(idir / "t" / "cmp.wheel.json", lambda d, s=state: d.update(state=s))
    edit_json(ps.file, lambda d: d.update(state="running"))
    edit_json(project.root / "prj.wheel.json", lambda d: d.update(state="stopped"))
    write_script(t, body("v2"))
    assert sharin.run(sharin.open_project(project.root)).ok
    assert sorted(ran(project)) == sorted(f"v2 {i}/t" for i in instances[1:])


def test_a_continue_in_an_interrupted_trip_is_evaluated_again(project: Project) -> None:
    """An engine died in trip 1 after its ``continue`` held: the resumed trip ends there again
    (the component after the continue does not run), as it would have."""
    from sharin.engine import Journal

    loop = sharin.add_component(project, "for", "loop", start=0, end=1, step=1)
    first = sharin.add_task(project, "first", body("v1"), parent=loop)
    cont = sharin.add_component(
        project, "continue", "skip", parent=loop, condition="WHEEL_CURRENT_INDEX == '1'"
    )
    second = sharin.add_task(project, "second", body("v1"), parent=loop)
    sharin.connect(project, first, cont)
    sharin.connect(project, cont, second)
    journal = Journal(project.root / ".sharin" / "journal.sqlite")
    run = journal.new_run({})
    for key, kind, state, message in [
        ("loop", "for", "running", None),
        ("loop_0", "for", "finished", None),
        ("loop_0/first", "task", "finished", None),
        ("loop_0/skip", "continue", "finished", None),
        ("loop_0/second", "task", "finished", None),
        ("loop_1", "for", "running", None),
        ("loop_1/first", "task", "finished", None),
        ("loop_1/skip", "continue", "finished", "continue"),
    ]:
        journal.set_task(run, key, kind, state, message=message, ended=state == "finished")
    journal.close()
    for trip in ("loop_0", "loop_1"):
        shutil.copytree(loop.directory, project.root / trip)
        edit_json(project.root / trip / "cmp.wheel.json", lambda d: d.update(subComponent=True))
    r = sharin.run(sharin.open_project(project.root))
    assert r.ok and r.resumed
    assert ran(project) == []  # nothing after the continue in trip 1, nothing else left
