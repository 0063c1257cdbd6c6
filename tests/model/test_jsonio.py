"""Component files are written as ``json.dumps(indent=2, ensure_ascii=False)`` writes them,
whichever encoder makes the text."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec  # noqa: F401 - loaded, as in a run: the fast encoder is used
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharin.model._jsonio import dumps_indented, write_json_atomic

_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**63) - 2, max_value=2**64 + 2)
    | st.floats(allow_nan=False)
    | st.text()
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(_VALUES)
def test_the_text_is_what_the_standard_library_writes(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


@pytest.mark.parametrize(
    "value",
    [
        {"x": 1e16, "y": 1e-07, "z": float("inf")},  # msgspec writes 1e16, Python 1e+16
        {"deep": [[[[]]]], "empty": {}, "tuple": (1, 2)},
        {1: "int key", None: "null key"},
        {"big": 2**64, "small": -(2**63) - 1},
        {"surrogate": "\ud800"},
        "just a string",
    ],
)
def test_values_msgspec_would_write_otherwise_take_the_standard_library(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_a_value_json_cannot_write_is_refused_as_json_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for value in ({"p": Path("x")}, {"s": {1, 2}}, [b"bytes"]):
        with pytest.raises(TypeError):
            dumps_indented(value)
        with pytest.raises(TypeError):
            write_json_atomic(tmp_path / "d" / "x.json", value)
    assert not list((tmp_path / "d").iterdir())  # no temporary file left


def test_a_component_file_is_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    data = {"type": "task", "name": "ünï", "pos": {"x": 1, "y": 2}, "env": {}, "next": []}
    write_json_atomic(tmp_path / "cmp.wheel.json", data)
    want = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    assert (tmp_path / "cmp.wheel.json").read_text(encoding="utf-8") == want


def test_msgspec_writes_the_text_once_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = msgspec.json.format

    def counted(buf: bytes, *, indent: int = 2) -> bytes:
        calls.append(indent)
        return real(buf, indent=indent)

    monkeypatch.setattr(msgspec.json, "format", counted)
    data = {"state": "finished", "next": ["a"], "pos": {"x": 1}}
    assert dumps_indented(data) == json.dumps(data, indent=2, ensure_ascii=False)
    assert calls == [2]
    monkeypatch.delitem(sys.modules, "msgspec")  # a command that never loaded it
    assert dumps_indented(data) == json.dumps(data, indent=2, ensure_ascii=False)
    assert calls == [2]
