"""``Project.open(path, cached=True)``: a process-wide cache that reads nothing again while the
project's files and directories keep their stamps, and sees every change made by hand or
through the API.

The cache keeps only projects whose files were last modified more than two seconds before they
were read (a file changed again within its file system's timestamp granularity could keep its
mtime), so the tests set the project's mtimes back a minute first, as for a project that was
last edited a while ago.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sharin
from sharin.model import Project
from sharin.model import _project as project_module


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    project_module._cache.clear()
    yield
    project_module._cache.clear()


def age(root: Path, seconds: float = 60.0) -> None:
    """Set the mtime of every file and directory of the project ``seconds`` back."""
    t = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            os.utime(Path(dirpath) / name, (t, t))
        os.utime(dirpath, (t, t))


@pytest.fixture
def aged(tmp_path: Path) -> Project:
    """A workflow ``wf`` holding a task ``inner``, and a task ``a``, last changed a minute ago."""
    p = sharin.new_project(tmp_path / "c")
    sharin.add_task(p, "a", "echo a > out.txt", outputs=["out.txt"])
    wf = sharin.add_component(p, "workflow", "wf")
    sharin.add_task(p, "inner", "true", parent=wf)
    age(p.root)
    return p


def test_a_second_open_is_served_from_the_cache(aged: Project) -> None:
    first = Project.open(aged.root, cached=True)
    assert aged.root in project_module._cache
    second = Project.open(aged.root, cached=True)
    assert second is not first
    assert [c.rel for c in second.components()] == ["a", "wf", "wf/inner"]
    assert second.component("wf/inner").parent is second.component("wf")
    assert second.name == first.name and second.data == first.data


def test_an_edit_of_the_project_returned_does_not_reach_the_cache(aged: Project) -> None:
    first = Project.open(aged.root, cached=True)
    first.component("a").data["script"] = "changed.sh"
    first.component("wf").children.clear()
    first.data["name"] = "other"
    first.load_problems.append(sharin.Problem("x", "y", "z"))
    again = Project.open(aged.root, cached=True)
    assert again.component("a").data["script"] == "run.sh"
    assert [c.rel for c in again.components()] == ["a", "wf", "wf/inner"]
    assert again.data["name"] == "c" and again.load_problems == []


def test_a_hand_edit_of_a_cmp_wheel_json_is_seen(aged: Project) -> None:
    Project.open(aged.root, cached=True)
    f = aged.root / "wf" / "inner" / "cmp.wheel.json"
    data = json.loads(f.read_text())
    data["description"] = "by hand"
    f.write_text(json.dumps(data))
    got = Project.open(aged.root, cached=True).component("wf/inner")
    assert got.data["description"] == "by hand"


def test_an_edit_that_keeps_size_and_mtime_is_seen(aged: Project) -> None:
    # written in place with the same length and the old mtime put back: the inode's change
    # time still tells
    Project.open(aged.root, cached=True)
    f = aged.root / "a" / "cmp.wheel.json"
    before = f.stat()
    text = f.read_text()
    assert '"run.sh"' in text
    with f.open("r+") as fh:
        fh.write(text.replace('"run.sh"', '"xyz.sh"'))
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert f.stat().st_size == before.st_size and f.stat().st_mtime_ns == before.st_mtime_ns
    assert Project.open(aged.root, cached=True).component("a").data["script"] == "xyz.sh"


def test_a_component_renamed_by_hand_is_seen(aged: Project) -> None:
    Project.open(aged.root, cached=True)
    os.rename(aged.root / "wf" / "inner", aged.root / "wf" / "moved")
    p = Project.open(aged.root, cached=True)
    assert [c.rel for c in p.components()] == ["a", "wf", "wf/moved"]


def test_a_component_added_or_removed_by_hand_is_seen(aged: Project) -> None:
    Project.open(aged.root, cached=True)
    shutil.rmtree(aged.root / "a")
    assert [c.rel for c in Project.open(aged.root, cached=True).components()] == [
        "wf",
        "wf/inner",
    ]
    age(aged.root)
    Project.open(aged.root, cached=True)
    # a directory that was not a component becomes one when its cmp.wheel.json appears
    (aged.root / "b").mkdir()
    age(aged.root)
    assert [c.rel for c in Project.open(aged.root, cached=True).components()] == [
        "wf",
        "wf/inner",
    ]
    inner = json.loads((aged.root / "wf" / "inner" / "cmp.wheel.json").read_text())
    inner.update(name="b", parent=json.loads((aged.root / "cmp.wheel.json").read_text())["ID"])
    inner["ID"] = "new-id"
    (aged.root / "b" / "cmp.wheel.json").write_text(json.dumps(inner))
    assert "b" in [c.rel for c in Project.open(aged.root, cached=True).components()]


def test_a_component_directory_copied_in_by_hand_is_seen(aged: Project) -> None:
    Project.open(aged.root, cached=True)
    shutil.copytree(aged.root / "wf" / "inner", aged.root / "wf" / "twin")
    twin = aged.root / "wf" / "twin" / "cmp.wheel.json"
    twin.write_text(twin.read_text().replace('"inner"', '"twin"'))
    p = Project.open(aged.root, cached=True)
    assert [c.rel for c in p.components()] == ["a", "wf", "wf/inner", "wf/twin"]


def test_an_edit_through_the_api_is_seen_in_the_same_process(aged: Project) -> None:
    sharin.open_project(aged.root)
    sharin.set_property(aged.root, "a", "description", "through the API")
    assert sharin.open_project(aged.root).component("a").data["description"] == "through the API"
    sharin.set_property(aged.root, "a", "name", "z")
    assert [c.rel for c in sharin.open_project(aged.root).components()] == ["wf", "wf/inner", "z"]


def test_a_project_changed_just_now_is_not_kept(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "fresh")
    Project.open(p.root, cached=True)
    assert p.root not in project_module._cache
    age(p.root)
    Project.open(p.root, cached=True)
    assert p.root in project_module._cache


def test_broken_files_are_reported_the_same_from_the_cache(aged: Project) -> None:
    (aged.root / "a" / "cmp.wheel.json").write_text('{"type": "task", "ID": ')
    (aged.root / "wf" / "inner" / "cmp.wheel.json").write_text(
        (aged.root / "wf" / "inner" / "cmp.wheel.json").read_text().replace('"retry": null', "")
    )
    data = json.loads((aged.root / "wf" / "cmp.wheel.json").read_text())
    data["retryTimes"] = "many"
    (aged.root / "wf" / "cmp.wheel.json").write_text(json.dumps(data))
    age(aged.root)
    read = Project.open(aged.root)
    first = Project.open(aged.root, cached=True)
    cached = Project.open(aged.root, cached=True)
    assert aged.root in project_module._cache
    for p in (first, cached):
        assert p.load_problems == read.load_problems != []
        assert p.unreadable == read.unreadable == {aged.root / "a" / "cmp.wheel.json"}
        assert [c.rel for c in p.components()] == [c.rel for c in read.components()]


#: opens a project three times, the last two through the cache, and prints how many times each
#: open read one of the project's JSON files (counted by the interpreter's audit hook on open)
COUNT_READS = """\
import os, sys, time
from pathlib import Path
root = Path(sys.argv[1])
reads = [0]
def hook(event, args):
    if event == "open" and str(args[0]).endswith(".wheel.json"):
        reads[0] += 1
