"""The event hub: numbered changes after a snapshot, bounded buffers, slow watchers re-sync."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.engine import Event, EventBus
from sharin.interfaces._hub import Change, EventHub, Snapshot


def ev(key: str, state: str, run: int = 1) -> Event:
    return Event(run=run, key=key, kind="task" if key else "run", state=state)


def test_a_watcher_gets_the_snapshot_then_every_later_change_in_order(tmp_path: Path) -> None:
    async def go() -> None:
        hub = EventHub()
        hub.publish(tmp_path, ev("", "running"))
        hub.publish(tmp_path, ev("a", "running"))
        snap, w = hub.watch(tmp_path)
        assert snap.seq == 2 and snap.states["a"].state == "running"
        assert snap.run is not None and snap.run.state == "running"
        hub.publish(tmp_path, ev("a", "finished"))
        hub.publish(tmp_path, ev("b", "running"))
        got = [await w.next(timeout=1), await w.next(timeout=1)]
        assert all(isinstance(c, Change) for c in got)
        assert [(c.seq, c.event.key, c.event.state) for c in got if isinstance(c, Change)] == [
            (3, "a", "finished"),
            (4, "b", "running"),
        ]
        assert await w.next(timeout=0.01) is None  # nothing more
        w.close()
        assert hub.watchers(tmp_path) == 0

    asyncio.run(go())


def test_a_new_run_starts_the_snapshot_afresh_and_projects_are_separate(tmp_path: Path) -> None:
    async def go() -> None:
        hub = EventHub()
        other = tmp_path / "other"
        hub.publish(tmp_path, ev("", "running", run=1))
        hub.publish(tmp_path, ev("a", "finished", run=1))
        hub.publish(other, ev("x", "running", run=7))
        hub.publish(tmp_path, ev("", "running", run=2))
        snap = hub.snapshot(tmp_path)
        assert snap.states == {} and snap.run is not None and snap.run.run == 2
        assert hub.snapshot(other).states["x"].run == 7 and hub.snapshot(other).seq == 1

    asyncio.run(go())


def test_a_watcher_that_stops_reading_costs_one_buffer_and_resyncs(tmp_path: Path) -> None:
    async def go() -> None:
        hub = EventHub(buffer=10)
        _, slow = hub.watch(tmp_path)
        _, fast = hub.watch(tmp_path)
        seen: list[int] = []
        for i in range(1000):
            hub.publish(tmp_path, ev(f"t{i}", "finished"))
            got = await fast.next(timeout=1)
            assert isinstance(got, Change)
            seen.append(got.seq)
        assert seen == list(range(1, 1001))  # the fast one missed nothing
        assert slow.pending() <= 10 and slow.resyncs == 1
        first = await slow.next(timeout=1)
        assert isinstance(first, Snapshot) and first.seq == 1000 and len(first.states) == 1000
        hub.publish(tmp_path, ev("t0", "running"))
        after = await slow.next(timeout=1)
        assert isinstance(after, Change) and after.seq == 1001

    asyncio.run(go())


def test_events_published_from_another_thread_arrive_in_the_hubs_loop(tmp_path: Path) -> None:
    async def go() -> None:
        hub = EventHub()
        _, w = hub.watch(tmp_path)
        bus = EventBus()
        hub.attach(bus, tmp_path)

        def engine_thread() -> None:
            for i in range(50):
                bus.publish(ev(f"t{i}", "finished"))

        t = threading.Thread(target=engine_thread)
        t.start()
        keys = []
        for _ in range(50):
            got = await w.next(timeout=5)
            assert isinstance(got, Change)
            keys.append(got.event.key)
        t.join()
        assert keys == [f"t{i}" for i in range(50)]

    asyncio.run(go())


def test_a_closed_watcher_returns_none_and_is_not_fed(tmp_path: Path) -> None:
    async def go() -> None:
        hub = EventHub()
        _, w = hub.watch(tmp_path)
        waiter = asyncio.create_task(w.next())
        await asyncio.sleep(0)
        w.close()
        assert await asyncio.wait_for(waiter, 1) is None
        hub.publish(tmp_path, ev("a", "running"))
        assert w.pending() == 0

    asyncio.run(go())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "a", "b", "c/d"]),
            st.sampled_from(["running", "done"]),
            st.integers(min_value=1, max_value=3),
        ),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=1, max_value=8),
)
def test_snapshot_plus_changes_equals_the_final_state(
    events: list[tuple[str, str, int]], cut: int, buffer: int
) -> None:
    """Whatever the buffer and wherever a watcher joins, applying what it reads to its snapshot
    gives the hub's final state (a re-sync replaces, a change updates)."""

    async def go() -> None:
        hub = EventHub(buffer=buffer)
        root = Path("/nonexistent/project")
        for key, state, run_id in events[:cut]:
            hub.publish(root, ev(key, state, run_id))
        snap, w = hub.watch(root)
        states, run, seq = dict(snap.states), snap.run, snap.seq
        for key, state, run_id in events[cut:]:
            hub.publish(root, ev(key, state, run_id))
        while (got := await w.next(timeout=0)) is not None:
            if isinstance(got, Snapshot):
                states, run, seq = dict(got.states), got.run, got.seq
            else:
                assert got.seq == seq + 1
                seq = got.seq
                current = (
                    run.run if run is not None else next((e.run for e in states.values()), None)
                )
                if current is not None and got.event.run != current:
                    states, run = {}, None
                if got.event.key:
                    states[got.event.key] = got.event
                else:
                    run = got.event
        final = hub.snapshot(root)
        assert (states, run, seq) == (final.states, final.run, final.seq)

    asyncio.run(go())


def test_edits_are_numbered_with_the_state_changes_and_the_snapshot_has_the_last(
    tmp_path: Path,
) -> None:
    from sharin.interfaces._hub import Edit

    async def go() -> None:
        hub = EventHub()
        hub.publish(tmp_path, ev("a", "running"))
        hub.edited(tmp_path, "add", by="tab-1")
        snap, w = hub.watch(tmp_path)
        assert (snap.seq, snap.edit) == (2, 2)
        assert snap.states["a"].state == "running"  # an edit leaves the states alone
        hub.publish(tmp_path, ev("a", "finished"))
        await asyncio.to_thread(hub.edited, tmp_path, "properties", component="c1")  # a thread
        got = [await w.next(timeout=1), await w.next(timeout=1)]
        assert isinstance(got[0], Change) and got[0].seq == 3
        assert got[1] == Edit(4, hub.name(tmp_path), "properties", "c1", None)
        assert hub.snapshot(tmp_path).edit == 4 and hub.snapshot(tmp_path / "x").edit == 0
        w.close()

    asyncio.run(go())
