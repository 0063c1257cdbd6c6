"""What one server knows: its token, the projects it serves, the hub of their events."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ProjectError
from ...model import PROJECT_FILE
from .._hub import EventHub
from ._feed import JournalFeed
from ._prompts import DEFAULT_TIMEOUT, PromptBroker

__all__ = ["NotFound", "ServerConfig", "ServerState", "project_id"]


class NotFound(ProjectError):
    """What a URL names is not there (HTTP 404)."""


#: uploads and file writes larger than this are refused (bytes)
DEFAULT_UPLOAD_LIMIT = 256 * 1024 * 1024


def project_id(root: Path) -> str:
    """A project's id in URLs: a digest of its real path (no path appears in a URL)."""
    return hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]


@dataclass
class ServerConfig:
    """How a server is set up: the workspace directory new and imported projects go to."""

    workspace: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    projects: list[Path] = field(default_factory=list)  #: opened besides the workspace's
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    #: origins besides the server's own that may open WebSockets (e.g. a Vite dev server)
    allowed_origins: tuple[str, ...] = ()
    #: host names besides the loopback's the server answers to (``Host`` header)
    hosts: tuple[str, ...] = ()
    #: changes a WebSocket client may have unsent before it is re-synced from a snapshot
    watch_buffer: int = 2000
    #: seconds an SSH passphrase or code prompt of a run waits for an answer from a tab
    prompt_timeout: float = DEFAULT_TIMEOUT


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.workspace = config.workspace.resolve()
        self._extra: dict[str, Path] = {}
        for p in config.projects:
            self.add(p)
        self.hub: EventHub | None = None  #: made in the server's event loop at start-up
        self.feed: JournalFeed | None = None
        self.prompts: PromptBroker | None = None  #: SSH prompts of runs, asked in the tabs
        #: a renamed project's new id by its old one, until the rename's edit is published
        self.renamed: dict[str, str] = {}

    def add(self, root: Path) -> str:
        root = root.resolve()
        if not (root / PROJECT_FILE).is_file():
            raise ProjectError(f"{root}: no {PROJECT_FILE} there; it is not a sharin/WHEEL project")
        pid = project_id(root)
        self._extra[pid] = root
        return pid

    def forget(self, pid: str) -> None:
        self._extra.pop(pid, None)

    def roots(self) -> dict[str, Path]:
        """Every project served: those in the workspace (one level down) and those opened."""
        found: dict[str, Path] = {}
        try:
            entries = sorted(os.scandir(self.workspace), key=lambda e: e.name)
        except OSError:
            entries = []
        for e in entries:
            if e.is_dir(follow_symlinks=False) and os.path.isfile(
                os.path.join(e.path, PROJECT_FILE)
            ):
                root = Path(e.path)
                found[project_id(root)] = root
        for pid, root in self._extra.items():
            if (root / PROJECT_FILE).is_file():
                found.setdefault(pid, root)
        return found

    def root(self, pid: str) -> Path:
        root = self._extra.get(pid) or self.roots().get(pid)
        if root is None:
            raise NotFound(f"no project with id {pid!r} on this server")
        return root
