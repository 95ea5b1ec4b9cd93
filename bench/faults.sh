#!/usr/bin/env bash
# The fault suite: the sendgrid-events pipeline (signed webhook → Kafka → normalize → Parquet on
# S3) under steady signed load while one thing at a time breaks, and the user-status ETL while
# PostgreSQL or the host goes away; then every acked event is looked for in the table.
#
# Usage: bench/faults.sh [--quick] [--only LIST] [--release] | --soak
#   --only LIST   comma-separated subset of (default: all, in this order):
#       broker    tansu stopped for the outage, then started again
#       s3        SeaweedFS stopped for the outage while windows close (tansu stores on it too)
#       kill      the host killed with SIGKILL mid-window, then restarted
#       group     a second host joins the consumer group, then is killed (partitions move twice)
#       plugin    a normalize-sendgrid-events that traps on every batch renamed into the watched
#                 plugins dir (tests/fixtures/plugins/fixture-trapping-normalize), then the real one
#       etl-pg    PostgreSQL restarted during a large user-status load
#       etl-kill  the host killed with SIGKILL during a large load, then restarted
#   --quick       the CI version: broker,kill,plugin (unless --only), shorter load and outage
#   --release     run the release host binary (default: the debug one, as scripts/test.sh builds)
#   --soak        the chaos soak instead (bench/faults/soak.sh): the webhook → connector path at
#                 half the capacity the bench measured for it on this machine (this checkout's
#                 .run/bench/results/connector.json, from `bench/run.sh --only connector`; the
#                 webhook's too when there is one) for 30 minutes, every webhook fault above in
#                 turn plus a canary the host must roll back; release host; writes
#                 bench/results/chaos-soak.md and .run/bench/results/chaos-soak.json.
#                 FAULTS_SOAK_SECONDS (1800), FAULTS_SOAK_SHARE (0.5), FAULTS_SOAK_CAPACITY
#                 (events/s, instead of the bench's figure), FAULTS_OUTAGE_SECONDS (10)
#
# Each webhook fault gets its own host, topic, consumer group and S3 prefix (all named after the
# run id): load.py posts signed bodies at a steady rate (retrying what is not answered 2xx, as
# SendGrid does) while the fault happens, check.py watches the table from the fault's end until
# everything acked before it is stored, and after the load it accounts for every acked event:
# a row or a dead letter, none missing (an acked event that the topic itself no longer holds
# was lost by the broker after acknowledging it, and is reported apart as `lost_by_broker`:
# tansu, stopped gracefully, can still acknowledge writes it then drops); duplicated rows, split
# into those SendGrid's retries explain and the rest; answers by status; table windows that
# overlap. Each ETL fault loads the
# same generated file into a fresh PostgreSQL schema and compares the three tables (counts and
# an md5 over the rows, ingested_at and job_id left out) with a load that met no fault.
#
# Services: the suite runs its own SeaweedFS (ports FAULTS_S3_PORT_BASE 21xxx: S3 +833, master
# +333, volume +340, filer +888, admin +646, each gRPC one more) and its own tansu stored on
# it, both under the run's work dir, so stopping them disturbs nobody else.
# `scripts/services.sh start` is still called for the tools and PostgreSQL, which is the
# machine's own: etl-pg restarts it for everyone (and the suite starts it again if it is down
# at exit).
#
# Output: .run/bench/results/faults.json (every figure) and bench/results/faults.md (the
# "Faults" section for bench/RESULTS.md). Exit status 1 if any fault lost an acked event, stored
# a row twice that no retry explains, or left an ETL job not succeeded exactly once or its
# tables unlike the clean load's. Every process started here is stopped on exit.
#
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/sluice/target); FAULTS_SLUICE_BIN, a host
# binary to run instead of building one (scripts/test.sh passes the one it tested); FAULTS_S3_PORT_BASE (21000);
# FAULTS_MARKDOWN, where the Markdown goes instead of bench/results/faults.md (scripts/test.sh
# keeps it under .run); FAULTS_ETL_RECORDS (full: 1000000, quick: 50000); FAULTS_RATE (bodies/s), FAULTS_EVENTS
# (events per body), FAULTS_LOAD_SECONDS, FAULTS_OUTAGE_SECONDS to override the load.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
export PYTHONDONTWRITEBYTECODE=1

