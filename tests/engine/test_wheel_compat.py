"""What a sharin run leaves in WHEEL's files, field by field as OPEN-WHEEL writes them, and
WHEEL's leftovers in a project that sharin must not be misled by.

The expected JSON below is written from OPEN-WHEEL's code (``server/app/core`` on the ``master``
and ``dev2025`` branches of github.com/RIKEN-RCCS/OPEN-WHEEL); each field cites where WHEEL sets
it. Fields WHEEL writes that sharin does not (absolute times of job submission, ``env`` merged
into every file, ``projectRootDir`` ...) are not compared.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sharin
from sharin import Project
from sharin.engine import Event
from sharin.errors import ValidationError

from ..helpers import edit_json, read_json, write_json

WHEEL_ENV = (
    "env | grep '^WHEEL_\\|^SHARIN_TASK' | grep -v '^WHEEL_LOCAL_PRJDIR=' | sort > env.txt\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "demo", git=False)


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def cmp(p: Project, rel: str) -> dict[str, Any]:
    return read_json(p.root / rel / "cmp.wheel.json" if rel else p.root / "cmp.wheel.json")


# ====================================================================== item: stored variables


def test_loop_variables_wheel_stored_in_components_do_not_override_the_trip(
    project: Project,
) -> None:
    """WHEEL copies a loop's last trip back over its template, so the components inside keep
    the last trip's ``WHEEL_*`` values in their ``env``; every trip still sees its own."""
    stale = {
        "WHEEL_CURRENT_INDEX": "3",
        "WHEEL_PREV_INDEX": "2",
        "WHEEL_NEXT_INDEX": "",
        "WHEEL_FOR_START": "1",
        "WHEEL_FOR_END": "3",
        "WHEEL_FOR_STEP": "1",
        "WHEEL_LOOP_LEN": "3",
        "WHEEL_PS_PARAM_K": "9",
        "SHARIN_TASK": "stale",
        "MINE": "kept",
    }
    loop = sharin.add_component(project, "for", "loop", start=1, end=3, step=1, env=dict(stale))
    sharin.add_task(
        project, "t", WHEEL_ENV + 'echo "$MINE" > mine.txt', parent=loop, env=dict(stale)
    )

    assert sharin.run(project.root).ok

    for i in (1, 2, 3):
        got = env_file(project.root / f"loop_{i}" / "t" / "env.txt")
        assert got == {
            "SHARIN_TASK": f"loop_{i}/t",
            "WHEEL_CURRENT_INDEX": str(i),
            "WHEEL_PREV_INDEX": str(i - 1) if i > 1 else "",
            "WHEEL_NEXT_INDEX": str(i + 1) if i < 3 else "",
            "WHEEL_FOR_START": "1",
            "WHEEL_FOR_END": "3",
            "WHEEL_FOR_STEP": "1",
            "WHEEL_LOOP_LEN": "3",
        }
        assert (project.root / f"loop_{i}" / "t" / "mine.txt").read_text() == "kept\n"


def test_parameter_variables_wheel_stored_do_not_override_the_instance(project: Project) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps", env={"WHEEL_PS_PARAM_K": "9"})
    write_json(
        ps.directory / "parameterSetting.json",
        {"version": 2, "params": [{"keyword": "K", "list": ["1", "2"]}]},
    )
    sharin.add_task(
        project,
        "u",
        'echo "$WHEEL_PS_PARAM_K" > k.txt',
        parent=ps,
        env={"WHEEL_PS_PARAM_K": "9"},
    )

    assert sharin.run(project.root).ok

    for k in ("1", "2"):
        assert (project.root / f"ps_K_{k}" / "u" / "k.txt").read_text() == f"{k}\n"


# ====================================================================== item: WHEEL's JSON

