"""Commands on the SSH host of ``scripts/services``, through OpenSSH (not sharin's transport)."""

from __future__ import annotations

import subprocess

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
