"""Projects on disk: create, open, edit, copy. Edits keep fields sharin does not know."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import sharin
from sharin import Project, ProjectError
from sharin.model import find_project_root, read_json_object, write_json_atomic

from ..helpers import edit_json, read_json, tree_snapshot

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist_tensorflow.wheel"


def git_log(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "log", "--format=%s"], cwd=root, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_create_writes_wheel_layout(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "demo", "a description")
    root = tmp_path / "demo.wheel"
    assert p.root == root.resolve()
    prj = read_json(root / "prj.wheel.json")
    rc = read_json(root / "cmp.wheel.json")
    assert prj["name"] == "demo" and prj["version"] == 2
    assert prj["description"] == "a description"
    assert prj["state"] == "not-started"
    assert prj["root"] == str(root.resolve())
    assert prj["componentPath"] == {rc["ID"]: "./"}
    assert rc["type"] == "workflow" and rc["parent"] == "this is root" and rc["name"] == "demo"
    assert ".sharin/" in (root / ".gitignore").read_text()
    assert git_log(root) == ["create new project"]
    umask = os.umask(0)
    os.umask(umask)
    for f in ("prj.wheel.json", "cmp.wheel.json"):
        assert stat.S_IMODE((root / f).stat().st_mode) == 0o666 & ~umask, f


def test_create_keeps_a_wheel_suffix(tmp_path: Path) -> None:
    assert sharin.new_project(tmp_path / "x.wheel").root.name == "x.wheel"


@pytest.mark.parametrize("name", ["bad name", "a.b"])
def test_create_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ProjectError, match="only letters"):
        sharin.new_project(tmp_path / name)
    assert list(tmp_path.iterdir()) == [tmp_path / "config"]


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "d.wheel").mkdir()
    (tmp_path / "d.wheel" / "keep.txt").write_text("mine")
    with pytest.raises(ProjectError, match="already exists"):
        sharin.new_project(tmp_path / "d")
    assert [x.name for x in (tmp_path / "d.wheel").iterdir()] == ["keep.txt"]


def test_find_project_root(project: Project, tmp_path: Path) -> None:
    assert find_project_root(project.root / "prj.wheel.json") == project.root
    assert find_project_root(project.root) == project.root
    with pytest.raises(ProjectError, match="no such project directory"):
        find_project_root(tmp_path / "missing")
    with pytest.raises(ProjectError, match="there is no prj.wheel.json"):
        find_project_root(tmp_path / "config")


def test_add_component_writes_its_json_and_the_parents(project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    t = sharin.add_task(project, "t", "echo hi", parent="wf", retry=2)
    assert t.rel == "wf/t" and t.directory == project.root / "wf" / "t"
    data = read_json(project.root / "wf" / "t" / "cmp.wheel.json")
    assert data["parent"] == wf.id and data["retry"] == 2 and data["script"] == "run.sh"
    script = project.root / "wf" / "t" / "run.sh"
    assert script.read_text() == "#!/bin/sh\necho hi\n"
    assert os.access(script, os.X_OK)
    assert read_json(project.root / "wf" / "cmp.wheel.json")["descendants"] == [t.id]
    assert read_json(project.root / "cmp.wheel.json")["descendants"] == [wf.id]
    paths = read_json(project.root / "prj.wheel.json")["componentPath"]
    assert paths[wf.id] == "./wf" and paths[t.id] == "./wf/t"
    reopened = sharin.open_project(project.root)
    assert [c.rel for c in reopened.components()] == ["wf", "wf/t"]


def test_add_component_errors(project: Project) -> None:
    t = sharin.add_task(project, "t", "true")
    with pytest.raises(ProjectError, match="unknown component type 'tsak'; use one of: task"):
        sharin.add_component(project, "tsak", "x")
    with pytest.raises(ProjectError, match="already has a component named 't'"):
        sharin.add_task(project, "t", "true")
    with pytest.raises(ProjectError, match="components can only be added to a workflow"):
        sharin.add_task(project, "u", "true", parent=t)
    with pytest.raises(ProjectError, match="only letters"):
        sharin.add_task(project, "u v", "true")
    (project.root / "stray").mkdir()
    with pytest.raises(ProjectError, match="in the way"):
        sharin.add_task(project, "stray", "true")


def test_connect_flow_edges(project: Project) -> None:
    a = sharin.add_task(project, "a", "true")
    b = sharin.add_task(project, "b", "true")
    sharin.connect(project, "a", "b")
    sharin.connect(project, a, b)  # twice: no duplicate
    assert read_json(a.file)["next"] == [b.id]
    assert read_json(b.file)["previous"] == [a.id]
    with pytest.raises(ProjectError, match="to itself"):
        sharin.connect(project, a, a)
    with pytest.raises(ProjectError, match="not an if component"):
        sharin.connect(project, a, b, else_=True)
    wf = sharin.add_component(project, "workflow", "wf")
    inner = sharin.add_task(project, "inner", "true", parent=wf)
    with pytest.raises(ProjectError, match="different parents"):
        sharin.connect(project, a, inner)
    viewer = sharin.add_component(project, "viewer", "v")
    with pytest.raises(ProjectError, match="file edges only"):
        sharin.connect(project, a, viewer)


def test_connect_else_branch_of_an_if(project: Project) -> None:
    cond = sharin.add_component(project, "if", "cond")
    b = sharin.add_task(project, "b", "true")
    sharin.connect(project, cond, b, else_=True)
    assert read_json(cond.file)["else"] == [b.id] and read_json(cond.file)["next"] == []


def test_connect_file_edges_between_siblings(project: Project) -> None:
    a = sharin.add_task(project, "a", "true")
    b = sharin.add_task(project, "b", "true")
    sharin.connect_files(project, a, "out.txt", b, "in.txt")
    sharin.connect_files(project, a, "out.txt", b, "in.txt")
    assert read_json(a.file)["outputFiles"] == [
        {"name": "out.txt", "dst": [{"dstNode": b.id, "dstName": "in.txt"}]}
    ]
    assert read_json(b.file)["inputFiles"] == [
        {"name": "in.txt", "src": [{"srcNode": a.id, "srcName": "out.txt"}]}
    ]


def test_connect_file_edges_across_a_workflow_boundary(project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    child = sharin.add_task(project, "child", "true", parent=wf)
    sharin.connect_files(project, wf, "in.txt", child, "x.txt")  # parent → child
    sharin.connect_files(project, child, "y.txt", wf, "out.txt")  # child → parent
    wf_data = read_json(wf.file)
    assert wf_data["inputFiles"] == [
        {"name": "in.txt", "src": [], "forwardTo": [{"dstNode": child.id, "dstName": "x.txt"}]}
    ]
    assert wf_data["outputFiles"] == [
        {"name": "out.txt", "dst": [], "origin": [{"srcNode": child.id, "srcName": "y.txt"}]}
    ]
    child_data = read_json(child.file)
    assert child_data["inputFiles"] == [
        {"name": "x.txt", "src": [{"srcNode": wf.id, "srcName": "in.txt"}]}
    ]
    assert child_data["outputFiles"] == [
        {"name": "y.txt", "dst": [{"dstNode": wf.id, "dstName": "out.txt"}]}
    ]
    other = sharin.add_task(project, "other", "true")
    with pytest.raises(ProjectError, match="neither siblings nor parent and child"):
        sharin.connect_files(project, child, "y.txt", other, "z")
    with pytest.raises(ProjectError, match="must be given"):
        sharin.connect_files(project, other, "", child, "z")


def test_set_property_and_protected_keys(project: Project) -> None:
    a = sharin.add_task(project, "a", "true")
    sharin.set_property(project, a, "retry", 3)
    sharin.set_property(project, "a", "env", {"X": "1"})
    data = read_json(a.file)
    assert data["retry"] == 3 and data["env"] == {"X": "1"}
    for key in ("ID", "parent", "type"):
        with pytest.raises(ProjectError, match="cannot be changed"):
            sharin.set_property(project, a, key, "x")
    assert read_json(a.file) == data


def test_rename_moves_the_directory_and_the_paths(project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    t = sharin.add_task(project, "t", "true", parent=wf)
    sharin.set_property(project, wf, "name", "flow")
    assert not (project.root / "wf").exists()
    assert read_json(project.root / "flow" / "cmp.wheel.json")["name"] == "flow"
    assert (project.root / "flow" / "t" / "run.sh").is_file()
    assert t.rel == "flow/t"
    paths = read_json(project.root / "prj.wheel.json")["componentPath"]
    assert paths[t.id] == "./flow/t"
    assert sharin.validate(project.root) == []
    with pytest.raises(ProjectError, match="only letters"):
        sharin.set_property(project, wf, "name", "a b")


def test_remove_component_drops_its_edges(project: Project) -> None:
    a = sharin.add_task(project, "a", "true")
    b = sharin.add_task(project, "b", "true")
    c = sharin.add_task(project, "c", "true")
    sharin.connect(project, a, b)
    sharin.connect_files(project, b, "o", c, "i")
    project.remove_component(b)
    assert not (project.root / "b").exists()
    assert read_json(a.file)["next"] == []
    assert read_json(c.file)["inputFiles"] == [{"name": "i", "src": []}]
    assert b.id not in read_json(project.root / "prj.wheel.json")["componentPath"]
    assert sharin.validate(project.root) == []


def test_component_lookup(project: Project) -> None:
    wf = sharin.add_component(project, "workflow", "wf")
    t1 = sharin.add_task(project, "t", "true")
    t2 = sharin.add_task(project, "t", "true", parent=wf)
    assert project.component("wf/t") is t2
    assert project.component(t1.id) is t1
    assert project.component("t") is t1  # a path wins over a name
    assert project.component("/") is project.root_component
    wf2 = sharin.add_component(project, "workflow", "wf2")
    sharin.add_task(project, "u", "true", parent=wf)
    sharin.add_task(project, "u", "true", parent=wf2)
    reopened = sharin.open_project(project.root)
    with pytest.raises(ProjectError, match=r"name 'u' is ambiguous \(wf/u, wf2/u\); give its path"):
        reopened.component("u")
    with pytest.raises(
        ProjectError, match=r"no component 'nope' in project demo \(components: t, wf, wf/t, "
    ):
        reopened.component("nope")


def test_unknown_fields_survive_edits(project: Project) -> None:
    a = sharin.add_task(project, "a", "true")
    extra = {"myTool": {"keep": [1, 2, {"deep": True}]}, "pos": {"x": 120, "y": 80}}
    edit_json(a.file, lambda d: d.update(extra))
    edit_json(project.root / "prj.wheel.json", lambda d: d.update(exportInfo={"v": 1}))
    p = sharin.open_project(project.root)
    sharin.add_task(p, "b", "true")
    sharin.connect(p, "a", "b")
    sharin.connect_files(p, "a", "o", "b", "i")
    sharin.set_property(p, "a", "retry", 1)
    sharin.set_property(p, "a", "name", "first")
    data = read_json(project.root / "first" / "cmp.wheel.json")
    assert data["myTool"] == extra["myTool"] and data["pos"] == extra["pos"]
    assert read_json(project.root / "prj.wheel.json")["exportInfo"] == {"v": 1}


def test_copy_makes_an_independent_repository(
    tmp_path: Path, make_project: Callable[..., Project]
) -> None:
    src = make_project("orig")
    sharin.add_task(src, "a", "echo hi > out.txt")
    sharin.save(src)
    sharin.run(src)
    assert (src.root / ".sharin").is_dir()
    copy = sharin.copy_project(src.root, tmp_path / "copy.wheel")
    assert copy.root == (tmp_path / "copy.wheel").resolve()
    assert not (copy.root / ".sharin").exists()
    assert read_json(copy.root / "prj.wheel.json")["root"] == str(copy.root)
    assert git_log(copy.root) == ["import project"]
    assert (copy.root / "a" / "run.sh").is_file()
    with pytest.raises(ProjectError, match="already exists"):
        sharin.copy_project(src.root, tmp_path / "copy.wheel")


def test_copy_of_a_wheel_project_leaves_the_original_alone(tmp_path: Path) -> None:
    before = tree_snapshot(EXAMPLE)
    copy = sharin.copy_project(EXAMPLE, tmp_path / "mnist.wheel")
    assert tree_snapshot(EXAMPLE) == before
    assert sorted(c.rel for c in copy.components()) == ["estimate", "train"]
    assert sharin.validate(copy) == []
    assert read_json(copy.root / "prj.wheel.json")["root"] == str(copy.root)


def test_json_write_is_atomic_and_keeps_the_mode(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{}")
    f.chmod(0o640)
    write_json_atomic(f, {"a": "ü"})
    assert f.read_text(encoding="utf-8") == '{\n  "a": "ü"\n}\n'
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert sorted(x.name for x in tmp_path.iterdir()) == ["config", "x.json"]
    with pytest.raises(TypeError):
        write_json_atomic(f, {"a": object()})
    assert read_json_object(f) == {"a": "ü"}  # the old content survives a failed write
    assert sorted(x.name for x in tmp_path.iterdir()) == ["config", "x.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", r"must hold a JSON object \(\{...\}\), not a list"),
        (b"\xff\xfe", r"is not a text file in UTF-8 \(byte 1 is not valid\)"),
        (b'{"a": 1', "malformed JSON at line 1, column 8"),
    ],
)
def test_json_read_errors_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "cmp.wheel.json"
    f.write_bytes(content)
    with pytest.raises(ProjectError, match=message) as err:
        read_json_object(f)
    assert str(err.value).startswith(f"{f}: ")
    with pytest.raises(ProjectError, match="file not found"):
        read_json_object(tmp_path / "missing.json")
