#!/usr/bin/env bash
# An SSH host for the tests: OpenSSH's sshd, key authentication only, in the network namespace
# `sharin-remote` reached over a veth pair (10.200.0.1 here, 10.200.0.2 there), with the user
# `sharinci` (home under the state directory). Its key pair and known_hosts are in ssh/ under the
# state directory. Slurm's commands work in its sessions (SLURM_CONF=etc/slurm-login.conf).
#   sshd.sh start|stop|status|restart
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ns=sharin-remote
host_if=veth-sharin0
ns_if=veth-sharin1
host_ip=10.200.0.1
ns_ip=10.200.0.2
user=sharinci
home=$svc_dir/home/$user
ssh_dir=$svc_dir/ssh
conf=$svc_dir/etc/sshd_config

link_up() {
    ip netns list | grep -qw "$ns" || ip netns add "$ns"
    if ! ip link show "$host_if" >/dev/null 2>&1; then
        ip link add "$host_if" type veth peer name "$ns_if"
        ip link set "$ns_if" netns "$ns"
    fi
    ip addr replace "$host_ip/30" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$ns" addr replace "$ns_ip/30" dev "$ns_if"
    ip -n "$ns" link set "$ns_if" up
    ip -n "$ns" link set lo up
}

setup_user() {
    install -d -m 0755 "$svc_dir/home" "$ssh_dir"
    if ! id "$user" >/dev/null 2>&1; then
        useradd -M -d "$home" -s /bin/bash -U "$user"
    fi
    usermod -d "$home" -p '*' "$user" # '*': no password, yet not locked (keys still work)
    install -d -o "$user" -g "$user" -m 0755 "$home"
    install -d -o "$user" -g "$user" -m 0700 "$home/.ssh"
    [ -f "$ssh_dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$user@sharin-ci" -f "$ssh_dir/id_ed25519"
    [ -f "$ssh_dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sharin-remote -f "$ssh_dir/host_ed25519"
    install -o "$user" -g "$user" -m 0600 "$ssh_dir/id_ed25519.pub" "$home/.ssh/authorized_keys"
    echo "$ns_ip $(cut -d' ' -f1,2 "$ssh_dir/host_ed25519.pub")" >"$ssh_dir/known_hosts"
    cat >"$conf" <<CONF
# written by scripts/services/sshd.sh
Port 22
ListenAddress $ns_ip
HostKey $ssh_dir/host_ed25519
PidFile $svc_dir/run/sshd-own.pid
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $user
UsePAM no
X11Forwarding no
Subsystem sftp internal-sftp
SetEnv SLURM_CONF=$svc_dir/etc/slurm-login.conf
CONF
    install -d -m 0755 /run/sshd
    /usr/sbin/sshd -t -f "$conf" >>"$svc_dir/log/sshd.log" 2>&1 || svc_fail sshd "bad $conf"
}

login_ok() {
    ssh -i "$ssh_dir/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$ssh_dir/known_hosts" -o ConnectTimeout=2 "$user@$ns_ip" true
}

start_sshd() {
    # shellcheck disable=SC2016  # $1 is the inner shell's
    svc_spawn sshd ip netns exec "$ns" unshare --uts \
        sh -c 'hostname sharin-remote; exec /usr/sbin/sshd -D -e -f "$1"' sh "$conf"
    svc_wait sshd sshd 20 login_ok
}

case ${1:-} in
start)
    t0=$(svc_clock)
    svc_init
    if svc_pid sshd sshd >/dev/null && login_ok >/dev/null 2>&1; then
        svc_report sshd "already running" "$t0"
        exit 0
    fi
    svc_stop sshd sshd
    link_up
    setup_user
    start_sshd
    svc_report sshd started "$t0"
    ;;
restart)
    t0=$(svc_clock)
    svc_stop sshd sshd
    start_sshd
    svc_report sshd restarted "$t0"
    ;;
stop)
    svc_stop sshd sshd
    ip link del "$host_if" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    ;;
status) svc_pid sshd sshd >/dev/null && login_ok >/dev/null 2>&1 ;;
*)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 2
    ;;
esac
