"""Broken projects, one per validation rule, shared by the model and CLI tests.

Each case starts from a valid project (task ``a`` writes ``out.txt``, delivered to task ``b`` as
``in.txt``) and breaks it the way a user editing JSON by hand, or WHEEL, could.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sharin

from .helpers import edit_json


def build_valid(root: Path) -> sharin.Project:
    p = sharin.Project.create(root, git=False)  # no git: these projects are never saved
    a = sharin.add_task(p, "a", "echo hi > out.txt", outputs=["out.txt"])
    b = sharin.add_task(p, "b", "cat in.txt")
    sharin.connect_files(p, a, "out.txt", b, "in.txt")
    return p


def _set(component: str, key: str, value: Any) -> Callable[[sharin.Project], None]:
    def change(p: sharin.Project) -> None:
        edit_json(p.root / component / "cmp.wheel.json", lambda d: d.__setitem__(key, value))

    return change


def _write(rel: str, text: str) -> Callable[[sharin.Project], None]:
    def change(p: sharin.Project) -> None:
        (p.root / rel).write_text(text)

    return change


def _flow_cycle(p: sharin.Project) -> None:
    # `connect` refuses a cycle, so the edge back is written by hand
    c = sharin.add_task(p, "c", "true")
    d = sharin.add_task(p, "d", "true")
    sharin.connect(p, c, d)
    edit_json(d.file, lambda x: x.__setitem__("next", [c.id]))
    edit_json(c.file, lambda x: x.__setitem__("previous", [d.id]))


def _file_cycle(p: sharin.Project) -> None:
    # b sends a file back to a: a → b → a through file edges only (written by hand)
    a, b = p.component("a"), p.component("b")
    edit_json(
        b.file,
        lambda x: x["outputFiles"].append(
            {"name": "back.txt", "dst": [{"dstNode": a.id, "dstName": "back.txt"}]}
        ),
    )
    edit_json(
        a.file,
        lambda x: x["inputFiles"].append(
            {"name": "back.txt", "src": [{"srcNode": b.id, "srcName": "back.txt"}]}
        ),
    )


def _duplicate_name(p: sharin.Project) -> None:
    edit_json(p.root / "b" / "cmp.wheel.json", lambda d: d.__setitem__("name", "a"))


def _input_not_produced(p: sharin.Project) -> None:
    def change(d: dict[str, Any]) -> None:
        d["inputFiles"][0]["src"][0]["srcName"] = "missing.txt"

    edit_json(p.root / "b" / "cmp.wheel.json", change)


def _unknown_src_id(p: sharin.Project) -> None:
    def change(d: dict[str, Any]) -> None:
        d["inputFiles"][0]["src"][0]["srcNode"] = "0000-no-such-id"

    edit_json(p.root / "b" / "cmp.wheel.json", change)


def _unknown_dst_id(p: sharin.Project) -> None:
    def change(d: dict[str, Any]) -> None:
        d["outputFiles"][0]["dst"].append({"dstNode": "0000-no-such-id", "dstName": "x"})

    edit_json(p.root / "a" / "cmp.wheel.json", change)


def _two_sources(p: sharin.Project) -> None:
    c = sharin.add_task(p, "c", "echo c > out.txt", outputs=["out.txt"])
    sharin.connect_files(p, c, "out.txt", "b", "in.txt")


@dataclass(frozen=True)
class Case:
    id: str
    breaks: Callable[[sharin.Project], None]
    files: tuple[str, ...]  #: the message must name one of these files
    field: str | None  #: the field it must name (None: a JSON syntax error, no field)
    fragment: str  #: a part of the message that says what is wrong


CASES = [
    Case(
        "malformed-prj",
        _write("prj.wheel.json", '{\n  "version": 2,\n  "name": "demo"\n  "state": 1\n}\n'),
        ("prj.wheel.json",),
        None,
        "line 4, column 3",
    ),
    Case(
        "malformed-cmp",
        _write("a/cmp.wheel.json", '{\n  "type": "task",\n  "name": "a",,\n}\n'),
        ("a/cmp.wheel.json",),
        None,
        "line 3, column 15",
    ),
    Case(
        "unknown-type",
        _set("a", "type", "tsak"),
        ("a/cmp.wheel.json",),
        "type",
        "unknown component type 'tsak'",
    ),
    Case("script-unset", _set("a", "script", None), ("a/cmp.wheel.json",), "script", "no script"),
    Case(
        "script-missing",
        _set("a", "script", "nope.sh"),
        ("a/cmp.wheel.json",),
        "script",
        "'nope.sh' does not exist",
    ),
    Case(
        "input-not-produced",
        _input_not_produced,
        ("b/cmp.wheel.json",),
        "inputFiles[in.txt]",
        "produces no such file",
    ),
    Case(
        "cycle-flow",
        _flow_cycle,
        ("c/cmp.wheel.json", "d/cmp.wheel.json"),
        "previous",
        "dependency cycle",
    ),
    Case(
        "cycle-files",
        _file_cycle,
        ("a/cmp.wheel.json", "b/cmp.wheel.json"),
        "previous",
        "dependency cycle",
    ),
    Case("duplicate-name", _duplicate_name, ("b/cmp.wheel.json",), "name", "'a' is used twice"),
    Case(
        "unknown-host",
        _set("a", "host", "nowhere"),
        ("a/cmp.wheel.json",),
        "host",
        "unknown host 'nowhere'",
    ),
    Case(
        "retry-text",
        _set("a", "retry", "twice"),
        ("a/cmp.wheel.json",),
        "retry",
        'must be a whole number from 0 to 100 (or empty), not "twice"',
    ),
    Case("retry-negative", _set("a", "retry", -1), ("a/cmp.wheel.json",), "retry", "not -1"),
    Case("retry-fraction", _set("a", "retry", 1.5), ("a/cmp.wheel.json",), "retry", "not 1.5"),
    Case("retry-bool", _set("a", "retry", True), ("a/cmp.wheel.json",), "retry", "), not true"),
    Case(
        "retry-huge",
        _set("a", "retry", 1000000000),
        ("a/cmp.wheel.json",),
        "retry",
        "from 0 to 100 (or empty), not 1000000000",
    ),
    Case(
        "retry-condition-not-an-expression",
        _set("a", "retryCondition", "a b c"),
        ("a/cmp.wheel.json",),
        "retryCondition",
        "expected an operator or the end of the condition",
    ),
    Case(
        "retry-condition-too-long-for-a-script-name",
        _set("a", "retryCondition", "s" * 300 + " +"),
        ("a/cmp.wheel.json",),
        "retryCondition",
        "expected a value",
    ),
    Case(
        "input-files-wrong-type",
        _set("b", "inputFiles", {"in.txt": "a"}),
        ("b/cmp.wheel.json",),
        "inputFiles",
        'must be a list of objects with "name" (or null), not {"in.txt": "a"}',
    ),
    Case(
        "previous-not-a-list",
        _set("b", "previous", 7),
        ("b/cmp.wheel.json",),
        "previous",
        "must be a list of strings (or null), not 7",
    ),
    Case(
        "link-of-wrong-type",
        _set("b", "inputFiles", [{"name": "in.txt", "src": [{"srcNode": ["x"], "srcName": "o"}]}]),
        ("b/cmp.wheel.json",),
        "inputFiles[0].src[0].srcNode",
        'must be a string, not ["x"]',
    ),
    Case(
        "env-value-null",
        _set("a", "env", {"N": None}),
        ("a/cmp.wheel.json",),
        'env["N"]',
        "must be a string or a number, not null",
    ),
    Case(
        "script-name-too-long",
        _set("a", "script", "s" * 5000),
        ("a/cmp.wheel.json",),
        "script",
        "(a string of 5,000 characters)",
    ),
    Case(
        "component-file-not-json",
        _write("a/cmp.wheel.json", "\x00\x01 not json"),
        ("a/cmp.wheel.json",),
        None,
        "malformed JSON at line 1, column 1",
    ),
    Case(
        "project-file-not-an-object",
        _write("prj.wheel.json", "[1, 2]"),
        ("prj.wheel.json",),
        None,
        "must hold a JSON object",
    ),
    Case(
        "unknown-flow-id",
        _set("a", "next", ["0000-no-such-id"]),
        ("a/cmp.wheel.json",),
        "next",
        "unknown component ID '0000-no-such-id'",
    ),
    Case(
        "unknown-src-id",
        _unknown_src_id,
        ("b/cmp.wheel.json",),
        "inputFiles[in.txt]",
        "unknown component ID '0000-no-such-id'",
    ),
    Case(
        "unknown-dst-id",
        _unknown_dst_id,
        ("a/cmp.wheel.json",),
        "outputFiles[out.txt]",
        "unknown component ID '0000-no-such-id'",
    ),
    Case(
        "several-sources-no-slash",
        _two_sources,
        ("b/cmp.wheel.json",),
        "inputFiles[in.txt]",
        "must end with '/'",
    ),
]

PROBLEM_CASES = [c for c in CASES if c.field is not None]
SYNTAX_CASES = [c for c in CASES if c.field is None]
