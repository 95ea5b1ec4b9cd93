#!/usr/bin/env bash
# Runs every sluice benchmark and its peers side by side in one run, then writes bench/RESULTS.md.
#
# Usage: bench/run.sh [--only LIST] [--quick] [--connector-events N] [--etl-records N]
#   --only LIST    comma-separated subset of: webhook,connector,ratio,etl,swap,soak,languages
#                  (default: all)
#   --quick        a smoke run: 100k events / records, 5 s wrk runs, a 1-minute soak
#   --connector-events N, --etl-records N   override the sizes (default 1,000,000 each)
#
# What it does, in order: builds the release binaries (sluice, sluice-bench) and the plugins,
# installs wrk with apt-get when missing, sets up the Python peers' venv
# (bench/peers/python/setup.sh), starts the services (scripts/services.sh start), runs the
# chosen benchmarks with their peers, writes one JSON file per benchmark to
# .run/bench/results/ and regenerates bench/RESULTS.md from all files there
# (bench/lib/report.py). Every process it starts is stopped on exit; topics, S3 prefixes and
# PostgreSQL schemas carry this run's id, so runs never see each other's data.
#
# The benchmarks (targets: bench/TARGETS.md; why each misses or passes: docs/performance.md):
#   webhook    signed 100-event and 1-event bodies, wrk -t2 -c32 (3 s warm-up, then 20 s):
#              sluice serve (signature checked) vs bare-ingest (axum + rdkafka) checking the same
#              signature (the ceiling sluice is judged against) vs bare-ingest without the check
#              vs FastAPI peer, once against a tansu keeping its log in memory and once
#              against the services' tansu on SeaweedFS
#   connector  a filled topic → normalize-sendgrid-events → Parquet on S3: sluice (as configured
#              by default: one consumer-group member per core; then one member) vs bare-connector
#              (the same work natively, no platform: the ceiling) vs connector_peer.py
#   ratio      plugin-ratio: the normalization as WASM vs native, where each event's time goes;
#              the ETL's two plugins the same way on the ETL's records
#   etl        user-status file on S3 → 3 PostgreSQL tables: sluice job run vs PySpark vs COPY floor
#   swap       20 plugin swaps (rename in the watched plugins dir) under wrk load
#   soak       the full webhook → Kafka → Parquet pipeline under steady load, RSS sampled
#   languages  validate-user-status as a Rust, a Python and a JavaScript component on the ETL's
#              records (plugin-languages: compile, instantiate, first call, memory, records/s),
#              beside the Python port's own code run natively by CPython and by PySpark
#
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/sluice/target); SLUICE_BENCH_VENV (the
# peers' venv); SOAK_SECONDS, SOAK_DELAY_MS, SWAP_DEBOUNCE_MS to override those settings;
# WEBHOOK_BROKERS (memory,s3): the brokers the webhook benchmark runs against, in order.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"

all_benches="webhook,connector,ratio,etl,swap,soak,languages"
only="$all_benches"
quick=0
connector_events=""
etl_records=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --only) only="${2:?--only needs a list}"; shift 2 ;;
        --only=*) only="${1#--only=}"; shift ;;
        --quick) quick=1; shift ;;
        --connector-events) connector_events="${2:?}"; shift 2 ;;
        --etl-records) etl_records="${2:?}"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for bench in ${only//,/ }; do
    [[ ",$all_benches," == *",$bench,"* ]] || {
        echo "bench/run.sh: unknown benchmark '$bench' (allowed: $all_benches)" >&2
        exit 2
    }
done
selected() { [[ ",$only," == *",$1,"* ]]; }

if ((quick)); then
    : "${connector_events:=100000}" "${etl_records:=100000}"
    wrk_seconds=5 warmup_seconds=2 soak_seconds="${SOAK_SECONDS:-60}" soak_interval=5 ratio_args=(--bodies 500 --passes 3)
else
    : "${connector_events:=1000000}" "${etl_records:=1000000}"
    wrk_seconds=20 warmup_seconds=3 soak_seconds="${SOAK_SECONDS:-600}" soak_interval=10 ratio_args=()
fi
soak_delay_ms="${SOAK_DELAY_MS:-25}"
webhook_brokers="${WEBHOOK_BROKERS:-memory,s3}"
swap_debounce_ms="${SWAP_DEBOUNCE_MS:-20}"

run_id="$(date -u +%Y%m%d%H%M%S)"
work="$repo/.run/bench/run-$run_id"
results="$repo/.run/bench/results"
plugins="$repo/.run/bench/plugins"
measure=(python3 "$repo/bench/lib/measure.py")
# host_config and webhook_pipeline.
# shellcheck source=bench/lib/config.sh
source "$repo/bench/lib/config.sh"
mkdir -p "$work/logs" "$results"

log() { printf '\n[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
    echo "bench/run.sh: error: $*" >&2
    exit 1
}

# --- processes: every one started here is stopped on exit --------------------------------

# shellcheck source=bench/lib/processes.sh
source "$repo/bench/lib/processes.sh"

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_started
    if ((status != 0)); then
        echo "bench/run.sh: stopped with status $status; logs in $work/logs" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


free_port() { "${measure[@]}" free-port; }

# --- preparation ---------------------------------------------------------------------------

log "run $run_id: ${only} ($( ((quick)) && echo quick || echo full)); work dir $work"

log "building release binaries"
cargo build --release --locked -p sluice -p sluice-bench --bins
release="$CARGO_TARGET_DIR/release"
sluice_bin="$release/sluice"
for binary in sluice bare-ingest bare-connector sign-webhook fill-topic plugin-ratio plugin-languages; do
    [[ -x "$release/$binary" ]] || die "$release/$binary was not built"
done

log "building plugins into $plugins"
scripts/build-plugins.sh "$plugins" >"$work/logs/build-plugins.log" 2>&1 ||
    die "scripts/build-plugins.sh failed; see $work/logs/build-plugins.log"
for component in normalize-sendgrid-events validate-user-status explode-status-logs \
    fixtures/fixture-hostile-v2 fixtures/fixture-hostile-v3; do
    [[ -f "$plugins/$component.wasm" ]] || die "scripts/build-plugins.sh wrote no $plugins/$component.wasm"
done

if ! command -v wrk >/dev/null; then
    log "installing wrk"
    sudo_cmd=()
    ((EUID == 0)) || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq wrk ||
        die "wrk is missing and apt-get could not install it"
fi

needs_python=0
for bench in webhook connector etl languages; do selected "$bench" && needs_python=1; done
if ((needs_python)); then
    log "setting up the Python peers' venv"
    venv="$(bench/peers/python/setup.sh)" || die "bench/peers/python/setup.sh failed"
    py="$venv/bin/python"
    peers="$repo/bench/peers/python"
fi

log "starting the services"
scripts/services.sh start
eval "$(scripts/services.sh env)"
export AWS_ENDPOINT_URL="$SLUICE_S3_ENDPOINT"
bucket="$SLUICE_S3_BUCKET"

machine_json="$("${measure[@]}" machine)"
git_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# Uncommitted changes to what is measured (host, plugins, harness) make the commit alone misleading.
if [[ -n "$(git status --porcelain -- host plugins bench/harness wit 2>/dev/null)" ]]; then
    git_rev="$git_rev+uncommitted"
fi
machine_name="$(python3 -c 'import json, sys; m = json.loads(sys.argv[1]); print(m["cpu_model"] + ", " + str(m["cores"]) + " cores")' "$machine_json")"
meta=(--meta "run_id=$run_id" --meta "quick=$( ((quick)) && echo true || echo false)" --meta "git=$git_rev"
    --meta "machine=$machine_name")


# Starts `sluice serve` for CONFIG as NAME and waits for /readyz; sets $sluice_pid.
start_sluice() {
    local name="$1" config="$2" port="$3"
    start_bg "$name" "$sluice_bin" serve --config "$config"
    sluice_pid="$last_pid"
    "${measure[@]}" wait-ready --url "http://127.0.0.1:$port/readyz" --pid "$sluice_pid" \
        --log "$work/logs/$name.log" --timeout 120
}

# A topic with 4 partitions, as sluice creates source topics.
create_topic() {
    "$release/fill-topic" --brokers "$SLUICE_KAFKA_BROKERS" --topic "$1" --events 0 --partitions 4 >/dev/null
}

# Signs a body of N events: writes $work/body-N.json and its export lines $work/sign-N.env.
sign_body() {
    local events="$1"
    "$release/sign-webhook" --events "$events" --out "$work/body-$events.json" --key "$work/webhook.p8" \
        --env-out "$work/sign-$events.env" >/dev/null 2>"$work/logs/sign-webhook.log"
}

# The public key sign-webhook printed into export file $1 (one key file per run, so any will do).
public_key() {
    sed -n "s/^export SENDGRID_WEBHOOK_PUBLIC_KEY='\(.*\)'$/\1/p" "$1"
}


normalize_to_s3() { # PREFIX
    cat <<TOML

[[steps]]
plugin = "normalize-sendgrid-events"

[[sinks]]
from = "normalize-sendgrid-events.events"
kind = "parquet-s3"
bucket = "$bucket"
prefix = "$1/events"
partition_by = ["dt", "event"]
rotate_records = 100000
rotate_bytes = 134217728
rotate_ms = 2000
dedupe_by_key = true

[dead_letters]
kind = "s3"
bucket = "$bucket"
prefix = "$1/dead-letters"
TOML
}

# One wrk measurement: SYSTEM EVENTS URL BROKER; appends to $work/webhook.jsonl.
wrk_webhook() {
    local system="$1" events="$2" url="$3" broker="$4"
    sign_body "$events"
    "${measure[@]}" wrk --url "$url" --body-file "$work/body-$events.json" --sign-env "$work/sign-$events.env" \
        --duration "$warmup_seconds" --label warmup >/dev/null
    sign_body "$events"
    "${measure[@]}" wrk --url "$url" --body-file "$work/body-$events.json" --sign-env "$work/sign-$events.env" \
        --duration "$wrk_seconds" --label "$system-$events" --append "$work/webhook.jsonl" \
        --extra "system=$system" --extra "events_per_body=$events" --extra "broker=$broker"
}

# --- 1. webhook → Kafka ----------------------------------------------------------------------

# Starts a second tansu that keeps its log in memory, on a free port; sets $memory_brokers and
# $memory_broker_pid. Against such a broker the systems measured are what the CPU goes to: the
# services' tansu stores every produced batch in SeaweedFS, which on 2 shared cores costs more
# CPU per request than any of the systems measured.
start_memory_broker() {
    local port deadline=$((SECONDS + 30))
    port="$(free_port)"
    # tansu's own log level (scripts/services.sh): a RUST_LOG meant for sluice would log every request.
    RUST_LOG="${SLUICE_TANSU_LOG:-warn}" start_bg tansu-memory "$(scripts/services.sh tansu-bin)" broker \
        --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "memory://tansu/"
    memory_broker_pid="$last_pid"
    memory_brokers="127.0.0.1:$port"
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$memory_broker_pid" 2>/dev/null || die "the in-memory tansu exited; see $work/logs/tansu-memory.log"
        ((SECONDS < deadline)) || die "the in-memory tansu did not listen within 30 s"
        sleep 0.2
    done
}

bench_webhook() {
    rm -f "$work/webhook.jsonl" "$results/webhook.json"
    local broker
    for broker in ${webhook_brokers//,/ }; do
        case "$broker" in
            memory)
                start_memory_broker
                SLUICE_KAFKA_BROKERS="$memory_brokers" webhook_round memory
                stop_pid "$memory_broker_pid"
                ;;
            s3) webhook_round s3 ;;
            *) die "unknown webhook broker '$broker' (allowed: memory, s3)" ;;
        esac
    done
    "${measure[@]}" bundle --bench webhook --out "$results/webhook.json" "${meta[@]}" \
        --meta "threads=2" --meta "connections=32" --meta "duration_s=$wrk_seconds" \
        --meta "warmup_s=$warmup_seconds" --meta "partitions=4" --jsonl "$work/webhook.jsonl"
}

