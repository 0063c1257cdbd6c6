# Sourced by the service scripts: the state directory and helpers to start, find and stop the
# daemons. Every daemon runs in the foreground under setsid; its pid is in run/NAME.pid and its
# output in log/NAME.log under the state directory.
svc_dir=${TEST_SERVICES_DIR:-/tmp/sharin-services}
# shellcheck disable=SC2034  # used by the scripts that source this
svc_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TEST_SERVICES_DIR=$svc_dir

svc_init() {
    install -d -m 0755 "$svc_dir" "$svc_dir/run" "$svc_dir/log" "$svc_dir/etc"
}

svc_clock() { date +%s.%N; }

# svc_took START: seconds since START, one decimal
svc_took() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

# svc_report SERVICE STATE START: the one line printed per service
svc_report() { printf '%-10s %-16s %s\n' "$1" "$2" "$(svc_took "$3")"; }

# svc_pid NAME COMM: print the pid of daemon NAME if its pid file names a live process whose
# command is COMM (a recycled pid runs something else; "": any command); fail otherwise
svc_pid() {
    local file="$svc_dir/run/$1.pid" pid comm
    [ -s "$file" ] || return 1
    pid=$(cat "$file")
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ -z "$2" ] || [ "$comm" = "$2" ] || return 1
    # a zombie has exited (its parent has not reaped it yet)
    [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
    echo "$pid"
}

# svc_fail NAME MESSAGE: say which daemon failed, show the end of its log, and stop here
svc_fail() {
    local log="$svc_dir/log/$1.log"
    echo "sharin services: $1: $2" >&2
    if [ -s "$log" ]; then
        echo "--- last lines of $log" >&2
        tail -n 20 "$log" >&2
        echo "---" >&2
    fi
    exit 1
}

# svc_spawn NAME COMMAND...: start COMMAND in a session of its own, in the background, output to
# log/NAME.log, and record its pid (setsid and the wrappers it runs exec the daemon: same pid)
svc_spawn() {
    local name=$1
    shift
    printf '=== %s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$svc_dir/log/$name.log"
    # from /: a daemon (and every job step it starts) must not keep the caller's directory,
    # which may be a checkout removed later ("Unable to get current working directory")
    (cd / && exec setsid "$@") </dev/null >>"$svc_dir/log/$name.log" 2>&1 &
    echo $! >"$svc_dir/run/$name.pid"
}

# svc_wait NAME COMM SECONDS CHECK...: wait until CHECK succeeds; fail if daemon NAME dies first
# or SECONDS pass
svc_wait() {
    local name=$1 comm=$2 seconds=$3 i
    shift 3
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@" >/dev/null 2>&1; then
            # the check passed: it must be this daemon that answered, not another instance
            svc_pid "$name" "$comm" >/dev/null || [ -z "$comm" ] ||
                svc_fail "$name" "ready, but pid $(cat "$svc_dir/run/$name.pid") is not $comm"
            return 0
        fi
        # alive, whatever its command yet (setsid, setpriv, ip netns exec... exec it in turn)
        if [ -n "$comm" ] && ! svc_pid "$name" "" >/dev/null; then
            svc_fail "$name" "exited while starting"
        fi
        sleep 0.1
    done
    svc_fail "$name" "not ready after ${seconds}s (check: $*)"
}

# svc_stop NAME COMM: TERM the daemon, KILL it after 10 s; no error if it is not running
svc_stop() {
    local pid i
    if pid=$(svc_pid "$1" "$2"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            svc_pid "$1" "$2" >/dev/null || break
            sleep 0.1
        done
        if svc_pid "$1" "$2" >/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$svc_dir/run/$1.pid"
}
