"""The browser UI in Chromium: a project built with the mouse and the keyboard, run, its output
read; a run started in one browser seen live in another."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT = 60_000  # ms: a run's states in the page


def _page(browser: Any, server: Server, tmp_path: Path) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page._sharin_errors = errors
    page.goto(server.url)
    page.wait_for_selector("[data-test=projects]")
    assert "token=" not in page.url  # taken out of the address bar; the cookie carries it
    return page


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path))
    return path


def _api(server: Server, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(
        server.base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _node(page: Any, name: str) -> Any:
    return page.locator(f".node[data-node={name}]")


def _add_task(page: Any, x: int, y: int, name: str) -> None:
    """Drag a task from the palette onto the graph at (x, y) and rename it."""
    _add_component(page, "task", x, y, name)


def _add_component(page: Any, ctype: str, x: int, y: int, name: str) -> None:
    """Drag a component of type ``ctype`` from the palette onto the graph and rename it."""
    before = page.locator(".node").count()
    page.locator(f".palette-item[data-type={ctype}]").drag_to(
        page.locator(".flow"), target_position={"x": x, "y": y}
    )
    page.wait_for_function(f"document.querySelectorAll('.node').length === {before + 1}")
    page.wait_for_selector("[data-test=properties]")
    page.fill("[data-test=prop-name]", name)
    page.press("[data-test=prop-name]", "Enter")
    _node(page, name).wait_for()


def _select(page: Any, name: str) -> None:
    _node(page, name).locator(".node-title").click()
    page.wait_for_function(
        f"document.querySelector('[data-test=prop-name]')?.value === {json.dumps(name)}"
    )


def _write_script(page: Any, component: str, text: str) -> None:
    """In the component's file view: a new file run.sh, written in the code editor, saved."""
    _select(page, component)
    page.click("[data-test=open-files]")
    page.wait_for_selector("[data-test=file-list]")
    page.click("[data-test=new-file]")
    page.fill("[data-test=dialog-input]", "run.sh")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector(f"[data-test=open-file]:has-text('{component}/run.sh')")
    page.locator(".cm-content").click()
    page.keyboard.insert_text(text)
    page.click("[data-test=save-file]")
    page.wait_for_selector("[data-file='run.sh']")
    page.click("[data-test=tab-graph]")
    page.wait_for_selector(".vue-flow")


def _set(page: Any, field: str, value: str) -> None:
    page.fill(f"[data-test=prop-{field}]", value)
    page.press(f"[data-test=prop-{field}]", "Tab")  # a change event: the panel sends it


def _drag(page: Any, src: Any, dst: Any) -> None:
    a = src.bounding_box()
    b = dst.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def _wait_node_state(page: Any, name: str, state: str) -> None:
    page.wait_for_selector(f".node[data-node={name}] .node-state[data-state={state}]", timeout=WAIT)


