#!/usr/bin/env bash
# Slurm on this one node: slurmdbd (accounting, on MariaDB), slurmctld and slurmd; partitions
# `debug` (the default) and `long`. The configuration is written to etc/ under the state
# directory (SLURM_CONF, see env.sh); etc/slurm-login.conf is the one the SSH host uses (it
# reaches the controller over the network namespace's link, 10.200.0.1).
#   slurm.sh start|stop|status
#   slurm.sh restart slurmctld|slurmd|slurmdbd    (the job queue survives)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

etc=$svc_dir/etc
state=$svc_dir/slurm
export SLURM_CONF=$etc/slurm.conf
host=$(hostname -s)
cluster=ci

write_config() {
    install -d -m 0755 "$etc"
    install -d -o slurm -g slurm -m 0755 "$state" "$state/ctld"
    install -d -m 0755 "$state/d"
    # the node's size, as slurmd sees it (memory a little lower, as Slurm wants)
    local node
    node=$(slurmd -C | head -n 1 | awk '{
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^RealMemory=/) { split($i, m, "="); $i = "RealMemory=" int(m[2] * 0.9) }
            if ($i ~ /^NodeName=/) { $i = $i " NodeAddr=127.0.0.1" }
        }
        print }')
    cat >"$etc/slurm.conf.new" <<CONF
# written by scripts/services/slurm.sh
ClusterName=$cluster
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0
MinJobAge=600
ReturnToService=2
DependencyParameters=kill_invalid_depend
MailProg=/bin/true
PlugStackConfig=$etc/plugstack.conf
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
$node
PartitionName=debug Nodes=ALL Default=YES State=UP OverSubscribe=FORCE:8 MaxTime=60
PartitionName=long Nodes=ALL Default=NO State=UP OverSubscribe=FORCE:8 MaxTime=INFINITE
CONF
    mv "$etc/slurm.conf.new" "$etc/slurm.conf"
    sed -e "s/^SlurmctldHost=.*/SlurmctldHost=$host(10.200.0.1)/" \
        -e "s/^AccountingStorageHost=.*/AccountingStorageHost=10.200.0.1/" \
        "$etc/slurm.conf" >"$etc/slurm-login.conf"
    # the PBS wrappers' environment (PBS_JOBID, PBS_O_WORKDIR) in every job
    echo "optional /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_pbs.so" >"$etc/plugstack.conf"
    umask 077
    cat >"$etc/slurmdbd.conf" <<CONF
# written by scripts/services/slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=$state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=sharin-ci
StorageLoc=slurm_acct_db
CONF
    umask 022
    chown slurm:slurm "$etc/slurmdbd.conf"
}

dbd_ok() { sacctmgr -n -P list cluster format=cluster; }
ctld_ok() { scontrol ping | grep -q 'is UP'; }
node_ok() { sinfo -h -o %t | grep -Eq '^(idle|mix|alloc)'; }

start_dbd() {
    svc_pid slurmdbd slurmdbd >/dev/null && return 0
    svc_spawn slurmdbd slurmdbd -D
    svc_wait slurmdbd slurmdbd 30 dbd_ok
    # the controller needs its cluster registered (without state files it dies otherwise)
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$cluster"; then
        sacctmgr -i add cluster "$cluster" >>"$svc_dir/log/slurmdbd.log" 2>&1 ||
            svc_fail slurmdbd "could not register cluster $cluster"
    fi
}
start_ctld() {
    svc_pid slurmctld slurmctld >/dev/null && return 0
    svc_spawn slurmctld slurmctld -D -i
    svc_wait slurmctld slurmctld 30 ctld_ok
}
start_d() {
    svc_pid slurmd slurmd >/dev/null && return 0
    svc_spawn slurmd slurmd -D
    svc_wait slurmd slurmd 30 node_ok
}
running() {
    svc_pid slurmdbd slurmdbd >/dev/null && svc_pid slurmctld slurmctld >/dev/null &&
        svc_pid slurmd slurmd >/dev/null
}

case ${1:-} in
start)
    t0=$(svc_clock)
    svc_init
    if running && node_ok >/dev/null 2>&1; then
        svc_report slurm "already running" "$t0"
        exit 0
    fi
    "$svc_here/munge.sh" status || svc_fail munged "munge is not running (start it first)"
    "$svc_here/mariadb.sh" status || svc_fail mariadb "MariaDB is not running (start it first)"
    write_config
    start_dbd
    start_ctld
    start_d
    svc_report slurm started "$t0"
    ;;
restart)
    t0=$(svc_clock)
    case ${2:-} in
    slurmctld) svc_stop slurmctld slurmctld && start_ctld ;;
    slurmd) svc_stop slurmd slurmd && start_d ;;
    slurmdbd) svc_stop slurmdbd slurmdbd && start_dbd ;;
    *)
        echo "usage: $0 restart slurmctld|slurmd|slurmdbd" >&2
        exit 2
        ;;
    esac
    svc_report "$2" restarted "$t0"
    ;;
stop)
    svc_stop slurmd slurmd
    svc_stop slurmctld slurmctld
    svc_stop slurmdbd slurmdbd
    ;;
status) running && ctld_ok >/dev/null 2>&1 ;;
*)
    echo "usage: $0 start|stop|status|restart DAEMON" >&2
    exit 2
    ;;
esac
