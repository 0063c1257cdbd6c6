"""The UI server: how soon a state change reaches its clients and the browser, and its memory.

    python benchmarks/web.py                          # 1,000 tasks, 10 WebSocket clients
    python benchmarks/web.py --tasks 200 --clients 3
    python benchmarks/web.py --tasks 1000 --browsers 10   # 10 Chromium pages on the list view
    python benchmarks/web.py --tasks 1000 --browsers 1 --graph  # and one page on the graph view

A project of N independent tasks (each ``true``) is run twice: once by ``sharin run`` (the floor:
the same engine with no server), once started through the server of ``sharin ui``.

Without ``--browsers``, C Python WebSocket clients follow ``/api/projects/{id}/events``; a change's
latency is the client's clock at arrival minus the engine's timestamp of the event (one machine,
one clock).

With ``--browsers B``, B pages of a headless Chromium (Playwright, ``/usr/bin/chromium`` or
``$SHARIN_CHROMIUM``), each in its own browser context, show the project's list view
(``#/p/<id>/list``), and C Python clients (default 1) follow the events beside them in the same run:
their latency is the floor of the browser's. Before the run, a ``MutationObserver`` in each page
records, for each row, the first time (the wall clock, as the engine's ``time.time()``) the row
shows each state, and the first animation frame after that, and when each frame of the events
WebSocket reached the page's script (before the app read it). A change's browser latency is
that time minus the engine's timestamp of the event; a state the engine reported that a page never
showed (a later one came first) is counted as *coalesced*. ``--graph`` adds one page on the graph
view. Reported besides: the run's wall time beside ``sharin run``'s, the server's resident memory
(VmRSS idle, with the clients and pages, after the run; VmHWM for the peak) and CPU time
(utime + stime of ``/proc/<pid>/stat``), and the pages' own JavaScript heap, main-thread time (CDP
``Performance.getMetrics``) and their renderer processes' memory (PSS) and CPU time.
``--profile FILE`` writes the first page's CPU profile of the run (CDP ``Profiler``, Chrome's
``.cpuprofile``) and prints its top functions to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sharin

CHROMIUM = os.environ.get("SHARIN_CHROMIUM", "/usr/bin/chromium")
FINAL = ("finished", "failed", "stopped")
TICK = os.sysconf("SC_CLK_TCK")

#: views a page may show: (the route's view, a row's selector, its path attribute, the state's element)
VIEWS = {
    "list": ("tr[data-component]", "data-component", ".state"),
    "graph": (".node[data-node]", "data-node", ".node-state"),
}

# Installed in every page before its scripts run. For each row (ROW, named by ATTR), the first
# time at which its STATE element shows each state (`dom`), and the time of the first animation
# frame after that (`frame`); the wall clock of Date.now(), to a fraction of a millisecond
# (performance.timeOrigin + performance.now()). `reset()` starts afresh, remembering what each
# row shows.
OBSERVER = r"""
(([ROW, ATTR, STATE, FINAL]) => {
  const b = { dom: {}, frame: {}, before: {}, rows: 0, finals: 0, callbacks: 0, mutations: 0, busy: 0 }
  window.__bench = b
  // the wall clock with the engine's resolution (Date.now() is whole milliseconds)
  const clock = () => performance.timeOrigin + performance.now()
  let pending = []
  const flush = () => {
    const now = clock()
    for (const [p, s] of pending) b.frame[p][s] = now
    pending = []
  }
  const record = (row, now) => {
    const p = row.getAttribute(ATTR)
    const el = row.querySelector(STATE)
    if (p === null || !el) return
    const s = el.textContent.trim()
    let m = b.dom[p]
    if (!m) {
      m = b.dom[p] = {}
      b.frame[p] = {}
      b.rows++
    }
    if (s in m) return
    m[s] = now
    if (FINAL.includes(s)) b.finals++
    if (!pending.length) requestAnimationFrame(flush)
    pending.push([p, s])
  }
  const observer = new MutationObserver((muts) => {
    const now = clock()
    const t0 = performance.now()
    const rows = new Set()
    for (const m of muts) {
      const n = m.target.nodeType === 1 ? m.target : m.target.parentElement
      const r = n && n.closest(ROW)
      if (r) rows.add(r)
      for (const a of m.addedNodes) {
        if (a.nodeType !== 1) continue
        if (a.matches(ROW)) rows.add(a)
        for (const x of a.querySelectorAll(ROW)) rows.add(x)
      }
    }
    for (const r of rows) record(r, now)
    b.callbacks++
    b.mutations += muts.length
    b.busy += performance.now() - t0
  })
  observer.observe(document, { subtree: true, childList: true, characterData: true })
  // when each message of the events WebSocket reached the page's script (before the app read it)
  b.arrived = []
  const Socket = window.WebSocket
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args)
      if (String(args[0]).includes('/events')) {
        this.addEventListener('message', (m) => b.arrived.push([clock(), m.data]))
      }
    }
  }
  b.received = () => {
    const got = {}
    let snapshots = 0
    for (const [t, data] of b.arrived) {
      const frame = JSON.parse(data)
      for (const m of Array.isArray(frame) ? frame : [frame]) {
        if (m.type === 'snapshot') snapshots++
        if (m.type !== 'change' || !m.event.key) continue
        const k = (got[m.event.key] ??= {})
        if (!(m.event.state in k)) k[m.event.state] = t
      }
    }
    return { got, snapshots, frames: b.arrived.length }
  }
  b.reset = () => {
    for (const r of document.querySelectorAll(ROW)) {
      const el = r.querySelector(STATE)
      if (el) b.before[r.getAttribute(ATTR)] = el.textContent.trim()
    }
    b.dom = {}
    b.frame = {}
    b.arrived = []
    b.rows = 0
    b.finals = 0
    b.callbacks = 0
    b.mutations = 0
    b.busy = 0
  }
})
"""


def _rss(pid: int) -> tuple[float, float]:
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                got[key] = int(value.split()[0]) / 1024
    return got["VmRSS"], got["VmHWM"]


def _cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _renderers() -> list[int]:
    """Chromium's renderer processes among this process's descendants."""
    parent: dict[int, int] = {}
    renderer: set[int] = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if b"--type=renderer" in f.read():
                    renderer.add(int(d))
        except OSError:
            continue
    me = os.getpid()

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == me:
                return True
        return False

    return sorted(p for p in renderer if mine(p))


def _pss(pid: int) -> float:
    """Proportional set size (MB): shared pages counted once over the processes sharing them."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _renderer_use(pids: list[int]) -> tuple[float, float]:
    """Total PSS (MB) and CPU seconds of the processes that still exist."""
    pss = cpu = 0.0
    for p in pids:
        try:
            pss += _pss(p)
            cpu += _cpu(p)
        except OSError:
            continue
    return pss, cpu