def test_a_workflow_is_built_in_the_editor_run_and_its_output_read(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    page = _page(browser, server, tmp_path)
    _shot(page, tmp_path, "home-empty")
    page.fill("[data-test=new-name]", "demo")
    page.click("[data-test=create]")
    page.wait_for_selector("[data-test=project-name]:has-text('demo')")

    _add_task(page, 120, 80, "hello")
    _add_task(page, 520, 260, "shout")
    _write_script(page, "hello", "echo greeting\necho hello from sharin > out.txt\n")
    _write_script(page, "shout", "tr a-z A-Z < out.txt > loud.txt\n")
    for name, outputs in (("hello", ["out.txt"]), ("shout", ["loud.txt"])):
        _select(page, name)
        _set(page, "script", "run.sh")
        for out in outputs:
            page.fill("[data-test=add-output]", out)
            page.press("[data-test=add-output]", "Enter")
            page.wait_for_selector(f".node[data-node={name}] .file-out:has-text('{out}')")

    # the file edge: drawn from hello's output out.txt to shout's "+ input"
    _drag(
        page,
        _node(page, "hello").locator("[data-handleid='out:out.txt']"),
        _node(page, "shout").locator("[data-handleid='in:+']"),
    )
    page.wait_for_selector(".vue-flow__edge.edge-file")
    page.wait_for_selector(".node[data-node=shout] .file-in:has-text('out.txt')")
    root = server.workspace / "demo.wheel"
    shout = json.loads((root / "shout" / "cmp.wheel.json").read_text())
    assert shout["script"] == "run.sh"
    assert [f["name"] for f in shout["inputFiles"]] == ["out.txt"]
    assert (root / "hello" / "run.sh").read_text() == (
        "echo greeting\necho hello from sharin > out.txt\n"
    )
    graph = _shot(page, tmp_path, "graph-editor")

    page.click("[data-test=save]")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[role=status]:has-text('saved')")
    page.click("[data-test=run]")
    _wait_node_state(page, "hello", "finished")
    _wait_node_state(page, "shout", "finished")
    page.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=WAIT)
    _shot(page, tmp_path, "graph-finished")

    # the output in the file view, opened in the code editor
    _select(page, "shout")
    page.click("[data-test=open-files]")
    page.click("[data-file='loud.txt'] a")
    page.wait_for_selector(".cm-content:has-text('HELLO FROM SHARIN')")
    _shot(page, tmp_path, "files")

    # the task's stdout in the log view
    page.click("[data-test=tab-logs]")
    page.select_option("[data-test=log-task]", "hello")
    page.wait_for_selector("[data-test=stdout]:has-text('greeting')")
    _shot(page, tmp_path, "logs")

    # the list view, filtered
    page.click("[data-test=tab-list]")
    page.wait_for_selector("[data-component=hello]")
    page.fill("[data-test=filter]", "shou")
    page.wait_for_selector("[data-component=hello]", state="detached")
    assert page.locator("[data-component=shout] .state").inner_text() == "finished"
    _shot(page, tmp_path, "list")
    assert page._sharin_errors == []
    assert graph.stat().st_size > 10_000


def test_a_run_started_in_one_browser_is_seen_live_in_another(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    p = _api(server, "POST", "/api/projects", {"name": "shared"})
    pid = p["id"]
    ids = {}
    for name, script in (("first", "sleep 1\necho one\n"), ("second", "sleep 1\necho two\n")):
        c = _api(server, "POST", f"/api/projects/{pid}/components", {"type": "task", "name": name})
        ids[name] = c["id"]
        _api(
            server,
            "PUT",
            f"/api/projects/{pid}/files/content?path={name}/run.sh",
            raw=script.encode(),
        )
        _api(
            server,
            "PATCH",
            f"/api/projects/{pid}/components/{c['id']}",
            {"properties": {"script": "run.sh"}},
        )
    _api(server, "POST", f"/api/projects/{pid}/links", {"src": ids["first"], "dst": ids["second"]})
    one = _page(browser, server, tmp_path)
    two = _page(browser, server, tmp_path)
    for page in (one, two):
        page.click("[data-project=shared] .project-name")
        _node(page, "second").wait_for()
    assert one.locator(".vue-flow__edge.edge-flow").count() == 1

    one.click("[data-test=run]")
    # the other browser, which did nothing, sees the states change as they happen
    _wait_node_state(two, "first", "running")
    _shot(two, tmp_path, "second-browser-running")
    _wait_node_state(two, "second", "finished")
    two.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=WAIT)
    _wait_node_state(one, "second", "finished")
    assert one._sharin_errors == [] and two._sharin_errors == []


