#!/usr/bin/env bash
# Take the SSH host's link down (its packets are dropped: connections hang, new ones time out)
# or bring it back up.
#   netns-link.sh down|up|status      (status: prints up or down)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
host_if=veth-sharin0
case ${1:-} in
down) ip link set "$host_if" down ;;
up) ip link set "$host_if" up ;;
status)
    if ip -o link show "$host_if" | grep -q '[<,]UP[,>]'; then echo up; else echo down; fi
    ;;
*)
    echo "usage: $0 down|up|status" >&2
    exit 2
    ;;
esac