# Starts bare-ingest as SYSTEM on TOPIC with any further arguments, runs both bodies against it
# and stops it.
bare_ingest_round() {
    local system="$1" topic="$2" broker="$3" port
    shift 3
    port="$(free_port)"
    start_bg "$system-ingest-$broker" "$release/bare-ingest" --listen "127.0.0.1:$port" \
        --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" --partitions 4 "$@"
    local bare_pid="$last_pid"
    "${measure[@]}" wait-ready --url "http://127.0.0.1:$port/webhook" --any-status --pid "$bare_pid" \
        --log "$work/logs/$system-ingest-$broker.log"
    for events in 100 1; do
        wrk_webhook "$system" "$events" "http://127.0.0.1:$port/webhook" "$broker"
    done
    stop_pid "$bare_pid"
}

# sluice, bare-ingest with and without the signature check and the FastAPI peer in turn against
# the broker at $SLUICE_KAFKA_BROKERS; BROKER (memory or s3) labels the runs.
webhook_round() {
    local broker="$1"
    log "webhook ($broker broker at $SLUICE_KAFKA_BROKERS): sluice vs bare-ingest (signed, unsigned) vs FastAPI, ${wrk_seconds}s runs"
    local sluice_topic="rsbench_wh_sluice_${broker}_$run_id" bare_topic="rsbench_wh_bare_${broker}_$run_id"
    local bare_verify_topic="rsbench_wh_bareverify_${broker}_$run_id"
    local python_topic="pypeer_wh_${broker}_$run_id" port
    for topic in "$sluice_topic" "$bare_verify_topic" "$bare_topic" "$python_topic"; do create_topic "$topic"; done
    # The run's key ($work/webhook.p8, made on first use) signs every body; sign-1.env has its
    # public key for sluice and bare-verify, which both allow timestamps $tolerance_secs s off.
    sign_body 1
    local tolerance_secs=600

    port="$(free_port)"
    local config
    config="$(host_config "webhook-$broker" "$port" "$plugins" "watch = false")"
    webhook_pipeline bench-webhook /v1/webhooks/bench "$sluice_topic" "$tolerance_secs" >"$work/pipelines-webhook-$broker/webhook.toml"
    SENDGRID_WEBHOOK_PUBLIC_KEY="$(public_key "$work/sign-1.env")" start_sluice "sluice-webhook-$broker" "$config" "$port"
    for events in 100 1; do
        wrk_webhook sluice "$events" "http://127.0.0.1:$port/v1/webhooks/bench" "$broker"
    done
    stop_pid "$sluice_pid"

    bare_ingest_round bare-verify "$bare_verify_topic" "$broker" \
        --verify-key "$(public_key "$work/sign-1.env")" --tolerance-secs "$tolerance_secs"
    bare_ingest_round bare "$bare_topic" "$broker"

    port="$(free_port)"
    PEER_TOPIC="$python_topic" KAFKA_BROKERS="$SLUICE_KAFKA_BROKERS" \
        start_bg "python-webhook-$broker" "$py" "$peers/webhook_peer.py" --port "$port" --workers 2
    local python_pid="$last_pid"
    "${measure[@]}" wait-ready --url "http://127.0.0.1:$port/webhook" --any-status --pid "$python_pid" \
        --log "$work/logs/python-webhook-$broker.log"
    for events in 100 1; do
        wrk_webhook python "$events" "http://127.0.0.1:$port/webhook" "$broker"
    done
    stop_pid "$python_pid"
}

