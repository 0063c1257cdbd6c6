"""No blocking file work in the engine's coroutines: it goes to the file worker.

Every ``async def`` of ``sharin/engine/`` runs on the event loop, so a call in its body that
walks, copies, removes, reads or writes files would stall every task of the run (and a server
sharing the loop) for as long as the file system takes. Such work is handed to the engine's
file worker (``await run.files.call(fn, ...)``: ``fn`` is passed, not called, so it is not a
call here). The calls below are refused in a coroutine's own body (a function defined inside
it is not its body: it is what is handed over); the few that stay are in :data:`ALLOWED`, each
with its reason, and each checked to be still there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sharin

ENGINE = Path(sharin.__file__).resolve().parent / "engine"

#: module-qualified calls that block on the file system
BLOCKING_QUALIFIED = frozenset(
    {
        *(
            f"shutil.{f}"
            for f in (
                "copy",
                "copy2",
                "copyfile",
                "copyfileobj",
                "copytree",
                "move",
                "rmtree",
            )
        ),
        "os.walk",
        "os.fwalk",
        "os.listdir",
        "os.scandir",
        "glob.glob",
        "glob.iglob",
    }
)
#: methods (``Path``'s and the engine's) that read, write, list or remove whole files or trees
BLOCKING_METHODS = frozenset(
    {
        "read_text",
        "write_text",
        "read_bytes",
        "write_bytes",
        "iterdir",
        "rglob",
        "remove_tree",  # StateMirror: waits for a write, then removes a directory
        "_deliver_inputs",  # Engine: a component's inputs delivered
    }
)
#: functions called by name (the builtin ``open``, the engine's own) that do blocking file work
BLOCKING_FUNCTIONS = frozenset(
    {
        "open",
        # sharin.engine: walks, copies, deliveries, instances, trips
        "check_tree",
        "copy_path",
        "deliver",
        "expand_bulk",
        "_bulk_range",
        "_copy_tree",
        "_make_trip",
        "_copy_back",
        "_remove_trips",
        "_mark_instance",
        "_hand_on",
        "_store",
        "viewer_files",
        "gather",
        "update_json",
        "wheel_states",
        "fingerprint",  # the full one (quick_fingerprint reads a few small files at most)
        # sharin.model: files read or written whole
        "write_json_atomic",
        "load_parameter_setting",
        "expand_space",
        "copy_exclusions",
        "_template_listing",
    }
)

#: (module, coroutine, call): why it stays on the event loop
ALLOWED: dict[tuple[str, str, str], str] = {
    ("_control", "run_ps", "load_parameter_setting"): (
        "the study's parameter file: one small JSON file read once per study, before any "
        "of its instances"
    ),
    ("_control", "run_ps", "expand_space"): (
        "the parameter space is expanded lazily; a files axis globs the study's directory "
        "once per study"
    ),
    ("_control", "run_ps", "copy_exclusions"): (
        "globs the study's directory for its scatter and gather rules once per study"
    ),
    ("_control", "run_ps", "_template_listing"): (
        "lists the study's template once per study, before its instances are made (the "
        "instances, their gathers and their removal go to the file worker)"
    ),
    ("_taskfields", "run_checker", "open"): (
        "opens the task's two log files for appending, to hand them to the checker's "
        "process: no data goes through the loop"
    ),
}


def _called(node: ast.Call) -> str:
    """``shutil.rmtree``, ``read_text`` (a method), ``open`` (a name); else ''."""
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        if isinstance(f.value, ast.Name) and f"{f.value.id}.{f.attr}" in BLOCKING_QUALIFIED:
            return f"{f.value.id}.{f.attr}"
        return f".{f.attr}"
    return ""


def _own_calls(fn: ast.AsyncFunctionDef) -> list[ast.Call]:
    """The calls in ``fn``'s own body: not in functions, lambdas or classes defined inside it."""
    out: list[ast.Call] = []
    todo: list[ast.AST] = list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(node, ast.Call):
            out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _blocking(name: str) -> str | None:
    if name in BLOCKING_QUALIFIED:
        return name
    if name.startswith("."):
        return name[1:] if name[1:] in BLOCKING_METHODS else None
    return name if name in BLOCKING_FUNCTIONS else None


def blocking_calls() -> list[tuple[str, str, str, int]]:
    """(module, coroutine, call, line) of every blocking call in an engine coroutine's body."""
    found = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.AsyncFunctionDef):
                continue
            for call in _own_calls(fn):
                what = _blocking(_called(call))
                if what is not None:
                    found.append((path.stem, fn.name, what, call.lineno))
    return sorted(found, key=lambda x: (x[0], x[3]))


def test_no_blocking_file_work_in_engine_coroutines() -> None:
    refused = [
        f"sharin/engine/{m}.py:{line}: {what}() in async def {fn}"
        for m, fn, what, line in blocking_calls()
        if (m, fn, what) not in ALLOWED
    ]
    assert not refused, (
        "blocking file work on the event loop; hand it to the file worker "
        "(await run.files.call(fn, ...)) or allow it in ALLOWED with a reason:\n"
        + "\n".join(refused)
    )


def test_every_allowed_call_is_still_there() -> None:
    present = {(m, fn, what) for m, fn, what, _ in blocking_calls()}
    assert set(ALLOWED) <= present, f"no longer made, drop from ALLOWED: {set(ALLOWED) - present}"


def test_the_check_sees_a_blocking_call() -> None:
    """The check itself: a coroutine that removes a tree is caught, one that hands it over and
    a helper defined inside it are not."""
    code = (
        "async def bad(p):\n    shutil.rmtree(p)\n    p.read_text()\n"
        "async def good(run, p):\n"
        "    def helper():\n        shutil.rmtree(p)\n"
        "    await run.files.call(shutil.rmtree, p)\n    await run.files.call(helper)\n"
    )
    tree = ast.parse(code)
    fns = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.AsyncFunctionDef)}
    names = {
        name: [_blocking(_called(c)) for c in _own_calls(f) if _blocking(_called(c))]
        for name, f in fns.items()
    }
    assert sorted(map(str, names["bad"])) == ["read_text", "shutil.rmtree"]
    assert names["good"] == []
