"""SSHTransport and its connection pool against the real sshd of scripts/services (marker sshd)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharin.errors import TransportError
from sharin.executors._ssh import SSHPool, SSHTransport
from sharin.model import HostConfig

from ..services.available import SCRIPTS, service_env

pytestmark = pytest.mark.sshd

T = TypeVar("T")


def run_with(pool: SSHPool, make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine in a fresh event loop, closing the pool's connections after it."""

    async def go() -> T:
        try:
            return await make()
        finally:
            await pool.close()

    return asyncio.run(go())


@pytest.fixture
def host() -> HostConfig:
    env = service_env()
    return HostConfig(
        name="testhost",
        host=env["TEST_SSH_HOST"],
        user=env["TEST_SSH_USER"],
        port=int(env["TEST_SSH_PORT"]),
        key_file=env["TEST_SSH_KEY"],
        known_hosts=env["TEST_SSH_KNOWN_HOSTS"],
        ready_timeout=5.0,
    )


@pytest.fixture
def remote(host: HostConfig) -> Iterator[str]:
    """A fresh directory of the test user's on the host."""
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)
    d = run_with(pool, lambda: t.run("mktemp -d ~/sharin-test.XXXXXX")).stdout.strip()
    assert d.startswith("/")
    yield d
    pool2 = SSHPool()
    t2 = SSHTransport(host, pool=pool2)
    run_with(pool2, lambda: t2.run(f"rm -rf -- '{d}'"))


def services(script: str, *args: str) -> None:
    subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, **service_env()},
    )


def test_run_with_cwd_env_stdin_exit_code_and_timeout(host: HostConfig, remote: str) -> None:
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)

    async def go() -> None:
        r = await t.run(
            'cat; echo "$FOO"; pwd; echo err >&2; exit 3',
            cwd=remote,
            env={"FOO": "a 'b' $c"},
            stdin="in\n",
        )
        assert (r.returncode, r.stderr) == (3, "err\n")
        assert r.stdout.splitlines() == ["in", "a 'b' $c", remote]
        assert (await t.run("true")).returncode == 0
        assert (await t.run(f"cd {remote}/none")).returncode != 0
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"sleep did not answer within 0.5 s") as e:
            await t.run("sleep 317", timeout=0.5)
        assert e.value.host == "testhost" and time.monotonic() - started < 5
        await asyncio.sleep(0.3)
        left = await t.run("ps -eo args | grep '^sleep 31[7]' || true", idempotent=True)
        assert left.stdout == ""  # the command was ended on the host
        lines = [x async for x in t.stream("echo a; echo b >&2; printf c", cwd=remote)]
        assert lines == ["a", "b", "c"]

    run_with(pool, go)


ODD = ["space name", "-dash", "ünï", "quote'\"", "star*", "new\nline"]


def test_put_and_get_a_tree_with_links_and_odd_names(
    host: HostConfig, remote: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "sub dir" / "deep").mkdir(parents=True)
    for i, name in enumerate(ODD):
        (src / name).write_text(f"{i}\n")
    (src / "sub dir" / "deep" / "big").write_bytes(os.urandom(300_000))
    (src / "link").symlink_to("space name")
    (src / "dirlink").symlink_to("sub dir")
    (src / "empty").mkdir()
    back = tmp_path / "back"
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)

    async def go() -> None:
        await t.put_tree(src, f"{remote}/tree")
        assert await t.listdir(f"{remote}/tree") == sorted(
            [*ODD, "sub dir", "link", "dirlink", "empty"]
        )
        link = await t.stat(f"{remote}/tree/link")
        assert link is not None and link.is_link
        await t.get_tree(f"{remote}/tree", back)

    run_with(pool, go)
    for name in ODD:
        assert (back / name).read_text() == (src / name).read_text()
    assert (back / "sub dir" / "deep" / "big").read_bytes() == (
        src / "sub dir" / "deep" / "big"
    ).read_bytes()
    assert os.readlink(back / "link") == "space name"
    assert os.readlink(back / "dirlink") == "sub dir"
    assert (back / "empty").is_dir()


