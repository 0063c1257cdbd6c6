"""The test SSH host seen from outside sharin: a key of the test's own whose logins run every
command with logging wrappers of Slurm's commands first on the PATH, the sshd's log of that key's
logins, the services' disruptions (logged in ``disruptions.log`` first), and ``sacct`` by job name.

The key's line in the host user's ``authorized_keys`` carries a forced command (OpenSSH's
``command="..."``): it logs the exec request, puts the wrapper directory first on ``PATH`` and runs
the command asked for (SFTP goes to ``sftp-server``). Other keys, and other tests, are untouched.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from ..services.available import SCRIPTS, service_env

#: Slurm's commands whose every call is logged (with a time stamp and its arguments)
WRAPPED = ("sbatch", "squeue", "sacct", "scontrol", "scancel")
DISRUPTIONS = Path(os.environ.get("SHARIN_DISRUPTIONS_LOG", "/work/briefs/disruptions.log"))

_LOGIN = """#!/bin/sh
# forced command of the test's key: log, wrappers first on PATH, then what was asked
case ${{SSH_ORIGINAL_COMMAND:-}} in
internal-sftp | */sftp-server) exec /usr/lib/openssh/sftp-server ;;
esac
echo "$(date +%s.%N) exec" >>{log}
PATH={bin}:$PATH
export PATH
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""

_WRAPPER = """#!/bin/sh
echo "$(date +%s.%N) {name} $*" >>{log}
if [ -f {delay} ]; then sleep "$(cat {delay})"; fi
exec /usr/bin/{name} "$@"
"""


