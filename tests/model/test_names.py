"""Names in project files stay inside their component: refused at edit, validation and import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sharin
from sharin.model import Project
from sharin.model._paths import Bounds
from sharin.model._validate import name_problems

from ..conftest import Cli
from ..helpers import edit_json, read_json, tree_snapshot


def _demo(tmp_path: Path) -> sharin.Project:
    p = sharin.new_project(tmp_path / "p")
    sharin.add_task(p, "a", "echo hi > x.txt", outputs=["x.txt"])
    sharin.add_task(p, "b", "cat in.txt")
    return p


_BAD_EDGES = [
    ("x.txt:../../../victim.txt", "b/cmp.wheel.json [inputFiles[../../../victim.txt]]"),
    ("x.txt:/tmp/victim.txt", "b/cmp.wheel.json [inputFiles[/tmp/victim.txt]]"),
    ("x.txt:../dir/", "b/cmp.wheel.json [inputFiles[../dir/]]"),
    ("../../secret:in.txt", "a/cmp.wheel.json [outputFiles[../../secret]]"),
    ("/etc/passwd:in.txt", "a/cmp.wheel.json [outputFiles[/etc/passwd]]"),
]


@pytest.mark.parametrize(("edge", "where"), _BAD_EDGES)
def test_connect_refuses_a_file_edge_that_leaves_the_component(
    tmp_path: Path, cli: Cli, edge: str, where: str
) -> None:
    p = _demo(tmp_path)
    before = tree_snapshot(p.root)
    result = cli("connect", p.root, "a", "b", "--file", edge, code=2)
    assert where in result.stderr or where in result.output
    assert "Traceback" not in result.output
    assert tree_snapshot(p.root) == before


def test_globs_and_directories_stay_allowed_in_edges(tmp_path: Path, cli: Cli) -> None:
    p = _demo(tmp_path)
    for edge in ("*.txt:inputs/", "sub/*.dat:data/", "dir/:dir/", "x.txt:sub/in.txt"):
        cli("connect", p.root, "a", "b", "--file", edge)
    problems = sharin.validate(p.root)
    assert not [x for x in problems if "inside" in x.message or "outside" in x.message], problems


def _bad_inputs(p: Project) -> list[dict[str, Any]]:
    a = p.component("a")
    return [{"name": "../victim.txt", "src": [{"srcNode": a.id, "srcName": "x.txt"}]}]


def test_set_refuses_bad_names(tmp_path: Path, cli: Cli) -> None:
    p = _demo(tmp_path)
    before = tree_snapshot(p.root)
    value = json.dumps(_bad_inputs(p))
    result = cli("set", p.root, "b", f"inputFiles={value}", code=2)
    assert "b/cmp.wheel.json [inputFiles[../victim.txt]]" in result.output
    for key, value in [
        ("script", "/abs/path.sh"),
        ("script", "../../outside.sh"),
        ("retryCondition", "../../check.sh"),
        ("include", '["../*"]'),
        ("exclude", '["/etc/*"]'),
        ("outputFiles", '[{"name": "/etc/shadow", "dst": []}]'),
    ]:
        result = cli("set", p.root, "b", f"{key}={value}", code=2)
        assert f"b/cmp.wheel.json [{key}" in result.output, result.output
    assert tree_snapshot(p.root) == before
    cli("set", p.root, "b", "script=other.sh")  # a safe name that does not exist yet is fine


def test_set_refuses_a_script_linked_out_of_the_project(tmp_path: Path, cli: Cli) -> None:
    p = _demo(tmp_path)
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\necho pwned\n")
    (p.root / "b" / "link.sh").symlink_to(outside)
    result = cli("set", p.root, "b", "script=link.sh", code=2)
    assert "b/cmp.wheel.json [script]" in result.output
    assert "outside the project" in result.output


def test_add_refuses_a_script_outside(tmp_path: Path, cli: Cli) -> None:
    p = _demo(tmp_path)
    victim = tmp_path / "outside.sh"
    for script in ("../../outside.sh", str(victim)):
        result = cli("add", p.root, "task", "c", "--script", script, "--script-text", "x", code=2)
        assert "c/cmp.wheel.json [script]" in result.output
    assert not victim.exists()
    assert not (p.root / "c").exists()


def _break_b(p: Project, change: Any) -> None:
    edit_json(p.root / "b" / "cmp.wheel.json", change)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (lambda d: d.__setitem__("script", "/abs/path"), "script", "absolute"),
        (lambda d: d.__setitem__("script", "../../outside.sh"), "script", "'..'"),
        (
            lambda d: d["inputFiles"][0].__setitem__("name", "../../../victim.txt"),
            "inputFiles[../../../victim.txt]",
            "'..'",
        ),
        (
            lambda d: d["inputFiles"][0]["src"][0].__setitem__("srcName", "/etc/pa*"),
            "inputFiles[in.txt]",
            "absolute",
        ),
        (
            lambda d: d.__setitem__("retryCondition", "../../outside.sh"),
            "retryCondition",
            "'..'",
        ),
        (lambda d: d.__setitem__("include", ["../up/*"]), "include", "'..'"),
        (lambda d: d.__setitem__("exclude", "a, /b"), "exclude", "absolute"),
    ],
)
def test_validate_names_the_file_and_field(
    tmp_path: Path, change: Any, field: str, fragment: str
) -> None:
    p = _demo(tmp_path)
    sharin.connect_files(p, "a", "x.txt", "b", "in.txt")
    (tmp_path / "outside.sh").write_text("#!/bin/sh\nexit 0\n")
    _break_b(p, change)
    before = tree_snapshot(p.root)
    problems = sharin.validate(p.root)
    hits = [
        x
        for x in problems
        if x.file == "b/cmp.wheel.json" and x.field == field and fragment in x.message
    ]
    assert hits, problems
    assert tree_snapshot(p.root) == before
    with pytest.raises(sharin.ValidationError):
        sharin.run(p.root)
    assert (tmp_path / "outside.sh").read_text() == "#!/bin/sh\nexit 0\n"


def test_validate_refuses_a_condition_script_outside(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "p")
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\ntouch pwned\n")
    for name, cond in (("i1", "../../outside.sh"), ("i2", str(outside)), ("i3", "link.sh")):
        sharin.add_component(p, "if", name)
        (p.root / name / "link.sh").symlink_to(outside)
        edit_json(p.root / name / "cmp.wheel.json", lambda d, c=cond: d.__setitem__("condition", c))
    problems = [x for x in sharin.validate(p.root) if x.field == "condition"]
    assert sorted(x.file for x in problems) == [f"i{n}/cmp.wheel.json" for n in (1, 2, 3)]
    assert all("expression" not in x.message for x in problems), problems


def test_a_script_symlink_inside_the_project_is_fine(tmp_path: Path) -> None:
    p = _demo(tmp_path)
    (p.root / "common.sh").write_text("#!/bin/sh\necho common\n")
    (p.root / "b" / "link.sh").symlink_to("../common.sh")
    sharin.set_property(p, "b", "script", "link.sh")
    assert sharin.validate(p.root) == []


def test_import_refuses_a_project_whose_edges_leave_it(tmp_path: Path) -> None:
    p = _demo(tmp_path)
    sharin.connect_files(p, "a", "x.txt", "b", "in.txt")
    _break_b(p, lambda d: d["inputFiles"][0].__setitem__("name", "../../../victim.txt"))
    edit_json(p.root / "a" / "cmp.wheel.json", lambda d: d.__setitem__("script", "/bin/sh"))
    sharin.save(p, "hand-edited")
    archive = sharin.export_project(p, tmp_path / "out")
    for source in (archive, p.root):
        with pytest.raises(sharin.ValidationError) as err:
            sharin.import_project(source, tmp_path / "imported")
        text = str(err.value)
        assert "b/cmp.wheel.json [inputFiles[../../../victim.txt]]" in text
        assert "a/cmp.wheel.json [script]" in text
        assert not (tmp_path / "imported").exists()


def test_import_through_the_cli_exits_2(tmp_path: Path, cli: Cli) -> None:
    p = _demo(tmp_path)
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.__setitem__("script", "../../x.sh"))
    result = cli("import", p.root, tmp_path / "imported", code=2)
    assert "b/cmp.wheel.json [script]" in result.output
    assert "Traceback" not in result.output
    assert read_json(p.root / "b" / "cmp.wheel.json")["script"] == "../../x.sh"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Project:
    p = Project.create(tmp_path_factory.mktemp("names") / "p", git=False)
    sharin.add_task(p, "a", "true")
    sharin.add_task(p, "b", "true")
    return p


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.one_of(
        st.text(max_size=30),
        st.lists(st.sampled_from(["..", ".", "", "x", "*.txt", "\\", "/"]), max_size=5).map(
            "/".join
        ),
    ),
    key=st.sampled_from(["script", "retryCondition", "include", "inputFiles"]),
)
def test_an_edit_is_refused_with_a_project_error_or_leaves_no_unsafe_name(
    pair: Project, name: str, key: str
) -> None:
    b = pair.component("b")
    a = pair.component("a")
    value: Any = name
    if key == "include":
        value = [name]
    elif key == "inputFiles":
        value = [{"name": name, "src": [{"srcNode": a.id, "srcName": name}]}]
    try:
        pair.set_property(b, key, value)
    except sharin.ProjectError as e:
        assert str(e) and "Traceback" not in str(e)
        return
    assert name_problems(b, Bounds.of(pair.root)) == []


def test_an_input_may_not_replace_the_components_own_files(tmp_path: Path) -> None:
    p = _demo(tmp_path)
    for name in ("run.sh", "cmp.wheel.json", "status.wheel.txt"):
        with pytest.raises(sharin.ProjectError, match="the component's own file"):
            sharin.set_property(p, "b", "inputFiles", [{"name": name, "src": []}])
