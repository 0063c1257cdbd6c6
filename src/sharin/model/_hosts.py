"""Remote host definitions, read from WHEEL's ``remotehost.json`` (a JSON array of host objects)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProjectError

__all__ = ["HostConfig", "LOCALHOST", "config_dir", "load_hosts", "local_job_limit"]

LOCALHOST = "localhost"


@dataclass(frozen=True)
class HostConfig:
    """One remote host as WHEEL describes it; ``raw`` keeps every field of the entry."""

    name: str
    host: str
    user: str | None = None
    port: int = 22
    path: str = ""
    key_file: str | None = None
    job_scheduler: str | None = None
    num_job: int = 5
    queues: tuple[str, ...] = ()
    status_check_interval: float = 10.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> HostConfig:
        queues = entry.get("queue") or ""
        return cls(
            name=str(entry["name"]),
            host=str(entry.get("host") or entry["name"]),
            user=entry.get("user") or entry.get("username"),
            port=int(entry.get("port") or 22),
            path=str(entry.get("path") or ""),
            key_file=entry.get("keyFile"),
            job_scheduler=entry.get("jobScheduler"),
            num_job=int(entry.get("numJob") or 5),
            queues=tuple(q.strip() for q in str(queues).split(",") if q.strip()),
            status_check_interval=float(entry.get("statusCheckInterval") or 10),
            raw=dict(entry),
        )


def config_dir() -> Path:
    """Where sharin looks for ``remotehost.json``: $SHARIN_CONFIG_DIR, $WHEEL_CONFIG_DIR, then ~/.wheel."""
    for var in ("SHARIN_CONFIG_DIR", "WHEEL_CONFIG_DIR"):
        value = os.environ.get(var)
        if value:
            return Path(value).expanduser()
    return Path.home() / ".wheel"


def load_hosts(directory: Path | None = None) -> dict[str, HostConfig]:
    """Host label → definition. A missing file means no remote hosts; a bad one is an error."""
    path = (directory or config_dir()) / "remotehost.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ProjectError(
            f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}", path=path
        ) from None
    if not isinstance(entries, list):
        raise ProjectError("must hold a JSON array of host objects", path=path)
    hosts: dict[str, HostConfig] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ProjectError(f"entry {i} has no 'name' (the label tasks use as host)", path=path)
        try:
            hosts[str(entry["name"])] = HostConfig.from_json(entry)
        except (TypeError, ValueError) as e:
            raise ProjectError(f"entry {i} ({entry.get('name')!r}): {e}", path=path) from None
    return hosts


def local_job_limit(directory: Path | None = None) -> int | None:
    """WHEEL's ``numJobOnLocal``: $WHEEL_NUM_LOCAL_JOB, else ``server.json``, else None (the CPUs)."""
    env = os.environ.get("WHEEL_NUM_LOCAL_JOB")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ProjectError(f"WHEEL_NUM_LOCAL_JOB={env!r} is not a whole number") from None
    path = (directory or config_dir()) / "server.json"
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("numJobOnLocal")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ProjectError(f"cannot read numJobOnLocal ({e})", path=path) from None
    if value in (None, ""):
        return None
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        raise ProjectError(f"numJobOnLocal {value!r} is not a whole number", path=path) from None
