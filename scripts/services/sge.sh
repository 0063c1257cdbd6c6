#!/usr/bin/env bash
# Son of Grid Engine (Debian's gridengine packages, configured by their postinst from the
# debconf answers up.sh gives): sge_qmaster and one sge_execd on this host, queue `all.q`.
# SGE_ND keeps both in the foreground. Its spool stays where Debian puts it
# (/var/spool/gridengine); pids and output are under the state directory.
#   sge.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
host=$(hostname -s)
work=$svc_dir/sge
queue=all.q

master_ok() { qstat -u '*'; }
# the exec host reports its load: the queue instance is usable (no "au" state)
exec_ok() { qhost -h "$host" | awk -v h="$host" '$1 == h && $4 != "-" { found = 1 } END { exit !found }'; }

# qconf_retry ARGS...: qconf, again for a few seconds while the fresh qmaster refuses it
qconf_retry() {
    local i
    for ((i = 0; i < 30; i++)); do
        qconf "$@" && return 0
        sleep 0.3
    done
    return 1
}

# configure: each step checked (this runs in an `||` list, where `set -e` does not apply)
configure() {
    install -d -m 0755 "$work" || return 1
    # global: root may run jobs; the accounting file (qacct) is written within a second
    qconf_retry -sconf global >"$work/global.orig" || return 1
    sed -e 's/^min_uid[[:space:]].*/min_uid 0/' -e 's/^min_gid[[:space:]].*/min_gid 0/' \
        -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' \
        "$work/global.orig" >"$work/global" || return 1
    grep -qx 'min_uid 0' "$work/global" || return 1
    qconf_retry -Mconf "$work/global" || return 1
    # the scheduler runs every second
    qconf_retry -ssconf >"$work/sched.orig" || return 1
    sed -e 's/^schedule_interval[[:space:]].*/schedule_interval 0:0:1/' \
        -e 's/^flush_submit_sec[[:space:]].*/flush_submit_sec 1/' \
        -e 's/^flush_finish_sec[[:space:]].*/flush_finish_sec 1/' "$work/sched.orig" >"$work/sched" || return 1
    qconf_retry -Msconf "$work/sched" || return 1
    if ! qconf -ss 2>/dev/null | grep -qx "$host"; then
        qconf_retry -as "$host" || return 1
    fi
    if ! qconf -sel 2>/dev/null | grep -qx "$host"; then
        cat >"$work/exechost" <<CONF || return 1
hostname              $host
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
CONF
        qconf_retry -Ae "$work/exechost" || return 1
    fi
    if ! qconf -sql 2>/dev/null | grep -qx "$queue"; then
        # no load threshold: a busy machine must not put the queue in alarm state
        qconf_retry -sq >"$work/queue.template" || return 1
        sed -e "s/^qname[[:space:]].*/qname $queue/" -e "s/^hostlist[[:space:]].*/hostlist $host/" \
            -e 's/^slots[[:space:]].*/slots 4/' -e 's/^load_thresholds[[:space:]].*/load_thresholds NONE/' \
            -e 's/^pe_list[[:space:]].*/pe_list NONE/' \
            -e 's/^shell_start_mode[[:space:]].*/shell_start_mode unix_behavior/' \
            "$work/queue.template" >"$work/queue" || return 1
        qconf_retry -Aq "$work/queue" || return 1
    fi
}

case ${1:-} in
start)
    t0=$(svc_clock)
    svc_init
    if svc_pid sge_qmaster sge_qmaster >/dev/null && svc_pid sge_execd sge_execd >/dev/null &&
        master_ok >/dev/null 2>&1; then
        svc_report sge "already running" "$t0"
        exit 0
    fi
    # commlib refuses a client whose address resolves to another name than the host's
    echo "$host localhost" >"$SGE_ROOT/$SGE_CELL/common/host_aliases"
    echo "$host" >"$SGE_ROOT/$SGE_CELL/common/act_qmaster"
    if ! svc_pid sge_qmaster sge_qmaster >/dev/null; then
        (cd "$svc_dir" && SGE_ND=1 svc_spawn sge_qmaster /usr/sbin/sge_qmaster)
        svc_wait sge_qmaster sge_qmaster 30 master_ok
    fi
    configure >>"$svc_dir/log/sge_qmaster.log" 2>&1 || svc_fail sge_qmaster "could not configure Grid Engine"
    if ! svc_pid sge_execd sge_execd >/dev/null; then
        (cd "$svc_dir" && SGE_ND=1 svc_spawn sge_execd /usr/sbin/sge_execd)
        svc_wait sge_execd sge_execd 30 exec_ok
    fi
    # a queue put in error state by an earlier failed job
    qmod -c "$queue" >/dev/null 2>&1 || true
    svc_report sge started "$t0"
    ;;
stop)
    svc_stop sge_execd sge_execd
    svc_stop sge_qmaster sge_qmaster
    ;;
status) svc_pid sge_qmaster sge_qmaster >/dev/null && svc_pid sge_execd sge_execd >/dev/null && master_ok >/dev/null 2>&1 ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