@contextlib.contextmanager
def ui_server(ws: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``sharin ui --no-browser --workspace WS`` running: its process, its URL's base and
    its token; stopped when the block ends."""
    server = subprocess.Popen(
        [sys.executable, "-m", "sharin", "ui", "--no-browser", "--workspace", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    drain: threading.Thread | None = None
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(": ", 1)[1].strip()
        drain = threading.Thread(target=server.stdout.read, daemon=True)  # never blocks it
        drain.start()
        base, token = url.split("/?token=")
        yield server, base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if drain is not None:
            drain.join(10)
        if server.stdout is not None:
            server.stdout.close()


def _build(ws: Path, name: str, n: int) -> Path:
    p = sharin.new_project(ws / name)
    with p.batch():
        for i in range(n):
            sharin.add_task(p, f"t{i}", "true")
    return p.root


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of sorted ``xs`` (nearest rank)."""
    return xs[min(len(xs) - 1, int(len(xs) * q))]


@dataclass
class Client:
    """One Python WebSocket client: for each (component, state), the engine's time of its first
    event and the client's time of its arrival."""

    event: dict[tuple[str, str], float] = field(default_factory=dict)
    arrived: dict[tuple[str, str], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  #: every change, s
    changes: int = 0
    resyncs: int = 0  #: snapshots after the first: this client fell behind
    run_end: float | None = None  #: the engine's time of the run's final event
    run_end_arrived: float | None = None
    error: str = ""


def _client(url: str, c: Client, done: threading.Event, ready: threading.Barrier) -> None:
    from websockets.sync.client import connect

    try:
        with connect(url, open_timeout=30, max_size=None) as ws:
            json.loads(ws.recv(timeout=30))  # the snapshot
            ready.wait(120)
            while True:
                m = json.loads(ws.recv(timeout=900))
                now = time.time()
                if m["type"] != "change":
                    c.resyncs += 1
                    continue
                e = m["event"]
                c.changes += 1
                c.latencies.append(now - e["time"])
                if e["key"] == "":
                    if e["state"] in FINAL:
                        c.run_end, c.run_end_arrived = e["time"], now
                        break
                    continue
                c.event.setdefault((e["key"], e["state"]), e["time"])
                c.arrived.setdefault((e["key"], e["state"]), now)
    except Exception as e:  # noqa: BLE001 - reported beside the figures
        c.error = f"{type(e).__name__}: {e}"
    finally:
        done.set()


@dataclass
class Page:
    """What one browser page showed during the run."""

    view: str
    load_s: float = 0.0  #: from opening the page to every row shown
    rendered: bool = True
    dom: dict[str, dict[str, float]] = field(default_factory=dict)  #: path -> state -> ms
    frame: dict[str, dict[str, float]] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)  #: what each row showed before the run
    latencies: list[float] = field(default_factory=list)  #: ms, each (component, state) shown
    frame_latencies: list[float] = field(default_factory=list)
    #: path -> state -> ms: when the change's WebSocket message reached the page's script
    received: dict[str, dict[str, float]] = field(default_factory=dict)
    receive_latencies: list[float] = field(default_factory=list)  #: ms, every change received
    snapshots: int = 0  #: snapshots the page received during the run (it fell behind)
    ws_frames: int = 0  #: WebSocket frames of the events the page received during the run
    hidden: bool = False  #: the page's document.visibilityState after the run
    shown: int = 0
    coalesced: int = 0
    unchanged: int = 0  #: a state the row showed already before its event
    last_final: float = 0.0  #: s since the epoch: the last row's final state shown
    finals: int = 0
    observer_ms: float = 0.0  #: time spent in the MutationObserver's callbacks
    callbacks: int = 0
    heap_before: float = 0.0  #: MB, JSHeapUsedSize
    heap_after: float = 0.0
    nodes: float = 0.0  #: DOM nodes after the run
    script_s: float = 0.0  #: CDP ScriptDuration during the run
    task_s: float = 0.0  #: CDP TaskDuration during the run (the main thread busy)
    layout_s: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class Result:
    tasks: int
    clients: list[Client]
    pages: list[Page]
    floor_s: float
    run_s: float  #: POST of the run to the run's final event arriving at the first client
    rss_idle: tuple[float, float]
    rss_connected: tuple[float, float]
    rss_after: tuple[float, float]
    cpu_idle: float  #: the server's CPU seconds before the clients connected
    cpu_connected: float  #: ... with every client and page connected
    cpu_after: float
    renderers: int = 0
    renderer_pss: tuple[float, float] = (0.0, 0.0)  #: MB before / after the run, all renderers
    renderer_cpu: float = 0.0  #: CPU seconds of the renderers during the run
    run_start: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  #: 1-minute load average before and after


def _join(page: Page, client: Client, run_start: float) -> None:
    """Latencies of one page against the engine's event times."""
    for (key, state), t in client.event.items():
        shown = page.dom.get(key, {}).get(state)
        if shown is None:
            if page.before.get(key) == state:
                page.unchanged += 1
            else:
                page.coalesced += 1
            continue
        page.shown += 1
        page.latencies.append(shown - t * 1000)
        frame = page.frame.get(key, {}).get(state)
        if frame is not None:
            page.frame_latencies.append(frame - t * 1000)
    for key, states in page.received.items():
        for state, t_ms in states.items():
            t = client.event.get((key, state))
            if t is not None:
                page.receive_latencies.append(t_ms - t * 1000)
    page.latencies.sort()
    page.frame_latencies.sort()
    page.receive_latencies.sort()
    finals = [t for m in page.dom.values() for s, t in m.items() if s in FINAL]
    page.finals = len(finals)
    page.last_final = max(finals, default=run_start * 1000) / 1000


def _profile_summary(prof: dict[str, Any], top: int = 20) -> str:
    """The functions with the most self time in a CDP ``Profiler`` profile."""
    nodes = {n["id"]: n for n in prof["nodes"]}
    own: dict[int, float] = {}
    for sample, dt in zip(prof["samples"], prof["timeDeltas"], strict=True):
        own[sample] = own.get(sample, 0.0) + dt / 1000
    by: dict[str, float] = {}
    for nid, ms in own.items():
        f = nodes[nid]["callFrame"]
        where = f"{f['functionName'] or '(anonymous)'} {Path(f['url']).name}:{f['lineNumber'] + 1}"
        by[where] = by.get(where, 0.0) + ms
    total = sum(by.values()) or 1.0
    rows = sorted(by.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{ms:10.0f} ms {100 * ms / total:5.1f} %  {w}" for w, ms in rows)


def _metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def measure(
    tasks: int,
    clients: int,
    browsers: int = 0,
    graph: bool = False,
    workdir: Path | None = None,
    timeout: float = 900.0,
    lag: float = 300.0,
    profile: Path | None = None,
    log: Any = None,
) -> Result:
    """Build, run the floor, start `sharin ui`, connect, run through it and collect the figures
    (``lag``: how long the pages may take to show every final state after the run's end;
    ``profile``: where to write the first page's CPU profile of the run, Chrome's
    ``.cpuprofile`` format)."""

    def say(msg: str) -> None:
        if log is not None:
            print(f"[web] {msg}", file=log, flush=True)

    tmp = workdir or Path(tempfile.mkdtemp(prefix="sharin-web-bench-"))
    ws = tmp / "ws"
    ws.mkdir(parents=True)
    say(f"building two projects of {tasks} tasks in {tmp}")
    floor_root = _build(tmp, "floor", tasks)
    _build(ws, "served", tasks)

    say("the floor: sharin run")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sharin", "run", str(floor_root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    floor_s = time.perf_counter() - t0

    load0 = os.getloadavg()[0]
    stack = contextlib.ExitStack()
    server, base, token = stack.enter_context(ui_server(ws))
    pw = browser = None
    try:
        time.sleep(0.5)
        rss_idle, cpu_idle = _rss(server.pid), _cpu(server.pid)

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

        views = ["list"] * browsers + (["graph"] if graph else [])
        pages: list[Page] = []
        handles: list[tuple[Page, Any, Any]] = []
        if views:
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            for view in views:
                row, attr, el = VIEWS[view]
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_init_script(f"{OBSERVER}({json.dumps([row, attr, el, FINAL])})")
                page = context.new_page()
                p = Page(view)
                page.on("pageerror", lambda e, p=p: p.errors.append(str(e)))
                say(f"page {len(pages) + 1}/{len(views)}: the {view} view")
                t1 = time.perf_counter()
                page.goto(f"{base}/?token={token}#/p/{pid}/{view}")
                try:
                    page.wait_for_function(
                        f"document.querySelectorAll({json.dumps(row)}).length >= {tasks}",
                        polling=100,
                        timeout=(timeout if view == "list" else 180) * 1000,
                    )
                except Exception as e:  # noqa: BLE001 - a graph that does not render is a figure
                    if view == "list":
                        raise
                    p.rendered = False
                    p.errors.append(f"{tasks} nodes not drawn: {type(e).__name__}")
                p.load_s = time.perf_counter() - t1
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                pages.append(p)
                handles.append((p, page, cdp))

        n_clients = clients
        wsurl = base.replace("http://", "ws://") + f"/api/projects/{pid}/events?token={token}"
        cs = [Client() for _ in range(n_clients)]
        dones = [threading.Event() for _ in range(n_clients)]
        ready = threading.Barrier(n_clients + 1)
        threads = [
            threading.Thread(target=_client, args=(wsurl, cs[i], dones[i], ready), daemon=True)
            for i in range(n_clients)
        ]
        for t in threads:
            t.start()
        ready.wait(120)
        time.sleep(0.5)
        rss_connected, cpu_connected = _rss(server.pid), _cpu(server.pid)
        rpids = _renderers() if views else []
        r_before = _renderer_use(rpids)
        before_metrics = []
        for p, page, cdp in handles:
            page.evaluate("window.__bench.reset()")
            m = _metrics(cdp)
            p.heap_before = m.get("JSHeapUsedSize", 0) / 2**20
            before_metrics.append(m)

        if profile is not None and handles:
            cdp = handles[0][2]
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            cdp.send("Profiler.start")
        say("the run through the server")
        run_start = time.time()
        t0 = time.perf_counter()
        http("POST", f"/api/projects/{pid}/run", {})
        for d in dones:
            d.wait(timeout)
        run_s = time.perf_counter() - t0
        say(f"the run ended after {run_s:.1f} s; waiting for the pages")
        until = time.perf_counter() + lag
        for i, (p, page, _) in enumerate(handles):
            while p.rendered:
                n = page.evaluate("window.__bench.finals")
                if n >= tasks:
                    break
                if time.perf_counter() > until:
                    p.errors.append(
                        f"{tasks - n} rows without their final state {lag:.0f} s after the run"
                    )
                    break
                say(f"page {i + 1}: {n} of {tasks} final states shown")
                time.sleep(min(10.0, 0.1 + (tasks - n) / 100))
        time.sleep(0.3)  # the last animation frames
        if profile is not None and handles:
            got = handles[0][2].send("Profiler.stop")["profile"]
            profile.write_text(json.dumps(got))
            say(f"the first page's CPU profile: {profile}")
            if log is not None:
                print(_profile_summary(got), file=log)
        rss_after, cpu_after = _rss(server.pid), _cpu(server.pid)
        r_after = _renderer_use(rpids)
        for (p, page, cdp), m0 in zip(handles, before_metrics, strict=True):
            got = page.evaluate(
                "(() => { const b = window.__bench;"
                " return {dom: b.dom, frame: b.frame, before: b.before, busy: b.busy,"
                " callbacks: b.callbacks, received: b.received(),"
                " hidden: document.visibilityState === 'hidden'} })()"
            )
            p.dom, p.frame, p.before = got["dom"], got["frame"], got["before"]
            p.received, p.snapshots = got["received"]["got"], got["received"]["snapshots"]
            p.ws_frames = got["received"]["frames"]
            p.hidden = got["hidden"]
            p.observer_ms, p.callbacks = got["busy"], got["callbacks"]
            m = _metrics(cdp)
            p.heap_after = m.get("JSHeapUsedSize", 0) / 2**20
            p.nodes = m.get("Nodes", 0)
            p.script_s = m.get("ScriptDuration", 0) - m0.get("ScriptDuration", 0)
            p.task_s = m.get("TaskDuration", 0) - m0.get("TaskDuration", 0)
            p.layout_s = m.get("LayoutDuration", 0) - m0.get("LayoutDuration", 0)
            _join(p, cs[0], run_start)
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
        stack.close()
    return Result(
        tasks=tasks,
        clients=cs,
        pages=pages,
        floor_s=floor_s,
        run_s=run_s,
        rss_idle=rss_idle,
        rss_connected=rss_connected,
        rss_after=rss_after,
        cpu_idle=cpu_idle,
        cpu_connected=cpu_connected,
        cpu_after=cpu_after,
        renderers=len(rpids),
        renderer_pss=(r_before[0], r_after[0]),
        renderer_cpu=r_after[1] - r_before[1],
        run_start=run_start,
        load=(load0, os.getloadavg()[0]),
    )


def _ms(xs: list[float]) -> str:
    if not xs:
        return "–"
    return (
        f"{statistics.median(xs):.0f} / {pct(xs, 0.9):.0f} / {pct(xs, 0.99):.0f} / {xs[-1]:.0f} ms"
    )


def report(r: Result, command: str) -> str:
    out = [
        f"`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(r.run_start))}, "
        f"load {r.load[0]:.1f} before, {r.load[1]:.1f} after (1-minute average, 2 CPUs)\n",
        "| figure | value | floor |",
        "|---|---|---|",
    ]
    c0 = r.clients[0]
    ws = sorted(x * 1000 for c in r.clients for x in c.latencies)
    wsname = f"{len(r.clients)} Python WebSocket client{'s' if len(r.clients) > 1 else ''}"
    lists = [p for p in r.pages if p.view == "list"]
    if lists:
        every = sorted(x for p in lists for x in p.latencies)
        frames = sorted(x for p in lists for x in p.frame_latencies)
        out.append(
            f"| state change → list view's DOM, {len(lists)} page{'s' if len(lists) > 1 else ''}:"
            f" median / p90 / p99 / max | {_ms(every)} | {wsname}: {_ms(ws)} |"
        )
        got = sorted(x for p in lists for x in p.receive_latencies)
        out.append(f"| state change → next animation frame after it | {_ms(frames)} | |")
        out.append(f"| state change → its WebSocket message in the page's script | {_ms(got)} | |")
        out.append(
            "| per page during the run: WebSocket frames received, DOM updates (observer"
            " callbacks); snapshots received, all pages | "
            f"{statistics.median(p.ws_frames for p in lists):.0f}, "
            f"{statistics.median(p.callbacks for p in lists):.0f}; "
            f"{sum(p.snapshots for p in lists)} | hidden pages: {sum(p.hidden for p in lists)} |"
        )
        shown = sum(p.shown for p in lists) // len(lists)
        coal = sum(p.coalesced for p in lists) // len(lists)
        same = sum(p.unchanged for p in lists) // len(lists)
        out.append(
            f"| (component, state) changes per page: shown / coalesced / shown before the run"
            f" | {shown} / {coal} / {same} | {wsname.split(' Python')[0]} client(s): "
            f"{len(c0.event)} (resyncs: {sum(c.resyncs for c in r.clients)}) |"
        )
        out.append(
            "| every row's final state shown, pages | "
            f"{sum(p.finals >= r.tasks for p in lists)} of {len(lists)} | |"
        )
        if c0.run_end is not None:
            lag = max(p.last_final for p in lists) - c0.run_end
            out.append(
                f"| the run's end → the last final state shown in every page | {lag * 1000:.0f} ms |"
                f" client: {(c0.run_end_arrived or 0) - c0.run_end:.3f} s |"
            )
        load = statistics.median(p.load_s for p in lists)
        out.append(f"| list view of {r.tasks} rows opened, median per page | {load:.2f} s | |")
    else:
        out.append(f"| state change → client, median | {statistics.median(ws):.1f} ms | |")
        out.append(f"| state change → client, p99 | {pct(ws, 0.99):.1f} ms | |")
        out.append(f"| changes received per client | {len(ws) // len(r.clients)} | |")
    for p in r.pages:
        if p.view != "graph":
            continue
        if not p.rendered:
            out.append(
                f"| graph view of {r.tasks} nodes | not drawn in {p.load_s:.0f} s: "
                f"{'; '.join(p.errors)} | |"
            )
            continue
        out.append(f"| graph view of {r.tasks} nodes opened | {p.load_s:.2f} s | |")
        out.append(
            f"| state change → graph view's DOM: median / p90 / p99 / max | {_ms(p.latencies)}"
            f" | shown {p.shown}, coalesced {p.coalesced} |"
        )
        out.append(
            f"| graph page: main thread busy during the run / heap after | {p.task_s:.1f} s / "
            f"{p.heap_after:.0f} MB | |"
        )
    who = f"{len(r.clients)} client(s)" + (f", {len(r.pages)} page(s)" if r.pages else "")
    out.append(
        f"| run of {r.tasks} tasks through the server, {who} | {r.run_s:.2f} s |"
        f" `sharin run` {r.floor_s:.2f} s |"
    )
    out.append(
        f"| server CPU time: start-up / connecting / the run | {r.cpu_idle:.2f} / "
        f"{r.cpu_connected - r.cpu_idle:.2f} / {r.cpu_after - r.cpu_connected:.2f} s | |"
    )
    out.append(
        f"| server RSS idle / with {who} / after the run | {r.rss_idle[0]:.1f} / "
        f"{r.rss_connected[0]:.1f} / {r.rss_after[0]:.1f} MB | |"
    )
    out.append(f"| server peak RSS | {r.rss_after[1]:.1f} MB | |")
    if lists:
        med = statistics.median
        out.append(
            "| per list page during the run: main thread busy / in scripts / layout / observer"
            f" | {med(p.task_s for p in lists):.2f} / {med(p.script_s for p in lists):.2f} / "
            f"{med(p.layout_s for p in lists):.2f} / "
            f"{med(p.observer_ms for p in lists) / 1000:.2f} s | |"
        )
        out.append(
            "| per list page: JS heap used before / after the run, DOM nodes | "
            f"{med(p.heap_before for p in lists):.1f} / {med(p.heap_after for p in lists):.1f} MB,"
            f" {med(p.nodes for p in lists):.0f} | |"
        )
    if r.renderers:
        out.append(
            f"| Chromium's renderers ({r.renderers} processes): PSS before / after the run, "
            f"CPU time during it | {r.renderer_pss[0]:.0f} / {r.renderer_pss[1]:.0f} MB, "
            f"{r.renderer_cpu:.1f} s | |"
        )
    errors = [f"client: {c.error}" for c in r.clients if c.error] + [
        f"{p.view} page: {e}" for p in r.pages for e in p.errors
    ]
    if errors:
        out.append("\nErrors: " + "; ".join(sorted(set(errors))))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument(
        "--clients",
        type=int,
        default=None,
        help="Python WebSocket clients (default 10; 1 beside --browsers)",
    )
    ap.add_argument(
        "--browsers",
        type=int,
        nargs="?",
        const=10,
        default=0,
        help="Chromium pages on the list view (--browsers alone: 10)",
    )
    ap.add_argument("--graph", action="store_true", help="one more page, on the graph view")
    ap.add_argument(
        "--lag",
        type=float,
        default=300.0,
        help="seconds the pages may take after the run to show every final state (default 300)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        help="write the first page's CPU profile of the run there (.cpuprofile) and its top"
        " functions to stderr",
    )
    ap.add_argument("--workdir", type=Path, help="where to build the projects (kept)")
    args = ap.parse_args()
    clients = args.clients if args.clients is not None else (1 if args.browsers else 10)
    r = measure(
        args.tasks,
        max(1, clients),
        args.browsers,
        args.graph,
        workdir=args.workdir,
        lag=args.lag,
        profile=args.profile,
        log=sys.stderr,
    )
    print(report(r, "python benchmarks/web.py " + " ".join(sys.argv[1:])))


if __name__ == "__main__":
    main()