# --- 2. Kafka → normalize → Parquet on S3 ------------------------------------------------------

bench_connector() {
    log "connector: $connector_events events, sluice vs connector_peer.py"
    rm -f "$results/connector.json"
    local topic="rsbench_conn_$run_id" prefix="bench/$run_id/sluice" port config
    "$release/fill-topic" --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" --events "$connector_events" \
        --events-per-body 100 --partitions 4 >"$work/fill-topic.json"
    cat "$work/fill-topic.json"

    # Once as the pipeline comes (members unset: one consumer-group member per core, the
    # default) and once with `members = 1`, what one core of the host gives.
    local members
    for members in default 1; do
        port="$(free_port)"
        config="$(host_config "connector-$members" "$port" "$plugins" "watch = false")"
        {
            cat <<TOML
name = "bench-connector"
[source]
kind = "kafka"
topic = "$topic"
group = "rsbench-conn-$members-$run_id"
batch_records = 50
batch_max_ms = 1000
TOML
            [[ "$members" == default ]] || echo "members = $members"
            normalize_to_s3 "$prefix-$members"
        } >"$work/pipelines-connector-$members/connector.toml"
        local since
        since="$(date +%s.%N)"
        start_bg "sluice-connector-$members" "$sluice_bin" serve --config "$config"
        sluice_pid="$last_pid"
        "${measure[@]}" connector-wait --metrics-url "http://127.0.0.1:$port/metrics" --pid "$sluice_pid" \
            --since "$since" --target "$connector_events" --pipeline bench-connector \
            --out "$work/connector-sluice-$members.json" --timeout 900
        stop_pid "$sluice_pid"
    done

    # The native ceiling: the same normalization compiled natively, the same consumer settings,
    # Arrow/Parquet encoding and windows, stored in the background (bare-connector's module docs).
    AWS_ENDPOINT_URL="$SLUICE_S3_ENDPOINT" "${measure[@]}" timed --out "$work/connector-ceiling.json" \
        --label bare_connector -- "$release/bare-connector" --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" \
        --group "bare-conn-$run_id" --bucket "$bucket" --prefix "bench/$run_id/bare/events" \
        --expected-events "$connector_events" --batch-records 50 --window-events 100000 --window-seconds 2

    "${measure[@]}" timed --out "$work/connector-python.json" --label connector_peer -- \
        "$py" "$peers/connector_peer.py" --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" \
        --group "pypeer-conn-$run_id" --bucket "$bucket" --prefix "bench/$run_id/pypeer/events" \
        --expected-events "$connector_events" --window-events 100000 --window-seconds 2

    "${measure[@]}" bundle --bench connector --out "$results/connector.json" "${meta[@]}" \
        --meta "events=$connector_events" --meta "events_per_body=100" --meta "partitions=4" \
        --meta "window=100000 records or 2 s (both systems)" \
        --meta "members_default=$(nproc)" \
        --part "fill=$work/fill-topic.json" --part "sluice=$work/connector-sluice-default.json" \
        --part "sluice_members_1=$work/connector-sluice-1.json" \
        --part "ceiling=$work/connector-ceiling.json" --part "python=$work/connector-python.json"
}

