"""Parameter study v2: reading parameterSetting.json, expanding it lazily, naming, templates.

Expected values marked "WHEEL" come from OPEN-WHEEL's own unit tests
(``server/test/app/core/parameterParser.js``, ``pathUtils.js``, ``dispatcher.js``) or from
running its ``parameterParser.js`` under Node.js.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharin.errors import ProjectError
from sharin.model import _paramstudy
from sharin.model._paramstudy import (
    FileRule,
    FilesAxis,
    ListAxis,
    ParameterSetting,
    ParamVector,
    RangeAxis,
    copy_exclusions,
    copy_pairs,
    count_vectors,
    expand_space,
    instance_env,
    instance_name,
    iterate_vectors,
    load_parameter_setting,
    parse_parameter_setting,
    render_template,
    resolve_gather,
    resolve_scatter,
    sanitize_path,
)

# The example of WHEEL's documentMD/PS.md.
DOC_EXAMPLE: dict[str, Any] = {
    "version": 2,
    "targetFiles": ["input1.txt", {"targetNode": "1234-567890abcd", "targetName": "input2.txt"}],
    "params": [
        {"keyword": "KEYWORD1", "min": 1, "max": 3, "step": 1},
        {"keyword": "KEYWORD3", "list": ["foo", "bar"]},
        {"keyword": "filename", "files": ["data_*"]},
    ],
    "scatter": [
        {"srcName": "testData", "dstNode": "1234-567890abcd", "dstName": "hoge{{ KEYWORD1 }}"}
    ],
    "gather": [
        {
            "srcName": "hoge{{ KEYWORD1 }}",
            "srcNode": "1234-567890abcd",
            "dstName": "results/{{ KEYWORD1 }}/{{ KEYWORD3 }}/{{ filename }}/hoge",
        }
    ],
}


def write_setting(
    directory: Path, data: dict[str, Any], name: str = "parameterSetting.json"
) -> Path:
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def setting_of(*params: dict[str, Any], **extra: Any) -> ParameterSetting:
    return parse_parameter_setting(
        {"version": 2, "targetFiles": [], "params": list(params), **extra},
        "ps/parameterSetting.json",
    )


def values_of(axis: dict[str, Any]) -> list[str]:
    return [v.values[0].value for v in iterate_vectors(setting_of({"keyword": "K", **axis}), ".")]


@pytest.fixture
def ps_dir(tmp_path: Path) -> Path:
    d = tmp_path / "PS0"
    d.mkdir()
    for name in ("data_1", "data_2", ".data_hidden", "testData", "input1.txt"):
        (d / name).write_text(name)
    (d / "task0").mkdir()
    return d


# --------------------------------------------------------------------------------------------
# loading


def test_load_the_documented_example(ps_dir: Path) -> None:
    setting = load_parameter_setting(write_setting(ps_dir, DOC_EXAMPLE))
    assert setting.path == ps_dir / "parameterSetting.json"
    assert [(t.name, t.node) for t in setting.target_files] == [
        ("input1.txt", None),
        ("input2.txt", "1234-567890abcd"),
    ]
    a, b, c = setting.params
    assert isinstance(a, RangeAxis) and (a.keyword, a.size) == ("KEYWORD1", 3)
    assert isinstance(b, ListAxis) and b.values == ("foo", "bar")
    assert isinstance(c, FilesAxis) and c.patterns == ("data_*",)
    assert setting.keywords == ("KEYWORD1", "KEYWORD3", "filename")
    assert setting.scatter[0].dst_node == "1234-567890abcd"
    assert setting.gather[0].src_node == "1234-567890abcd"
    assert count_vectors(setting, ps_dir) == 3 * 2 * 2


def test_legacy_aliases_and_single_strings() -> None:
    setting = parse_parameter_setting(
        {
            "version": 2,
            "target_file": "input.txt",
            "target_param": [{"keyword": "A", "list": "only"}, {"keyword": "B", "files": "f*"}],
        },
        "p.json",
    )
    assert [t.name for t in setting.target_files] == ["input.txt"]
    assert isinstance(setting.params[0], ListAxis) and setting.params[0].values == ("only",)
    assert isinstance(setting.params[1], FilesAxis) and setting.params[1].patterns == ("f*",)
    # the new names win when both are present, as in WHEEL
    both = parse_parameter_setting(
        {
            "version": 2,
            "targetFiles": "new.txt",
            "target_file": "old.txt",
            "params": [{"keyword": "A", "list": ["x"]}],
            "target_param": [{"keyword": "B", "list": ["y"]}],
        },
        "p.json",
    )
    assert [t.name for t in both.target_files] == ["new.txt"]
    assert both.keywords == ("A",)


def test_declared_type_wins_over_stale_fields() -> None:
    # shapes written by WHEEL's editor and used in its tests: empty or stale fields of other types
    setting = setting_of(
        {"keyword": "F", "type": "float", "min": 0.3, "max": 0.6, "step": 0.1, "list": ""},
        {
            "keyword": "S",
            "type": "string",
            "min": "",
            "max": "",
            "step": "",
            "list": ["3.14", "0.08"],
        },
        {"keyword": "M", "type": "min-max-step", "min": 1, "max": 2, "step": 1, "list": ["stale"]},
        {"keyword": "L", "type": "list", "list": ["a"], "files": ["stale*"]},
    )
    kinds = [type(axis).__name__ for axis in setting.params]
    assert kinds == ["RangeAxis", "ListAxis", "RangeAxis", "ListAxis"]
    assert count_vectors(setting, ".") == 4 * 2 * 2 * 1


def test_version_1_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = write_setting(tmp_path, {"version": 1, "target_file": "a", "target_param": []})
    with pytest.raises(ProjectError) as info:
        load_parameter_setting(path)
    message = str(info.value)
    assert str(path) in message
    assert "version: PS version 1" in message and "no longer supported" in message


BAD_FILES: list[tuple[dict[str, Any], str]] = [
    ({"params": []}, 'version: missing; a parameter file must start with "version": 2'),
    ({"version": "2", "params": []}, 'version: must be 2, found "2"'),
    ({"version": 3, "params": []}, "version: must be 2, found 3"),
    ({"version": 2}, "params: missing"),
    ({"version": 2, "params": {}}, "params: must be a list, found an object"),
    ({"version": 2, "params": []}, "params: is empty; define at least one parameter"),
    ({"version": 2, "target_param": []}, "target_param: is empty"),
    (
        {"version": 2, "params": ["x"]},
        "params[0]: must be an object with a keyword, found a string",
    ),
    ({"version": 2, "params": [{"list": ["a"]}]}, "params[0].keyword: missing"),
    (
        {"version": 2, "params": [{"keyword": 1, "list": ["a"]}]},
        "params[0].keyword: must be a string",
    ),
    (
        {"version": 2, "params": [{"keyword": "1abc", "list": ["a"]}]},
        "params[0].keyword: '1abc' cannot be used",
    ),
    (
        {"version": 2, "params": [{"keyword": "KEY-1", "list": ["a"]}]},
        "params[0].keyword: 'KEY-1' cannot be used",
    ),
    (
        {"version": 2, "params": [{"keyword": "if", "list": ["a"]}]},
        "params[0].keyword: 'if' cannot be used",
    ),
    (
        {"version": 2, "params": [{"keyword": "A"}]},
        "params[0]: needs min, max and step, or list, or files",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "min": 1, "max": 2}]},
        "params[0]: has min, max but no step",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "type": "range", "min": 1}]},
        'params[0].type: unknown type "range"',
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "type": ["list"], "list": [1]}]},
        'params[0].type: unknown type ["list"]',
    ),
    (
        {
            "version": 2,
            "params": [
                {"keyword": "A", "list": ["a"]},
                {"keyword": "B", "min": 1, "max": 3, "step": 0},
            ],
        },
        "params[1].step: must not be 0",
    ),
    (
        {
            "version": 2,
            "params": [
                {"keyword": "A", "list": ["a"]},
                {"keyword": "B", "min": 3, "max": 1, "step": 1},
            ],
        },
        "params[1].step: is 1 but max (1) is smaller than min (3), so the range is empty",
    ),
    (
        {"version": 2, "params": [{"keyword": "B", "min": 1, "max": 3, "step": -0.5}]},
        "params[0].step: is -0.5 but max (3) is larger than min (1)",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "min": "1", "max": 3, "step": 1}]},
        'params[0].min: must be a number, found "1"',
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "min": 1, "max": True, "step": 1}]},
        "params[0].max: must be a number, found true",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "min": 1, "max": 2, "step": float("nan")}]},
        "params[0].step: must be a number",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "type": "list", "list": []}]},
        "params[0].list: is empty; give at least one value",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "type": "list", "list": 3}]},
        "params[0].list: must be a list, found a number",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["a", None]}]},
        "params[0].list[1]: must be a string or a number, found null",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["a", "b", "a"]}]},
        "params[0].list: 'a' appears twice the same instance directory name",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["1.5", "1_5"]}]},
        "params[0].list: '1_5' and '1.5' give the same instance directory name (..._1_5)",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["x", "x/"]}]},
        "params[0].list: 'x/' and 'x' give",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "files": ["../up*"]}]},
        "params[0].files[0]: '../up*' must stay inside",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "files": ["/etc/pass*"]}]},
        "params[0].files[0]: '/etc/pass*' must stay inside",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "type": "files", "files": [""]}]},
        "params[0].files[0]: must be a glob pattern",
    ),
    (
        {
            "version": 2,
            "params": [{"keyword": "A", "list": ["a"]}, {"keyword": "A", "list": ["b"]}],
        },
        "params[1].keyword: 'A' is already the keyword of params[0]",
    ),
    (
        {"version": 2, "targetFiles": {}, "params": [{"keyword": "A", "list": ["a"]}]},
        "targetFiles: must be a list of file names",
    ),
    (
        {
            "version": 2,
            "targetFiles": ["a", {"targetNode": "x"}],
            "params": [{"keyword": "A", "list": ["a"]}],
        },
        "targetFiles[1].targetName: missing",
    ),
    (
        {"version": 2, "targetFiles": [3], "params": [{"keyword": "A", "list": ["a"]}]},
        "targetFiles[0]: must be a file name or an object",
    ),
    (
        {"version": 2, "targetFiles": ["../x"], "params": [{"keyword": "A", "list": ["a"]}]},
        "targetFiles[0]: '../x' must stay inside",
    ),
    (
        {
            "version": 2,
            "targetFiles": [{"targetName": "a", "targetNode": 5}],
            "params": [{"keyword": "A", "list": ["a"]}],
        },
        "targetFiles[0].targetNode: must be a component ID",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["a"]}], "scatter": {}},
        "scatter: must be a list, found an object",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["a"]}], "scatter": [{"dstName": "x"}]},
        "scatter[0].srcName: missing",
    ),
    (
        {
            "version": 2,
            "params": [{"keyword": "A", "list": ["a"]}],
            "scatter": [{"srcName": "", "dstName": "x"}],
        },
        "scatter[0].srcName: is empty",
    ),
    (
        {
            "version": 2,
            "params": [{"keyword": "A", "list": ["a"]}],
            "gather": [{"srcName": "x", "dstName": 1}],
        },
        "gather[0].dstName: must be a string, found a number",
    ),
    (
        {"version": 2, "params": [{"keyword": "A", "list": ["a"]}], "gather": ["x"]},
        "gather[0]: must be an object, found a string",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"),
    BAD_FILES,
    ids=[m.split(":")[0] + ":" + str(i) for i, (_, m) in enumerate(BAD_FILES)],
)
def test_malformed_files_name_the_file_and_the_field(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    path = write_setting(tmp_path, data)
    with pytest.raises(ProjectError) as info:
        load_parameter_setting(path)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="file not found"):
        load_parameter_setting(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 2,\n "params": [,]}')
    with pytest.raises(ProjectError, match="malformed JSON at line 2"):
        load_parameter_setting(bad)
    bad.write_text("[]")
    with pytest.raises(ProjectError, match="must hold a JSON object"):
        load_parameter_setting(bad)


# --------------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize(
    ("axis", "expected"),
    [
        # WHEEL parameterParser tests
        ({"min": 0.3, "max": 0.6, "step": 0.1}, ["0.3", "0.4", "0.5", "0.6"]),
        ({"min": 1, "max": 3, "step": 1}, ["1", "2", "3"]),
        ({"min": 1, "max": 10, "step": 2}, ["1", "3", "5", "7", "9"]),
        ({"min": 1.0, "max": 2.0, "step": 0.2}, ["1", "1.2", "1.4", "1.6", "1.8", "2"]),
        ({"min": -5, "max": 5, "step": 5}, ["-5", "0", "5"]),
        ({"min": 1, "max": 10, "step": 3}, ["1", "4", "7", "10"]),
        ({"min": -1.0, "max": 1.0, "step": 0.5}, ["-1", "-0.5", "0", "0.5", "1"]),
        ({"list": ["3.14", "0.08", "9.2"]}, ["3.14", "0.08", "9.2"]),
        ({"list": ["foo", "bar", "baz"]}, ["foo", "bar", "baz"]),
        # WHEEL under Node.js: integral values lose their decimals, others keep them all
        ({"min": 0.15, "max": 0.45, "step": 0.15}, ["0.15", "0.30", "0.45"]),
        ({"min": 1, "max": 2, "step": 0.25}, ["1", "1.25", "1.50", "1.75", "2"]),
        ({"min": 7, "max": 7, "step": 1}, ["7"]),
        ({"min": 1e6, "max": 1e6 + 1000, "step": 500}, ["1000000", "1000500", "1001000"]),
        # JSON numbers in a list are written as JavaScript writes them
        (
            {"list": [1, 2.5, 3.0, True, 1e21, -0.0001]},
            ["1", "2.5", "3", "true", "1e+21", "-0.0001"],
        ),
    ],
)
def test_axis_values(axis: dict[str, Any], expected: list[str]) -> None:
    assert values_of(axis) == expected


def test_ranges_are_exact_where_wheel_loses_values() -> None:
    # WHEEL: 0.29 * 100 is 28.999999999999996 in floating point, so its count is 29 and 0.29 is lost
    values = values_of({"min": 0, "max": 0.29, "step": 0.01})
    assert len(values) == 30
    assert values[:3] == ["0", "0.01", "0.02"] and values[-1] == "0.29"
    assert len(values_of({"min": 0, "max": 0.35, "step": 0.07})) == 6  # WHEEL: 5
    # WHEEL formats these as "0", "0", "0" (1e-7 has no "." in JavaScript's writing)
    assert values_of({"min": 1e-7, "max": 3e-7, "step": 1e-7}) == [
        "0.0000001",
        "0.0000002",
        "0.0000003",
    ]


def test_negative_step_runs_from_min_down_to_max() -> None:
    # WHEEL computes a negative count here and produces nothing useful
    assert values_of({"min": 5, "max": 1, "step": -1}) == ["5", "4", "3", "2", "1"]
    assert values_of({"min": 1, "max": 0, "step": -0.3}) == ["1", "0.7", "0.4", "0.1"]


def test_huge_integers_stay_exact() -> None:
    # JavaScript would compute 1e30 + 1 == 1e30 and give three equal values
    big = 10**30
    assert values_of({"min": big, "max": big + 2, "step": 1}) == [
        str(big),
        str(big + 1),
        str(big + 2),
    ]


def test_first_axis_varies_fastest() -> None:
    setting = setting_of(
        {"keyword": "A", "min": 1, "max": 3, "step": 1}, {"keyword": "B", "list": ["x", "y"]}
    )
    got = [(v.index, v.params["A"], v.params["B"]) for v in iterate_vectors(setting, ".")]
    assert got == [
        (0, "1", "x"),
        (1, "2", "x"),
        (2, "3", "x"),
        (3, "1", "y"),
        (4, "2", "y"),
        (5, "3", "y"),
    ]


def test_vector_n_and_resume() -> None:
    setting = setting_of(
        {"keyword": "A", "min": 0, "max": 4, "step": 1},
        {"keyword": "B", "list": ["p", "q", "r"]},
        {"keyword": "C", "min": 0.5, "max": 1.5, "step": 0.5},
    )
    space = expand_space(setting, ".")
    everything = list(space)
    assert len(everything) == len(space) == space.size == 45
    assert [space.vector(i) for i in range(45)] == everything
    assert list(iterate_vectors(setting, ".", start=17)) == everything[17:]
    assert list(space.iterate(45)) == []
    with pytest.raises(IndexError):
        space.vector(45)


def test_count_without_iterating() -> None:
    setting = setting_of(
        *({"keyword": f"K{i}", "min": 1, "max": 1000, "step": 1} for i in range(3))
    )
    assert count_vectors(setting, ".") == 10**9


# --------------------------------------------------------------------------------------------
# laziness and memory


def test_iteration_is_lazy() -> None:
    setting = setting_of(
        *({"keyword": f"K{i}", "min": 1, "max": 1000, "step": 1} for i in range(3))
    )
    it = iterate_vectors(setting, ".")
    assert isinstance(it, Iterator)
    first = next(it)
    assert first.params == {"K0": "1", "K1": "1", "K2": "1"}
    assert next(it).params == {"K0": "2", "K1": "1", "K2": "1"}


def _peak_while_iterating(it: Iterator[ParamVector], n: int) -> int:
    # warm-up: first-use caches and CPython's free lists (a bounded plateau) are not growth
    for _ in itertools.islice(it, 5_000):
        pass
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        names = 0
        for vector in itertools.islice(it, n):
            names += len(instance_name("PS0", vector))
        assert names > 0
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_ten_thousand_vectors_in_flat_memory() -> None:
    setting = setting_of(
        {"keyword": "A", "min": 0, "max": 99, "step": 1},
        {"keyword": "B", "min": 0.0, "max": 9.9, "step": 0.1},
        {"keyword": "C", "list": [f"v{i}" for i in range(20)]},
    )
    assert count_vectors(setting, ".") == 200_000
    small = _peak_while_iterating(iterate_vectors(setting, "."), 1_000)
    large = _peak_while_iterating(iterate_vectors(setting, "."), 10_000)
    # a list of 10,000 vectors alone takes about 4 MB; iterating must not grow with the count
    assert large < 64 * 1024, large
    assert large < small + 16 * 1024, (small, large)


def test_files_axis_iteration_also_streams(tmp_path: Path) -> None:
    for i in range(100):
        (tmp_path / f"in_{i:03d}.dat").write_text("x")
    setting = setting_of(
        {"keyword": "N", "min": 1, "max": 200, "step": 1}, {"keyword": "F", "files": ["in_*.dat"]}
    )
    assert count_vectors(setting, tmp_path) == 20_000
    assert _peak_while_iterating(iterate_vectors(setting, tmp_path), 10_000) < 64 * 1024


# --------------------------------------------------------------------------------------------
# files axis


def test_files_axis_globs_existing_files_when_expanded(ps_dir: Path) -> None:
    setting = load_parameter_setting(write_setting(ps_dir, DOC_EXAMPLE))
    (ps_dir / "data_3").write_text("late")  # created after loading, before expansion
    space = expand_space(setting, ps_dir)
    assert space.files == ("data_1", "data_2", "data_3")  # sorted; .data_hidden is not matched
    vectors = list(space)
    assert {v.files for v in vectors} == {("data_1",), ("data_2",), ("data_3",)}
    assert vectors[0].values[2].kind == "files"


def test_files_axis_patterns(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt", "sub/deep/d.txt", ".hidden.txt"):
        (tmp_path / name).write_text(name)
    axis = FilesAxis("F", ("**/*.txt", "a.*", ".hidden.txt"), "params[0]")
    # recursive **, duplicates removed in first-seen order, hidden files only when named
    assert axis.expand(tmp_path) == ("a.txt", "b.txt", "sub/c.txt", "sub/deep/d.txt", ".hidden.txt")


def test_files_axis_without_matches_is_an_error(ps_dir: Path) -> None:
    setting = parse_parameter_setting(
        {
            "version": 2,
            "params": [
                {"keyword": "A", "list": ["a"]},
                {"keyword": "F", "files": ["nope*", "none"]},
            ],
        },
        ps_dir / "parameterSetting.json",
    )
    with pytest.raises(ProjectError) as info:
        iterate_vectors(setting, ps_dir)  # raised at the call, not at the first next()
    message = str(info.value)
    assert message.startswith(
        f"{ps_dir / 'parameterSetting.json'}: params[1].files: no file in {ps_dir}"
    )
    assert "'nope*', 'none'" in message
    with pytest.raises(ProjectError):
        count_vectors(setting, ps_dir)


def test_files_that_collide_after_sanitizing_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.1").write_text("")
    (tmp_path / "a_1").write_text("")
    setting = setting_of({"keyword": "F", "files": ["a*"]})
    with pytest.raises(ProjectError, match=r"params\[0\].files: 'a_1' and 'a.1' give the same"):
        count_vectors(setting, tmp_path)


# --------------------------------------------------------------------------------------------
# naming and environment


@pytest.mark.parametrize(
    ("text", "replacer", "expected"),
    [
        # WHEEL pathUtils tests
        ("test/path?name=sample*file.txt", "_", "test_path_name_sample_file_txt"),
        ("C:\\Users\\Admin\\file?.txt", "_", "C:_Users_Admin_file__txt"),
        ("test/path?name=sample*file.txt", "-", "test-path-name-sample-file-txt"),
        ("C:\\Users\\Admin\\file?.txt", "+", "C:+Users+Admin+file++txt"),
        ("CON", "_", "CON"),
        ("AUX.txt", "_", "AUX_txt"),
        ("NUL.txt", ".", ""),
        ("test/path?", "-", "test-path"),
        ("sample*", "_", "sample"),
        ("file?.txt", "_", "file__txt"),
        ("valid_filename.txt", "_", "valid_filename_txt"),
        ("folder/subfolder/file", "_", "folder_subfolder_file"),
        # every replaced character, and what is kept
        ("/\\*?[]{}()!+@.~=", "_", "_______________"),
        ("a b:c-d,e'f\"g<h>i|j$k#l%m&n;o", "_", "a b:c-d,e'f\"g<h>i|j$k#l%m&n;o"),
        ("trailing__", "_", "trailing_"),
    ],
)
def test_sanitize_path(text: str, replacer: str, expected: str) -> None:
    assert sanitize_path(text, replacer) == expected


def test_instance_names_follow_wheel() -> None:
    setting = setting_of({"keyword": "KEYWORD1", "min": 1, "max": 3, "step": 1})
    names = [instance_name("PS0", v) for v in iterate_vectors(setting, ".")]
    assert names == ["PS0_KEYWORD1_1", "PS0_KEYWORD1_2", "PS0_KEYWORD1_3"]  # WHEEL dispatcher tests
    mixed = setting_of(
        {"keyword": "x", "min": -0.5, "max": 0.5, "step": 0.5},
        {"keyword": "f", "list": ["sub/data.txt", "a b"]},
    )
    assert [instance_name("ps", v) for v in iterate_vectors(mixed, ".")] == [
        "ps_x_-0_5_f_sub_data_txt",
        "ps_x_0_f_sub_data_txt",
        "ps_x_0_5_f_sub_data_txt",
        "ps_x_-0_5_f_a b",
        "ps_x_0_f_a b",
        "ps_x_0_5_f_a b",
    ]
    trailing = setting_of({"keyword": "k", "list": ["v.", "w"]})
    assert [instance_name("ps", v) for v in iterate_vectors(trailing, ".")] == ["ps_k_v", "ps_k_w"]


def test_instance_env() -> None:
    setting = setting_of(
        {"keyword": "KEYWORD1", "min": 0.5, "max": 1, "step": 0.5},
        {"keyword": "name", "list": ["a<b"]},
    )
    vector = next(iterate_vectors(setting, "."))
    assert instance_env(vector) == {"WHEEL_PS_PARAM_KEYWORD1": "0.5", "WHEEL_PS_PARAM_name": "a<b"}
    assert vector.params == {"KEYWORD1": "0.5", "name": "a<b"}
    assert vector.files == ()


# --------------------------------------------------------------------------------------------
# templates


def vec(**params: str) -> ParamVector:
    setting = setting_of(*({"keyword": k, "list": [v]} for k, v in params.items()))
    return next(iterate_vectors(setting, "."))


def test_render_keeps_html_special_characters() -> None:
    # WHEEL's nunjucks runs with autoescape: true and writes &lt; &amp; &quot; &#39; &gt; here
    vector = vec(OP="a < b && c > d", Q="say \"hi\" & 'bye'")
    out = render_template("if ({{ OP }}) then\nmsg = {{ Q }}\n", vector, source="input.txt")
    assert out == "if (a < b && c > d) then\nmsg = say \"hi\" & 'bye'\n"
    assert "&lt;" not in out and "&amp;" not in out and "&#34;" not in out and "&quot;" not in out


def test_render_nunjucks_features_from_the_wheel_docs() -> None:
    vector = vec(number="foo", KEYWORD1="2")
    assert render_template("{{ number | upper }}", vector) == "FOO"
    assert render_template('{{ "true" if number == "foo" else "false" }}', vector) == "true"
    assert render_template("HOGE={{ KEYWORD1 }}", vector) == "HOGE=2"
    assert render_template("{{KEYWORD1}}{{- ' x' }}", vector) == "2 x"
    assert render_template("n={{ KEYWORD1 | int + 1 }}", vector) == "n=3"


def test_render_keeps_the_file_exactly() -> None:
    vector = vec(K="v")
    assert render_template("a={{ K }}\n\n", vector) == "a=v\n\n"  # trailing newlines kept
    assert render_template("a={{ K }}\r\nb\r\n", vector) == "a=v\r\nb\r\n"  # CRLF kept
    assert render_template("no placeholder \r\n at all", vector) == "no placeholder \r\n at all"
    # a value that looks like a placeholder is not rendered again
    assert render_template("{{ K }}", vec(K="{{ K }}")) == "{{ K }}"
    assert render_template("x={{ K }}", {"K": "from a mapping"}) == "x=from a mapping"


PLAIN_PIECES = [
    "a",
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "é",
    "x=",
    "{{ N }}",
    "{{N}}",
    "{{  M\t}}",
    "{{\nN\n}}",
    "{{ EMPTY }}",
    "{{ V }}",
]
OTHER_PIECES = ["{", "}", "{%", "%}", "{#", "#}", "{{ true }}", "{{- N }}", "{{ N -}}", "{{ X }}"]


@pytest.mark.parametrize(
    "text",
    [
        "value={{ N }}\n",
        "{{N}}{{M}}",
        "a\r\nb\nc\rd {{ N }}",  # Jinja2 makes every line end the text's CRLF
        "a\nb\rc {{ N }}",  # ... or LF
        "{{ N }}\r",
        "{{{ N }}",
        "{{ N }}}",
        "{ {{ N }} }",
        "{{ true }} {{ N }}",
        "{{ N|upper }}",
        "{{ X }}",  # unknown: the error comes from Jinja2
    ],
)
def test_plain_placeholders_render_as_jinja2_renders_them(text: str) -> None:
    """A text with only ``{{ name }}`` placeholders is filled in without Jinja2; the result
    (and any error) must be Jinja2's own."""
    params = {"N": "1<&>\n2", "M": "", "V": "{{ N }}", "EMPTY": ""}
    assert_renders_as_jinja2(text, params)


