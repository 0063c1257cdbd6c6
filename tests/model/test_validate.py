"""Validation: every rule names the file and the field, and checking never writes a file."""

from __future__ import annotations

from pathlib import Path

import pytest

import sharin
from sharin.model import Project, check, validate

from ..helpers import edit_json, read_json, tree_snapshot, write_json
from ..validation_cases import PROBLEM_CASES, SYNTAX_CASES, Case, build_valid


def test_the_base_project_of_the_cases_is_valid(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    assert sharin.validate(p.root) == []
    validate(Project.open(p.root))  # does not raise


@pytest.mark.parametrize("case", PROBLEM_CASES, ids=lambda c: c.id)
def test_problem_names_file_and_field(case: Case, tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    case.breaks(p)
    before = tree_snapshot(p.root)

    problems = sharin.validate(p.root)  # loads the project from disk, then checks it

    assert tree_snapshot(p.root) == before, "loading or validating changed files on disk"
    hits = [x for x in problems if x.field == case.field and case.fragment in x.message]
    assert hits, f"no {case.field!r} problem with {case.fragment!r} in {problems}"
    problem = hits[0]
    assert problem.file in case.files
    assert str(problem).startswith(f"{problem.file} [{case.field}]: ")
    with pytest.raises(sharin.ValidationError) as err:
        validate(Project.open(p.root), supported_types=sharin.engine.SUPPORTED_TYPES)
    assert f"{problem.file} [{case.field}]" in str(err.value)
    assert problem in err.value.problems
    assert tree_snapshot(p.root) == before


@pytest.mark.parametrize("case", PROBLEM_CASES, ids=lambda c: c.id)
def test_run_refuses_an_invalid_project_before_touching_it(case: Case, tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    case.breaks(p)
    before = tree_snapshot(p.root)
    with pytest.raises(sharin.ValidationError):
        sharin.run(p.root)
    assert tree_snapshot(p.root) == before
    assert not (p.root / ".sharin" / "journal.sqlite").exists()  # no run began


@pytest.mark.parametrize("case", SYNTAX_CASES, ids=lambda c: c.id)
def test_malformed_json_gives_file_line_and_column(case: Case, tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    case.breaks(p)
    before = tree_snapshot(p.root)
    # the project still opens (for status, revert, clean); validate and run name the file
    project = sharin.open_project(p.root)
    assert [(x.file, x.field) for x in project.load_problems] == [(case.files[0], "")]
    for attempt in (sharin.validate, sharin.run):
        try:
            problems = attempt(p.root)
        except sharin.ValidationError as err:
            problems = err.problems
        problem = problems[0]  # first; edges to a component that could not be read follow
        assert problem.file == case.files[0] and problem.field == ""
        assert case.fragment in problem.message
    assert tree_snapshot(p.root) == before


def _flow_edge_by_hand(src: sharin.Component, dst: sharin.Component) -> None:
    edit_json(src.file, lambda d: d["next"].append(dst.id))
    edit_json(dst.file, lambda d: d["previous"].append(src.id))


def test_cycle_message_names_the_components(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    c = sharin.add_task(p, "c", "true")
    d = sharin.add_task(p, "d", "true")
    e = sharin.add_task(p, "e", "true")
    sharin.connect(p, c, d)
    sharin.connect(p, d, e)
    _flow_edge_by_hand(e, c)  # `connect` refuses to close a cycle
    [problem] = [x for x in sharin.validate(p.root) if "cycle" in x.message]
    assert all(name in problem.message for name in ("c", "d", "e"))
    assert "remove one of these edges" in problem.message


def test_a_file_edge_and_a_flow_edge_together_make_a_cycle(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    _flow_edge_by_hand(p.component("b"), p.component("a"))  # a → b by file, b → a by flow
    assert any("dependency cycle" in x.message for x in sharin.validate(p.root))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(script=None, retry="x"))
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.update(host="nowhere"))
    found = {(x.file, x.field) for x in sharin.validate(p.root)}
    assert found == {
        ("a/cmp.wheel.json", "script"),
        ("a/cmp.wheel.json", "retry"),
        ("b/cmp.wheel.json", "host"),
    }


def test_whole_number_retry_values_are_accepted(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    values: list[object] = [0, 3, "2", None, ""]
    for value in values:
        data = read_json(p.root / "a" / "cmp.wheel.json")
        data["retry"] = value
        write_json(p.root / "a" / "cmp.wheel.json", data)
        assert sharin.validate(p.root) == [], value


def test_w22_retry_times_is_checked_too(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(retryTimes="often"))
    [problem] = sharin.validate(p.root)
    assert (problem.file, problem.field) == ("a/cmp.wheel.json", "retryTimes")


def test_host_from_remotehost_json_is_known(tmp_path: Path, config_dir: Path) -> None:
    write_json(
        config_dir / "remotehost.json",
        [{"name": "cluster", "host": "c.example", "transport": "local"}],
    )
    p = build_valid(tmp_path / "demo")
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(host="cluster"))
    assert sharin.validate(p.root) == []
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(host="other"))
    [problem] = sharin.validate(p.root)
    assert problem.field == "host"
    assert "known: cluster, localhost" in problem.message


def test_job_scheduler_on_localhost_is_rejected(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(useJobScheduler=True))
    [problem] = sharin.validate(p.root)
    assert (problem.file, problem.field) == ("a/cmp.wheel.json", "useJobScheduler")


def test_duplicate_id(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    a_id = read_id(p.root / "a")
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.update(ID=a_id))
    problems = [x for x in sharin.validate(p.root) if x.field == "ID"]
    assert [x.file for x in problems] == ["b/cmp.wheel.json"]
    assert "also the ID of a" in problems[0].message


def test_name_must_match_directory_and_be_a_valid_name(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(name="renamed"))
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.update(name="b c"))
    found = {(x.file, x.field): x.message for x in sharin.validate(p.root)}
    assert "the directory is 'a'" in found["a/cmp.wheel.json", "name"]
    assert "only letters" in found["b/cmp.wheel.json", "name"]


def test_wrong_parent_id_is_a_load_problem(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(parent="elsewhere"))
    [problem] = sharin.validate(p.root)
    assert (problem.file, problem.field) == ("a/cmp.wheel.json", "parent")


def test_types_an_engine_cannot_run_are_reported(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    sharin.add_component(p, "viewer", "show")
    problems = check(Project.open(p.root), supported_types={"task"})
    found = {(x.file, x.field): x.message for x in problems}
    assert "not supported by this version" in found["show/cmp.wheel.json", "type"]
    assert check(Project.open(p.root)) == []  # the model itself knows the type


def test_a_stepjob_on_localhost_is_reported(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    sharin.add_component(p, "stepjob", "steps")
    [problem] = sharin.validate(p)
    assert (problem.file, problem.field) == ("steps/cmp.wheel.json", "host")
    assert "step jobs" in problem.message


def test_flow_edges_on_a_viewer_are_rejected(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    v = sharin.add_component(p, "viewer", "show")
    edit_json(v.file, lambda d: d.update(previous=[read_id(p.root / "a")]))
    problems = [x for x in check(Project.open(p.root)) if x.file == "show/cmp.wheel.json"]
    assert [x.field for x in problems] == ["previous"]
    assert "file edges only" in problems[0].message


def test_a_flow_edge_to_a_non_sibling_is_reported(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    wf = sharin.add_component(p, "workflow", "wf")
    inner = sharin.add_task(p, "inner", "true", parent=wf)
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.update(next=[inner.id]))
    [problem] = sharin.validate(p.root)
    assert (problem.file, problem.field) == ("a/cmp.wheel.json", "next")
    assert "wf/inner is not a sibling" in problem.message


def test_a_child_input_forwarded_from_a_missing_parent_input(tmp_path: Path) -> None:
    p = build_valid(tmp_path / "demo")
    wf = sharin.add_component(p, "workflow", "wf")
    sharin.add_task(p, "child", "cat x", parent=wf)
    edit_json(
        p.root / "wf" / "child" / "cmp.wheel.json",
        lambda d: d.update(
            inputFiles=[{"name": "x", "src": [{"srcNode": wf.id, "srcName": "no"}]}]
        ),
    )
    [problem] = sharin.validate(p.root)
    assert (problem.file, problem.field) == ("wf/child/cmp.wheel.json", "inputFiles[x]")
    assert "wf's input 'no', which it does not have" in problem.message


def read_id(directory: Path) -> str:
    return str(read_json(directory / "cmp.wheel.json")["ID"])
