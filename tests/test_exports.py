"""The package's public names: everything in ``__all__`` exists, and errors form one tree."""

from __future__ import annotations

import importlib

import pytest

import sharin
from sharin import errors


@pytest.mark.parametrize(
    "module",
    [
        "sharin",
        "sharin.errors",
        "sharin.model",
        "sharin.engine",
        "sharin.executors",
        "sharin.interfaces.api",
    ],
)
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []
    assert sorted(mod.__all__) == sorted(set(mod.__all__))


def test_every_error_is_a_sharin_error() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and name != "Problem":
            assert issubclass(obj, sharin.SharinError), name
            assert name in sharin.__all__, name
    assert issubclass(sharin.ValidationError, sharin.ProjectError)
    assert issubclass(sharin.BusyError, sharin.RunError)
    assert issubclass(sharin.TransportError, sharin.ExecutorError)


def test_the_lazy_table_and_the_type_checkers_imports_name_the_same_things() -> None:
    """``sharin/__init__.py`` lists its lazily loaded names twice: in ``_LAZY`` (where each is
    loaded from at run time) and in imports under ``TYPE_CHECKING`` (what mypy sees); the two,
    with the names imported at once, must make up ``__all__``."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(sharin.__file__).read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    eager: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1
                typed.update(dict.fromkeys((a.name for a in imp.names), imp.module or ""))
        elif isinstance(node, ast.ImportFrom) and node.module == "errors":
            eager += [a.name for a in node.names]
    assert typed == sharin._LAZY  # type: ignore[attr-defined]
    assert sorted(sharin.__all__) == sorted([*typed, *eager])
