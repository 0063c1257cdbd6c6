"""The state mirror's writer process (``engine/_mirrorwriter.py``): its protocol, its end when
the engine is killed, and the mirror's in-process writes when it is gone."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from sharin import model
from sharin.engine import _launch, _mirror, _mirrorwriter
from sharin.engine._mirror import DELETE, StateMirror

SRC = Path(_mirror.__file__).parents[2]


def _component(d: Path, data: dict[str, Any] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "cmp.wheel.json").write_text(json.dumps(data or {}))
    return d / "cmp.wheel.json"


def _read(d: Path) -> Any:
    return json.loads((d / "cmp.wheel.json").read_text())


def _wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _has_open(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _writer(spare_dir: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", _mirror._WRITER, os.fspath(spare_dir or "")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def _send(proc: subprocess.Popen[bytes], *messages: dict[str, Any]) -> None:
    stdin: IO[bytes] | None = proc.stdin
    assert stdin is not None
    stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    stdin.flush()


def _answer(proc: subprocess.Popen[bytes]) -> Any:
    assert proc.stdout is not None
    return json.loads(proc.stdout.readline())


def test_the_writer_knows_the_models_file_names() -> None:
    assert _mirrorwriter.COMPONENT_FILE == model.COMPONENT_FILE
    assert _mirrorwriter.STATUS_FILE == model.STATUS_FILE


def test_the_writer_imports_only_the_standard_library() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); import sharin.engine._mirrorwriter; "
        "print(sorted(m for m in sys.modules if m.startswith('sharin')))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    # the package's __init__ files run (sharin's imports the model), but not for the script:
    # run as a file it has no package at all
    assert "sharin.engine._mirrorwriter" in out.stdout
    text = Path(_mirror._WRITER).read_text()
    assert "from ." not in text and "import sharin" not in text and "from sharin" not in text


def test_an_answer_comes_after_the_writes_asked_before_it_and_nothing_below_a_forgotten_dir(
    tmp_path: Path,
) -> None:
    a, b, trip = tmp_path / "a", tmp_path / "b", tmp_path / "loop_0"
    for d in (a, b, trip / "t"):
        _component(d, {"name": d.name, "initialized": True})
    with _writer() as proc:
        _send(
            proc,
            {
                "p": str(a),
                "f": {"state": "finished"},
                "d": ["initialized"],
                "t": "finished\n0\n0\n",
            },
            {"forget": str(trip), "ack": 1},
            {"p": str(trip / "t"), "f": {"state": "late"}, "t": None},
            {"p": str(b), "f": {"state": "running"}, "t": None},
        )
        assert _answer(proc) == {"ack": 1}
        assert _read(a) == {"name": "a", "state": "finished"}  # written before the answer
        assert (a / "status.wheel.txt").read_text() == "finished\n0\n0\n"
        _send(proc, {"ack": 2})
        assert _answer(proc) == {"ack": 2}
        assert _read(b) == {"name": "b", "initialized": True, "state": "running"}
        assert _read(trip / "t") == {"name": "t", "initialized": True}  # forgotten
        _send(proc, {"close": True})
        assert proc.wait(10) == 0


def test_the_writer_exits_at_once_at_a_bare_end_of_file(tmp_path: Path) -> None:
    """Its input ends without a close (the engine was killed): it writes nothing more, not
    even a line it had only part of, and leaves the spares' directory alone."""
    a = tmp_path / "a"
    _component(a)
    spares = tmp_path / "spares"
    spares.mkdir()
    (spares / "1-1").write_text("{}")  # a killed engine's: removed only before a spare is made
    with _writer(spares) as proc:
        _send(proc, {"ack": 1})
        assert _answer(proc) == {"ack": 1}
        assert proc.stdin is not None
        proc.stdin.write(b'{"p": "%s", "f": {"state": "finished"}, "t": null}' % str(a).encode())
        proc.stdin.close()
        assert proc.wait(10) == 1
    assert _read(a) == {}
    assert sorted(p.name for p in spares.iterdir()) == ["1-1"]


_ENGINE = """
import sys, time
from pathlib import Path
from sharin.engine._mirror import StateMirror
m = StateMirror(Path(sys.argv[1]))
m.set(Path(sys.argv[2]), {"state": "running"})
m.set(Path(sys.argv[3]), {"state": "running"})
while m.writer_pid is None:
    time.sleep(0.01)
print(m.writer_pid, flush=True)
time.sleep(60)
"""


def test_a_killed_engines_writer_writes_nothing_more_and_exits(tmp_path: Path) -> None:
    """The engine is killed while its writer is in the middle of a batch: the writer finishes
    the write under way and exits without the batch's others (a new engine may own the
    project); it runs in a session of its own, so a Ctrl-C of the terminal does not reach it."""
    slow, other = tmp_path / "slow", tmp_path / "other"
    slow.mkdir()
    fifo = slow / "cmp.wheel.json"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # the writer's read of it waits for us
    _component(other)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    with subprocess.Popen(
        [sys.executable, "-c", _ENGINE, str(tmp_path / "spares"), str(slow), str(other)],
        stdout=subprocess.PIPE,
        env=env,
    ) as engine:
        try:
            assert engine.stdout is not None
            pid = int(engine.stdout.readline())
            assert os.getsid(pid) == pid  # a session of its own
            _wait_until(lambda: _has_open(pid, fifo))
        finally:
            engine.kill()
    os.write(fd, b"{}")
    os.close(fd)
    _wait_until(lambda: _gone(pid))
    assert _read(other) == {}