def test_stage_in_and_out_follow_wheels_rules(
    host: HostConfig, remote: str, tmp_path: Path
) -> None:
    root = tmp_path / "p.wheel"
    task = root / "task"
    (task / "sub").mkdir(parents=True)
    (root / "prj.wheel.json").write_text("{}")
    (root / "shared.dat").write_text("shared")
    (task / "cmp.wheel.json").write_text("{}")
    (task / "run.sh").write_text("echo hi > out.txt; mkdir -p res; echo r > res/a; echo x > b.log")
    (task / "in.dat").symlink_to("../shared.dat")
    (task / "sub" / "x").write_text("x")
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)
    back = root / "task"

    async def go() -> list[str]:
        await t.put_dir(task, f"{remote}/task")
        names = await t.listdir(f"{remote}/task")
        assert names == ["in.dat", "run.sh", "sub"]  # no cmp.wheel.json; the link's content
        assert await t.read_bytes(f"{remote}/task/in.dat") == b"shared"
        assert (await t.run("sh run.sh", cwd=f"{remote}/task")).returncode == 0
        return await t.get(f"{remote}/task", ["out.txt", "res/", "*.log"], back, exclude=["b*"])

    copied = run_with(pool, go)
    assert sorted(copied) == ["out.txt", "res/a"]
    assert (back / "out.txt").read_text() == "hi\n"
    assert (back / "res" / "a").read_text() == "r\n"
    assert not (back / "b.log").exists()
    assert not [p for p in back.iterdir() if p.name.startswith(".sharin-get-")]


def test_file_operations_and_an_atomic_write(host: HostConfig, remote: str, tmp_path: Path) -> None:
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)
    target = f"{remote}/d/e/big"
    local = tmp_path / "f"
    local.write_bytes(b"local")

    async def go() -> None:
        await t.mkdir(f"{remote}/d/e")
        await t.mkdir(f"{remote}/d/e")  # already there: fine
        await t.write_bytes(target, b"old")
        assert await t.stat(f"{remote}/none") is None
        s = await t.stat(target)
        assert s is not None and s.is_file and s.size == 3
        # a write cancelled half-way leaves the old content, and no temporary
        task = asyncio.ensure_future(t.write_bytes(target, os.urandom(64 << 20)))
        for _ in range(400):
            await asyncio.sleep(0.01)
            if any(n.endswith(".part") for n in await t.listdir(f"{remote}/d/e")):
                break
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await t.read_bytes(target) == b"old"
        await asyncio.sleep(0.2)
        assert await t.listdir(f"{remote}/d/e") == ["big"]
        await t.put_file(local, f"{remote}/d/copy")
        await t.get_file(f"{remote}/d/copy", tmp_path / "g")
        with pytest.raises(TransportError, match=r"cannot read .*none.*check the path"):
            await t.read_bytes(f"{remote}/none")

    run_with(pool, go)
    assert (tmp_path / "g").read_bytes() == b"local"


def _sshd_log() -> str:
    return (Path(service_env()["TEST_SERVICES_DIR"]) / "log" / "sshd.log").read_text(
        errors="replace"
    )


def test_a_hundred_commands_share_one_connection(host: HostConfig) -> None:
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)
    # the server's log of earlier runs may hold a login from the same local port
    seen = len(_sshd_log())

    async def go() -> int:
        results = await asyncio.gather(*[t.run(f"echo {i}; sleep 0.05") for i in range(100)])
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(100)]
        conn = await pool.link(host).connection()
        return int(conn.get_extra_info("sockname")[1])

    port = run_with(pool, go)
    assert pool.connections_opened(host) == 0  # closed and forgotten
    logins = re.findall(rf"Accepted publickey for \S+ from \S+ port {port} ", _sshd_log()[seen:])
    assert len(logins) == 1


def test_a_restarted_sshd_is_reconnected_to(host: HostConfig) -> None:
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)

    async def go() -> int:
        assert (await t.run("echo 1")).stdout == "1\n"
        await asyncio.to_thread(services, "sshd.sh", "restart")
        # OpenSSH keeps the sessions of a restarted server; end this one's, as a reboot would
        # (the command's parent is the connection's own sshd process)
        try:
            await t.run("kill $PPID")
        except TransportError as e:
            assert "connection" in str(e)
        for _ in range(50):
            if pool.link(host).conn is None:
                break
            await asyncio.sleep(0.1)
        assert (await t.run("echo 2")).stdout == "2\n"
        return pool.link(host).opened

    assert run_with(pool, go) == 2


