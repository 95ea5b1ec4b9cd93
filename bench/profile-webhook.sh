#!/usr/bin/env bash
# Profiles the webhook benchmark's 1-event case: where the CPU goes, per process, for sluice
# with signature checks on, sluice with them off, and the bare axum + rdkafka handler.
#
# Usage: bench/profile-webhook.sh [--events N] [--seconds S] [--broker memory|s3]
#   --events N    events per body (default 1: the case that misses its target)
#   --seconds S   seconds of load per system (default 20); CPU and perf cover the middle 10 s
#   --broker B    s3 (default): the services' tansu on SeaweedFS; memory: a tansu of its own
#                 keeping its log in memory, as bench/run.sh's first webhook round
#
# Needs what bench/run.sh leaves behind: the release binaries (sluice, bare-ingest,
# sign-webhook), wrk and perf (Debian's linux-perf; installed here when missing). Starts the
# services. For each system it prints requests/s and the CPU seconds per 1,000 requests of the
# system itself, the broker (tansu), SeaweedFS and wrk, read from /proc over the same 10 s;
# and the top symbols of a `perf record` of the system's process. Raw perf reports go to
# .run/bench/profiles/. A profile, not a benchmark: perf itself costs a few percent.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
release="$CARGO_TARGET_DIR/release"
events=1
seconds=20
broker=s3
while (($#)); do
    case "$1" in
        --events) events="${2:?}"; shift 2 ;;
        --seconds) seconds="${2:?}"; shift 2 ;;
        --broker) broker="${2:?}"; shift 2 ;;
        *) echo "bench/profile-webhook.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
((seconds >= 14)) || { echo "bench/profile-webhook.sh: --seconds must be at least 14" >&2; exit 2; }

for binary in sluice bare-ingest sign-webhook fill-topic; do
    [[ -x "$release/$binary" ]] || { echo "missing $release/$binary: run bench/run.sh (or cargo build --release -p sluice -p sluice-bench --bins) first" >&2; exit 1; }
done
if ! command -v perf >/dev/null || ! command -v wrk >/dev/null; then
    sudo_cmd=()
    ((EUID == 0)) || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq linux-perf wrk >/dev/null
fi
scripts/services.sh start >/dev/null
eval "$(scripts/services.sh env)"

run_id="$(date -u +%Y%m%d%H%M%S)"
work="$repo/.run/bench/profiles/webhook-$run_id"
mkdir -p "$work"
measure=(python3 "$repo/bench/lib/measure.py")
# host_config and webhook_pipeline, as bench/run.sh writes them.
# shellcheck source=bench/lib/config.sh
source "$repo/bench/lib/config.sh"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

if [[ "$broker" == memory ]]; then
    "$(scripts/services.sh tansu-bin)" broker --listener-url tcp://127.0.0.1:18473 \
        --advertised-listener-url tcp://127.0.0.1:18473 --storage-engine memory://tansu/ \
        >"$work/tansu-memory.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/18473) 2>/dev/null && break; sleep 0.2; done
    export SLUICE_KAFKA_BROKERS=127.0.0.1:18473
elif [[ "$broker" != s3 ]]; then
    echo "bench/profile-webhook.sh: --broker must be memory or s3" >&2
    exit 2
fi

"$release/sign-webhook" --events "$events" --out "$work/body.json" --key "$work/webhook.p8" \
    --env-out "$work/sign.env" >/dev/null
public_key="$(sed -n "s/^export SENDGRID_WEBHOOK_PUBLIC_KEY='\(.*\)'$/\1/p" "$work/sign.env")"

# CPU ticks (utime + stime) of every process whose command line matches $1, summed.
cpu_ticks() {
    local total=0 pid fields
    for pid in $(pgrep -f "$1" || true); do
        fields="$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null)" || continue
        total=$((total + ${fields% *} + ${fields#* }))
    done
    echo "$total"
}

# Loads URL for $seconds, samples CPU and perf over the middle 10 s; prints one table row.
profile() {
    local name="$1" url="$2" pid="$3" pattern="$4"
    local hz before after
    hz="$(getconf CLK_TCK)"
    "${measure[@]}" wrk --url "$url" --body-file "$work/body.json" --sign-env "$work/sign.env" \
        --duration "$seconds" --label "$name" >"$work/$name.wrk.json" &
    local wrk_pid=$!
    sleep $(((seconds - 10) / 2))
    before=("$(cpu_ticks "$pattern")" "$(cpu_ticks 'tansu')" "$(cpu_ticks 'weed')" "$(cpu_ticks '^wrk ')")
    perf record -F 499 -g -p "$pid" -o "$work/$name.perf.data" -- sleep 10 >/dev/null 2>&1
    after=("$(cpu_ticks "$pattern")" "$(cpu_ticks 'tansu')" "$(cpu_ticks 'weed')" "$(cpu_ticks '^wrk ')")
    wait "$wrk_pid"
    local rps
    rps="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_s"])' "$work/$name.wrk.json")"
    python3 - "$name" "$rps" "$hz" "${before[@]}" "${after[@]}" <<'PY'
import sys
name, rps, hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
before, after = list(map(int, sys.argv[4:8])), list(map(int, sys.argv[8:12]))
requests = rps * 10
per_k = [(a - b) / hz / requests * 1000 if requests else 0 for a, b in zip(after, before)]
print(f"| {name} | {rps:,.0f} | " + " | ".join(f"{v:.3f}" for v in per_k) + f" | {sum(per_k):.3f} |")
PY
    perf report -i "$work/$name.perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null \
        >"$work/$name.perf.txt" || true
}

topic="rsprof_wh_$run_id"
"$release/fill-topic" --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" --events 0 --partitions 4 >/dev/null
config="$(host_config profile 18471 "$repo/.run/bench/plugins" "watch = false")"
webhook_pipeline profile-webhook /v1/webhooks/profile "$topic" 600 >"$work/pipelines-profile/webhook.toml"

echo "| system | req/s | CPU s per 1k requests: system | tansu | SeaweedFS | wrk | all |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for verify in on off; do
    key="$public_key"
    [[ "$verify" == on ]] || key=""
    SENDGRID_WEBHOOK_PUBLIC_KEY="$key" "$release/sluice" serve --config "$config" \
        >"$work/sluice-$verify.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    "${measure[@]}" wait-ready --url "http://127.0.0.1:18471/readyz" --pid "$pid" --log "$work/sluice-$verify.log" --timeout 120
    profile "sluice-verify-$verify" "http://127.0.0.1:18471/v1/webhooks/profile" "$pid" "release/sluice serve"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done

"$release/bare-ingest" --listen "127.0.0.1:18472" --brokers "$SLUICE_KAFKA_BROKERS" --topic "$topic" \
    --partitions 4 >"$work/bare.log" 2>&1 &
pid=$!
pids+=("$pid")
"${measure[@]}" wait-ready --url "http://127.0.0.1:18472/webhook" --any-status --pid "$pid" --log "$work/bare.log"
profile bare "http://127.0.0.1:18472/webhook" "$pid" "release/bare-ingest"

echo
for name in sluice-verify-on sluice-verify-off bare; do
    echo "Top symbols, $name (perf report --no-children --sort comm,dso,sym; full report in $work/$name.perf.txt):"
    grep -E '^ +[0-9.]+%' "$work/$name.perf.txt" | head -12 || true
    echo
done
