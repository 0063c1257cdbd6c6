#!/usr/bin/env bash
# Stop every service up.sh started (the state directory, with its keys, databases and job
# history, stays: `up.sh` starts from it again; delete it for a clean slate).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib.sh"
"$here/pbs.sh" stop
"$here/sge.sh" stop
"$here/sshd.sh" stop
"$here/slurm.sh" stop
"$here/mariadb.sh" stop
"$here/munge.sh" stop
echo "sharin services: stopped"
