"""The engine in real runs: order, states on disk, retry, failure policy, limits, stop, resume."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import psutil
import pytest

import sharin
from sharin import Project, RunOptions
from sharin.engine import Engine, Event, EventBus, evaluate_condition
from sharin.executors import ExecutorRegistry

from ..helpers import another_engine, edit_json, journal_tasks, lines, log_line, read_json

COUNT = "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count\n"


def ran(p: Project) -> list[str]:
    return lines(p.root / "ran.log")


def test_flow_edges_order_the_tasks(project: Project) -> None:
    for name in ("a", "b", "c"):
        sharin.add_task(project, name, log_line(name) + "sleep 0.05")
    sharin.connect(project, "b", "c")
    sharin.connect(project, "a", "b")
    result = sharin.run(project)
    assert result.ok and result.counts == {"finished": 3}
    assert ran(project) == ["a", "b", "c"]


def test_states_are_written_where_wheel_keeps_them(project: Project) -> None:
    sharin.add_task(project, "ok", "true")
    sharin.add_task(project, "bad", "exit 3")
    result = sharin.run(project, options=RunOptions(keep_going=True))
    assert result.state == "failed"
    root = project.root
    assert read_json(root / "prj.wheel.json")["state"] == "failed"
    assert read_json(root / "ok" / "cmp.wheel.json")["state"] == "finished"
    assert read_json(root / "bad" / "cmp.wheel.json")["state"] == "failed"
    assert (root / "ok" / "status.wheel.txt").read_text().splitlines() == ["finished", "0", "0"]
    assert (root / "bad" / "status.wheel.txt").read_text().splitlines() == ["failed", "3", "3"]
    assert result.failed == ["bad: exit code 3"]


def test_a_new_run_resets_states_of_the_last_one(project: Project) -> None:
    sharin.add_task(project, "a", "true")
    sharin.add_task(project, "b", "[ -e ../go ]")
    sharin.connect(project, "a", "b")
    assert sharin.run(project).state == "failed"
    (project.root / "go").touch()
    assert sharin.run(project, options=RunOptions(resume=False)).ok
    sharin.set_property(project, "b", "disable", True)
    result = sharin.run(project, options=RunOptions(resume=False))
    assert result.ok and result.run == 3
    assert read_json(project.root / "b" / "cmp.wheel.json")["state"] == "not-started"
    assert not (project.root / "b" / "status.wheel.txt").exists()


def test_retry_until_success(project: Project) -> None:
    sharin.add_task(project, "flaky", COUNT + '[ "$n" -ge 3 ]', retry=2)
    result = sharin.run(project)
    assert result.ok, result.failed
    record = journal_tasks(project.root, result.run)["flaky"]
    assert (record.state, record.attempt, record.rc) == ("finished", 3, 0)
    assert (project.root / "flaky" / "count").read_text() == "3\n"
    logs = project.root / ".sharin" / "runs" / str(result.run)
    assert sorted(p.name for p in logs.glob("flaky.*.rc")) == [
        "flaky.1.rc",
        "flaky.2.rc",
        "flaky.3.rc",
    ]


def test_retry_count_runs_out(project: Project) -> None:
    sharin.add_task(project, "flaky", COUNT + '[ "$n" -ge 3 ]', retry=1)
    result = sharin.run(project)
    assert result.state == "failed"
    record = journal_tasks(project.root, result.run)["flaky"]
    assert (record.state, record.attempt, record.rc) == ("failed", 2, 1)
    assert (project.root / "flaky" / "count").read_text() == "2\n"


def test_retry_condition_script_decides(project: Project) -> None:
    task = sharin.add_task(project, "t", COUNT + "exit 1", retry=5, retryCondition="again.sh")
    again = task.directory / "again.sh"
    again.write_text('#!/bin/sh\n[ "$(cat count)" -lt 3 ]\n')  # exit 0 = retry; not executable
    result = sharin.run(project)
    assert result.state == "failed"
    assert journal_tasks(project.root, result.run)["t"].attempt == 3
    assert (project.root / "t" / "count").read_text() == "3\n"


@pytest.mark.parametrize(("condition", "attempts"), [("false", 1), ("true", 3), (None, 3)])
def test_retry_condition_constants(project: Project, condition: str | None, attempts: int) -> None:
    sharin.add_task(project, "t", COUNT + "exit 1", retry=2, retryCondition=condition)
    result = sharin.run(project)
    assert result.state == "failed"
    assert journal_tasks(project.root, result.run)["t"].attempt == attempts


def test_ignore_failure_lets_successors_run(project: Project) -> None:
    sharin.add_task(project, "a", log_line("a") + "exit 4", ignoreFailure=True)
    sharin.add_task(project, "b", log_line("b"))
    sharin.connect(project, "a", "b")
    result = sharin.run(project)
    assert ran(project) == ["a", "b"]
    assert result.state == "failed"  # as WHEEL: the run went past the failure, but it failed
    assert result.counts == {"failed": 1, "finished": 1}
    assert result.failed == ["a: exit code 4"]
    assert read_json(project.root / "a" / "cmp.wheel.json")["state"] == "failed"


def test_without_ignore_failure_successors_do_not_run(project: Project) -> None:
    sharin.add_task(project, "a", log_line("a") + "exit 4")
    sharin.add_task(project, "b", log_line("b"))
    sharin.connect(project, "a", "b")
    result = sharin.run(project, options=RunOptions(keep_going=True))
    assert result.state == "failed"
    assert ran(project) == ["a"]
    assert "b" not in journal_tasks(project.root, result.run)


def failing_and_independent_branch(p: Project) -> None:
    """``bad`` fails at once; ``slow`` → ``after`` is a branch that does not depend on it."""
    sharin.add_task(p, "bad", "touch failed_now; exit 1")
    # slow goes on only once bad has failed, so the engine has seen the failure before
    # the independent branch would start its next task
    sharin.add_task(p, "slow", "while [ ! -e ../bad/failed_now ]; do sleep 0.01; done; sleep 0.2")
    sharin.add_task(p, "after", log_line("after"))
    sharin.connect(p, "slow", "after")


def test_first_failure_stops_new_tasks(project: Project) -> None:
    failing_and_independent_branch(project)
    result = sharin.run(project)
    assert result.state == "failed"
    assert ran(project) == []
    tasks = journal_tasks(project.root, result.run)
    assert tasks["slow"].state == "finished"  # running tasks are left to finish
    assert "after" not in tasks


def test_keep_going_runs_the_independent_branch(project: Project) -> None:
    failing_and_independent_branch(project)
    result = sharin.run(project, options=RunOptions(keep_going=True))
    assert result.state == "failed"
    assert ran(project) == ["after"]
    assert result.counts == {"failed": 1, "finished": 2}


def timed(p: Project, n: int) -> None:
    for i in range(n):
        sharin.add_task(p, f"t{i}", "date +%s.%N > start; sleep 0.25; date +%s.%N > end")


def intervals(p: Project, n: int) -> list[tuple[float, float]]:
    out = []
    for i in range(n):
        d = p.root / f"t{i}"
        out.append((float((d / "start").read_text()), float((d / "end").read_text())))
    return sorted(out)


def overlaps(spans: list[tuple[float, float]]) -> bool:
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_one_job_at_a_time(project: Project) -> None:
    timed(project, 3)
    assert sharin.run(project, options=RunOptions(max_local=1)).ok
    assert not overlaps(intervals(project, 3))


def test_several_jobs_overlap(project: Project) -> None:
    timed(project, 3)
    assert sharin.run(project, options=RunOptions(max_local=3)).ok
    assert overlaps(intervals(project, 3))


def test_environment_of_a_task(project: Project) -> None:
    sharin.set_property(project, "/", "env", {"LEVEL": "root"})
    wf = sharin.add_component(project, "workflow", "wf", env={"WF": "yes"})
    sharin.add_task(
        project,
        "t",
        'env | grep -E "^(SHARIN_|WHEEL_|LEVEL|WF|OWN)" | sort > env.txt; pwd > pwd.txt',
        parent=wf,
        env={"OWN": "1"},
    )
    result = sharin.run(project.root)
    assert result.ok
    t = project.root / "wf" / "t"
    env = dict(line.split("=", 1) for line in (t / "env.txt").read_text().splitlines())
    env.pop("SHARIN_CONFIG_DIR")  # set by the test fixture
    env.pop("SHARIN_REQUIRE_ALL", None)  # set by scripts/test.sh
    assert env == {
        "LEVEL": "root",
        "WF": "yes",
        "OWN": "1",
        "SHARIN_ATTEMPT": "1",
        "SHARIN_PROJECT_DIR": str(project.root),
        "SHARIN_RUN_ID": str(result.run),
        "SHARIN_TASK": "wf/t",
        "WHEEL_LOCAL_PRJDIR": str(project.root),
    }
    assert (t / "pwd.txt").read_text().strip() == str(t)


def test_disabled_components_do_not_run(project: Project) -> None:
    sharin.add_task(project, "a", log_line("a"), disable=True)
    sharin.add_task(project, "b", log_line("b"))
    result = sharin.run(project)
    assert result.ok and ran(project) == ["b"]
    assert "a" not in journal_tasks(project.root, result.run)


def test_scripts_with_crlf_line_ends_run(project: Project) -> None:
    t = sharin.add_task(project, "t", None)
    (t.directory / "run.sh").write_bytes(b"#!/bin/sh\r\necho ok > out.txt\r\n")
    assert sharin.run(project).ok
    assert (t.directory / "out.txt").read_text() == "ok\n"
    assert b"\r" not in (t.directory / "run.sh").read_bytes()


def test_events_of_a_run(project: Project) -> None:
    sharin.add_task(project, "a", "true")
    events: list[Event] = []
    result = sharin.run(project, on_event=events.append)
    assert result.ok
    assert (events[0].kind, events[0].state) == ("run", "running")
    assert (events[-1].kind, events[-1].state) == ("run", "finished")
    states = [e.state for e in events if e.key == "a"]
    assert states == ["stage-in", "waiting", "queued", "running", "stage-out", "finished"]
    assert all(e.run == result.run for e in events)
    assert [e.attempt for e in events if e.key == "a"][-1] == 1


def test_resume_after_failure_skips_finished_tasks(project: Project) -> None:
    sharin.add_task(project, "a", log_line("a"))
    sharin.add_task(project, "b", log_line("b") + "[ -e ../go ]")
    sharin.add_task(project, "c", log_line("c"))
    sharin.connect(project, "a", "b")
    sharin.connect(project, "b", "c")
    first = sharin.run(project)
    assert (first.state, first.resumed) == ("failed", False)
    (project.root / "go").touch()
    second = sharin.run(project)
    assert (second.state, second.resumed, second.run) == ("finished", True, first.run)
    assert ran(project) == ["a", "b", "b", "c"]
    assert journal_tasks(project.root, first.run)["b"].attempt == 2
    third = sharin.run(project)  # the last run finished: a fresh one, with nothing to do
    assert (third.run, third.resumed) == (first.run + 1, False)
    assert third.nothing_to_do and third.since == first.run
    assert ran(project) == ["a", "b", "b", "c"]
    fourth = sharin.run(project, options=sharin.RunOptions(resume=False))  # --restart
    assert (fourth.run, fourth.resumed, fourth.nothing_to_do) == (third.run + 1, False, False)
    assert ran(project) == ["a", "b", "b", "c", "a", "b", "c"]


def test_restart_instead_of_resume(project: Project) -> None:
    sharin.add_task(project, "a", log_line("a"))
    sharin.add_task(project, "b", "exit 1")
    sharin.connect(project, "a", "b")
    assert sharin.run(project).state == "failed"
    result = sharin.run(project, options=RunOptions(resume=False))
    assert (result.run, result.resumed) == (2, False)
    assert ran(project) == ["a", "a"]


def wheel_left_it(p: Project, project_state: str) -> None:
    """What WHEEL leaves after a failed run: a finished task (with its output), a failed one."""
    a = sharin.add_task(p, "a", log_line("a") + "echo fresh > out.txt")
    b = sharin.add_task(p, "b", log_line("b") + "cat in.txt > got")
    sharin.connect_files(p, a, "out.txt", b, "in.txt")
    (a.directory / "out.txt").write_text("from wheel\n")
    edit_json(a.file, lambda d: d.update(state="finished"))
    edit_json(b.file, lambda d: d.update(state="failed"))
    edit_json(p.root / "prj.wheel.json", lambda d: d.update(state=project_state))


def test_a_task_wheel_finished_is_skipped(project: Project) -> None:
    wheel_left_it(project, "failed")
    result = sharin.run(project.root)
    assert (result.state, result.resumed) == ("finished", True)
    assert ran(project) == ["b"]
    assert (project.root / "b" / "got").read_text() == "from wheel\n"
    record = journal_tasks(project.root, result.run)["a"]
    assert (record.state, record.message) == ("finished", "finished before (WHEEL state)")
    assert read_json(project.root / "b" / "cmp.wheel.json")["state"] == "finished"
    assert read_json(project.root / "prj.wheel.json")["state"] == "finished"


def test_wheel_states_of_a_finished_project_are_not_trusted(project: Project) -> None:
    wheel_left_it(project, "finished")
    result = sharin.run(project.root)
    assert (result.state, result.resumed) == ("finished", False)
    assert ran(project) == ["a", "b"]
    assert (project.root / "b" / "got").read_text() == "fresh\n"


def test_unknown_fields_survive_a_run(project: Project) -> None:
    t = sharin.add_task(project, "t", "true")
    edit_json(t.file, lambda d: d.update(myField={"x": [1]}))
    assert sharin.run(project.root).ok
    data = read_json(t.file)
    assert data["myField"] == {"x": [1]} and data["state"] == "finished"


def test_stop_cancels_running_tasks(project: Project) -> None:
    sharin.add_task(project, "long", "touch started; sleep 20; touch finished")
    sharin.add_task(project, "next", log_line("next"))
    sharin.connect(project, "long", "next")

    async def go() -> sharin.RunResult:
        bus = EventBus()
        registry = ExecutorRegistry()
        engine = Engine(project, registry, events=bus)

        def on_event(ev: Event) -> None:
            if ev.key == "long" and ev.state == "running":
                asyncio.get_running_loop().call_later(0.2, engine.stop)

        bus.subscribe(on_event)
        try:
            return await engine.run()
        finally:
            await registry.close()

    result = asyncio.run(asyncio.wait_for(go(), 15))
    assert result.state == "stopped"
    assert (project.root / "long" / "started").exists()
    assert not (project.root / "long" / "finished").exists()
    assert ran(project) == []
    record = journal_tasks(project.root, result.run)["long"]
    assert (record.state, record.message) == ("stopped", "stopped by the user")
    assert read_json(project.root / "prj.wheel.json")["state"] == "stopped"
    # a stopped run is resumed by the next one
    (project.root / "long" / "run.sh").write_text("#!/bin/sh\ntrue\n")
    again = sharin.run(project)
    assert (again.state, again.resumed, again.run) == ("finished", True, result.run)
    assert ran(project) == ["next"]


def mirror_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sharin-state-mirror"]


def mirror_writers() -> list[int]:
    """This process's state-mirror writer processes (``engine/_mirrorwriter.py``) still alive."""
    found = []
    for p in psutil.Process().children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and any(
                # its source, or its bytecode (``_mirrorwriter.cpython-311.pyc``)
                Path(a).name.startswith("_mirrorwriter.")
                for a in p.cmdline()
            ):
                found.append(p.pid)
        except psutil.Error:
            continue  # ended meanwhile
    return found


