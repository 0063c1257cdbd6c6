"""How sharin's helper processes start: the state mirror's writer (:mod:`._mirrorwriter`) and
the local tasks' supervisor (``executors/_supervisor.py``), each a standard-library-only file
run as ``python -I -S FILE``.

A file given to Python as its script is compiled at every start, which costs a helper more
than its own work until the first task (its source is hundreds of lines). So the helper is
started on its compiled bytecode, as an import would load it: the ``.pyc`` where the import
system keeps it (``__pycache__``, or ``PYTHONPYCACHEPREFIX``), used only when its header names
the helper's present source (its modification time and size, as an import checks them). When
there is none, or it is out of date, it is compiled there first, unless Python is told not to
write bytecode or the place is not writable: then the source itself is run, as before.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["helper_argv"]


def helper_argv(source: str, *args: str) -> list[str]:
    """The command that runs the helper file ``source`` with ``args``."""
    return [sys.executable, "-I", "-S", _compiled(source) or source, *args]


def _compiled(source: str) -> str | None:
    """The up-to-date bytecode file of ``source`` (made now if need be), or None."""
    try:
        cached = importlib.util.cache_from_source(source)
        st = os.stat(source)
    except (NotImplementedError, ValueError, OSError):
        return None
    if _current(cached, st):
        return cached
    if sys.dont_write_bytecode:
        return None
    import py_compile

    try:
        py_compile.compile(
            source,
            cfile=cached,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
        )
    except (OSError, py_compile.PyCompileError):
        return None
    return cached if _current(cached, st) else None


def _current(cached: str, st: os.stat_result) -> bool:
    """Whether the bytecode file ``cached`` was compiled from the source whose stat is ``st``
    by this Python (PEP 552's header: magic number, flags 0, source time and size)."""
    try:
        with open(cached, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    if len(head) != 16 or head[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags, mtime, size = (int.from_bytes(head[i : i + 4], "little") for i in (4, 8, 12))
    return flags == 0 and mtime == int(st.st_mtime) & 0xFFFFFFFF and size == st.st_size & 0xFFFFFFFF
