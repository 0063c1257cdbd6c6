"""Remote host definitions, read from WHEEL's ``remotehost.json`` (a JSON array of host objects)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem, ProjectError
from ._jsonio import json_kind, read_json, read_json_object, show_json

__all__ = [
    "HostConfig",
    "LOCALHOST",
    "config_dir",
    "config_dirs",
    "hosts_file",
    "load_hosts",
    "local_job_limit",
]

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
    #: minutes after which an idle connection is opened anew (0: kept as long as it works)
    renew_interval: float = 0.0
    #: seconds to wait for the connection and its handshake (WHEEL's readyTimeout, in ms)
    ready_timeout: float = 20.0
    #: seconds between keep-alive messages on an idle connection (0: none)
    keepalive_interval: float = 30.0
    #: channels open at once over the connection (OpenSSH's MaxSessions)
    max_sessions: int = 10
    #: a known_hosts file to check the host's key against (default: OpenSSH's)
    known_hosts: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def transport(self) -> str:
        """How the host is reached: sharin's ``transport`` field of its entry, SSH unless it
        says ``local`` (sharin runs on the host itself)."""
        return str(self.raw.get("transport") or "ssh")

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> HostConfig:
        """A host from its remotehost.json entry; a ProjectError names every wrong field."""
        hosts = _hosts_from([entry], "remotehost.json")
        return next(iter(hosts.values()))


def _queues(value: object) -> tuple[str, ...]:
    """``queue``: OPEN-WHEEL 2025 writes a list of names, earlier versions ``"a,b"``."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(q.strip() for q in items if isinstance(q, str) and q.strip())


def _hosts_from(entries: list[Any], file: str) -> dict[str, HostConfig]:
    from . import _schema  # msgspec is imported when the file is read

    problems: list[Problem] = []
    hosts: dict[str, HostConfig] = {}
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = label if isinstance(label, str) and label else f"entry {i}"
        if not isinstance(entry, dict):
            problems.append(
                Problem(
                    file,
                    where,
                    f"must be an object with a name (the label tasks use as host), "
                    f"not {json_kind(entry)}",
                )
            )
            continue
        found = _schema.check_object(
            entry, _schema.HostEntry, file, prefix=f"{where}.", strict=False
        )
        if isinstance(label, str) and label in seen:
            found.append(
                Problem(file, f"{where}.name", "is the name of an earlier entry too; rename one")
            )
        seen.add(where)
        if found:
            problems += found
            continue
        h = _schema.convert(entry, _schema.HostEntry)
        raw = dict(entry)
        raw.update(_schema.present_fields(h, entry))  # "22" read as 22, "false" as false
        hosts[h.name] = _host_config(h, raw)
    if problems:
        raise ProjectError(problem_list(problems, file))
    return hosts


def _host_config(h: Any, raw: dict[str, Any]) -> HostConfig:
    def given(value: Any) -> bool:
        return value is not None and value != ""

    return HostConfig(
        name=h.name,
        host=h.host or h.name,
        user=h.user or h.username or None,
        port=h.port if given(h.port) else 22,
        path=h.path or "",
        key_file=h.keyFile or None,
        job_scheduler=h.jobScheduler or None,
        num_job=h.numJob if given(h.numJob) and h.numJob > 0 else 5,
        queues=_queues(h.queue),
        status_check_interval=float(h.statusCheckInterval)
        if given(h.statusCheckInterval)
        else 10.0,
        renew_interval=float(h.renewInterval) if given(h.renewInterval) else 0.0,
        ready_timeout=h.readyTimeout / 1000 if given(h.readyTimeout) and h.readyTimeout else 20.0,
        keepalive_interval=h.keepaliveInterval / 1000 if given(h.keepaliveInterval) else 30.0,
        max_sessions=h.maxSessions if given(h.maxSessions) else 10,
        known_hosts=h.knownHostsFile or None,
        raw=raw,
    )


