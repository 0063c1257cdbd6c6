"""Project edit methods: the edit lock, disconnect, remove, cycles, WHEEL's fields, names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sharin
from sharin import Project
from sharin.model import edit_lock, find_project_root, known_keys

from ..helpers import read_json, tree_snapshot


def test_the_lock_refuses_a_symlinked_sharin_directory(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "demo", git=False)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, p.root / ".sharin")
    with pytest.raises(sharin.ProjectError, match=r"\.sharin: is a symbolic link"):
        p.add_component("task", "a")
    assert list(outside.iterdir()) == []  # nothing written outside the project
    assert not (p.root / "a").exists()


def test_the_lock_is_reentrant_and_released(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "demo", git=False)
    with edit_lock(p.root), edit_lock(p.root):
        p.add_component("task", "a")
    import fcntl

    fd = os.open(p.root / ".sharin" / "engine.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)


def test_a_name_without_the_suffix_finds_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Project.create(tmp_path / "demo", git=False)
    assert find_project_root(tmp_path / "demo") == p.root
    monkeypatch.chdir(tmp_path)
    assert find_project_root("demo") == p.root
    assert Project.open("demo").root == p.root
    with pytest.raises(sharin.ProjectError, match="no such project"):
        find_project_root("dem")


def test_disconnecting_next_keeps_previous_while_an_else_edge_remains(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "demo", git=False)
    cond = p.add_component("if", "cond")
    t = p.add_component("task", "t")
    p.connect(cond, t)
    p.connect(cond, t, else_=True)
    p.disconnect(cond, t)
    assert read_json(t.file)["previous"] == [cond.id]
    p.disconnect(cond, t, else_=True)
    assert read_json(t.file)["previous"] == []
    assert read_json(cond.file)["next"] == [] and read_json(cond.file)["else"] == []


def test_remove_takes_the_subtree_and_every_edge(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "demo", git=False)
    a = p.add_component("task", "a")
    wf = p.add_component("workflow", "wf")
    inner = p.add_component("task", "inner", wf)
    p.connect(a, wf)
    p.connect_file(a, "x", wf, "x")
    p.connect_file(wf, "x", inner, "x")
    p.remove_component(wf)
    assert not (p.root / "wf").exists()
    assert read_json(a.file)["next"] == [] and read_json(a.file)["outputFiles"][0]["dst"] == []
    assert inner.id not in p.by_id and wf.id not in p.by_id
    assert read_json(p.root / "cmp.wheel.json")["descendants"] == [a.id]
    assert set(read_json(p.root / "prj.wheel.json")["componentPath"]) == {
        p.root_component.id,
        a.id,
    }
    assert Project.open(p.root).components()[0].rel == "a"


def test_a_cycle_through_a_loop_of_three_is_named(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "demo", git=False)
    a, b, c = (p.add_component("task", n) for n in "abc")
    p.connect(a, b)
    p.connect_file(b, "o", c, "i")
    before = tree_snapshot(p.root)
    with pytest.raises(sharin.ProjectError, match=r"would make a cycle \(c → a → b → c\)"):
        p.connect_file(c, "o", a, "i")
    assert tree_snapshot(p.root) == before


def test_known_keys_follow_wheels_components() -> None:
    assert {"script", "retry", "host", "checker"} <= known_keys("task")
    assert "script" not in known_keys("workflow")
    assert {"start", "end", "step", "keep", "skipCopy"} <= known_keys("for")
    assert {"storagePath", "host"} <= known_keys("storage")
    assert {"parameterFile", "numTotal"} <= known_keys("parameterStudy")
    assert known_keys("nonsense") == frozenset()
