"""Loop trips of For, Foreach and While components: indices, instance names and environment.

What OPEN-WHEEL does (``server/app/core/loopUtils.js`` and ``_loopHandler`` in
``dispatcher.js``), and where this module differs:

* **For** runs ``start, start+step, ...`` while the index is ``<= end`` (``>= end`` for a negative
  step): ``end`` is inclusive, the trip count is ``floor(|end-start|/|step|) + 1``. Validation
  rejects ``step == 0`` and ``(end-start)*step < 0`` ("infinite loop"). WHEEL adds ``step`` again
  and again in floating point (``0.1+0.1+0.1`` gives an instance named ``..._0_30000000000000004``);
  here index ``k`` is ``start + k*step`` computed exactly in decimal.
* **Foreach** runs over ``indexList`` in order. WHEEL finds the next item with ``indexOf``, so a
  repeated item loops forever; repeated items are rejected here.
* **While** counts ``0, 1, 2, ...``; its condition is evaluated before each trip with that
  trip's environment (``WHEEL_CURRENT_INDEX`` is ``0`` before the first trip).
* **Instance directory** of a trip: ``<name>_<sanitize(index)>`` (only the index is sanitized:
  ``for0_0``, ``for0_-1``, ``for0_0_5`` for 0.5, ``loop_a_b`` for foreach item ``a/b``).
* **Environment** of a trip, all strings: ``WHEEL_CURRENT_INDEX``, ``WHEEL_PREV_INDEX``,
  ``WHEEL_NEXT_INDEX``; for For also ``WHEEL_FOR_START``, ``WHEEL_FOR_END``, ``WHEEL_FOR_STEP``
  and ``WHEEL_LOOP_LEN`` (the trip count); for Foreach ``WHEEL_LOOP_LEN`` and
  ``WHEEL_FOREACH_LEN`` (the list length). While gets neither length.
  Where there is no previous or next trip the value is the empty string. WHEEL itself exports
  ``WHEEL_PREV_INDEX=null`` on the first trip (a JavaScript ``null`` turned into text) and, for
  For, ``WHEEL_NEXT_INDEX=<last + step>`` on the last trip (an index that never runs); While's
  ``WHEEL_NEXT_INDEX`` is always ``index + 1`` (the loop cannot know), as in WHEEL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from ..errors import ProjectError
from ._expr import to_js_string
from ._jsonio import show_json
from ._paramstudy import sanitize_path

__all__ = [
    "LoopIndex",
    "LoopTrip",
    "for_indices",
    "for_trip_count",
    "for_trip_env",
    "for_trips",
    "foreach_items",
    "foreach_trip_env",
    "foreach_trips",
    "loop_instance_name",
    "validate_for",
    "while_trip",
    "while_trip_env",
]

LoopIndex = int | float | str


@dataclass(frozen=True)
class LoopTrip:
    """One trip of a loop: its 0-based ``position``, its ``index`` (what
    ``WHEEL_CURRENT_INDEX`` says), the instance directory name and the environment to add."""

    position: int
    index: LoopIndex
    instance_name: str
    env: Mapping[str, str] = field(repr=False)


def _text(index: LoopIndex | None) -> str:
    if index is None:
        return ""
    if isinstance(index, str):
        return index
    if isinstance(index, float) or abs(index) >= 10**21:  # JavaScript's writing of numbers
        return to_js_string(float(index))
    return str(index)


def _shown(value: object) -> str:
    return _text(value) if isinstance(value, int | float | str) else show_json(value)


#: the longest file name (bytes) of the usual file systems
_NAME_MAX = 255


def loop_instance_name(name: str, index: LoopIndex) -> str:
    """``<name>_<sanitize(index)>``, WHEEL's directory for the trip with ``index``."""
    return f"{name}_{sanitize_path(_text(index))}"


# ---------------------------------------------------------------------------------------------
# For


