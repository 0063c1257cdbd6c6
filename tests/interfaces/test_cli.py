"""Every ``sharin`` verb: exit codes, messages and what it leaves on disk."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import sharin
from sharin import Project

from ..conftest import Cli, Processes
from ..helpers import (
    edit_json,
    journal_tasks,
    lines,
    log_line,
    pid_alive,
    read_json,
    tree_snapshot,
    wait_for,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_tensorflow.wheel"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def ran(p: Project) -> list[str]:
    return lines(p.root / "ran.log")


def test_version_and_help(cli: Cli) -> None:
    assert "sharin, version 0.1.0" in cli("--version").stdout
    out = cli("--help").stdout
    for verb in ("new", "copy", "add", "connect", "set", "validate", "run", "status", "log"):
        assert verb in out
    for verb in ("stop", "clean", "save", "revert", "runs"):
        assert verb in out
    assert cli("frobnicate", code=2).exit_code == 2


# ---------------------------------------------------------------------- building


def test_new(cli: Cli, tmp_path: Path) -> None:
    r = cli("new", tmp_path / "demo", "-d", "my project")
    root = (tmp_path / "demo.wheel").resolve()
    assert f"created project demo at {root}" in r.stdout
    assert read_json(root / "prj.wheel.json")["description"] == "my project"
    assert read_json(root / "cmp.wheel.json")["type"] == "workflow"
    assert git(root, "log", "--format=%s").splitlines() == ["create new project"]
    assert git(root, "status", "--porcelain") == ""
    assert "already exists" in cli("new", tmp_path / "demo", code=2).stderr
    assert "only letters" in cli("new", tmp_path / "bad name", code=2).stderr
    assert not (tmp_path / "bad name.wheel").exists()


def test_copy(cli: Cli, tmp_path: Path) -> None:
    before = tree_snapshot(EXAMPLE)
    r = cli("copy", EXAMPLE, tmp_path / "mnist.wheel")
    dst = (tmp_path / "mnist.wheel").resolve()
    assert f"to {dst}" in r.stdout
    assert tree_snapshot(EXAMPLE) == before
    assert (dst / "train" / "run.sh").read_bytes() == (EXAMPLE / "train" / "run.sh").read_bytes()
    assert read_json(dst / "prj.wheel.json")["root"] == str(dst)
    assert git(dst, "status", "--porcelain") == ""
    cli("validate", dst)
    assert "already exists" in cli("copy", EXAMPLE, dst, code=2).stderr
    assert "no such project" in cli("copy", tmp_path / "none", tmp_path / "x", code=2).stderr


def test_add(cli: Cli, project: Project, tmp_path: Path) -> None:
    root = project.root
    r = cli(
        "add",
        root,
        "task",
        "a",
        "--script-text",
        "echo hi > out.txt",
        "--set",
        "retry=2",
        "--set",
        'outputFiles=[{"name": "out.txt", "dst": []}]',
        "--set",
        "description=the first task",
    )
    a = read_json(root / "a" / "cmp.wheel.json")
    assert f"added task a ({a['ID']})" in r.stdout
    assert (a["retry"], a["description"], a["script"]) == (2, "the first task", "run.sh")
    assert a["outputFiles"] == [{"name": "out.txt", "dst": []}]
    assert (root / "a" / "run.sh").read_text() == "#!/bin/sh\necho hi > out.txt\n"

    cli("add", root, "workflow", "wf")
    cli(
        "add",
        root,
        "task",
        "inner",
        "--parent",
        "wf",
        "--script",
        "main.sh",
        "--script-text",
        "true",
    )
    assert read_json(root / "wf" / "inner" / "cmp.wheel.json")["script"] == "main.sh"
    assert (root / "wf" / "inner" / "main.sh").is_file()

    job = tmp_path / "job.sh"
    job.write_text("#!/bin/bash\necho from file\n")
    cli("add", root, "task", "b", "--script-file", job)
    assert read_json(root / "b" / "cmp.wheel.json")["script"] == "job.sh"
    assert (root / "b" / "job.sh").read_text() == job.read_text()
    cli("validate", root)

    assert "unknown component type 'tsak'" in cli("add", root, "tsak", "x", code=2).stderr
    assert "already has a component named 'a'" in cli("add", root, "task", "a", code=2).stderr
    r = cli("add", root, "workflow", "w2", "--script", "x.sh", code=2)
    assert "--script options are for components with a script" in r.stderr
    assert "not KEY=VALUE" in cli("add", root, "task", "c", "--set", "retry", code=2).stderr
    assert "no component 'nope'" in cli("add", root, "task", "c", "--parent", "nope", code=2).stderr
    assert not (root / "c").exists() and not (root / "x").exists()


def test_connect_flow_and_files(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo hi > out.txt; echo log > log.txt")
    sharin.add_task(project, "b", "cat in.txt log.txt > got")
    r = cli("connect", root, "a", "b")
    assert "a → b" in r.stdout
    a, b = read_json(root / "a" / "cmp.wheel.json"), read_json(root / "b" / "cmp.wheel.json")
    assert a["next"] == [b["ID"]] and b["previous"] == [a["ID"]]

    r = cli("connect", root, "a", "b", "--file", "out.txt:in.txt", "--file", "log.txt")
    assert "a:out.txt → b:in.txt" in r.stdout and "a:log.txt → b:log.txt" in r.stdout
    a, b = read_json(root / "a" / "cmp.wheel.json"), read_json(root / "b" / "cmp.wheel.json")
    assert a["outputFiles"] == [
        {"name": "out.txt", "dst": [{"dstNode": b["ID"], "dstName": "in.txt"}]},
        {"name": "log.txt", "dst": [{"dstNode": b["ID"], "dstName": "log.txt"}]},
    ]
    assert [(f["name"], f["src"][0]["srcName"]) for f in b["inputFiles"]] == [
        ("in.txt", "out.txt"),
        ("log.txt", "log.txt"),
    ]
    cli("run", root)
    assert (root / "b" / "got").read_text() == "hi\nlog\n"

    assert "to itself" in cli("connect", root, "a", "a", code=2).stderr
    assert "no component 'nope'" in cli("connect", root, "a", "nope", code=2).stderr
    assert "not an if component" in cli("connect", root, "a", "b", "--else", code=2).stderr


def test_set(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    r = cli(
        "set",
        root,
        "a",
        "retry=3",
        "ignoreFailure=true",
        "description=two words",
        'env={"K": "v"}',
        "retryCondition=null",
    )
    assert "a: retry = 3" in r.stdout and 'a: description = "two words"' in r.stdout
    a = read_json(root / "a" / "cmp.wheel.json")
    assert a["retry"] == 3 and a["ignoreFailure"] is True
    assert a["description"] == "two words" and a["env"] == {"K": "v"}
    assert a["retryCondition"] is None

    cli("set", root, "a", "name=renamed")
    assert (root / "renamed" / "run.sh").is_file() and not (root / "a").exists()
    before = tree_snapshot(root)
    assert "cannot be changed" in cli("set", root, "renamed", "ID=x", code=2).stderr
    assert "not KEY=VALUE" in cli("set", root, "renamed", "retry", code=2).stderr
    assert cli("set", root, "renamed", code=2).exit_code == 2
    assert tree_snapshot(root) == before


def test_unknown_fields_survive_cli_edits(cli: Cli, project: Project) -> None:
    root = project.root
    cli("add", root, "task", "a", "--script-text", "true")
    edit_json(root / "a" / "cmp.wheel.json", lambda d: d.update(wheelOnly={"keep": ["me"]}))
    cli("add", root, "task", "b", "--script-text", "true")
    cli("connect", root, "a", "b")
    cli("connect", root, "a", "b", "--file", "x:y")
    cli("set", root, "a", "retry=1")
    assert read_json(root / "a" / "cmp.wheel.json")["wheelOnly"] == {"keep": ["me"]}


def test_validate_a_valid_project(cli: Cli, project: Project) -> None:
    sharin.add_task(project, "a", "true")
    before = tree_snapshot(project.root)
    assert "valid: no problems found" in cli("validate", project.root).stdout
    assert tree_snapshot(project.root) == before
    assert "no such project" in cli("validate", project.root / "nope", code=2).stderr


# ---------------------------------------------------------------------- running


def test_run_in_the_foreground(cli: Cli, project: Project) -> None:
    root = project.root
    a = sharin.add_task(project, "a", "echo hi > out.txt", outputs=["out.txt"])
    b = sharin.add_task(project, "b", "cat in.txt > got")
    sharin.connect_files(project, a, "out.txt", b, "in.txt")
    r = cli("run", root)
    out = r.stdout
    assert re.search(r"running +a\n", out) and re.search(r"finished +b\n", out)
    assert out.index("finished  a") < out.index("running   b")
    assert re.search(r"run 1 finished in \d+\.\d s: 2 finished", out)
    assert (root / "b" / "got").read_text() == "hi\n"
    assert read_json(root / "prj.wheel.json")["state"] == "finished"
    r = cli("run", root, "-q")
    assert r.stdout.strip() == "run 2: nothing changed since run 1; nothing to do"
    r = cli("run", root, "-q", "--restart")
    assert r.stdout.strip().startswith("run 3 finished")
    assert len(r.stdout.strip().splitlines()) == 1


def test_run_failure_exits_1(cli: Cli, project: Project) -> None:
    sharin.add_task(project, "a", "echo bad >&2; exit 3")
    r = cli("run", project.root, code=1)
    assert "run 1 failed" in r.stdout
    assert "✗ a: exit code 3" in r.stderr
    assert f"sharin log {project.root} <component>" in r.stderr


def failing_and_independent_branch(p: Project) -> None:
    sharin.add_task(p, "bad", "touch failed_now; exit 1")
    sharin.add_task(p, "slow", "while [ ! -e ../bad/failed_now ]; do sleep 0.01; done; sleep 0.2")
    sharin.add_task(p, "after", log_line("after"))
    sharin.connect(p, "slow", "after")


def test_run_keep_going(cli: Cli, project: Project) -> None:
    failing_and_independent_branch(project)
    cli("run", project.root, code=1)
    assert ran(project) == []
    r = cli("run", project.root, "--restart", "--keep-going", code=1)
    assert "run 2 failed" in r.stdout and "1 failed, 2 finished" in r.stdout
    assert ran(project) == ["after"]


def test_run_resumes_or_restarts(cli: Cli, project: Project) -> None:
    sharin.add_task(project, "a", log_line("a"))
    sharin.add_task(project, "b", log_line("b") + "[ -e ../go ]")
    sharin.connect(project, "a", "b")
    cli("run", project.root, code=1)
    (project.root / "go").touch()
    r = cli("run", project.root)
    assert "resuming the unfinished run" in r.stdout and "resumed run 1 finished" in r.stdout
    assert ran(project) == ["a", "b", "b"]
    r = cli("run", project.root)  # nothing changed in a or b since run 1 finished
    assert "run 2: nothing changed since run 1; nothing to do" in r.stdout
    assert ran(project) == ["a", "b", "b"]
    (project.root / "go").unlink()
    cli("run", project.root, "--restart", code=1)  # run 3 fails in b
    (project.root / "go").touch()
    r = cli("run", project.root, "--restart")
    assert "run 4 finished" in r.stdout and "resum" not in r.stdout
    assert ran(project) == ["a", "b", "b", "a", "b", "a", "b"]


def test_run_jobs_limit(cli: Cli, project: Project) -> None:
    for i in range(3):
        sharin.add_task(project, f"t{i}", "date +%s.%N > start; sleep 0.2; date +%s.%N > end")
    cli("run", project.root, "-j", "1")
    spans = sorted(
        (
            float((project.root / f"t{i}" / "start").read_text()),
            float((project.root / f"t{i}" / "end").read_text()),
        )
        for i in range(3)
    )
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
    assert "-j" in cli("run", project.root, "-j", "0", code=2).stderr


def test_detach_status_stop_and_resume(cli: Cli, procs: Processes, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "long", "touch started; echo working; [ -e ../go ] || sleep 30")
    sharin.add_task(project, "next", log_line("next"))
    sharin.connect(project, "long", "next")
    sharin.save(project)

    detached = procs.run("run", root, "--detach")
    match = re.search(r"running in the background \(engine pid (\d+)\)", detached.stdout)
    assert match, detached.stdout
    pid = int(match.group(1))
    procs.track_pid(pid)
    wait_for((root / "long" / "started").exists, "the task to start")

    status = json.loads(cli("status", root, "--json").stdout)
    assert status["engine_pid"] == pid and status["state"] == "running"
    assert status["run"]["state"] == "running" and status["interrupted"] is False
    wait_for(
        lambda: journal_tasks(root, 1)["long"].state == "running", "the journal to say running"
    )
    handle = journal_tasks(root, 1)["long"].handle
    assert handle is not None
    procs.track_group(int(json.loads(handle)["id"]))  # the task's own session, if we fail
    table = cli("status", root).stdout
    assert f"(engine pid {pid})" in table and re.search(r"long +│ task +│ running", table)

    assert "already running" in cli("run", root, code=4).stderr
    for verb in ("save", "clean", "revert"):
        assert "while the project runs" in cli(verb, root, code=4).stderr

    assert "stopped; `sharin run` resumes the run later" in cli("stop", root).stdout
    wait_for(lambda: not pid_alive(pid), "the engine process to exit", timeout=10)
    status = json.loads(cli("status", root, "--json").stdout)
    assert (status["engine_pid"], status["state"], status["run"]["state"]) == (
        None,
        "stopped",
        "stopped",
    )
    assert [(t["key"], t["state"]) for t in status["tasks"]] == [("long", "stopped")]
    assert "run 1 stopped" in (root / ".sharin" / "engine.log").read_text()
    assert "the project is not running" in cli("stop", root).stdout

    (root / "go").touch()
    r = cli("run", root)
    assert "resumed run 1 finished" in r.stdout
    assert ran(project) == ["next"]


def test_follow_a_detached_run(cli: Cli, procs: Processes, project: Project) -> None:
    sharin.add_task(project, "t", "echo one; sleep 0.5; echo two")
    r = procs.run("run", project.root, "--detach")
    procs.track_pid(int(re.findall(r"engine pid (\d+)", r.stdout)[0]))
    followed = procs.run("log", project.root, "t", "-f", timeout=20)
    assert followed.stdout == "one\ntwo\n"
    wait_for(lambda: sharin.status(project.root).engine_pid is None, "the engine to end")
    assert sharin.status(project.root).run.state == "finished"  # type: ignore[union-attr]


def test_status_table_and_json(cli: Cli, project: Project) -> None:
    root = project.root
    assert "no runs yet" in cli("status", root).stdout
    empty = json.loads(cli("status", root, "--json").stdout)
    assert (empty["run"], empty["tasks"], empty["state"]) == (None, [], "not-started")

    sharin.add_task(project, "good", "true")
    sharin.add_task(project, "flaky", "exit 9", retry=1)
    cli("run", root, "--keep-going", code=1)
    table = cli("status", root).stdout
    assert "project demo: failed" in table and "run 1 (failed)" in table
    assert re.search(r"good +│ task +│ finished +│ 1 +│ 0 ", table)
    assert re.search(r"flaky +│ task +│ failed +│ 2 +│ 9 +│ [\d.]+s +│ exit code 9", table)

    data = json.loads(cli("status", root, "--json").stdout)
    assert data["project"] == "demo" and data["engine_pid"] is None
    assert data["run"]["id"] == 1 and data["run"]["state"] == "failed"
    tasks = {t["key"]: t for t in data["tasks"]}
    for t in tasks.values():  # times: see test_status_json_has_task_times
        for k in ("started", "ended", "started_at", "ended_at"):
            del t[k]
    assert tasks["flaky"] == {
        "key": "flaky",
        "kind": "task",
        "state": "failed",
        "attempt": 2,
        "rc": 9,
        "message": "exit code 9",
    }
    assert tasks["good"]["state"] == "finished"

    cli("run", root, "--restart", "--keep-going", code=1)
    assert json.loads(cli("status", root, "--json", "--run", "1").stdout)["run"]["id"] == 1
    r = cli("status", root, "--run", "9", code=None)
    assert r.exit_code != 0 and "there is no run 9" in r.stderr


def test_log(cli: Cli, procs: Processes, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo out-line; echo err-line >&2")
    r = cli("log", root, "a", code=None)
    assert r.exit_code != 0 and "has not been run yet" in r.stderr
    cli("run", root)
    assert cli("log", root, "a").stdout == "out-line\n"
    assert cli("log", root, "a", "--out").stdout == "out-line\n"
    assert cli("log", root, "a", "--err").stdout == "err-line\n"
    finished = procs.run("log", root, "a", "-f", timeout=10)  # returns: nothing runs
    assert finished.stdout == "out-line\n"

    (root / "a" / "run.sh").write_text("#!/bin/sh\necho second\n")
    cli("run", root)
    assert cli("log", root, "a").stdout == "second\n"
    assert cli("log", root, "a", "--run", "1").stdout == "out-line\n"
    r = cli("log", root, "nope", code=None)
    assert r.exit_code == 2 and "no such component or trip 'nope'" in r.stderr


def test_log_of_a_nested_task(cli: Cli, project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    sharin.add_task(project, "inner", "echo deep", parent=wf)
    cli("run", project.root)
    assert cli("log", project.root, "wf/inner").stdout == "deep\n"
    assert cli("log", project.root, "inner").stdout == "deep\n"  # a unique name is enough


def test_stop_when_nothing_runs(cli: Cli, project: Project) -> None:
    assert "the project is not running" in cli("stop", project.root).stdout


# ---------------------------------------------------------------------- versioning


def test_save(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    assert cli("save", root, "-m", "add a task").stdout.strip() == "saved"
    assert git(root, "log", "--format=%s").splitlines() == ["add a task", "create new project"]
    assert git(root, "status", "--porcelain") == ""
    assert cli("save", root).stdout.strip() == "nothing to save"
    cli("run", root)
    assert ".sharin" not in git(root, "status", "--porcelain")  # run history is not saved
    cli("save", root)
    assert git(root, "log", "-1", "--format=%s").strip() == "save project"


def test_revert(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "true")
    sharin.save(project)
    before = (root / "a" / "cmp.wheel.json").read_text()
    cli("set", root, "a", "description=changed", "retry=4")
    assert "reverted to the last save" in cli("revert", root).stdout
    assert (root / "a" / "cmp.wheel.json").read_text() == before
    assert git(root, "status", "--porcelain") == ""


def test_clean_a_component_and_the_project(cli: Cli, project: Project) -> None:
    root = project.root
    sharin.add_task(project, "a", "echo a > out.txt")
    sharin.add_task(project, "b", "echo b > out.txt")
    sharin.save(project)
    cli("run", root)
    for name in ("a", "b"):
        assert (root / name / "out.txt").exists() and (root / name / "status.wheel.txt").exists()
        assert read_json(root / name / "cmp.wheel.json")["state"] == "finished"

    assert cli("clean", root, "a").stdout.strip() == "cleaned a"
    assert not (root / "a" / "out.txt").exists() and not (root / "a" / "status.wheel.txt").exists()
    assert read_json(root / "a" / "cmp.wheel.json")["state"] == "not-started"
    assert (root / "b" / "out.txt").exists()
    assert read_json(root / "b" / "cmp.wheel.json")["state"] == "finished"

    assert cli("clean", root).stdout.strip() == "cleaned"
    assert not (root / "b" / "out.txt").exists()
    assert read_json(root / "b" / "cmp.wheel.json")["state"] == "not-started"
    assert read_json(root / "prj.wheel.json")["state"] == "not-started"
    assert git(root, "status", "--porcelain") == ""
    assert (root / ".sharin" / "journal.sqlite").exists()  # the history stays
    assert "finished" in cli("runs", root).stdout
    assert "no component 'zzz'" in cli("clean", root, "zzz", code=2).stderr


def test_runs(cli: Cli, project: Project) -> None:
    root = project.root
    assert "no runs yet" in cli("runs", root).stdout
    sharin.add_task(project, "a", "[ -e ../go ]")
    head = git(root, "rev-parse", "HEAD").strip()
    cli("run", root, code=1)
    (root / "go").touch()
    cli("run", root, "--restart")
    out = cli("runs", root).stdout
    rows = [line for line in out.splitlines() if re.match(r"│ \d", line)]
    assert len(rows) == 2
    assert re.search(
        r"│ 1 +│ failed +│ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d │ [\d.]+s +│ " + head[:10], rows[0]
    )
    assert re.search(r"│ 2 +│ finished ", rows[1])


def test_add_writes_the_script_of_step_and_bulk_job_tasks(
    cli: Cli, project: sharin.Project
) -> None:
    cli("add", project.root, "stepjob", "sj")
    cli("add", project.root, "stepjobTask", "s0", "--parent", "sj", "--script-text", "echo 0")
    cli("add", project.root, "bulkjobTask", "b", "--script-text", "echo $PJM_BULKNUM")
    assert (project.root / "sj" / "s0" / "run.sh").read_text() == "#!/bin/sh\necho 0\n"
    assert os.access(project.root / "b" / "run.sh", os.X_OK)
    result = cli("add", project.root, "workflow", "w", "--script-text", "x", code=2)
    assert "stepjobTask" in result.stderr
