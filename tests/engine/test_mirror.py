"""The state mirror: only the keys the engine owns are written, into the file as it is now."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.engine import _mirrorwriter
from sharin.engine._mirror import DELETE, StateMirror, update_json
from sharin.model._jsonio import current_umask

values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
objects = st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=6)


@settings(max_examples=80, deadline=None)
@given(before=objects, fields=st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=4))
def test_update_changes_only_the_given_keys(
    tmp_path_factory: Any, before: dict[str, Any], fields: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("m") / "cmp.wheel.json"
    path.write_text(json.dumps(before))
    assert update_json(path, fields)
    assert json.loads(path.read_text()) == {**before, **fields}


def test_delete_removes_keys_and_a_missing_or_broken_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "cmp.wheel.json"
    path.write_text(json.dumps({"state": "running", "initialized": True, "keep": 1}))
    assert update_json(path, {"initialized": DELETE, "currentIndex": DELETE, "state": "done"})
    assert json.loads(path.read_text()) == {"state": "done", "keep": 1}
    assert not update_json(tmp_path / "none" / "cmp.wheel.json", {"state": "x"})
    assert not (tmp_path / "none").exists()
    path.write_text("[1, 2]")
    assert not update_json(path, {"state": "x"})
    assert path.read_text() == "[1, 2]"


def test_a_directory_forgotten_is_not_written_again(tmp_path: Path) -> None:
    trip = tmp_path / "loop_1"
    (trip / "t").mkdir(parents=True)
    (trip / "t" / "cmp.wheel.json").write_text("{}")
    kept = tmp_path / "loop_2"
    kept.mkdir()
    (kept / "cmp.wheel.json").write_text("{}")
    mirror = StateMirror()
    try:
        mirror.set(trip / "t", {"state": "finished"}, "finished\n0\n0\n")
        mirror.set(kept, {"state": "finished"})
        mirror.forget(trip)  # it is about to be removed: a write could race the removal
        mirror.set(trip / "t", {"state": "late"})
    finally:
        mirror.close()
    assert (trip / "t" / "cmp.wheel.json").read_text() == "{}"
    assert not (trip / "t" / "status.wheel.txt").exists()
    shutil.rmtree(trip)
    assert json.loads((kept / "cmp.wheel.json").read_text()) == {"state": "finished"}


def _component(d: Path, data: dict[str, Any]) -> Path:
    d.mkdir(parents=True)
    (d / "cmp.wheel.json").write_text(json.dumps(data))
    return d / "cmp.wheel.json"


def test_a_replaced_component_file_is_written_again_as_another_ones(tmp_path: Path) -> None:
    from sharin.engine._mirror import _Spares, _update, _write_status

    a = _component(tmp_path / "a", {"name": "a"})
    b = _component(tmp_path / "b", {"name": "b"})
    (tmp_path / "c").mkdir()
    spares = _Spares(tmp_path / "spares")
    old_a = a.stat().st_ino
    assert _update(a, {"state": "running"}, spares)
    old_b = b.stat().st_ino
    assert _update(b, {"state": "finished"}, spares)
    assert b.stat().st_ino == old_a  # a's old file, rewritten: no file made
    # a status file is made new (with the mode the umask gives): the spares stay for the
    # component files, whose next replacement takes b's old file
    status = tmp_path / "c" / "status.wheel.txt"
    _write_status(status, "finished\n0\n0\n")
    assert status.stat().st_ino not in (old_a, old_b) and status.read_text() == "finished\n0\n0\n"
    assert status.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert _update(a, {"state": "finished"}, spares)
    assert a.stat().st_ino == old_b
    _write_status(status, "failed\n1\n1\n")  # written into the file there
    assert status.read_text() == "failed\n1\n1\n"
    assert json.loads(a.read_text()) == {"name": "a", "state": "finished"}
    assert json.loads(b.read_text()) == {"name": "b", "state": "finished"}
    assert a.stat().st_mode & 0o777 == b.stat().st_mode & 0o777 == 0o644
    spares.close()
    assert not (tmp_path / "spares").exists()


def test_a_replaced_file_someone_still_reads_or_another_name_has_is_never_rewritten(
    tmp_path: Path,
) -> None:
    from sharin.engine._mirror import _Spares, _update

    a = _component(tmp_path / "a", {"name": "a"})
    b = _component(tmp_path / "b", {"name": "b"})
    c = _component(tmp_path / "c", {"name": "c"})
    d = _component(tmp_path / "d", {"name": "d"})
    spares = _Spares(tmp_path / "spares")
    with a.open("rb") as reader:  # opened before the replacement, read after it
        assert _update(a, {"state": "running"}, spares)
        assert _update(b, {"state": "running"}, spares)
        assert reader.read() == b'{"name": "a"}'
    assert json.loads(b.read_text()) == {"name": "b", "state": "running"}
    copy = tmp_path / "copy.json"
    os.link(c, copy)  # a hard-linked copy of the project has the same file
    assert _update(c, {"state": "running"}, spares)
    assert _update(d, {"state": "running"}, spares)
    assert json.loads(copy.read_text()) == {"name": "c"}
    assert json.loads(c.read_text()) == {"name": "c", "state": "running"}
    assert json.loads(d.read_text()) == {"name": "d", "state": "running"}
    spares.close()


def test_the_mirror_with_spares_writes_every_state_and_leaves_no_spare(tmp_path: Path) -> None:
    dirs = [tmp_path / f"t{i}" for i in range(20)]
    for d in dirs:
        _component(d, {"name": d.name})
    (tmp_path / ".sharin" / "spares").mkdir(parents=True)
    (tmp_path / ".sharin" / "spares" / "1-1").write_text("{}")  # a killed engine's
    mirror = StateMirror(tmp_path / ".sharin" / "spares")
    try:
        for d in dirs:
            mirror.set(d, {"state": "running"})
        mirror.close()  # written
        mirror = StateMirror(tmp_path / ".sharin" / "spares")
        for d in dirs:
            mirror.set(d, {"state": "finished"}, "finished\n0\n0\n")
    finally:
        mirror.close()
    for d in dirs:
        assert json.loads((d / "cmp.wheel.json").read_text()) == {
            "name": d.name,
            "state": "finished",
        }
        assert (d / "status.wheel.txt").read_text() == "finished\n0\n0\n"
        assert sorted(p.name for p in d.iterdir()) == ["cmp.wheel.json", "status.wheel.txt"]
    assert not (tmp_path / ".sharin" / "spares").exists()


@settings(max_examples=40, deadline=None)
@given(
    first=st.text(max_size=300),
    second=st.text(max_size=300),
    mode=st.sampled_from([0o600, 0o644, 0o664]),
)
def test_a_spare_rewritten_holds_exactly_the_new_text_and_mode(
    tmp_path_factory: Any, first: str, second: str, mode: int
) -> None:
    """A spare is written over from its start: longer old content is cut where the new text
    ends, shorter is overwritten whole, and the mode is the replaced file's."""
    from sharin.engine._mirror import _Spares, _update

    tmp = tmp_path_factory.mktemp("s")
    a = _component(tmp / "a", {"name": "a", "pad": first})
    b = _component(tmp / "b", {"name": "b", "pad": second})
    os.chmod(b, mode)
    spares = _Spares(tmp / "spares")
    old_a = a.stat().st_ino
    try:
        assert _update(a, {"state": "running"}, spares)  # a's old file becomes a spare
        assert _update(b, {"state": "finished"}, spares)  # b is written into it
        assert b.stat().st_ino == old_a
        assert json.loads(b.read_bytes()) == {"name": "b", "pad": second, "state": "finished"}
        assert b.read_text().endswith("}\n")
        assert b.stat().st_mode & 0o777 == mode
    finally:
        spares.close()


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities too: json writes them (NaN, Infinity)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(value=_JSON)
def test_the_writer_lays_out_a_file_as_json_dumps_with_an_indent_of_two(value: Any) -> None:
    """The writer's own encoder (json's with an indent is in Python and slow) gives the text
    json.dumps gives, byte for byte, so a component file keeps its layout."""
    assert _mirrorwriter.dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_a_status_file_that_is_a_symbolic_link_is_replaced_not_written_through(
    tmp_path: Path,
) -> None:
    """``status.wheel.txt`` is written in the component's directory, never where a link there
    points: neither a file outside (kept as it was) nor a missing one (not made)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept").write_text("the user's\n")
    for name, target in (("a", outside / "kept"), ("b", outside / "missing")):
        d = tmp_path / "project" / name
        _component(d, {"name": name})
        (d / "status.wheel.txt").symlink_to(target)
        _mirrorwriter.write_state(str(d), {"state": "finished"}, "finished\n0\n0\n", None)
        status = d / "status.wheel.txt"
        assert not status.is_symlink() and status.read_text() == "finished\n0\n0\n"
    assert (outside / "kept").read_text() == "the user's\n"
    assert sorted(p.name for p in outside.iterdir()) == ["kept"]
