# Sourced (after up.sh): what the tests need to reach the services. The names are not SHARIN_*:
# that prefix is the environment sharin gives its tasks, which tests compare.
#   TEST_SERVICES_DIR      the state directory (pids, logs, configuration, keys)
#   SLURM_CONF             Slurm's configuration; TEST_SLURM_PARTITIONS, the default first
#   TEST_SSH_HOST/PORT/USER/KEY/KNOWN_HOSTS    the SSH host in the network namespace
#   TEST_SSH_SLURM_CONF    SLURM_CONF inside its sessions (sshd sets it)
#   SGE_ROOT, SGE_CELL, TEST_SGE_QUEUE         Grid Engine
#   TEST_TORQUE_BIN        the PBS/Torque wrappers on Slurm (put it first on PATH to use them)
#   TEST_SERVICES_SCRIPTS  this directory (netns-link.sh, sshd.sh restart, slurm.sh restart)
export TEST_SERVICES_DIR=${TEST_SERVICES_DIR:-/tmp/sharin-services}
export TEST_SERVICES_SCRIPTS
TEST_SERVICES_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SLURM_CONF=$TEST_SERVICES_DIR/etc/slurm.conf
export TEST_SLURM_PARTITIONS=debug,long
export TEST_SSH_HOST=10.200.0.2
export TEST_SSH_PORT=22
export TEST_SSH_USER=sharinci
export TEST_SSH_KEY=$TEST_SERVICES_DIR/ssh/id_ed25519
export TEST_SSH_KNOWN_HOSTS=$TEST_SERVICES_DIR/ssh/known_hosts
export TEST_SSH_SLURM_CONF=$TEST_SERVICES_DIR/etc/slurm-login.conf
export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
export TEST_SGE_QUEUE=all.q
export TEST_TORQUE_BIN=$TEST_SERVICES_DIR/torque/bin