def test_plain_placeholders_render_as_jinja2_renders_them_randomly() -> None:
    rng = random.Random(7)
    params = {"N": "1<&>\r\n2", "M": "", "V": "{{ N }}", "EMPTY": ""}
    plain = 0
    for _ in range(3000):
        pieces = PLAIN_PIECES if rng.random() < 0.6 else PLAIN_PIECES + OTHER_PIECES
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        plain += _paramstudy._plain_template(text) is not None
        assert_renders_as_jinja2(text, params)
    assert plain > 1000  # the fast way was taken often


def assert_renders_as_jinja2(text: str, params: dict[str, str]) -> None:
    try:
        want: str | None = _paramstudy._compile(text).render(params) if "{" in text else text
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError):
        want = None
    try:
        got: str | None = render_template(text, params)
    except ProjectError:
        got = None
    assert got == want, text


def test_render_unknown_placeholder_names_the_file() -> None:
    with pytest.raises(ProjectError) as info:
        render_template("a={{ KEYWORD2 }}", vec(KEYWORD1="1"), source=Path("task0/input.txt"))
    message = str(info.value)
    assert message.startswith("task0/input.txt: unknown placeholder")
    assert "'KEYWORD2' is undefined" in message and "the parameters are KEYWORD1" in message


def test_render_errors_name_the_file() -> None:
    with pytest.raises(ProjectError, match=r"^in\.txt: template syntax error at line 2"):
        render_template("ok\n{{ K ", vec(K="1"), source="in.txt")
    with pytest.raises(ProjectError, match=r"^in\.txt: template cannot be rendered"):
        render_template("{{ K + 1 }}", vec(K="1"), source="in.txt")  # "1" + 1, a str and an int


