"""Job ids read back from journaled handles, as the list view shows them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sharin.engine import JobHandle
from sharin.executors import JobRef, job_ref


def test_each_executors_handle_gives_the_id_its_host_knows_the_job_by() -> None:
    local = JobHandle("local", "localhost", "4242", {"start": 99, "rc": "/p/.sharin/a.rc"})
    assert job_ref(local.to_json()) == JobRef("local", "localhost", "4242")
    remote = JobHandle("remote", "cluster", "777", {"record": "/home/u/.sharin/r", "dir": "/w"})
    assert job_ref(remote.to_json()) == JobRef("remote", "cluster", "777", "/home/u/.sharin/r")
    batch = JobHandle("batch", "here", "123", {"dir": "/w", "bulk": False, "script": "run.sh"})
    assert job_ref(batch.to_json()) == JobRef("batch", "here", "123")
    bulk = JobHandle("batch", "here", "124", {"bulk": True, "range": [0, 9], "script": "r.sh"})
    assert job_ref(bulk.to_json()) == JobRef("batch", "here", "124[0-9]")
    # a handle without its data (older records) still names its job
    assert job_ref('{"executor": "local", "host": "localhost", "id": "5"}') == JobRef(
        "local", "localhost", "5"
    )


def test_no_handle_or_one_that_cannot_be_read_gives_no_job() -> None:
    for text in (None, "", "{", "null", "[1]", '"x"', '{"executor": 1, "host": "h", "id": "2"}'):
        assert job_ref(text) is None, text
    odd = '{"executor": "batch", "host": "h", "id": "3", "data": {"bulk": true, "range": "0-9"}}'
    assert job_ref(odd) == JobRef("batch", "h", "3")


@given(st.text())
def test_any_text_gives_a_job_or_none_and_never_an_error(text: str) -> None:
    got = job_ref(text)
    assert got is None or isinstance(got.job_id, str)
