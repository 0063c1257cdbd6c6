#!/usr/bin/env bash
# munge, Slurm's authentication daemon (its key comes with the package).
#   munge.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

munge_ok() { munge -n | unmunge; }

case ${1:-} in
start)
    t0=$(svc_clock)
    svc_init
    if svc_pid munged munged >/dev/null && munge_ok >/dev/null 2>&1; then
        svc_report munge "already running" "$t0"
        exit 0
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    svc_spawn munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    svc_wait munged munged 10 munge_ok
    svc_report munge started "$t0"
    ;;
stop) svc_stop munged munged ;;
status) svc_pid munged munged >/dev/null && munge_ok >/dev/null 2>&1 ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