def test_render_is_sandboxed() -> None:
    with pytest.raises(ProjectError, match="in.txt"):
        render_template(
            "{{ K.__class__.__mro__[1].__subclasses__() }}", vec(K="1"), source="in.txt"
        )
    with pytest.raises(ProjectError, match="in.txt"):
        render_template("{{ K.upper.__globals__ }}", vec(K="1"), source="in.txt")


# --------------------------------------------------------------------------------------------
# scatter and gather


def test_resolve_scatter_and_gather(ps_dir: Path) -> None:
    setting = load_parameter_setting(write_setting(ps_dir, DOC_EXAMPLE))
    vector = expand_space(setting, ps_dir).vector(4)  # KEYWORD1=2, KEYWORD3=bar, filename=data_1
    assert vector.params == {"KEYWORD1": "2", "KEYWORD3": "bar", "filename": "data_1"}
    [scatter] = resolve_scatter(setting, vector)
    src, node, dst = scatter  # a plain 3-tuple
    assert (src, node, dst) == ("testData", "1234-567890abcd", "hoge2")
    assert not scatter.dst_is_dir
    [gather] = resolve_gather(setting, vector)
    assert gather == ("hoge2", "1234-567890abcd", "results/2/bar/data_1/hoge")


def test_rules_without_node_and_directory_destinations() -> None:
    setting = setting_of(
        {"keyword": "K", "list": ["a"]},
        scatter=[{"srcName": "in_{{ K }}*", "dstName": "inputs/{{ K }}/"}],
        gather=[{"srcName": "out*", "dstName": ""}],
    )
    vector = next(iterate_vectors(setting, "."))
    [rule] = resolve_scatter(setting, vector)
    assert rule == FileRule("in_a*", None, "inputs/a/") and rule.dst_is_dir
    [rule] = resolve_gather(setting, vector)
    assert rule.node is None and rule.dst_is_dir


