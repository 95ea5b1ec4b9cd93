# Sourced by bench/faults.sh for --soak: the chaos soak. The sendgrid-events pipeline (signed
# webhook → Kafka → normalize-sendgrid-events → Parquet on S3) as pipelines/sendgrid-events.toml
# configures it, driven at a share of the capacity the bench measured for that path on this
# machine, for a long run in which every webhook fault of the suite comes once, in turn, each
# in a slot of its own, and then a canary that must roll back:
#
#   broker   tansu frozen (SIGSTOP) for the outage, then resumed (its log is in memory here)
#   s3       SeaweedFS stopped for the outage (the table's and the dead letters' store)
#   kill     the host SIGKILLed half a window after a window was stored, then restarted
#   group    a second host joins the consumer group, is killed after the outage
#   plugin   normalize-sendgrid-events swapped to a version trapping on every batch for the
#            outage, then back (watched plugins directory)
#   canary   a candidate that traps on every batch, put on two of the four partitions through
#            the admin API; the host must roll it back by itself
#
# The load is `soak-load` (bench/harness): bodies of 100 realistic events, each signed when
# sent, at a fixed rate, retried as SendGrid retries (1, 2, then 4 s), every attempt logged.
# soak_sample.py samples the hosts' RSS and consumer lag every few seconds; soak_check.py then
# accounts for every acked event in the table and dead letters with DuckDB and writes the table.
#
# Expects bench/faults.sh's state: $work, $results, $plugins, $python, $bucket, $sluice_bin,
# the private services, and its functions (start_host, fault_host_config, start_tansu, ...).

soak_seconds="${FAULTS_SOAK_SECONDS:-1800}"
soak_share="${FAULTS_SOAK_SHARE:-0.5}"
soak_events=100
soak_faults=(broker s3 kill group plugin canary)
soak_admin_token="soak-$run_id"

# The webhook → connector path's capacity on this machine, measured end to end on the soak's own
# host before the soak: `soak-load --cut-off` keeps 64 requests in flight for
# $soak_calibration_seconds s, and the capacity is the lower of the events/s the webhook acked and
# the events/s the connector stored (rows and dead letters on /metrics) after a warm-up of a
# third of that time. Then waits until the pipeline drained. Sets $capacity and $capacity_note.
soak_calibration_seconds="${FAULTS_SOAK_CALIBRATION_SECONDS:-90}"
soak_calibrate() {
    if [[ -n "${FAULTS_SOAK_CAPACITY:-}" ]]; then
        capacity="$FAULTS_SOAK_CAPACITY" capacity_note="FAULTS_SOAK_CAPACITY"
        return
    fi
    local seconds="$soak_calibration_seconds" warm stored0 stored1 t0 t1 load_pid
    warm=$((seconds / 3))
    log "soak: measuring the path's capacity for ${seconds}s"
    "$load_bin" run --url "http://127.0.0.1:$port/v1/webhooks/sendgrid" --key "$soak_key" \
        --log "$work/capacity.csv" --id-prefix "c$run_id" --rate 100000000 --events "$soak_events" \
        --duration "$seconds" --connections 64 --retry-grace 0 --timeout 15 --cut-off \
        >"$work/capacity-summary.json" 2>>"$work/logs/capacity-load.log" &
    load_pid=$!
    started_pids+=("$load_pid")
    sleep "$warm"
    t0="$(now)" stored0="$(soak_stored)"
    sleep $((seconds - warm))
    t1="$(now)" stored1="$(soak_stored)"
    wait "$load_pid" || die "the capacity load failed; see logs/capacity-load.log"
    read -r capacity capacity_note < <(python3 - "$work/capacity.csv" "$t0" "$t1" "$stored0" "$stored1" "$soak_events" <<'PY'
import csv, sys
path, t0, t1, stored0, stored1, events = sys.argv[1], *map(float, sys.argv[2:7])
with open(path) as log:
    acked = sum(1 for row in csv.DictReader(log) if 200 <= int(row["status"]) < 300 and t0 <= float(row["t1"]) <= t1)
acked_rate, stored_rate = acked * events / (t1 - t0), (stored1 - stored0) / (t1 - t0)
print(f"{int(min(acked_rate, stored_rate))} acked_{acked_rate:,.0f}_and_stored_{stored_rate:,.0f}_events/s")
PY
    )
    log "soak: capacity $capacity events/s ($capacity_note); waiting for the pipeline to drain"
    local deadline=$((SECONDS + 600))
    until [[ "$(soak_lag)" == 0 ]]; do
        ((SECONDS < deadline)) || die "the pipeline did not drain within 600 s after measuring its capacity"
        sleep 1
    done
}

