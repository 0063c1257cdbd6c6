# Sourced (after up.sh): what the tests need to reach the services.
#   SHARIN_SERVICES_DIR     the state directory (pids, logs, configuration, keys)
#   SLURM_CONF              Slurm's configuration, here; SHARIN_SLURM_PARTITIONS, the default first
#   SHARIN_SSH_HOST/PORT/USER/KEY/KNOWN_HOSTS   the SSH host in the network namespace
#   SHARIN_SSH_SLURM_CONF   SLURM_CONF inside its sessions (sshd sets it)
#   SGE_ROOT, SGE_CELL, SHARIN_SGE_QUEUE        Grid Engine
#   SHARIN_TORQUE_BIN       the PBS/Torque wrappers on Slurm (put it first on PATH to use them)
#   SHARIN_SERVICES_SCRIPTS this directory (netns-link.sh, sshd.sh restart, slurm.sh restart)
export SHARIN_SERVICES_DIR=${SHARIN_SERVICES_DIR:-/tmp/sharin-services}
export SHARIN_SERVICES_SCRIPTS
SHARIN_SERVICES_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SLURM_CONF=$SHARIN_SERVICES_DIR/etc/slurm.conf
export SHARIN_SLURM_PARTITIONS=debug,long
export SHARIN_SSH_HOST=10.200.0.2
export SHARIN_SSH_PORT=22
export SHARIN_SSH_USER=sharinci
export SHARIN_SSH_KEY=$SHARIN_SERVICES_DIR/ssh/id_ed25519
export SHARIN_SSH_KNOWN_HOSTS=$SHARIN_SERVICES_DIR/ssh/known_hosts
export SHARIN_SSH_SLURM_CONF=$SHARIN_SERVICES_DIR/etc/slurm-login.conf
export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
export SHARIN_SGE_QUEUE=all.q
export SHARIN_TORQUE_BIN=$SHARIN_SERVICES_DIR/torque/bin
