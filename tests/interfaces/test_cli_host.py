"""`sharin host add/list/show/test/remove` on remotehost.json ($SHARIN_CONFIG_DIR in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..conftest import Cli
from ..services.available import service_env


def test_add_list_show_and_remove(cli: Cli, config_dir: Path) -> None:
    cli(
        "host",
        "add",
        "fugaku",
        "--host",
        "login.example",
        "--user",
        "u01",
        "--port",
        "2222",
        "--path",
        "/work/u01",
        "--job-scheduler",
        "Fugaku",
        "--queue",
        "small",
        "--queue",
        "large",
        "--set",
        "numJob=3",
        "--set",
        "sharedHost=",
    )
    entries = json.loads((config_dir / "remotehost.json").read_text())
    [e] = entries
    assert e["host"] == "login.example" and e["port"] == 2222 and e["numJob"] == 3
    assert e["queue"] == ["small", "large"] and e["id"]
    listed = json.loads(cli("host", "list", "--json").output)
    assert [h["name"] for h in listed] == ["fugaku"]
    assert listed[0]["file"] == str(config_dir / "remotehost.json")
    assert "login.example" in cli("host", "list").output
    shown = json.loads(cli("host", "show", "fugaku", "--json").output)
    assert shown["user"] == "u01" and shown["jobScheduler"] == "Fugaku"
    r = cli("host", "add", "fugaku", "--host", "x", code=2)
    assert "exists already" in r.output
    r = cli("host", "remove", "fugaku", code=2)
    assert "--yes" in r.output
    cli("host", "remove", "fugaku", "--yes")
    assert json.loads((config_dir / "remotehost.json").read_text()) == []
    assert "no remote hosts" in cli("host", "list").output


def test_wrong_input_is_one_clear_error(cli: Cli, config_dir: Path) -> None:
    r = cli("host", "add", "a", "--host", "h", "--set", "numJob=-1", code=2)
    assert "[a.numJob]" in r.output and "Traceback" not in r.output
    assert not (config_dir / "remotehost.json").exists()
    r = cli("host", "show", "nope", code=2)
    assert "no host 'nope'" in r.output and "sharin host add" in r.output
    (config_dir / "remotehost.json").write_text("{")
    r = cli("host", "list", code=2)
    assert "remotehost.json" in r.output and "Traceback" not in r.output


def test_a_wheel_users_file_works_unchanged(cli: Cli, config_dir: Path) -> None:
    wheel = [
        {
            "id": "2f3c",
            "name": "cluster",
            "host": "c.example",
            "username": "alice",
            "port": "22",
            "path": "/home/alice",
            "numJob": "5",
            "renewInterval": 0,
            "renewDelay": 0,
            "statusCheckInterval": 10,
            "readyTimeout": 0,
            "keepaliveInterval": 30000,
            "useBulkjob": False,
            "sharedHost": "",
        }
    ]
    (config_dir / "remotehost.json").write_text(json.dumps(wheel))
    shown = json.loads(cli("host", "show", "cluster", "--json").output)
    assert shown["username"] == "alice" and shown["renewDelay"] == 0
    cli("host", "add", "other", "--host", "o")
    after = json.loads((config_dir / "remotehost.json").read_text())
    assert after[0] == wheel[0]  # untouched


@pytest.mark.sshd
def test_host_test_on_the_test_host(cli: Cli) -> None:
    env = service_env()
    cli(
        "host",
        "add",
        "ci",
        "--host",
        env["TEST_SSH_HOST"],
        "--user",
        env["TEST_SSH_USER"],
        "--key-file",
        env["TEST_SSH_KEY"],
        "--set",
        f"knownHostsFile={env['TEST_SSH_KNOWN_HOSTS']}",
    )
    out = json.loads(cli("host", "test", "ci", "--json").output)
    assert out["ok"] is True and out["round_trip_seconds"] < 5
    assert out["schedulers"].get("sbatch", "").endswith("/sbatch")  # Slurm's on the test host
    text = cli("host", "test", "ci").output
    assert "round trip" in text and "sbatch" in text


def test_host_test_of_an_unreachable_host_names_it(cli: Cli) -> None:
    cli("host", "add", "gone", "--host", "127.0.0.1", "--port", "1", "--set", "readyTimeout=2000")
    r = cli("host", "test", "gone", code=1)
    assert "host 'gone'" in r.output and "cannot connect" in r.output
    assert "Traceback" not in r.output


def test_host_test_of_a_local_transport_host_runs_here(cli: Cli) -> None:
    cli("host", "add", "login", "--host", "this-node", "--set", "transport=local")
    out = json.loads(cli("host", "test", "login", "--json").output)
    assert out["ok"] is True and out["where"] == "this machine"
    assert set(out["schedulers"]) <= {"sbatch", "qsub", "bsub", "pjsub"}
