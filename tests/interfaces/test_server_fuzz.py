"""The UI server's API fuzzed from its own OpenAPI description: no request gives a server error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from sharin.interfaces.server import ServerConfig, create_app

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _app(workspace: Path) -> Any:
    return create_app(
        ServerConfig(workspace=workspace, token=TOKEN, hosts=("testserver",), upload_limit=1 << 16)
    )


def _schema() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return schemathesis.openapi.from_asgi("/openapi.json", _app(Path(tmp)), headers=AUTH)


schema = _schema()


@pytest.fixture
def served(tmp_path: Path) -> Any:
    ws = tmp_path / "ws"
    ws.mkdir()
    app = _app(ws)
    with TestClient(app) as c:
        c.headers.update(AUTH)
        pid = c.post("/api/projects", json={"name": "fuzz"}).json()["id"]
        cid = c.post(f"/api/projects/{pid}/components", json={"type": "task", "name": "a"}).json()[
            "id"
        ]
    return app, pid, cid


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_gives_a_server_error(case: Any, served: Any) -> None:
    app, pid, cid = served
    # the project and component that exist, so that requests reach past the lookup
    if case.path_parameters and "pid" in case.path_parameters:
        case.path_parameters["pid"] = pid
        if "cid" in case.path_parameters and hash(str(case.body)) % 2:
            case.path_parameters["cid"] = cid
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    cookies = kwargs.pop("cookies", None) or {}
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    with TestClient(app, cookies=cookies) as c:
        c.headers.update(AUTH)
        r = c.request(**kwargs)
    assert r.status_code < 500, (case.method, case.formatted_path, r.status_code, r.text[:500])
