#!/usr/bin/env bash
# Start a private, single-node Slurm cluster with accounting, for twin's sweep tests.
#
#   bash .ci/slurm/up.sh [ROOT]        # ROOT defaults to $TWIN_SLURM_DIR or /tmp/twin-slurm
#   source ROOT/env                    # or copy the printed `export SLURM_CONF=...` line
#   bash .ci/slurm/down.sh [ROOT]      # cancel jobs and stop the daemons again
#
# Run as root on a Debian machine without systemd. Everything this script writes (configs,
# state, spool, logs, PID files, the MariaDB datadir, the munge key and socket) lives under
# ROOT; the only change outside it is an /etc/hosts line, when the short host name does not
# resolve. Daemons: munged (as user munge), a MariaDB bound to 127.0.0.1 on a spare port,
# slurmdbd, slurmctld and slurmd, each in the background with its PID recorded in
# ROOT/pids/<name>.pid (down.sh stops exactly those PIDs). All ports are spare ones picked at
# start, so this never collides with another Slurm or MariaDB on the machine.
#
# Idempotent: when the recorded daemons are still alive and the node answers, it only prints
# the environment again. Otherwise it stops any leftovers (down.sh) and starts afresh.
#
# Environment knobs: TWIN_SLURM_DIR (ROOT), TWIN_SLURM_TIMEOUT (seconds to wait for each
# daemon, default 90). The comments below explain the settings that matter on a machine
# without systemd or a writable cgroup hierarchy.
set -euo pipefail

ROOT=${1:-${TWIN_SLURM_DIR:-/tmp/twin-slurm}}
TIMEOUT=${TWIN_SLURM_TIMEOUT:-90}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MARKER=.twin-slurm-root            # marks ROOT as ours, so we never wipe a foreign folder
PACKAGES=(slurm-wlm slurmctld slurmd slurm-client slurmdbd munge mariadb-server mariadb-client)
T0=$SECONDS