def test_projects_are_renamed_and_deleted_only_after_confirmation(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    _api(server, "POST", "/api/projects", {"name": "keepme"})
    page = _page(browser, server, tmp_path)
    row = page.locator("[data-project=keepme]")
    row.locator("button:has-text('Rename')").click()
    page.fill("[data-test=dialog-input]", "renamed")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[data-project=renamed]")
    assert (server.workspace / "renamed.wheel").is_dir()
    row = page.locator("[data-project=renamed]")
    row.locator("button:has-text('Delete')").click()
    page.wait_for_selector("[role=dialog]:has-text('cannot be undone')")
    page.click("[role=dialog] button:has-text('Cancel')")
    assert (server.workspace / "renamed.wheel").is_dir()  # cancelled: nothing removed
    row.locator("button:has-text('Delete')").click()
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[data-project=renamed]", state="detached")
    assert not (server.workspace / "renamed.wheel").exists()


def test_nested_workflows_flow_edges_uploads_and_archives(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    _api(server, "POST", "/api/projects", {"name": "nest"})
    root = server.workspace / "nest.wheel"
    page = _page(browser, server, tmp_path)
    page.click("[data-project=nest] .project-name")
    page.wait_for_selector(".vue-flow")
    flow = page.locator(".flow")
    page.locator(".palette-item[data-type=task]").drag_to(flow, target_position={"x": 100, "y": 60})
    _node(page, "task0").wait_for()
    page.locator(".palette-item[data-type=workflow]").drag_to(
        flow, target_position={"x": 400, "y": 300}
    )
    _node(page, "workflow0").wait_for()
    # a flow edge: from the bottom of task0 to the top of workflow0
    _drag(
        page,
        _node(page, "task0").locator("[data-handleid=next]"),
        _node(page, "workflow0").locator("[data-handleid=prev]"),
    )
    page.wait_for_selector(".vue-flow__edge.edge-flow")
    wf = json.loads((root / "workflow0" / "cmp.wheel.json").read_text())
    task = json.loads((root / "task0" / "cmp.wheel.json").read_text())
    assert task["next"] == [wf["ID"]] and wf["previous"] == [task["ID"]]
    # an edge clicked is removed from its panel
    page.locator(".vue-flow__edge.edge-flow").click()
    page.wait_for_selector("[data-test=edge-panel]:has-text('task0 → workflow0')")
    page.click("[data-test=remove-edge]")
    page.wait_for_selector(".vue-flow__edge.edge-flow", state="detached")
    assert json.loads((root / "task0" / "cmp.wheel.json").read_text())["next"] == []

    # into the nested workflow and out again by the breadcrumb
    _node(page, "workflow0").dblclick()
    page.wait_for_selector("[data-test=breadcrumb]:has-text('workflow0')")
    page.wait_for_selector(".node", state="detached")
    page.locator(".palette-item[data-type=task]").drag_to(
        flow, target_position={"x": 200, "y": 150}
    )
    _node(page, "task0").wait_for()
    assert (root / "workflow0" / "task0" / "cmp.wheel.json").is_file()
    _shot(page, tmp_path, "nested")
    page.locator("[data-test=breadcrumb] a", has_text="nest").click()
    page.wait_for_function("document.querySelectorAll('.node').length === 2")

    # an upload into the inner task's directory
    page.goto(
        server.base
        + f"/#/p/{_api(server, 'GET', '/api/projects')[0]['id']}/files?path=workflow0/task0"
    )
    page.wait_for_selector("[data-test=file-list]")
    data = tmp_path / "input.dat"
    data.write_text("uploaded data\n")
    page.set_input_files("[data-test=upload]", str(data))
    page.wait_for_selector("[data-file='input.dat']")
    assert (root / "workflow0" / "task0" / "input.dat").read_text() == "uploaded data\n"

    # export, delete, import the archive again: the project comes back
    page.click("[data-test=save]")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[role=status]:has-text('saved')")
    page.goto(server.base + "/#/")
    page.wait_for_selector("[data-project=nest]")
    with page.expect_download() as got:
        page.locator("[data-project=nest] a", has_text="Export").click()
    archive = tmp_path / got.value.suggested_filename
    got.value.save_as(archive)
    assert archive.stat().st_size > 0
    page.locator("[data-project=nest] button", has_text="Delete").click()
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[data-project=nest]", state="detached")
    page.set_input_files("[data-test=import]", str(archive))
    page.wait_for_selector("[data-project=nest]")
    assert (root / "workflow0" / "task0" / "cmp.wheel.json").is_file()
    _shot(page, tmp_path, "home")
    assert page._sharin_errors == []


# a 1x1 PNG
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def test_a_viewer_shows_the_images_a_task_sent_it_and_a_log_is_followed(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "pics"})["id"]
    plot = _api(server, "POST", f"/api/projects/{pid}/components", {"type": "task", "name": "plot"})
    view = _api(
        server, "POST", f"/api/projects/{pid}/components", {"type": "viewer", "name": "show"}
    )
    script = f"echo drawing\necho {_PNG} | base64 -d > plot.png\nsleep 1\necho drawn\n"
    _api(server, "PUT", f"/api/projects/{pid}/files/content?path=plot/run.sh", raw=script.encode())
    _api(
        server,
        "PATCH",
        f"/api/projects/{pid}/components/{plot['id']}",
        {"properties": {"script": "run.sh", "outputFiles": [{"name": "plot.png", "dst": []}]}},
    )
    _api(
        server,
        "POST",
        f"/api/projects/{pid}/file-links",
        {"src": plot["id"], "src_name": "plot.png", "dst": view["id"], "dst_name": "plot.png"},
    )
    page = _page(browser, server, tmp_path)
    page.goto(server.base + f"/#/p/{pid}/logs?task=plot")
    page.wait_for_selector("[data-test=log-task]")
    page.click("[data-test=run]")
    # the log view follows the task's output while it runs
    page.wait_for_selector("[data-test=stdout]:has-text('drawing')", timeout=WAIT)
    page.wait_for_selector("[data-test=stdout]:has-text('drawn')", timeout=WAIT)
    page.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=WAIT)
    page.click("[data-test=tab-viewer]")
    img = page.locator("[data-test=gallery] img")
    img.wait_for()
    page.wait_for_function(
        "document.querySelector('[data-test=gallery] img').naturalWidth === 1", timeout=WAIT
    )
    _shot(page, tmp_path, "viewer")
    assert page._sharin_errors == []


