"""Components: typed views over cmp.wheel.json that keep every field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharin.model import (
    CONTAINER_TYPES,
    ROOT_PARENT,
    Component,
    ComponentType,
    FileLink,
    State,
    is_valid_name,
    new_id,
)
from sharin.model._component import default_component


@pytest.mark.parametrize("name", ["task0", "a", "A-b_9", "-", "_x"])
def test_valid_names(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a.b", "ä", "../x", None, 3])
def test_invalid_names(name: object) -> None:
    assert not is_valid_name(name)


def test_ids_are_version_1_uuids() -> None:
    a, b = new_id(), new_id()
    assert a != b
    assert len(a) == 36 and a[14] == "1"


def test_final_states() -> None:
    final = {s for s in State if s.final}
    assert final == {State.FINISHED, State.FAILED, State.UNKNOWN, State.STOPPED, State.SKIPPED}
    assert State("not-started") is State.NOT_STARTED


def test_every_wheel_type_is_known() -> None:
    wheel = {
        "task",
        "if",
        "for",
        "while",
        "foreach",
        "parameterStudy",
        "workflow",
        "source",
        "viewer",
        "stepjob",
        "stepjobTask",
        "bulkjobTask",
        "storage",
        "hpciss",
        "hpcisstar",
        "break",
        "continue",
    }
    assert {t.value for t in ComponentType} == wheel
    assert {t.value for t in CONTAINER_TYPES} == {
        "workflow",
        "for",
        "while",
        "foreach",
        "parameterStudy",
        "stepjob",
    }


def test_new_task_has_wheels_fields() -> None:
    data = default_component("task", "t", "parent-id")
    assert data["parent"] == "parent-id"
    assert data["state"] == "not-started"
    expected: dict[str, object] = {
        "script": None,
        "host": "localhost",
        "useJobScheduler": False,
        "retry": 0,
        "retryCondition": None,
        "ignoreFailure": False,
        "cleanupFlag": 2,
        "previous": [],
        "next": [],
        "inputFiles": [],
        "outputFiles": [],
        "include": [],
        "exclude": [],
    }
    for key, value in expected.items():
        assert data[key] == value, key


def test_source_and_viewer_take_no_flow_edges() -> None:
    source = default_component("source", "s", ROOT_PARENT)
    viewer = default_component("viewer", "v", ROOT_PARENT)
    assert "next" not in source and "previous" not in viewer
    assert source["outputFiles"] == [{"name": "", "dst": []}]
    assert viewer["inputFiles"] == []
    assert default_component("if", "i", ROOT_PARENT)["else"] == []
    assert default_component("workflow", "w", ROOT_PARENT)["descendants"] == []


def comp(**data: object) -> Component:
    return Component(dict(data), Path("/nowhere"))


def test_properties_read_wheel_fields() -> None:
    c = comp(
        ID="x",
        name="t",
        type="task",
        script="run.sh",
        host="",
        retry="",
        retryTimes=4,
        retryCondition="",
        include="a.log, b/*.txt",
        exclude=["*.tmp"],
        env={"N": 3},
        disable=1,
        inputFiles=[{"name": "in", "src": [{"srcNode": "p", "srcName": "out"}]}, "junk"],
        outputFiles=[{"name": "out", "dst": [{"dstNode": "q", "dstName": "in"}], "origin": []}],
    )
    assert (c.id, c.name, c.type, c.script) == ("x", "t", "task", "run.sh")
    assert c.host == "localhost"  # empty host means this machine
    assert c.retry == 4  # W22 wrote retryTimes
    assert c.retry_condition is None
    assert c.include == ["a.log", "b/*.txt"] and c.exclude == ["*.tmp"]
    assert c.env == {"N": "3"}
    assert c.disabled
    assert c.state == "not-started"
    [inp] = c.input_files
    assert inp.name == "in" and inp.src == (FileLink("p", "out"),)
    [out] = c.output_files
    assert out.dst == (FileLink("q", "in"),) and out.origin == ()


@pytest.mark.parametrize(("value", "expected"), [(2, 2), ("3", 3), (-1, 0), ("x", 0), (None, 0)])
def test_retry_is_read_leniently(value: object, expected: int) -> None:
    assert comp(retry=value).retry == expected


def test_walk_is_parents_first_in_order() -> None:
    root = comp(name="root", type="workflow")
    a, b = comp(name="a"), comp(name="b", type="workflow")
    b1 = comp(name="b1")
    root.children = [a, b]
    b.children = [b1]
    assert [c.name for c in root.walk()] == ["root", "a", "b", "b1"]
    assert root.child_named("b") is b and root.child_named("b1") is None
    assert b.is_container and not a.is_container