log() { printf '[slurm-up %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }

# Print the last lines of every log under ROOT/log, then exit non-zero.
die() {
    printf '[slurm-up] ERROR: %s\n' "$*" >&2
    local f
    for f in "$ROOT"/log/*.log; do
        [[ -s $f ]] || continue
        printf '\n----- last lines of %s -----\n' "$f" >&2
        tail -n 25 "$f" >&2
    done
    exit 1
}

# wait_for DESCRIPTION PIDNAME COMMAND...: poll COMMAND every 0.5 s until it succeeds; fail
# early if the daemon PIDNAME died, and after $TIMEOUT seconds in any case.
wait_for() {
    local what=$1 name=$2 deadline=$((SECONDS + TIMEOUT))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [[ -n $name ]] && ! kill -0 "$(cat "$ROOT/pids/$name.pid")" 2>/dev/null; then
            die "$name exited while waiting for: $what"
        fi
        ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for: $what"
        sleep 0.5
    done
    log "ok: $what"
}

# start NAME LOGFILE COMMAND...: run COMMAND detached (own session, no stdin, output to the
# log) and record its PID. The daemons run in the foreground mode of each program, so $! is
# the daemon itself and down.sh can signal exactly it.
start() {
    local name=$1 logfile=$2
    shift 2
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    echo $! >"$ROOT/pids/$name.pid"
    log "started $name (pid $!)"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
spare_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

all_alive() {
    local name pid
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        pid=$(cat "$ROOT/pids/$name.pid" 2>/dev/null) || return 1
        kill -0 "$pid" 2>/dev/null || return 1
    done
}

node_state() { sinfo -h -N -o %T 2>/dev/null | head -n 1; }

write_env() {
    printf 'export SLURM_CONF=%s\n' "$ROOT/etc/slurm.conf" >"$ROOT/env"
    echo "export SLURM_CONF=$ROOT/etc/slurm.conf"
}

[[ $(id -u) -eq 0 ]] || { echo "up.sh must run as root" >&2; exit 1; }

# ---------------------------------------------------------------- 1. packages (idempotent)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]} (apt-get, quiet)"
    export DEBIAN_FRONTEND=noninteractive
    # Installing does not start the services here (no systemd, policy-rc.d): that is expected.
    aptlog=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$aptlog" 2>&1; then
        cat "$aptlog" >&2
        echo "[slurm-up] ERROR: apt-get install ${missing[*]} failed" >&2
        exit 1
    fi
    rm -f "$aptlog"
    log "packages installed"
fi

# ---------------------------------------------------------------- 2. already running?
if [[ -f $ROOT/etc/slurm.conf ]] && all_alive; then
    export SLURM_CONF=$ROOT/etc/slurm.conf
    if [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]; then
        log "private Slurm already running under $ROOT"
        write_env
        exit 0
    fi
fi

# ---------------------------------------------------------------- 3. fresh folder
if [[ -d $ROOT && -n $(ls -A "$ROOT") && ! -e $ROOT/$MARKER ]]; then
    echo "$ROOT exists, is not empty and was not made by up.sh; choose another folder" >&2
    exit 1
fi
bash "$HERE/down.sh" "$ROOT" >/dev/null 2>&1 || true   # stop leftovers of an earlier start
mkdir -p "$ROOT"
touch "$ROOT/$MARKER"
rm -rf "${ROOT:?}"/{etc,state,spool,log,run,pids,munge,mysql,env}
mkdir -p "$ROOT"/{etc,state,spool,log,run,pids,munge,mysql}
chmod 755 "$ROOT"
chown munge:munge "$ROOT/munge"
chmod 711 "$ROOT/munge"   # clients need to reach the socket; the key itself is 400
chown mysql:mysql "$ROOT/mysql"

# Slurm's hosts must resolve by short name (slurmctld checks SlurmctldHost against it).
HOST=$(hostname -s)
if ! getent hosts "$HOST" >/dev/null; then
    log "adding '127.0.0.1 $HOST' to /etc/hosts"
    echo "127.0.0.1 $HOST" >>/etc/hosts
fi

DB_PORT=$(spare_port)
DBD_PORT=$(spare_port)
CTLD_PORT=$(spare_port)
SLURMD_PORT=$(spare_port)
MUNGE_SOCKET=$ROOT/munge/munge.socket
MYSQL_SOCKET=$ROOT/mysql/mysqld.sock

# ---------------------------------------------------------------- 4. munge
# munged refuses to run as root; it runs as user munge with a private key and socket.
if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$ROOT/munge/munge.key" --force
else
    dd if=/dev/urandom of="$ROOT/munge/munge.key" bs=1024 count=1 status=none
fi
chown munge:munge "$ROOT/munge/munge.key"
chmod 400 "$ROOT/munge/munge.key"
touch "$ROOT/log/munged.log"
chown munge:munge "$ROOT/log/munged.log"
start munged "$ROOT/log/munged.log" \
    setpriv --reuid=munge --regid=munge --clear-groups \
    /usr/sbin/munged --foreground --key-file="$ROOT/munge/munge.key" \
    --socket="$MUNGE_SOCKET" --pid-file="$ROOT/munge/munged.pid" \
    --seed-file="$ROOT/munge/munged.seed" --log-file="$ROOT/log/munged.log"
wait_for "munge answers" munged bash -c "munge -n --socket='$MUNGE_SOCKET' | unmunge --socket='$MUNGE_SOCKET'"

# ---------------------------------------------------------------- 5. MariaDB for slurmdbd
# --no-defaults everywhere: ignore /etc/mysql, this server is entirely under ROOT/mysql.
mariadb-install-db --no-defaults --user=mysql --datadir="$ROOT/mysql/data" \
    --auth-root-authentication-method=socket --skip-test-db >"$ROOT/log/mariadb-install.log" 2>&1 \
    || die "mariadb-install-db failed (see $ROOT/log/mariadb-install.log)"
start mariadb "$ROOT/log/mariadb.log" \
    mariadbd --no-defaults --user=mysql --datadir="$ROOT/mysql/data" \
    --socket="$MYSQL_SOCKET" --bind-address=127.0.0.1 --port="$DB_PORT" \
    --pid-file="$ROOT/mysql/mariadb.pid" --skip-name-resolve --skip-log-bin \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=16M
wait_for "MariaDB on 127.0.0.1:$DB_PORT" mariadb \
    mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" -uroot ping
DB_PASS=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
mariadb --no-defaults --socket="$MYSQL_SOCKET" -uroot -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
    || die "could not create the accounting database"

# ---------------------------------------------------------------- 6. Slurm configuration
# Take the hardware exactly as slurmd detects it: a RealMemory above the detected value
# drains the node. Keep a small margin below it.
read -r CPUS SOCKETS CORES THREADS MEM < <(slurmd -C | awk '
    /^NodeName/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                  print v["CPUs"], v["SocketsPerBoard"], v["CoresPerSocket"], v["ThreadsPerCore"], v["RealMemory"] }')
[[ -n ${MEM:-} ]] || die "slurmd -C did not report the node's hardware"
REALMEM=$((MEM > 1024 ? MEM - 256 : MEM))

cat >"$ROOT/etc/slurm.conf" <<EOF
# Private single-node Slurm written by .ci/slurm/up.sh — do not edit, it is rewritten.
ClusterName=twin
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
MpiDefault=none
# The default cgroup plugins fail without a writable cgroup hierarchy ("freezer not mounted").
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# Accounting through slurmdbd: submitit polls sacct, and without it a job that dies before
# writing its result (OOM, SIGKILL, time limit) would leave a sweep waiting forever.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# For slurmdbd with munge this names the munge socket used towards slurmdbd (AuthInfo is not
# used for that connection): our private munged.
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
KillWait=5
PlugStackConfig=$ROOT/etc/plugstack.conf
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool/slurmd
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
# There is no syslog here: without log files, job step errors are invisible.
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$REALMEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
: >"$ROOT/etc/plugstack.conf"

# slurmdbd reads slurmdbd.conf beside SLURM_CONF; it holds a password, so mode 600.
cat >"$ROOT/etc/slurmdbd.conf" <<EOF
# Written by .ci/slurm/up.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$ROOT/etc/slurmdbd.conf"

export SLURM_CONF=$ROOT/etc/slurm.conf
write_env >/dev/null

# ---------------------------------------------------------------- 7. Slurm daemons
start slurmdbd "$ROOT/log/slurmdbd.out" slurmdbd -D
wait_for "slurmdbd answers" slurmdbd sacctmgr -n list cluster
start slurmctld "$ROOT/log/slurmctld.out" slurmctld -D -f "$SLURM_CONF"
wait_for "slurmctld is UP" slurmctld bash -c "scontrol ping | grep -q UP"
# slurmctld registers the cluster with slurmdbd on its own; sacct needs that.
wait_for "cluster registered in accounting" slurmctld \
    bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx twin"
start slurmd "$ROOT/log/slurmd.out" slurmd -D -f "$SLURM_CONF"
# shellcheck disable=SC2016  # expanded by the inner bash, on each poll
wait_for "node is idle" slurmd bash -c '[[ $(sinfo -h -N -o %T | head -n 1) == idle ]]'

# End-to-end check of what the sweeps need: a batch job runs a step, and sacct reports it.
SMOKE=$(sbatch --parsable --job-name=twin-slurm-smoke --output=/dev/null --wrap true) \
    || die "sbatch of the smoke-test job failed"
wait_for "smoke-test job $SMOKE COMPLETED in sacct" slurmd \
    bash -c "sacct -n -X -j '$SMOKE' -o State | grep -qw COMPLETED"

log "private Slurm ready under $ROOT in $((SECONDS - T0)) s ($CPUS CPUs, RealMemory=${REALMEM} MB)"
write_env