def test_rule_rendering_errors_name_the_rule() -> None:
    setting = setting_of(
        {"keyword": "K", "list": ["a"]}, scatter=[{"srcName": "x", "dstName": "{{ KK }}"}]
    )
    with pytest.raises(
        ProjectError, match=r"parameterSetting\.json \[scatter\[0\]\.dstName\]: unknown placeholder"
    ):
        resolve_scatter(setting, next(iterate_vectors(setting, ".")))


def test_copy_pairs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for name in ("r1.out", "r2.out", "sub/r3.out", "keep.txt"):
        (src / name).write_text(name)
    dst = tmp_path / "dst"
    into_dir = copy_pairs(FileRule("**/*.out", None, "results/a/"), src, dst)
    assert into_dir == [
        (src / "r1.out", dst / "results/a/r1.out"),
        (src / "r2.out", dst / "results/a/r2.out"),
        (src / "sub/r3.out", dst / "results/a/sub/r3.out"),
    ]
    renamed = copy_pairs(FileRule("keep.txt", None, "renamed.txt"), src, dst)
    assert renamed == [(src / "keep.txt", dst / "renamed.txt")]
    assert copy_pairs(FileRule("nothing*", None, "x"), src, dst) == []
    assert copy_pairs(FileRule("keep.txt", None, ""), src, dst) == [
        (src / "keep.txt", dst / "keep.txt")
    ]
    with pytest.raises(ProjectError, match="destination '../escape' must stay inside"):
        copy_pairs(FileRule("keep.txt", None, "../escape"), src, dst)
    with pytest.raises(ProjectError, match="source '../\\*' must stay inside"):
        copy_pairs(FileRule("../*", None, "x"), src, dst)


