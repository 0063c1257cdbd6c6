"""Runs held by handles in this process (as a server holds them): start, watch, stop, result."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from pathlib import Path

import pytest

import sharin
from sharin.engine import Event
from sharin.interfaces import api
from sharin.interfaces._hub import Change, EventHub
from sharin.interfaces._runs import local_run
from sharin.model import Project


async def _until(pred: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def test_start_run_returns_at_once_and_the_run_goes_on_without_its_handle(
    project: Project,
) -> None:
    sharin.add_task(project, "slow", "sleep 3; echo done > out.txt")

    async def go() -> None:
        handle = await sharin.start_run(project)
        # back while the task still sleeps: the run is not awaited
        assert not handle.done and not (project.root / "slow" / "out.txt").exists()
        assert local_run(project.root) is handle
        del handle
        gc.collect()
        h = local_run(project.root)
        assert h is not None
        result = await h.result()
        assert result.ok and (project.root / "slow" / "out.txt").read_text() == "done\n"
        assert local_run(project.root) is None  # forgotten once ended

    asyncio.run(go())


def test_stop_of_an_engine_in_this_process_stops_the_run_not_the_process(
    project: Project,
) -> None:
    sharin.add_task(project, "long", "sleep 30")

    async def go() -> None:
        handle = await sharin.start_run(project)
        await _until(lambda: (project.root / "long").exists() and api.engine_pid(project))
        assert api.engine_pid(project) == os.getpid()
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        assert sharin.stop(project) is True  # asked from the engine's own loop: returns at once
        result = await asyncio.wait_for(handle.result(), 15)
        assert result.state == "stopped" and time.monotonic() - t0 < 15
        assert api.engine_pid(project) is None
        assert await sharin.stop_async(project) is False  # nothing runs now

    asyncio.run(go())


def test_stop_async_waits_for_the_end(project: Project) -> None:
    sharin.add_task(project, "long", "sleep 30")

    async def go() -> None:
        handle = await sharin.start_run(project)
        await asyncio.sleep(0.5)
        assert await sharin.stop_async(project, timeout=15) is True
        assert handle.done and (await handle.result()).state == "stopped"

    asyncio.run(go())


def test_stop_from_another_thread_waits_for_an_engine_running_in_a_server_loop(
    project: Project,
) -> None:
    sharin.add_task(project, "long", "sleep 30")
    started = threading.Event()
    results: list[str] = []

    async def server() -> None:
        handle = await sharin.start_run(project)
        started.set()
        results.append((await handle.result()).state)

    t = threading.Thread(target=asyncio.run, args=(server(),))
    t.start()
    assert started.wait(20)
    time.sleep(0.5)
    assert sharin.stop(project, timeout=15) is True  # blocks until the run ended
    t.join(15)
    assert results == ["stopped"]


def test_a_second_start_of_a_running_project_is_refused_at_once(project: Project) -> None:
    sharin.add_task(project, "long", "sleep 30")

    async def go() -> None:
        handle = await sharin.start_run(project)
        with pytest.raises(sharin.BusyError, match="already running"):
            await sharin.start_run(project)
        with pytest.raises(sharin.BusyError, match="while the project runs"):
            sharin.save(project)
        handle.stop()
        assert (await handle.result()).state == "stopped"

    asyncio.run(go())


def test_a_hub_attached_to_a_run_sees_every_state_and_outlives_it(project: Project) -> None:
    sharin.add_task(project, "a", "echo a")
    sharin.add_task(project, "b", "echo b")
    sharin.connect(project, "a", "b")

    async def go() -> None:
        hub = EventHub()
        _, w = hub.watch(project.root)
        handle = await sharin.start_run(project)
        hub.attach(handle.events, project.root)
        result = await handle.result()
        assert result.ok
        seen: list[Event] = []
        while (got := await w.next(timeout=0)) is not None:
            assert isinstance(got, Change)
            seen.append(got.event)
        assert ("a", "finished") in [(e.key, e.state) for e in seen]
        assert seen[-1].key == "" and seen[-1].state == "finished"
        # a watcher joining after the end gets the final states
        late, _ = hub.watch(project.root)
        assert late.states["b"].state == "finished" and late.run is not None

    asyncio.run(go())


def test_job_states_inside_an_event_loop_points_to_the_async_form(project: Project) -> None:
    sharin.add_task(project, "a", "true")

    async def go() -> None:
        with pytest.raises(sharin.RunError, match="job_states_async"):
            sharin.job_states(project)
        assert await sharin.job_states_async(project) == {}

    asyncio.run(go())


def test_a_run_that_fails_validation_starts_nothing(project: Project, tmp_path: Path) -> None:
    sharin.add_task(project, "a", "true")
    sharin.set_property(project, "a", "host", "nowhere")

    async def go() -> None:
        with pytest.raises(sharin.ValidationError):
            await sharin.start_run(project)
        assert local_run(project.root) is None and api.engine_pid(project) is None

    asyncio.run(go())
