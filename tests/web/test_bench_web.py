"""The browser benchmark (`benchmarks/web.py --browsers`) at a tiny size, so that it keeps working:
every task's final state is seen in each page, and the latencies are real numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "web.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sharin_bench_web", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_two_pages_show_every_final_state_of_a_run_of_20_tasks(tmp_path: Path) -> None:
    web = _bench()
    r = web.measure(20, clients=1, browsers=2, workdir=tmp_path, timeout=120, lag=60)
    assert [c.error for c in r.clients] == [""]
    ends = {k for (k, s) in r.clients[0].event if s == "finished"}
    assert ends == {f"t{i}" for i in range(20)}
    assert len(r.pages) == 2
    for p in r.pages:
        assert p.errors == []
        assert p.view == "list" and p.rendered
        # every task's final state was shown in the page
        assert {k for k, states in p.dom.items() if "finished" in states} == ends
        assert p.finals == 20
        # each (component, state) the engine reported was shown or counted as coalesced
        assert p.shown + p.coalesced + p.unchanged == len(r.clients[0].event)
        assert p.shown >= 20
        for xs in (p.latencies, p.frame_latencies, p.receive_latencies):
            assert xs and all(math.isfinite(x) and x >= 0 for x in xs)
        assert p.heap_after > 0 and p.nodes > 0
    assert r.rss_idle[0] > 0 and r.rss_after[1] >= r.rss_connected[0]
    assert r.cpu_after >= r.cpu_connected >= r.cpu_idle > 0
    assert r.run_s > 0 and r.floor_s > 0
    text = web.report(r, "python benchmarks/web.py --tasks 20 --browsers 2")
    assert "state change → list view's DOM, 2 pages" in text and "Errors" not in text
