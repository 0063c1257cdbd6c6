"""The fast real path below a project directory gives what ``os.path.realpath`` gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharin.engine import TaskSpec
from sharin.errors import ExecutorError
from sharin.executors import LocalExecutor
from sharin.executors.local import task_script
from sharin.model._paths import Bounds, UnsafePathError, check_real, real_path_below


def _tree(tmp: Path) -> Path:
    """A project reached through a link, with links inside it: to a sibling, upwards, out of
    the project, dangling, in a loop, and a file where a directory might be."""
    real = tmp / "real"
    (real / "a" / "b").mkdir(parents=True, exist_ok=True)
    (real / "a" / "f").write_text("x")
    outside = tmp / "outside"
    outside.mkdir(exist_ok=True)
    links = {
        real / "a" / "to_b": "b",
        real / "a" / "up": "..",
        real / "a" / "out": str(outside),
        real / "a" / "dangling": "nowhere",
        real / "a" / "loop": "loop",
        real / "abs_in": str(real / "a"),
        tmp / "proj": "real",
    }
    for link, target in links.items():
        if not os.path.lexists(link):
            link.symlink_to(target)
    return tmp / "proj"


_PART = st.sampled_from(
    ["a", "b", "f", "to_b", "up", "out", "dangling", "loop", "abs_in", "new", ".", "..", ""]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(parts=st.lists(_PART, min_size=1, max_size=5), via=st.booleans())
def test_real_path_below_is_realpath(tmp_path: Path, parts: list[str], via: bool) -> None:
    top = _tree(tmp_path)
    given_top = str(top) if via else str(tmp_path / "real")
    path = given_top + "/" + "/".join(parts)
    assert real_path_below(given_top, os.path.realpath(given_top), path) == os.path.realpath(path)


def test_a_path_not_below_the_top_is_resolved_in_full(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    other = str(tmp_path / "outside")
    assert real_path_below(str(top), os.path.realpath(top), other) == os.path.realpath(other)


def test_bounds_through_a_linked_project_still_refuse_a_link_out(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    bounds = Bounds.of(top)
    assert bounds.root == str(tmp_path / "real")
    assert check_real(top / "a" / "to_b", bounds) == str(tmp_path / "real" / "a" / "b")
    with pytest.raises(UnsafePathError, match="outside the project"):
        check_real(top / "a" / "out" / "x", bounds)
    with pytest.raises(UnsafePathError, match="outside the project"):
        check_real(top / "a" / "up" / ".." / "outside", bounds)


def test_the_executor_checks_each_script_with_its_root_cached(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    (top / "prj.wheel.json").write_text("{}")
    roots: dict[Path, Bounds] = {}

    def spec(workdir: Path, script: str) -> TaskSpec:
        return TaskSpec(
            key="t",
            name="t",
            workdir=workdir,
            script=script,
            env={},
            log_dir=tmp_path,
            project_root=top,
        )

    (top / "a" / "b" / "run.sh").write_text("true\n")
    (tmp_path / "outside" / "evil.sh").write_text("true\n")
    (top / "a" / "b" / "evil.sh").symlink_to(tmp_path / "outside" / "evil.sh")
    ok = task_script(spec(top / "a" / "b", "run.sh"), roots)
    assert ok == tmp_path / "real" / "a" / "b" / "run.sh" and list(roots) == [top]
    # the second task is checked as strictly as the first: its link out is refused
    with pytest.raises(ExecutorError, match="outside the project"):
        task_script(spec(top / "a" / "b", "evil.sh"), roots)
    with pytest.raises(ExecutorError, match="outside the project"):
        task_script(spec(top / "a" / "out", "evil.sh"), roots)
    assert LocalExecutor()._roots == {}
