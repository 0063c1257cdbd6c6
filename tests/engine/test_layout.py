"""The run-directory layout (``engine/_layout.py``): the paths the engine writes are the paths
the API reads."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from sharin.engine import TaskSpec, sharin_dir
from sharin.engine._layout import RunLayout, log_stem

_keys = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4).map("/".join)


@given(_keys, _keys)
def test_log_stems_are_flat_and_distinct(a: str, b: str) -> None:
    assert "/" not in log_stem(a)
    assert (log_stem(a) == log_stem(b)) == (a == b)


@given(_keys, st.integers(min_value=1, max_value=10**6))
def test_a_task_writes_its_logs_where_they_are_looked_for(key: str, run: int) -> None:
    layout = RunLayout(Path("/p"))
    spec = TaskSpec(
        key=key, name="t", workdir=Path("/p/t"), script="s.sh", env={}, log_dir=layout.run_dir(run)
    )
    assert layout.task_logs(run, key) == (spec.stdout_path, spec.stderr_path)
    assert spec.rc_path.parent == layout.run_dir(run)


def test_every_file_is_in_the_projects_sharin_dir() -> None:
    layout = RunLayout(Path("/p"))
    assert layout.dir == sharin_dir(Path("/p")) == Path("/p/.sharin")
    for path in (layout.lock, layout.pid, layout.journal, layout.engine_log, layout.files_pending):
        assert path.parent == layout.dir
    assert layout.run_dir(3) == Path("/p/.sharin/runs/3")
    assert layout.trash("1-2").parent == layout.dir
    assert layout.task_logs(3, "wf/a%b") == (
        Path("/p/.sharin/runs/3/wf%2Fa%25b.out"),
        Path("/p/.sharin/runs/3/wf%2Fa%25b.err"),
    )
