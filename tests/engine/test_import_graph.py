"""The package's import graph: no cycle, and layers that import only downwards.

Every ``import`` and ``from ... import`` of every module under ``src/sharin/`` counts, those
under ``if TYPE_CHECKING:`` too: a cycle that only the type checker sees still ties the modules
together (each must be read to understand the other, and a later runtime import turns it into a
real cycle), so the graph the code is written against is the one tested. Imports inside
functions count as well, for the same reason; the few deferred ones that close a cycle on
purpose are listed in :data:`DEFERRED`, each checked to be still needed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sharin

SRC = Path(sharin.__file__).resolve().parent
#: a package may import from the packages before it, never from those after it
LAYERS = ("model", "engine", "executors", "interfaces")

#: imports made inside a function that close a cycle: (importer, imported, why); none now
DEFERRED: tuple[tuple[str, str, str], ...] = ()


def _module_name(path: Path) -> str:
    parts = ["sharin", *path.relative_to(SRC).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _import_nodes(node: ast.AST, *, in_functions: bool) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            out.append(child)
        elif in_functions or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            out += _import_nodes(child, in_functions=in_functions)
    return out


def imports(module: str, path: Path, known: set[str], *, in_functions: bool = True) -> set[str]:
    """The modules of this package that ``module`` imports (``from x import y`` counts as an
    import of ``x.y`` when that is a module, else of ``x``); ``in_functions=False``: only
    those made when the module loads."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in _import_nodes(tree, in_functions=in_functions):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        else:
            target = _resolve(module, path.name == "__init__.py", node)
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    return {m for m in out if m in known and m != module}


def graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: imports(m, p, known) for m, p in mods.items()}


def without_deferred(g: dict[str, set[str]]) -> dict[str, set[str]]:
    out = {m: set(t) for m, t in g.items()}
    for src, dst, _why in DEFERRED:
        out[src].discard(dst)
    return out


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``g`` (as a path that ends where it starts), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(g, WHITE)
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        colour[m] = GREY
        stack.append(m)
        for n in sorted(g[m]):
            if colour[n] == GREY:
                return [*stack[stack.index(n) :], n]
            if colour[n] == WHITE and (found := visit(n)) is not None:
                return found
        stack.pop()
        colour[m] = BLACK
        return None

    for m in sorted(g):
        if colour[m] == WHITE and (found := visit(m)) is not None:
            return found
    return None


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def layering_violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, targets in sorted(g.items()):
        lm = _layer(m)
        if lm is None:
            continue
        for t in sorted(targets):
            lt = _layer(t)
            if lt is not None and lt > lm:
                bad.append(f"{m} imports {t} ({LAYERS[lm]} must not import {LAYERS[lt]})")
    return bad


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(without_deferred(graph()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_each_deferred_import_is_still_one_and_still_needed() -> None:
    g = graph()
    known = set(g)
    for src, dst, why in DEFERRED:
        assert dst in g[src], f"{src} no longer imports {dst}: drop it from DEFERRED"
        at_load = imports(src, _modules()[src], known, in_functions=False)
        assert dst not in at_load, f"{src} imports {dst} when it loads, not deferred ({why})"
        # without the deferred import the rest has no cycle; with it, it has one
        assert find_cycle({**without_deferred(g), src: g[src]}) is not None, (
            f"{src} -> {dst} closes no cycle any more: drop it from DEFERRED"
        )


def test_layers_import_only_downwards() -> None:
    assert layering_violations(graph()) == []


def test_every_module_is_seen() -> None:
    g = graph()
    assert {"sharin.engine._engine", "sharin.model", "sharin.interfaces.api"} <= set(g)
    assert "sharin.engine._control" in g["sharin.engine._engine"]


def test_the_checks_find_what_they_look_for() -> None:
    # a cycle, one through a package's __init__, and an upward import are each reported
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    g = {"sharin.model._x": {"sharin.engine"}, "sharin.engine": set()}
    assert layering_violations(g) == [
        "sharin.model._x imports sharin.engine (model must not import engine)"
    ]


def test_type_checking_and_relative_imports_are_parsed(tmp_path: Path) -> None:
    pkg = tmp_path / "p.py"
    pkg.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import _a\n"
        "if TYPE_CHECKING:\n"
        "    from ._b import B\n"
        "def f() -> None:\n"
        "    from ..model import x\n"
    )
    known = {"sharin.engine._a", "sharin.engine._b", "sharin.model", "sharin.engine.p"}
    assert imports("sharin.engine.p", pkg, known) == {
        "sharin.engine._a",
        "sharin.engine._b",
        "sharin.model",
    }
    at_load = imports("sharin.engine.p", pkg, known, in_functions=False)
    assert at_load == {"sharin.engine._a", "sharin.engine._b"}