all_faults="broker,s3,kill,group,plugin,etl-pg,etl-kill"
only=""
quick=0
soak=0
profile=debug
while [[ $# -gt 0 ]]; do
    case "$1" in
        --only) only="${2:?--only needs a list}"; shift 2 ;;
        --only=*) only="${1#--only=}"; shift ;;
        --quick) quick=1; shift ;;
        --release) profile=release; shift ;;
        --soak) soak=1; profile=release; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/faults.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -z "$only" ]]; then
    only="$( ((quick)) && echo broker,kill,plugin || echo "$all_faults")"
fi
for fault in ${only//,/ }; do
    [[ ",$all_faults," == *",$fault,"* ]] || {
        echo "bench/faults.sh: unknown fault '$fault' (allowed: $all_faults)" >&2
        exit 2
    }
done
selected() { [[ ",$only," == *",$1,"* ]]; }

if ((quick)); then
    rate="${FAULTS_RATE:-8}" events="${FAULTS_EVENTS:-10}" load_seconds="${FAULTS_LOAD_SECONDS:-24}"
    outage="${FAULTS_OUTAGE_SECONDS:-6}" fault_at=6 etl_records="${FAULTS_ETL_RECORDS:-50000}"
else
    rate="${FAULTS_RATE:-10}" events="${FAULTS_EVENTS:-20}" load_seconds="${FAULTS_LOAD_SECONDS:-45}"
    outage="${FAULTS_OUTAGE_SECONDS:-10}" fault_at=10 etl_records="${FAULTS_ETL_RECORDS:-1000000}"
fi
rotate_ms=3000

run_id="$(date -u +%Y%m%d%H%M%S)"
work="$repo/.run/bench/faults-$run_id"
results="$repo/.run/bench/results"
plugins="$repo/.run/bench/faults-plugins"
python="$repo/.venv/bin/python"
measure=(python3 "$repo/bench/lib/measure.py")
bucket="sluice-faults"
mkdir -p "$work/logs" "$work/results" "$results" "$repo/bench/results"

log() { printf '[faults %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
    echo "bench/faults.sh: error: $*" >&2
    exit 1
}
now() { date +%s.%N; }

# --- processes: every one started here is stopped on exit --------------------------------

# shellcheck source=bench/lib/processes.sh
source "$repo/bench/lib/processes.sh"

kill_pid() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

pg_cluster() { ls /etc/postgresql | sort -V | tail -n 1; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_started
    if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "bench/faults.sh: PostgreSQL is down; starting it again" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster)" main start || true
    fi
    rm -rf "$work/bin"
    if ((status != 0)); then
        echo "bench/faults.sh: stopped with status $status; logs in $work/logs" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { "${measure[@]}" free-port; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until CHECK (a command) succeeds, at most SECONDS; fails naming WHAT.
wait_for() {
    local what="$1" seconds="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || die "$what did not happen within ${seconds}s (logs in $work/logs)"
        sleep 0.2
    done
}

# --- preparation ---------------------------------------------------------------------------

log "run $run_id: $( ((soak)) && echo "chaos soak" || echo "$only ($( ((quick)) && echo quick || echo full))"), $profile host; work dir $work"

if [[ -n "${FAULTS_SLUICE_BIN:-}" ]]; then
    built="$FAULTS_SLUICE_BIN"
else
    log "building the host ($profile)"
    if ((soak)); then
        # With the soak's load generator, as bench/run.sh builds both, so they share one build.
        cargo build --release --locked -p sluice -p sluice-bench --bins
    elif [[ "$profile" == release ]]; then
        cargo build --release --locked -p sluice --bin sluice
    else
        cargo build --locked -p sluice --bin sluice
    fi
    built="$CARGO_TARGET_DIR/$profile/sluice"
fi
# Checkouts share the target dir, so the binary there can change under a run: hosts restarted
# mid-run must be the same build, so the run keeps its own link to it.
mkdir -p "$work/bin"
ln -f "$built" "$work/bin/sluice" 2>/dev/null || cp "$built" "$work/bin/sluice"
sluice_bin="$work/bin/sluice"
if ((soak)); then
    [[ -z "${FAULTS_SLUICE_BIN:-}" ]] || cargo build --release --locked -p sluice -p sluice-bench --bins
    ln -f "$CARGO_TARGET_DIR/release/soak-load" "$work/bin/soak-load" 2>/dev/null ||
        cp "$CARGO_TARGET_DIR/release/soak-load" "$work/bin/soak-load"
    load_bin="$work/bin/soak-load"
fi
log "building the plugins"
SLUICE_PLUGINS="normalize-sendgrid-events validate-user-status explode-status-logs fixture-trapping-normalize" \
    scripts/build-plugins.sh "$plugins" >"$work/logs/build-plugins.log" 2>&1 ||
    die "scripts/build-plugins.sh failed; see $work/logs/build-plugins.log"

log "checking the services' tools and PostgreSQL"
scripts/services.sh start >"$work/logs/services.log" 2>&1 || die "scripts/services.sh start failed; see $work/logs/services.log"
eval "$(scripts/services.sh env)"
tansu_bin="$(scripts/services.sh tansu-bin)"
if ! "$python" -c 'import duckdb, duckdb_extension_httpfs, confluent_kafka' 2>/dev/null; then
    "$repo/.venv/bin/pip" install --quiet duckdb==1.5.5 duckdb-extension-httpfs==1.5.5 confluent-kafka==2.16.1
fi

# --- private S3 and Kafka --------------------------------------------------------------------

port_base="${FAULTS_S3_PORT_BASE:-21000}"
s3_port=$((port_base + 833))
export SLUICE_S3_ENDPOINT="http://127.0.0.1:$s3_port" AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
export AWS_ENDPOINT_URL_S3="$SLUICE_S3_ENDPOINT"
sigv4=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")

s3_answers() {
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${sigv4[@]}" "$SLUICE_S3_ENDPOINT/")" == 200 ]]
}

