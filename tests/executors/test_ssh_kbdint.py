"""Keyboard-interactive one-time codes reach the caller's ``ask`` (an asyncssh server here: the
test sshd allows keys only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest

from sharin.errors import TransportError
from sharin.executors._ssh import SSHPool, SSHTransport
from sharin.model import HostConfig

CODE = "482913"


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        return ("", "Enter the code from your token", "", [("Code: ", False)])

    def validate_kbdint_response(self, username: str, responses: list[str]) -> bool:
        return list(responses) == [CODE]


async def _answer(process: asyncssh.SSHServerProcess[str]) -> None:
    process.stdout.write(f"ran {process.command}\n")
    process.exit(0)


def test_a_one_time_code_is_asked_for_and_never_kept(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    asked: list[tuple[str, bool]] = []

    def ask(prompt: str, echo: bool) -> str:
        asked.append((prompt, echo))
        return CODE

    async def go() -> tuple[str, str]:
        server = await asyncssh.create_server(
            _Server, "127.0.0.1", 0, server_host_keys=[key], process_factory=_answer
        )
        port = server.sockets[0].getsockname()[1]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {key.export_public_key().decode()}")
        cfg = HostConfig(
            "otp", "127.0.0.1", user="u", port=port, known_hosts=str(known), ready_timeout=5
        )
        pool = SSHPool()
        try:
            out = (await SSHTransport(cfg, ask=ask, pool=pool).run("true")).stdout
            await pool.close()
            pool = SSHPool()
            with pytest.raises(TransportError) as e:
                await SSHTransport(cfg, pool=pool, retry_for=0.5).run("true")  # nobody to ask
            return out, str(e.value)
        finally:
            await pool.close()
            server.close()
            await server.wait_closed()

    with pytest.MonkeyPatch.context() as m:
        m.setenv("HOME", str(tmp_path / "home"))  # no keys, no ~/.ssh/config
        m.delenv("SSH_AUTH_SOCK", raising=False)
        (tmp_path / "home").mkdir()
        out, refused = asyncio.run(go())
    assert out.startswith("ran /bin/sh -c")
    assert asked == [("Enter the code from your token\nCode: ", False)]
    assert "host 'otp'" in refused and "refused the login" in refused
