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
        assert one.receive_json()["type"] == "snapshot" and two.receive_json()["seq"] == 0
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
    import subprocess

    from tests.services.available import service_env

    env = service_env()
    key = tmp_path / "enc"
    key.write_bytes(Path(env["TEST_SSH_KEY"]).read_bytes())
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "pass-phrase", "-f", key], check=True)
    entry = {
        "name": "ci",
        "host": env["TEST_SSH_HOST"],
        "port": int(env["TEST_SSH_PORT"]),
        "username": env["TEST_SSH_USER"],
        "keyFile": str(key),
        "knownHostsFile": env["TEST_SSH_KNOWN_HOSTS"],
    }
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


def test_events_in_batches_come_as_lists_of_every_change_in_order(
    client: TestClient, workspace: Path
) -> None:
    import sharin

    p = sharin.new_project(workspace / "wide")
    with p.batch():
        for i in range(40):
            sharin.add_task(p, f"t{i}", "true")
    pid = next(x["id"] for x in client.get("/api/projects").json() if x["name"] == "wide")
    url = f"ws://127.0.0.1:8123/api/projects/{pid}/events"
    with client.websocket_connect(f"{url}?batch=true") as ws, client.websocket_connect(url) as one:
        first = ws.receive_json()
        assert isinstance(first, list) and [m["type"] for m in first] == ["snapshot"]
        assert one.receive_json()["type"] == "snapshot"  # without batch=true: one message a frame
        assert client.post(f"/api/projects/{pid}/run", json={}).status_code == 202
        frames: list[list[dict[str, Any]]] = []
        end = ("", "finished")
        while (
            not frames or (frames[-1][-1]["event"]["key"], frames[-1][-1]["event"]["state"]) != end
        ):
            frames.append(ws.receive_json())
            assert isinstance(frames[-1], list) and frames[-1]
        singles = [one.receive_json() for _ in range(sum(len(f) for f in frames))]
    got = [m for f in frames for m in f]
    assert all(m["type"] == "change" for m in got)
    assert [m["seq"] for m in got] == list(range(1, len(got) + 1))  # none lost, none twice
    assert got[-1]["event"]["state"] == "finished"
    assert {m["event"]["key"] for m in got if m["event"]["state"] == "finished"} == {
        "",
        *(f"t{i}" for i in range(40)),
    }
    assert len(frames) < len(got)  # changes published together were sent together
    assert singles == got  # the same messages, one a frame
    _wait_state(client, pid, "finished")
    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect(f"{url}?batch=maybe") as bad:
            bad.receive_json()
    assert e.value.code == 1008