# Rows plus dead letters the host reports stored; its consumer lag.
soak_metric_sum() {
    curl -sS --max-time 5 "http://127.0.0.1:$port/metrics" |
        awk -v names="$1" 'BEGIN { split(names, n, ","); for (i in n) want[n[i]] = 1 }
            { name = $1; sub(/\{.*/, "", name) } want[name] { sum += $NF } END { printf "%d\n", sum }'
}
soak_stored() { soak_metric_sum sluice_sink_rows_total,sluice_dead_letters_total; }
soak_lag() { soak_metric_sum sluice_kafka_consumer_lag; }

soak_hosts="$work/soak-hosts"    # name pid port, one line per host started (the sampler reads it)
soak_windows="$work/soak-faults.jsonl"

soak_record_host() { echo "$1 $2 $3" >>"$soak_hosts"; }

# Appends one fault's window to soak-faults.jsonl: NAME START END [NOTE].
soak_record_fault() {
    python3 -c 'import json, sys; print(json.dumps({"fault": sys.argv[1], "start": float(sys.argv[2]), "end": float(sys.argv[3]), "note": sys.argv[4]}))' \
        "$1" "$2" "$3" "${4:-}" >>"$soak_windows"
}

# The soak's tansu keeps its log in memory (see bench/faults.sh), which a restart would lose, so
# the broker goes away by being frozen: connections stay open and nothing answers.
soak_inject_broker() {
    kill -STOP "$tansu_pid"
    sleep "$outage"
    kill -CONT "$tansu_pid"
}
soak_inject_s3() { inject_s3; }

soak_inject_kill() {
    wait_log "$host_name" '"window stored"' "$(log_count "$host_name" '"window stored"')" 60
    sleep "$(awk "BEGIN { print $soak_rotate_ms / 2000 }")"
    fault_start="$(now)"
    kill_pid "$host_pid"
    host_name="soak-restarted"
    start_host "$host_name" "$config" "$port"
    soak_record_host "$host_name" "$host_pid" "$port"
    host_logs+=("$work/logs/$host_name.log")
}

soak_inject_group() {
    local second_port second_config main_pid="$host_pid"
    second_port="$(free_port)"
    second_config="$(fault_host_config soak-second "$second_port" "$fault_plugins" false)"
    cp "$work/pipelines-soak/sendgrid-events.toml" "$work/pipelines-soak-second/"
    start_host soak-second "$second_config" "$second_port"
    local second_pid="$host_pid"
    host_pid="$main_pid"
    soak_record_host soak-second "$second_pid" "$second_port"
    host_logs+=("$work/logs/soak-second.log")
    wait_log soak-second '"partitions assigned"' 0 60
    sleep "$outage"
    kill_pid "$second_pid"
}

soak_inject_plugin() {
    local swaps
    swaps="$(log_count "$host_name" '"plugin swapped"')"
    cp "$plugins/fixtures/fixture-trapping-normalize.wasm" "$fault_plugins/.trapping.tmp"
    mv -f "$fault_plugins/.trapping.tmp" "$fault_plugins/normalize-sendgrid-events.wasm"
    wait_log "$host_name" '"plugin swapped"' "$swaps" 60
    sleep "$outage"
    swaps="$(log_count "$host_name" '"plugin swapped"')"
    cp "$plugins/normalize-sendgrid-events.wasm" "$fault_plugins/.good.tmp"
    mv -f "$fault_plugins/.good.tmp" "$fault_plugins/normalize-sendgrid-events.wasm"
    wait_log "$host_name" '"plugin swapped"' "$swaps" 60
}

# A candidate trapping on every batch on two of the four partitions (30 %: partitions 0 and 3);
# done when the host rolled it back.
soak_inject_canary() {
    local admin="http://127.0.0.1:$port/v1/admin/plugins/normalize-sendgrid-events/canary" status state deadline
    status="$(curl -sS -o "$work/soak-canary-start.json" -w '%{http_code}' -X PUT \
        -H "Authorization: Bearer $soak_admin_token" --data-binary "@$plugins/fixtures/fixture-trapping-normalize.wasm" \
        "$admin?share_percent=30")"
    [[ "$status" == 200 ]] || die "starting the canary answered HTTP $status: $(cat "$work/soak-canary-start.json")"
    deadline=$((SECONDS + 180))
    while :; do
        curl -sS --max-time 5 -H "Authorization: Bearer $soak_admin_token" "$admin" >"$work/soak-canary.json" 2>/dev/null || true
        state="$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("state", ""))' "$work/soak-canary.json" 2>/dev/null || true)"
        [[ "$state" == rolled_back ]] && break
        ((SECONDS < deadline)) || die "the canary was not rolled back within 180 s (state '$state'); see logs/$host_name.log"
        sleep 0.2
    done
    canary_note="$("$python" - "$work/soak-canary.json" <<'PY'
import json, sys
view = json.load(open(sys.argv[1]))
rollback, counts = view.get("rollback") or {}, (view.get("candidate") or {}).get("counts") or {}
print(f"rolled back ({rollback.get('reason')}: {rollback.get('detail')}) after {counts.get('batches')} candidate batches")
PY
)"
}

