"""The SSH host of ``scripts/services`` for tests: commands on it through OpenSSH (not sharin's
transport), a host entry ``ci-ssh`` that reaches it, and directories of a test's own there."""

from __future__ import annotations

import contextlib
import json
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from ..services.available import service_env


def ssh(command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``command`` on the SSH host, as its test user."""
    env = service_env()
    return subprocess.run(
        [
            "ssh",
            "-i",
            env["TEST_SSH_KEY"],
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={env['TEST_SSH_KNOWN_HOSTS']}",
            "-p",
            env["TEST_SSH_PORT"],
            f"{env['TEST_SSH_USER']}@{env['TEST_SSH_HOST']}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def home() -> Path:
    """The test user's home on the host: a local path too (the host shares this file system)."""
    return Path(pwd.getpwnam(service_env()["TEST_SSH_USER"]).pw_dir)


def write_host(config_dir: Path, **fields: object) -> None:
    """``remotehost.json`` in ``config_dir`` with one host, ``ci-ssh``: the SSH host as its test
    user with the test key and known hosts, and ``fields`` (``path``, ``jobScheduler`` …)."""
    env = service_env()
    entry = {
        "name": "ci-ssh",
        "host": env["TEST_SSH_HOST"],
        "port": int(env["TEST_SSH_PORT"]),
        "username": env["TEST_SSH_USER"],
        "keyFile": env["TEST_SSH_KEY"],
        "knownHostsFile": env["TEST_SSH_KNOWN_HOSTS"],
        **fields,
    }
    (config_dir / "remotehost.json").write_text(json.dumps([entry]))


@contextlib.contextmanager
def own_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory ``~/sharin-jobs/<prefix>-<random>`` on the host; afterwards what still
    runs from it there is killed and it is removed."""
    path = home() / "sharin-jobs" / f"{prefix}-{secrets.token_hex(4)}"
    ssh(f"mkdir -p {path}")
    try:
        yield path
    finally:
        ssh(f"pkill -KILL -f -- {path}/ || true", check=False)
        shutil.rmtree(path, ignore_errors=True)


def encrypted_key(directory: Path, passphrase: str = "pass-phrase") -> Path:
    """A copy of the test key in ``directory`` (``enc``), encrypted with ``passphrase``: a login
    with it has to be answered."""
    key = directory / "enc"
    key.write_bytes(Path(service_env()["TEST_SSH_KEY"]).read_bytes())
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", passphrase, "-f", key], check=True)
    return key


def host_entry(name: str, **fields: object) -> dict[str, object]:
    """A host entry (WHEEL 2022's form) named ``name`` for the SSH host as its test user, with
    the test key and known hosts unless ``fields`` say otherwise."""
    env = service_env()
    return {
        "name": name,
        "host": env["TEST_SSH_HOST"],
        "port": int(env["TEST_SSH_PORT"]),
        "username": env["TEST_SSH_USER"],
        "keyFile": env["TEST_SSH_KEY"],
        "knownHostsFile": env["TEST_SSH_KNOWN_HOSTS"],
        **fields,
    }
