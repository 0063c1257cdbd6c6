"""A project is its own git repository; remote hosts come from WHEEL's remotehost.json."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import sharin
from sharin import Project, ProjectError
from sharin.model import HostConfig, config_dir, git, load_hosts, local_job_limit

from ..helpers import write_json


def porcelain(root: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def test_commit_all_only_when_something_changed(project: Project) -> None:
    assert not git.is_dirty(project.root)
    assert git.commit_all(project.root, "nothing") is False
    sharin.add_task(project, "a", "true")
    assert git.is_dirty(project.root)
    assert git.commit_all(project.root, "add a") is True
    assert porcelain(project.root) == ""


def test_revert_restores_tracked_files(project: Project) -> None:
    sharin.add_task(project, "a", "true")
    git.commit_all(project.root, "add a")
    before = (project.root / "a" / "cmp.wheel.json").read_text()
    sharin.set_property(project, "a", "description", "changed")
    git.revert(project.root)
    assert (project.root / "a" / "cmp.wheel.json").read_text() == before


def test_clean_removes_run_outputs_but_keeps_history(project: Project) -> None:
    sharin.add_task(project, "a", "echo x > out.txt")
    sharin.add_task(project, "b", "echo x > out.txt")
    git.commit_all(project.root, "add")
    assert sharin.run(project).ok
    (project.root / "wheel.log").write_text("keep")
    sharin.clean(project, "a")
    assert not (project.root / "a" / "out.txt").exists()
    assert (project.root / "b" / "out.txt").exists()
    sharin.clean(project)
    assert not (project.root / "b" / "out.txt").exists()
    assert (project.root / ".sharin" / "journal.sqlite").exists()
    assert (project.root / "wheel.log").read_text() == "keep"


def test_git_operations_need_a_repository(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "nogit", git=False)
    for op in (git.is_dirty, git.revert, sharin.clean):
        with pytest.raises(ProjectError, match="not a git repository of its own"):
            op(p.root)
    with pytest.raises(ProjectError, match="git init"):
        sharin.save(p)


def test_load_hosts(config_dir: Path) -> None:
    assert load_hosts() == {}
    write_json(
        config_dir / "remotehost.json",
        [
            {
                "name": "fugaku",
                "host": "login.fugaku.example",
                "username": "u01",
                "port": "2222",
                "path": "/home/u01/work",
                "jobScheduler": "Fugaku",
                "numJob": 3,
                "queue": "small, large ,",
                "keyFile": "~/.ssh/id",
                "sharedHost": "",
            },
            {"name": "bare"},
        ],
    )
    hosts = load_hosts()
    fugaku = hosts["fugaku"]
    assert fugaku == HostConfig(
        name="fugaku",
        host="login.fugaku.example",
        user="u01",
        port=2222,
        path="/home/u01/work",
        key_file="~/.ssh/id",
        job_scheduler="Fugaku",
        num_job=3,
        queues=("small", "large"),
    )
    assert fugaku.raw["sharedHost"] == ""
    assert hosts["bare"].host == "bare" and hosts["bare"].port == 22


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "malformed JSON at line 1, column 3"),
        ('{"name": "x"}', "must hold a JSON array"),
        ('[{"host": "h"}]', "entry 0.name\\]: is missing; set it to a label"),
        ('[{"name": "x", "port": "ssh"}]', "x.port\\]: must be a whole number from 1 to 65535"),
    ],
)
def test_bad_remotehost_json(config_dir: Path, text: str, message: str) -> None:
    (config_dir / "remotehost.json").write_text(text)
    with pytest.raises(ProjectError, match=message) as err:
        load_hosts()
    assert "remotehost.json" in str(err.value)


def test_config_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHARIN_CONFIG_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("WHEEL_CONFIG_DIR", str(tmp_path / "w"))
    assert config_dir() == tmp_path / "s"
    monkeypatch.delenv("SHARIN_CONFIG_DIR")
    assert config_dir() == tmp_path / "w"
    monkeypatch.delenv("WHEEL_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_dir() == tmp_path / "home" / ".config" / "sharin"
    (tmp_path / "home" / ".wheel").mkdir(parents=True)  # a WHEEL user's directory is used
    assert config_dir() == tmp_path / "home" / ".wheel"


def test_queue_may_be_a_list_as_open_wheel_2025_writes_it(config_dir: Path) -> None:
    write_json(
        config_dir / "remotehost.json",
        [
            {"name": "new", "host": "h", "queue": ["small", " large ", ""]},
            {"name": "old", "host": "h", "queue": "small,large"},
            {"name": "none", "host": "h", "queue": None},
        ],
    )
    hosts = load_hosts()
    assert hosts["new"].queues == ("small", "large")
    assert hosts["old"].queues == ("small", "large")
    assert hosts["none"].queues == ()


def test_every_wrong_field_of_remotehost_json_is_listed(config_dir: Path) -> None:
    write_json(
        config_dir / "remotehost.json",
        [
            {"name": "a", "host": "h", "port": 0, "numJob": "many", "queue": {"q": 1}},
            {"name": "b", "useStepjob": "yes", "statusCheckInterval": -1},
            "c",
            {"name": "a"},
        ],
    )
    with pytest.raises(ProjectError) as err:
        load_hosts()
    msg = str(err.value)
    path = config_dir / "remotehost.json"
    assert msg.splitlines() == [
        f"7 problems in {path}:",
        "  - [a.port]: must be a whole number from 1 to 65535 (or empty), not 0",
        '  - [a.numJob]: must be a whole number ≥ 0 (or empty), not "many"',
        '  - [a.queue]: must be a list of strings or a string (or null), not {"q": 1}',
        "  - [b.statusCheckInterval]: must be a number ≥ 0 (or empty), not -1",
        '  - [b.useStepjob]: must be true or false (or null), not "yes"',
        "  - [entry 2]: must be an object with a name (the label tasks use as host), not a string",
        "  - [a.name]: is the name of an earlier entry too; rename one",
    ]
    assert "Traceback" not in msg and "None" not in msg


def test_server_json_numbers_are_checked(config_dir: Path) -> None:
    write_json(config_dir / "server.json", {"numJobOnLocal": "2"})
    assert local_job_limit() == 2
    write_json(config_dir / "server.json", {"numLocalJob": 3})  # OPEN-WHEEL 2025's name
    assert local_job_limit() == 3
    write_json(config_dir / "server.json", {"numJobOnLocal": [1]})
    with pytest.raises(ProjectError, match=r"server.json \[numJobOnLocal\]: must be a whole"):
        local_job_limit()
    write_json(config_dir / "server.json", [])
    with pytest.raises(ProjectError, match="must hold a JSON object"):
        local_job_limit()


def test_numbers_written_as_strings_are_read_as_numbers(config_dir: Path) -> None:
    write_json(
        config_dir / "remotehost.json",
        [
            {
                "name": "a",
                "numJob": "3",
                "maxStatusCheckError": "4",
                "statusCheckInterval": "2.5",
                "port": "22",
                "useStepjob": "false",
            }
        ],
    )
    a = load_hosts()["a"]
    assert (a.num_job, a.status_check_interval, a.port) == (3, 2.5, 22)
    assert a.raw["maxStatusCheckError"] == 4 and a.raw["useStepjob"] is False
