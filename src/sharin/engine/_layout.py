"""Where sharin keeps its own files in a project: the one place their names are written; and
which component types the engine runs. Commands that run nothing (``status``, ``validate``,
``log``) read these without importing the engine (no asyncio, no sqlite3).

``<project>/.sharin/`` holds

* ``engine.lock`` — held (``flock``) by the engine running the project, and by commands that
  change the project meanwhile; ``engine.pid`` — the running engine's pid;
* ``journal.sqlite`` — the run journal; ``engine.log`` — a detached engine's output;
* ``files-pending.json`` — the project's file list taken before a run, until the run's id is
  known;
* ``runs/<id>/`` — each run's task logs (``<key>.out``, ``<key>.err``, ``<key>.<attempt>.rc``,
  the key encoded by :func:`log_stem`) and the file lists of its attempts (named by
  :mod:`sharin.model.cleaning`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model._component import ComponentType

__all__ = ["SHARIN_DIR", "SUPPORTED_TYPES", "RunLayout", "log_stem", "sharin_dir"]

#: sharin's directory in a project (never committed, never copied with the project)
SHARIN_DIR = ".sharin"

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
    return project_root / SHARIN_DIR


def log_stem(key: str) -> str:
    """The name a component's log files start with: its key, ``%`` and ``/`` encoded (so that
    every component, trip and instance gets its own files in one flat directory)."""
    return key.replace("%", "%25").replace("/", "%2F")


@dataclass(frozen=True)
class RunLayout:
    """The paths of sharin's files in the project at ``root``."""

    root: Path

    @property
    def dir(self) -> Path:
        return sharin_dir(self.root)

    @property
    def lock(self) -> Path:
        return self.dir / "engine.lock"

    @property
    def pid(self) -> Path:
        return self.dir / "engine.pid"

    @property
    def journal(self) -> Path:
        return self.dir / "journal.sqlite"

    @property
    def engine_log(self) -> Path:
        return self.dir / "engine.log"

    @property
    def files_pending(self) -> Path:
        return self.dir / "files-pending.json"

    @property
    def mirror_spares(self) -> Path:
        """The WHEEL state writer's spare files (see :mod:`sharin.engine._mirrorwriter`)."""
        return self.dir / "mirror-spares"

    def trash(self, tag: str) -> Path:
        """A directory where a clean moves what it removes until it is done."""
        return self.dir / f"trash-{tag}"

    def run_dir(self, run: int) -> Path:
        """Run ``run``'s logs and file lists."""
        return self.dir / "runs" / str(run)

    def task_logs(self, run: int, key: str) -> tuple[Path, Path]:
        """The stdout and stderr of ``key`` in run ``run``."""
        d = self.run_dir(run)
        stem = log_stem(key)
        return d / f"{stem}.out", d / f"{stem}.err"