#: OPEN-WHEEL writes times with ``getDateString(true, true)`` (server/app/lib/utility.js)
WHEEL_TIME = re.compile(r"\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d\.\d{3}")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4_102_444_800_000), min_size=1, max_size=20))
def test_wheel_time_is_the_local_time_of_each_moment_to_the_millisecond(
    moments: list[int],
) -> None:
    """WHEEL's ``getDateString(true, true)``: the local time of the moment, milliseconds
    truncated, whatever the moments before it were."""
    import time as clock

    from sharin.engine import _engine

    for ms in moments:
        t = ms / 1000
        want = clock.strftime("%Y/%m/%d-%H:%M:%S", clock.localtime(int(t * 1000) // 1000))
        want += f".{int(t * 1000) % 1000:03d}"
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_engine.time, "time", lambda t=t: t)
            assert _engine.wheel_time() == want


def wheel_project(project: Project) -> None:
    """A task, a for loop (1..2) with a task in a workflow in it, a study over K in [1, 2]."""
    sharin.add_task(project, "seed", "true")
    loop = sharin.add_component(project, "for", "loop", start=1, end=2, step=1)
    sharin.add_task(project, "t", "true", parent=loop)
    wf = sharin.add_component(project, "workflow", "wf", parent=loop)
    sharin.add_task(project, "deep", "true", parent=wf)
    ps = sharin.add_component(project, "parameterStudy", "ps")
    write_json(
        ps.directory / "parameterSetting.json",
        {"version": 2, "params": [{"keyword": "K", "list": ["1", "2"]}]},
    )
    sharin.add_task(project, "u", "true", parent=ps)


def trip(n: int, *, prev: int | None, finished_before: int) -> dict[str, Any]:
    """A for trip's cmp.wheel.json: the loop's JSON cloned at the trip's start
    (dispatcher.js ``_loopHandler``: ``structuredClone(component)``, then ``name`` =
    ``getInstanceDirectoryName``, ``subComponent = true``); ``originalName``, ``numTotal``,
    ``numFinished``/``numFailed`` = 0, ``instanceDirSeparator`` and ``initialized`` come from
    ``loopInitialize`` (loopUtils.js); ``prevIndex`` is set from the second trip on;
    ``numFinished`` counts the trips before; the state is what ``_delegate`` writes at the end."""
    data: dict[str, Any] = {
        "type": "for",
        "name": f"loop_{n}",
        "originalName": "loop",
        "subComponent": True,
        "initialized": True,
        "currentIndex": n,
        "numTotal": 2,
        "numFinished": finished_before,
        "numFailed": 0,
        "instanceDirSeparator": "_",
        "state": "finished",
    }
    if prev is not None:
        data["prevIndex"] = prev
    return data


def task(
    name: str, ancestors: str, kinds: str | None, parent_type: str, root: Path
) -> dict[str, Any]:
    """A task's JSON after it ran (dispatcher.js ``_dispatchTask``: ``ancestorsName`` is the
    path of its parent directory below the project root, ``ancestorsType`` the dispatcher's
    chain of container types, absent at the top; ``parentType`` is ``this.cwfJson.type``;
    ``workingDir``; execUtils.js ``setTaskState`` writes ``state``). These are the fields
    WHEEL's task list reads (taskUtil.js ``taskStateFilter``; senders.js lists only tasks
    that have ``ancestorsName``)."""
    data: dict[str, Any] = {
        "type": "task",
        "name": name,
        "state": "finished",
        "ancestorsName": ancestors,
        "parentType": parent_type,
        "workingDir": str(root / ancestors / name) if ancestors else str(root / name),
    }
    if kinds is not None:
        data["ancestorsType"] = kinds
    return data


def expected_files(root: Path) -> dict[str, dict[str, Any]]:
    return {
        "": {"type": "workflow", "state": "finished"},  # projectController.js ``runProject``
        "seed": task("seed", "", None, "workflow", root),
        # _loopFinalize: initialized, currentIndex, prevIndex, subComponent deleted, the name
        # back to originalName; the counters stay
        "loop": {
            "type": "for",
            "name": "loop",
            "originalName": "loop",
            "numTotal": 2,
            "numFinished": 2,
            "numFailed": 0,
            "state": "finished",
        },
        "loop_1": trip(1, prev=None, finished_before=0),
        "loop_2": trip(2, prev=1, finished_before=1),
        "loop_1/t": task("t", "loop_1", "for", "for", root),
        "loop_2/t": task("t", "loop_2", "for", "for", root),
        "loop_1/wf/deep": task("deep", "loop_1/wf", "for/workflow", "workflow", root),
        "loop_2/wf/deep": task("deep", "loop_2/wf", "for/workflow", "workflow", root),
        "loop_2/wf": {"type": "workflow", "name": "wf", "state": "finished"},
        # _PSHandler: numTotal = getParamSize, counters; initialized deleted at the end
        "ps": {
            "type": "parameterStudy",
            "name": "ps",
            "numTotal": 2,
            "numFinished": 2,
            "numFailed": 0,
            "state": "finished",
        },
        # an instance: structuredClone(component) after ``initialized = true`` and the counters
        # were reset, ``name = newName``, ``subComponent = true``; no originalName
        "ps_K_1": {
            "type": "parameterStudy",
            "name": "ps_K_1",
            "subComponent": True,
            "initialized": True,
            "numTotal": 2,
            "state": "finished",
        },
        "ps_K_2": {
            "type": "parameterStudy",
            "name": "ps_K_2",
            "subComponent": True,
            "initialized": True,
            "numTotal": 2,
            "state": "finished",
        },
        "ps_K_1/u": task("u", "ps_K_1", "parameterStudy", "parameterStudy", root),
        "ps_K_2/u": task("u", "ps_K_2", "parameterStudy", "parameterStudy", root),
    }


#: keys WHEEL drops from a finished loop or study (``_loopFinalize``, ``_PSHandler``) and that a
#: file must not hold unless the expectation names them
ABSENT_UNLESS_EXPECTED = (
    "initialized",
    "currentIndex",
    "prevIndex",
    "subComponent",
    "originalName",
    "ancestorsType",
)


def test_trips_instances_and_tasks_are_written_as_wheel_writes_them(project: Project) -> None:
    wheel_project(project)

    assert sharin.run(project.root).ok

    root = project.root
    for rel, want in expected_files(root).items():
        got = cmp(project, rel)
        for key, value in want.items():
            assert got.get(key, "<absent>") == value, f"{rel or 'root'}: {key}"
        for key in ABSENT_UNLESS_EXPECTED:
            if key not in want:
                assert key not in got, f"{rel or 'root'}: {key} should be absent"
        if got["type"] == "task":
            for key in ("dispatchedTime", "startTime", "endTime"):
                assert WHEEL_TIME.fullmatch(got[key]), f"{rel}: {key} = {got[key]!r}"
            assert (root / rel / "status.wheel.txt").read_text() == "finished\n0\n0\n"
    prj = read_json(root / "prj.wheel.json")
    assert prj["state"] == "finished"
    assert prj["readOnly"] is False  # projectController.js ``unlockIfFinished``
    assert "failedTasks" not in prj


def test_a_failed_run_lists_its_failed_tasks_and_stays_read_only(project: Project) -> None:
    """OPEN-WHEEL master ``addFailedTask``: the relative path of each task that stopped the
    run; dev2025 keeps the project read-only unless it finished."""
    loop = sharin.add_component(project, "for", "loop", start=1, end=3, step=1)
    sharin.add_task(project, "t", '[ "$WHEEL_CURRENT_INDEX" != 2 ]', parent=loop)
    sharin.add_task(project, "ok", "exit 1", ignoreFailure=True)

    result = sharin.run(project.root)

    assert result.state == "failed"
    prj = read_json(project.root / "prj.wheel.json")
    assert (prj["state"], prj["readOnly"], prj["failedTasks"]) == ("failed", True, ["loop_2/t"])
    assert cmp(project, "")["state"] == "failed"
    # the loop names its last finished trip: WHEEL resumes after it, with trip 2
    data = cmp(project, "loop")
    assert (data["initialized"], data["currentIndex"], data["numFinished"]) == (True, 1, 1)
    assert data["numFailed"] == 1
    assert "prevIndex" not in data
    for version in ("master", "dev2025"):
        assert wheel_next_trip(data, project.root, version) == 2, version
    assert cmp(project, "loop_2")["state"] == "failed"
    assert cmp(project, "loop_2/t")["state"] == "failed"


def test_a_successful_resume_clears_what_a_failed_wheel_run_left(project: Project) -> None:
    sharin.add_task(project, "t", "true")
    edit_json(
        project.root / "prj.wheel.json",
        lambda d: d.update(state="failed", readOnly=True, failedTasks=["t"]),
    )

    assert sharin.run(project.root).ok

    prj = read_json(project.root / "prj.wheel.json")
    assert (prj["state"], prj["readOnly"]) == ("finished", False)
    assert "failedTasks" not in prj
    assert cmp(project, "")["state"] == "finished"


def wheel_next_trip(loop: dict[str, Any], cwf: Path, version: str) -> Any:
    """The trip OPEN-WHEEL runs next when it runs a project again with this for loop's JSON:
    ``_loopHandler`` in ``dispatcher.js`` (master: the trip ``currentIndex`` names is checked;
    dev2025: the trip ``prevIndex`` names, else ``currentIndex``), with ``forGetNextIndex`` and
    ``getPrevIndex(component, true)`` from ``loopUtils.js``."""
    step, start = loop.get("step") or 1, loop.get("start") or 0

    def following(i: Any) -> Any:
        return start if i is None else i + step

    if not loop.get("initialized"):
        return start  # loopInitialize
    current, state = loop.get("currentIndex"), loop.get("state")
    restarting = current is not None and (
        state in ("not-started", "running") if version == "master" else state == "not-started"
    )
    if not restarting:
        return following(current)
    checked = current if version == "master" else loop.get("prevIndex", current)
    trip = cwf / f"{loop['originalName']}_{checked}" / "cmp.wheel.json"
    if trip.exists() and read_json(trip)["state"] == "finished":
        return following(current)
    before = current - step
    return following(before if (before - start) * step >= 0 else None)


def test_wheel_resumes_its_own_stopped_loop_at_the_stopped_trip() -> None:
    """The simulation above, checked on what OPEN-WHEEL itself left (its restart_for test)."""
    data = Path(__file__).resolve().parents[1] / "data" / "open-wheel" / "restart_for.wheel"
    for version in ("master", "dev2025"):
        assert wheel_next_trip(read_json(data / "for0" / "cmp.wheel.json"), data, version) == 2


def test_a_stopped_loop_names_the_trip_wheel_resumes_after(project: Project) -> None:
    loop = sharin.add_component(project, "for", "loop", start=1, end=4, step=1)
    sharin.add_task(project, "t", '[ "$WHEEL_CURRENT_INDEX" != 3 ] || sleep 30', parent=loop)

    def on_event(e: Event) -> None:
        if e.key == "loop_3/t" and e.state == "running":
            os.kill(os.getpid(), signal.SIGTERM)  # as `sharin stop` does

    result = sharin.run(project.root, on_event=on_event, handle_signals=True)

    assert result.state == "stopped"
    data = cmp(project, "loop")
    assert (data["initialized"], data["currentIndex"], data["prevIndex"]) == (True, 2, 1)
    assert (data["numFinished"], data["numTotal"]) == (2, 4)
    assert cmp(project, "loop_2")["state"] == "finished"
    assert cmp(project, "loop_3")["currentIndex"] == 3
    # what the stop interrupted is not-started again, as in the projects WHEEL left stopped
    states = [cmp(project, rel)["state"] for rel in ("loop", "loop_3", "loop_3/t", "")]
    assert states == ["not-started"] * 4
    assert (
        (project.root / "loop_3" / "t" / "status.wheel.txt").read_text().startswith("not-started\n")
    )
    assert read_json(project.root / "prj.wheel.json")["state"] == "stopped"
    for version in ("master", "dev2025"):
        assert wheel_next_trip(data, project.root, version) == 3, version


# ====================================================================== item: only its keys


def test_an_edit_made_during_the_run_is_kept(project: Project) -> None:
    """The engine writes only ``state`` (and WHEEL's bookkeeping) into a component's file: a
    field the user changed while the run went on keeps the user's value."""
    a = sharin.add_task(project, "a", "true")
    b = sharin.add_task(project, "b", "true")
    sharin.connect(project, a, b)

    def on_event(e: Event) -> None:
        if e.key == "a" and e.state == "running":
            for name in ("a", "b"):
                edit_json(
                    project.root / name / "cmp.wheel.json",
                    lambda d, n=name: d.update(description=f"edited {n}"),
                )

    assert sharin.run(project.root, on_event=on_event).ok

    for name in ("a", "b"):
        data = cmp(project, name)
        assert (data["description"], data["state"]) == (f"edited {name}", "finished")


# ====================================================================== item: 2025 task fields


def test_source_script_is_sourced_before_the_script(project: Project) -> None:
    t = sharin.add_task(project, "t", 'echo "$LOADED" > got.txt', sourceScript="modules.sh")
    (t.directory / "modules.sh").write_text("LOADED=gcc/12\nexport LOADED\n")

    assert sharin.run(project.root).ok

    assert (t.directory / "got.txt").read_text() == "gcc/12\n"


def test_a_failing_source_script_fails_the_task_without_running_it(project: Project) -> None:
    t = sharin.add_task(project, "t", "touch ran", sourceScript="modules.sh")
    (t.directory / "modules.sh").write_text("echo no such module >&2\nfalse\n")

    result = sharin.run(project.root)

    assert result.state == "failed"
    assert not (t.directory / "ran").exists()


@pytest.mark.parametrize("name", ["../outside.sh", "/etc/profile", "missing.sh"])
def test_a_source_script_outside_the_task_or_missing_is_refused(
    project: Project, name: str
) -> None:
    (project.root / "outside.sh").write_text("touch ../sourced\n")
    t = sharin.add_task(project, "t", "touch ran", sourceScript=name)

    with pytest.raises(ValidationError) as info:
        sharin.run(project.root)

    assert [(p.file, p.field) for p in info.value.problems] == [
        ("t/cmp.wheel.json", "sourceScript")
    ]
    assert not (t.directory / "ran").exists()
    assert not (project.root / "sourced").exists()


@pytest.mark.parametrize(
    ("script", "checker", "state"),
    [
        ("exit 3", "exit 0", "finished"),  # the checker overrides a failing script
        ("exit 0", "exit 1", "failed"),  # and a succeeding one
        ("exit 0", "exit 0", "finished"),
    ],
)
def test_the_checker_decides_success(
    project: Project, script: str, checker: str, state: str
) -> None:
    t = sharin.add_task(project, "t", script, checker="check.sh")
    (t.directory / "check.sh").write_text(f'echo "$WHEEL_TASK_RT" > rt.txt\n{checker}\n')

    result = sharin.run(project.root)

    assert result.state == state, result.failed
    assert cmp(project, "t")["state"] == state
    # the checker learns the script's exit code
    assert (t.directory / "rt.txt").read_text() == ("3\n" if "3" in script else "0\n")


def test_retry_condition_sees_wheel_task_rt(project: Project) -> None:
    """WHEEL_TASK_RT is the checker's exit code when a checker ran, else the script's."""
    t = sharin.add_task(
        project,
        "t",
        "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; [ $n -ge 2 ] || exit 7",
        retry=3,
        retryCondition='WHEEL_TASK_RT == "7"',
    )

    assert sharin.run(project.root).ok

    assert (t.directory / "n").read_text() == "2\n"


def test_retry_condition_sees_the_checkers_code(project: Project) -> None:
    t = sharin.add_task(
        project,
        "t",
        "echo x >> runs",
        checker="check.sh",
        retry=3,
        retryCondition='WHEEL_TASK_RT == "5"',
    )
    (t.directory / "check.sh").write_text('[ "$(wc -l < runs)" -ge 2 ] || exit 5\n')

    assert sharin.run(project.root).ok

    assert (t.directory / "runs").read_text() == "x\nx\n"


def test_a_missing_mandatory_input_fails_the_task_before_it_runs(project: Project) -> None:
    """An input delivered from a glob that matched nothing, or given by no edge at all."""
    a = sharin.add_task(project, "a", "true", outputs=["*.dat"])  # makes no .dat file
    b = sharin.add_task(project, "b", "touch ran")
    sharin.connect_files(project, a, "*.dat", b, "data/")
    edit_json(
        b.file,
        lambda d: d["inputFiles"].extend([{"name": "given.txt", "src": [], "mandatory": True}]),
    )
    edit_json(b.file, lambda d: d["inputFiles"][0].update(mandatory=True))

    result = sharin.run(project.root, options=sharin.RunOptions(keep_going=True))

    assert result.state == "failed"
    assert any(f.startswith("b:") and "'data/'" in f and "mandatory" in f for f in result.failed), (
        result.failed
    )
    assert not (b.directory / "ran").exists()
    (b.directory / "data").mkdir(exist_ok=True)
    (b.directory / "data" / "x.dat").write_text("x\n")
    (b.directory / "given.txt").write_text("by hand\n")
    assert sharin.run(project.root, options=sharin.RunOptions(resume=False)).ok


def test_an_empty_glob_into_an_input_that_is_not_mandatory_runs(project: Project) -> None:
    a = sharin.add_task(project, "a", "true", outputs=["*.dat"])
    b = sharin.add_task(project, "b", "touch ran")
    sharin.connect_files(project, a, "*.dat", b, "data/")
    edit_json(b.file, lambda d: d["inputFiles"][0].update(mandatory=False))

    assert sharin.run(project.root).ok
    assert (b.directory / "ran").exists()


def test_a_bulk_jobs_range_from_its_parameter_file_is_written_as_wheel_does(
    project: Project, pjm: Any
) -> None:
    """WHEEL's ``_bulkjobHandler`` sets ``startBulkNumber`` 0 and ``endBulkNumber`` N-1 from the
    parameter space and writes them with the task."""
    c = sharin.add_component(
        project, "bulkjobTask", "bulk", script="run.sh", host="fugaku", useJobScheduler=True
    )
    (c.directory / "run.sh").write_text("#!/bin/sh\ntrue\n")
    write_json(
        c.directory / "parameterSetting.json",
        {"version": 2, "targetFiles": [], "params": [{"keyword": "x", "list": ["a", "b", "c"]}]},
    )
    sharin.set_property(project, c, "parameterFile", "parameterSetting.json")

    assert sharin.run(project.root).ok

    data = cmp(project, "bulk")
    assert (data["state"], data["startBulkNumber"], data["endBulkNumber"]) == ("finished", 0, 2)


def test_a_stopped_study_is_left_as_wheel_restarts_it(project: Project) -> None:
    """OPEN-WHEEL restarts a study (``_PSHandler``: ``initialized`` and not-started, master also
    running) by skipping the instances whose JSON says finished."""
    ps = sharin.add_component(project, "parameterStudy", "ps")
    write_json(
        ps.directory / "parameterSetting.json",
        {"version": 2, "params": [{"keyword": "K", "list": ["1", "2", "3"]}]},
    )
    sharin.add_task(project, "t", '[ "$WHEEL_PS_PARAM_K" != 3 ] || sleep 30', parent=ps)

    def on_event(e: Event) -> None:
        if e.key == "ps_K_3/t" and e.state == "running":
            os.kill(os.getpid(), signal.SIGTERM)

    result = sharin.run(
        project.root,
        on_event=on_event,
        handle_signals=True,
        options=sharin.RunOptions(max_local=1, launch_window=1),
    )

    assert result.state == "stopped"
    data = cmp(project, "ps")
    assert (data["state"], data["initialized"], data["numTotal"]) == ("not-started", True, 3)
    assert data["numFinished"] == 2
    for version in ("master", "dev2025"):
        assert data["initialized"] and data["state"] in (
            ("not-started", "running") if version == "master" else ("not-started",)
        )
    rerun = [k for k in ("1", "2", "3") if cmp(project, f"ps_K_{k}")["state"] != "finished"]
    assert rerun == ["3"]