def test_a_second_engine_is_refused(project: Project) -> None:
    sharin.add_task(project, "t", "true")
    with another_engine(project):
        with pytest.raises(sharin.BusyError, match=r"already running \(engine pid \d+\)"):
            sharin.run(project)
    assert mirror_threads() == []  # a run that never started leaves no thread behind
    assert mirror_writers() == []  # and no writer: the one started beside the checks ended
    assert sharin.run(project).ok
    assert mirror_threads() == []
    assert mirror_writers() == []  # the run's writer has exited


def test_evaluate_condition(tmp_path: Path) -> None:
    (tmp_path / "yes.sh").write_text('#!/bin/sh\n[ "$X" = 1 ]\n')
    assert asyncio.run(evaluate_condition("yes.sh", tmp_path, {"X": "1", "PATH": "/bin"}))
    assert not asyncio.run(evaluate_condition("yes.sh", tmp_path, {"X": "2", "PATH": "/bin"}))
    assert asyncio.run(evaluate_condition(" true ", tmp_path, {}))
    assert not asyncio.run(evaluate_condition("false", tmp_path, {}))
    assert asyncio.run(evaluate_condition('X == "1" && Number(X) < 2', tmp_path, {"X": "1"}))
    with pytest.raises(sharin.SharinError, match="unknown variable 'TRUE'"):
        asyncio.run(evaluate_condition("TRUE", tmp_path, {}))
    with pytest.raises(sharin.RunError, match="neither a script"):
        asyncio.run(evaluate_condition("missing.sh", tmp_path, {}))


def test_a_task_on_an_ssh_host_without_a_path_is_accepted(
    project: Project, config_dir: Path
) -> None:
    """As in WHEEL (OPEN-WHEEL's entries have no path): its tasks run under the login
    directory there (tests/remote/test_wheel_hosts.py runs one)."""
    (config_dir / "remotehost.json").write_text('[{"name": "cluster", "host": "c.example"}]')
    sharin.add_task(project, "t", "true", host="cluster")
    assert sharin.validate(project) == []
