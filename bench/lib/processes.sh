# Sourced by bench/run.sh and bench/faults.sh: the background processes a run starts, each
# with its own log, and stopping every one of them on exit. Expects $work (logs in $work/logs).

started_pids=()

# Stops PID: SIGTERM, up to 15 s to exit, then SIGKILL.
stop_pid() {
    local pid="$1" waited=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((waited < 150)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Stops every process start_bg started (for the scripts' exit traps).
stop_started() {
    local pid
    for pid in "${started_pids[@]}"; do
        stop_pid "$pid"
    done
}

# Starts "$@" in the background with output appended to logs/NAME.log; sets $last_pid.
start_bg() {
    local name="$1"
    shift
    "$@" >>"$work/logs/$name.log" 2>&1 &
    last_pid=$!
    started_pids+=("$last_pid")
}
