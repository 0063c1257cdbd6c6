"""Loop trips: For/Foreach/While indices, instance directory names and WHEEL_* variables.

Expected names such as ``for0_0`` .. ``for0_3`` come from OPEN-WHEEL's dispatcher tests
(``server/test/app/core/dispatcher.js``); the variables from ``loopUtils.js``/``dispatcher.js``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from sharin.errors import ProjectError
from sharin.model import _loops
from sharin.model._expr import evaluate, is_true, parse_expression
from sharin.model._loops import (
    LoopTrip,
    for_indices,
    for_trip_count,
    for_trip_env,
    for_trips,
    foreach_items,
    foreach_trip_env,
    foreach_trips,
    loop_instance_name,
    validate_for,
    while_trip,
    while_trip_env,
)

# --------------------------------------------------------------------------------------------
# For


@pytest.mark.parametrize(
    ("start", "end", "step", "expected"),
    [
        (0, 3, 1, [0, 1, 2, 3]),  # end is inclusive
        (0, 10, 3, [0, 3, 6, 9]),  # end need not be reached exactly
        (1, 10, 2, [1, 3, 5, 7, 9]),
        (3, -1, -2, [3, 1, -1]),  # counting down
        (5, 5, 1, [5]),
        (5, 5, -1, [5]),
        (-3, -1, 1, [-3, -2, -1]),
    ],
)
def test_for_indices(start: int, end: int, step: int, expected: list[int]) -> None:
    got = list(for_indices(start, end, step))
    assert got == expected
    assert all(type(i) is int for i in got)
    assert for_trip_count(start, end, step) == len(expected)


def test_float_indices_do_not_accumulate_rounding() -> None:
    # WHEEL adds step again and again: 0.1 + 0.1 + 0.1 == 0.30000000000000004 -> "for0_0_30000000000000004"
    indices = list(for_indices(0, 0.3, 0.1))
    assert indices == [0.0, 0.1, 0.2, 0.3]
    assert [t.instance_name for t in for_trips("for0", 0, 0.3, 0.1)] == [
        "for0_0",
        "for0_0_1",
        "for0_0_2",
        "for0_0_3",
    ]
    assert list(for_indices(1, 2, 0.25)) == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert for_trip_count(0, 1, 0.1) == 11


def test_for_is_lazy() -> None:
    indices = for_indices(0, 10**12, 1)
    assert list(itertools.islice(indices, 3)) == [0, 1, 2]
    assert for_trip_count(0, 10**12, 1) == 10**12 + 1
    trips = for_trips("big", 0, 10**12, 1)
    assert next(trips).instance_name == "big_0"


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (0, 3, 0, "for loop 'for0': step is 0, so the loop would never end"),
        (0, 0, 0, "step is 0"),
        (
            0,
            5,
            -1,
            "start 0, end 5, step -1 would never reach end (infinite loop); use a positive step",
        ),
        (
            5,
            0,
            1,
            "start 5, end 0, step 1 would never reach end (infinite loop); use a negative step",
        ),
        ("1", 3, 1, "for loop 'for0': start must be a number, found \"1\""),
        (0, None, 1, "end must be a number, found null"),
        (0, 3, True, "step must be a number, found true"),
        (0, math.inf, 1, "end must be finite"),
        (math.nan, 3, 1, "start must be finite"),
    ],
)
def test_validate_for(start: Any, end: Any, step: Any, message: str) -> None:
    with pytest.raises(ProjectError) as info:
        validate_for(start, end, step, name="for0")
    assert message in str(info.value)
    with pytest.raises(ProjectError):
        for_trips("for0", start, end, step)  # checked at the call, before any trip


def test_for_trip_environment() -> None:
    trips = list(for_trips("for0", 0, 3, 1))
    assert [t.instance_name for t in trips] == ["for0_0", "for0_1", "for0_2", "for0_3"]
    assert [(t.position, t.index) for t in trips] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    common = {
        "WHEEL_FOR_START": "0",
        "WHEEL_FOR_END": "3",
        "WHEEL_FOR_STEP": "1",
        "WHEEL_LOOP_LEN": "4",
    }
    # first trip: no previous index (WHEEL exports the text "null" here)
    assert trips[0].env == {
        "WHEEL_CURRENT_INDEX": "0",
        "WHEEL_PREV_INDEX": "",
        "WHEEL_NEXT_INDEX": "1",
        **common,
    }
    assert trips[1].env == {
        "WHEEL_CURRENT_INDEX": "1",
        "WHEEL_PREV_INDEX": "0",
        "WHEEL_NEXT_INDEX": "2",
        **common,
    }
    # last trip: no next index (WHEEL exports end + step, "4", an index that never runs)
    assert trips[3].env == {
        "WHEEL_CURRENT_INDEX": "3",
        "WHEEL_PREV_INDEX": "2",
        "WHEEL_NEXT_INDEX": "",
        **common,
    }
    assert [for_trip_env(0, 3, 1, p) for p in range(4)] == [t.env for t in trips]
    assert all(isinstance(v, str) for t in trips for v in t.env.values())


def test_for_trip_environment_counting_down_with_floats() -> None:
    trips = list(for_trips("loop", 1, 0, -0.5))
    assert [t.instance_name for t in trips] == ["loop_1", "loop_0_5", "loop_0"]
    assert trips[1].env == {
        "WHEEL_CURRENT_INDEX": "0.5",
        "WHEEL_PREV_INDEX": "1",
        "WHEEL_NEXT_INDEX": "0",
        "WHEEL_FOR_START": "1",
        "WHEEL_FOR_END": "0",
        "WHEEL_FOR_STEP": "-0.5",
        "WHEEL_LOOP_LEN": "3",
    }
    with pytest.raises(IndexError):
        for_trip_env(1, 0, -0.5, 3)


# --------------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize(
    ("name", "index", "expected"),
    [
        ("for0", 0, "for0_0"),
        ("for0", 12, "for0_12"),
        ("for0", -1, "for0_-1"),
        ("for0", 0.5, "for0_0_5"),
        ("for0", 1.0, "for0_1"),  # a JavaScript number has no ".0"
        ("for0", 1e21, "for0_1e_21"),  # JavaScript writes 1e+21, and '+' becomes '_'
        ("foreach0", "a/b", "foreach0_a_b"),
        ("foreach0", "x.", "foreach0_x"),  # one trailing '_' is dropped
        ("foreach0", "v1.0-rc", "foreach0_v1_0-rc"),
        ("foreach0", "a b", "foreach0_a b"),
        ("while0", 0, "while0_0"),
    ],
)
def test_loop_instance_name(name: str, index: Any, expected: str) -> None:
    assert loop_instance_name(name, index) == expected


# --------------------------------------------------------------------------------------------
# Foreach


def test_foreach_trips() -> None:
    trips = list(foreach_trips("foreach0", ["a", "b", "c"]))
    assert [t.instance_name for t in trips] == ["foreach0_a", "foreach0_b", "foreach0_c"]
    lengths = {"WHEEL_LOOP_LEN": "3", "WHEEL_FOREACH_LEN": "3"}
    assert trips[0].env == {
        "WHEEL_CURRENT_INDEX": "a",
        "WHEEL_PREV_INDEX": "",
        "WHEEL_NEXT_INDEX": "b",
        **lengths,
    }
    assert trips[1].env == {
        "WHEEL_CURRENT_INDEX": "b",
        "WHEEL_PREV_INDEX": "a",
        "WHEEL_NEXT_INDEX": "c",
        **lengths,
    }
    assert trips[2].env == {
        "WHEEL_CURRENT_INDEX": "c",
        "WHEEL_PREV_INDEX": "b",
        "WHEEL_NEXT_INDEX": "",
        **lengths,
    }
    assert foreach_trip_env(["a", "b", "c"], 1) == trips[1].env
    assert "WHEEL_FOR_START" not in trips[0].env
    with pytest.raises(IndexError):
        foreach_trip_env(["a"], 1)


def test_foreach_single_item() -> None:
    [trip] = foreach_trips("fe", ["only"])
    assert trip == LoopTrip(0, "only", "fe_only", trip.env)
    assert trip.env["WHEEL_PREV_INDEX"] == trip.env["WHEEL_NEXT_INDEX"] == ""


def test_foreach_items_are_text() -> None:
    assert foreach_items(["x", 1, 2.5, 3.0, -4]) == ("x", "1", "2.5", "3", "-4")


@pytest.mark.parametrize(
    ("index_list", "message"),
    [
        ("a,b", 'indexList must be a list, found "a,b"'),
        (None, "indexList must be a list"),
        ([], "indexList is empty"),
        (["a", None], "indexList[1] must be a string or a number, found null"),
        (["a", True], "indexList[1] must be a string or a number, found true"),
        (["a", ["b"]], "indexList[1] must be a string or a number"),
        # WHEEL looks the next item up with indexOf, so a repeated item loops forever there
        (["a", "b", "a"], "indexList[2] 'a' appears twice the same instance directory 'fe_a'"),
        (["1.5", "1_5"], "indexList[1] '1_5' and '1.5' give the same instance directory 'fe_1_5'"),
        ([1, "1"], "indexList[1] '1' appears twice"),
        (["x/", "x"], "'x' and 'x/' give the same instance directory 'fe_x'"),
    ],
)
def test_foreach_errors(index_list: Any, message: str) -> None:
    with pytest.raises(ProjectError) as info:
        foreach_trips("fe", index_list)
    assert str(info.value).startswith("foreach 'fe': ")
    assert message in str(info.value)


# --------------------------------------------------------------------------------------------
# While


def test_while_trip_environment() -> None:
    assert while_trip_env(0) == {
        "WHEEL_CURRENT_INDEX": "0",
        "WHEEL_PREV_INDEX": "",
        "WHEEL_NEXT_INDEX": "1",
    }
    assert while_trip_env(5) == {
        "WHEEL_CURRENT_INDEX": "5",
        "WHEEL_PREV_INDEX": "4",
        "WHEEL_NEXT_INDEX": "6",
    }
    trip = while_trip("while0", 2)
    assert (trip.position, trip.index, trip.instance_name) == (2, 2, "while0_2")
    assert "WHEEL_LOOP_LEN" not in trip.env
    for bad in (-1, 1.0, True, "0"):
        with pytest.raises(ValueError, match="an int >= 0"):
            while_trip_env(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# with conditions, as the engine uses them


def run_while(condition: str, limit: int = 100) -> list[str]:
    """Trips a While loop runs: the condition is checked with each trip's env before it runs."""
    expr = parse_expression(condition)
    names: list[str] = []
    for index in itertools.count():
        trip = while_trip("while0", index)
        if index >= limit or not is_true(evaluate(expr, trip.env)):
            return names
        names.append(trip.instance_name)
    raise AssertionError("unreachable")  # pragma: no cover


