"""Staging what sharin wrote (``model._git.add``) leaves the index as ``git add`` would: the
files below each directory, ignored ones left out, links as links, names taken as they are."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharin.model import _git


def _index(root: Path) -> list[str]:
    """The index: mode, blob and name of every entry (``git ls-files -s``)."""
    out = subprocess.run(
        ["git", "ls-files", "-s", "-z"], cwd=root, capture_output=True, check=True
    ).stdout
    return sorted(os.fsdecode(x) for x in out.split(b"\0") if x)


def _repo(root: Path) -> Path:
    root.mkdir(parents=True)
    _git.init(root)
    (root / ".gitignore").write_text("*.log\nscratch/\n")
    return root


@pytest.fixture(autouse=True, params=["git add", "listed"])
def _way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test both ways: the few paths given to ``git add``, the many listed by sharin."""
    if request.param == "listed":
        monkeypatch.setattr(_git, "ADD_BY_LIST", 0)


def _both(tmp_path: Path, build: object, paths: list[str]) -> tuple[list[str], list[str]]:
    """``paths`` staged by ``_git.add`` in one copy and by ``git add`` in another."""
    ours, theirs = _repo(tmp_path / "ours"), tmp_path / "theirs"
    assert callable(build)
    build(ours)
    shutil.copytree(ours, theirs, symlinks=True)
    _git.add(ours, [ours / p for p in paths])
    subprocess.run(["git", "--literal-pathspecs", "add", "--", *paths], cwd=theirs, check=True)
    return _index(ours), _index(theirs)


def test_new_components_are_staged_as_git_add_stages_them(tmp_path: Path) -> None:
    def build(root: Path) -> None:
        for name in ("a", "b*", "with space", "new\nline"):
            d = root / name
            (d / "sub").mkdir(parents=True)
            (d / "cmp.wheel.json").write_text("{}\n")
            (d / "run.sh").write_text("true\n")
            (d / "run.sh").chmod(0o755)
            (d / "out.log").write_text("ignored\n")
            (d / "scratch").mkdir()
            (d / "scratch" / "x").write_text("ignored\n")
            (d / "sub" / "deep.txt").write_text("kept\n")
            (d / "link").symlink_to("sub")
            (d / "dangling").symlink_to("nowhere")
        (root / "loose.txt").write_text("a file\n")

    ours, theirs = _both(tmp_path, build, ["a", "b*", "with space", "new\nline", "loose.txt"])
    assert ours == theirs
    assert any(x.endswith("\ta/link") and x.startswith("120000") for x in ours)
    assert not any("out.log" in x or "scratch" in x for x in ours)


def test_a_directory_holding_a_repository_is_left_to_git_add(tmp_path: Path) -> None:
    def build(root: Path) -> None:
        (root / "c").mkdir()
        (root / "c" / "cmp.wheel.json").write_text("{}\n")
        (root / "c" / "inner").mkdir()
        inner = root / "c" / "inner"
        subprocess.run(["git", "init", "-q", str(inner)], check=True)
        (inner / "f").write_text("f\n")
        ident = ["-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(["git", "-C", str(inner), "add", "f"], check=True)
        subprocess.run(["git", *ident, "-C", str(inner), "commit", "-qm", "f"], check=True)

    ours, theirs = _both(tmp_path, build, ["c"])
    assert ours == theirs
    assert any(x.startswith("160000") for x in ours)  # the repository as git records one


def test_an_ignored_file_named_is_left_out_and_the_rest_staged(tmp_path: Path) -> None:
    root = _repo(tmp_path / "p")
    (root / "c").mkdir()
    (root / "c" / "cmp.wheel.json").write_text("{}\n")
    (root / "c" / "run.log").write_text("ignored\n")
    _git.add(root, [root / "c" / "cmp.wheel.json", root / "c" / "run.log"])
    assert [x.split("\t")[1] for x in _index(root)] == ["c/cmp.wheel.json"]


def test_a_task_whose_script_the_project_ignores_is_added(tmp_path: Path) -> None:
    """A project whose ``.gitignore`` has ``*.sh``: the task and its script are made (the
    script not staged: clean never removes a file that was there before a run)."""
    import sharin

    p = sharin.new_project(tmp_path / "ig")
    (p.root / ".gitignore").write_text("*.sh\n")
    t = sharin.add_task(p, "a", "true")
    assert (t.directory / "run.sh").read_text() == "#!/bin/sh\ntrue\n"
    staged = [x.split("\t")[1] for x in _index(p.root)]
    assert [x for x in staged if x.startswith("a/")] == ["a/cmp.wheel.json"]


def test_a_path_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    root = _repo(tmp_path / "p")
    with pytest.raises(_git.ProjectError, match="missing.txt"):
        _git.add(root, [root / "missing.txt"])


_NAME = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda n: n not in (".", "..", ".git") and not n.startswith(".git"))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(st.tuples(_NAME, _NAME), min_size=1, max_size=5, unique_by=lambda x: x[0]))
def test_any_names_are_staged_as_git_add_stages_them(
    tmp_path_factory: pytest.TempPathFactory, names: list[tuple[str, str]]
) -> None:
    tmp = tmp_path_factory.mktemp("names")

    def build(root: Path) -> None:
        for d, f in names:
            (root / d).mkdir(exist_ok=True)
            (root / d / f).write_text(f"{d}/{f}\n")

    ours, theirs = _both(tmp, build, sorted({d for d, _ in names}))
    assert ours == theirs
