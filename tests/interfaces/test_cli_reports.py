"""What sharin reports: logs of loop trips, JSON of status, runs and validate, the runs' git."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import sharin
from sharin import Project
from sharin.engine import Journal

from ..conftest import Cli
from ..helpers import edit_json


def test_log_of_a_task_in_a_loop_names_its_trips(cli: Cli, project: Project) -> None:
    root = project.root
    cli("add", root, "for", "loop", "--set", "start=0", "--set", "end=1", "--set", "step=1")
    cli(
        "add",
        root,
        "task",
        "t",
        "--parent",
        "loop",
        "--script-text",
        "echo trip $WHEEL_CURRENT_INDEX",
    )
    cli("add", root, "task", "later", "--script-text", "true", "--set", "disable=true")
    cli("add", root, "workflow", "loop_x")  # a name like a trip's: its task is no trip
    cli("add", root, "task", "t", "--parent", "loop_x", "--script-text", "true")

    assert "no such component or trip 'nope'" in cli("log", root, "nope", code=2).stderr
    assert "has not been run yet" in cli("log", root, "loop/t", code=2).stderr
    cli("run", root)

    for ref in ("loop/t",):
        err = cli("log", root, ref, code=2).stderr
        assert "in run 1 it ran as loop_0/t, loop_1/t" in err, err
        assert f"`sharin log {root} loop_1/t`" in err
    assert cli("log", root, "loop_0/t").stdout == "trip 0\n"
    assert cli("log", root, "loop_1/t").stdout == "trip 1\n"
    assert "later has not run yet in run 1" in cli("log", root, "later", code=2).stderr
    assert cli("log", root, "later", "-f").stdout == ""  # followed: it may be about to start
    assert "there is no run 7" in cli("log", root, "loop_1/t", "--run", "7", code=2).stderr
    assert "no such component or trip 'nope'" in cli("log", root, "nope", code=2).stderr
    assert "only tasks have logs" in cli("log", root, "loop", code=2).stderr


def test_status_json_has_task_times(cli: Cli, project: Project) -> None:
    sharin.add_task(project, "t", "sleep 0.1")
    cli("run", project.root)
    data = json.loads(cli("status", project.root, "--json").stdout)
    for item in (data["run"], *data["tasks"]):
        assert item["started"] <= item["ended"]
        for key in ("started", "ended"):
            moment = datetime.fromisoformat(item[f"{key}_at"])
            assert moment.tzinfo is not None  # an offset, so the moment is unambiguous
            assert abs(moment.timestamp() - item[key]) < 0.001
    [task] = data["tasks"]
    assert task["ended"] - task["started"] >= 0.1


def test_runs_json_and_the_git_column(cli: Cli, project: Project) -> None:
    root = project.root
    assert json.loads(cli("runs", root, "--json").stdout) == []
    sharin.add_task(project, "t", "true")
    sharin.save(project)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    cli("run", root)
    # a run started from unsaved changes, as the engine records it
    j = Journal(root / ".sharin" / "journal.sqlite")
    try:
        j.end_run(j.new_run({"git": head, "dirty": True}), "finished")
        j.end_run(j.new_run({"git": None}), "finished")  # no commit, no flag
    finally:
        j.close()

    rows = [line for line in cli("runs", root).stdout.splitlines() if re.match(r"│ \d", line)]
    assert len(rows) == 3
    assert re.search(rf"│ {head[:10]} +│$", rows[0])
    assert f"{head[:10]}+unsaved" in rows[1]
    assert re.search(r"│ +│$", rows[2])

    runs = json.loads(cli("runs", root, "--json").stdout)
    assert [(r["id"], r["state"], r["git"], r["unsaved"]) for r in runs] == [
        (1, "finished", head, False),
        (2, "finished", head, True),
        (3, "finished", None, False),
    ]
    assert (
        abs(datetime.fromisoformat(runs[0]["started_at"]).timestamp() - runs[0]["started"]) < 1e-3
    )


def test_validate_json_lists_file_field_and_message(cli: Cli, project: Project) -> None:
    root = project.root
    assert json.loads(cli("validate", root, "--json").stdout) == []
    sharin.add_task(project, "a", "true")
    edit_json(root / "a" / "cmp.wheel.json", lambda d: d.update(retry="x", host="nowhere"))
    r = cli("validate", root, "--json", code=2)
    found = json.loads(r.stdout)
    assert {(x["file"], x["field"]) for x in found} == {
        ("a/cmp.wheel.json", "retry"),
        ("a/cmp.wheel.json", "host"),
    }
    assert all(set(x) == {"file", "field", "message"} and x["message"] for x in found)
    assert r.stderr == ""

    (root / "a" / "cmp.wheel.json").write_text("{ not json")
    [broken] = json.loads(cli("validate", root, "--json", code=2).stdout)
    assert broken["file"] == "a/cmp.wheel.json"
    assert broken["message"].startswith("malformed JSON at line 1")

    missing = json.loads(cli("validate", Path(root.parent / "none"), "--json", code=2).stdout)
    assert "no such project directory" in missing[0]["message"]
