"""The run journal: an SQLite file in ``<project>/.sharin/journal.sqlite``.

Every state change of a run and of each task instance is written before the engine acts on
it, so a new engine process knows what finished, what was submitted (with its handle) and what
never started. WAL mode with ``synchronous=NORMAL``: a commit survives the death of the engine
process (``kill -9``); only a power cut may lose the last commits.

**Commits.** Records that only report (a component or task running, finished, failed, stopped,
skipped; no handle) are written into one open transaction when an event loop runs in the
calling thread, and that transaction is committed at the loop's next step (or earlier, with the
next record that cannot wait). Every other record (``queued`` — the intent to submit, written
before the executor starts anything —, any record with a handle, ``waiting``, ``stage-in``,
``stage-out``, ``unknown``, handles cleared, runs begun and ended) is committed before
:meth:`Journal.set_task` returns, together with all the records before it. The one exception
is the handle of an attempt whose executor finds it again by itself (a local task: the
supervisor's pid record is on disk before the handle is returned): it may wait for the loop's
step like a report, since an engine that dies first finds the attempt ``queued`` and
re-attaches to it through the executor's ``recover``. One connection writes
them in order, so after a crash the journal is always a prefix of what the engine wrote: at worst
the last reports of the step the engine died in are missing, which is what a crash one step
earlier would have left. Without a running event loop (tools, tests) every record is committed
at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import JournalError

if TYPE_CHECKING:
    import asyncio

__all__ = ["FingerprintRecord", "Journal", "RunRecord", "TaskRecord", "clean_covers"]

SCHEMA_VERSION = 1

#: the integers SQLite stores (a larger Python int raises OverflowError when bound)
_SQL_INT_MIN, _SQL_INT_MAX = -(1 << 63), (1 << 63) - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    state TEXT NOT NULL,
    pid INTEGER,
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS tasks (
    run INTEGER NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    handle TEXT,
    rc INTEGER,
    started REAL,
    ended REAL,
    message TEXT,
    PRIMARY KEY (run, key)
);
CREATE TABLE IF NOT EXISTS fingerprints (
    key TEXT PRIMARY KEY,
    run INTEGER NOT NULL,
    ended REAL NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS digests (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
);
"""


#: cleans of the project or of a component subtree: what ran before them counts for nothing
_CLEANS = """
CREATE TABLE IF NOT EXISTS cleans (at REAL NOT NULL, prefix TEXT NOT NULL);
"""


def clean_covers(prefix: str, key: str) -> bool:
    """Whether a clean of ``prefix`` ("" = the whole project) invalidates records of ``key``:
    the key itself, everything below it, and the containers above it (which must be entered
    again to reach what was cleaned). The root key "" is covered by whole-project cleans only."""
    if prefix == "":
        return True
    if key == "":
        return False
    return key == prefix or key.startswith(prefix + "/") or prefix.startswith(key + "/")


@dataclass(frozen=True)
class RunRecord:
    id: int
    started: float
    ended: float | None
    state: str
    pid: int | None
    info: dict[str, Any]


@dataclass(frozen=True)
class TaskRecord:
    run: int
    key: str
    kind: str
    state: str
    attempt: int
    handle: str | None
    rc: int | None
    started: float | None
    ended: float | None
    message: str | None


@dataclass(frozen=True)
class FingerprintRecord:
    """The fingerprint a component had when it last finished (``_fingerprint``)."""

    key: str
    run: int
    ended: float
    fingerprint: str


