"""What ``sharin validate`` notes about running a project in WHEEL, and the checks of
OPEN-WHEEL 2025's task fields (sourceScript, checker, mandatory)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sharin
from sharin import Project
from sharin.model import HostConfig, task_field_problems, wheel_notes

from ..helpers import edit_json, write_json


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "demo", git=False)


def fields(problems: list[sharin.Problem]) -> list[tuple[str, str]]:
    return [(p.file, p.field) for p in problems]


# ---------------------------------------------------------------- task fields: problems


def test_source_script_and_checker_must_be_files_in_the_task(project: Project) -> None:
    t = sharin.add_task(project, "t", "true", sourceScript="../x.sh", checker="check.sh")
    problems = sharin.validate(project)
    assert fields(problems) == [
        ("t/cmp.wheel.json", "sourceScript"),
        ("t/cmp.wheel.json", "checker"),
    ]
    assert "outside the task's directory" in problems[0].message
    assert "does not exist in t/" in problems[1].message
    (t.directory / "check.sh").write_text("true\n")
    (t.directory / "env.sh").write_text("X=1\n")
    sharin.set_property(project, "t", "sourceScript", "env.sh")
    assert sharin.validate(project) == []


def test_mandatory_must_be_true_or_false(project: Project) -> None:
    a = sharin.add_task(project, "a", "true", outputs=["o"])
    b = sharin.add_task(project, "b", "true")
    sharin.connect_files(project, a, "o", b, "i")
    edit_json(b.file, lambda d: d["inputFiles"][0].update(mandatory="yes"))
    problems = sharin.validate(project.root)
    assert fields(problems) == [("b/cmp.wheel.json", "inputFiles[0].mandatory")]
    assert '"yes"' in problems[0].message and "true or false" in problems[0].message


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()))
def test_any_checker_value_gets_an_answer_and_nothing_outside_is_accepted(
    tmp_path_factory: pytest.TempPathFactory, value: object
) -> None:
    root = tmp_path_factory.mktemp("p")
    p = Project.create(root / "demo", git=False)
    t = p.add_component("task", "t", script="run.sh")
    (t.directory / "run.sh").write_text("true\n")
    (root / "outside.sh").write_text("true\n")
    t.data["checker"] = value
    problems = task_field_problems(t)
    if not problems and value not in (None, ""):
        assert isinstance(value, str)
        target = os.path.realpath(t.directory / value)
        assert target.startswith(str(t.directory.resolve()) + os.sep)
    for problem in problems:
        assert problem.field == "checker" and problem.file == "t/cmp.wheel.json"


# ---------------------------------------------------------------- notes for WHEEL


def ps_into_viewer(project: Project, name: str) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "params": [{"keyword": "K", "list": ["1"]}],
            "gather": [{"srcName": "a.png", "dstName": "results/a{{ K }}.png"}],
        },
    )
    v = sharin.add_component(project, "viewer", "v")
    sharin.connect_files(project, ps, name, v, "./")


def test_a_directory_into_a_viewer_is_noted(project: Project) -> None:
    ps_into_viewer(project, "results")
    notes = wheel_notes(sharin.open_project(project.root))
    assert fields(notes) == [("v/cmp.wheel.json", "inputFiles[0]")]
    assert "EISDIR" in notes[0].message and "results/*.png" in notes[0].message
    assert sharin.validate(project) == []  # a note, not a problem


def test_image_files_into_a_viewer_are_fine(project: Project) -> None:
    ps_into_viewer(project, "results/*.png")
    assert wheel_notes(sharin.open_project(project.root)) == []


def test_an_existing_directory_into_a_viewer_is_noted(project: Project) -> None:
    a = sharin.add_task(project, "a", "true", outputs=["plots"])
    (a.directory / "plots").mkdir()
    v = sharin.add_component(project, "viewer", "v")
    sharin.connect_files(project, a, "plots", v, "plots")
    assert fields(wheel_notes(sharin.open_project(project.root))) == [
        ("v/cmp.wheel.json", "inputFiles[0]")
    ]


def test_sharin_only_host_fields_are_noted(project: Project) -> None:
    sharin.add_task(project, "t", "true", host="fugaku")
    hosts = {
        "fugaku": HostConfig.from_json(
            {"name": "fugaku", "host": "login", "path": "/w", "transport": "local", "numJob": 2}
        ),
        "unused": HostConfig.from_json({"name": "unused", "host": "x", "transport": "local"}),
    }
    notes = wheel_notes(sharin.open_project(project.root), hosts)
    assert fields(notes) == [("remotehost.json", "fugaku.transport")]


def test_html_special_parameter_values_are_noted(project: Project) -> None:
    ps = sharin.add_component(project, "parameterStudy", "ps")
    sharin.add_task(project, "t", "cat in.txt", parent=ps)
    (ps.directory / "t" / "in.txt").write_text("x={{ X }}\n")
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [{"targetNode": ps.children[0].id, "targetName": "in.txt"}],
            "params": [{"keyword": "X", "list": ["a<b", "plain"]}],
        },
    )
    notes = wheel_notes(sharin.open_project(project.root))
    assert fields(notes) == [("ps/parameterSetting.json", "params[0].list")]
    assert "a&lt;b" in notes[0].message


def test_fractional_for_loops_and_local_source_scripts_are_noted(project: Project) -> None:
    sharin.add_component(project, "for", "loop", start=0, end=1, step=0.5)
    t = sharin.add_task(project, "t", "true", sourceScript="env.sh")
    (t.directory / "env.sh").write_text("X=1\n")
    notes = wheel_notes(sharin.open_project(project.root))
    assert sorted(fields(notes)) == [
        ("loop/cmp.wheel.json", "step"),
        ("t/cmp.wheel.json", "sourceScript"),
    ]


def test_validate_prints_notes_and_exits_0_or_2_with_wheel(
    project: Project, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from sharin.interfaces.cli import cli

    ps_into_viewer(project, "results")
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(project.root)])
    assert ok.exit_code == 0, ok.output
    assert "note (WHEEL): v/cmp.wheel.json [inputFiles[0]]" in ok.output
    assert "valid" in ok.output
    strict = runner.invoke(cli, ["validate", "--wheel", str(project.root)])
    assert strict.exit_code == 2
    assert "EISDIR" in strict.output
    assert "Traceback" not in strict.output + json.dumps(ok.output)


def test_a_condition_naming_a_variable_wheel_does_not_define_is_noted(project: Project) -> None:
    sharin.set_property(project, "", "env", {"LIMIT": "3"})
    loop = sharin.add_component(
        project, "while", "w", condition='WHEEL_CURRENT_INDEX < LIMIT && HOME != ""'
    )
    sharin.add_task(
        project, "t", "true", parent=loop, retry=1, retryCondition='WHEEL_TASK_RT == "2"'
    )
    sharin.add_component(project, "if", "check", condition="SHARIN_TASK", env={"X": "1"})
    notes = {p.file: p for p in wheel_notes(sharin.open_project(project.root))}
    assert sorted((p.file, p.field) for p in notes.values()) == [
        ("check/cmp.wheel.json", "condition"),
        ("w/cmp.wheel.json", "condition"),
    ]
    message = notes["w/cmp.wheel.json"].message
    assert "HOME" in message and "LIMIT" not in message
    assert "SHARIN_TASK" in notes["check/cmp.wheel.json"].message
    assert "ReferenceError" in message


def test_a_source_script_on_a_job_is_noted_as_not_sourced_by_sharin_yet(project: Project) -> None:
    t = sharin.add_task(project, "t", "true", sourceScript="env.sh", useJobScheduler=True)
    (t.directory / "env.sh").write_text("X=1\n")
    [note] = wheel_notes(sharin.open_project(project.root))
    assert (note.file, note.field) == ("t/cmp.wheel.json", "sourceScript")
    assert "not source it yet" in note.message