start_seaweedfs() {
    local port
    for port in $((port_base + 333)) $((port_base + 340)) $((port_base + 888)) $((port_base + 646)) "$s3_port"; do
        ! port_open "$port" && ! port_open $((port + 1)) ||
            die "port $port or $((port + 1)) is taken; set FAULTS_S3_PORT_BASE to another base"
    done
    mkdir -p "$work/seaweedfs"
    start_bg seaweedfs "$repo/.venv/bin/weed" mini -dir="$work/seaweedfs" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="$s3_port" -s3.port.grpc=$((s3_port + 1)) \
        -master.port=$((port_base + 333)) -master.port.grpc=$((port_base + 334)) \
        -volume.port=$((port_base + 340)) -volume.port.grpc=$((port_base + 341)) \
        -filer.port=$((port_base + 888)) -filer.port.grpc=$((port_base + 889)) \
        -admin.port=$((port_base + 646)) -admin.port.grpc=$((port_base + 647)) \
        -master.telemetry=false -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.autoCreateBucket=false
    seaweedfs_pid="$last_pid"
    wait_for "SeaweedFS answering on $SLUICE_S3_ENDPOINT" 60 s3_answers
}

create_bucket() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' "${sigv4[@]}" -X PUT "$SLUICE_S3_ENDPOINT/$1")"
    [[ "$code" == 200 || "$code" == 409 ]] || die "creating bucket $1 answered HTTP $code"
}

kafka_port="$(free_port)"
export SLUICE_KAFKA_BROKERS="127.0.0.1:$kafka_port"

