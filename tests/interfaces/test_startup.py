"""What the command line imports to start: each verb loads only what it uses.

The CLI runs in a fresh interpreter as ``python -m sharin …`` does (and the console script), and
the modules in ``sys.modules`` when it exits are compared with what the verb needs. These are
tests of imports, not of time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sharin
from sharin import Project

#: what the asyncio engine, the run journal and the parameter-study templates pull in
ENGINE = ("asyncio", "sqlite3", "jinja2", "msgspec", "sharin.engine")


#: runs ``python -m sharin ARGS`` (as the console script does) and, at exit, writes the names
#: of every module imported to the file given first
WRAPPER = """\
import atexit, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("sharin", run_name="__main__", alter_sys=True)
"""


def imported(tmp_path: Path, *args: object, code: int = 0) -> set[str]:
    """The modules ``sharin ARGS`` has imported when it exits."""
    out = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, out, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == code, proc.stderr[-3000:]
    names = set(out.read_text().split())
    assert "sharin.interfaces.cli" in names  # the CLI ran
    return names


def loaded(names: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of ``names`` that are one of ``packages`` or inside one of them."""
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in packages))


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """A project with one task, run to the end."""
    p = sharin.new_project(tmp_path / "done")
    sharin.add_task(p, "hello", "echo hello > out.txt", outputs=["out.txt"])
    assert sharin.run(p).ok
    return p.root


def test_help_imports_neither_engine_nor_model_nor_rich(tmp_path: Path) -> None:
    names = imported(tmp_path, "--help")
    assert loaded(names, ENGINE) == []
    assert loaded(names, ("rich", "sharin.model", "sharin.interfaces.api")) == []


def test_a_verbs_help_imports_no_engine(tmp_path: Path) -> None:
    assert loaded(imported(tmp_path, "run", "--help"), ENGINE) == []
    add_help = imported(tmp_path, "add", "--help")  # lists the component types of the model
    assert loaded(add_help, ("asyncio", "sqlite3", "jinja2", "sharin.engine")) == []


def test_status_of_a_finished_project_reads_the_journal_without_the_engine(
    tmp_path: Path,
    finished: Path,
) -> None:
    names = imported(tmp_path, "status", finished)
    assert "sharin.engine._journal" in names  # the journal is read, the engine is not loaded
    heavy = ("asyncio", "jinja2", "sharin.engine._engine", "sharin.executors.local")
    assert loaded(names, heavy) == []


#: all of sharin that ``status --json`` loads: the command line and the API, the project's
#: name and state (``prj.wheel.json``: the project, component, JSON and path modules of the
#: model) and the run journal with the engine's layout (where the journal is), nothing more
STATUS_MODULES = {
    "sharin",
    "sharin._lazy",
    "sharin.errors",
    "sharin.interfaces",
    "sharin.interfaces.cli",
    "sharin.interfaces.api",
    "sharin.model",
    "sharin.model._component",
    "sharin.model._jsonio",
    "sharin.model._paths",
    "sharin.model._project",
    "sharin.engine",
    "sharin.engine._layout",
    "sharin.engine._journal",
}


def test_status_json_imports_no_rich(tmp_path: Path, finished: Path) -> None:
    names = imported(tmp_path, "status", finished, "--json")
    assert loaded(names, ("rich",)) == []
    assert loaded(names, ("asyncio", "jinja2", "sharin.engine._engine")) == []


def test_status_json_loads_the_journal_and_prj_wheel_json_only(
    tmp_path: Path, finished: Path
) -> None:
    names = imported(tmp_path, "status", finished, "--json")
    assert set(loaded(names, ("sharin",))) == STATUS_MODULES
    # no type check of the component files (msgspec), no git (subprocess), no file writing
    assert loaded(names, ("msgspec", "subprocess", "shutil", "tempfile", "rich", "asyncio")) == []