def _set_wal(db: sqlite3.Connection) -> None:
    """Turn on WAL mode. While another connection creates the same file (a watcher such as
    `sharin status` opening the journal as the engine starts), SQLite answers "database is
    locked" at once, without waiting for the busy timeout: wait a little and try again."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


#: states whose record only reports what happened: it may wait for the end of the event loop's
#: step (see the module's docstring); a record in any other state, or with a handle, is
#: committed at once
_DEFERRABLE = frozenset({"running", "finished", "failed", "stopped", "skipped", "not-started"})


_SET_FINGERPRINT = (
    "INSERT INTO fingerprints (key, run, ended, fingerprint) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET run=excluded.run, ended=excluded.ended, "
    "fingerprint=excluded.fingerprint"
)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    # where asyncio was never imported no event loop runs: reading the journal (`sharin status`)
    # does not import it
    if "asyncio" not in sys.modules:
        return None
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Journal:
    """Append-and-update store of runs and task instances; one per project."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: a transaction of deferred records is open (committed by :meth:`flush`)
        self._open = False
        #: (time, prefix) of every clean, read once (see :meth:`cleaned_after`)
        self._cleans: list[tuple[float, str]] | None = None
        self._clean_at: dict[str, float] = {}
        self._clean_below: dict[str, float] = {}
        #: fingerprints to write with the next commit, in one statement
        self._fp_rows: list[tuple[str, int, float, str]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # first, so that opening a journal another process creates now waits for it
            self._db.execute("PRAGMA busy_timeout=5000")
            _set_wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            # OR IGNORE: a watcher (`sharin status`) may create the journal at the same moment
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if int(row[0]) != SCHEMA_VERSION:
                raise JournalError(
                    f"{path}: journal schema {row[0]} is not {SCHEMA_VERSION}; "
                    "move .sharin/ away to start a fresh history"
                )
        except sqlite3.DatabaseError as e:
            raise JournalError(
                f"{path}: cannot open the run journal ({e}); move it away to start a fresh history"
            ) from None

    @classmethod
    def open_readonly(cls, path: Path) -> Journal:
        """Open an existing journal to read it without writing anything (no file created or
        changed, also not SQLite's ``-wal``/``-shm`` files of a journal no engine has open)."""
        self = cls.__new__(cls)
        self.path = path
        self._open = False
        self._cleans = None
        self._clean_at = {}
        self._clean_below = {}
        self._fp_rows = []
        try:
            if path.with_name(path.name + "-wal").exists():
                self._db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
                )
            else:
                self._db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False
                )
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.DatabaseError as e:
            raise JournalError(
                f"{path}: cannot read the run journal ({e}); move it away to start a fresh history"
            ) from None
        return self

    def close(self) -> None:
        self.flush()
        self._db.close()

    def flush(self) -> None:
        """Commit the records that were waiting for the end of the event loop's step."""
        if self._fp_rows:
            rows, self._fp_rows = self._fp_rows, []
            if not self._open:
                self._db.execute("BEGIN")
                self._open = True
            self._db.executemany(_SET_FINGERPRINT, rows)
        if self._open:
            self._db.execute("COMMIT")
            self._open = False

    def _write(self, sql: str, params: tuple[object, ...], *, defer: bool = False) -> None:
        """Execute one write: committed now (with every deferred record before it), or, when
        ``defer`` and an event loop runs in this thread, in the open transaction that the
        loop's next step commits."""
        if defer and not self._open:
            loop = _running_loop()
            if loop is not None:
                self._db.execute("BEGIN")
                self._open = True
                loop.call_soon(self.flush)
        self._db.execute(sql, params)
        if not defer:
            self.flush()

    # ------------------------------------------------------------------ runs
    def new_run(self, info: dict[str, Any]) -> int:
        self.flush()
        cur = self._db.execute(
            "INSERT INTO runs (started, state, pid, info) VALUES (?, 'running', ?, ?)",
            (time.time(), os.getpid(), json.dumps(info)),
        )
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def reopen_run(self, run: int) -> None:
        self._write(
            "UPDATE runs SET state='running', ended=NULL, pid=? WHERE id=?", (os.getpid(), run)
        )

    def update_run_info(self, run: int, info: dict[str, Any]) -> None:
        """Merge ``info`` into the run's info."""
        r = self.run(run)
        merged = {**(r.info if r is not None else {}), **info}
        self._write("UPDATE runs SET info=? WHERE id=?", (json.dumps(merged), run))

    def end_run(self, run: int, state: str) -> None:
        self._write("UPDATE runs SET state=?, ended=? WHERE id=?", (state, time.time(), run))

    def runs(self) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT id, started, ended, state, pid, info FROM runs ORDER BY id"
        ).fetchall()
        return [RunRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}")) for r in rows]

    def task_counts(self, kinds: Iterable[str]) -> dict[int, dict[str, int]]:
        """``{run: {state: number}}`` of the task records of ``kinds`` (loop trips and study
        instances included), every run at once."""
        wanted = sorted(set(kinds))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._db.execute(
            f"SELECT run, state, COUNT(*) FROM tasks WHERE kind IN ({marks}) GROUP BY run, state",
            wanted,
        ).fetchall()
        out: dict[int, dict[str, int]] = {}
        for run, state, n in rows:
            out.setdefault(run, {})[state] = n
        return out

    def run(self, run: int) -> RunRecord | None:
        """The run numbered ``run``; None when there is none (also for a number no run can
        have: beyond SQLite's 64-bit integers, which it would refuse to compare)."""
        if not _SQL_INT_MIN <= run <= _SQL_INT_MAX:
            return None
        r = self._db.execute(
            "SELECT id, started, ended, state, pid, info FROM runs WHERE id=?", (run,)
        ).fetchone()
        return RunRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}")) if r else None

    def last_run(self) -> RunRecord | None:
        r = self._db.execute(
            "SELECT id, started, ended, state, pid, info FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return RunRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}")) if r else None

    # ------------------------------------------------------------------ tasks
    def set_task(
        self,
        run: int,
        key: str,
        kind: str,
        state: str,
        *,
        attempt: int | None = None,
        handle: str | None = None,
        rc: int | None = None,
        message: str | None = None,
        started: bool = False,
        ended: bool = False,
        recoverable: bool = False,
    ) -> None:
        """Insert or update one task instance; only the given fields change.

        Committed before this returns unless the record only reports (see the module's
        docstring): then at the end of the event loop's step at the latest. ``recoverable``:
        the record's handle may wait for that too, because the executor that started the
        attempt finds it again from records of its own, written before it returned the
        handle (:attr:`~sharin.engine.Executor.recovers_started`)."""
        now = time.time()
        self._write(
            """
            INSERT INTO tasks (run, key, kind, state, attempt, handle, rc, started, ended, message)
            VALUES (?, ?, ?, ?, COALESCE(?, 0), ?, ?, ?, ?, ?)
            ON CONFLICT (run, key) DO UPDATE SET
                state = excluded.state,
                attempt = COALESCE(?, tasks.attempt),
                handle = CASE WHEN ? THEN excluded.handle ELSE tasks.handle END,
                rc = CASE WHEN ? THEN excluded.rc ELSE tasks.rc END,
                started = COALESCE(excluded.started, tasks.started),
                ended = excluded.ended,
                message = excluded.message
            """,
            (
                run,
                key,
                kind,
                state,
                attempt,
                handle,
                rc,
                now if started else None,
                now if ended else None,
                message,
                attempt,
                handle is not None,
                rc is not None or ended,
            ),
            defer=(handle is None or recoverable) and state in _DEFERRABLE,
        )

    def clear_handle(self, run: int, key: str) -> None:
        self._write("UPDATE tasks SET handle=NULL WHERE run=? AND key=?", (run, key))

    def tasks(self, run: int) -> dict[str, TaskRecord]:
        rows = self._db.execute(
            "SELECT run, key, kind, state, attempt, handle, rc, started, ended, message "
            "FROM tasks WHERE run=?",
            (run,),
        ).fetchall()
        return {r[1]: TaskRecord(*r) for r in rows}

    def task(self, run: int, key: str) -> TaskRecord | None:
        r = self._db.execute(
            "SELECT run, key, kind, state, attempt, handle, rc, started, ended, message "
            "FROM tasks WHERE run=? AND key=?",
            (run, key),
        ).fetchone()
        return TaskRecord(*r) if r else None

    def task_list(self, run: int) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT run, key, kind, state, attempt, handle, rc, started, ended, message "
            "FROM tasks WHERE run=? ORDER BY COALESCE(started, 1e18), key",
            (run,),
        ).fetchall()
        return [TaskRecord(*r) for r in rows]

    # ------------------------------------------------------------------ fingerprints
    def set_fingerprint(self, key: str, run: int, fingerprint: str) -> None:
        """Record what ``key`` was when it finished: written and committed with the next
        commit (at the end of the event loop's step at the latest), all such rows at once."""
        self._fp_rows.append((key, run, time.time(), fingerprint))
        if self._open:
            return
        loop = _running_loop()
        if loop is None:
            self.flush()
            return
        self._db.execute("BEGIN")
        self._open = True
        loop.call_soon(self.flush)

    def fingerprints(self) -> dict[str, FingerprintRecord]:
        """The last finished fingerprint of every component that has one."""
        try:
            rows = self._db.execute(
                "SELECT key, run, ended, fingerprint FROM fingerprints"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}  # a journal written before fingerprints (read only: not added)
        return {r[0]: FingerprintRecord(*r) for r in rows}

    def digests(self) -> list[tuple[int, int, int, int, str]]:
        """Cached digests of large files (``_fingerprint.DigestCache``)."""
        try:
            rows = self._db.execute(
                "SELECT dev, ino, size, mtime_ns, digest FROM digests"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(int(a), int(b), int(c), int(d), str(e)) for a, b, c, d, e in rows]

    def add_digests(self, rows: list[tuple[int, int, int, int, str]]) -> None:
        if not rows:
            return
        self.flush()
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ cleans
    def _clean_table(self) -> None:
        self.flush()
        self._db.executescript(_CLEANS)

    def mark_cleaned(self, prefix: str | Iterable[str] = "", at: float | None = None) -> None:
        """Record that the outputs and states of ``prefix`` (a component path; "" = the whole
        project; or several, in one transaction) were cleaned now: no record made before
        counts as finished any more."""
        self._clean_table()
        when = time.time() if at is None else at
        prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO cleans (at, prefix) VALUES (?, ?)",
                [(when, p.strip("/")) for p in prefixes],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._cleans = None

    def cleans(self) -> list[tuple[float, str]]:
        """Every clean as (time, prefix), oldest first."""
        if self._cleans is None:
            self.flush()
            try:
                rows = self._db.execute("SELECT at, prefix FROM cleans ORDER BY at").fetchall()
            except sqlite3.OperationalError:
                rows = []  # no clean yet (the table is made by the first one)
            self._cleans = [(float(r[0]), str(r[1])) for r in rows]
            # prefix → its last clean; key → the last clean of something below it
            self._clean_at = {}
            self._clean_below = {}
            for at, prefix in self._cleans:
                self._clean_at[prefix] = max(at, self._clean_at.get(prefix, at))
                up = prefix
                while "/" in up:
                    up = up.rpartition("/")[0]
                    self._clean_below[up] = max(at, self._clean_below.get(up, at))
        return list(self._cleans)

    def task_keys(self) -> set[str]:
        """The key of every task instance any run recorded."""
        self.flush()
        return {r[0] for r in self._db.execute("SELECT DISTINCT key FROM tasks")}

    def last_clean(self, key: str) -> float | None:
        """The time of the last clean that covers ``key`` (see :func:`clean_covers`), or None."""
        self.cleans()
        times = [self._clean_at.get("", -1.0)]
        if key:
            times.append(self._clean_below.get(key, -1.0))
            up = key
            while up:
                times.append(self._clean_at.get(up, -1.0))
                up = up.rpartition("/")[0]
        last = max(times)
        return last if last >= 0 else None

    def cleaned_after(self, key: str, t: float) -> bool:
        """Whether a record of ``key`` made at time ``t`` is invalidated by a later clean of
        the project or of a subtree that covers ``key`` (see :func:`clean_covers`)."""
        last = self.last_clean(key)
        return last is not None and last > t
