"""The one place that decides whether a name from a project file stays inside: ``_paths``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sharin.errors import ProjectError, SharinError
from sharin.model._paramstudy import _not_utf8
from sharin.model._paths import (
    NAME_MAX,
    Bounds,
    UnsafePathError,
    condition_script,
    find_root,
    glob_inside,
    is_inside,
    name_problem,
    resolve_inside,
)


@pytest.mark.parametrize(
    "name",
    ["run.sh", "sub/run.sh", "./run.sh", "*.txt", "sub/*.dat", "dir/", "a b.txt", "{{ x }}.in"],
)
def test_relative_names_and_globs_are_accepted(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../victim.txt", "'..'"),
        ("../../../victim.txt", "'..'"),
        ("../dir/", "'..'"),
        ("sub/../../x", "'..'"),
        ("..\\..\\x", "'..'"),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share", "absolute"),
        ("C:\\x", "absolute"),
        ("a\0b", "NUL"),
        ("x" * (NAME_MAX + 1), "longer than"),
        ("a/" * 600, "bytes long"),
        ("\ud800", "cannot be part of a file name"),
        ("", "empty"),
    ],
)
def test_unsafe_names_get_a_message(name: str, fragment: str) -> None:
    problem = name_problem(name)
    assert problem is not None and fragment in problem


def test_a_name_that_is_not_text_gets_a_message() -> None:
    assert name_problem(3) == "is not a file name (it must be text)"
    assert name_problem(None) is not None
    assert name_problem("", empty_ok=True) is None


def test_resolve_inside_refuses_a_link_that_leaves_the_project(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "a" / "link.txt").symlink_to(outside)
    (root / "a" / "up").symlink_to(tmp_path)
    (root / "a" / "ok.txt").symlink_to("../shared.txt")
    bounds = Bounds.of(root)
    with pytest.raises(UnsafePathError, match="outside the project"):
        resolve_inside(root / "a", "link.txt", bounds)
    with pytest.raises(UnsafePathError, match="outside the project"):
        resolve_inside(root / "a", "up/secret.txt", bounds)
    # a link inside the project is fine, and so is one into a place the user named
    assert resolve_inside(root / "a", "ok.txt", bounds) == root / "a" / "ok.txt"
    named = Bounds.of(root, [tmp_path])
    assert resolve_inside(root / "a", "link.txt", named) == root / "a" / "link.txt"
    with pytest.raises(UnsafePathError):
        resolve_inside(root / "a", "link.txt", named, named_ok=False)
    # the last part of a name sharin replaces is not followed
    assert resolve_inside(root / "a", "link.txt", bounds, follow=False)


def test_glob_matches_through_a_link_out_of_the_project_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    (root / "a" / "sub").mkdir(parents=True)
    (root / "a" / "sub" / "x.dat").write_text("x")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "y.dat").write_text("y")
    (root / "a" / "out").symlink_to(tmp_path / "etc")
    bounds = Bounds.of(root)
    assert glob_inside(root / "a", "sub/*.dat", bounds) == ["sub/x.dat"]
    with pytest.raises(UnsafePathError, match="'out/y.dat' leads through a symbolic link"):
        glob_inside(root / "a", "*/*.dat", bounds)
    with pytest.raises(UnsafePathError, match="'..'"):
        glob_inside(root / "a", "../*", bounds)
    # no glob character matches '..': a pattern cannot climb out without writing it
    assert glob_inside(root / "a", "[.][.]/*", bounds) == []
    assert glob_inside(root / "a", ".*/*", bounds) == []


def test_condition_scripts(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    cdir = root / "if0"
    cdir.mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    (cdir / "check.sh").write_text("exit 0\n")
    (tmp_path / "outside.sh").write_text("exit 0\n")
    (cdir / "evil.sh").symlink_to(tmp_path / "outside.sh")
    assert find_root(cdir) == root
    assert condition_script(cdir, " check.sh ") == cdir / "check.sh"
    assert condition_script(cdir, "WHEEL_CURRENT_INDEX / 2 > 1") is None
    assert condition_script(cdir, "../nothing.sh") is None  # no such file: an expression
    for text in ("../../outside.sh", str(tmp_path / "outside.sh"), "evil.sh"):
        with pytest.raises(UnsafePathError):
            condition_script(cdir, text)


def test_the_error_is_a_project_error() -> None:
    assert issubclass(UnsafePathError, ProjectError)


# ---------------------------------------------------------------------- property


_PARTS = st.sampled_from(["a", "b", "sub", "..", ".", "", "link", "up", "*", "x.txt", "\\", "~"])
_NAMES = st.one_of(
    st.text(max_size=40),
    st.lists(_PARTS, max_size=6).map("/".join),
    st.lists(_PARTS, max_size=6).map(lambda parts: "/" + "/".join(parts)),
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """root/wf/a with links planted: inside, to the parent of the project, to /, a loop."""
    top = tmp_path_factory.mktemp("paths")
    root = top / "p.wheel"
    base = root / "wf" / "a"
    (base / "sub").mkdir(parents=True)
    (base / "x.txt").write_text("x")
    (base / "link").symlink_to("sub")
    (base / "up").symlink_to(top)
    (base / "sub" / "root").symlink_to("/")
    (base / "sub" / "loop").symlink_to("loop")
    (root / "wf" / "sib").mkdir()
    (base / "sib").symlink_to("../sib")
    return root, base


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=_NAMES, follow=st.booleans())
@example(name="up/p.wheel/wf/a/x.txt", follow=True)
@example(name="sub/root/etc/passwd", follow=True)
@example(name="sib/../../..", follow=True)
def test_an_accepted_name_always_resolves_inside(
    tree: tuple[Path, Path], name: str, follow: bool
) -> None:
    root, base = tree
    bounds = Bounds.of(root)
    problem = name_problem(name)
    if problem is None:
        # the text alone stays below the base directory
        assert is_inside(os.path.normpath(base / name), os.path.normpath(base))
    else:
        assert isinstance(problem, str) and problem
    try:
        path = resolve_inside(base, name, bounds, follow=follow)
    except SharinError as e:
        assert isinstance(e, UnsafePathError)
        assert str(e)
        return
    assert problem is None, "a name the checker refuses must not resolve"
    real = os.path.realpath(path) if follow else os.path.realpath(path.parent)
    assert is_inside(real, bounds.root)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=64) | st.text(max_size=20).map(str.encode), chunk=st.integers(1, 8))
def test_utf8_check_of_templates_agrees_with_decoding(
    tree: tuple[Path, Path], data: bytes, chunk: int
) -> None:
    path = tree[1] / "template.bin"
    path.write_bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        assert _not_utf8(path, chunk) == (e.start, data[e.start])
    else:
        assert _not_utf8(path, chunk) is None