# The suite's tansu keeps its log on the private S3, so stopping it loses nothing. The soak's keeps
# it in memory: tansu's S3-backed log fetches slower the more batches a partition holds, and
# after about 15 minutes at the soak's rate a consumer that fell behind could no longer catch up.
tansu_storage="$( ((soak)) && echo memory://tansu/ || echo s3://tansu/)"
start_tansu() {
    AWS_DEFAULT_REGION="$AWS_REGION" AWS_ENDPOINT="$SLUICE_S3_ENDPOINT" AWS_ALLOW_HTTP=true \
        start_bg tansu "$tansu_bin" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
        --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine "$tansu_storage"
    tansu_pid="$last_pid"
    wait_for "tansu listening on $SLUICE_KAFKA_BROKERS" 60 port_open "$kafka_port"
}

log "starting a private SeaweedFS on $SLUICE_S3_ENDPOINT and tansu on $SLUICE_KAFKA_BROKERS"
start_seaweedfs
create_bucket tansu
create_bucket "$bucket"
start_tansu

# --- hosts ---------------------------------------------------------------------------------

# host_config and webhook_pipeline, written for this run's services.
# shellcheck source=bench/lib/config.sh
source "$repo/bench/lib/config.sh"

key_file="$work/webhook-key.hex"
public_key="$("$python" bench/faults/load.py keygen --key "$key_file")"

# A host config NAME PORT PLUGINS_DIR WATCH (true/false), logging JSON lines (check.py reads
# the "window stored" lines); prints its path.
fault_host_config() {
    local config
    config="$(host_config "$1" "$2" "$3" "watch = $4
watch_debounce_ms = 100")"
    printf '\n[log]\nformat = "json"\n' >>"$config"
    echo "$config"
}

# Starts `sluice serve` as NAME (log logs/NAME.log) and waits for /readyz; sets $host_pid.
start_host() {
    local name="$1" config="$2" port="$3"
    SENDGRID_WEBHOOK_PUBLIC_KEY="$public_key" start_bg "$name" "$sluice_bin" serve --config "$config"
    host_pid="$last_pid"
    "${measure[@]}" wait-ready --url "http://127.0.0.1:$port/readyz" --pid "$host_pid" \
        --log "$work/logs/$name.log" --timeout 120 >/dev/null
}

# The sendgrid-events pipeline as pipelines/sendgrid-events.toml has it, on this run's topic,
# group and prefix, with windows of $rotate_ms.
events_pipeline() { # FAULT
    webhook_pipeline sendgrid-events /v1/webhooks/sendgrid "faults_${1//-/_}_$run_id" 600 |
        sed "s/^group = .*/group = \"faults-$1-$run_id\"/"
    cat <<TOML

[[steps]]
plugin = "normalize-sendgrid-events"

[[sinks]]
from = "normalize-sendgrid-events.events"
kind = "parquet-s3"
bucket = "$bucket"
prefix = "faults/$run_id/$1/events"
partition_by = ["dt", "event"]
rotate_records = 100000
rotate_bytes = 134217728
rotate_ms = $rotate_ms
dedupe_by_key = true

[dead_letters]
kind = "s3"
bucket = "$bucket"
prefix = "faults/$run_id/$1/dead-letters"
TOML
}

# --- the webhook faults --------------------------------------------------------------------

# Waits until log NAME has COUNT more lines matching PATTERN than it had when BEFORE was taken.
log_count() { grep -c -- "$2" "$work/logs/$1.log" 2>/dev/null || true; }
wait_log() { # NAME PATTERN BEFORE SECONDS
    local deadline=$((SECONDS + $4))
    while (($(log_count "$1" "$2") <= $3)); do
        ((SECONDS < deadline)) || die "no new '$2' in logs/$1.log within $4 s"
        sleep 0.1
    done
}

# Adds a sentence to the current fault's notes in the report.
note() {
    log "$fault: $*"
    echo "$*" >>"$work/results/$fault.notes"
}

inject_broker() {
    stop_pid "$tansu_pid"
    sleep "$outage"
    start_tansu
}

inject_s3() {
    stop_pid "$seaweedfs_pid"
    sleep "$outage"
    start_seaweedfs
    if ! kill -0 "$tansu_pid" 2>/dev/null; then
        note "tansu exited while S3 was down and was started again"
        start_tansu
    fi
}

