"""Fuzz: mutated projects and configuration files never make sharin print a Python traceback.

Real projects (a chain with a file edge, a for loop, a parameter study, a foreach and an if, the
shipped examples) are
copied and one of their files is mutated — a key deleted, a value replaced by one of another
type, a 5,000-character string, random bytes, a truncated file — in each of ``prj.wheel.json``,
``cmp.wheel.json``, ``parameterSetting.json``, ``remotehost.json``, ``jobScheduler.json`` and
``server.json``. Then ``sharin set``, ``sharin validate``, ``sharin run`` and ``sharin status`` run in
this process, and:

* no command raises (no traceback), every exit code is one of the README's table, and no output
  contains "Traceback";
* a command that refuses (exit 2 or 4) changes no file (``.sharin/`` aside), and a run whose
  tasks failed (exit 1 or 3) changes no file but WHEEL's state files;
* ``status`` works on any project whose files are there, however broken.

The default profile is small and deterministic (derandomized) for CI; ``-m slow`` runs a bigger one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sharin
from sharin.interfaces import cli as cli_module

from .helpers import tree_snapshot, write_json
from .validation_cases import build_valid

REPO = Path(__file__).resolve().parents[1]
BUILTIN_SCHEDULERS = REPO / "src" / "sharin" / "executors" / "jobScheduler.json"
EXAMPLES = sorted((REPO / "examples").glob("*.wheel"))
EXIT_CODES = {0, 1, 2, 3, 4}  #: the README's table
#: files a run writes on purpose (component and project states, WHEEL's status file)
STATE_FILES = ("cmp.wheel.json", "prj.wheel.json", "status.wheel.txt")
CONFIG = {
    "remotehost.json": [
        {
            "name": "cluster",
            "host": "localhost",
            "transport": "local",
            "jobScheduler": "Fugaku",
            "queue": ["small", "large"],
            "numJob": 2,
            "statusCheckInterval": 1,
        },
        {
            "name": "fugaku",
            "host": "localhost",
            "transport": "local",
            "jobScheduler": "Fugaku",
            "useStepjob": True,
            "useBulkjob": True,
            "queue": "small,large",
        },
    ],
    "jobScheduler.json": {"Fugaku": json.loads(BUILTIN_SCHEDULERS.read_text())["Fugaku"]},
    "server.json": {"numJobOnLocal": 2},
}


# ------------------------------------------------------------------------------ base projects
def _chain(root: Path) -> None:
    p = build_valid(root)  # a writes out.txt, delivered to b as in.txt
    c = sharin.add_task(p, "c", 'echo "$GREETING" > said.txt', retry=1, outputs=["said.txt"])
    sharin.set_property(p, c, "env", {"GREETING": "hello", "N": 3})
    sharin.set_property(p, c, "include", ["said.txt"])
    sharin.connect(p, "b", c)


def _for_loop(root: Path) -> None:
    p = sharin.Project.create(root, git=False)
    loop = sharin.add_component(p, "for", "loop", start=0, end=2, step=1, keep=2)
    sharin.add_task(p, "t", 'echo "$WHEEL_CURRENT_INDEX" > i.txt', parent=loop, outputs=["i.txt"])
    after = sharin.add_task(p, "after", "echo done")
    sharin.connect(p, loop, after)


def _parameter_study(root: Path) -> None:
    p = sharin.Project.create(root, git=False)
    ps = sharin.add_component(p, "parameterStudy", "ps")
    t = sharin.add_task(p, "t", "cat input.txt > out.txt", parent=ps, outputs=["out.txt"])
    (t.directory / "input.txt").write_text("x={{ x }} y={{ y }}\n")
    write_json(
        ps.directory / "parameterSetting.json",
        {
            "version": 2,
            "targetFiles": [{"targetName": "input.txt", "targetNode": t.id}],
            "params": [
                {"keyword": "x", "type": "min-max-step", "min": 1, "max": 2, "step": 1},
                {"keyword": "y", "type": "list", "list": ["a", "b"]},
            ],
            "gather": [{"srcName": "out.txt", "srcNode": t.id, "dstName": "out_{{ x }}{{ y }}"}],
        },
    )


def _control(root: Path) -> None:
    p = sharin.Project.create(root, git=False)
    each = sharin.add_component(p, "foreach", "each", indexList=["a", 2])
    sharin.add_task(p, "t", 'echo "$WHEEL_CURRENT_INDEX" > i.txt', parent=each)
    check = sharin.add_component(p, "if", "check", condition='WHEEL_CURRENT_INDEX != "x"')
    yes = sharin.add_task(p, "yes", "echo yes")
    no = sharin.add_task(p, "no", "echo no")
    sharin.connect(p, each, check)
    sharin.connect(p, check, yes)
    sharin.connect(p, check, no, else_=True)


@dataclass(frozen=True)
class Base:
    name: str
    build: Callable[[Path], None]
    runnable: bool  #: its tasks run here in a moment (the examples need TensorFlow or PJM)


BASES = [
    Base("chain", _chain, True),
    Base("for_loop", _for_loop, True),
    Base("parameter_study", _parameter_study, True),
    Base("control", _control, True),
    *(
        Base(e.name.removesuffix(".wheel"), lambda r, e=e: _copy_example(e, r), False)
        for e in EXAMPLES
    ),
]


def _copy_example(example: Path, root: Path) -> None:
    shutil.copytree(example, root.with_suffix(".wheel"), ignore=shutil.ignore_patterns(".sharin"))


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    d = tmp_path_factory.mktemp("templates")
    config = d / "config"
    config.mkdir()
    for name, data in CONFIG.items():
        write_json(config / name, data)
    old = os.environ.get("SHARIN_CONFIG_DIR")
    os.environ["SHARIN_CONFIG_DIR"] = str(config)
    try:
        out = {"config": config}
        for base in BASES:
            base.build(d / base.name)
            out[base.name] = d / f"{base.name}.wheel"
        yield out
    finally:
        if old is None:
            os.environ.pop("SHARIN_CONFIG_DIR", None)
        else:
            os.environ["SHARIN_CONFIG_DIR"] = old


def test_the_base_projects_are_valid(
    templates: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARIN_CONFIG_DIR", str(templates["config"]))
    for base in BASES:
        assert sharin.validate(templates[base.name]) == [], base.name


# ------------------------------------------------------------------------------- mutations
SMALL_INTS = st.sampled_from([0, 1, 2, 3, -1])
BIG_NUMBERS = st.sampled_from([10**9, -(10**9), 2**63, 101, 1e300, 0.001, 2.5])
STRINGS = st.one_of(
    st.sampled_from(
        [
            "",
            "abc",
            "x" * 5000,
            "../x",
            "/etc/passwd",
            "a\x00b",
            "true",
            "null",
            "{{ x }}",
            "localhost",
            "a,b",
            "3",
            "-1",
            "2.5",
            "ü",
            # names of files that are there: a delivery or a copy must not overwrite them
            "run.sh",
            "cmp.wheel.json",
            "out.txt",
            "in.txt",
            "input.txt",
            "parameterSetting.json",
            "*",
        ]
    ),
    st.text(max_size=6),
)
SCALARS = st.one_of(st.none(), st.booleans(), SMALL_INTS, BIG_NUMBERS, STRINGS)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=4), SCALARS, max_size=2),
    st.just([{"name": 1}]),
    st.just({"a": [1]}),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: object keys and list indices, parents first."""
    out: list[tuple[Any, ...]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, sub in items:
        out.append((*prefix, key))
        out += _paths(sub, (*prefix, key))
    return out


def _heavy(value: Any) -> bool:
    """A number that could make a loop, a study or the retries run for very long."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return abs(value) > 20 or (value != 0 and abs(value) < 0.1)
    if isinstance(value, list):
        return any(_heavy(v) for v in value)
    if isinstance(value, dict):
        return any(_heavy(v) for v in value.values())
    return False


def _files(root: Path, config: Path) -> list[Path]:
    found = sorted(
        p
        for p in root.rglob("*.json")
        if ".sharin" not in p.parts
        and p.name in ("prj.wheel.json", "cmp.wheel.json", "parameterSetting.json")
    )
    return found + sorted(config.glob("*.json"))


@st.composite
def mutations(draw: st.DrawFn, files: list[Path]) -> tuple[Path, str, Callable[[Path], bool]]:
    """(file, what was done, apply): ``apply(path)`` mutates the file, True when the new value
    may be heavy to run."""
    index = draw(st.integers(0, len(files) - 1))
    target = files[index]
    kind = draw(st.sampled_from(["delete", "replace", "replace", "replace", "bytes", "truncate"]))
    if kind == "bytes":
        blob = draw(st.binary(max_size=40))

        def write_bytes(path: Path) -> bool:
            path.write_bytes(blob)
            return False

        return target, f"bytes {blob!r}", write_bytes
    if kind == "truncate":
        cut = draw(st.floats(0, 1))

        def truncate(path: Path) -> bool:
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * cut)])
            return False

        return target, f"truncated at {cut:.2f}", truncate
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None  # broken by an earlier mutation: replaced whole
    places = _paths(data)
    if not places:
        value = draw(VALUES)

        def whole(path: Path) -> bool:
            write_json(path, value)
            return _heavy(value)

        return target, f"replaced by {value!r}", whole
    place = places[draw(st.integers(0, len(places) - 1))]
    value = draw(VALUES) if kind == "replace" else None

    def change(path: Path) -> bool:
        doc = json.loads(path.read_text(encoding="utf-8"))
        parent = doc
        for key in place[:-1]:
            parent = parent[key]
        if kind == "delete":
            del parent[place[-1]]
        else:
            parent[place[-1]] = value
        write_json(path, doc)
        return _heavy(value)

    return target, f"{kind} {list(place)}" + (f" = {value!r}" if kind == "replace" else ""), change


# ------------------------------------------------------------------------------- properties
def _invoke(*args: object) -> Result:
    argv = [str(a) for a in args]
    r = CliRunner().invoke(cli_module.cli, argv, catch_exceptions=True, prog_name="sharin")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        import traceback

        assert r.exc_info is not None
        text = "".join(traceback.format_exception(*r.exc_info))
        raise AssertionError(f"sharin {' '.join(argv)} raised:\n{text}")
    assert r.exit_code in EXIT_CODES, (argv, r.exit_code, r.output)
    assert "Traceback" not in r.output, r.output
    for words in ("NoneType", "Expected `", "is not iterable", "unhashable"):  # Python's, msgspec's
        assert words not in r.output, r.output
    return r


def _snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    return {k: v for k, v in tree_snapshot(root).items() if not k.startswith(".sharin")}


def _check(base: Base, root: Path, config: Path, heavy: bool, what: str) -> None:
    config_before = tree_snapshot(config)
    first = min(p.parent.name for p in root.glob("*/cmp.wheel.json"))
    verbs = ["set", "validate"] + (["run"] if base.runnable and not heavy else [])
    for verb in verbs:
        before = _snapshot(root)
        args = {
            "set": ["set", root, first, "ignoreFailure=false"],
            "validate": ["validate", root],
            "run": ["run", root, "-q", "-j", "2"],
        }[verb]
        r = _invoke(*args)
        if verb == "set" and r.exit_code == 0:
            changed = sorted(k for k in before if _snapshot(root).get(k) != before[k])
            assert set(changed) <= {f"{first}/cmp.wheel.json", "prj.wheel.json"}, changed
        event(f"{verb} exit {r.exit_code}")
        after = _snapshot(root)
        changed = sorted(k for k in before if after.get(k) != before[k])
        if r.exit_code in (2, 4):
            assert changed == [], f"{what}: `sharin {verb}` refused but changed {changed}"
        elif r.exit_code in (1, 3):
            others = [k for k in changed if not k.endswith(STATE_FILES)]
            assert others == [], f"{what}: `sharin {verb}` failed and changed {others}"
        if r.exit_code == 2:
            shown = "".join(
                x for x in r.output.splitlines(keepends=True) if not x.startswith("note (WHEEL): ")
            )
            assert shown.startswith("error: "), r.output
        if verb == "validate" and r.exit_code == 0:
            assert "valid" in r.output
    assert tree_snapshot(config) == config_before, f"{what}: a configuration file was changed"
    status = _invoke("status", root)
    assert status.exit_code == 0, f"{what}: status failed: {status.output}"


def _fuzz(templates: dict[str, Path], monkeypatch: pytest.MonkeyPatch, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES), label="project")
    work = Path(tempfile.mkdtemp(prefix="fuzz-", dir=templates["config"].parent))
    try:
        root = work / f"{base.name}.wheel"
        shutil.copytree(templates[base.name], root, symlinks=True)
        config = work / "config"
        shutil.copytree(templates["config"], config)
        monkeypatch.setenv("SHARIN_CONFIG_DIR", str(config))
        heavy = False
        done = []
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            target, what, apply = data.draw(mutations(_files(root, config)), label="mutation")
            heavy = apply(target) or heavy
            done.append(f"{target.relative_to(work)}: {what}")
        _check(base, root, config, heavy, f"{base.name}: " + "; ".join(done))
    finally:
        shutil.rmtree(work, ignore_errors=True)


_SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(max_examples=200, **_SETTINGS)  # type: ignore[arg-type]
@given(data=st.data())
def test_mutated_projects_give_clear_errors(
    templates: dict[str, Path], monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    _fuzz(templates, monkeypatch, data)


@pytest.mark.slow
@settings(max_examples=1000, **_SETTINGS)  # type: ignore[arg-type]
@given(data=st.data())
def test_mutated_projects_give_clear_errors_many(
    templates: dict[str, Path], monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    _fuzz(templates, monkeypatch, data)
