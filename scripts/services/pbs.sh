#!/usr/bin/env bash
# PBS/Torque commands (qsub, qstat, qdel, ...) on the Slurm of slurm.sh: Debian's
# slurm-wlm-torque wrappers. That package conflicts with Grid Engine's (both have qsub), so it is
# not installed: its scripts are unpacked into torque/bin under the state directory, next to links
# to the Slurm commands they call. Put that directory first on PATH to use them (env.sh:
# TEST_TORQUE_BIN).
#   pbs.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

top=$svc_dir/torque
bin=$top/bin
export SLURM_CONF=$svc_dir/etc/slurm.conf

unpack() {
    local deb
    install -d -m 0755 "$top/deb" "$bin"
    deb=$(find "$top/deb" -name 'slurm-wlm-torque_*.deb' | head -n 1)
    if [ -z "$deb" ]; then
        # apt's sandbox user cannot write here: it warns and downloads as root
        (cd "$top/deb" && apt-get download -qq slurm-wlm-torque) >>"$svc_dir/log/pbs.log" 2>&1 ||
            svc_fail pbs "could not download slurm-wlm-torque"
        deb=$(find "$top/deb" -name 'slurm-wlm-torque_*.deb' | head -n 1)
    fi
    rm -rf "$top/x"
    dpkg-deb -x "$deb" "$top/x"
    cp "$top/x/usr/bin/"* "$bin/"
    rm -rf "$top/x"
    # the wrappers run the Slurm commands found next to themselves
    local c
    for c in sbatch salloc srun scontrol squeue scancel sinfo sacct; do
        ln -sfn "/usr/bin/$c" "$bin/$c"
    done
}

# the queues (Slurm's partitions); plain qstat fails (rc 153) when no job is known
pbs_ok() { "$bin/qstat" -Q | grep -q '^debug '; }

case ${1:-} in
start)
    t0=$(svc_clock)
    svc_init
    if [ -x "$bin/qsub" ] && pbs_ok >/dev/null 2>&1; then
        svc_report pbs "ready" "$t0"
        exit 0
    fi
    "$svc_here/slurm.sh" status || svc_fail pbs "Slurm is not running (start it first)"
    [ -x "$bin/qsub" ] || unpack
    pbs_ok >>"$svc_dir/log/pbs.log" 2>&1 || svc_fail pbs "the torque qstat wrapper does not work"
    svc_report pbs "installed" "$t0"
    ;;
stop) ;; # no daemon of its own
status) [ -x "$bin/qsub" ] && pbs_ok >/dev/null 2>&1 ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
