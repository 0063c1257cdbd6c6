"""remotehost.json: where it is read, and the connection fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharin.errors import ProjectError
from sharin.model import HostConfig, load_hosts
from sharin.model._hosts import config_dirs, hosts_file


def test_connection_fields_and_their_defaults() -> None:
    h = HostConfig.from_json({"name": "a", "host": "h"})
    assert (h.renew_interval, h.ready_timeout, h.keepalive_interval, h.max_sessions) == (
        0.0,
        20.0,
        30.0,
        10,
    )
    assert h.known_hosts is None
    h = HostConfig.from_json(
        {
            "name": "a",
            "host": "h",
            "renewInterval": "5",
            "readyTimeout": 3000,
            "keepaliveInterval": "10000",
            "maxSessions": 4,
            "knownHostsFile": "~/kh",
        }
    )
    assert (h.renew_interval, h.ready_timeout, h.keepalive_interval, h.max_sessions) == (
        5.0,
        3.0,
        10.0,
        4,
    )
    assert h.known_hosts == "~/kh"


@pytest.mark.parametrize(
    ("field", "value"),
    [("renewInterval", -1), ("readyTimeout", "soon"), ("maxSessions", 0), ("knownHostsFile", 3)],
)
def test_a_wrong_connection_field_is_named(field: str, value: object) -> None:
    with pytest.raises(ProjectError, match=rf"\[a\.{field}\]") as e:
        HostConfig.from_json({"name": "a", "host": "h", field: value})
    assert "NoneType" not in str(e.value)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["renewInterval", "readyTimeout", "keepaliveInterval", "maxSessions"]),
        st.one_of(st.integers(-5, 10**6), st.text(max_size=4), st.none(), st.booleans()),
    )
)
def test_any_connection_field_is_read_or_named(fields: dict[str, object]) -> None:
    try:
        h = HostConfig.from_json({"name": "a", "host": "h", **fields})
    except ProjectError as e:
        assert "[a." in str(e) and "Traceback" not in str(e)
        return
    assert h.max_sessions >= 1 and h.ready_timeout > 0 and h.renew_interval >= 0


def test_wheels_file_is_read_beside_sharins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SHARIN_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    own, wheel = tmp_path / "xdg" / "sharin", tmp_path / ".wheel"
    for d in (own, wheel):
        d.mkdir(parents=True)
    (wheel / "remotehost.json").write_text(
        json.dumps(
            [
                {"id": "1", "name": "w", "host": "wh", "username": "u", "renewInterval": 0},
                {"name": "both", "host": "from-wheel"},
            ]
        )
    )
    (own / "remotehost.json").write_text(json.dumps([{"name": "both", "host": "from-sharin"}]))
    assert config_dirs() == [own, wheel]
    assert hosts_file() == own / "remotehost.json"
    hosts = load_hosts()
    assert hosts["w"].user == "u" and hosts["both"].host == "from-sharin"
