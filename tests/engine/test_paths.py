"""The engine checks names again when it touches the file system, whatever validation said.

Each project here is edited by hand and run by the engine directly, with validation skipped,
so these are the last line: the outside file must stay exactly as it was.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sharin
from sharin import Project
from sharin.engine import Engine, viewer_files
from sharin.engine._files import copy_path
from sharin.errors import RunError
from sharin.executors import ExecutorRegistry
from sharin.model import HostConfig
from sharin.model._paths import Bounds

from ..helpers import edit_json, read_json


def run_unchecked(root: Path, hosts: dict[str, HostConfig] | None = None) -> sharin.RunResult:
    """Run the project with the engine itself: no validation before."""

    async def go() -> sharin.RunResult:
        registry = ExecutorRegistry(hosts)
        try:
            return await Engine(sharin.open_project(root), registry).run()
        finally:
            await registry.close()

    return asyncio.run(asyncio.wait_for(go(), 30))


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    v = tmp_path / "victim.txt"
    v.write_text("precious\n")
    v.chmod(0o600)
    return v


def _state(path: Path) -> tuple[bool, str, int]:
    st = os.lstat(path)
    return path.is_symlink(), path.read_text(), st.st_mode


def _pair(tmp_path: Path) -> Project:
    p = sharin.new_project(tmp_path / "p")
    sharin.add_task(p, "a", "echo hi > x.txt", outputs=["x.txt"])
    sharin.add_task(p, "b", "cat in.txt")
    sharin.connect_files(p, "a", "x.txt", "b", "in.txt")
    return p


def _edit_input(p: Project, change: Callable[[dict[str, Any]], None]) -> None:
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: change(d["inputFiles"][0]))


def _b_failed(result: sharin.RunResult, fragment: str) -> None:
    assert not result.ok
    assert any(f.startswith("b") and fragment in f for f in result.failed), result.failed


@pytest.mark.parametrize("name", ["../../victim.txt", "ABS", "../", "../sub/"])
def test_an_input_name_outside_is_refused_and_nothing_outside_changes(
    tmp_path: Path, victim: Path, name: str
) -> None:
    p = _pair(tmp_path)
    name = str(victim) if name == "ABS" else name
    _edit_input(p, lambda i: i.__setitem__("name", name))
    before = _state(victim)
    listing = sorted(os.listdir(tmp_path))
    result = run_unchecked(p.root)
    _b_failed(result, "nothing was delivered")
    assert _state(victim) == before
    assert sorted(os.listdir(tmp_path)) == listing


@pytest.mark.parametrize("name", ["../../victim.txt", "ABS", "../../vic*"])
def test_a_source_name_outside_is_not_linked_in(tmp_path: Path, victim: Path, name: str) -> None:
    p = _pair(tmp_path)
    name = str(victim) if name == "ABS" else name
    _edit_input(p, lambda i: i["src"][0].__setitem__("srcName", name))
    result = run_unchecked(p.root)
    _b_failed(result, "nothing was delivered")
    assert not os.path.lexists(p.root / "b" / "in.txt")
    assert not [x for x in os.listdir(p.root / "b") if "vic" in x]


def test_a_source_file_linked_out_of_the_project_is_not_delivered(
    tmp_path: Path, victim: Path
) -> None:
    p = _pair(tmp_path)
    edit_json(
        p.root / "a" / "cmp.wheel.json",
        lambda d: d.__setitem__(
            "outputFiles", [{"name": "x.txt", "dst": d["outputFiles"][0]["dst"]}]
        ),
    )
    (p.root / "a" / "run.sh").write_text(f"#!/bin/sh\nln -sf {victim} x.txt\n")
    result = run_unchecked(p.root)
    _b_failed(result, "outside the project")
    assert not os.path.lexists(p.root / "b" / "in.txt")


def test_a_glob_does_not_match_through_a_link_out_of_the_project(
    tmp_path: Path, victim: Path
) -> None:
    p = _pair(tmp_path)
    _edit_input(
        p, lambda i: (i.__setitem__("name", "got/"), i["src"][0].__setitem__("srcName", "*/*.txt"))
    )
    edit_json(
        p.root / "a" / "cmp.wheel.json",
        lambda d: d["outputFiles"][0].__setitem__("name", "*/*.txt"),
    )
    (p.root / "a" / "run.sh").write_text(f"#!/bin/sh\nln -s {tmp_path} out\n")
    result = run_unchecked(p.root)
    _b_failed(result, "outside the project")
    assert not os.path.lexists(p.root / "b" / "got")


def test_a_destination_directory_linked_out_is_not_written_through(
    tmp_path: Path, victim: Path
) -> None:
    p = _pair(tmp_path)
    outdir = tmp_path / "elsewhere"
    outdir.mkdir()
    (p.root / "b" / "sub").symlink_to(outdir)
    _edit_input(p, lambda i: i.__setitem__("name", "sub/in.txt"))
    result = run_unchecked(p.root)
    _b_failed(result, "outside the project")
    assert os.listdir(outdir) == []


def test_a_link_into_a_storage_path_is_delivered(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "data.txt").write_text("kept\n")
    p = _pair(tmp_path)
    sharin.add_component(p, "storage", "keep", storagePath=str(store))
    (p.root / "a" / "run.sh").write_text(f"#!/bin/sh\nln -sf {store / 'data.txt'} x.txt\n")
    result = run_unchecked(p.root)
    assert result.ok, result.failed
    assert (p.root / "b" / "in.txt").read_text() == "kept\n"


def test_a_link_into_a_hosts_path_is_delivered(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "big.dat").write_text("shared\n")
    p = _pair(tmp_path)
    (p.root / "a" / "run.sh").write_text(f"#!/bin/sh\nln -sf {scratch / 'big.dat'} x.txt\n")
    host = HostConfig("cluster", "login", path=str(scratch), raw={"transport": "local"})
    assert not run_unchecked(p.root).ok  # without the host, the link leads outside
    result = run_unchecked(p.root, {"cluster": host})
    assert result.ok, result.failed
    assert (p.root / "b" / "in.txt").read_text() == "shared\n"


# ---------------------------------------------------------------------- scripts


@pytest.fixture
def outside_script(tmp_path: Path) -> Path:
    s = tmp_path / "outside.sh"
    s.write_bytes(b"#!/bin/sh\r\ntouch PWNED\r\n")
    s.chmod(0o644)
    return s


def _script_state(s: Path) -> tuple[bytes, int]:
    return s.read_bytes(), os.stat(s).st_mode


@pytest.mark.parametrize("script", ["../../outside.sh", "ABS", "link.sh"])
def test_a_script_outside_is_neither_rewritten_nor_run(
    tmp_path: Path, outside_script: Path, script: str
) -> None:
    p = sharin.new_project(tmp_path / "p")
    sharin.add_task(p, "b", "true")
    (p.root / "b" / "link.sh").symlink_to(outside_script)
    script = str(outside_script) if script == "ABS" else script
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.__setitem__("script", script))
    before = _script_state(outside_script)
    result = run_unchecked(p.root)
    _b_failed(result, "the script was not run")
    assert _script_state(outside_script) == before
    assert not list(tmp_path.rglob("PWNED"))


def test_a_script_linked_inside_the_project_runs(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "p")
    sharin.add_task(p, "b", "true")
    (p.root / "common.sh").write_bytes(b"#!/bin/sh\r\necho common > out.txt\r\n")
    (p.root / "b" / "link.sh").symlink_to("../common.sh")
    sharin.set_property(p, "b", "script", "link.sh")
    result = sharin.run(p.root)
    assert result.ok, result.failed
    assert (p.root / "b" / "out.txt").read_text() == "common\n"


@pytest.mark.parametrize("key", ["condition", "retryCondition"])
def test_a_condition_script_outside_is_not_run(
    tmp_path: Path, outside_script: Path, key: str
) -> None:
    p = sharin.new_project(tmp_path / "p")
    if key == "condition":
        sharin.add_component(p, "if", "b")
    else:
        sharin.add_task(p, "b", "exit 1", retry=1)
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.__setitem__(key, "../../outside.sh"))
    before = _script_state(outside_script)
    result = run_unchecked(p.root)
    _b_failed(result, "the condition was not run")
    assert _script_state(outside_script) == before
    assert not list(tmp_path.rglob("PWNED"))


def test_a_source_output_name_outside_is_refused(tmp_path: Path, victim: Path) -> None:
    p = sharin.new_project(tmp_path / "p")
    sharin.add_component(p, "source", "b")
    (p.root / "b" / "data.txt").write_text("data")
    edit_json(
        p.root / "b" / "cmp.wheel.json",
        lambda d: d.__setitem__("outputFiles", [{"name": "../../victim.txt", "dst": []}]),
    )
    victim.unlink()
    result = run_unchecked(p.root)
    _b_failed(result, "'..'")
    assert not os.path.lexists(victim)
    assert read_json(p.root / "b" / "cmp.wheel.json")["state"] == "failed"


def test_the_viewer_lists_no_image_linked_from_outside(tmp_path: Path) -> None:
    pics = tmp_path / "pictures"
    pics.mkdir()
    (pics / "private.png").write_bytes(b"png")
    p = sharin.new_project(tmp_path / "p")
    v = sharin.add_component(p, "viewer", "v")
    (v.directory / "mine.png").write_bytes(b"png")
    (v.directory / "theirs.png").symlink_to(pics / "private.png")
    (v.directory / "all").symlink_to(pics)
    assert viewer_files(v.directory) == [v.directory / "mine.png"]


def test_a_glob_delivery_does_not_replace_the_consumers_script_or_json(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "p")
    sharin.add_task(p, "a", "echo hi > x.txt", outputs=["*"])
    sharin.add_task(p, "b", "cat x.txt > seen.txt")
    sharin.connect_files(p, "a", "*", "b", "got/")
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d["inputFiles"][0].__setitem__("name", ""))
    script = (p.root / "b" / "run.sh").read_bytes()
    result = run_unchecked(p.root)
    assert result.ok, result.failed
    b = p.root / "b"
    assert not (b / "run.sh").is_symlink() and (b / "run.sh").read_bytes() == script
    assert not (b / "cmp.wheel.json").is_symlink()
    assert (b / "seen.txt").read_text() == "hi\n"


def test_an_input_named_like_the_script_is_refused(tmp_path: Path) -> None:
    p = _pair(tmp_path)
    _edit_input(p, lambda i: i.__setitem__("name", "run.sh"))
    script = (p.root / "b" / "run.sh").read_bytes()
    result = run_unchecked(p.root)
    _b_failed(result, "is not replaced by a delivery")
    assert (p.root / "b" / "run.sh").read_bytes() == script


def test_an_input_named_dot_delivers_into_the_directory_and_removes_nothing(
    tmp_path: Path,
) -> None:
    p = _pair(tmp_path)
    _edit_input(p, lambda i: i.__setitem__("name", "."))
    (p.root / "b" / "mine.txt").write_text("mine")
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.__setitem__("script", "run.sh"))
    result = run_unchecked(p.root)
    b = p.root / "b"
    assert (b / "mine.txt").read_text() == "mine"
    assert (b / "x.txt").is_symlink()
    assert result.failed == ["b: exit code 1"]  # its script reads in.txt, which it did not get


def test_copying_a_directory_does_not_follow_a_link_out_of_the_bounds(tmp_path: Path) -> None:
    root = tmp_path / "p.wheel"
    src = root / "a" / "data"
    (src / "sub").mkdir(parents=True)
    (src / "ok.txt").write_text("ok")
    (src / "sub" / "up").symlink_to("../ok.txt")  # a link inside is copied as its file
    (tmp_path / "secret.txt").write_text("secret")
    bounds = Bounds.of(root)
    copy_path(src, root / "b" / "ok", bounds=bounds)
    assert (root / "b" / "ok" / "ok.txt").read_text() == "ok"
    (src / "sub" / "key.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(RunError, match="'data/sub/key.txt' leads through a symbolic link"):
        copy_path(src, root / "b" / "copy", merge=True, bounds=bounds)
    assert not (root / "b" / "copy").exists()
    (src / "sub" / "key.txt").unlink()
    (src / "sub" / "loop").symlink_to("..")
    with pytest.raises(RunError, match="would never end"):
        copy_path(src, root / "b" / "copy", bounds=bounds)


def test_a_loop_whose_template_links_out_of_the_project_is_not_copied(
    tmp_path: Path, victim: Path
) -> None:
    """Loop trips are copies of the template with links followed: a link that leads out of
    the project would copy the outside file into every trip, so the loop is refused."""
    p = sharin.new_project(tmp_path / "p")
    sharin.add_component(p, "for", "loop", start=0, end=1, step=1)
    sharin.add_task(p, "t", "true", parent="loop")
    (p.root / "loop" / "t" / "data.txt").symlink_to(victim)
    before = _state(victim)
    r = run_unchecked(p.root)
    assert r.state == "failed"
    assert any("data.txt" in f for f in r.failed)
    assert not list(p.root.glob("loop_*"))  # no trip made
    assert _state(victim) == before
