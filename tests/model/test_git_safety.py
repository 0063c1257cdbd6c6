"""Nothing a project or an archive carries runs: git hooks, the fsmonitor, filter and diff
drivers that a repository's own configuration defines are never called by sharin."""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

import sharin
from sharin.model import git

from ..conftest import Cli


def _poison(root: Path, marker: Path) -> None:
    """Make every git call that honours the repository's configuration touch ``marker``."""
    touch = f"touch {marker}"
    cfg = root / ".git" / "config"
    cfg.write_text(
        cfg.read_text()
        + f"[core]\n\tfsmonitor = {touch}\n\tpager = {touch}; cat\n"
        + f'[filter "evil"]\n\tclean = {touch}; cat\n\tsmudge = {touch}; cat\n'
        + f'[diff "evil"]\n\ttextconv = {touch}; cat\n'
        + f"[diff]\n\texternal = {touch}\n"
    )
    hooks = root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in (
        "pre-commit",
        "post-commit",
        "commit-msg",
        "prepare-commit-msg",
        "post-checkout",
        "reference-transaction",
        "pre-auto-gc",
        "post-index-change",
    ):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\n{touch}\n")
        hook.chmod(0o755)
    (root / ".gitattributes").write_text("* filter=evil diff=evil\n")


def _poisoned_project(tmp_path: Path, marker: Path) -> sharin.Project:
    p = sharin.new_project(tmp_path / "bad")
    sharin.add_task(p, "a", "echo hi > out.txt", outputs=["out.txt"])
    sharin.save(p)
    _poison(p.root, marker)
    # the poison works with plain git: the test is not vacuous
    subprocess.run(["git", "status"], cwd=p.root, capture_output=True, check=False)
    assert marker.exists()
    marker.unlink()
    return p


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return Path(f"/tmp/pwned-{uuid.uuid4()}")


def test_no_git_call_runs_what_the_repository_configures(
    cli: Cli, tmp_path: Path, marker: Path
) -> None:
    p = _poisoned_project(tmp_path, marker)
    root = p.root
    try:
        cli("validate", root)
        cli("run", root)
        cli("save", root)
        cli("run", root)
        cli("clean", root, "--keep-unsaved")
        cli("set", root, "a", "retry=1")
        cli("revert", root)
        cli("clean", root, "a", "--discard-unsaved")
        cli("copy", root, tmp_path / "copied.wheel")
        cli("export", root, "-o", tmp_path / "out.tgz")
        cli("import", root, tmp_path / "fromdir")
        sharin.open_project(root)
        assert git.is_dirty(root) in (True, False)
        assert not marker.exists()
    finally:
        marker.unlink(missing_ok=True)


def test_an_imported_archive_brings_no_repository_of_its_own(
    cli: Cli, tmp_path: Path, marker: Path
) -> None:
    p = _poisoned_project(tmp_path, marker)
    archive = tmp_path / "WHEEL_project_bad.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(p.root, arcname="bad.wheel")
    try:
        cli("import", archive, tmp_path / "in")
        q = tmp_path / "in" / "bad.wheel"
        config = (q / ".git" / "config").read_text()
        assert "fsmonitor" not in config and "evil" not in config
        assert not [h for h in (q / ".git" / "hooks").glob("*") if h.is_file()]
        cli("run", q)
        cli("save", q)
        cli("clean", q)
        cli("set", q, "a", "retry=1")
        cli("revert", q)
        assert not marker.exists()
        # the history starts with the import: the archive's commits are not kept
        log = subprocess.run(
            ["git", "log", "--format=%s"], cwd=q, capture_output=True, text=True, check=True
        ).stdout
        assert log.splitlines()[-1] == "import project"
    finally:
        marker.unlink(missing_ok=True)


def test_a_git_file_pointing_elsewhere_is_not_a_repository(tmp_path: Path) -> None:
    other = sharin.new_project(tmp_path / "other")
    p = sharin.new_project(tmp_path / "p", "x")
    import shutil

    shutil.rmtree(p.root / ".git")
    (p.root / ".git").write_text(f"gitdir: {other.root / '.git'}\n")
    with pytest.raises(sharin.ProjectError, match="not a git repository of its own"):
        sharin.save(p)
    with pytest.raises(sharin.ProjectError, match="not a git repository of its own"):
        sharin.revert(p)


def test_save_never_commits_the_run_history(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "w")
    sharin.add_task(p, "a", "true")
    (p.root / ".gitignore").unlink()  # as in a project WHEEL made
    assert sharin.run(p).ok
    assert sharin.save(p)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=p.root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "a/run.sh" in tracked and not [t for t in tracked if t.startswith(".sharin")]


def test_export_of_a_project_whose_git_names_another_repository(tmp_path: Path) -> None:
    other = sharin.new_project(tmp_path / "other")
    before = (other.root / ".git" / "config").read_text()
    p = sharin.new_project(tmp_path / "p")
    import shutil

    shutil.rmtree(p.root / ".git")
    (p.root / ".git").write_text(f"gitdir: {other.root / '.git'}\n")
    archive = sharin.export_project(p, tmp_path / "x.tgz")
    with tarfile.open(archive) as tar:
        assert tar.getmember("p.wheel/.git").isdir()
        f = tar.extractfile("p.wheel/prj.wheel.json")
        assert f is not None and json.load(f)["name"] == "p"  # this project, not the other
    assert (other.root / ".git" / "config").read_text() == before
    with pytest.raises(sharin.ProjectError, match="already there"):
        git.init(p.root)