def test_a_set_before_remove_tree_is_never_written_after_it(tmp_path: Path) -> None:
    mirror = StateMirror(tmp_path / "spares")
    rng = random.Random(7)
    trips = [tmp_path / f"loop_{i}" for i in range(30)]
    try:
        for trip in trips:
            _component(trip / "t")
            mirror.set(trip / "t", {"state": "finished"}, "finished\n0\n0\n")
            time.sleep(rng.choice([0, 0.001, 0.01, 0.09, 0.11]))
            mirror.remove_tree(trip)
            assert not trip.exists()
            _component(trip / "t")  # a write after the removal would show here
        time.sleep(2 * _mirror.MIRROR_DELAY)
        assert mirror.writer_pid is not None
    finally:
        mirror.close()
    assert all(_read(trip / "t") == {} for trip in trips)
    assert all(not (trip / "t" / "status.wheel.txt").exists() for trip in trips)


def test_a_killed_writer_is_replaced_by_writes_in_process(tmp_path: Path) -> None:
    """Killed between batches, or while a batch is under way: the batch it did not answer and
    every later one are written by the engine's own thread."""
    a, b, slow = tmp_path / "a", tmp_path / "b", tmp_path / "slow"
    _component(a)
    _component(b, {"initialized": True})
    mirror = StateMirror(tmp_path / "spares")
    try:
        mirror.set(a, {"state": "running"})
        _wait_until(lambda: _read(a) == {"state": "running"})
        pid = mirror.writer_pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)  # ignored: a Ctrl-C does not stop it
        mirror.set(a, {"state": "finished"}, "finished\n0\n0\n")
        _wait_until(lambda: _read(a) == {"state": "finished"})
        assert mirror.writer_pid == pid
        # killed in the middle of a batch: its read of a named pipe waits for us
        slow.mkdir()
        fifo = slow / "cmp.wheel.json"
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDWR)
        mirror.set(slow, {"state": "running"})
        _wait_until(lambda: _has_open(pid, fifo))
        (tmp_path / "plain.json").write_text("{}")
        os.replace(tmp_path / "plain.json", fifo)  # a file, for the writes in-process
        os.kill(pid, signal.SIGKILL)
        os.close(fd)
        _wait_until(lambda: mirror.writer_pid is None)  # the sender noticed
        _wait_until(lambda: _read(slow) == {"state": "running"})
        mirror.set(b, {"state": "finished", "initialized": DELETE}, "finished\n0\n0\n")
    finally:
        mirror.close()
    assert _read(b) == {"state": "finished"}
    assert (b / "status.wheel.txt").read_text() == "finished\n0\n0\n"
    assert not (tmp_path / "spares").exists()


def test_set_from_several_threads_writes_every_last_state(tmp_path: Path) -> None:
    dirs = [tmp_path / f"t{i}" for i in range(200)]
    for d in dirs:
        _component(d, {"name": d.name})
    mirror = StateMirror(tmp_path / "spares")

    def work(part: list[Path]) -> None:
        for d in part:
            mirror.set(d, {"state": "running", "initialized": True})
        for d in part:
            mirror.set(d, {"state": "finished", "initialized": DELETE}, "finished\n0\n0\n")

    threads = [threading.Thread(target=work, args=(dirs[i::8],)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        mirror.close()
    for d in dirs:
        assert _read(d) == {"name": d.name, "state": "finished"}
        assert (d / "status.wheel.txt").read_text() == "finished\n0\n0\n"
    assert not (tmp_path / "spares").exists()


def test_a_mirror_that_writes_nothing_starts_no_process() -> None:
    before = {p.pid for p in psutil.Process().children()}
    mirror = StateMirror()
    time.sleep(2 * _mirror.MIRROR_DELAY)
    assert mirror.writer_pid is None
    assert {p.pid for p in psutil.Process().children()} == before
    mirror.close()


def test_a_mirror_asked_to_start_has_its_writer_ready_before_the_first_write(
    tmp_path: Path,
) -> None:
    mirror = StateMirror(tmp_path / "spares")
    try:
        mirror.start()
        _wait_until(lambda: mirror.writer_pid is not None, timeout=5.0)
        pid = mirror.writer_pid
        assert pid is not None
        # the process is up (its Python started), and it writes as one started by a write
        writer = _launch.helper_argv(_mirror._WRITER)  # python -I -S, the writer's file
        _wait_until(lambda: psutil.Process(pid).cmdline()[: len(writer)] == writer)
        d = tmp_path / "t"
        _component(d, {"name": "t"})
        mirror.set(d, {"state": "running"})
        time.sleep(4 * _mirror.MIRROR_DELAY)
        assert _read(d) == {"name": "t", "state": "running"}
        assert mirror.writer_pid == pid  # the same process, not a second one
    finally:
        mirror.close()
    assert _gone(pid)


def test_a_writer_that_cannot_be_started_leaves_the_writes_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in ("/nonexistent/python", ""):
        monkeypatch.setattr(sys, "executable", bad)
        d = tmp_path / f"t{len(bad)}"
        _component(d, {"initialized": True})
        mirror = StateMirror(tmp_path / "spares")
        try:
            mirror.set(d, {"state": "finished", "initialized": DELETE}, "finished\n0\n0\n")
            mirror.remove_tree(tmp_path / "elsewhere")  # answered without a writer
        finally:
            mirror.close()
        assert mirror.writer_pid is None
        assert _read(d) == {"state": "finished"}
        assert (d / "status.wheel.txt").read_text() == "finished\n0\n0\n"