def _number(value: object, what: str, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProjectError(
            f"for loop {name!r}: {what} must be a number, found {show_json(value)}; set it in the "
            "component's properties"
        )
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ProjectError(f"for loop {name!r}: {what} must be finite, found {value}")
        return Fraction(Decimal(repr(value)))  # the number as written, not its binary value
    return Fraction(value)


def validate_for(start: object, end: object, step: object, *, name: str = "for") -> None:
    """Raise :class:`ProjectError` unless ``start``, ``end``, ``step`` describe a finite loop."""
    lo, hi, st = (
        _number(start, "start", name),
        _number(end, "end", name),
        _number(step, "step", name),
    )
    if st == 0:
        raise ProjectError(f"for loop {name!r}: step is 0, so the loop would never end")
    if (hi - lo) * st < 0:
        raise ProjectError(
            f"for loop {name!r}: start {_shown(start)}, end {_shown(end)}, step {_shown(step)} "
            "would never reach end (infinite loop); "
            + ("use a negative step to count down" if st > 0 else "use a positive step")
        )


def for_trip_count(start: int | float, end: int | float, step: int | float) -> int:
    """``floor(|end-start|/|step|) + 1``, the number of trips (checked with :func:`validate_for`)."""
    validate_for(start, end, step)
    lo, hi, st = (_number(v, "", "") for v in (start, end, step))
    return abs(hi - lo) // abs(st) + 1


def _index(lo: Fraction, st: Fraction, k: int, as_int: bool) -> int | float:
    value = lo + st * k
    return int(value) if as_int else float(value)


def for_indices(start: int | float, end: int | float, step: int | float) -> Iterator[int | float]:
    """The indices ``start, start+step, ...`` up to ``end`` inclusive, lazily.

    ints in give ints out; with any float the indices are floats computed as
    ``start + k*step`` in exact decimal arithmetic (no accumulated rounding).
    """
    count = for_trip_count(start, end, step)
    lo, st = _number(start, "", ""), _number(step, "", "")
    as_int = all(isinstance(v, int) for v in (start, end, step))
    return (_index(lo, st, k, as_int) for k in range(count))


def for_trip_env(
    start: int | float, end: int | float, step: int | float, position: int
) -> dict[str, str]:
    """The ``WHEEL_*`` variables of trip ``position`` (0-based) of a For loop."""
    count = for_trip_count(start, end, step)
    if not 0 <= position < count:
        raise IndexError(f"trip {position} is outside 0..{count - 1}")
    lo, st = _number(start, "", ""), _number(step, "", "")
    as_int = all(isinstance(v, int) for v in (start, end, step))

    def at(k: int) -> str:
        return _text(_index(lo, st, k, as_int)) if 0 <= k < count else ""

    return {
        "WHEEL_CURRENT_INDEX": at(position),
        "WHEEL_PREV_INDEX": at(position - 1),
        "WHEEL_NEXT_INDEX": at(position + 1),
        "WHEEL_FOR_START": _text(start),
        "WHEEL_FOR_END": _text(end),
        "WHEEL_FOR_STEP": _text(step),
        "WHEEL_LOOP_LEN": str(count),
    }


def for_trips(
    name: str, start: int | float, end: int | float, step: int | float
) -> Iterator[LoopTrip]:
    """Every trip of For loop ``name``, lazily; the arguments are checked at the call."""
    count = for_trip_count(start, end, step)
    common = {
        "WHEEL_FOR_START": _text(start),
        "WHEEL_FOR_END": _text(end),
        "WHEEL_FOR_STEP": _text(step),
        "WHEEL_LOOP_LEN": str(count),
    }

    def trips() -> Iterator[LoopTrip]:
        prev: int | float | None = None
        indices = for_indices(start, end, step)
        current = next(indices)
        for position in range(count):
            following = next(indices, None)
            env = {
                "WHEEL_CURRENT_INDEX": _text(current),
                "WHEEL_PREV_INDEX": _text(prev),
                "WHEEL_NEXT_INDEX": _text(following),
                **common,
            }
            yield LoopTrip(position, current, loop_instance_name(name, current), env)
            prev = current
            if following is None:
                return
            current = following

    return trips()


# ---------------------------------------------------------------------------------------------
# Foreach


def foreach_items(index_list: object, *, name: str = "foreach") -> tuple[str, ...]:
    """Check ``indexList`` and return its items as text (numbers written as JavaScript does).

    It must be a non-empty list of strings or numbers whose instance directory names differ.
    """
    if not isinstance(index_list, list | tuple):
        raise ProjectError(
            f"foreach {name!r}: indexList must be a list, found {show_json(index_list)}"
        )
    if not index_list:
        raise ProjectError(f"foreach {name!r}: indexList is empty; add at least one item")
    items: list[str] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(index_list):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ProjectError(
                f"foreach {name!r}: indexList[{i}] must be a string or a number, "
                f"found {show_json(item)}"
            )
        text = _text(item)
        if len(loop_instance_name(name, text).encode()) > _NAME_MAX:
            raise ProjectError(
                f"foreach {name!r}: indexList[{i}] ({len(text):,} characters) makes the trip's "
                f"directory name longer than {_NAME_MAX} bytes, the longest a file name may be; "
                "shorten it"
            )
        key = sanitize_path(text)
        if key in seen:
            same = "appears twice" if seen[key] == text else f"and {seen[key]!r} give"
            raise ProjectError(
                f"foreach {name!r}: indexList[{i}] {text!r} {same} the same instance directory "
                f"{loop_instance_name(name, text)!r}; make the items distinct"
            )
        seen[key] = text
        items.append(text)
    return tuple(items)


def foreach_trip_env(index_list: Sequence[str], position: int) -> dict[str, str]:
    """The ``WHEEL_*`` variables of trip ``position`` (0-based) of a Foreach loop."""
    items = foreach_items(list(index_list))
    if not 0 <= position < len(items):
        raise IndexError(f"trip {position} is outside 0..{len(items) - 1}")
    return _foreach_env(items, position)


def _foreach_env(items: Sequence[str], position: int) -> dict[str, str]:
    return {
        "WHEEL_CURRENT_INDEX": items[position],
        "WHEEL_PREV_INDEX": items[position - 1] if position > 0 else "",
        "WHEEL_NEXT_INDEX": items[position + 1] if position + 1 < len(items) else "",
        "WHEEL_LOOP_LEN": str(len(items)),
        "WHEEL_FOREACH_LEN": str(len(items)),
    }


def foreach_trips(name: str, index_list: object) -> Iterator[LoopTrip]:
    """Every trip of Foreach loop ``name``; ``index_list`` is checked at the call."""
    items = foreach_items(index_list, name=name)
    return (
        LoopTrip(position, item, loop_instance_name(name, item), _foreach_env(items, position))
        for position, item in enumerate(items)
    )


# ---------------------------------------------------------------------------------------------
# While


def while_trip_env(index: int) -> dict[str, str]:
    """The ``WHEEL_*`` variables of trip ``index`` (0, 1, 2, ...) of a While loop."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"a while loop's index is an int >= 0, not {index!r}")
    return {
        "WHEEL_CURRENT_INDEX": str(index),
        "WHEEL_PREV_INDEX": str(index - 1) if index > 0 else "",
        "WHEEL_NEXT_INDEX": str(index + 1),
    }


def while_trip(name: str, index: int) -> LoopTrip:
    """Trip ``index`` of While loop ``name``; evaluate the condition with its ``env`` first."""
    return LoopTrip(index, index, loop_instance_name(name, index), while_trip_env(index))