def problem_list(problems: list[Problem], file: str) -> str:
    """One message listing every problem of a configuration file."""
    if len(problems) == 1:
        return str(problems[0])
    lines = "\n".join(f"  - [{p.field}]: {p.message}" for p in problems)
    return f"{len(problems)} problems in {file}:\n{lines}"


def _user_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".config") / "sharin"


def wheel_dir() -> Path:
    """WHEEL's own configuration directory, ``~/.wheel``."""
    return Path.home() / ".wheel"


def config_dir() -> Path:
    """Where sharin writes its configuration (``remotehost.json``): $SHARIN_CONFIG_DIR,
    $WHEEL_CONFIG_DIR, else the user's configuration directory ($XDG_CONFIG_HOME/sharin,
    ``~/.config/sharin``) when it exists or ``~/.wheel`` does not, else ``~/.wheel``."""
    for var in ("SHARIN_CONFIG_DIR", "WHEEL_CONFIG_DIR"):
        value = os.environ.get(var)
        if value:
            return Path(value).expanduser()
    own = _user_config_dir()
    if own.is_dir() or not wheel_dir().is_dir():
        return own
    return wheel_dir()


def config_dirs() -> list[Path]:
    """Where configuration is read, first first: the directory a variable names, or else the
    user's configuration directory and then ``~/.wheel`` (a WHEEL user's files work unchanged)."""
    first = config_dir()
    if any(os.environ.get(v) for v in ("SHARIN_CONFIG_DIR", "WHEEL_CONFIG_DIR")):
        return [first]
    return list(dict.fromkeys([first, _user_config_dir(), wheel_dir()]))


def hosts_file() -> Path:
    """The ``remotehost.json`` that ``sharin host add/remove`` change."""
    return config_dir() / "remotehost.json"


def _load_file(path: Path) -> dict[str, HostConfig]:
    if not path.is_file():
        return {}
    entries = read_json(path)
    if not isinstance(entries, list):
        raise ProjectError(
            f'must hold a JSON array of host objects ([{{"name": ...}}, ...]), '
            f"not {json_kind(entries)}",
            path=path,
        )
    return _hosts_from(entries, str(path))


def load_hosts(directory: Path | None = None) -> dict[str, HostConfig]:
    """Host label → definition, from ``remotehost.json`` in ``directory`` or else in every
    directory of :func:`config_dirs` (a label found in an earlier one wins). A missing file means
    no remote hosts; a bad one is an error listing every wrong field."""
    hosts: dict[str, HostConfig] = {}
    for d in [directory] if directory is not None else config_dirs():
        for name, h in _load_file(d / "remotehost.json").items():
            hosts.setdefault(name, h)
    return hosts


def local_job_limit(directory: Path | None = None) -> int | None:
    """WHEEL's ``numJobOnLocal`` (OPEN-WHEEL 2025: ``numLocalJob``): $WHEEL_NUM_LOCAL_JOB,
    else ``server.json``, else None (the number of CPUs)."""
    env = os.environ.get("WHEEL_NUM_LOCAL_JOB")
    if env:
        if not env.strip().isdigit() or int(env) < 1:
            raise ProjectError(
                f"WHEEL_NUM_LOCAL_JOB={show_json(env)} must be a whole number ≥ 1; "
                "set it to the number of local tasks to run at once, or unset it"
            )
        return int(env)
    found = [d / "server.json" for d in ([directory] if directory else config_dirs())]
    path = next((f for f in found if f.is_file()), None)
    if path is None:
        return None
    data = read_json_object(path)
    from . import _schema

    problems = _schema.check_object(data, _schema.ServerFile, str(path), strict=False)
    if problems:
        raise ProjectError(problem_list(problems, str(path)))
    server = _schema.convert(data, _schema.ServerFile)
    for value in (server.numJobOnLocal, server.numLocalJob):
        if isinstance(value, int):
            return value
    return None
