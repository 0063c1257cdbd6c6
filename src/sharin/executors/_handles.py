"""What a journaled handle says about where a task ran, for people to read.

The executors write their handles (:class:`sharin.engine.JobHandle`, journaled as JSON): the
local executor's native id is the process id on this machine, the remote shell's the process id
on the SSH host (its record directory in ``data["record"]``), a batch executor's the scheduler's
job id (a bulk job's sub job numbers in ``data["range"]``). :func:`job_ref` reads one back without
asking anyone; a listing of thousands of tasks reads thousands of handles, so it decodes them with
msgspec into the fields it shows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

__all__ = ["JobRef", "job_ref"]


class JobRef(NamedTuple):
    """Where a task's process or job is: ``job_id`` as its host knows it."""

    executor: str  #: ``local``, ``remote`` or ``batch``
    host: str  #: the host's name in remotehost.json (``localhost`` for this machine's processes)
    job_id: str  #: a pid (local, remote) or the scheduler's job id (``1234[0-9]`` for a bulk job)
    record: str | None = None  #: a remote process's record directory on its host


class _Handle(msgspec.Struct):
    """The JSON of :meth:`sharin.engine.JobHandle.to_json`."""

    executor: str
    host: str
    id: str
    data: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(_Handle).decode


def job_ref(handle: str | None) -> JobRef | None:
    """The job a journaled handle names, or None for no handle or one that cannot be read
    (an older or damaged record: it shows no job id rather than failing a listing)."""
    if not handle:
        return None
    try:
        h = _decode(handle)
    except (msgspec.DecodeError, UnicodeError):
        return None
    data = h.data or {}
    job_id = h.id
    record: str | None = None
    if h.executor == "batch":
        span = data.get("range")
        if (
            data.get("bulk")
            and isinstance(span, list)
            and len(span) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
        ):
            job_id = f"{job_id}[{span[0]}-{span[1]}]"
    elif h.executor == "remote":
        r = data.get("record")
        record = r if isinstance(r, str) else None
    return JobRef(h.executor, h.host, job_id, record)
