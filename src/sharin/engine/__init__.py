"""The engine: scheduling, state, the run journal and recovery. Defines the executor protocol."""

from ._control import viewer_files
from ._engine import (
    HANGUP_MESSAGE,
    SUPPORTED_TYPES,
    Engine,
    PlannedStep,
    RunOptions,
    RunResult,
    evaluate_condition,
    install_signal_handlers,
    plan,
    sharin_dir,
)
from ._events import Event, EventBus
from ._files import Delivery, deliver, resolve_sources
from ._journal import Journal, RunRecord, TaskRecord
from ._protocol import (
    BulkRequest,
    Executor,
    ExecutorProvider,
    JobHandle,
    JobResult,
    JobStatus,
    StepRequest,
    TaskSpec,
)

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
    "RunOptions",
    "RunRecord",
    "RunResult",
    "StepRequest",
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
