"""The engine: scheduling, state, the run journal and recovery. Defines the executor protocol.

The names below are loaded on first use (PEP 562): reading the journal (``Journal``) or the
engine's layout (``sharin_dir``, ``SUPPORTED_TYPES``) does not import the scheduler and asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._control import viewer_files
    from ._engine import (
        HANGUP_MESSAGE,
        Engine,
        PlannedStep,
        RunOptions,
        RunResult,
        evaluate_condition,
        install_signal_handlers,
        plan,
    )
    from ._events import Event, EventBus
    from ._files import Delivery, deliver, resolve_sources
    from ._journal import Journal, RunRecord, TaskRecord
    from ._layout import SUPPORTED_TYPES, sharin_dir
    from ._prelude import Prelude
    from ._protocol import (
        BulkRequest,
        Executor,
        ExecutorProvider,
        JobHandle,
        JobResult,
        JobStatus,
        StepRequest,
        SubmitLater,
        TaskSpec,
    )

#: the module (below this package) that defines each public name
_LAZY: dict[str, str] = {
    "viewer_files": "_control",
    **dict.fromkeys(
        (
            "HANGUP_MESSAGE",
            "Engine",
            "PlannedStep",
            "RunOptions",
            "RunResult",
            "evaluate_condition",
            "install_signal_handlers",
            "plan",
        ),
        "_engine",
    ),
    **dict.fromkeys(("Event", "EventBus"), "_events"),
    **dict.fromkeys(("Delivery", "deliver", "resolve_sources"), "_files"),
    **dict.fromkeys(("Journal", "RunRecord", "TaskRecord"), "_journal"),
    **dict.fromkeys(("SUPPORTED_TYPES", "sharin_dir"), "_layout"),
    "Prelude": "_prelude",
    **dict.fromkeys(
        (
            "BulkRequest",
            "Executor",
            "ExecutorProvider",
            "JobHandle",
            "JobResult",
            "JobStatus",
            "StepRequest",
            "SubmitLater",
            "TaskSpec",
        ),
        "_protocol",
    ),
}

__all__ = [
    "HANGUP_MESSAGE",
    "SUPPORTED_TYPES",
    "BulkRequest",
    "Delivery",
    "Engine",
    "Event",
    "EventBus",
    "Executor",
    "ExecutorProvider",
    "JobHandle",
    "JobResult",
    "JobStatus",
    "Journal",
    "PlannedStep",
    "Prelude",
    "RunOptions",
    "RunRecord",
    "RunResult",
    "StepRequest",
    "SubmitLater",
    "TaskRecord",
    "TaskSpec",
    "deliver",
    "evaluate_condition",
    "install_signal_handlers",
    "plan",
    "resolve_sources",
    "sharin_dir",
    "viewer_files",
]

if not TYPE_CHECKING:  # type checkers see the imports above; the names exist at run time
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
