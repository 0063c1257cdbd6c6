#!/usr/bin/env bash
# Run examples/fugaku_jobs.wheel — a bulk job (one sub job per parameter value) and a three-step
# step job — against the PJM stand-in (tests/standins/pjm: pjsub/pjstat/pjdel that run the jobs on
# this machine with PJM's output formats). On a Fugaku login node, drop the stand-in and point
# the host "fugaku" of remotehost.json at the real PJM instead (see the README, "Batch jobs").
#   FUGAKU_WORK  where the project copy, the host configuration and the stand-in's state go
#                (default: a new temporary directory)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/scripts/setup.sh"
work=${FUGAKU_WORK:-$(mktemp -d)}
mkdir -p "$work/config"
cat > "$work/config/remotehost.json" <<JSON
[{"name": "fugaku", "host": "localhost", "transport": "local", "jobScheduler": "Fugaku",
  "queue": "small", "statusCheckInterval": 1, "useStepjob": true, "useBulkjob": true}]
JSON
export SHARIN_CONFIG_DIR="$work/config"
export PJM_STANDIN_HOME="$work/pjm"
export PATH="$repo/tests/standins/pjm/bin:$PATH"
sharin copy "$repo/examples/fugaku_jobs.wheel" "$work/fugaku_jobs.wheel"
sharin run "$work/fugaku_jobs.wheel"
echo
cat "$work/fugaku_jobs.wheel/report/report.md"
echo "project with all outputs: $work/fugaku_jobs.wheel"