# Kills the host half a window after a window was stored, so one is open in every partition.
inject_kill() {
    wait_log "$fault" '"window stored"' "$(log_count "$fault" '"window stored"')" 30
    sleep "$(awk "BEGIN { print $rotate_ms / 2000 }")"
    fault_start="$(now)"
    kill_pid "$host_pid"
    start_host "$fault-restarted" "$config" "$port"
    host_logs+=("$work/logs/$fault-restarted.log")
}

inject_group() {
    local second_port second_config
    second_port="$(free_port)"
    second_config="$(fault_host_config "$fault-second" "$second_port" "$fault_plugins" false)"
    cp "$work/pipelines-$fault/sendgrid-events.toml" "$work/pipelines-$fault-second/"
    start_host "$fault-second" "$second_config" "$second_port"
    local second_pid="$host_pid"
    host_pid="$first_pid"
    host_logs+=("$work/logs/$fault-second.log")
    wait_log "$fault-second" '"partitions assigned"' 0 60
    sleep "$outage"
    kill_pid "$second_pid"
}

inject_plugin() {
    local swaps
    swaps="$(log_count "$fault" '"plugin swapped"')"
    cp "$plugins/fixtures/fixture-trapping-normalize.wasm" "$fault_plugins/.trapping.tmp"
    mv -f "$fault_plugins/.trapping.tmp" "$fault_plugins/normalize-sendgrid-events.wasm"
    wait_log "$fault" '"plugin swapped"' "$swaps" 60
    grep '"plugin swapped"' "$work/logs/$fault.log" | tail -n 1 | grep -q -- '-trapping' ||
        die "the host swapped in something else than the trapping plugin; see logs/$fault.log"
    sleep "$outage"
    swaps="$(log_count "$fault" '"plugin swapped"')"
    cp "$plugins/normalize-sendgrid-events.wasm" "$fault_plugins/.good.tmp"
    mv -f "$fault_plugins/.good.tmp" "$fault_plugins/normalize-sendgrid-events.wasm"
    wait_log "$fault" '"plugin swapped"' "$swaps" 60
}

run_webhook_fault() {
    fault="$1"
    log "$fault: host up, ${rate} bodies/s of $events events for ${load_seconds}s, fault at ${fault_at}s"
    fault_plugins="$work/plugins-$fault"
    mkdir -p "$fault_plugins"
    cp "$plugins/normalize-sendgrid-events.wasm" "$fault_plugins/"
    port="$(free_port)"
    config="$(fault_host_config "$fault" "$port" "$fault_plugins" "$([[ $fault == plugin ]] && echo true || echo false)")"
    events_pipeline "$fault" >"$work/pipelines-$fault/sendgrid-events.toml"
    host_logs=("$work/logs/$fault.log")
    start_host "$fault" "$config" "$port"
    first_pid="$host_pid"

    local load_log="$work/$fault-load.jsonl" id_prefix="f$run_id-$fault"
    start_bg "$fault-load" "$python" bench/faults/load.py run --url "http://127.0.0.1:$port/v1/webhooks/sendgrid" \
        --key "$key_file" --log "$load_log" --id-prefix "$id_prefix" --rate "$rate" --events "$events" \
        --duration "$load_seconds" --connections 8 --retry-grace 40 --timeout 15
    local load_pid="$last_pid"
    sleep "$fault_at"
    fault_start="$(now)"
    log "$fault: injecting"
    "inject_${fault}"
    fault_end="$(now)"
    log "$fault: over after $(awk "BEGIN { printf \"%.1f\", $fault_end - $fault_start }")s; watching the table catch up"
    local check=(--bucket "$bucket" --prefix "faults/$run_id/$fault" --log "$load_log" --id-prefix "$id_prefix"
        --events "$events")
    start_bg "$fault-watch" "$python" bench/faults/check.py watch "${check[@]}" --since "$fault_end" \
        --timeout 180 --out "$work/$fault-watch.json"
    local watch_pid="$last_pid"
    wait "$load_pid" || die "the load generator failed; see logs/$fault-load.log"
    wait "$watch_pid" || true
    log "$fault: load done; accounting for every acked event"
    local host_log_args=()
    for host_log in "${host_logs[@]}"; do host_log_args+=(--host-log "$host_log"); done
    "$python" bench/faults/check.py verify "${check[@]}" --fault-start "$fault_start" --fault-end "$fault_end" \
        --watch "$work/$fault-watch.json" "${host_log_args[@]}" --drain-timeout 120 \
        --brokers "$SLUICE_KAFKA_BROKERS" --topic "faults_${fault//-/_}_$run_id" \
        --out "$work/results/$fault.json" | tee -a "$work/logs/$fault-verify.log"
    stop_pid "$host_pid"
}