# --- 3. WASM vs native normalization ---------------------------------------------------------

bench_ratio() {
    log "ratio: plugin-ratio (normalization; the ETL's two plugins on the ETL's records)"
    rm -f "$results/ratio.json"
    local file expected
    read -r file expected < <(etl_input)
    "$release/plugin-ratio" --plugin "$plugins/normalize-sendgrid-events.wasm" "${ratio_args[@]}" \
        --etl-records "$file" --validate-plugin "$plugins/validate-user-status.wasm" \
        --explode-plugin "$plugins/explode-status-logs.wasm" \
        | tee "$work/plugin-ratio.jsonl"
    "${measure[@]}" bundle --bench ratio --out "$results/ratio.json" "${meta[@]}" \
        --jsonl "$work/plugin-ratio.jsonl"
}

# --- 4. user-status ETL ----------------------------------------------------------------------

# The ETL's input, generated once per size: prints its path and its expected counts' path.
etl_input() {
    local data="$repo/.run/bench/etl"
    local file="$data/user-status-$etl_records.jsonl" expected="$data/user-status-$etl_records.expected.json"
    mkdir -p "$data"
    if [[ ! -f "$file" || ! -f "$expected" ]]; then
        python3 "$repo/bench/peers/python/gen_user_status.py" "$etl_records" "$file" "$expected" >&2
    fi
    echo "$file $expected"
}

