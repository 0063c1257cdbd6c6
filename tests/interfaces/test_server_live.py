"""The UI's server over real sockets: a client that stops reading slows nothing and re-syncs."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

import sharin
from sharin.interfaces.server import ServerConfig, create_app

TOKEN = "live-token"
pytestmark = pytest.mark.slow


class Served:
    def __init__(self, workspace: Path, watch_buffer: int) -> None:
        self.sock = socket.socket()
        # the server's sockets (accepted ones take the listening socket's size) hold little of
        # what a client does not read: one that stops reading falls behind by the hub's count,
        # not only once the kernel's buffer is full (autotuning makes that megabytes here)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        app = create_app(ServerConfig(workspace=workspace, token=TOKEN, watch_buffer=watch_buffer))
        self.server = uvicorn.Server(
            uvicorn.Config(app, fd=self.sock.fileno(), log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def http(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def ws(self, path: str) -> Any:
        s = socket.socket()
        s.connect(("127.0.0.1", self.port))
        return connect(
            f"ws://127.0.0.1:{self.port}{path}?token={TOKEN}", sock=s, max_queue=1, open_timeout=20
        )

    def stalled(self, path: str) -> Stalled:
        return Stalled(self.port, path)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()


class Stalled:
    """A websocket client that reads nothing from its socket until asked, as a browser tab that
    hangs: after the handshake its socket (a small receive buffer) is left alone, so what the
    server sends beyond what the kernels hold waits on the server's side. (A client library's
    reader thread would go on taking what arrives.)"""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.connect(("127.0.0.1", port))
        self.proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}?token={TOKEN}"))
        self.proto.send_request(self.proto.connect())
        self.messages: list[str] = []
        self._flush()
        self.sock.settimeout(20)
        while self.proto.state is not State.OPEN:
            data = self.sock.recv(4096)
            assert data, "the server closed the connection during the handshake"
            self._feed(data)

    def _flush(self) -> None:
        out = b"".join(self.proto.data_to_send())
        if out:
            self.sock.sendall(out)

    def _feed(self, data: bytes) -> None:
        self.proto.receive_data(data)
        for ev in self.proto.events_received():
            if isinstance(ev, Frame) and ev.opcode is Opcode.TEXT:
                self.messages.append(bytes(ev.data).decode())
        self._flush()  # the answers to pings

    def recv(self, timeout: float) -> str:
        self.sock.settimeout(timeout)
        while not self.messages:
            data = self.sock.recv(1 << 16)  # TimeoutError when nothing comes
            if not data:
                raise TimeoutError("closed")
            self._feed(data)
        return self.messages.pop(0)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ws = tmp_path / "ws"
    ws.mkdir()
    p = sharin.new_project(ws / "many")
    with p.batch():
        for i in range(300):
            sharin.add_task(p, f"t{i}", "echo " + "x" * 200)
    s = Served(ws, watch_buffer=50)
    try:
        yield s
    finally:
        s.close()


def test_a_client_that_stops_reading_neither_slows_the_run_nor_the_others(
    served: Served,
) -> None:
    pid = served.http("GET", "/api/projects")[0]["id"]
    path = f"/api/projects/{pid}/events"
    stalled = served.stalled(path)
    try:
        with served.ws(path) as reader:
            _watch(served, pid, stalled, reader)
    finally:
        stalled.close()


def _watch(served: Served, pid: str, stalled: Stalled, reader: ClientConnection) -> None:
    """``stalled`` is not read while the run goes on."""
    assert json.loads(reader.recv(timeout=10))["type"] == "snapshot"
    t0 = time.monotonic()
    served.http("POST", f"/api/projects/{pid}/run", {})
    finished: dict[str, str] = {}
    seqs: list[int] = []
    while True:
        m = json.loads(reader.recv(timeout=120))
        if m["type"] == "snapshot":  # re-synced: take its states
            finished.update({k: v["state"] for k, v in m["states"].items()})
            seqs.append(m["seq"])
            continue
        seqs.append(m["seq"])
        finished[m["event"]["key"]] = m["event"]["state"]
        if m["event"]["key"] == "" and m["event"]["state"] in ("finished", "failed"):
            break
    took = time.monotonic() - t0
    assert finished[""] == "finished" and sum(v == "finished" for v in finished.values()) == 301
    assert seqs == sorted(seqs)
    # the server answers while the stalled client still holds its socket
    assert served.http("GET", f"/api/projects/{pid}/status")["run"]["state"] == "finished"
    # the stalled client, reading at last, was handed a snapshot instead of what it missed, and
    # ends with the same states
    kinds = []
    states: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            m = json.loads(stalled.recv(timeout=2))
        except TimeoutError:
            break
        kinds.append(m["type"])
        if m["type"] == "snapshot":
            states = {k: v["state"] for k, v in m["states"].items()}
            if m["run"]:
                states[""] = m["run"]["state"]
        else:
            assert m["type"] == "change", m  # the run's writes are no edit
            states[m["event"]["key"]] = m["event"]["state"]
    assert kinds[0] == "snapshot" and "snapshot" in kinds[1:], kinds[:5]
    assert kinds.count("change") < seqs[-1]  # it skipped changes rather than queue them all
    assert states == finished
    assert took < 120
