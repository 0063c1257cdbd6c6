"""sharin (車輪): WHEEL-compatible HPC workflows from a command line, Python, or a browser.

Layers, importing one way only: ``interfaces`` → ``executors`` → ``engine`` → ``model``.
"""

from .engine import Event, RunOptions, RunResult
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
from .interfaces.api import (
    ProjectStatus,
    add_component,
    add_task,
    clean,
    connect,
    connect_files,
    copy_project,
    export_project,
    import_project,
    log_paths,
    new_project,
    open_project,
    revert,
    run,
    run_async,
    runs,
    save,
    set_property,
    status,
    stop,
    validate,
    viewer_images,
)
from .model import Component, Project, State

__version__ = "0.1.0"

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
    "export_project",
    "import_project",
    "log_paths",
    "new_project",
    "open_project",
    "revert",
    "run",
    "run_async",
    "runs",
    "save",
    "set_property",
    "status",
    "stop",
    "validate",
    "viewer_images",
]
