"""Project edit methods: the edit lock, disconnect, remove, cycles, WHEEL's fields, names."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sharin
from sharin import Component, Project
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


# ---------------------------------------------------------------------- a failed add
@pytest.mark.parametrize(
    ("failing", "batched"),
    [
        ("component file", False),
        ("component file", True),
        ("script", False),
        ("script", True),
        ("staging", False),  # in a batch, staging is done when the batch ends
    ],
)
def test_an_add_that_fails_half_way_leaves_the_project_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, batched: bool
) -> None:
    from sharin.model import _git
    from sharin.model import _project as project_module

    p = sharin.new_project(tmp_path / "demo")
    wf = sharin.add_component(p, "workflow", "wf")
    sharin.add_task(p, "kept", "true", parent=wf)
    sharin.save(p, "before")

    def files() -> dict[str, object]:  # every entry, with its content (not its mtime)
        return {
            k: (v[0], v[-1]) for k, v in tree_snapshot(p.root).items() if not k.startswith(".git")
        }

    before = files()
    real_write = Project.write_component

    def broken_write(self: Project, c: object, *a: object, **k: object) -> None:
        if getattr(c, "name", None) == "new":
            raise OSError(28, "No space left on device")
        real_write(self, c, *a, **k)  # type: ignore[arg-type]

    def broken_add(root: Path, paths: list[Path]) -> None:
        raise sharin.ProjectError("`git add` failed: fatal: index.lock exists", path=root)

    def broken_script(directory: Path, name: str, text: str) -> None:
        (directory / name).write_text(text[:3])  # half of it written, then the disk is full
        raise OSError(28, "No space left on device")

    if failing == "component file":
        monkeypatch.setattr(Project, "write_component", broken_write)
    elif failing == "staging":
        monkeypatch.setattr(_git, "add", broken_add)
    else:
        monkeypatch.setattr(project_module, "_write_script", broken_script)
    with pytest.raises((OSError, sharin.ProjectError)):
        if batched:
            with p.batch():
                sharin.add_task(p, "new", "true", parent=wf)
        else:
            sharin.add_task(p, "new", "true", parent=wf)
    monkeypatch.undo()
    assert files() == before
    assert sharin.model.git.unsaved(p.root, ".") == {}  # nothing left staged either
    assert [c.name for c in wf.children] == ["kept"]
    # and the same task can be added once what failed is gone
    sharin.add_task(p, "new", "true", parent=wf)
    assert sorted(c.rel for c in Project.open(p.root).components()) == ["wf", "wf/kept", "wf/new"]


_EDITS = {
    "connect": lambda p, a, b: p.connect(a, b),
    "connect_file": lambda p, a, b: p.connect_file(a, "out.txt", b, "in.txt"),
    "disconnect": lambda p, a, b: p.disconnect(a, b),
    "disconnect_file": lambda p, a, b: p.disconnect_file(a, "o", b, "i"),
    "set_property": lambda p, a, b: p.set_property(a, "retry", 3),
    "rename": lambda p, a, b: p.rename(a, "renamed"),
}


@pytest.mark.parametrize("edit", sorted(_EDITS))
@pytest.mark.parametrize("failing", ["the second file", "the project file"])
def test_an_edit_that_fails_half_way_changes_no_file_and_nothing_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str, failing: str
) -> None:
    p = sharin.new_project(tmp_path / "demo")
    a = sharin.add_task(p, "a", "true")
    b = sharin.add_task(p, "b", "true")
    p.connect(a, b)
    p.connect_file(a, "o", b, "i")
    # a's file as WHEEL might have written it: another layout, kept byte for byte
    a.file.write_text(json.dumps(a.data, indent=4))
    p = Project.open(p.root)
    a, b = p.component("a"), p.component("b")
    if edit == "connect":
        p.disconnect(a, b)
    sharin.save(p, "before")

    def files() -> dict[str, object]:
        return {
            k: (v[0], v[-1]) for k, v in tree_snapshot(p.root).items() if not k.startswith(".git")
        }

    before, memory = files(), [copy.deepcopy(x.data) for x in (a, b)]
    project_data = copy.deepcopy(p.data)
    writes: list[str] = []
    real_write = Project.write_component

    def write(self: Project, c: Component) -> None:
        writes.append(c.name)
        if failing == "the second file" and len(writes) == 2:
            raise OSError(28, "No space left on device")
        real_write(self, c)

    def write_project(self: Project) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Project, "write_component", write)
    if failing == "the project file" or edit in ("set_property", "rename"):
        monkeypatch.setattr(Project, "write_project", write_project)
    with pytest.raises(OSError):
        _EDITS[edit](p, a, b)
    monkeypatch.undo()
    assert files() == before
    assert [x.data for x in (a, b)] == memory and p.data == project_data
    assert (a.name, a.directory, a.rel) == ("a", p.root / "a", "a")
    assert sharin.model.git.unsaved(p.root, ".") == {}
    _EDITS[edit](p, a, b)  # and it can be made once what failed is gone


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edges=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 4), st.booleans()), min_size=1, max_size=12
    )
)
def test_an_edge_is_refused_exactly_when_it_would_close_a_cycle(
    tmp_path_factory: pytest.TempPathFactory, edges: list[tuple[int, int, bool]]
) -> None:
    """Flow and file edges among five siblings (and a workflow around them), against a plain
    reachability check of the edges accepted so far."""
    root = tmp_path_factory.mktemp("cycles")
    p = Project.create(root / "p", git=False)
    wf = p.add_component("workflow", "wf")
    tasks = [p.add_component("task", f"t{i}", wf) for i in range(5)]
    accepted: set[tuple[int, int]] = set()

    def reaches(a: int, b: int) -> bool:
        seen, todo = {a}, [a]
        while todo:
            x = todo.pop()
            for u, v in accepted:
                if u == x and v not in seen:
                    seen.add(v)
                    todo.append(v)
        return b in seen

    for a, b, as_file in edges:
        if a == b:
            continue
        closes = reaches(b, a)
        try:
            if as_file:
                p.connect_file(tasks[a], f"o{b}", tasks[b], f"i{a}")
            else:
                p.connect(tasks[a], tasks[b])
        except sharin.ProjectError as e:
            assert closes and "would make a cycle" in str(e), (a, b, str(e))
            continue
        assert not closes, (a, b)
        accepted.add((a, b))


@pytest.mark.parametrize("name", ["../x.sh", "/etc/x.sh", "sub/x.sh", "cmp.wheel.json", ""])
def test_a_script_named_outside_its_directory_is_refused_and_nothing_is_made(
    tmp_path: Path, name: str
) -> None:
    """Where a script is written, its name is checked again (the API checks it first)."""
    p = sharin.new_project(tmp_path / "demo")

    def files() -> dict[str, object]:  # the user's files (not git's, nor sharin's lock)
        return {
            k: (v[0], v[-1])
            for k, v in tree_snapshot(p.root).items()
            if k.split("/")[0] not in (".git", ".sharin")
        }

    before = files()
    with pytest.raises(sharin.ProjectError, match="file name|WHEEL's own file"):
        p.add_component("task", "a", scripts={name: "true\n"})
    assert files() == before and not (tmp_path / "x.sh").exists()
    assert [c.name for c in p.components()] == []
