"""Two browsers on one project: an edit in one is seen in the other without a reload; a run's
SSH passphrase is asked in the page's dialog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Server
from .test_ui import WAIT, _add_task, _api, _node, _page, _select, _wait_node_state

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _task(server: Server, pid: str, name: str, script: str) -> str:
    c = _api(server, "POST", f"/api/projects/{pid}/components", {"type": "task", "name": name})
    path = f"/api/projects/{pid}/files/content?path={name}/run.sh"
    _api(server, "PUT", path, raw=script.encode())
    props = {"properties": {"script": "run.sh"}}
    _api(server, "PATCH", f"/api/projects/{pid}/components/{c['id']}", props)
    return str(c["id"])


def test_an_edit_in_one_browser_is_seen_in_the_other_without_a_reload(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "shared"})["id"]
    _task(server, pid, "first", "echo one > out.txt\n")
    one = _page(browser, server, tmp_path)
    two = _page(browser, server, tmp_path)
    for page in (one, two):
        page.goto(server.base + f"/#/p/{pid}/graph")
        _node(page, "first").wait_for()

    # a component added with the mouse in one appears in the other
    _add_task(one, 500, 300, "added")
    _node(two, "added").wait_for(timeout=10_000)

    # the other types in a property field while one changes the component: the typed text
    # stays, and the page says that the project changed elsewhere
    _select(two, "first")
    two.click("[data-test=prop-description]")
    two.keyboard.insert_text("typed here")
    _select(one, "added")
    one.fill("[data-test=prop-name]", "renamed")
    one.press("[data-test=prop-name]", "Enter")
    _node(two, "renamed").wait_for(timeout=10_000)
    two.wait_for_selector("[data-test=changed-elsewhere]")
    assert two.input_value("[data-test=prop-description]") == "typed here"
    two.press("[data-test=prop-description]", "Escape")
    two.locator(".flow").click(position={"x": 20, "y": 20})  # the field loses the focus

    # removed elsewhere (it has no script: a run would be refused), gone from both
    kids = _api(server, "GET", f"/api/projects/{pid}")["workflow"]["children"]
    gone = next(c["id"] for c in kids if c["name"] == "renamed")
    _api(server, "DELETE", f"/api/projects/{pid}/components/{gone}")
    for page in (one, two):
        _node(page, "renamed").wait_for(state="detached", timeout=10_000)

    # a run in one, then Clean in one: the other's states go back to not-started
    one.click("[data-test=run]")
    for page in (one, two):
        _wait_node_state(page, "first", "finished")
        page.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=WAIT)
    one.click("[data-test=clean]")
    one.click("[data-test=dialog-ok]")
    one.wait_for_selector("[role=status]:has-text('cleaned')")
    _wait_node_state(two, "first", "not-started")
    two.wait_for_selector("[data-test=project-state]:has-text('not-started')", timeout=10_000)

    # a file written in one shows in the other's open file view
    two.goto(server.base + f"/#/p/{pid}/files?path=first")
    two.click("[data-file='run.sh'] a")
    two.wait_for_selector(".cm-content:has-text('echo one')")
    _api(server, "PUT", f"/api/projects/{pid}/files/content?path=first/new.txt", raw=b"x")
    _api(server, "PUT", f"/api/projects/{pid}/files/content?path=first/run.sh", raw=b"echo two\n")
    two.wait_for_selector("[data-file='new.txt']", timeout=10_000)
    two.wait_for_selector(".cm-content:has-text('echo two')", timeout=10_000)
    assert one._sharin_errors == [] and two._sharin_errors == []


@pytest.mark.sshd
def test_a_runs_passphrase_is_typed_in_the_pages_dialog(
    browser: Any, tmp_path: Path, config_dir: Path
) -> None:
    from tests.remote.hostshell import encrypted_key, host_entry, own_dir

    from .conftest import start_server

    key = encrypted_key(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    with own_dir("ui-dialog") as remote:
        with start_server(ws) as server:
            entry = host_entry("ci", keyFile=str(key), path=str(remote))
            _api(server, "POST", "/api/hosts", entry)
            pid = _api(server, "POST", "/api/projects", {"name": "remote"})["id"]
            cid = _task(server, pid, "far", "hostname > where.txt\n")
            props = {"properties": {"host": "ci"}}
            _api(server, "PATCH", f"/api/projects/{pid}/components/{cid}", props)
            page = _page(browser, server, tmp_path)
            page.goto(server.base + f"/#/p/{pid}/graph")
            _node(page, "far").wait_for()
            page.click("[data-test=run]")
            page.wait_for_selector("[data-test=prompt]:has-text('passphrase for')", timeout=WAIT)
            assert page.get_attribute("[data-test=prompt-input]", "type") == "password"
            page.fill("[data-test=prompt-input]", "pass-phrase")
            page.click("[data-test=prompt-ok]")
            page.wait_for_selector("[data-test=prompt]", state="detached")
            _wait_node_state(page, "far", "finished")
            assert page._sharin_errors == []