class WatchedHost:
    """A remote host entry whose logins and Slurm commands are counted from outside sharin."""

    def __init__(self, tmp_path: Path, config_dir: Path) -> None:
        self.env = service_env()
        self.user = self.env["TEST_SSH_USER"]
        pw = pwd.getpwnam(self.user)
        self.token = secrets.token_hex(4)
        self.prefix = f"flt{self.token}"  #: every job name of the test starts with it
        self.home = Path(pw.pw_dir)
        self.dir = self.home / f"faults-{self.token}"
        self.bin = self.dir / "bin"
        self.log = self.dir / "calls.log"
        self.bin.mkdir(parents=True)
        self.log.touch()
        self.key = tmp_path / "key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.prefix, "-f", self.key],
            check=True,
        )
        out = subprocess.run(
            ["ssh-keygen", "-l", "-f", f"{self.key}.pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.fingerprint = out.split()[1]  #: SHA256:..., as sshd logs it
        login = self.dir / "login.sh"
        login.write_text(_LOGIN.format(log=self.log, bin=self.bin))
        for name in WRAPPED:
            delay = self.dir / f"{name}.delay"
            (self.bin / name).write_text(_WRAPPER.format(name=name, log=self.log, delay=delay))
        for p in [login, *self.bin.iterdir()]:
            p.chmod(0o755)
        for p in [self.dir, self.bin, self.log, login, *self.bin.iterdir()]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        self.jobs = self.dir / "jobs"  #: the host's ``path``
        self.jobs.mkdir()
        os.chown(self.jobs, pw.pw_uid, pw.pw_gid)
        self._line = f'command="{login}" {Path(f"{self.key}.pub").read_text().strip()}\n'
        self._edit_keys(add=True)
        self.sshd_log = Path(self.env["TEST_SERVICES_DIR"]) / "log" / "sshd.log"
        self._log_start = self.sshd_log.stat().st_size
        self.started = time.time()
        self.name = "ci-ssh"
        self.config_dir = config_dir
        self.write_config()

    # ------------------------------------------------------------------ set-up
    def _edit_keys(self, *, add: bool) -> None:
        path = self.home / ".ssh" / "authorized_keys"
        st = path.stat()
        lines = [x for x in path.read_text().splitlines(keepends=True) if x != self._line]
        if add:
            lines.append(self._line)
        tmp = path.with_name(f".authorized_keys.{self.token}")
        tmp.write_text("".join(lines))
        os.chown(tmp, st.st_uid, st.st_gid)
        tmp.chmod(0o600)
        os.replace(tmp, path)

    def write_config(self, **extra: object) -> None:
        entry = {
            "name": self.name,
            "host": self.env["TEST_SSH_HOST"],
            "port": int(self.env["TEST_SSH_PORT"]),
            "username": self.user,
            "keyFile": str(self.key),
            "knownHostsFile": self.env["TEST_SSH_KNOWN_HOSTS"],
            "path": str(self.jobs),
            "jobScheduler": "SLURM",
            "statusCheckInterval": 1,
            **extra,
        }
        (self.config_dir / "remotehost.json").write_text(json.dumps([entry]))

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self._edit_keys(add=False)
        # jobs a failed test left behind
        subprocess.run(
            ["scancel", "-u", self.user, "-n", ",".join(self.job_names()) or "none"],
            env={**os.environ, **self.env},
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    def slow(self, command: str, seconds: float) -> None:
        """Make each call of ``command`` on the host take ``seconds`` longer (0: as usual)."""
        delay = self.dir / f"{command}.delay"
        if seconds:
            delay.write_text(f"{seconds:g}\n")
        else:
            delay.unlink(missing_ok=True)

    def cut_connections(self, pid: int | None = None) -> int:
        """Kill the host's end (its sshd session process) of every SSH connection process
        ``pid`` (this one by default) has to the host: the connections drop as in a network
        failure, other users' stay. Returns how many were cut."""
        pid = os.getpid() if pid is None else pid
        host, port = self.env["TEST_SSH_HOST"], self.env["TEST_SSH_PORT"]
        mine = subprocess.run(
            ["ss", "-tnpH", "state", "established", "dst", f"{host}:{port}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ports = {
            line.split()[2].rsplit(":", 1)[1] for line in mine.splitlines() if f"pid={pid}," in line
        }
        theirs = subprocess.run(
            ["ip", "netns", "exec", "sharin-remote", "ss", "-tnpH", "state", "established"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cut = 0
        for line in theirs.splitlines():
            fields = line.split()
            if len(fields) < 4 or fields[3].rsplit(":", 1)[1] not in ports:
                continue
            for server in re.findall(r"pid=(\d+),", line):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(server), signal.SIGKILL)
                    cut += 1
        return cut

    # ------------------------------------------------------------------ counts
    def calls(self, name: str) -> list[float]:
        """When each call of ``name`` (``exec``: every exec request; or a wrapped command)
        was made, in the order made."""
        out = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == name:
                out.append(float(parts[0]))
        return out

    def call_lines(self, name: str) -> list[str]:
        return [x for x in self.log.read_text().splitlines() if x.split()[1:2] == [name]]

    def logins(self) -> int:
        """How many times the test's key logged in since the host was made."""
        with open(self.sshd_log, encoding="utf-8", errors="replace") as f:
            f.seek(self._log_start)
            text = f.read()
        return len(re.findall(rf"Accepted publickey for \S+ .*{re.escape(self.fingerprint)}", text))

    def sacct(self) -> list[tuple[str, str, str]]:
        """``(job id, job name, state)`` of every job of the test (by name), from accounting."""
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started - 120))
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-a", "-S", start, "-o", "JobID,JobName%80,State"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        rows = []
        for line in out.splitlines():
            job, name, state = line.split("|")[:3]
            if name.startswith(self.prefix):
                rows.append((job, name, state.split()[0]))
        return rows

    def job_names(self) -> list[str]:
        return sorted({name for _, name, _ in self.sacct()})

    def submissions(self) -> collections.Counter[str]:
        """How many jobs of each name accounting knows of."""
        return collections.Counter(name for _, name, _ in self.sacct())

    def wait_for_accounting(self, names: set[str], timeout: float = 60) -> collections.Counter[str]:
        """The submissions, once accounting lists every name of ``names`` in a final state."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sacct()
            final = {n for _, n, s in rows if s not in ("PENDING", "RUNNING", "REQUEUED")}
            if names <= final or time.monotonic() > deadline:
                return collections.Counter(n for _, n, _ in rows)
            time.sleep(1)


def disrupt(what: str, seconds: float) -> None:
    """Say what is about to be disrupted (for the other users of the services), for how long."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with contextlib.suppress(OSError), open(DISRUPTIONS, "a", encoding="utf-8") as f:
        f.write(f"{stamp} {what} for about {seconds:g} s (tests/remote/test_faults.py)\n")


def helper(script: str, *args: str) -> None:
    """``scripts/services/<script> args`` (sshd.sh restart, netns-link.sh down, ...)."""
    subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        env={**os.environ, **service_env()},
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.contextmanager
def watched_host(tmp_path: Path, config_dir: Path) -> Iterator[WatchedHost]:
    host = WatchedHost(tmp_path, config_dir)
    try:
        yield host
    finally:
        host.cleanup()