def test_a_run_is_stopped_cleaned_and_an_edit_reverted(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "long"})["id"]
    c = _api(server, "POST", f"/api/projects/{pid}/components", {"type": "task", "name": "slow"})
    script = "echo started > mark.txt\nsleep 60\n"
    _api(server, "PUT", f"/api/projects/{pid}/files/content?path=slow/run.sh", raw=script.encode())
    _api(
        server,
        "PATCH",
        f"/api/projects/{pid}/components/{c['id']}",
        {"properties": {"script": "run.sh"}},
    )
    _api(server, "POST", f"/api/projects/{pid}/save", {"message": "v1"})
    root = server.workspace / "long.wheel"
    page = _page(browser, server, tmp_path)
    page.goto(server.base + f"/#/p/{pid}/graph")
    page.click("[data-test=run]")
    _wait_node_state(page, "slow", "running")
    page.click("[data-test=stop]")
    page.wait_for_selector("[data-test=project-state]:has-text('stopped')", timeout=WAIT)
    assert (root / "slow" / "mark.txt").is_file()

    # an unsaved edit of the script, then Clean: what the run made goes, the edit stays
    _select(page, "slow")
    page.click("[data-test=open-files]")
    page.click("[data-file='run.sh'] a")
    page.wait_for_selector(".cm-content:has-text('sleep 60')")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("echo edited\n")
    page.click("[data-test=save-file]")
    page.wait_for_selector("[role=status]:has-text('saved slow/run.sh')")
    page.click("[data-test=clean]")
    page.wait_for_selector("[role=dialog]:has-text('unsaved changes stay')")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[role=status]:has-text('cleaned')")
    assert not (root / "slow" / "mark.txt").exists()
    assert (root / "slow" / "run.sh").read_text().endswith("echo edited\n")
    page.click("[data-test=tab-graph]")
    _wait_node_state(page, "slow", "not-started")

    # Revert: the edit goes, after a confirmation naming it
    page.click("[data-test=revert]")
    page.wait_for_selector("[role=dialog]:has-text('slow/run.sh')")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[role=status]:has-text('reverted')")
    assert (root / "slow" / "run.sh").read_text() == script
    # the file downloaded from the file view is the reverted one
    page.click("[data-test=tab-files]")
    page.goto(server.base + f"/#/p/{pid}/files?path=slow")
    with page.expect_download() as got:
        page.locator("[data-file='run.sh'] a[download]").click()
    assert Path(got.value.path()).read_text() == script
    assert got.value.suggested_filename == "run.sh"
    assert page._sharin_errors == []


