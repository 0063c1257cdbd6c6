"""Helper processes start on their compiled bytecode when it is up to date, else on the source."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharin.engine import _launch


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Bytecode kept below ``tmp_path/cache`` and written, whatever the environment says."""
    prefix = tmp_path / "cache"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return prefix


def _helper(path: Path, word: str) -> str:
    path.write_text(f"import sys\nprint({word!r}, sys.argv[1:])\n")
    return str(path)


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_a_helper_runs_on_bytecode_compiled_once(tmp_path: Path, cache: Path) -> None:
    source = _helper(tmp_path / "helper.py", "one")
    argv = _launch.helper_argv(source, "a", "b")
    compiled = importlib.util.cache_from_source(source)
    assert argv == [sys.executable, "-I", "-S", compiled, "a", "b"]
    assert Path(compiled).is_relative_to(cache)
    assert _run(argv) == "one ['a', 'b']"
    made = os.stat(compiled).st_mtime_ns
    assert _launch.helper_argv(source) == [sys.executable, "-I", "-S", compiled]
    assert os.stat(compiled).st_mtime_ns == made  # up to date: not compiled again


def test_bytecode_of_an_older_source_is_never_run(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "helper.py"
    source = _helper(path, "one")
    _launch.helper_argv(source)
    _helper(path, "second")  # another size
    os.utime(path, (1, 1))  # and another time
    assert _run(_launch.helper_argv(source)) == "second []"


def test_bytecode_not_matching_its_header_is_compiled_again(tmp_path: Path, cache: Path) -> None:
    source = _helper(tmp_path / "helper.py", "one")
    compiled = Path(importlib.util.cache_from_source(source))
    compiled.parent.mkdir(parents=True)
    compiled.write_bytes(b"not bytecode at all, but sixteen bytes or more")
    assert _run(_launch.helper_argv(source)) == "one []"
    assert compiled.read_bytes()[:4] == importlib.util.MAGIC_NUMBER


def test_without_writing_bytecode_the_source_runs(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = _helper(tmp_path / "helper.py", "one")
    assert _launch.helper_argv(source) == [sys.executable, "-I", "-S", source]
    assert not cache.exists()


def test_where_bytecode_cannot_be_written_the_source_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(sys, "pycache_prefix", str(blocked))  # a file where a folder must be
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    source = _helper(tmp_path / "helper.py", "one")
    assert _launch.helper_argv(source)[3] == source
    assert _run(_launch.helper_argv(source, "x")) == "one ['x']"
