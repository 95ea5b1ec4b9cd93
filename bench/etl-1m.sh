#!/usr/bin/env bash
# The user-status ETL on a 1M-record file: generates a JSON-lines file (about 5% invalid
# records), uploads it to the services' S3, runs `sluice job run` on it into a fresh
# PostgreSQL schema, checks the three tables' row counts against the generator's, and appends
# seconds, records/s and peak RSS to bench/RESULTS.md with the machine noted.
#
# Usage: bench/etl-1m.sh [RECORDS]           (default 1000000)
# Environment:
#   SLUICE_BIN   the sluice binary to measure (default: a release build made here)
#   CARGO_TARGET_DIR  (default: $HOME/.cache/sluice/target)
# The services must be running (scripts/services.sh start); this script starts them if not.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
records="${1:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
work="$repo/.run/bench/etl"
mkdir -p "$work/pipelines"

scripts/services.sh start >/dev/null
eval "$(scripts/services.sh env)"
scripts/build-plugins.sh "$repo/.run/plugins" >/dev/null

if [[ -z "${SLUICE_BIN:-}" ]]; then
    cargo build --release --locked -p sluice --bin sluice
    SLUICE_BIN="$CARGO_TARGET_DIR/release/sluice"
fi
profile="$(basename "$(dirname "$SLUICE_BIN")")"

file="$work/user-status-$records.jsonl"
expected="$work/user-status-$records.expected.json"
if [[ ! -f "$file" || ! -f "$expected" ]]; then
    python3 - "$records" "$file" "$expected" <<'PY'
import json, random, sys
n, path, expected_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = random.Random(7)
valid = invalid = logs = 0
with open(path, "w") as out:
    for i in range(n):
        record = {
            "userId": f"u{i:08d}",
            "createdAt": "2022-02-10T21:09:51Z",
            "lastVisitedAt": 1644527391 + i,
            "status": rng.choice(["VERIFIED", "INITIATED", "BLOCKED"]),
            "isBlacklisted": rng.random() < 0.1,
            "statusLogs": [{"status": "INITIATED", "updatedOn": 1644527391 + j} for j in range(rng.randint(0, 3))],
        }
        if rng.random() < 0.05:
            broken = rng.choice(["null", "empty", "missing"])
            field = rng.choice(["createdAt", "lastVisitedAt", "status", "isBlacklisted"])
            if broken == "null":
                record[field] = None
            elif broken == "empty":
                record["status"] = ""
            else:
                del record[field]
            invalid += 1
        else:
            valid += 1
            logs += len(record["statusLogs"])
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
json.dump({"records": n, "valid": valid, "invalid": invalid, "log_rows": logs}, open(expected_path, "w"))
PY
fi
bytes="$(stat -c %s "$file")"

bucket="sluice-bench"
key="user-status/$(basename "$file")"
sigv4=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
curl -sS -o /dev/null "${sigv4[@]}" -X PUT "$SLUICE_S3_ENDPOINT/$bucket" || true
status="$(curl -sS -o /dev/null -w '%{http_code}' "${sigv4[@]}" -T "$file" "$SLUICE_S3_ENDPOINT/$bucket/$key")"
[[ "$status" == 200 ]] || { echo "etl-1m: uploading the file answered $status" >&2; exit 1; }

schema="bench_$(date +%s)"
psql "$DATABASE_URL" -qc "CREATE SCHEMA $schema" >/dev/null
cp pipelines/user-status.toml "$work/pipelines/"
cat > "$work/sluice.toml" <<TOML
[plugins]
dir = "$repo/.run/plugins"
cache_dir = "$repo/.run/cache/plugins"
watch = false
[pipelines]
dir = "$work/pipelines"
[kafka]
brokers = "$SLUICE_KAFKA_BROKERS"
[s3]
endpoint = "$SLUICE_S3_ENDPOINT"
region = "$AWS_REGION"
force_path_style = true
TOML
url="${DATABASE_URL}$([[ "$DATABASE_URL" == *\?* ]] && echo '&' || echo '?')options=-csearch_path%3D$schema"

# Wall time and the child's peak RSS, measured by the parent.
read -r seconds rss_kib < <(DATABASE_URL="$url" python3 - "$SLUICE_BIN" "$work/sluice.toml" "$bucket" "$key" <<'PY'
import resource, subprocess, sys, time
binary, config, bucket, key = sys.argv[1:5]
started = time.monotonic()
done = subprocess.run([binary, "job", "run", "--config", config, "--bucket", bucket, "--key", key],
                      stdout=subprocess.DEVNULL)
elapsed = time.monotonic() - started
if done.returncode != 0:
    sys.exit(f"sluice job run exited {done.returncode}")
print(f"{elapsed:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
)

count() { psql "$url" -tAc "SELECT count(*) FROM $1"; }
got_valid="$(count user_status)"; got_invalid="$(count user_status_error_rec)"; got_logs="$(count user_status_log)"
read -r want_valid want_invalid want_logs < <(python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["valid"], e["invalid"], e["log_rows"])' "$expected")
psql "$DATABASE_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1
if [[ "$got_valid/$got_invalid/$got_logs" != "$want_valid/$want_invalid/$want_logs" ]]; then
    echo "etl-1m: tables hold $got_valid/$got_invalid/$got_logs rows, expected $want_valid/$want_invalid/$want_logs" >&2
    exit 1
fi

rate="$(python3 -c "print(round($records / $seconds))")"
machine="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(free -g | awk '/^Mem:/ {print $2}') GiB"
line="| $(date -u +%Y-%m-%d) | ETL $records records ($((bytes >> 20)) MiB JSON lines) → 3 tables | sluice ($profile) | ${seconds} s | ${rate} records/s | $((rss_kib >> 10)) MiB | $machine |"
results="$repo/bench/RESULTS.md"
if [[ ! -f "$results" ]]; then
    printf '# Benchmark results\n\n| date | benchmark | system | time | rate | peak RSS | machine |\n|---|---|---|---|---|---|---|\n' > "$results"
fi
echo "$line" >> "$results"
echo "$line"
