"""The UI server: how soon a state change reaches its clients, and what the server holds in memory.

    python benchmarks/web.py                 # 1,000 tasks, 10 WebSocket clients
    python benchmarks/web.py --tasks 200 --clients 3

A project of N independent tasks (each ``true``) is run twice: once by ``sharin run`` (the floor:
the same engine with no server), once started through the server of ``sharin ui`` with C clients
connected to ``/api/projects/{id}/events``. For each change a client receives, the latency is the
client's clock at arrival minus the engine's timestamp of the event (one machine, one clock).
Reported: median and p99 over all clients, the run's wall time beside the floor's, and the
server's resident memory (VmRSS, VmHWM of ``/proc``) idle, with the clients connected, and after
the run. The clients here are Python WebSocket clients; a browser adds its own rendering.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import sharin


def _rss(pid: int) -> tuple[float, float]:
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                got[key] = int(value.split()[0]) / 1024
    return got["VmRSS"], got["VmHWM"]


def _build(ws: Path, name: str, n: int) -> Path:
    p = sharin.new_project(ws / name)
    with p.batch():
        for i in range(n):
            sharin.add_task(p, f"t{i}", "true")
    return p.root


def _client(url: str, out: list[float], done: threading.Event, ready: threading.Barrier) -> None:
    from websockets.sync.client import connect

    with connect(url, open_timeout=30, max_size=None) as ws:
        json.loads(ws.recv(timeout=30))  # the snapshot
        ready.wait(60)
        while True:
            m = json.loads(ws.recv(timeout=600))
            now = time.time()
            if m["type"] != "change":
                continue
            out.append(now - m["event"]["time"])
            if m["event"]["key"] == "" and m["event"]["state"] in ("finished", "failed", "stopped"):
                break
    done.set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sharin-web-bench-"))
    ws = tmp / "ws"
    ws.mkdir()
    floor_root = _build(tmp, "floor", args.tasks)
    _build(ws, "served", args.tasks)

    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sharin", "run", str(floor_root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    floor_s = time.perf_counter() - t0

    server = subprocess.Popen(
        [sys.executable, "-m", "sharin", "ui", "--no-browser", "--workspace", str(ws)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(": ", 1)[1].strip()
        base, token = url.split("/?token=")
        time.sleep(0.5)
        idle = _rss(server.pid)

        def http(method: str, path: str, body: Any = None) -> Any:
            req = urllib.request.Request(
                base + path,
                method=method,
                data=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())

        pid = http("GET", "/api/projects")[0]["id"]
        wsurl = base.replace("http://", "ws://") + f"/api/projects/{pid}/events?token={token}"
        lat: list[list[float]] = [[] for _ in range(args.clients)]
        dones = [threading.Event() for _ in range(args.clients)]
        ready = threading.Barrier(args.clients + 1)
        threads = [
            threading.Thread(target=_client, args=(wsurl, lat[i], dones[i], ready), daemon=True)
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        ready.wait(60)
        connected = _rss(server.pid)
        t0 = time.perf_counter()
        http("POST", f"/api/projects/{pid}/run", {})
        for d in dones:
            d.wait(600)
        run_s = time.perf_counter() - t0
        after = _rss(server.pid)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    every = sorted(x * 1000 for one in lat for x in one)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))]
    print(
        f"`python benchmarks/web.py --tasks {args.tasks} --clients {args.clients}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("| figure | value | floor |")
    print("|---|---|---|")
    print(f"| state change → client, median | {statistics.median(every):.1f} ms | |")
    print(f"| state change → client, p99 | {p99:.1f} ms | |")
    print(f"| changes received per client | {len(every) // args.clients} | |")
    print(
        f"| run of {args.tasks} tasks through the server, {args.clients} clients | "
        f"{run_s:.2f} s | `sharin run` {floor_s:.2f} s |"
    )
    print(
        f"| server RSS idle / with clients / after the run | {idle[0]:.1f} / {connected[0]:.1f}"
        f" / {after[0]:.1f} MB | |"
    )
    print(f"| server peak RSS | {after[1]:.1f} MB | |")


if __name__ == "__main__":
    main()
