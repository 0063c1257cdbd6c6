"""The state mirror: only the keys the engine owns are written, into the file as it is now."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.engine._mirror import DELETE, StateMirror, update_json

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