def test_a_host_is_added_offered_to_tasks_and_removed(
    browser: Any, server: Server, tmp_path: Path, config_dir: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "remote"})["id"]
    _api(server, "POST", f"/api/projects/{pid}/components", {"type": "task", "name": "job"})
    page = _page(browser, server, tmp_path)
    page.click("text=Hosts")
    page.wait_for_selector("[data-test=hosts]")
    page.fill("[data-test=host-name]", "cluster")
    page.fill("[data-test=host-host]", "login.example.org")
    page.fill("[data-test=host-user]", "me")
    page.fill("[data-test=host-path]", "/work/me")
    page.click("[data-test=host-add]")
    page.wait_for_selector("[data-host=cluster]:has-text('login.example.org')")
    entries = json.loads((config_dir / "remotehost.json").read_text())
    assert [(e["name"], e["host"], e["user"], e["path"]) for e in entries] == [
        ("cluster", "login.example.org", "me", "/work/me")
    ]
    _shot(page, tmp_path, "hosts")
    # a second one with the same label: the server's words, nothing added
    page.fill("[data-test=host-name]", "cluster")
    page.fill("[data-test=host-host]", "other")
    page.click("[data-test=host-add]")
    page.wait_for_selector("[data-test=error]:has-text('exists already')")
    assert len(json.loads((config_dir / "remotehost.json").read_text())) == 1

    # the task's host: chosen from the hosts
    page.goto(server.base + f"/#/p/{pid}/graph")
    _select(page, "job")
    page.select_option("[data-test=prop-host]", "cluster")
    page.wait_for_function("document.querySelector('[data-test=prop-host]').value === 'cluster'")
    root = server.workspace / "remote.wheel"
    page.wait_for_function(
        f"fetch('/api/projects/{pid}').then(r => r.json()).then(p => "
        "p.workflow.children[0].properties.host === 'cluster')"
    )
    assert json.loads((root / "job" / "cmp.wheel.json").read_text())["host"] == "cluster"

    page.click("text=Hosts")
    page.locator("[data-host=cluster] button", has_text="Remove").click()
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[data-host=cluster]", state="detached")
    assert json.loads((config_dir / "remotehost.json").read_text()) == []
    assert page._sharin_errors == []


def test_problems_are_listed_by_check_and_a_run_refused_with_them(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "broken"})["id"]
    _api(server, "POST", f"/api/projects/{pid}/components", {"type": "task", "name": "noscript"})
    problems = _api(server, "GET", f"/api/projects/{pid}/validate")
    assert problems  # a task without a script
    page = _page(browser, server, tmp_path)
    page.goto(server.base + f"/#/p/{pid}/graph")
    page.click("[data-test=validate]")
    page.wait_for_selector("[data-test=problems] li")
    shown = page.locator("[data-test=problems] li").all_inner_texts()
    assert shown == [f"{p['file']} [{p['field']}]: {p['message']}" for p in problems]
    page.click("[data-test=error] button:has-text('dismiss')")
    page.wait_for_selector("[data-test=error]", state="detached")
    page.click("[data-test=run]")
    page.wait_for_selector("[data-test=error]")
    assert page.locator("[data-test=problems] li").all_inner_texts() == shown
    assert "Traceback" not in page.locator("[data-test=error]").inner_text()
    _shot(page, tmp_path, "problems")
    assert page._sharin_errors == []


def test_a_host_is_edited_in_its_row_and_the_table_shows_the_change(
    browser: Any, server: Server, tmp_path: Path, config_dir: Path
) -> None:
    _api(server, "POST", "/api/hosts", {"name": "cluster", "host": "login", "path": "/work/me"})
    _api(server, "POST", "/api/hosts", {"name": "storage", "host": "files"})
    page = _page(browser, server, tmp_path)
    page.click("text=Hosts")
    row = page.locator("[data-host=cluster]")
    row.wait_for()
    row.locator("[data-test=host-edit]").click()
    form = page.locator("[data-host-edit=cluster]")
    assert form.locator("[data-test=edit-path]").input_value() == "/work/me"
    assert form.locator("[data-test=edit-host]").input_value() == "login"
    form.locator("[data-test=edit-path]").fill("/scratch/me")
    form.locator("[data-test=edit-numJob]").fill("12")
    form.locator("[data-test=edit-useBulkjob]").check()
    assert form.locator("[data-test=edit-sharedHost] option").all_inner_texts() == [
        "(none)",
        "storage",
    ]
    form.locator("[data-test=edit-sharedHost]").select_option("storage")
    _shot(page, tmp_path, "host-edit")
    form.locator("[data-test=host-save]").click()
    page.wait_for_selector("[data-host=cluster]:has-text('/scratch/me')")
    page.wait_for_selector("[data-host-edit=cluster]", state="detached")
    entry, _ = json.loads((config_dir / "remotehost.json").read_text())
    assert (entry["path"], entry["numJob"], entry["useBulkjob"], entry["sharedHost"]) == (
        "/scratch/me",
        12,
        True,
        "storage",
    )
    # a bad value: the server's words naming the field, the form stays open, nothing written
    row.locator("[data-test=host-edit]").click()
    form.locator("[data-test=edit-port]").fill("99999")
    form.locator("[data-test=host-save]").click()
    page.wait_for_selector("[data-test=error]:has-text('port')")
    assert json.loads((config_dir / "remotehost.json").read_text())[0] == entry
    form.locator("[data-test=host-cancel]").click()
    page.wait_for_selector("[data-host-edit=cluster]", state="detached")
    assert page._sharin_errors == []