# --- the ETL faults ------------------------------------------------------------------------

etl_file="$repo/.run/bench/etl/user-status-$etl_records.jsonl"
etl_expected="$repo/.run/bench/etl/user-status-$etl_records.expected.json"
etl_key="user-status/$run_id/$(basename "$etl_file")"

prepare_etl() {
    mkdir -p "$(dirname "$etl_file")"
    if [[ ! -f "$etl_file" || ! -f "$etl_expected" ]]; then
        log "generating $etl_records user-status records"
        python3 bench/peers/python/gen_user_status.py "$etl_records" "$etl_file" "$etl_expected"
    fi
    local status
    status="$(curl -sS -o /dev/null -w '%{http_code}' "${sigv4[@]}" -T "$etl_file" "$SLUICE_S3_ENDPOINT/$bucket/$etl_key")"
    [[ "$status" == 200 ]] || die "uploading $etl_file answered HTTP $status"
    etl_prepared=1
}

# The PostgreSQL URL whose search_path is SCHEMA.
schema_url() {
    echo "${DATABASE_URL}$([[ "$DATABASE_URL" == *\?* ]] && echo '&' || echo '?')options=-csearch_path%3D$1"
}

# Starts a host serving the user-status pipeline into SCHEMA as NAME; sets $host_pid, $port.
start_etl_host() {
    local name="$1" schema="$2"
    port="$(free_port)"
    config="$(fault_host_config "$name" "$port" "$plugins" false)"
    sed -e "s/^job_topic = .*/job_topic = \"faults-jobs-$name-$run_id\"/" \
        -e "s/^group = .*/group = \"faults-jobs-$name-$run_id\"/" \
        -e "s/^bucket = .*/bucket = \"$bucket\"/" \
        -e "s|^prefix = .*|prefix = \"faults/$run_id/$name/dead-letters\"|" \
        pipelines/user-status.toml >"$work/pipelines-$name/user-status.toml"
    cp pipelines/user-status.sql "$work/pipelines-$name/"
    DATABASE_URL="$(schema_url "$schema")" start_host "$name" "$config" "$port"
}

submit_job() {
    curl -sS --fail-with-body -X POST "http://127.0.0.1:$port/v1/jobs/user-status" \
        -H 'content-type: application/json' -d "{\"bucket\":\"$bucket\",\"key\":\"$etl_key\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["job_id"])'
}

job_state() {
    curl -sS --max-time 5 "http://127.0.0.1:$port/v1/jobs/$1" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || echo unreachable
}

