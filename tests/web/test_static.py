"""The UI's files at `/`: the bundle, index.html for the addresses of its screens, the token
gate in front, nothing outside the bundle, and plain words when it is not built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharin.interfaces.server import ServerConfig, create_app
from sharin.interfaces.server._auth import TokenGate
from sharin.interfaces.server._static import add_static_routes

TOKEN = "static-t0ken"


def _client(directory: Path) -> TestClient:
    app = FastAPI()

    @app.get("/api/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    add_static_routes(app, directory)
    gate = TokenGate(app, TOKEN)
    c = TestClient(gate, base_url="http://127.0.0.1:8000")
    c.headers["Authorization"] = f"Bearer {TOKEN}"
    return c


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    d = tmp_path / "static"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_text("<html>the app</html>")
    (d / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    (d / "assets" / "link.txt").symlink_to(tmp_path / "secret.txt")
    return d


@pytest.fixture
def client(bundle: Path) -> Iterator[TestClient]:
    with _client(bundle) as c:
        yield c


def test_the_bundle_is_served_and_every_screen_address_gets_index_html(
    client: TestClient,
) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.text == "<html>the app</html>"
    assert r.headers["cache-control"] == "no-cache"
    r = client.get("/assets/index-abc.js")
    assert r.text == "console.log(1)" and "immutable" in r.headers["cache-control"]
    assert client.get("/p/some/graph").text == "<html>the app</html>"
    assert client.get("/api/ping").json() == {"pong": True}  # the API comes first


def test_an_unknown_api_path_is_a_json_404_not_the_page(client: TestClient) -> None:
    r = client.get("/api/nothing/here")
    assert r.status_code == 404 and "no such API endpoint" in r.json()["error"]


@pytest.mark.parametrize(
    "path",
    ["/assets/link.txt", "/../secret.txt", "/assets/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt"],
)
def test_no_file_outside_the_bundle_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert "outside" not in r.text


def test_the_page_needs_the_token_too(bundle: Path) -> None:
    with _client(bundle) as c:
        del c.headers["Authorization"]
        assert c.get("/").status_code == 401
        assert c.get("/assets/index-abc.js").status_code == 401
        r = c.get("/", params={"token": TOKEN})
        assert r.status_code == 200 and "sharin_token=" in r.headers["set-cookie"]


def test_without_a_bundle_the_page_says_how_to_build_it(tmp_path: Path) -> None:
    with _client(tmp_path / "none") as c:
        r = c.get("/")
        assert r.status_code == 503
        assert "npm run build" in r.text and "npm ci" in r.text and "Node.js 20" in r.text
        assert c.get("/p/x/graph").status_code == 503


def test_the_server_serves_the_ui_after_its_api(tmp_path: Path) -> None:
    app = create_app(ServerConfig(workspace=tmp_path, token=TOKEN))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        assert c.get("/api/projects").json() == []
        assert c.get("/openapi.json").json()["info"]["title"] == "sharin"
        assert c.get("/").status_code in (200, 503)  # built or not: the UI's answer
        assert "/{rel}" not in c.get("/openapi.json").json()["paths"]