def test_an_archive_naming_an_unknown_host_is_imported_after_mapping_it(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    from tests.archives import wheel_archive

    _api(server, "POST", "/api/hosts", {"name": "cluster", "host": "login.example.org"})
    archive = tmp_path / "WHEEL_project_faraway.tgz"
    archive.write_bytes(wheel_archive("faraway", {"sim": "fugaku"}))
    page = _page(browser, server, tmp_path)
    page.set_input_files("[data-test=import]", str(archive))
    dialog = page.locator("[data-test=host-map]")
    dialog.wait_for()
    assert not (server.workspace / "faraway.wheel").exists()  # nothing imported yet
    choices = dialog.locator("[data-map=fugaku] option").all_inner_texts()
    assert choices == ["localhost", "cluster"]
    dialog.locator("[data-map=fugaku]").select_option("cluster")
    _shot(page, tmp_path, "host-map")
    dialog.locator("[data-test=host-map-ok]").click()
    page.wait_for_selector("[data-project=faraway]")
    page.wait_for_selector("[data-test=host-map]", state="detached")
    page.locator("[data-project=faraway] a.project-name").click()
    _node(page, "sim").wait_for()
    _select(page, "sim")
    page.wait_for_function("document.querySelector('[data-test=prop-host]').value === 'cluster'")
    data = json.loads((server.workspace / "faraway.wheel" / "sim" / "cmp.wheel.json").read_text())
    assert data["host"] == "cluster"
    assert page._sharin_errors == []


@pytest.mark.sshd
def test_a_host_is_tested_with_its_passphrase_typed_in_a_dialog(
    browser: Any, server: Server, tmp_path: Path, config_dir: Path
) -> None:
    from tests.remote.hostshell import encrypted_key, host_entry

    key = encrypted_key(tmp_path)
    entry = host_entry("ci", keyFile=str(key))
    _api(server, "POST", "/api/hosts", entry)
    page = _page(browser, server, tmp_path)
    page.click("text=Hosts")
    row = page.locator("[data-host=ci]")
    row.locator("[data-test=host-test]").click()
    field = page.locator("[data-test=dialog-input]")
    field.wait_for()
    assert "passphrase" in page.locator(".dialog p").inner_text()
    assert field.get_attribute("type") == "password"
    field.fill("pass-phrase")
    _shot(page, tmp_path, "host-test-ask")
    page.click("[data-test=dialog-ok]")
    done = page.locator("[data-host-test=ci][data-state=ok]")
    done.wait_for(timeout=WAIT)
    assert "round trip" in done.inner_text() and "sbatch" in done.inner_text()
    stored = "".join(p.read_text() for p in config_dir.rglob("*") if p.is_file())
    assert "pass-phrase" not in stored
    # asked again (never stored); Cancel closes the test
    row.locator("[data-test=host-test]").click()
    page.locator("[data-test=dialog-input]").wait_for()
    assert page.locator("[data-test=dialog-input]").input_value() == ""
    page.locator(".dialog button", has_text="Cancel").click()
    page.wait_for_selector("[data-host-test=ci]:has-text('test cancelled')")
    # a wrong passphrase: the error in the row
    row.locator("[data-test=host-test]").click()
    page.fill("[data-test=dialog-input]", "wrong")
    page.click("[data-test=dialog-ok]")
    page.wait_for_selector("[data-host-test=ci][data-state=failed]", timeout=WAIT)


def test_the_list_view_shows_every_loop_trip_and_study_instance_of_a_run(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "trips"})["id"]

    def add(ctype: str, name: str, parent: str | None = None, **props: Any) -> str:
        c = _api(
            server,
            "POST",
            f"/api/projects/{pid}/components",
            {"type": ctype, "name": name, "parent": parent},
        )
        if props:
            _api(
                server, "PATCH", f"/api/projects/{pid}/components/{c['id']}", {"properties": props}
            )
        return c["id"]  # type: ignore[no-any-return]

    def put(path: str, text: str) -> None:
        _api(server, "PUT", f"/api/projects/{pid}/files/content?path={path}", raw=text.encode())

    loop = add("for", "loop", start=0, end=2, step=1)
    t = add("task", "t", loop)
    # the second trip long enough to be seen running (the rows are read at most every 2 s)
    trip = '[ "$WHEEL_CURRENT_INDEX" = 1 ] && sleep 4\necho trip $WHEEL_CURRENT_INDEX\n'
    put("loop/t/run.sh", trip)
    ps = add("parameterStudy", "ps")
    u = add("task", "u", ps)
    put("ps/u/run.sh", "sleep 0.3\ncat in.txt\n")
    put("ps/u/in.txt", "k={{ K }}\n")
    for cid in (t, u):
        _api(
            server,
            "PATCH",
            f"/api/projects/{pid}/components/{cid}",
            {"properties": {"script": "run.sh"}},
        )
    setting = {
        "version": 2,
        "targetFiles": [{"targetNode": u, "targetName": "in.txt"}],
        "params": [{"keyword": "K", "min": 1, "max": 3, "step": 1}],
    }
    put("ps/parameterSetting.json", json.dumps(setting))

    page = _page(browser, server, tmp_path)
    page.goto(server.base + f"/#/p/{pid}/list")
    # before the run: the components, not started
    page.wait_for_selector("tr[data-component='loop/t']")
    assert page.locator("tr[data-component='ps/u'] .state").inner_text() == "not-started"
    page.click("[data-test=run]")
    # while the run goes on, a trip that began after the rows were read appears (they are
    # read again for it), running
    page.locator("tr[data-component='loop_1/t'] .state:has-text('running')").wait_for(timeout=WAIT)
    assert page.locator("[data-test=project-state]").inner_text() == "running"
    page.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=WAIT)
    rows = [f"loop_{i}" for i in range(3)] + [f"ps_K_{k}" for k in range(1, 4)]
    for key in rows + [f"{k}/{'t' if k.startswith('loop') else 'u'}" for k in rows]:
        row = page.locator(f"tr[data-component='{key}']")
        row.locator(".state:has-text('finished')").wait_for(timeout=WAIT)
        assert row.locator("[data-test=started]").inner_text().strip() != "", key
        assert row.locator("[data-test=ended]").inner_text().strip() != "", key
    # the template rows are gone: each trip and instance stands for them
    assert page.locator("tr[data-component='loop/t']").count() == 0
    assert page.locator("tr[data-component='loop_1']").get_attribute("data-trip") == "1"
    _shot(page, tmp_path, "list-view-trips-and-instances")

    # the filter narrows to one row: a trip's task by its job id (its pid)
    job = page.locator("tr[data-component='loop_1/t'] td.job-id").inner_text().strip()
    assert job.isdigit()
    page.fill("[data-test=filter]", job)
    page.wait_for_function("document.querySelectorAll('tbody tr[data-component]').length === 1")
    assert page.locator("tbody tr[data-component]").get_attribute("data-component") == "loop_1/t"
    page.fill("[data-test=filter]", "")
    # a trip's log, from its row
    page.locator("tr[data-component='loop_1/t'] a:has-text('logs')").click()
    page.wait_for_selector("[data-test=stdout]:has-text('trip 1')")
    assert page.locator("[data-test=log-task]").input_value() == "loop_1/t"
    page.click("[data-test=tab-list]")
    # folding the study leaves its instances out
    page.click("[data-test='fold-ps']")
    page.wait_for_selector("tr[data-component='ps_K_2']", state="detached")
    assert page.locator("tr[data-component='loop_2/t']").count() == 1


