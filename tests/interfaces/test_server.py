"""The UI's server: each endpoint, the token, the origin and host checks, paths kept inside."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from sharin.interfaces.server import ServerConfig, create_app

TOKEN = "t0ken-for-tests"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def client(workspace: Path) -> Iterator[TestClient]:
    app = create_app(ServerConfig(workspace=workspace, token=TOKEN, upload_limit=1 << 20))
    with TestClient(app, base_url="http://127.0.0.1:8123") as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c


def _new(client: TestClient, name: str = "demo") -> dict[str, Any]:
    r = client.post("/api/projects", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _task(client: TestClient, pid: str, name: str, script: str) -> dict[str, Any]:
    r = client.post(f"/api/projects/{pid}/components", json={"type": "task", "name": name})
    assert r.status_code == 201, r.text
    c = r.json()
    r = client.put(
        f"/api/projects/{pid}/files/content", params={"path": f"{name}/run.sh"}, content=script
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/api/projects/{pid}/components/{c['id']}", json={"properties": {"script": "run.sh"}}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _wait_state(client: TestClient, pid: str, want: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.get(f"/api/projects/{pid}/status").json()
        if s["run"] and s["run"]["state"] == want and s["engine_pid"] is None:
            return s  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run did not become {want}: {s}")


# ---------------------------------------------------------------------- the token
@pytest.mark.parametrize("path", ["/api/projects", "/openapi.json", "/docs", "/", "/api/hosts"])
def test_every_request_without_the_token_is_refused(workspace: Path, path: str) -> None:
    app = create_app(ServerConfig(workspace=workspace, token=TOKEN))
    with TestClient(app, base_url="http://127.0.0.1:8123") as c:
        r = c.get(path)
        assert r.status_code == 401 and "token" in r.json()["error"]
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get(path, params={"token": TOKEN[:-1]}).status_code == 401


def test_the_token_in_the_url_becomes_a_cookie_for_later_requests(workspace: Path) -> None:
    app = create_app(ServerConfig(workspace=workspace, token=TOKEN))
    with TestClient(app, base_url="http://127.0.0.1:8123") as c:
        r = c.get("/api/projects", params={"token": TOKEN})
        assert r.status_code == 200
        assert (
            "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        )
        assert c.get("/api/projects").status_code == 200  # the cookie now
        # a change authenticated by the cookie alone, from a foreign page: refused
        r = c.post("/api/projects", json={"name": "x"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        assert not (workspace / "x.wheel").exists()


def test_a_foreign_host_name_is_refused_even_with_the_token(workspace: Path) -> None:
    app = create_app(ServerConfig(workspace=workspace, token=TOKEN))
    with TestClient(app, base_url="http://evil.example:8123") as c:
        r = c.get("/api/projects", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403 and "host name" in r.json()["error"]


def test_websockets_need_the_token_and_the_servers_own_origin(client: TestClient) -> None:
    pid = _new(client)["id"]
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect(url, headers={"Authorization": ""}):
            pass
    assert e.value.code == 1008 and "token" in e.value.reason
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect(
            url, headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"}
        ):
            pass
    assert e.value.code == 1008 and "origin" in e.value.reason
    with client.websocket_connect(
        f"{url}?token={TOKEN}", headers={"Origin": "http://127.0.0.1:8123"}
    ) as ws:
        assert ws.receive_json()["type"] == "snapshot"


# ---------------------------------------------------------------------- projects and components
def test_projects_are_made_listed_renamed_and_deleted_only_with_confirmation(
    client: TestClient, workspace: Path
) -> None:
    p = _new(client, "alpha")
    assert (workspace / "alpha.wheel" / "prj.wheel.json").is_file()
    assert [x["name"] for x in client.get("/api/projects").json()] == ["alpha"]
    assert client.post("/api/projects", json={"name": "../out"}).status_code == 400
    assert client.post("/api/projects", json={"name": "/abs"}).status_code == 400
    r = client.post(f"/api/projects/{p['id']}/rename", json={"name": "beta"})
    assert r.status_code == 200 and r.json()["name"] == "beta"
    assert not (workspace / "alpha.wheel").exists() and (workspace / "beta.wheel").is_dir()
    assert client.get(f"/api/projects/{p['id']}").status_code == 404  # the id follows the path
    p = r.json()
    r = client.delete(f"/api/projects/{p['id']}")
    assert r.status_code == 400 and "confirm=beta" in r.json()["error"]
    assert (workspace / "beta.wheel").is_dir()
    assert client.delete(f"/api/projects/{p['id']}", params={"confirm": "beta"}).status_code == 200
    assert not (workspace / "beta.wheel").exists()
    assert client.get(f"/api/projects/{p['id']}").status_code == 404


def test_components_edges_and_properties_through_the_api(client: TestClient) -> None:
    pid = _new(client)["id"]
    a = _task(client, pid, "a", "echo hi > out.txt\n")
    b = _task(client, pid, "b", "cat in.txt\n")
    r = client.patch(
        f"/api/projects/{pid}/components/{a['id']}",
        json={"properties": {"outputFiles": [{"name": "out.txt", "dst": []}]}},
    )
    assert r.status_code == 200
    r = client.post(
        f"/api/projects/{pid}/file-links",
        json={"src": a["id"], "src_name": "out.txt", "dst": b["id"], "dst_name": "in.txt"},
    )
    assert r.status_code == 201, r.text
    got = client.get(f"/api/projects/{pid}").json()
    kids = {c["name"]: c for c in got["workflow"]["children"]}
    assert kids["b"]["properties"]["inputFiles"][0]["name"] == "in.txt"
    # a bad value: one clear error naming the field, nothing written
    r = client.patch(
        f"/api/projects/{pid}/components/{a['id']}", json={"properties": {"retry": "many"}}
    )
    assert r.status_code == 400 and "retry" in r.json()["error"]
    assert client.get(f"/api/projects/{pid}/validate").json() == []
    r = client.post(f"/api/projects/{pid}/links", json={"src": b["id"], "dst": a["id"]})
    assert r.status_code == 400 and "cycle" in r.json()["error"]
    assert client.get(f"/api/projects/{pid}/components/nope").status_code == 404
    r = client.delete(f"/api/projects/{pid}/components/{a['id']}")
    assert r.status_code == 400 and "confirm=true" in r.json()["error"]


def test_a_run_from_the_server_is_seen_live_on_two_websockets_and_logs_read(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "a", "echo from-a\n")
    _task(client, pid, "b", "echo from-b\n")
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    with client.websocket_connect(url) as one, client.websocket_connect(url) as two:
        assert one.receive_json()["type"] == "snapshot" and two.receive_json()["run"] is None
        assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
        for ws in (one, two):
            seen: list[tuple[str, str]] = []
            while ("", "finished") not in seen:
                m = ws.receive_json()
                assert m["type"] == "change"
                seen.append((m["event"]["key"], m["event"]["state"]))
            assert ("a", "finished") in seen and ("b", "finished") in seen
    s = _wait_state(client, pid, "finished")
    assert {t["key"]: t["state"] for t in s["tasks"]} == {"a": "finished", "b": "finished"}
    assert client.get(f"/api/projects/{pid}/logs/a").text == "from-a\n"
    assert client.get(f"/api/projects/{pid}/logs/a", params={"stream": "bad"}).status_code == 422
    assert len(client.get(f"/api/projects/{pid}/runs").json()) == 1
    # a late client gets the final states in its snapshot
    with client.websocket_connect(url) as late:
        snap = late.receive_json()
        assert snap["states"]["b"]["state"] == "finished" and snap["run"]["state"] == "finished"


def test_edits_and_file_writes_are_refused_while_the_project_runs(client: TestClient) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "slow", "sleep 30\n")
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 409
    r = client.put(
        f"/api/projects/{pid}/files/content", params={"path": "slow/run.sh"}, content="x"
    )
    assert r.status_code == 409
    r = client.post(f"/api/projects/{pid}/components", json={"type": "task", "name": "c"})
    assert r.status_code == 409
    assert client.post(f"/api/projects/{pid}/stop").json() == {"stopped": True}
    _wait_state(client, pid, "stopped")


# ---------------------------------------------------------------------- files
def test_files_are_listed_read_written_and_uploaded_inside_the_project(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "a", "echo\n")
    listing = client.get(f"/api/projects/{pid}/files").json()
    names = [e["name"] for e in listing["entries"]]
    assert "a" in names and ".git" not in names and ".sharin" not in names
    inner = client.get(f"/api/projects/{pid}/files", params={"path": "a"}).json()
    assert {"run.sh", "cmp.wheel.json"} <= {e["name"] for e in inner["entries"]}
    assert (
        client.get(f"/api/projects/{pid}/files/content", params={"path": "a/run.sh"}).text
        == "echo\n"
    )
    r = client.post(
        f"/api/projects/{pid}/files/upload",
        params={"path": "a"},
        files=[("files", ("data.bin", b"\0\1\2" * 10, "application/octet-stream"))],
    )
    assert r.status_code == 201, r.text
    assert (workspace / "demo.wheel" / "a" / "data.bin").read_bytes() == b"\0\1\2" * 10


def test_uploads_over_the_limit_are_refused_and_leave_no_file(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    big = b"x" * ((1 << 20) + 1)
    r = client.post(f"/api/projects/{pid}/files/upload", files=[("files", ("big.bin", big, "x/y"))])
    assert r.status_code == 400 and "limit" in r.json()["error"]
    r = client.put(f"/api/projects/{pid}/files/content", params={"path": "big2"}, content=big)
    assert r.status_code == 400
    left = [p.name for p in (workspace / "demo.wheel").iterdir()]
    assert not [n for n in left if "big" in n], left


@pytest.mark.parametrize("where", ["", "sub/deeper"])
def test_an_upload_of_several_files_one_too_large_writes_none(
    client: TestClient, workspace: Path, where: str
) -> None:
    pid = _new(client)["id"]
    root = workspace / "demo.wheel"
    if not where:
        (root / "a.txt").write_text("old\n")
    big = b"x" * ((1 << 20) + 1)
    r = client.post(
        f"/api/projects/{pid}/files/upload",
        params={"path": where},
        files=[("files", ("a.txt", b"new\n", "text/plain")), ("files", ("big.bin", big, "x/y"))],
    )
    assert r.status_code == 400 and "limit" in r.json()["error"]
    if where:
        assert not (root / "sub").exists()  # the directories made for it are gone again
    else:
        assert (root / "a.txt").read_text() == "old\n"
    assert not [x for x in root.rglob("*") if x.name.endswith(".part")]


@pytest.mark.parametrize(
    "path",
    [
        "../outside.txt",
        "a/../../outside.txt",
        "/etc/passwd",
        "..\\outside.txt",
        ".git/config",
        ".git/hooks/pre-commit",
        ".sharin/journal.sqlite",
        "link/secret.txt",
        "link",
    ],
)
def test_no_path_outside_the_project_is_read_or_written(
    client: TestClient, workspace: Path, tmp_path: Path, path: str
) -> None:
    pid = _new(client)["id"]
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "secret.txt").write_text("s3cret")
    (tmp_path / "ws" / "outside.txt").write_text("keep")
    os.symlink(secret, workspace / "demo.wheel" / "link")
    for method, kw in (
        ("GET", {}),
        ("PUT", {"content": b"overwritten"}),
    ):
        r = client.request(
            method, f"/api/projects/{pid}/files/content", params={"path": path}, **kw
        )
        assert r.status_code in (400, 403), (method, path, r.status_code, r.text)
        assert "s3cret" not in r.text
    r = client.get(f"/api/projects/{pid}/files", params={"path": path})
    assert r.status_code in (400, 403)
    r = client.post(
        f"/api/projects/{pid}/files/upload",
        params={"path": path},
        files=[("files", ("x.txt", b"overwritten", "text/plain"))],
    )
    assert r.status_code in (400, 403)
    assert (secret / "secret.txt").read_text() == "s3cret"
    assert (tmp_path / "ws" / "outside.txt").read_text() == "keep"
    assert not (secret / "x.txt").exists()


def test_encoded_traversal_in_the_url_is_refused(client: TestClient) -> None:
    pid = _new(client)["id"]
    for raw in ("%2e%2e%2foutside.txt", "%2E%2E/outside.txt", "%2fetc%2fpasswd"):
        r = client.get(f"/api/projects/{pid}/files/content?path={raw}")
        assert r.status_code in (400, 403), raw
    r = client.get(f"/api/projects/{pid}/logs/..%2f..%2fetc%2fpasswd")
    assert r.status_code in (400, 403, 404)
    assert "root:" not in r.text


def test_an_upload_named_with_a_path_lands_by_its_base_name(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    r = client.post(
        f"/api/projects/{pid}/files/upload",
        files=[("files", ("../../evil.sh", b"echo", "text/plain"))],
    )
    assert r.status_code == 201
    assert (workspace / "demo.wheel" / "evil.sh").read_bytes() == b"echo"
    assert not (workspace.parent / "evil.sh").exists()


def test_a_wheel_archive_is_imported_and_exported(client: TestClient, workspace: Path) -> None:
    pid = _new(client, "orig")["id"]
    _task(client, pid, "a", "echo\n")
    assert client.post(f"/api/projects/{pid}/save", json={"message": "v1"}).json() == {
        "saved": True
    }
    r = client.get(f"/api/projects/{pid}/export")
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert any(n.endswith("prj.wheel.json") for n in tar.getnames())
    client.delete(f"/api/projects/{pid}", params={"confirm": "orig"})
    r = client.post(
        "/api/projects/import", files=[("archive", ("WHEEL_project_orig.tgz", r.content, "x"))]
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert [c["name"] for c in got["workflow"]["children"]] == ["a"]
    assert json.loads((Path(got["root"]) / "prj.wheel.json").read_text())["name"]


# ---------------------------------------------------------------------- `sharin ui`
def test_sharin_ui_prints_a_url_with_a_token_and_serves_on_loopback(
    tmp_path: Path, workspace: Path
) -> None:
    import subprocess
    import sys
    import urllib.request

    import sharin

    sharin.new_project(workspace / "one")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sharin", "ui", str(workspace / "one.wheel"), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("sharin UI: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        base, token = url.split("/?token=")
        assert len(token) >= 32
        req = urllib.request.Request(
            f"{base}/api/projects", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            names = [p["name"] for p in json.loads(r.read())]
        assert names == ["one"]
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{base}/api/projects", timeout=10)
        assert e.value.code == 401
        e.value.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# ---------------------------------------------------------------------- live logs, viewer
def test_a_running_tasks_output_is_followed_until_it_ends(client: TestClient) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "talk", "for i in 1 2 3; do echo line$i; sleep 0.3; done\necho é\n")
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/log-follow?key=talk"
    text = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the run may not have begun the task yet
        with client.websocket_connect(url) as ws:
            m = ws.receive_json()
            if m["type"] == "error":
                time.sleep(0.1)
                continue
            parts = 0
            while m["type"] == "data":
                text += m["text"]
                parts += 1
                m = ws.receive_json()
            assert m["type"] == "end"
            break
    assert text == "line1\nline2\nline3\né\n"
    assert parts >= 2  # it came while the task ran, not at its end in one piece
    _wait_state(client, pid, "finished")


def test_following_the_log_of_an_unknown_component_says_so(client: TestClient) -> None:
    pid = _new(client)["id"]
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/log-follow?key=nope"
    with client.websocket_connect(url) as ws:
        m = ws.receive_json()
    assert m["type"] == "error" and "nope" in m["error"]


def test_the_viewer_lists_the_images_of_a_viewer_component(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    r = client.post(f"/api/projects/{pid}/components", json={"type": "viewer", "name": "v"})
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    (workspace / "demo.wheel" / "v" / "curve.png").write_bytes(png)
    got = client.get(f"/api/projects/{pid}/viewer/{vid}").json()
    assert got == {"images": ["v/curve.png"]}
    img = client.get(f"/api/projects/{pid}/files/content", params={"path": got["images"][0]})
    assert img.content == png


def test_a_websocket_client_that_leaves_is_forgotten_at_once(client: TestClient) -> None:
    pid = _new(client)["id"]
    hub = client.app.app.state.sharin.hub  # type: ignore[attr-defined]
    root = client.app.app.state.sharin.root(pid)  # type: ignore[attr-defined]
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    with client.websocket_connect(url) as ws:
        ws.receive_json()
        assert hub.watchers(root) == 1
    deadline = time.monotonic() + 5
    while hub.watchers(root) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.watchers(root) == 0  # without waiting for a change to notice


def test_a_project_run_before_the_server_started_shows_its_last_run(
    client: TestClient, workspace: Path
) -> None:
    import sharin

    p = sharin.new_project(workspace / "earlier")
    sharin.add_task(p, "a", "true")
    sharin.add_task(p, "b", "exit 3")
    assert sharin.run(p).state == "failed"
    pid = next(x["id"] for x in client.get("/api/projects").json() if x["name"] == "earlier")
    with client.websocket_connect(f"ws://127.0.0.1:8123/api/projects/{pid}/events") as ws:
        snap = ws.receive_json()
    assert snap["run"]["state"] == "failed"
    assert snap["states"]["a"]["state"] == "finished"
    assert snap["states"]["b"]["state"] == "failed" and snap["states"]["b"]["returncode"] == 3


def test_a_run_of_another_process_is_followed_live(client: TestClient, workspace: Path) -> None:
    import subprocess
    import sys

    import sharin

    p = sharin.new_project(workspace / "elsewhere")
    sharin.add_task(p, "first", "sleep 1")
    sharin.add_task(p, "second", "sleep 1")
    sharin.connect(p, "first", "second")
    pid = next(x["id"] for x in client.get("/api/projects").json() if x["name"] == "elsewhere")
    with client.websocket_connect(f"ws://127.0.0.1:8123/api/projects/{pid}/events") as ws:
        assert ws.receive_json()["run"] is None  # never run
        cli = subprocess.Popen([sys.executable, "-m", "sharin", "run", str(p.root)])
        try:
            seen: list[tuple[str, str]] = []
            while ("", "finished") not in seen:
                m = ws.receive_json()
                seen.append((m["event"]["key"], m["event"]["state"]))
        finally:
            assert cli.wait(60) == 0
    assert seen.index(("first", "finished")) < seen.index(("second", "finished"))
    assert ("second", "running") in seen  # seen while it ran, not only at the end


@pytest.mark.parametrize("path", ["~nosuchuser/x", "~", "/nonexistent/dir", "", "\0"])
def test_opening_a_path_that_is_no_project_is_one_clear_error(
    client: TestClient, path: str
) -> None:
    r = client.post("/api/projects/open", json={"path": path})
    assert r.status_code in (400, 422), r.text
    assert "Traceback" not in r.text


# ---------------------------------------------------------------------- hosts
@pytest.mark.sshd
def test_a_host_is_tested_with_its_passphrase_asked_of_the_client_and_not_stored(
    client: TestClient, tmp_path: Path, config_dir: Path
) -> None:
    from tests.remote.hostshell import encrypted_key, host_entry

    key = encrypted_key(tmp_path)
    entry = host_entry("ci", keyFile=str(key))
    assert client.post("/api/hosts", json=entry).status_code == 201
    assert [h["config"]["name"] for h in client.get("/api/hosts").json()] == ["ci"]
    with client.websocket_connect("ws://127.0.0.1:8123/api/hosts/ci/test") as ws:
        m = ws.receive_json()
        assert m["type"] == "ask" and "passphrase" in m["prompt"] and m["echo"] is False
        ws.send_json({"type": "answer", "text": "pass-phrase"})
        m = ws.receive_json()
    assert m["type"] == "result" and m["round_trip"] < 10 and "sbatch" in m["commands"]
    stored = "".join(p.read_text() for p in config_dir.rglob("*") if p.is_file())
    assert "pass-phrase" not in stored
    assert client.delete("/api/hosts/ci").status_code == 200


def test_testing_an_unknown_host_is_one_clear_error(client: TestClient) -> None:
    with client.websocket_connect("ws://127.0.0.1:8123/api/hosts/nowhere/test") as ws:
        m = ws.receive_json()
    assert m["type"] == "error" and "nowhere" in m["error"]


def _host(client: TestClient, **entry: Any) -> None:
    r = client.post("/api/hosts", json=entry)
    assert r.status_code == 201, r.text


def test_a_host_is_edited_in_place_in_its_file(client: TestClient, config_dir: Path) -> None:
    _host(client, name="a", host="a.example.org", user="me", path="/work/a")
    _host(client, name="b", host="b.example.org")
    file = config_dir / "remotehost.json"
    before = json.loads(file.read_text())
    edited = {**before[0], "path": "/scratch/a", "queue": "small,large", "numJob": 20}
    del edited["id"]  # the entry's id is kept when the edit does not send it
    r = client.put("/api/hosts/a", json=edited)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "a"}
    after = json.loads(file.read_text())
    assert [e["name"] for e in after] == ["a", "b"]
    assert after[0] == {**before[0], "path": "/scratch/a", "queue": "small,large", "numJob": 20}
    got = {h["config"]["name"]: h["config"] for h in client.get("/api/hosts").json()}
    assert got["a"]["path"] == "/scratch/a" and got["a"]["queues"] == ["small", "large"]
    assert not [p.name for p in config_dir.iterdir() if p.name != "remotehost.json"]


def test_a_host_is_renamed_but_not_onto_another_host(client: TestClient, config_dir: Path) -> None:
    _host(client, name="a", host="a.example.org")
    _host(client, name="b", host="b.example.org")
    file = config_dir / "remotehost.json"
    r = client.put("/api/hosts/a", json={"name": "b", "host": "x"})
    assert r.status_code == 400 and "'b' exists already" in r.json()["error"]
    r = client.put("/api/hosts/a", json={"name": "c", "host": "c.example.org"})
    assert r.status_code == 200 and r.json() == {"name": "c"}
    assert [(e["name"], e["host"]) for e in json.loads(file.read_text())] == [
        ("c", "c.example.org"),
        ("b", "b.example.org"),
    ]


def test_a_bad_field_of_an_edited_host_is_named_and_nothing_changes(
    client: TestClient, config_dir: Path
) -> None:
    _host(client, name="a", host="a.example.org")
    file = config_dir / "remotehost.json"
    before = file.read_bytes()
    r = client.put("/api/hosts/a", json={"name": "a", "host": "a", "port": 99999})
    assert r.status_code == 400
    assert "[a.port]" in r.json()["error"] and "Traceback" not in r.text
    r = client.put("/api/hosts/a", json={"name": "", "host": "a"})
    assert r.status_code == 400 and "name" in r.json()["error"]
    assert file.read_bytes() == before


def test_editing_an_unknown_host_is_404(client: TestClient) -> None:
    r = client.put("/api/hosts/nowhere", json={"name": "nowhere", "host": "x"})
    assert r.status_code == 404 and "nowhere" in r.json()["error"]


def test_an_archive_with_unknown_hosts_asks_for_a_mapping_then_imports_with_it(
    client: TestClient, workspace: Path
) -> None:
    from tests.archives import wheel_archive

    _host(client, name="cluster", host="login.example.org")
    data = wheel_archive("mapped", {"pre": "fugaku", "post": "localhost", "sim": "oakforest"})
    upload = [("archive", ("WHEEL_project_mapped.tgz", data, "application/gzip"))]
    r = client.post("/api/projects/import", files=upload)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["unknown_hosts"] == ["fugaku", "oakforest"]
    assert body["hosts"] == ["localhost", "cluster"]
    assert body["error"] == (
        "the archive uses hosts this machine does not know: fugaku, oakforest; send host_map "
        "mapping each to one of: localhost, cluster"
    )
    assert list(workspace.iterdir()) == []  # nothing imported, the upload not kept
    # a mapping naming a host this machine lacks: one clear error
    bad = {"host_map": json.dumps({"fugaku": "cluster", "oakforest": "nowhere"})}
    r = client.post("/api/projects/import", files=upload, data=bad)
    assert r.status_code == 400 and "oakforest=nowhere" in r.json()["error"]
    for junk in ("[1]", '{"fugaku": 1}', "not json"):
        r = client.post("/api/projects/import", files=upload, data={"host_map": junk})
        assert r.status_code == 400 and r.json()["error"].startswith("host_map:"), junk
    # half a mapping: asked again for the rest
    half = {"host_map": json.dumps({"fugaku": "cluster"})}
    r = client.post("/api/projects/import", files=upload, data=half)
    assert r.status_code == 409 and r.json()["unknown_hosts"] == ["oakforest"]
    assert list(workspace.iterdir()) == []
    full = {"host_map": json.dumps({"fugaku": "cluster", "oakforest": "localhost"})}
    r = client.post("/api/projects/import", files=upload, data=full)
    assert r.status_code == 201, r.text
    hosts = {c["name"]: c["properties"]["host"] for c in r.json()["workflow"]["children"]}
    assert hosts == {"pre": "cluster", "post": "localhost", "sim": "localhost"}
    root = Path(r.json()["root"])
    assert json.loads((root / "pre" / "cmp.wheel.json").read_text())["host"] == "cluster"


_labels = st.text(min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(json.dumps, st.dictionaries(_labels, st.sampled_from(["localhost", "c", "x"]))),
        st.builds(
            json.dumps,
            st.recursive(
                st.none() | st.booleans() | st.integers() | _labels,
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(_labels, inner, max_size=3)
                ),
                max_leaves=8,
            ),
        ),
        st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
    )
)
def test_an_import_host_map_is_a_mapping_onto_known_hosts_or_one_clear_error(text: str) -> None:
    from sharin.errors import ProjectError
    from sharin.interfaces.server._app import _host_map

    known = ["localhost", "c"]
    try:
        got = _host_map(text, known)
    except ProjectError as e:
        assert str(e).startswith("host_map")
        assert "Traceback" not in str(e) and "NoneType" not in str(e)
        return
    assert all(isinstance(k, str) and v in known for k, v in got.items())
    assert got == (json.loads(text) if text.strip() else {})


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "host", "user", "port", "path", "numJob", "queue", "useBulkjob"]),
        st.none()
        | st.booleans()
        | st.integers(-5, 70000)
        | st.text(max_size=8)
        | st.lists(st.text(max_size=3), max_size=2),
    )
)
def test_an_edited_host_is_written_whole_or_refused_naming_a_field(entry: dict[str, Any]) -> None:
    from sharin.errors import ProjectError
    from sharin.interfaces import api
    from sharin.model._hosts import hosts_file

    file = hosts_file()
    file.write_text(json.dumps([{"name": "a", "host": "h", "id": "1"}, {"name": "b", "host": "h"}]))
    before = file.read_bytes()
    try:
        cfg = api.replace_host("a", entry)
    except ProjectError as e:
        assert file.read_bytes() == before
        assert "[" in str(e) or "exists already" in str(e), str(e)
        assert "NoneType" not in str(e) and "Traceback" not in str(e)
        return
    written = json.loads(file.read_text())
    assert written[0] == {**entry, "id": "1"} and written[1]["name"] == "b"
    assert cfg.name == entry["name"] != "b"


@pytest.mark.parametrize("component", ["a\0b", "\0", "x/\0/y"])
def test_cleaning_a_component_named_with_a_nul_is_one_clear_error(
    client: TestClient, component: str
) -> None:
    pid = _new(client, "nul")["id"]
    r = client.post(f"/api/projects/{pid}/clean", json={"component": component})
    assert r.status_code == 400, r.text
    assert "NUL" in r.json()["error"] and "Traceback" not in r.text


# ---------------------------------------------------------------------- the list view's rows
def _add(client: TestClient, pid: str, ctype: str, name: str, parent: str | None = None) -> str:
    r = client.post(
        f"/api/projects/{pid}/components", json={"type": ctype, "name": name, "parent": parent}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def _put(client: TestClient, pid: str, path: str, text: str) -> None:
    r = client.put(f"/api/projects/{pid}/files/content", params={"path": path}, content=text)
    assert r.status_code == 200, r.text


def _patch(client: TestClient, pid: str, cid: str, **properties: Any) -> None:
    r = client.patch(f"/api/projects/{pid}/components/{cid}", json={"properties": properties})
    assert r.status_code == 200, r.text


def test_a_patch_with_one_field_refused_changes_none(client: TestClient) -> None:
    pid = _new(client)["id"]
    cid = _add(client, pid, "task", "a")
    before = client.get(f"/api/projects/{pid}/components/{cid}").json()
    r = client.patch(
        f"/api/projects/{pid}/components/{cid}",
        json={"properties": {"retry": 3, "name": "renamed", "script": "../../x"}},
    )
    assert r.status_code in (400, 422), r.text
    assert client.get(f"/api/projects/{pid}/components/{cid}").json() == before
    _patch(client, pid, cid, retry=3, name="renamed")  # all of it when nothing is refused
    got = client.get(f"/api/projects/{pid}/components/{cid}").json()
    assert (got["properties"]["retry"], got["name"], got["path"]) == (3, "renamed", "renamed")


def _inner_task(client: TestClient, pid: str, parent: str, where: str, script: str) -> str:
    """A task ``t`` in the container ``parent`` (whose directory is ``where``)."""
    cid = _add(client, pid, "task", "t", parent)
    _put(client, pid, f"{where}/t/run.sh", script)
    _patch(client, pid, cid, script="run.sh")
    return cid


def _study_of_n(client: TestClient, pid: str, n: int, script: str = "cat in.txt\n") -> None:
    """A parameter study ``ps`` over K = 1..n of a task ``t`` whose in.txt is rendered."""
    ps = _add(client, pid, "parameterStudy", "ps")
    t = _inner_task(client, pid, ps, "ps", script)
    _put(client, pid, "ps/t/in.txt", "k={{ K }}\n")
    setting = {
        "version": 2,
        "targetFiles": [{"targetNode": t, "targetName": "in.txt"}],
        "params": [{"keyword": "K", "min": 1, "max": n, "step": 1}],
    }
    _put(client, pid, "ps/parameterSetting.json", json.dumps(setting))


def _rows(client: TestClient, pid: str, **params: Any) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/projects/{pid}/tasks", params=params)
    assert r.status_code == 200, r.text
    return {row["key"]: row for row in r.json()["rows"]}


def test_the_list_view_has_a_row_for_every_loop_trip_and_study_instance(
    client: TestClient,
) -> None:
    pid = _new(client)["id"]
    loop = _add(client, pid, "for", "loop")
    _patch(client, pid, loop, start=0, end=2, step=1)
    _inner_task(client, pid, loop, "loop", 'echo "trip $WHEEL_CURRENT_INDEX"\n')
    _study_of_n(client, pid, 4)
    # before any run: the components, with the states of their files and no times
    before = _rows(client, pid)
    assert sorted(before) == ["loop", "loop/t", "ps", "ps/t"]
    assert {r["state"] for r in before.values()} == {"not-started"}
    assert all(r["started"] is None and r["job_id"] is None for r in before.values())
    assert before["loop/t"]["parent"] == "loop" and before["loop/t"]["host"] == "localhost"

    t0 = time.time()
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    _wait_state(client, pid, "finished")
    got = client.get(f"/api/projects/{pid}/tasks").json()
    assert got["run"]["id"] == 1 and got["run"]["state"] == "finished"
    rows = {r["key"]: r for r in got["rows"]}
    trips = [f"loop_{i}" for i in range(3)]
    instances = [f"ps_K_{k}" for k in range(1, 5)]
    assert sorted(rows) == sorted(
        ["loop", "ps", *trips, *(f"{x}/t" for x in trips + instances), *instances]
    )
    for i, key in enumerate(trips):
        trip = rows[key]
        assert (trip["name"], trip["type"], trip["trip"], trip["parent"]) == (
            "loop",
            "for",
            str(i),
            "loop",
        )
        assert trip["id"] == loop
    for k, key in enumerate(instances, 1):
        inst = rows[key]
        assert (inst["name"], inst["type"], inst["trip"], inst["parent"]) == (
            "ps",
            "parameterStudy",
            f"K_{k}",
            "ps",
        )
    tasks = [rows[f"{x}/t"] for x in trips + instances]
    assert all(t["name"] == "t" and t["type"] == "task" for t in tasks)
    assert [t["parent"] for t in tasks] == trips + instances
    assert len({t["id"] for t in tasks[:3]}) == 1 and len({t["id"] for t in tasks[3:]}) == 1
    for r in rows.values():
        assert r["state"] == "finished", r
        assert t0 <= r["started"] <= r["ended"] <= time.time(), r
        assert r["host"] == "localhost"
    for t in tasks:
        assert t["job_id"].isdigit() and t["returncode"] == 0 and t["attempt"] == 1
    assert len({t["job_id"] for t in tasks}) == len(tasks)  # each its own process
    assert rows["loop"]["job_id"] is None and rows["loop"]["message"] == "3 trips"
    # the trips' logs are there under the keys the rows give
    assert client.get(f"/api/projects/{pid}/logs/loop_1/t").text == "trip 1\n"
    # the same run asked by its number
    assert _rows(client, pid, run=1) == rows


def test_a_local_tasks_job_id_in_the_list_view_is_its_pid(client: TestClient) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "a", "echo $$ > pid.txt\n")
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    _wait_state(client, pid, "finished")
    row = _rows(client, pid)["a"]
    shell = client.get(f"/api/projects/{pid}/files/content", params={"path": "a/pid.txt"})
    assert row["job_id"] == shell.text.strip()
    assert row["host"] == "localhost" and row["returncode"] == 0


def test_the_list_view_of_an_unknown_run_is_one_clear_error(client: TestClient) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "a", "true\n")
    r = client.get(f"/api/projects/{pid}/tasks", params={"run": 1})
    assert r.status_code == 404
    assert r.json() == {
        "error": "project demo: there is no run 1; it has not been run yet "
        "(leave out run= for the last one)"
    }
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    _wait_state(client, pid, "finished")
    r = client.get(f"/api/projects/{pid}/tasks", params={"run": 7})
    assert r.status_code == 404 and "no run 7; its only run is 1" in r.json()["error"]
    assert client.get(f"/api/projects/{pid}/tasks", params={"run": "x"}).status_code == 422
    for beyond in (0, -1, 1 << 63, 10**30):  # nothing SQLite could hold either
        r = client.get(f"/api/projects/{pid}/tasks", params={"run": beyond})
        assert r.status_code == 404 and f"no run {beyond};" in r.json()["error"]
    assert client.get("/api/projects/0123456789abcdef/tasks").status_code == 404


def test_after_a_clean_the_list_view_shows_the_states_of_the_files(client: TestClient) -> None:
    pid = _new(client)["id"]
    a = _task(client, pid, "a", "true\n")
    _task(client, pid, "b", "true\n")
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    _wait_state(client, pid, "finished")
    assert _rows(client, pid)["a"]["state"] == "finished"
    # one component cleaned: its row only
    r = client.post(f"/api/projects/{pid}/clean", json={"component": a["id"], "unsaved": "keep"})
    assert r.status_code == 200, r.text
    rows = _rows(client, pid)
    assert (rows["a"]["state"], rows["a"]["started"], rows["a"]["job_id"]) == (
        "not-started",
        None,
        None,
    )
    assert rows["b"]["state"] == "finished" and rows["b"]["job_id"] is not None
    r = client.post(f"/api/projects/{pid}/clean", json={"unsaved": "keep"})
    assert r.status_code == 200, r.text
    got = client.get(f"/api/projects/{pid}/tasks").json()
    assert got["cleaned"] is True and got["run"]["id"] == 1
    assert [(x["key"], x["state"], x["started"]) for x in got["rows"]] == [
        ("a", "not-started", None),
        ("b", "not-started", None),
    ]
    # the run itself is still there when asked for
    assert _rows(client, pid, run=1)["a"]["state"] == "finished"


@pytest.mark.slow
def test_the_list_view_of_a_study_of_2000_instances_has_every_row_once(
    client: TestClient, workspace: Path
) -> None:
    """Every instance and its task, each once, all finished; what the endpoint sends is what
    :func:`task_rows` makes of the project read afresh. (How long it takes is measured by
    ``benchmarks/list_view.py``, beside the journal's own read.)"""
    import msgspec

    import sharin
    from sharin.interfaces.server._tasks import task_rows

    pid = _new(client)["id"]
    _study_of_n(client, pid, 2000, script="true\n")
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    _wait_state(client, pid, "finished", timeout=600)
    r = client.get(f"/api/projects/{pid}/tasks")
    rows = r.json()["rows"]
    assert len(rows) == 1 + 2 * 2000
    assert len({x["key"] for x in rows}) == len(rows)
    assert sorted(x["trip"] for x in rows if x["trip"] is not None) == sorted(
        f"K_{k}" for k in range(1, 2001)
    )
    assert all(x["state"] == "finished" for x in rows)
    project = sharin.open_project(workspace / "demo.wheel")
    body = msgspec.json.encode(task_rows(project))
    assert msgspec.json.decode(body) == r.json()


# ---------------------------------------------------------------------- parameter files
def _study(client: TestClient, pid: str, name: str = "sweep") -> dict[str, Any]:
    r = client.post(
        f"/api/projects/{pid}/components", json={"type": "parameterStudy", "name": name}
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _setting(inner: str) -> dict[str, Any]:
    """A study of 3 x 2 instances: a range, a list and a gather rule from task ``inner``."""
    return {
        "version": 2,
        "targetFiles": [{"targetName": "input.txt"}],
        "params": [
            {"keyword": "n", "type": "min-max-step", "min": 1, "max": 3, "step": 1},
            {"keyword": "mode", "type": "list", "list": ["fast", "slow"]},
        ],
        "scatter": [],
        "gather": [
            {"srcName": "out.txt", "srcNode": inner, "dstName": "results/{{ n }}_{{ mode }}"}
        ],
    }


def test_a_parameter_setting_is_read_and_written_in_wheels_form(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    got = client.get(url).json()
    assert got["file"] == "sweep/parameterSetting.json" and got["exists"]
    assert got["setting"] == {
        "version": 2,
        "targetFiles": [],
        "params": [],
        "scatter": [],
        "gather": [],
    }
    assert got["instances"] is None and got["problems"][0]["field"] == "params"
    inner = client.post(
        f"/api/projects/{pid}/components", json={"type": "task", "name": "t", "parent": ps["id"]}
    ).json()
    (workspace / "demo.wheel" / "sweep" / "input.txt").write_text("n={{ n }}\n")
    setting = _setting(inner["id"])
    r = client.put(url, json=setting)
    assert r.status_code == 200, r.text
    assert r.json()["instances"] == 6 and r.json()["problems"] == [] == r.json()["warnings"]
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    assert json.loads(path.read_text()) == setting  # the file's own form, as sent
    again = client.get(url).json()
    assert again["setting"] == setting and again["instances"] == 6
    # a dry run counts without writing
    bigger = {**setting, "params": [{**setting["params"][0], "max": 10}, setting["params"][1]]}
    r = client.put(url, params={"dry_run": True}, json=bigger)
    assert r.status_code == 200 and r.json()["instances"] == 20
    assert json.loads(path.read_text()) == setting
    # a missing file reads as an empty setting
    path.unlink()
    assert client.get(url).json()["exists"] is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"step": 0}, "params[0].step"),
        ({"step": -1}, "params[0].step"),
        ({"min": "one"}, "params[0].min"),
        ({"colour": "red"}, "params[0].colour"),
    ],
)
def test_a_bad_parameter_setting_is_refused_naming_the_field_and_nothing_written(
    client: TestClient, workspace: Path, change: dict[str, Any], field: str
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    before = path.read_bytes()
    setting = _setting("")
    setting["gather"] = []
    setting["params"][0].update(change)
    r = client.put(url, json=setting)
    assert r.status_code == 400, r.text
    problems = r.json()["problems"]
    assert [p["field"] for p in problems] == [field]
    assert problems[0]["file"] == "sweep/parameterSetting.json"
    assert "NoneType" not in r.text and "Traceback" not in r.text
    assert path.read_bytes() == before


def test_a_parameter_setting_naming_no_component_of_the_study_or_a_top_field_is_refused(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    outside = _task(client, pid, "outside", "true\n")
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    before = path.read_bytes()
    r = client.put(url, json={**_setting(outside["id"]), "extra": 1})
    assert r.status_code == 400
    assert sorted(p["field"] for p in r.json()["problems"]) == ["extra", "gather[0].srcNode"]
    assert path.read_bytes() == before


def test_a_parameter_setting_is_not_written_while_the_project_runs(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    _task(client, pid, "slow", "sleep 30\n")
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    before = path.read_bytes()
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    small = {"version": 2, "params": [{"keyword": "n", "min": 1, "max": 2, "step": 1}]}
    assert client.put(url, json=small).status_code == 200
    before = path.read_bytes()
    setting = {**_setting(""), "gather": []}
    # the study (nothing inside) ends at once; the slow task holds the run
    assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
    try:
        r = client.put(url, json=setting)
        assert r.status_code == 409, r.text
        assert "run" in r.json()["error"]
        assert path.read_bytes() == before
    finally:
        assert client.post(f"/api/projects/{pid}/stop").json() == {"stopped": True}
        _wait_state(client, pid, "stopped")


def test_a_bulk_jobs_parameter_file_has_no_scatter_and_other_types_none(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    bulk = client.post(
        f"/api/projects/{pid}/components", json={"type": "bulkjobTask", "name": "bulk"}
    ).json()
    url = f"/api/projects/{pid}/components/{bulk['id']}/parameters"
    got = client.get(url).json()
    assert got["exists"] is False and got["file"] == "bulk/parameterSetting.json"
    setting = {**_setting(""), "gather": [{"srcName": "a", "dstName": "b"}]}
    r = client.put(url, json=setting)
    assert r.status_code == 400 and [p["field"] for p in r.json()["problems"]] == ["gather"]
    assert not (workspace / "demo.wheel" / "bulk" / "parameterSetting.json").exists()
    r = client.put(url, json={**setting, "gather": []})
    assert r.status_code == 200 and r.json()["instances"] == 6
    assert (workspace / "demo.wheel" / "bulk" / "parameterSetting.json").is_file()
    task = _task(client, pid, "plain", "true\n")
    r = client.get(f"/api/projects/{pid}/components/{task['id']}/parameters")
    assert r.status_code == 400 and "parameterStudy" in r.json()["error"]


def test_a_parameter_file_linked_out_of_the_project_is_neither_read_nor_written(
    client: TestClient, workspace: Path, tmp_path: Path
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    secret = tmp_path / "secret.json"
    secret.write_text('{"version": 2, "params": [{"keyword": "k", "list": ["v"]}]}')
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    path.unlink()
    path.symlink_to(secret)
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    r = client.get(url)
    assert r.status_code == 403 and "keyword" not in r.text  # its content is not shown
    r = client.put(url, json={**_setting(""), "gather": []})
    assert r.status_code == 403
    assert path.is_symlink()
    assert json.loads(secret.read_text())["params"][0]["keyword"] == "k"


def test_a_parameter_file_that_is_not_json_is_not_replaced(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    path.write_text("{ my notes, not JSON")
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    r = client.get(url)
    assert r.status_code == 400 and "parameterSetting.json" in r.json()["error"]
    r = client.put(url, json={**_setting(""), "gather": []})
    assert r.status_code == 400 and "not replaced" in r.json()["error"]
    assert path.read_text() == "{ my notes, not JSON"


def test_the_runs_say_how_many_tasks_ended_in_each_state(client: TestClient) -> None:
    pid = _new(client)["id"]
    _task(client, pid, "good", "true\n")
    _task(client, pid, "bad", "exit 3\n")
    assert client.post(f"/api/projects/{pid}/run", json={"keep_going": True}).status_code == 202
    _wait_state(client, pid, "failed")
    runs = client.get(f"/api/projects/{pid}/runs").json()
    assert [(r["id"], r["state"], r["tasks"]) for r in runs] == [
        (1, "failed", {"finished": 1, "failed": 1})
    ]
    assert runs[0]["ended"] >= runs[0]["started"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_AXIS = st.fixed_dictionaries(
    {"keyword": st.sampled_from(["a", "b", "if", "", "1x"])},
    optional={
        "type": st.sampled_from(["min-max-step", "list", "files", "integer", "bogus"]),
        "min": _JSON,
        "max": _JSON,
        "step": _JSON,
        "list": _JSON,
        "files": _JSON,
    },
)


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.fixed_dictionaries(
        {"version": st.sampled_from([2, 1, "2", None])},
        optional={
            "params": st.lists(_AXIS | _JSON, max_size=3),
            "targetFiles": _JSON,
            "scatter": _JSON,
            "gather": _JSON,
            "other": _JSON,
        },
    )
)
def test_any_parameter_setting_is_written_whole_or_refused_with_named_fields(
    client: TestClient, workspace: Path, body: dict[str, Any]
) -> None:
    if not hasattr(client, "_study"):
        pid = _new(client)["id"]
        client._study = (pid, _study(client, pid)["id"])  # type: ignore[attr-defined]
    pid, cid = client._study  # type: ignore[attr-defined]
    path = workspace / "demo.wheel" / "sweep" / "parameterSetting.json"
    before = path.read_bytes()
    r = client.put(f"/api/projects/{pid}/components/{cid}/parameters", json=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        problems = r.json()["problems"]
        assert problems and all(p["field"] and p["message"] for p in problems)
        assert not any(w in r.text for w in ("NoneType", "Traceback", "found None"))
        assert path.read_bytes() == before
    else:
        assert json.loads(path.read_text()) == body


# ---------------------------------------------------------------------- edits seen by every tab
def _next_edit(ws: Any) -> dict[str, Any]:
    while True:
        m = ws.receive_json()
        if m["type"] == "edit":
            return m  # type: ignore[no-any-return]


def test_an_edit_in_one_tab_is_an_edit_change_for_every_tab(client: TestClient) -> None:
    pid = _new(client)["id"]
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    mine = {"X-Sharin-Client": "tab-a"}
    with client.websocket_connect(url) as one, client.websocket_connect(url) as two:
        seq = one.receive_json()["seq"]
        assert two.receive_json()["edit"] == 0
        r = client.post(
            f"/api/projects/{pid}/components", json={"type": "task", "name": "t"}, headers=mine
        )
        assert r.status_code == 201
        cid = r.json()["id"]
        for ws in (one, two):
            m = ws.receive_json()
            assert m == {"type": "edit", "seq": seq + 1, "what": "add", "component": None,
                         "by": "tab-a"}  # fmt: skip
        # a failed edit is no edit; the next one follows without a gap, from another client
        bad = client.patch(f"/api/projects/{pid}/components/nosuch", json={"properties": {}})
        assert bad.status_code == 404
        ok = client.patch(
            f"/api/projects/{pid}/components/{cid}",
            json={"properties": {"script": "run.sh"}},
            headers={"X-Sharin-Client": "../not an id"},
        )
        assert ok.status_code == 200
        m = _next_edit(two)
        assert (m["seq"], m["what"], m["component"], m["by"]) == (seq + 2, "properties", cid, None)
        assert _next_edit(one)["seq"] == seq + 2
        client.put(f"/api/projects/{pid}/files/content", params={"path": "t/run.sh"}, content="")
        assert _next_edit(one)["what"] == _next_edit(two)["what"] == "file"
        assert (
            client.post(f"/api/projects/{pid}/clean", json={"unsaved": "keep"}).status_code == 200
        )
        assert _next_edit(one)["what"] == "clean"
    with client.websocket_connect(url) as late:
        snap = late.receive_json()
        assert snap["edit"] == snap["seq"] == seq + 4  # the last edit's number


def test_a_rename_tells_the_tabs_the_new_id(client: TestClient) -> None:
    pid = _new(client, "before")["id"]
    with client.websocket_connect(f"ws://127.0.0.1:8123/api/projects/{pid}/events") as ws:
        ws.receive_json()
        r = client.post(f"/api/projects/{pid}/rename", json={"name": "after"})
        assert r.status_code == 200
        m = _next_edit(ws)
    assert m["what"] == "rename" and m["id"] == r.json()["id"] != pid


def test_an_edit_made_outside_the_server_is_seen_by_the_tabs(
    client: TestClient, workspace: Path
) -> None:
    import subprocess
    import sys

    pid = _new(client)["id"]
    root = workspace / "demo.wheel"
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    with client.websocket_connect(url) as ws:
        ws.receive_json()  # sent once the feed looked at the files: what changes now is seen
        cmd = [sys.executable, "-m", "sharin", "add", str(root), "task", "cli", "--script-text", "true"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        m = _next_edit(ws)
        assert (m["what"], m["by"]) == ("external", None)
        names = [c["name"] for c in client.get(f"/api/projects/{pid}").json()["workflow"]["children"]]  # fmt: skip
        assert names == ["cli"]
        # a component's file saved while another command holds the project's edit lock: an
        # edit, not a run's writes
        from sharin import model

        cfile = root / "cli" / "cmp.wheel.json"
        data = json.loads(cfile.read_text())
        data["description"] = "from an editor"
        tmp = cfile.with_name("cmp.wheel.json.tmp")
        with model.edit_lock(root):
            tmp.write_text(json.dumps(data))
            os.replace(tmp, cfile)
            assert _next_edit(ws)["what"] == "external"


def test_a_run_between_two_beats_is_no_edit(
    client: TestClient, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy machine a whole run can fall between two of the feed's looks at the engine's
    lock: the journal tells that its writes were a run's, not an edit made outside."""
    import subprocess
    import sys

    from sharin.interfaces.server import _feed

    pid = _new(client)["id"]
    root = workspace / "demo.wheel"
    _task(client, pid, "t", "echo hi > out.txt\n")
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    with client.websocket_connect(url) as ws:
        edit = ws.receive_json()["edit"]
        monkeypatch.setattr(_feed, "_running", lambda _root: False)  # every beat misses it
        cmd = [sys.executable, "-m", "sharin", "run", str(root)]
        subprocess.run(cmd, check=True, capture_output=True)
        while True:  # the run's end, read from the journal at a beat that saw the files too
            m = ws.receive_json()
            assert m["type"] != "edit", m
            if (
                m["type"] == "change"
                and m["event"]["key"] == ""
                and m["event"]["state"] != "running"
            ):
                break
        time.sleep(3 * _feed.POLL)
        with client.websocket_connect(url) as late:
            assert late.receive_json()["edit"] == edit  # no edit since
        # and an edit made outside after the run still is one
        cmd = [sys.executable, "-m", "sharin", "add", str(root), "task", "cli", "--script-text", "true"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        assert _next_edit(ws)["what"] == "external"


# ---------------------------------------------------------------------- SSH prompts of UI runs
def _until_type(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        m = ws.receive_json()
        if m["type"] == kind:
            return m  # type: ignore[no-any-return]
        if m["type"] == "change" and m["event"]["kind"] == "run" and not m["event"]["key"]:
            assert m["event"]["state"] not in ("failed", "finished"), f"no {kind}: {m}"


@pytest.mark.sshd
@pytest.mark.slow
def test_a_runs_passphrase_is_asked_in_the_projects_tabs_and_nobody_answering_fails_it(
    workspace: Path, tmp_path: Path, config_dir: Path
) -> None:
    from tests.remote.hostshell import encrypted_key, host_entry, own_dir

    key = encrypted_key(tmp_path)
    config = ServerConfig(workspace=workspace, token=TOKEN, prompt_timeout=3)
    with own_dir("ui-prompt") as remote:
        with TestClient(create_app(config), base_url="http://127.0.0.1:8123") as client:
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            entry = host_entry("ci", keyFile=str(key), path=str(remote))
            assert client.post("/api/hosts", json=entry).status_code == 201
            pid = _new(client)["id"]
            c = _task(client, pid, "t", "hostname > where.txt\n")
            r = client.patch(
                f"/api/projects/{pid}/components/{c['id']}", json={"properties": {"host": "ci"}}
            )
            assert r.status_code == 200, r.text
            url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
            with client.websocket_connect(url) as one, client.websocket_connect(url) as two:
                one.receive_json(), two.receive_json()
                assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
                m = _until_type(one, "ask")
                assert m == _until_type(two, "ask")  # every tab is asked the same
                assert "passphrase" in m["prompt"] and m["echo"] is False
                two.send_json({"type": "answer", "id": m["id"] + 1000, "text": "wrong id"})
                one.send_json({"type": "answer", "id": m["id"], "text": "pass-phrase"})
                assert _until_type(two, "asked") == {"type": "asked", "id": m["id"]}
                assert _until_type(one, "asked")["id"] == m["id"]
            s = _wait_state(client, pid, "finished", timeout=60)
            assert {t["key"]: t["state"] for t in s["tasks"]} == {"t": "finished"}
            stored = "".join(p.read_text() for p in config_dir.rglob("*") if p.is_file())
            assert "pass-phrase" not in stored
            # nobody to answer within the limit: the login fails saying what to do
            assert client.post(f"/api/projects/{pid}/clean", json={"unsaved": "keep"}).is_success
            assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
            s = _wait_state(client, pid, "failed", timeout=60)
            (t,) = s["tasks"]
            assert t["state"] == "failed"
            assert "no one answered the passphrase prompt in the UI" in t["message"]
            assert "open the project's page and run again" in t["message"]
            assert "Traceback" not in t["message"]
            logs = client.get(f"/api/projects/{pid}/engine-log").text
            assert "pass-phrase" not in logs


def test_a_saved_parameter_setting_is_an_edit_for_the_tabs_and_a_dry_run_is_not(
    client: TestClient, workspace: Path
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    inner = client.post(
        f"/api/projects/{pid}/components", json={"type": "task", "name": "t", "parent": ps["id"]}
    ).json()
    (workspace / "demo.wheel" / "sweep" / "input.txt").write_text("n={{ n }}\n")
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    with client.websocket_connect(f"ws://127.0.0.1:8123/api/projects/{pid}/events") as ws:
        seq = ws.receive_json()["seq"]
        assert client.put(url, params={"dry_run": "true"}, json=_setting(inner["id"])).is_success
        assert client.put(url, json=_setting(inner["id"])).is_success
        m = _next_edit(ws)
    assert (m["seq"], m["what"], m["component"]) == (seq + 1, "parameters", ps["id"])


@pytest.mark.parametrize("name", ["/etc/passwd", "../../outside.json", "a/../../x.json"])
def test_a_parameter_file_named_outside_its_component_is_neither_read_nor_written(
    client: TestClient, workspace: Path, name: str
) -> None:
    pid = _new(client)["id"]
    ps = _study(client, pid)
    cfile = workspace / "demo.wheel" / "sweep" / "cmp.wheel.json"
    data = json.loads(cfile.read_text())
    data["parameterFile"] = name  # written by hand: the property endpoint refuses it
    cfile.write_text(json.dumps(data))
    before = sorted(str(p) for p in (workspace / "demo.wheel").rglob("*"))
    url = f"/api/projects/{pid}/components/{ps['id']}/parameters"
    r = client.get(url)
    assert r.status_code == 403 and "[parameterFile]" in r.json()["error"]
    r = client.put(url, json={**_setting(""), "gather": []})
    assert r.status_code == 403 and "[parameterFile]" in r.json()["error"]
    assert sorted(str(p) for p in (workspace / "demo.wheel").rglob("*")) == before
