"""sharin (車輪): WHEEL-compatible HPC workflows from a command line, Python, or a browser.

Layers, importing one way only: ``interfaces`` → ``executors`` → ``engine`` → ``model``.

The names below are loaded on first use (PEP 562), so that ``import sharin`` — and the command
line, which imports this package first — pays only for the part of sharin it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import (
    BusyError,
    ExecutorError,
    JournalError,
    Problem,
    ProjectError,
    RunError,
    SharinError,
    TransportError,
    ValidationError,
)

if TYPE_CHECKING:
    from .engine import Event, RunOptions, RunResult
    from .interfaces._runs import RunHandle
    from .interfaces.api import (
        ProjectStatus,
        add_component,
        add_task,
        clean,
        connect,
        connect_files,
        copy_project,
        disconnect,
        disconnect_files,
        export_project,
        import_project,
        job_states,
        job_states_async,
        log_paths,
        new_project,
        open_project,
        plan,
        remove_component,
        revert,
        run,
        run_async,
        runs,
        save,
        set_properties,
        set_property,
        start_run,
        status,
        stop,
        stop_async,
        validate,
        viewer_images,
    )
    from .model import Component, Project, State

__version__ = "0.1.0"

#: where each lazily loaded name lives
_LAZY: dict[str, str] = {
    **dict.fromkeys(("Event", "RunOptions", "RunResult"), "engine"),
    **dict.fromkeys(("Component", "Project", "State"), "model"),
    "RunHandle": "interfaces._runs",
    **dict.fromkeys(
        (
            "ProjectStatus",
            "add_component",
            "add_task",
            "clean",
            "connect",
            "connect_files",
            "copy_project",
            "disconnect",
            "disconnect_files",
            "export_project",
            "import_project",
            "job_states",
            "job_states_async",
            "log_paths",
            "new_project",
            "open_project",
            "plan",
            "remove_component",
            "revert",
            "run",
            "run_async",
            "runs",
            "save",
            "set_properties",
            "set_property",
            "start_run",
            "status",
            "stop",
            "stop_async",
            "validate",
            "viewer_images",
        ),
        "interfaces.api",
    ),
}

__all__ = [
    "BusyError",
    "Component",
    "Event",
    "ExecutorError",
    "JournalError",
    "Problem",
    "Project",
    "ProjectError",
    "ProjectStatus",
    "RunError",
    "RunHandle",
    "RunOptions",
    "RunResult",
    "SharinError",
    "State",
    "TransportError",
    "ValidationError",
    "add_component",
    "add_task",
    "clean",
    "connect",
    "connect_files",
    "copy_project",
    "disconnect",
    "disconnect_files",
    "export_project",
    "import_project",
    "job_states",
    "job_states_async",
    "log_paths",
    "new_project",
    "open_project",
    "plan",
    "remove_component",
    "revert",
    "run",
    "run_async",
    "runs",
    "save",
    "set_properties",
    "set_property",
    "start_run",
    "status",
    "stop",
    "stop_async",
    "validate",
    "viewer_images",
]


if not TYPE_CHECKING:  # type checkers see the imports above; the names exist at run time
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