def test_copy_exclusions(ps_dir: Path) -> None:
    setting = load_parameter_setting(write_setting(ps_dir, DOC_EXAMPLE))
    excluded = copy_exclusions(setting, ps_dir, {"1234-567890abcd": "task0"})
    assert excluded == {
        "cmp.wheel.json",
        "parameterSetting.json",
        "data_1",
        "data_2",
        "input1.txt",
        "task0/input2.txt",
        "testData",
    }
    with pytest.raises(ProjectError, match="component '1234-567890abcd', which is not below"):
        copy_exclusions(setting, ps_dir)


def test_exports() -> None:
    for name in _paramstudy.__all__:
        assert hasattr(_paramstudy, name), name


# ---------------------------------------------------------------------------------------------
# Matching a gather's or scatter's name


@pytest.fixture(scope="module")
def match_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files, a hidden file, a directory and a dangling link to match names against."""
    d = tmp_path_factory.mktemp("match")
    (d / "a").mkdir()
    (d / "a" / "f.txt").write_text("x")
    (d / "a" / ".h").write_text("x")
    (d / "f").write_text("x")
    os.symlink("nowhere", d / "dangling")
    return d


@given(
    st.lists(
        st.sampled_from(["a", "f", "f.txt", ".h", "dangling", "missing", ".", "..", "", "x y"]),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_name_without_glob_characters_matches_as_glob_matches_it(
    match_tree: Path, parts: list[str], slash: bool
) -> None:
    name = "/".join(parts) + ("/" if slash else "")
    assert _paramstudy._matches(name, match_tree) == sorted(
        glob.glob(name, root_dir=match_tree, recursive=True)
    )
