#!/usr/bin/env bash
# Stop the private Slurm started by .ci/slurm/up.sh.
#
#   bash .ci/slurm/down.sh [ROOT]      # ROOT defaults to $TWIN_SLURM_DIR or /tmp/twin-slurm
#
# Cancels all jobs first, then sends TERM to exactly the PIDs that up.sh recorded in
# ROOT/pids/ (newest daemon first), and KILL to any still alive after a grace period. A PID
# is signalled only while it still belongs to the expected program, so a reused PID is never
# hit. Idempotent: a second run, or a run with nothing started, does nothing and exits 0.
# The folder itself is kept (logs stay readable); up.sh wipes it on its next fresh start.
set -euo pipefail

ROOT=${1:-${TWIN_SLURM_DIR:-/tmp/twin-slurm}}
GRACE=${TWIN_SLURM_GRACE:-10}      # seconds between TERM and KILL
# Reverse start order; each name maps to the program name the kernel reports for the PID.
DAEMONS=(slurmd slurmctld slurmdbd mariadb munged)
declare -A COMM=([slurmd]=slurmd [slurmctld]=slurmctld [slurmdbd]=slurmdbd
                 [mariadb]=mariadbd [munged]=munged)

log() { printf '[slurm-down] %s\n' "$*" >&2; }

# The recorded PID of daemon $1 if that process is alive and still runs the expected program.
live_pid() {
    local pid
    pid=$(cat "$ROOT/pids/$1.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${COMM[$1]}" ]] || return 1
    echo "$pid"
}

[[ -d $ROOT/pids ]] || { log "nothing recorded under $ROOT; nothing to stop"; exit 0; }

# 1. Cancel the jobs while slurmctld can still do it, and give them a moment to end.
if [[ -f $ROOT/etc/slurm.conf ]] && live_pid slurmctld >/dev/null; then
    export SLURM_CONF=$ROOT/etc/slurm.conf
    mapfile -t jobs < <(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if ((${#jobs[@]})); then
        log "cancelling ${#jobs[@]} job(s)"
        timeout 10 scancel --quiet "${jobs[@]}" || true
        for _ in $(seq 20); do
            [[ -z $(timeout 5 squeue -h -o %A 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
fi

# 2. TERM the daemons one by one, KILL after the grace period.
for name in "${DAEMONS[@]}"; do
    if pid=$(live_pid "$name"); then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((GRACE * 5))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop within ${GRACE}s; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$ROOT/pids/$name.pid"
done
log "stopped"
