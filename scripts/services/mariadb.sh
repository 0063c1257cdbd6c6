#!/usr/bin/env bash
# MariaDB, the database of slurmdbd (Slurm's accounting): data under the state directory, no
# network (the Unix socket only).
#   mariadb.sh start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

data=$svc_dir/mysql
socket=/run/mysqld/mysqld.sock
db_ok() { mariadb --socket="$socket" -e 'SELECT 1'; }

case ${1:-} in
start)
    t0=$(svc_clock)
    svc_init
    if svc_pid mariadb mariadbd >/dev/null && db_ok >/dev/null 2>&1; then
        svc_report mariadb "already running" "$t0"
        exit 0
    fi
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if [ ! -d "$data/mysql" ]; then
        install -d -o mysql -g mysql -m 0700 "$data"
        mariadb-install-db --user=mysql --datadir="$data" --skip-test-db \
            --auth-root-authentication-method=socket >>"$svc_dir/log/mariadb.log" 2>&1 ||
            svc_fail mariadb "mariadb-install-db failed"
    fi
    svc_spawn mariadb mariadbd --no-defaults --user=mysql --datadir="$data" --skip-networking \
        --socket="$socket" --pid-file="$data/mariadbd.pid"
    svc_wait mariadb mariadbd 30 db_ok
    mariadb --socket="$socket" <<'SQL' || svc_fail mariadb "could not create slurmdbd's user"
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'sharin-ci';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
    svc_report mariadb started "$t0"
    ;;
stop) svc_stop mariadb mariadbd ;;
status) svc_pid mariadb mariadbd >/dev/null && db_ok >/dev/null 2>&1 ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