def test_a_parameter_study_is_set_in_its_form_run_and_seen_in_the_history(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    pid = _api(server, "POST", "/api/projects", {"name": "study"})["id"]
    root = server.workspace / "study.wheel"
    page = _page(browser, server, tmp_path)
    page.goto(server.base + f"/#/p/{pid}/graph")
    page.wait_for_selector(".vue-flow")
    _add_component(page, "parameterStudy", 200, 120, "sweep")
    _api(
        server, "PUT", f"/api/projects/{pid}/files/content?path=sweep/input.txt", raw=b"n={{ n }}\n"
    )
    page.wait_for_selector("[data-test=ps-form] [data-test=ps-count]")
    assert page.locator("[data-test=ps-count]").inner_text() == "?"  # no parameter yet

    # a target file and a range parameter 1..3
    page.click("[data-test=ps-add-target]")
    page.fill("[data-test=ps-target-name]", "input.txt")
    page.click("[data-test=ps-add-param]")
    page.wait_for_selector("[data-test=ps-param] .field-error:has-text('placeholder')")
    page.fill("[data-test=ps-keyword]", "n")
    page.fill("[data-test=ps-min]", "1")
    page.fill("[data-test=ps-max]", "3")
    page.fill("[data-test=ps-step]", "0")
    page.wait_for_selector("[data-field='params[0]']:has-text('step: must not be 0')")
    assert page.locator("[data-test=ps-save]").is_disabled()
    page.fill("[data-test=ps-step]", "1")
    page.wait_for_selector("[data-test=ps-count]:has-text('3')")
    page.wait_for_selector("[data-field='params[0]']", state="detached")
    page.locator("[data-test=ps-json-details] summary").click()
    page.wait_for_selector("[data-test=ps-json]:has-text('\"step\": 1')")
    _shot(page, tmp_path, "parameter-study-form")
    # what only the server knows, beside its field: two values giving one directory name
    page.click("[data-test=ps-add-param]")
    page.locator("[data-test=ps-keyword]").nth(1).fill("mode")
    page.locator("[data-test=ps-kind]").nth(1).select_option("list")
    page.fill("[data-test=ps-list]", "a/b\na_b")
    page.press("[data-test=ps-list]", "Tab")
    page.wait_for_selector("[data-field='params[1]']:has-text('same instance directory name')")
    page.click("[data-test=ps-save]")
    page.wait_for_selector("[data-test=error]:has-text('same instance directory name')")
    assert json.loads((root / "sweep" / "parameterSetting.json").read_text())["params"] == []
    page.locator("[data-test=ps-param]").nth(1).locator(
        "button[title='remove this parameter']"
    ).click()
    page.wait_for_selector("[data-field='params[1]']", state="detached")
    page.click("[data-test=ps-save]")
    page.wait_for_selector(
        "[role=status]:has-text('saved sweep/parameterSetting.json: 3 instances')"
    )
    setting = json.loads((root / "sweep" / "parameterSetting.json").read_text())
    assert setting["targetFiles"] == [{"targetName": "input.txt"}]
    assert setting["params"] == [
        {"keyword": "n", "type": "min-max-step", "min": 1, "max": 3, "step": 1}
    ]

    # a task inside the study, run
    _node(page, "sweep").dblclick()
    page.wait_for_selector("[data-test=breadcrumb]:has-text('sweep')")
    _add_task(page, 200, 150, "work")
    _api(
        server,
        "PUT",
        f"/api/projects/{pid}/files/content?path=sweep/work/run.sh",
        raw=b"cat ../input.txt > seen.txt\n",
    )
    _set(page, "script", "run.sh")
    page.wait_for_function(
        f"fetch('/api/projects/{pid}').then(r => r.json()).then(p => "
        "p.workflow.children[0].children[0].properties.script === 'run.sh')"
    )
    page.click("[data-test=run]")
    page.wait_for_selector("[data-test=project-state]:has-text('finished')", timeout=WAIT)
    page.locator("[data-test=breadcrumb] a", has_text="study").click()
    _wait_node_state(page, "sweep", "finished")
    for n in (1, 2, 3):
        assert (root / f"sweep_n_{n}" / "work" / "seen.txt").read_text() == f"n={n}\n"

    # the history: the run, finished, with its three tasks
    page.click("[data-test=history-toggle]")
    row = page.locator("[data-test=history] tr[data-run='1']")
    row.locator("[data-test=history-state]:has-text('finished')").wait_for(timeout=WAIT)
    assert row.locator("[data-test=history-tasks]").inner_text() == "3 finished"
    _shot(page, tmp_path, "run-history")
    # a second run (nothing changed) comes first when it ends
    page.click("[data-test=run]")
    page.wait_for_selector(
        "[data-test=history] tbody tr:first-child[data-run='2'] :text('finished')", timeout=WAIT
    )
    assert page._sharin_errors == []
