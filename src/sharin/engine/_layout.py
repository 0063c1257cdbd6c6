"""What the engine declares that commands read without running anything (``status``,
``validate``, ``log``): where its files are and which component types it runs. Importing this
costs nothing: no asyncio, no sqlite3."""

from __future__ import annotations

from pathlib import Path

from ..model._component import ComponentType

__all__ = ["SUPPORTED_TYPES", "sharin_dir"]

#: component types this engine runs
SUPPORTED_TYPES = frozenset(
    t.value
    for t in (
        ComponentType.TASK,
        ComponentType.WORKFLOW,
        ComponentType.IF,
        ComponentType.FOR,
        ComponentType.FOREACH,
        ComponentType.WHILE,
        ComponentType.BREAK,
        ComponentType.CONTINUE,
        ComponentType.PARAMETER_STUDY,
        ComponentType.SOURCE,
        ComponentType.VIEWER,
        ComponentType.STORAGE,
        ComponentType.STEPJOB,
        ComponentType.STEPJOB_TASK,
        ComponentType.BULKJOB_TASK,
    )
)


def sharin_dir(project_root: Path) -> Path:
    """sharin's own files in a project: the journal, logs of every run, the engine lock."""
    return project_root / ".sharin"
