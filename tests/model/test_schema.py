"""The file schemas: every wrong value gets a message in the user's words; properties are total."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.model import Component, ComponentType
from sharin.model._schema import (
    HostEntry,
    SchedulerEntry,
    check_object,
    check_value,
    component_schema,
    describe,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
TYPES = [t.value for t in ComponentType]
FIELDS = sorted({f.encode_name for t in TYPES for f in msgspec.structs.fields(component_schema(t))})
#: words of Python or msgspec that must never reach a user
FOREIGN = ("None", "True", "False", "NoneType", "Expected", "`", "$.", "utf-8", "dict", "str ")


def _plain(message: str) -> None:
    for word in FOREIGN:
        assert word not in message, message


@settings(max_examples=300, derandomize=True, database=None)
@given(ctype=st.sampled_from(TYPES), key=st.sampled_from(FIELDS), value=JSON)
def test_a_value_of_any_field_is_accepted_or_explained(ctype: str, key: str, value: Any) -> None:
    problem = check_value(ctype, key, value, "x/cmp.wheel.json")
    if problem is None:
        return
    assert problem.file == "x/cmp.wheel.json" and problem.field.startswith(key)
    assert problem.message.startswith(("must be ", "needs the field ")), problem.message
    # what was found is shown as JSON writes it, so true/null rather than True/None
    _plain(problem.message.split(", not ")[0])
    if value is None or isinstance(value, bool):
        assert problem.message.endswith(f", not {json.dumps(value)}"), problem.message


@settings(max_examples=300, derandomize=True, database=None)
@given(
    ctype=st.sampled_from(TYPES), data=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6)
)
def test_component_properties_never_raise(ctype: str, data: dict[str, Any]) -> None:
    c = Component({**data, "type": ctype}, Path("/nonexistent/x"), "x")
    assert isinstance(c.id, str) and isinstance(c.name, str) and isinstance(c.host, str)
    assert all(isinstance(x, str) for x in c.previous + c.next + c.else_ + c.include + c.exclude)
    assert 0 <= c.retry <= 100
    assert isinstance(c.env, dict) and all(isinstance(v, str) for v in c.env.values())
    assert c.script is None or isinstance(c.script, str)
    assert c.retry_condition is None or isinstance(c.retry_condition, str)
    for f in c.input_files:
        assert isinstance(f.name, str) and all(isinstance(x.node, str) for x in f.src)
    for o in c.output_files:
        assert isinstance(o.name, str) and all(isinstance(x.name, str) for x in o.dst)
    assert isinstance(c.use_job_scheduler, bool) and isinstance(c.disabled, bool)
    assert isinstance(c.state, str) and isinstance(c.ignore_failure, bool)
    problems = check_object(c.data, component_schema(ctype), "x/cmp.wheel.json")
    assert all(p.message for p in problems)


@settings(max_examples=200, derandomize=True, database=None)
@given(
    entry=st.dictionaries(
        st.sampled_from([f.encode_name for f in msgspec.structs.fields(HostEntry)]), JSON
    )
)
def test_host_and_scheduler_entries_are_checked_without_raising(entry: dict[str, Any]) -> None:
    for schema in (HostEntry, SchedulerEntry):
        for p in check_object(entry, schema, "remotehost.json", strict=False):
            assert p.message.startswith(("must be ", "is missing; set it to ", "needs the field "))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("retry", "abc", 'must be a whole number from 0 to 100 (or empty), not "abc"'),
        ("retry", None, None),
        ("retry", "", None),
        ("retry", "7", None),
        ("retry", 100, None),
        ("retry", 101, "must be a whole number from 0 to 100 (or empty), not 101"),
        ("ignoreFailure", "yes", 'must be true or false (or null), not "yes"'),
        ("include", ["*.txt", 3], "must be a file name (each part at most 255 characters), not 3"),
        ("include", "a.txt,b.txt", None),
        ("env", {"A": [1]}, "must be a string or a number, not [1]"),
        ("script", "x" * 300, "(a string of 300 characters)"),
        ("unknownField", {"anything": [None]}, None),
    ],
)
def test_messages(key: str, value: Any, message: str | None) -> None:
    problem = check_value("task", key, value, "t/cmp.wheel.json")
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem.message, problem


def test_nested_problems_name_the_place() -> None:
    value = [{"name": "in", "src": [{"srcNode": "n", "srcName": 5}]}, {"src": []}]
    [first] = check_object({"inputFiles": value}, component_schema("task"), "f")
    assert (first.field, first.message) == (
        "inputFiles[0].src[0].srcName",
        "must be a file name (each part at most 255 characters), not 5",
    )
    [missing] = check_object({"inputFiles": value[1:]}, component_schema("task"), "f")
    assert (missing.field, missing.message) == ("inputFiles[0]", 'needs the field "name"')


def test_descriptions() -> None:
    assert describe(list[str] | None) == "a list of strings (or null)"
    assert describe(int | float) == "a number"
    assert json.dumps(describe(dict[str, int])) == '"an object whose values are whole numbers"'


def test_values_that_make_too_long_directory_names_are_problems(tmp_path: Path) -> None:
    import sharin

    from ..helpers import write_json

    p = sharin.Project.create(tmp_path / "long", git=False)
    fe = sharin.add_component(p, "foreach", "fe", indexList=["ok", "x" * 300])
    sharin.add_task(p, "t", "true", parent=fe)
    ps = sharin.add_component(p, "parameterStudy", "ps")
    sharin.add_task(p, "u", "true", parent=ps)
    write_json(
        ps.directory / "parameterSetting.json",
        {"version": 2, "params": [{"keyword": "x", "list": ["a", "y" * 300]}]},
    )
    found = {(x.file, x.field): x.message for x in sharin.validate(p.root)}
    assert (
        "indexList[1] (300 characters) makes the trip's directory name longer than 255"
        in (found["fe/cmp.wheel.json", "indexList"])
    )
    assert (
        "instance directory names of 305 bytes, longer than the 255"
        in (found["ps/cmp.wheel.json", "parameterFile"])
    )
