#!/usr/bin/env bash
# Install (apt, once) and start the services the tests in tests/services use, as root, without
# systemd: munge, MariaDB, Slurm (slurmdbd, slurmctld, slurmd), an SSH host in a network
# namespace, Grid Engine, and the PBS wrappers on Slurm. Each daemon runs in the foreground in a
# session of its own; pids, logs and configuration are under $TEST_SERVICES_DIR
# (/tmp/sharin-services by default). Running it again starts only what is not running.
# One line per service: its state and the time it took. Then `source scripts/services/env.sh`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "sharin services: up.sh must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

packages=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server openssh-server openssh-client
    gridengine-master gridengine-exec gridengine-client libslurm-perl libslurmdb-perl libswitch-perl
    iproute2 util-linux)

t0=$(svc_clock)
svc_init
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    # Grid Engine's postinst configures the cell from these answers instead of asking
    host=$(hostname -s)
    for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
        printf '%s shared/gridengineconfig boolean true\n' "$p"
        printf '%s shared/gridenginecell string default\n' "$p"
        printf '%s shared/gridenginemaster string %s\n' "$p" "$host"
    done | debconf-set-selections
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } >>"$svc_dir/log/apt.log" 2>&1 || svc_fail apt "could not install ${missing[*]}"
    svc_report packages "installed ${#missing[@]}" "$t0"
else
    svc_report packages "present" "$t0"
fi
# Slurm and Grid Engine find this host by name
if ! getent hosts "$(hostname -s)" >/dev/null; then
    echo "127.0.0.1 $(hostname -s)" >>/etc/hosts
fi

"$here/munge.sh" start
"$here/mariadb.sh" start
"$here/slurm.sh" start
"$here/sshd.sh" start
"$here/sge.sh" start
"$here/pbs.sh" start
svc_report all up "$t0"
