"""The staging rules (one module for every transport) and the widened transport protocol on
this machine (LocalTransport)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharin.errors import ExecutorError, TransportError
from sharin.executors._staging import (
    SYSTEM_FILES,
    files_to_send,
    glob_match,
    select,
    wanted_patterns,
)
from sharin.executors._transport import LocalTransport

segment = st.text(alphabet="abcxyz._-", min_size=1, max_size=5).filter(lambda s: s not in ".")
rel_path = st.lists(segment, min_size=1, max_size=4).map("/".join)


@given(rel_path)
def test_a_path_matches_itself_and_star_does_not_cross_a_slash(rel: str) -> None:
    assert glob_match(rel, rel)
    assert glob_match(rel, "**")
    assert glob_match(rel, "*") == ("/" not in rel)


@given(rel_path, rel_path)
def test_a_trailing_slash_is_the_directory_content(d: str, name: str) -> None:
    [p] = wanted_patterns([d + "/"])
    assert glob_match(f"{d}/{name.split('/')[0]}", p)
    assert not glob_match(d, p)


@given(st.lists(rel_path, max_size=8), st.lists(rel_path, max_size=3))
def test_exclude_wins_and_system_files_never_come_back(rels: list[str], exclude: list[str]) -> None:
    entries = [(r, False) for r in [*rels, *SYSTEM_FILES]]
    chosen = select(entries, ["**", "*"], exclude)
    assert not set(chosen) & SYSTEM_FILES
    for r in chosen:
        assert not any(glob_match(r, e) for e in exclude)
    for r in rels:
        if r not in SYSTEM_FILES and not any(glob_match(r, e) for e in exclude):
            assert r in chosen


def test_a_matched_directory_comes_back_whole() -> None:
    entries = [("out", True), ("out/a", False), ("out/sub", True), ("out/sub/b", False)]
    assert select(entries, ["out"]) == ["out"]
    assert select(entries, ["out/"]) == ["out/a", "out/sub"]
    assert select(entries, ["**"], ["out/sub*"]) == [
        "out",
    ]


def test_files_to_send_follows_links_and_skips_wheel_files(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    (root / "t" / "d").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    (root / "data").write_text("x")
    (root / "t" / "cmp.wheel.json").write_text("{}")
    (root / "t" / "d" / "cmp.wheel.json").write_text("{}")  # only the top one is WHEEL's
    (root / "t" / "in").symlink_to("../data")
    (root / "t" / "gone").symlink_to("nowhere")
    sent = dict(files_to_send(root / "t"))
    assert set(sent) == {"d/", "d/cmp.wheel.json", "in"}
    assert sent["in"].resolve() == (root / "data").resolve()


def test_files_to_send_refuses_a_link_out_of_the_project(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    (root / "t").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    (tmp_path / "secret").write_text("s")
    (root / "t" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(ExecutorError, match="leak"):
        files_to_send(root / "t")


def test_local_run_with_cwd_env_stdin_and_exit_code(tmp_path: Path) -> None:
    t = LocalTransport()
    r = asyncio.run(
        t.run('cat; echo "$FOO"; pwd; exit 3', cwd=str(tmp_path), env={"FOO": "a b"}, stdin="in\n")
    )
    assert r.returncode == 3
    assert r.stdout.splitlines() == ["in", "a b", str(tmp_path)]
    with pytest.raises(TransportError, match="within"):
        asyncio.run(t.run("sleep 5", timeout=0.2))
    with pytest.raises(TransportError, match="variable name"):
        asyncio.run(t.run("true", env={"A-B": "1"}))


def test_local_stream_files_and_atomic_write(tmp_path: Path) -> None:
    t = LocalTransport()

    async def go() -> list[str]:
        return [line async for line in t.stream("echo a; echo b >&2; echo c")]

    assert asyncio.run(go()) == ["a", "b", "c"]
    f = str(tmp_path / "d" / "f")
    asyncio.run(t.mkdir(str(tmp_path / "d")))
    asyncio.run(t.write_bytes(f, b"one"))
    asyncio.run(t.write_bytes(f, b"two"))
    assert asyncio.run(t.read_bytes(f)) == b"two"
    assert os.listdir(tmp_path / "d") == ["f"]  # no temporary left
    s = asyncio.run(t.stat(f))
    assert s is not None and s.is_file and s.size == 3
    assert asyncio.run(t.stat(str(tmp_path / "none"))) is None
    assert asyncio.run(t.listdir(str(tmp_path))) == ["config", "d"]


def test_a_local_write_failing_half_way_leaves_the_old_file(tmp_path: Path) -> None:
    """The write fails half-way (past a file size limit): the final name keeps its old
    content, never a part of the new one, and the temporary is removed."""
    import resource
    import subprocess
    import sys

    target = tmp_path / "out.dat"
    target.write_bytes(b"old")
    code = (
        "import asyncio, sys\n"
        "from sharin.executors._transport import LocalTransport\n"
        "asyncio.run(LocalTransport().write_bytes(sys.argv[1], b'x' * 1_000_000))\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        preexec_fn=limit,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode != 0 and b"File too large" in proc.stderr
    assert target.read_bytes() == b"old"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.dat.")]