@pytest.mark.slow
def test_a_read_retried_while_the_link_is_down_succeeds(host: HostConfig, remote: str) -> None:
    pool = SSHPool()
    t = SSHTransport(host, pool=pool, op_timeout=2.0)

    async def go() -> bytes:
        await t.write_bytes(f"{remote}/f", b"content")
        services("netns-link.sh", "down")
        up = threading.Timer(3.0, services, ("netns-link.sh", "up"))
        up.start()
        try:
            return await t.read_bytes(f"{remote}/f")
        finally:
            up.join()

    try:
        assert run_with(pool, go) == b"content"
    finally:
        services("netns-link.sh", "up")


def test_wrong_key_unknown_host_and_unreachable_host_are_clear_errors(
    host: HostConfig, tmp_path: Path
) -> None:
    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other_key], check=True)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    changed = tmp_path / "changed"
    changed.write_text(f"{host.host} {Path(f'{other_key}.pub').read_text()}")
    cases = {
        "refused the login": replace(host, key_file=str(other_key)),
        "not the one in": replace(host, known_hosts=str(empty)),
        "is not the one in": replace(host, known_hosts=str(changed)),
        "cannot connect to": replace(host, port=2),
        "cannot read": replace(host, key_file=str(tmp_path / "no-key")),
        "is not known here": replace(host, host="no-such-host.invalid"),
    }
    for expected, cfg in cases.items():
        pool = SSHPool()
        t = SSHTransport(cfg, pool=pool, retry_for=1.0)
        with pytest.raises(TransportError) as e:
            run_with(pool, lambda t=t: t.stat("/"))  # type: ignore[misc]
        message = str(e.value)
        assert message.startswith("host 'testhost': ") and expected in message
        assert "check" in message and "Traceback" not in message


def test_an_encrypted_key_asks_for_its_passphrase(host: HostConfig, tmp_path: Path) -> None:
    key = tmp_path / "enc"
    key.write_bytes(Path(host.key_file or "").read_bytes())
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "s3cret", "-f", key], check=True)
    asked: list[tuple[str, bool]] = []

    def ask(prompt: str, echo: bool) -> str:
        asked.append((prompt, echo))
        return "s3cret"

    cfg = replace(host, key_file=str(key))
    pool = SSHPool()
    t = SSHTransport(cfg, ask=ask, pool=pool)
    assert run_with(pool, lambda: t.run("echo ok")).stdout == "ok\n"
    assert asked == [(f"passphrase for {key}: ", False)]
    pool = SSHPool()
    t = SSHTransport(cfg, pool=pool, retry_for=0.5)  # nobody to ask
    with pytest.raises(TransportError, match="cannot use the key|refused the login"):
        run_with(pool, lambda: t.run("echo ok"))


def test_ssh_config_gives_hostname_user_and_key(
    host: HostConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host cluster-alias\n"
        f"  HostName {host.host}\n"
        f"  User {host.user}\n"
        f"  Port {host.port}\n"
        f"  IdentityFile {host.key_file}\n"
        f"  UserKnownHostsFile {host.known_hosts}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    cfg = HostConfig(name="alias", host="cluster-alias")  # nothing but the alias
    pool = SSHPool()
    t = SSHTransport(cfg, pool=pool, retry_for=1.0)
    assert run_with(pool, lambda: t.run("id -un")).stdout.strip() == host.user


def test_an_idle_connection_is_renewed_after_renew_interval(host: HostConfig) -> None:
    cfg = replace(host, renew_interval=0.5 / 60)  # half a second
    pool = SSHPool()
    t = SSHTransport(cfg, pool=pool)

    async def go() -> int:
        await t.run("true")
        await t.run("true")
        assert pool.link(cfg).opened == 1
        await asyncio.sleep(0.7)
        await t.run("true")
        await asyncio.sleep(0.2)  # the old connection's end does not unset the new one
        await t.run("true")
        return pool.link(cfg).opened

    assert run_with(pool, go) == 2


def test_a_key_held_by_ssh_agent_is_used(
    host: HostConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", host.key_file or ""], env=env, check=True, timeout=30)
        home = tmp_path / "home"
        home.mkdir()
        monkeypatch.setenv("HOME", str(home))  # no keys of its own
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        cfg = replace(host, key_file=None)
        pool = SSHPool()
        t = SSHTransport(cfg, pool=pool, retry_for=1.0)
        assert run_with(pool, lambda: t.run("echo via-agent")).stdout == "via-agent\n"
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_a_killed_transfer_leaves_no_file_with_the_final_name(
    host: HostConfig, remote: str
) -> None:
    """The writing process is killed (SIGKILL) half-way through: only a temporary is there."""
    import signal
    import sys

    code = (
        "import asyncio, os, sys\n"
        "from sharin.model import HostConfig\n"
        "from sharin.executors._ssh import SSHTransport\n"
        "h, u, p, k, kh, path = sys.argv[1:]\n"
        "cfg = HostConfig('t', h, user=u, port=int(p), key_file=k, known_hosts=kh)\n"
        "asyncio.run(SSHTransport(cfg).write_bytes(path, os.urandom(256 << 20)))\n"
    )
    target = f"{remote}/final.dat"
    args = [host.host, host.user, str(host.port), host.key_file, host.known_hosts, target]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *[str(a) for a in args]],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)

    async def parts() -> list[str]:
        return [n for n in await t.listdir(remote) if n.endswith(".part")]

    try:
        deadline = time.monotonic() + 30
        while not run_with(pool, parts):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert run_with(pool, lambda: t.stat(target)) is None