run_soak() {
    local rate
    soak_rotate_ms="$(sed -n 's/^rotate_ms = //p' pipelines/sendgrid-events.toml)"

    fault=soak
    fault_plugins="$work/plugins-soak"
    mkdir -p "$fault_plugins" "$work/results"
    cp "$plugins/normalize-sendgrid-events.wasm" "$fault_plugins/"
    port="$(free_port)"
    config="$(fault_host_config soak "$port" "$fault_plugins" true)"
    local topic="faults_soak_$run_id" group="faults-soak-$run_id" prefix="faults/$run_id/soak"
    # The product's pipeline file with this run's topic, group, bucket and prefixes.
    sed -e "s/^topic = .*/topic = \"$topic\"/" -e "s/^group = .*/group = \"$group\"/" \
        -e "s/^bucket = .*/bucket = \"$bucket\"/" \
        -e "s|^prefix = \"sendgrid/events\"|prefix = \"$prefix/events\"|" \
        -e "s|^prefix = \"sendgrid/dead-letters\"|prefix = \"$prefix/dead-letters\"|" \
        pipelines/sendgrid-events.toml >"$work/pipelines-soak/sendgrid-events.toml"

    soak_key="$work/soak-key.p8"
    public_key="$("$load_bin" keygen --key "$soak_key")"
    export SLUICE_ADMIN_TOKEN="$soak_admin_token"
    : >"$soak_hosts"
    : >"$soak_windows"
    host_name=soak
    host_logs=("$work/logs/soak.log")
    start_host soak "$config" "$port"
    soak_record_host soak "$host_pid" "$port"
    soak_calibrate
    rate="$(awk "BEGIN { printf \"%d\", $capacity * $soak_share }")"
    log "soak: ${soak_seconds}s at $rate events/s ($soak_share of $capacity events/s), faults: ${soak_faults[*]}"

    start_bg soak-sampler "$python" bench/faults/soak_sample.py --hosts "$soak_hosts" --out "$work/soak-samples.jsonl" \
        --interval 5
    local sampler_pid="$last_pid"
    local load_log="$work/soak-load.csv" id_prefix="s$run_id"
    local load_started
    load_started="$(now)"
    "$load_bin" run --url "http://127.0.0.1:$port/v1/webhooks/sendgrid" --key "$soak_key" --log "$load_log" \
        --id-prefix "$id_prefix" --rate "$rate" --events "$soak_events" --duration "$soak_seconds" \
        --connections 128 --retry-grace 90 --timeout 15 \
        >"$work/soak-load-summary.json" 2>>"$work/logs/soak-load.log" &
    local load_pid=$!
    started_pids+=("$load_pid")

    # Each fault in a slot of its own, a third of the way in: the quiet stretches around it
    # are the latency "outside faults" is measured on.
    local slot=$((soak_seconds / ${#soak_faults[@]})) index=0 at
    for fault in "${soak_faults[@]}"; do
        at="$(awk "BEGIN { printf \"%.3f\", $load_started + $index * $slot + $slot / 3 }")"
        sleep "$(awk "BEGIN { d = $at - $(now); printf \"%.3f\", (d > 0 ? d : 0) }")"
        log "soak: injecting $fault"
        canary_note=""
        fault_start="$(now)"
        "soak_inject_$fault"
        fault_end="$(now)"
        soak_record_fault "$fault" "$fault_start" "$fault_end" "$canary_note"
        log "soak: $fault over after $(awk "BEGIN { printf \"%.1f\", $fault_end - $fault_start }")s"
        kill -0 "$load_pid" 2>/dev/null || die "the load generator stopped during $fault; see logs/soak-load.log"
        index=$((index + 1))
    done
    wait "$load_pid" || die "the load generator failed; see logs/soak-load.log"
    log "soak: load done ($(cat "$work/soak-load-summary.json")); accounting for every acked event"
    local host_log_args=()
    for host_log in "${host_logs[@]}"; do host_log_args+=(--host-log "$host_log"); done
    local status=0
    "$python" bench/faults/soak_check.py --bucket "$bucket" --prefix "$prefix" --log "$load_log" \
        --id-prefix "$id_prefix" --events "$soak_events" --faults "$soak_windows" --samples "$work/soak-samples.jsonl" \
        --load-summary "$work/soak-load-summary.json" --metrics-url "http://127.0.0.1:$port/metrics" \
        --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" "${host_log_args[@]}" \
        --meta "run_id=$run_id" --meta "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --meta "host_profile=$profile" --meta "capacity_events_per_s=$capacity" --meta "capacity_source=$capacity_note" \
        --meta "calibration_s=$soak_calibration_seconds" \
        --meta "share=$soak_share" --meta "rate_events_per_s=$rate" --meta "seconds=$soak_seconds" \
        --meta "outage_s=$outage" --meta "rotate_ms=$soak_rotate_ms" \
        --json "$results/chaos-soak.json" --markdown "${FAULTS_MARKDOWN:-$repo/bench/results/chaos-soak.md}" \
        --targets "${FAULTS_TARGETS:-$repo/bench/results/chaos-soak.targets.json}" || status=$?
    stop_pid "$sampler_pid"
    stop_pid "$host_pid"
    return "$status"
}