# Waits until job ID has read RECORDS records (or ended), at most SECONDS; prints
# state:records_read as it was then.
wait_progress() {
    local id="$1" records="$2" deadline=$((SECONDS + $3)) seen
    while :; do
        seen="$(curl -sS --max-time 5 "http://127.0.0.1:$port/v1/jobs/$id" 2>/dev/null | python3 -c '
import json, sys
job = json.load(sys.stdin)
print("%s:%d" % (job["state"], (job.get("counts") or {}).get("records_read", 0)))' 2>/dev/null || echo unreachable:0)"
        if [[ "$seen" != running:* && "$seen" != queued:* && "$seen" != unreachable:* ]] ||
            ((${seen#*:} >= records)) || ((SECONDS >= deadline)); then
            echo "$seen"
            return
        fi
        sleep 0.1
    done
}

# Waits until job ID is in STATE (or failed), at most SECONDS; prints the state it ended in.
wait_job() {
    local id="$1" want="$2" deadline=$((SECONDS + $3)) state
    while :; do
        state="$(job_state "$id")"
        if [[ "$state" == "$want" || "$state" == failed || "$state" == succeeded ]] || ((SECONDS >= deadline)); then
            echo "$state"
            return
        fi
        sleep 0.2
    done
}

# Counts and an md5 over the rows of the three tables in SCHEMA, lineage columns left out.
table_digest() {
    psql "$DATABASE_URL" -tAq -v ON_ERROR_STOP=1 <<SQL
SELECT json_build_object(
  'user_status', (SELECT json_build_object('rows', count(*), 'md5', md5(coalesce(string_agg(h, '' ORDER BY h), '')))
                  FROM (SELECT md5(row(userid, createdat, status, lastvisitedat, isblacklisted)::text) h FROM $1.user_status) t),
  'user_status_log', (SELECT json_build_object('rows', count(*), 'md5', md5(coalesce(string_agg(h, '' ORDER BY h), '')))
                  FROM (SELECT md5(row(userid, updatedon, status)::text) h FROM $1.user_status_log) t),
  'user_status_error_rec', (SELECT json_build_object('rows', count(*), 'md5', md5(coalesce(string_agg(h, '' ORDER BY h), '')))
                  FROM (SELECT md5(error_rec) h FROM $1.user_status_error_rec) t),
  'jobs', (SELECT coalesce(json_agg(json_build_object('state', state, 'attempts', attempts)), '[]') FROM $1.sluice_jobs))
SQL
}

etl_clean_load() {
    clean_schema="faults_${run_id}_etl_clean"
    psql "$DATABASE_URL" -qc "CREATE SCHEMA $clean_schema" >/dev/null
    start_etl_host etl-clean "$clean_schema"
    local id started state
    started="$(now)"
    id="$(submit_job)"
    state="$(wait_job "$id" succeeded 900)"
    clean_seconds="$(awk "BEGIN { printf \"%.1f\", $(now) - $started }")"
    stop_pid "$host_pid"
    [[ "$state" == succeeded ]] || die "the clean load ended $state; see logs/etl-clean.log"
    table_digest "$clean_schema" >"$work/etl-clean-digest.json"
    log "clean load: ${clean_seconds}s"
}

inject_etl_pg() {
    pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster)" main restart >>"$work/logs/$fault-postgres.log" 2>&1 ||
        die "pg_ctlcluster restart failed; see logs/$fault-postgres.log"
    wait_for "PostgreSQL ready again" 60 pg_isready -q -h 127.0.0.1 -p 5432
}

inject_etl_kill() {
    kill_pid "$host_pid"
    DATABASE_URL="$(schema_url "$schema")" start_host "$fault-restarted" "$config" "$port"
}

run_etl_fault() {
    fault="$1"
    [[ -n "${etl_prepared:-}" ]] || { prepare_etl; etl_clean_load; }
    schema="faults_${run_id}_${fault//-/_}"
    log "$fault: loading $etl_records records into $schema, fault mid-load"
    psql "$DATABASE_URL" -qc "CREATE SCHEMA $schema" >/dev/null
    start_etl_host "$fault" "$schema"
    local id state before
    id="$(submit_job)"
    # The fault comes once the job has read 40% of the file (the host records its progress).
    before="$(wait_progress "$id" $((etl_records * 2 / 5)) 300)"
    [[ "$before" == running:* ]] || die "$fault: the job was $before before the fault; see logs/$fault.log"
    fault_start="$(now)"
    "inject_${fault//-/_}"
    fault_end="$(now)"
    state="$(wait_job "$id" succeeded 900)"
    local ended
    ended="$(now)"
    local resubmitted=false
    if [[ "$state" == failed ]]; then
        # The original API's answer to a failed job: ask again, which re-queues it.
        log "$fault: the job failed; asking again, as a caller would"
        resubmitted=true
        submit_job >/dev/null
        state="$(wait_job "$id" succeeded 900)"
        ended="$(now)"
    fi
    curl -sS "http://127.0.0.1:$port/v1/jobs/$id" >"$work/$fault-job.json" || true
    stop_pid "$host_pid"
    table_digest "$schema" >"$work/$fault-digest.json"
    python3 - "$work/etl-clean-digest.json" "$work/$fault-digest.json" "$work/$fault-job.json" "$etl_expected" \
        "$before" "$state" "$resubmitted" "$fault_start" "$fault_end" "$ended" "$etl_records" \
        >"$work/results/$fault.json" <<'PY'
import json, sys
clean, got, expected = (json.load(open(sys.argv[i])) for i in (1, 2, 4))
try:
    job = json.load(open(sys.argv[3]))
except ValueError:
    job = {}
before, state, resubmitted = sys.argv[5], sys.argv[6], sys.argv[7] == "true"
start, end, ended, records = map(float, sys.argv[8:12])
tables = ("user_status", "user_status_log", "user_status_error_rec")
succeeded = [j for j in got["jobs"] if j["state"] == "succeeded"]
equal = all(got[t] == clean[t] for t in tables)
rows = sum(got[t]["rows"] for t in tables)
clean_rows = sum(clean[t]["rows"] for t in tables)
result = {
    "records": int(records), "expected": expected, "tables": {t: got[t] for t in tables},
    "clean_tables": {t: clean[t] for t in tables}, "tables_equal": equal,
    "jobs": got["jobs"], "succeeded_exactly_once": len(got["jobs"]) == 1 and len(succeeded) == 1,
    "state_at_fault": before, "final_state": state, "resubmitted": resubmitted,
    "attempts": job.get("attempts"), "dead_letters": (job.get("counts") or {}).get("dead_letters"),
    "rows": rows, "clean_rows": clean_rows,
    "missing": max(clean_rows - rows, 0) if not equal else 0,
    "duplicates": max(rows - clean_rows, 0),
    "fault_start": start, "fault_end": end,
    "recovery_s": round(ended - end, 1) if state == "succeeded" else None,
}
result["lossless"] = equal and result["succeeded_exactly_once"]
# Either fault ends the attempt it meets; a job that succeeded at its first attempt without
# being asked again had committed before the fault came, so the fault tested nothing.
result["fault_hit_the_load"] = (job.get("attempts") or 0) >= 2 or resubmitted
print(json.dumps(result, indent=1))
PY
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print({k: r[k] for k in ("final_state","attempts","tables_equal","succeeded_exactly_once","recovery_s")})' \
        "$work/results/$fault.json" >&2
    psql "$DATABASE_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
}

# --- run -----------------------------------------------------------------------------------

if ((soak)); then
    # shellcheck source=bench/faults/soak.sh
    source "$repo/bench/faults/soak.sh"
    run_soak
    exit $?
fi

suite_started=$SECONDS
for fault in ${all_faults//,/ }; do
    selected "$fault" || continue
    case "$fault" in
        etl-*) run_etl_fault "$fault" ;;
        *) run_webhook_fault "$fault" ;;
    esac
done
[[ -n "${clean_schema:-}" ]] && { psql "$DATABASE_URL" -qc "DROP SCHEMA $clean_schema CASCADE" >/dev/null 2>&1 || true; }

git_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ -z "$(git status --porcelain -- host plugins tests/fixtures bench/faults bench/faults.sh 2>/dev/null)" ]] || git_rev="$git_rev+uncommitted"
"$python" bench/faults/report.py --results "$work/results" --order "$only" \
    --json "$results/faults.json" --markdown "${FAULTS_MARKDOWN:-$repo/bench/results/faults.md}" \
    --meta "run_id=$run_id" --meta "quick=$( ((quick)) && echo true || echo false)" --meta "git=$git_rev" \
    --meta "host_profile=$profile" --meta "rate_bodies_per_s=$rate" --meta "events_per_body=$events" \
    --meta "load_s=$load_seconds" --meta "outage_s=$outage" --meta "fault_at_s=$fault_at" \
    --meta "rotate_ms=$rotate_ms" --meta "etl_records=$etl_records" --meta "suite_s=$((SECONDS - suite_started))"