bench_etl() {
    log "etl: $etl_records records, sluice job run vs PySpark vs COPY floor"
    rm -f "$results/etl.json"
    local file expected
    read -r file expected < <(etl_input)
    local etl_bucket="sluice-bench" key="user-status/$run_id/$(basename "$file")"
    local sigv4=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
    curl -sS -o /dev/null "${sigv4[@]}" -X PUT "$SLUICE_S3_ENDPOINT/$etl_bucket" || true
    local status
    status="$(curl -sS -o /dev/null -w '%{http_code}' "${sigv4[@]}" -T "$file" "$SLUICE_S3_ENDPOINT/$etl_bucket/$key")"
    [[ "$status" == 200 ]] || die "uploading $file to s3://$etl_bucket/$key answered HTTP $status"

    local schema="rsbench_etl_$run_id"
    psql "$DATABASE_URL" -qc "CREATE SCHEMA $schema" >/dev/null
    # `job run` serves nothing; the config's listen port is never bound.
    host_config etl 0 "$plugins" "watch = false" >/dev/null
    # The toml names its tables file relative to itself, so the two travel together.
    cp pipelines/user-status.toml pipelines/user-status.sql "$work/pipelines-etl/"
    # As deployed: the plugins are compiled into the host's cache beforehand (`plugin compile`),
    # so the timed run loads them instead of paying Cranelift once per plugin version.
    "$sluice_bin" plugin compile --config "$work/etl.toml" "$plugins"/*.wasm \
        >>"$work/logs/plugin-compile.log" 2>&1 || die "sluice plugin compile failed; see $work/logs/plugin-compile.log"
    local url
    url="${DATABASE_URL}$([[ "$DATABASE_URL" == *\?* ]] && echo '&' || echo '?')options=-csearch_path%3D$schema"
    DATABASE_URL="$url" "${measure[@]}" timed --out "$work/etl-sluice.json" --label "sluice job run" -- \
        "$sluice_bin" job run --config "$work/etl.toml" --bucket "$etl_bucket" --key "$key"
    local counts
    counts="$(psql "$url" -tAc "SELECT (SELECT count(*) FROM user_status) || ' ' || (SELECT count(*) FROM user_status_error_rec) || ' ' || (SELECT count(*) FROM user_status_log)")"
    psql "$DATABASE_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
    local want
    want="$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["valid"], e["invalid"], e["log_rows"])' "$expected")"
    python3 - "$work/etl-sluice.json" "$counts" "$want" <<'PY'
import json, sys
path, got, want = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
result = json.load(open(path))
names = ["user_status", "user_status_error_rec", "user_status_log"]
result["rows"] = dict(zip(names, map(int, got)))
result["expected_rows"] = dict(zip(names, map(int, want)))
result["counts_match"] = got == want
json.dump(result, open(path, "w"), indent=1)
PY
    [[ "$counts" == "$want" ]] || die "sluice loaded $counts rows (user_status error_rec log), expected $want"

    "${measure[@]}" timed --out "$work/etl-pyspark.json" --label etl_pyspark -- \
        "$py" "$peers/etl_pyspark.py" --bucket "$etl_bucket" --key "$key" --schema "pypeer_spark_$run_id" --drop
    "${measure[@]}" timed --out "$work/etl-floor.json" --label copy_floor -- \
        "$py" "$peers/copy_floor.py" --input "$file" --schema "pypeer_floor_$run_id" --drop \
        --csv-dir "$work/floor-csv"
    rm -rf "$work/floor-csv"

    "${measure[@]}" bundle --bench etl --out "$results/etl.json" "${meta[@]}" \
        --meta "records=$etl_records" --meta "input_bytes=$(stat -c %s "$file")" \
        --part "expected=$expected" --part "sluice=$work/etl-sluice.json" \
        --part "pyspark=$work/etl-pyspark.json" --part "floor=$work/etl-floor.json"
}

# --- 5. plugin hot swap under load -------------------------------------------------------------

bench_swap() {
    log "swap: 20 swaps of fixture-hostile v2/v3 under wrk load"
    rm -f "$results/swap.json"
    local swap_plugins="$work/swap-plugins" port config token
    mkdir -p "$swap_plugins"
    cp "$plugins/fixtures/fixture-hostile-v2.wasm" "$swap_plugins/fixture-hostile.wasm"
    port="$(free_port)"
    config="$(host_config swap "$port" "$swap_plugins" "watch = true
watch_debounce_ms = $swap_debounce_ms")"
    # A fresh compile cache: the host compiles v2 at start, and v3 is compiled into it by
    # `sluice plugin compile` before the swaps, as a deploy would (timed: the cost a swap pays
    # when that step is skipped).
    sed -i "s|^cache_dir = .*|cache_dir = \"$work/cache-swap\"|" "$config"
    cat >"$work/pipelines-swap/rows.toml" <<TOML
name = "rows"
[source]
kind = "http"
path = "/v1/rows"
[[steps]]
plugin = "fixture-hostile"
[steps.config]
behavior = "fail-before-v2"
TOML
    token="bench-$run_id-$RANDOM$RANDOM"
    SLUICE_ADMIN_TOKEN="$token" start_sluice sluice-swap "$config" "$port"
    local compile_started compile_ms
    compile_started=$(date +%s%N)
    "$sluice_bin" plugin compile --config "$config" "$plugins/fixtures/fixture-hostile-v3.wasm" \
        >>"$work/logs/plugin-compile.log" 2>&1 || die "sluice plugin compile failed; see $work/logs/plugin-compile.log"
    compile_ms=$(( ($(date +%s%N) - compile_started) / 1000000 ))
    printf '{"id":"bench-swap","n":1}' >"$work/swap-body.json"
    local load_seconds=$(( quick ? 25 : 30 ))
    start_bg wrk-swap "${measure[@]}" wrk --url "http://127.0.0.1:$port/v1/rows" \
        --body-file "$work/swap-body.json" --connections 8 --duration "$load_seconds" --label swap \
        --append "$work/swap-wrk.jsonl"
    local wrk_pid="$last_pid" load_started=$SECONDS
    sleep 2
    "${measure[@]}" swap --plugins-dir "$swap_plugins" --v2 "$plugins/fixtures/fixture-hostile-v2.wasm" \
        --v3 "$plugins/fixtures/fixture-hostile-v3.wasm" --admin-url "http://127.0.0.1:$port/v1/admin/plugins" \
        --token "$token" --swaps 20 --poll-ms 5 --settle-ms 400 --out "$work/swap.json"
    local swaps_done_at=$((SECONDS - load_started))
    wait "$wrk_pid" || die "wrk under the swaps failed; see $work/logs/wrk-swap.log"
    stop_pid "$sluice_pid"
    "${measure[@]}" bundle --bench swap --out "$results/swap.json" "${meta[@]}" \
        --meta "watch_debounce_ms=$swap_debounce_ms" --meta "load_seconds=$load_seconds" \
        --meta "swaps_finished_at_s=$swaps_done_at" --meta "connections=8" --meta "precompile_ms=$compile_ms" \
        --part "swaps=$work/swap.json" --part "load=$work/swap-wrk.jsonl"
}

# --- 6. soak: RSS under steady load ---------------------------------------------------------

bench_soak() {
    log "soak: ${soak_seconds}s of the full webhook pipeline under steady load"
    rm -f "$results/soak.json"
    local topic="rsbench_soak_$run_id" port config
    create_topic "$topic"
    sign_body 100
    port="$(free_port)"
    config="$(host_config soak "$port" "$plugins" "watch = false")"
    {
        # One signed body replayed for the whole soak, so the timestamp tolerance is a day.
        webhook_pipeline bench-soak /v1/webhooks/soak "$topic" 86400
        normalize_to_s3 "bench/$run_id/soak"
    } >"$work/pipelines-soak/soak.toml"
    SENDGRID_WEBHOOK_PUBLIC_KEY="$(public_key "$work/sign-100.env")" start_sluice sluice-soak "$config" "$port"
    local wrk_seconds_soak=$((soak_seconds + 5))
    SOAK_POST_LUA="$repo/bench/wrk/post.lua" SOAK_DELAY_MS="$soak_delay_ms" \
        start_bg wrk-soak "${measure[@]}" wrk --url "http://127.0.0.1:$port/v1/webhooks/soak" \
        --body-file "$work/body-100.json" --sign-env "$work/sign-100.env" --script "$repo/bench/lib/paced-post.lua" \
        --threads 2 --connections 4 --duration "$wrk_seconds_soak" --label soak --append "$work/soak-wrk.jsonl"
    local wrk_pid="$last_pid"
    "${measure[@]}" rss-sample --pid "$sluice_pid" --interval "$soak_interval" --duration "$soak_seconds" \
        --out "$work/soak-rss.json"
    wait "$wrk_pid" || die "wrk during the soak failed; see $work/logs/wrk-soak.log"
    curl -sS "http://127.0.0.1:$port/metrics" >"$work/soak-metrics.txt" || true
    python3 - "$work/soak-metrics.txt" "$work/soak-counts.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
def total(name):
    return sum(float(m.group(1)) for m in re.finditer(r"^" + name + r"(?:\{[^}]*\})?\s+(\S+)", text, re.M))
json.dump({"sink_rows": total("sluice_sink_rows_total"), "dead_letters": total("sluice_dead_letters_total"),
           "kafka_consumed": total("sluice_kafka_consumed_total")}, open(sys.argv[2], "w"))
PY
    stop_pid "$sluice_pid"
    "${measure[@]}" bundle --bench soak --out "$results/soak.json" "${meta[@]}" \
        --meta "seconds=$soak_seconds" --meta "delay_ms=$soak_delay_ms" --meta "connections=4" \
        --meta "events_per_body=100" --meta "tolerance_secs=86400" \
        --part "rss=$work/soak-rss.json" --part "load=$work/soak-wrk.jsonl" --part "counts=$work/soak-counts.json"
}

# --- 7. one plugin in three languages -----------------------------------------------------------

bench_languages() {
    log "languages: validate-user-status in Rust, Python and JavaScript on $etl_records records, beside CPython and PySpark"
    rm -f "$results/languages.json"
    local file expected
    read -r file expected < <(etl_input)
    eval "$(scripts/plugin-toolchains.sh)"
    scripts/build-plugin-ports.sh "$plugins/ports" >"$work/logs/build-plugin-ports.log" 2>&1 ||
        die "scripts/build-plugin-ports.sh failed; see $work/logs/build-plugin-ports.log"
    # The Python port's own code runs natively against the contract's bindings.
    local bindings="$work/py-bindings"
    componentize-py -d wit/transform.wit -w plugin bindings "$bindings" >/dev/null
    "$release/plugin-languages" --records "$file" --native --passes 1 \
        --plugin "rust=$plugins/validate-user-status.wasm" \
        --plugin "python=$plugins/ports/python/validate-user-status.wasm" \
        --plugin "javascript=$plugins/ports/js/validate-user-status.wasm" \
        | tee "$work/languages.jsonl"
    local native=(--bindings "$bindings" --path plugins/validate-user-status/python
        --path host/src/cli/plugin_new/python --input "$file")
    "$py" "$peers/plugin_native.py" --mode cpython "${native[@]}" | tee -a "$work/languages.jsonl"
    "$py" "$peers/plugin_native.py" --mode pyspark "${native[@]}" 2>"$work/logs/languages-pyspark.log" |
        tee -a "$work/languages.jsonl"
    "${measure[@]}" bundle --bench languages --out "$results/languages.json" "${meta[@]}" \
        --meta "records=$etl_records" --part "expected=$expected" --jsonl "$work/languages.jsonl"
}

# --- run ---------------------------------------------------------------------------------

echo "$machine_json" >"$results/machine.json"
for bench in webhook connector ratio etl swap soak languages; do
    if selected "$bench"; then
        "bench_$bench"
    fi
done

log "writing bench/RESULTS.md"
python3 "$repo/bench/lib/report.py" --results "$results" --out "$repo/bench/RESULTS.md"
log "done: bench/RESULTS.md (raw results in $results, logs in $work/logs)"