def test_tree_copies_that_cannot_be_done_are_clear_errors(
    host: HostConfig, remote: str, tmp_path: Path
) -> None:
    from sharin.errors import ExecutorError

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)

    async def go() -> None:
        with pytest.raises(TransportError, match="tar could not pack .*none"):
            await t.get_tree(f"{remote}/none", tmp_path / "a")
        with pytest.raises(TransportError, match="tar could not unpack into /proc/x"):
            await t.put_tree(tmp_path / "src", "/proc/x")
        await t.run(f"mkdir {remote}/t && ln -s /etc/passwd {remote}/t/out")
        with pytest.raises(ExecutorError, match="link leading out"):
            await t.get_tree(f"{remote}/t", tmp_path / "b")
        assert not (tmp_path / "b" / "out").exists()
        assert (await t.run("echo still")).stdout == "still\n"  # the connection is fine

    run_with(pool, go)


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 200)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(names, min_size=1, max_size=4, unique=True))
def test_any_file_names_survive_a_round_trip(
    host: HostConfig, remote: str, tmp_path_factory: pytest.TempPathFactory, files: list[str]
) -> None:
    base = tmp_path_factory.mktemp("names")
    src, back = base / "src", base / "back"
    src.mkdir()
    for i, name in enumerate(files):
        (src / name).write_text(str(i))
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)
    sub = f"{remote}/{base.name}"

    async def go() -> list[str]:
        await t.put_tree(src, sub)
        await t.get_tree(sub, back)
        return await t.listdir(sub)

    assert run_with(pool, go) == sorted(files)
    assert {p.name: p.read_text() for p in back.iterdir()} == {
        n: str(i) for i, n in enumerate(files)
    }


def test_channels_are_capped_by_max_sessions(host: HostConfig) -> None:
    cfg = replace(host, max_sessions=3)  # two commands at once, one channel kept for SFTP
    pool = SSHPool()
    t = SSHTransport(cfg, pool=pool)

    async def go() -> float:
        await t.run("true")
        started = time.monotonic()
        await asyncio.gather(*[t.run("sleep 0.3") for _ in range(6)])
        return time.monotonic() - started

    assert run_with(pool, go) >= 0.85  # three rounds of two


def test_leaving_a_stream_ends_the_command(host: HostConfig) -> None:
    pool = SSHPool()
    t = SSHTransport(host, pool=pool)

    async def go() -> tuple[list[str], str]:
        got = []
        async for line in t.stream("i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.05; done"):
            got.append(line)
            if len(got) == 3:
                break
        await asyncio.sleep(0.5)
        # the loop's own words: a browser's --launch-time-ticks=... matches "tick" alone
        left = await t.run("ps -eo args | grep '[e]cho tick' || true")
        return got, left.stdout

    got, left = run_with(pool, go)
    assert got == ["tick0", "tick1", "tick2"] and left == ""