def test_status_shows_name_and_state_from_prj_wheel_json(tmp_path: Path, finished: Path) -> None:
    # status reads only prj.wheel.json: a broken component file does not stop it, and what it
    # shows is what the whole project says
    (finished / "hello" / "cmp.wheel.json").write_text("{ not json")
    out = subprocess.run(
        [sys.executable, "-m", "sharin", "status", str(finished), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    p = sharin.open_project(finished)
    assert (shown["project"], shown["state"]) == (p.name, p.state) == ("done", "finished")
    assert [t["key"] for t in shown["tasks"]] == ["hello"]


def test_the_model_loads_each_part_on_first_use() -> None:
    code = (
        "import sys\n"
        "from sharin.model import Project, git\n"
        "assert 'sharin.model._validate' not in sys.modules\n"
        "assert 'sharin.model._paramstudy' not in sys.modules\n"
        "import sharin.model as m\n"
        "from sharin.model import _git\n"
        "assert git is _git and m.cleaning.__name__ == 'sharin.model._clean'\n"
        "assert m.check.__module__ == 'sharin.model._validate'\n"
        "assert 'check' in dir(m) and 'cleaning' in dir(m)\n"
        "assert set(m.__all__) <= set(dir(m))\n"
        "for name in m.__all__:\n"
        "    getattr(m, name)\n"
        "try:\n"
        "    m.no_such_name\n"
        "except AttributeError as e:\n"
        "    assert 'no_such_name' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_runs_json_imports_no_rich(tmp_path: Path, finished: Path) -> None:
    assert loaded(imported(tmp_path, "runs", finished, "--json"), ("rich", "asyncio")) == []


def test_a_local_run_imports_no_scheduler_nor_remote_executor(tmp_path: Path) -> None:
    p = sharin.new_project(tmp_path / "local")
    sharin.add_task(p, "hello", "echo hello > out.txt", outputs=["out.txt"])
    names = imported(tmp_path, "run", "-q", p.root)
    assert "sharin.executors.local" in names  # it ran
    assert (
        loaded(
            names,
            (
                "sharin.executors._scheduler",
                "sharin.executors._schedulers",
                "sharin.executors.batch",
                "sharin.executors.remote",
                "sharin.executors._ssh",
                "asyncssh",
            ),
        )
        == []
    )


def test_validate_imports_no_engine_and_no_journal(tmp_path: Path, finished: Path) -> None:
    for args in ((), ("--json",)):
        names = imported(tmp_path, "validate", finished, *args)
        assert loaded(names, ("asyncio", "sqlite3", "jinja2", "sharin.engine._engine")) == []
        assert loaded(names, ("sharin.executors.local", "sharin.executors.batch")) == []
    assert loaded(imported(tmp_path, "validate", finished, "--json"), ("rich",)) == []


def test_validate_of_a_valid_project_loads_no_rich_and_no_dataclass_for_expressions(
    tmp_path: Path, finished: Path
) -> None:
    names = imported(tmp_path, "validate", finished)
    assert loaded(names, ("rich",)) == []
    # the syntax tree of conditions is made of plain classes, not generated at import
    assert "sharin.model._expr" in names
    from sharin.model import _expr

    assert not hasattr(_expr.Const, "__dataclass_fields__")


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({}, "valid: no problems found\n"),
        ({"FORCE_COLOR": "1"}, "\x1b[32mvalid\x1b[0m: no problems found\n"),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, "valid: no problems found\n"),
    ],
)
def test_validate_colours_its_verdict_as_rich_would(
    finished: Path, env: dict[str, str], shown: str
) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    out = subprocess.run(
        [sys.executable, "-m", "sharin", "validate", str(finished)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **env},
    )
    assert (out.returncode, out.stdout) == (0, shown), out.stderr


def test_validate_loads_the_loop_and_parameter_study_modules_only_for_such_components(
    tmp_path: Path, finished: Path
) -> None:
    heavy = ("sharin.model._loops", "sharin.model._paramstudy")
    assert loaded(imported(tmp_path, "validate", finished), heavy) == []
    sharin.add_component(finished, "for", "loop", start=0, end=2, step=1)
    sharin.add_component(finished, "parameterStudy", "ps")
    # exit 2: the new study's parameterSetting.json defines no parameter yet
    names = imported(tmp_path, "validate", finished, "--json", code=2)
    assert loaded(names, heavy) == list(heavy)


def test_import_sharin_loads_the_api_on_first_use() -> None:
    code = (
        "import sys, sharin\n"
        "assert 'sharin.interfaces.api' not in sys.modules and 'asyncio' not in sys.modules\n"
        "assert 'run' in dir(sharin) and 'Project' in dir(sharin)\n"
        "from sharin import Project\n"
        "assert Project.__module__ == 'sharin.model._project'\n"
        "assert 'sharin.engine._engine' not in sys.modules\n"
        "assert sharin.run.__module__ == 'sharin.interfaces.api'\n"
        "try:\n"
        "    sharin.no_such_name\n"
        "except AttributeError as e:\n"
        "    assert 'no_such_name' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_the_lazy_names_are_the_defining_modules_objects(project: Project) -> None:
    import sharin.engine
    from sharin.engine import _engine, _layout
    from sharin.interfaces import api

    assert sharin.run is api.run and sharin.RunOptions is _engine.RunOptions
    # the engine's layout, read without loading the engine, is the engine's own
    assert _layout.SUPPORTED_TYPES == _engine.SUPPORTED_TYPES
    assert _layout.sharin_dir(project.root) == _engine.sharin_dir(project.root)
    assert sharin.engine.sharin_dir is _layout.sharin_dir


def test_the_cli_module_runs_as_a_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sharin.interfaces.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: sharin" in proc.stdout


def test_status_of_a_finished_project_loads_no_rich_when_not_on_a_terminal(
    tmp_path: Path, finished: Path
) -> None:
    assert loaded(imported(tmp_path, "status", finished), ("rich",)) == []


def _rich_table(title: str, columns: list[str], rows: list[list[str]], width: int) -> str:
    import io

    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False, emoji=False, force_terminal=False)
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return out.getvalue()


_CELLS = st.text(alphabet=st.sampled_from("abc XYZ019_-.:/()[]\\é\t"), max_size=12)


@given(
    st.text(alphabet=st.sampled_from("run 1(finshed)"), min_size=1, max_size=30),
    st.lists(_CELLS.filter(bool), min_size=1, max_size=6),
    st.data(),
    st.integers(min_value=20, max_value=120),
)
@settings(max_examples=300, deadline=None)
def test_the_plain_status_table_is_what_rich_writes(
    title: str, columns: list[str], data: st.DataObject, width: int
) -> None:
    from sharin.interfaces.cli import _table_text

    rows = data.draw(st.lists(st.lists(_CELLS, min_size=len(columns), max_size=len(columns))))
    text = _table_text(title, columns, rows, width)
    if text is not None:  # else rich writes it
        assert text == _rich_table(title, columns, rows, width)


def test_the_plain_status_table_is_taken_for_a_usual_run() -> None:
    from sharin.interfaces.cli import _table_text

    cols = ["component", "type", "state", "attempt", "exit", "time", "message"]
    rows = [["hello", "task", "finished", "1", "0", "0.0s", ""]]
    rows.append(["wf/flaky", "task", "failed", "2", "9", "12.5s", "exit code 9"])
    text = _table_text("run 3 (failed)", cols, rows, 80)
    assert text is not None and text == _rich_table("run 3 (failed)", cols, rows, 80)
