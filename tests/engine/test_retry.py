"""Retries are bounded and spaced: a short wait before each re-run, doubling, capped."""

from __future__ import annotations

import time

import pytest

import sharin
from sharin import Project
from sharin.engine import Event, _engine

STAMP = "date +%s.%N >> times\nexit 1\n"


def _gaps(project: Project) -> list[float]:
    times = [float(x) for x in (project.root / "t" / "times").read_text().split()]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_a_failing_task_is_retried_after_a_growing_wait(project: Project) -> None:
    sharin.add_task(project, "t", STAMP, retry=3)
    said: list[str] = []
    result = sharin.run(project, on_event=lambda e: said.append(e.message or ""))
    assert result.state == "failed"
    gaps = _gaps(project)
    assert len(gaps) == 3
    for gap, wait in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= wait * 0.9, gaps
    assert "attempt 1 failed (exit 1); retrying in 0.1 s" in said
    assert "attempt 3 failed (exit 1); retrying in 0.4 s" in said


def test_the_wait_is_capped(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "RETRY_DELAY", 60.0)
    monkeypatch.setattr(_engine, "RETRY_DELAY_MAX", 0.05)
    sharin.add_task(project, "t", STAMP, retry=2)
    start = time.monotonic()
    sharin.run(project)
    assert time.monotonic() - start < 10
    assert len(_gaps(project)) == 2


def test_a_stop_during_the_wait_stops_the_task(project: Project) -> None:
    sharin.add_task(project, "t", STAMP, retry=5)
    p = sharin.open_project(project.root)
    import asyncio

    async def go() -> sharin.RunResult:
        from sharin.engine import Engine, EventBus
        from sharin.executors import ExecutorRegistry
        from sharin.model import load_hosts

        bus = EventBus()
        engine = Engine(p, ExecutorRegistry(load_hosts(), max_local=2), events=bus)

        def on(e: Event) -> None:
            if "retrying" in (e.message or ""):
                engine.stop()

        bus.subscribe(on)
        return await engine.run()

    result = asyncio.run(go())
    assert result.state == "stopped"
    assert len(_gaps(project)) == 0  # not run again after the stop