def test_while_conditions_from_wheel() -> None:
    # OPEN-WHEEL's dispatcher test uses "WHEEL_CURRENT_INDEX < 3": trips 0, 1, 2
    assert run_while("WHEEL_CURRENT_INDEX < 3") == ["while0_0", "while0_1", "while0_2"]
    # the tutorial compares with a string, since every variable is a string
    assert run_while('WHEEL_CURRENT_INDEX !== "3"') == ["while0_0", "while0_1", "while0_2"]
    # a strict comparison with a number is never true: the loop never ends (here: stops at limit)
    assert len(run_while("WHEEL_CURRENT_INDEX !== 3", limit=10)) == 10
    # the previous index is empty on the first trip
    assert run_while('WHEEL_PREV_INDEX === "" || WHEEL_PREV_INDEX < 1') == ["while0_0", "while0_1"]


def test_break_condition_from_wheel() -> None:
    # OPEN-WHEEL's break test: a for loop 0..3 with Break "WHEEL_CURRENT_INDEX == 2"
    expr = parse_expression("WHEEL_CURRENT_INDEX == 2")
    ran = []
    for trip in for_trips("for0", 0, 3, 1):
        ran.append(trip.instance_name)
        if is_true(evaluate(expr, trip.env)):
            break
    assert ran == ["for0_0", "for0_1", "for0_2"]


def test_last_trip_is_recognisable_in_a_condition() -> None:
    expr = parse_expression('WHEEL_NEXT_INDEX === ""')
    assert [is_true(evaluate(expr, t.env)) for t in for_trips("f", 1, 7, 3)] == [False, False, True]
    assert [is_true(evaluate(expr, t.env)) for t in foreach_trips("e", ["x", "y"])] == [False, True]


def test_exports() -> None:
    for name in _loops.__all__:
        assert hasattr(_loops, name), name