sys.addaudithook(hook)
from sharin.model import Project
counts = []
for cached in (False, True, True):
    reads[0] = 0
    Project.open(root, cached=cached)
    counts.append(reads[0])
print(counts)
"""


def test_a_hit_reads_no_json_file(aged: Project) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", COUNT_READS, str(aged.root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    plain, miss, hit = json.loads(proc.stdout)
    assert plain == miss == 5  # prj.wheel.json and four cmp.wheel.json
    assert hit == 0


# ---------------------------------------------------------------------- any change, by hand
_NAMES = st.text(alphabet="abcxyz_-0", min_size=1, max_size=6)
_VALUES = st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=8)
_CHANGES = st.lists(
    st.one_of(
        st.tuples(
            st.just("edit"),
            st.integers(0, 9),
            st.sampled_from(["retry", "x", "name", "subComponent"]),
            _VALUES,
        ),
        st.tuples(st.just("rename"), st.integers(0, 9), _NAMES),
        st.tuples(st.just("remove"), st.integers(0, 9)),
        st.tuples(st.just("copy"), st.integers(0, 9), _NAMES),
        st.tuples(st.just("break"), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = sharin.new_project(tmp_path_factory.mktemp("template") / "t")
    sharin.add_task(p, "a", "true")
    wf = sharin.add_component(p, "workflow", "wf")
    sharin.add_task(p, "inner", "true", parent=wf)
    loop = sharin.add_component(p, "for", "loop", parent=wf)
    _instance(loop.directory, "loop_0")
    return p.root


def _instance(template: Path, name: str) -> Path:
    """A copy of the component at ``template`` beside it as a loop's or study's instance."""
    d = template.parent / name
    shutil.copytree(template, d)
    data = json.loads((d / "cmp.wheel.json").read_text())
    data["subComponent"] = True
    (d / "cmp.wheel.json").write_text(json.dumps(data))
    return d


def _change(root: Path, change: tuple[object, ...]) -> None:
    dirs = sorted(d.parent for d in root.rglob("cmp.wheel.json") if d.parent != root)
    if not dirs:
        return
    d = dirs[int(str(change[1])) % len(dirs)]
    f = d / "cmp.wheel.json"
    kind = change[0]
    if kind == "edit":
        try:
            data = json.loads(f.read_text())
        except ValueError:
            data = {}
        data[str(change[2])] = change[3]
        f.write_text(json.dumps(data))
    elif kind == "rename":
        if not (d.parent / str(change[2])).exists():
            os.rename(d, d.parent / str(change[2]))
    elif kind == "remove":
        shutil.rmtree(d)
    elif kind == "copy":
        if not (d.parent / str(change[2])).exists():
            shutil.copytree(d, d.parent / str(change[2]))
    else:
        f.write_text("{ broken")


def _seen(p: Project) -> object:
    return (
        p.data,
        [(c.rel, c.directory, c.data) for c in p.root_component.walk()],
        p.load_problems,
        p.unreadable,
        p.instance_dirs,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=_CHANGES)
def test_after_any_change_by_hand_the_cache_gives_what_the_files_say(
    template: Path, tmp_path_factory: pytest.TempPathFactory, changes: list[tuple[object, ...]]
) -> None:
    root = tmp_path_factory.mktemp("any") / "p.wheel"
    shutil.copytree(template, root, ignore=shutil.ignore_patterns(".git"))
    root = root.resolve()
    for change in changes:
        age(root)
        Project.open(root, cached=True)
        assert root in project_module._cache
        _change(root, change)
        assert _seen(Project.open(root, cached=True)) == _seen(Project.open(root))


def test_a_project_too_large_is_read_every_time(
    aged: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project_module, "_CACHE_PROJECT_BYTES", 1000)
    p = Project.open(aged.root, cached=True)
    assert aged.root not in project_module._cache
    assert [c.rel for c in p.components()] == ["a", "wf", "wf/inner"]


def test_instances_count_for_nothing_in_a_projects_size_and_a_change_in_one_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = sharin.new_project(tmp_path / "s")
    ps = sharin.add_component(p, "parameterStudy", "ps")
    sharin.add_task(p, "t", "true", parent=ps)
    # instances whose files together are far larger than a project the cache may hold
    instances = [_instance(ps.directory, f"ps_K_{k}") for k in range(20)]
    for d in instances:
        f = d / "cmp.wheel.json"
        f.write_text(json.dumps({**json.loads(f.read_text()), "description": "x" * 2000}))
    monkeypatch.setattr(project_module, "_CACHE_PROJECT_BYTES", 10_000)
    age(p.root)
    first = Project.open(p.root, cached=True)
    assert p.root in project_module._cache
    assert project_module._cache[p.root].size < 10_000
    assert sorted(first.instance_dirs) == sorted(instances)
    assert [c.rel for c in first.components()] == ["ps", "ps/t"]
    # an instance made a component by hand: the stamp of its file tells, and it is read
    f = instances[3] / "cmp.wheel.json"
    data = json.loads(f.read_text())
    data.update(subComponent=False, name="ps_K_3", parent=ps.id)
    f.write_text(json.dumps(data))
    got = Project.open(p.root, cached=True)
    assert _seen(got) == _seen(Project.open(p.root))
    assert "ps_K_3" in [c.rel for c in got.components()]


def test_the_cache_keeps_the_projects_used_last(
    aged: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = sharin.new_project(tmp_path / "other")
    age(other.root)
    monkeypatch.setattr(project_module, "_CACHE_ENTRIES", 1)
    Project.open(aged.root, cached=True)
    Project.open(other.root, cached=True)
    assert list(project_module._cache) == [other.root]
    Project.open(aged.root, cached=True)
    assert list(project_module._cache) == [aged.root]
    size = project_module._cache[aged.root].size
    monkeypatch.setattr(project_module, "_CACHE_ENTRIES", 2)
    monkeypatch.setattr(project_module, "_CACHE_TOTAL_BYTES", size + 1)
    Project.open(other.root, cached=True)  # together they exceed the bytes the cache may hold
    assert list(project_module._cache) == [other.root]


def test_find_project_root_of_an_unknown_users_home_or_a_nul_is_a_clear_error() -> None:
    from sharin.errors import ProjectError
    from sharin.model import find_project_root

    for bad in ("~nosuchuser-sharin/x", "a\0b"):
        with pytest.raises(ProjectError):
            find_project_root(bad)
