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
