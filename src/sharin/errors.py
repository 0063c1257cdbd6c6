"""Every exception sharin raises on purpose derives from :class:`SharinError`.

The tree, grouped by what the caller can do about it::

    SharinError
    ├── ProjectError          the project on disk cannot be read or written
    │   └── ValidationError   the project is readable but wrong (lists every problem)
    ├── RunError              a run could not start or proceed (nothing to resume ...)
    │   └── BusyError         another engine runs the project now
    ├── ExecutorError         an executor could not submit, watch or cancel a task
    │   └── TransportError    a host could not be reached (``transient`` tells if a retry may help)
    └── JournalError          the run journal is unreadable or belongs to another version

Each message says what failed, where (file, component, field or host) and what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BusyError",
    "ExecutorError",
    "JournalError",
    "Problem",
    "ProjectError",
    "RunError",
    "SharinError",
    "TransportError",
    "ValidationError",
    "describe_error",
]


class SharinError(Exception):
    """Root of all sharin errors."""


class ProjectError(SharinError):
    """A project file is missing, unreadable or cannot be written."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


@dataclass(frozen=True)
class Problem:
    """One problem found by validation: where it is and what to do about it."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" [{self.field}]" if self.field else "")
        return f"{where}: {self.message}"


class ValidationError(ProjectError):
    """The project can be read but is not valid; ``problems`` lists every issue found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        SharinError.__init__(self, f"{n} problem{'s' if n != 1 else ''} in the project:\n{lines}")
        self.path = None


class RunError(SharinError):
    """A run cannot start or continue."""


class BusyError(RunError):
    """The project is being run by another engine, so it cannot be run, saved or cleaned now."""


class ExecutorError(SharinError):
    """An executor failed to submit, watch or cancel a task."""


class TransportError(ExecutorError):
    """A host could not be reached; ``transient`` says whether trying again may help."""

    def __init__(self, message: str, *, host: str, transient: bool = True) -> None:
        self.host = host
        self.transient = transient
        super().__init__(f"host {host!r}: {message}")


class JournalError(SharinError):
    """The run journal cannot be used."""


def describe_error(exc: BaseException) -> str:
    """An error that ended a component, in words: sharin's own errors say what to do; a file
    system error names the file; anything else is a fault of sharin's, to be reported."""
    if isinstance(exc, SharinError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}; check the file and its permissions"
    return f"internal error of sharin ({type(exc).__name__}: {exc}); please report it"
